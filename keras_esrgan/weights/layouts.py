"""State-dict layouts of RRDBNet in the wild, mapped onto one canonical (BasicSR) layout.

Three layouts carry the same network:

| part            | old ESRGAN (`architecture.py`)   | ESRGAN repo (`RRDBNet_arch.py`) | BasicSR / Real-ESRGAN |
|-----------------|----------------------------------|---------------------------------|-----------------------|
| first conv      | `model.0`                        | `conv_first`                    | `conv_first`          |
| dense conv      | `model.1.sub.N.RDBk.convj.0`     | `RRDB_trunk.N.RDBk.convj`       | `body.N.rdbk.convj`   |
| trunk conv      | `model.1.sub.<num_block>`        | `trunk_conv`                    | `conv_body`           |
| upsampling convs| `model.3`, `model.6`             | `upconv1`, `upconv2`            | `conv_up1`, `conv_up2`|
| HR conv         | `model.8`                        | `HRconv`                        | `conv_hr`             |
| last conv       | `model.10`                       | `conv_last`                     | `conv_last`           |

Checkpoints may nest the state dict under `params_ema` (preferred: the EMA weights BasicSR
evaluates with), `params`, `state_dict` or `model`, and DataParallel adds a `module.` prefix:
`formats.unwrap_state_dict` finds it.
"""

import re

import numpy as np

from keras_esrgan.models.rrdbnet import UNSHUFFLE_FACTORS
from keras_esrgan.weights.errors import WeightsFileError

_ESRGAN_REPO = [
    (r"conv_first\.(weight|bias)$", r"conv_first.\1"),
    (r"RRDB_trunk\.(\d+)\.RDB([123])\.conv([1-5])\.(weight|bias)$", r"body.\1.rdb\2.conv\3.\4"),
    (r"trunk_conv\.(weight|bias)$", r"conv_body.\1"),
    (r"upconv1\.(weight|bias)$", r"conv_up1.\1"),
    (r"upconv2\.(weight|bias)$", r"conv_up2.\1"),
    (r"HRconv\.(weight|bias)$", r"conv_hr.\1"),
    (r"conv_last\.(weight|bias)$", r"conv_last.\1"),
]
_BASICSR = [
    (r"(conv_first|conv_body|conv_up1|conv_up2|conv_hr|conv_last)\.(weight|bias)$", r"\1.\2"),
    (r"body\.(\d+)\.rdb([123])\.conv([1-5])\.(weight|bias)$", r"body.\1.rdb\2.conv\3.\4"),
]
_OLD_BLOCK = re.compile(r"model\.1\.sub\.(\d+)\.RDB([123])\.conv([1-5])\.0\.(weight|bias)$")
_OLD_TRUNK = re.compile(r"model\.1\.sub\.(\d+)\.(weight|bias)$")
_OLD_TOP = {"0": "conv_first", "3": "conv_up1", "6": "conv_up2", "8": "conv_hr", "10": "conv_last"}

GENERATOR_TOP = ("conv_first", "conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last")


def detect_layout(state):
    """Name the layout of a flat state dict.

    Returns one of `"old_esrgan"`, `"esrgan"`, `"basicsr"`, `"vgg_discriminator"`,
    `"unet_discriminator"`, or `None` when nothing matches.
    """
    keys = set(state)
    if "linear1.weight" in keys and any(k.startswith("conv0_0.") for k in keys):
        return "vgg_discriminator"
    if "conv9.weight" in keys and "conv0.weight" in keys:
        return "unet_discriminator"
    if "model.0.weight" in keys and any(k.startswith("model.1.sub.") for k in keys):
        return "old_esrgan"
    if "trunk_conv.weight" in keys or any(k.startswith("RRDB_trunk.") for k in keys):
        return "esrgan"
    if "conv_body.weight" in keys or any(k.startswith("body.0.rdb1.") for k in keys):
        return "basicsr"
    return None


def _rename(state, rules, name, layout):
    out, unknown = {}, []
    compiled = [(re.compile(p), r) for p, r in rules]
    for key, value in state.items():
        for pattern, repl in compiled:
            if pattern.match(key):
                out[pattern.sub(repl, key)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise WeightsFileError(
            f"{name}: {layout} layout with keys RRDBNet does not have: {sorted(unknown)[:6]}. "
            "This is a variant of the architecture keras_esrgan does not implement."
        )
    return out


def _rename_old(state, name):
    blocks = {int(m.group(1)) for m in map(_OLD_BLOCK.match, state) if m}
    num_block = max(blocks) + 1 if blocks else 0
    out, unknown = {}, []
    for key, value in state.items():
        block = _OLD_BLOCK.match(key)
        trunk = _OLD_TRUNK.match(key)
        top = re.match(r"model\.(\d+)\.(weight|bias)$", key)
        if block:
            out["body.{}.rdb{}.conv{}.{}".format(*block.groups())] = value
        elif trunk and int(trunk.group(1)) == num_block:
            out[f"conv_body.{trunk.group(2)}"] = value
        elif top and top.group(1) in _OLD_TOP:
            out[f"{_OLD_TOP[top.group(1)]}.{top.group(2)}"] = value
        else:
            unknown.append(key)
    if unknown:
        upsamples = sorted({int(m.group(1)) for m in (re.match(r"model\.(\d+)\.", k) for k in state) if m})
        raise WeightsFileError(
            f"{name}: old-ESRGAN layout with modules {upsamples} at the top level; only the x4 "
            f"arrangement [0, 1, 3, 6, 8, 10] maps onto RRDBNet (unexpected keys: "
            f"{sorted(unknown)[:6]})"
        )
    return out


def to_canonical(state, name="weights"):
    """Rename a flat generator state dict of any known layout to BasicSR's key names.

    Args:
        state: dict str -> numpy array (PyTorch layout, `[out, in, kh, kw]` kernels).
        name: file name for error messages.

    Returns:
        dict with keys `conv_first.weight`, `body.N.rdbK.convJ.bias`, ... (values untouched).

    Raises:
        WeightsFileError: a discriminator's state dict, or an unknown layout.
    """
    layout = detect_layout(state)
    if layout in ("vgg_discriminator", "unet_discriminator"):
        kind = "VGGStyleDiscriminator" if layout == "vgg_discriminator" else "UNetDiscriminatorSN"
        raise WeightsFileError(
            f"{name}: this is a discriminator's state dict ({kind}), not a generator's. Use the "
            "generator checkpoint (BasicSR saves it as net_g_*.pth; the discriminator is net_d_*)."
        )
    if layout is None:
        raise WeightsFileError(
            f"{name}: unknown state-dict layout (first keys: {sorted(state)[:6]}). Expected an "
            "RRDBNet from BasicSR/Real-ESRGAN (conv_first, body.N.rdbK...), the ESRGAN repo "
            "(conv_first, RRDB_trunk.N.RDBK...) or the old ESRGAN (model.0, model.1.sub.N...)."
        )
    if layout == "old_esrgan":
        return _rename_old(state, name)
    return _rename(state, _ESRGAN_REPO if layout == "esrgan" else _BASICSR, name, layout)


def infer_architecture(canonical, name="weights", scale=None, num_in_ch=None):
    """Read RRDBNet's constructor arguments off a canonical state dict's keys and shapes.

    Args:
        canonical: output of `to_canonical`.
        name: file name for error messages.
        scale, num_in_ch: optional hints; by default the scale is taken from conv_first's input
            channels as Real-ESRGAN does (out_ch * 16 -> x1, out_ch * 4 -> x2, else x4).

    Returns:
        dict with num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch.
    """
    for top in GENERATOR_TOP:
        if f"{top}.weight" not in canonical:
            raise WeightsFileError(f"{name}: generator weights lack '{top}.weight': incomplete file")
    first = canonical["conv_first.weight"]
    last = canonical["conv_last.weight"]
    if first.ndim != 4 or last.ndim != 4:
        raise WeightsFileError(f"{name}: conv weights must be 4-D [out, in, kh, kw]")
    blocks = sorted({int(k.split(".")[1]) for k in canonical if k.startswith("body.")})
    if blocks != list(range(len(blocks))) or not blocks:
        raise WeightsFileError(f"{name}: RRDB blocks {blocks[:5]}... are not numbered 0..N-1")
    if "body.0.rdb1.conv1.weight" not in canonical:
        raise WeightsFileError(f"{name}: generator weights lack 'body.0.rdb1.conv1.weight'")
    num_out_ch = int(last.shape[0])
    scale, num_in_ch = resolve_scale(int(first.shape[1]), num_out_ch, scale, num_in_ch, name)
    return dict(
        num_in_ch=int(num_in_ch),
        num_out_ch=num_out_ch,
        scale=int(scale),
        num_feat=int(first.shape[0]),
        num_block=len(blocks),
        num_grow_ch=int(canonical["body.0.rdb1.conv1.weight"].shape[0]),
    )


def resolve_scale(first_in, num_out_ch, scale=None, num_in_ch=None, name="weights"):
    """Work out `(scale, num_in_ch)` from conv_first's input channel count.

    x2 and x1 RRDBNets pixel-unshuffle the input by 2 or 4 (Real-ESRGAN), so conv_first sees
    4x or 16x the image channels. Without hints the image is assumed to have `num_out_ch`
    channels; `scale` or `num_in_ch` settle the rare ambiguous case.
    """
    factors = {4: 1, 2: 2, 1: 4}
    if scale is None:
        channels = num_in_ch or num_out_ch
        ratio, rest = divmod(first_in, channels)
        scale = {1: 4, 4: 2, 16: 1}.get(ratio) if not rest else None
        if scale is None:
            if num_in_ch is not None:
                raise WeightsFileError(
                    f"{name}: conv_first takes {first_in} channels, which fits no scale for "
                    f"num_in_ch={num_in_ch}"
                )
            scale = 4  # a model with unusual input channels, not unshuffled
    if scale not in factors:
        raise WeightsFileError(f"{name}: scale must be 4, 2 or 1, got {scale!r}")
    expected_in = first_in // factors[scale] ** 2
    if first_in % factors[scale] ** 2 or (num_in_ch is not None and num_in_ch != expected_in):
        raise WeightsFileError(
            f"{name}: conv_first takes {first_in} channels, which does not fit x{scale} with "
            f"num_in_ch={num_in_ch}"
        )
    return int(scale), int(expected_in)


def generator_convs(generator):
    """Yield `(canonical_prefix, Conv2D layer)` for every conv of an `RRDBNet`."""
    yield "conv_first", generator.conv_first
    for i, block in enumerate(generator.body):
        for k, rdb in enumerate(block.rdbs, start=1):
            for j, conv in enumerate(rdb.convs, start=1):
                yield f"body.{i}.rdb{k}.conv{j}", conv
    for top in GENERATOR_TOP[1:]:
        yield top, getattr(generator, top)


# Largest RRDBNet a weights file may describe. Every published RRDBNet (ESRGAN, Real-ESRGAN x4plus,
# x2plus and anime_6B, BSRGAN, the community 4x/8x models) has num_feat 64 (32 for "lite"
# variants), num_block 6 to 23 and num_grow_ch 32; the limits are 4x (blocks) to 16x (features,
# growth) those, and the parameter limit (2^28, 1 GiB of float32) is 16 times the full model's
# 16.7 million, so a real model always passes while a few-KB file cannot make the loader build a
# model of tens of GB before its weights are even read.
ARCHITECTURE_LIMITS = dict(num_in_ch=64, num_out_ch=64, num_feat=1024, num_block=100, num_grow_ch=512)
MAX_PARAMETERS = 1 << 28


def parameter_count(arch):
    """Number of parameters of `RRDBNet(**arch)`, computed without building it.

    Example:
    >>> parameter_count(dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32))
    16697987
    """
    nf, gc = arch["num_feat"], arch["num_grow_ch"]
    first_in = arch["num_in_ch"] * UNSHUFFLE_FACTORS[arch["scale"]] ** 2

    def conv(cin, cout):
        return 9 * cin * cout + cout

    rdb = sum(conv(nf + j * gc, gc) for j in range(4)) + conv(nf + 4 * gc, nf)
    return (
        conv(first_in, nf) + arch["num_block"] * 3 * rdb + 4 * conv(nf, nf)
        + conv(nf, arch["num_out_ch"])
    )


def check_architecture(arch, name="weights"):
    """Refuse an RRDBNet architecture read from a file before anything is built.

    Args:
        arch: dict with `num_in_ch`, `num_out_ch`, `scale`, `num_feat`, `num_block`,
            `num_grow_ch`.
        name: file name for error messages.

    Returns:
        The parameter count.

    Raises:
        WeightsFileError: a value that is not a positive int, over `ARCHITECTURE_LIMITS`, a scale
            other than 4/2/1, or more than `MAX_PARAMETERS` parameters in all.
    """
    for key, limit in ARCHITECTURE_LIMITS.items():
        value = arch.get(key)
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise WeightsFileError(f"{name}: {key}={str(value)[:40]!r} is not a positive integer")
        if value > limit:
            raise WeightsFileError(
                f"{name}: describes an RRDBNet with {key}={value:,}, over the limit of {limit} "
                "(real models have num_feat 64, num_block <= 23, num_grow_ch 32): corrupt or hostile file"
            )
    if arch.get("scale") not in UNSHUFFLE_FACTORS or isinstance(arch.get("scale"), bool):
        raise WeightsFileError(f"{name}: scale must be 4, 2 or 1, got {str(arch.get('scale'))[:20]!r}")
    count = parameter_count({k: int(v) for k, v in arch.items() if k in ARCHITECTURE_LIMITS or k == "scale"})
    if count > MAX_PARAMETERS:
        args = ", ".join(f"{k}={arch[k]}" for k in ARCHITECTURE_LIMITS)
        raise WeightsFileError(
            f"{name}: RRDBNet({args}) would have {count:,} parameters, over the limit of "
            f"{MAX_PARAMETERS:,} (the full ESRGAN has 16,697,987): corrupt or hostile file"
        )
    return count
