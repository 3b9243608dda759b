"""BasicSR's SRVGGNetCompact state dict <-> the Keras `SRVGGNetCompact`.

BasicSR keeps the whole network in one `nn.ModuleList` named `body`: even indices are convs
(`body.N.weight` `[out, in, 3, 3]`, `body.N.bias`), odd indices activations, which have a weight
only for PReLU (`body.N.weight` of shape `[num_feat]`). With `num_conv` hidden convs the last
conv is `body.{2 num_conv + 2}` and has `num_out_ch * upscale**2` outputs in PyTorch's
PixelShuffle order; the Keras model keeps them in `tf.nn.depth_to_space` order, so that conv's
output channels are permuted here, on the way in and out (never with a gather in the graph).

ReLU and LeakyReLU(0.1) have no weights, so a state dict does not say which one it was trained
with: `infer_srvgg_architecture` needs `act_type=` for those (every released model is PReLU).
"""

import re

import numpy as np

from keras_esrgan.models.layers import pixel_unshuffle_permutation
from keras_esrgan.models.srvgg import ACT_TYPES, SRVGGNetCompact
from keras_esrgan.weights.errors import WeightsFileError

_BODY_KEY = re.compile(r"body\.(\d+)\.(weight|bias)$")


def is_srvgg_state_dict(state):
    """True when a flat state dict looks like BasicSR's SRVGGNetCompact (`body.N.weight`, no RRDB)."""
    keys = list(state)
    return bool(keys) and "body.0.weight" in state and all(_BODY_KEY.match(k) for k in keys)


def shuffle_permutation(channels, factor):
    """Index array `perm` with `depth_to_space_order = pytorch_order[perm]` along the channel axis.

    PyTorch's `PixelShuffle(r)` reads output channel c at sub-pixel (i, j) from input channel
    `c*r*r + i*r + j`, `tf.nn.depth_to_space` from `(i*r + j)*C + c`. `pytorch_order =
    depth_to_space_order[np.argsort(perm)]` goes back.
    """
    return np.argsort(pixel_unshuffle_permutation(channels, factor))


def _indices(state, name):
    found = {}
    for key in state:
        m = _BODY_KEY.match(key)
        if not m:
            raise WeightsFileError(f"{name}: key '{key}' is not part of an SRVGGNetCompact (body.N.weight/bias)")
        found.setdefault(int(m.group(1)), set()).add(m.group(2))
    return found


def infer_srvgg_architecture(state, name="weights", act_type=None, num_out_ch=None, upscale=None):
    """Read SRVGGNetCompact's constructor arguments off a BasicSR state dict.

    Args:
        state: flat dict `body.N.weight` -> array (PyTorch layout), e.g. from
            `formats.unwrap_state_dict`.
        name: file name for error messages.
        act_type: `"relu"` or `"leakyrelu"` for a state dict without activation weights
            (required then: the file cannot tell them apart); `"prelu"` is detected.
        num_out_ch, upscale: hints for the rare ambiguous last conv; by default
            `num_out_ch = num_in_ch` and `upscale = sqrt(last_out / num_out_ch)`.

    Returns:
        dict with num_in_ch, num_out_ch, num_feat, num_conv, upscale, act_type.

    Raises:
        WeightsFileError: keys or shapes that are not an SRVGGNetCompact, or relu/leakyrelu
            weights without `act_type`.
    """
    found = _indices(state, name)
    last = max(found)
    convs = list(range(0, last + 1, 2))
    if last % 2 or last < 2 or any(found.get(i) != {"weight", "bias"} for i in convs):
        raise WeightsFileError(
            f"{name}: SRVGGNetCompact convs must be body.0, body.2, ..., body.{last} with weight and "
            f"bias each; found indices {sorted(found)[:12]}"
        )
    for i in convs:
        if np.ndim(state[f"body.{i}.weight"]) != 4 or np.shape(state[f"body.{i}.weight"])[2:] != (3, 3):
            raise WeightsFileError(
                f"{name}: body.{i}.weight has shape {np.shape(state[f'body.{i}.weight'])}, not a 3x3 conv"
            )
    first = state["body.0.weight"]
    num_feat, num_in_ch = int(first.shape[0]), int(first.shape[1])
    num_conv = len(convs) - 2
    acts = [i for i in found if i % 2]
    if acts:
        expected = list(range(1, last, 2))
        if sorted(acts) != expected or any(found[i] != {"weight"} for i in acts):
            raise WeightsFileError(
                f"{name}: PReLU weights must be body.1, body.3, ..., body.{last - 1} (weight only); "
                f"found {sorted(acts)[:12]}"
            )
        bad = [i for i in acts if np.shape(state[f"body.{i}.weight"]) != (num_feat,)]
        if bad:
            raise WeightsFileError(
                f"{name}: body.{bad[0]}.weight has shape {np.shape(state[f'body.{bad[0]}.weight'])}; "
                f"SRVGGNetCompact's PReLU has one slope per channel ({num_feat},)"
            )
        if act_type not in (None, "prelu"):
            raise WeightsFileError(f"{name}: has PReLU weights, so act_type must be 'prelu', not {act_type!r}")
        act_type = "prelu"
    elif act_type is None:
        raise WeightsFileError(
            f"{name}: an SRVGGNetCompact without activation weights was trained with ReLU or "
            "LeakyReLU(0.1), and the file does not say which: pass act_type='relu' or "
            "act_type='leakyrelu'"
        )
    elif act_type not in ("relu", "leakyrelu"):
        raise WeightsFileError(
            f"{name}: act_type must be 'relu' or 'leakyrelu' for a file without PReLU weights, "
            f"got {act_type!r} (choices: {ACT_TYPES})"
        )
    for i in convs[1:]:
        w = state[f"body.{i}.weight"]
        if int(w.shape[1]) != num_feat or (i != last and int(w.shape[0]) != num_feat):
            raise WeightsFileError(
                f"{name}: body.{i}.weight has shape {tuple(w.shape)}; every hidden conv of this "
                f"SRVGGNetCompact maps {num_feat} -> {num_feat} channels"
            )
    last_out = int(state[f"body.{last}.weight"].shape[0])
    num_out_ch = num_in_ch if num_out_ch is None else int(num_out_ch)
    if upscale is None:
        ratio, rest = divmod(last_out, num_out_ch)
        root = int(round(np.sqrt(ratio)))
        if rest or root * root != ratio or root not in (1, 2, 3, 4):
            raise WeightsFileError(
                f"{name}: the last conv has {last_out} outputs, which is not num_out_ch "
                f"({num_out_ch}) x upscale**2 for upscale 1..4"
            )
        upscale = root
    elif last_out != num_out_ch * int(upscale) ** 2:
        raise WeightsFileError(
            f"{name}: the last conv has {last_out} outputs, not num_out_ch x upscale**2 = "
            f"{num_out_ch} x {int(upscale)}**2"
        )
    return dict(
        num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_conv=num_conv,
        upscale=int(upscale), act_type=act_type,
    )


def _describe(model):
    args = ", ".join(f"{k}={v!r}" for k, v in model.config.items())
    return f"SRVGGNetCompact({args})"


def _shuffle_order(model):
    """Channel index array taking the last conv's outputs from PyTorch to depth_to_space order."""
    if model.upscale == 1:
        return np.arange(model.num_out_ch)
    return shuffle_permutation(model.num_out_ch, model.upscale)


def assign_srvgg_state_dict(model, state, name="weights"):
    """Copy a BasicSR SRVGGNetCompact state dict into a built Keras `SRVGGNetCompact`.

    Conv kernels go from `[out, in, kh, kw]` to `[kh, kw, in, out]`; the last conv's output
    channels (kernel and bias) are reordered for `depth_to_space`; PReLU slopes `[C]` become
    Keras' `(1, 1, C)` alpha. Every shape is checked and every key must be used.
    """
    expected = set()
    order = _shuffle_order(model)
    last = len(model.body) - 1

    def fetch(key, shape):
        expected.add(key)
        if key not in state:
            raise WeightsFileError(f"{name}: missing '{key}' for {_describe(model)}")
        value = np.asarray(state[key], dtype="float32")
        if value.shape != tuple(shape):
            raise WeightsFileError(
                f"{name}: '{key}' has shape {value.shape} (PyTorch layout), which does not fit "
                f"{_describe(model)} (expected {tuple(shape)})"
            )
        return value

    for i, layer in enumerate(model.body):
        if i % 2 == 0:
            kh, kw, cin, cout = layer.kernel.shape
            kernel = fetch(f"body.{i}.weight", (cout, cin, kh, kw)).transpose(2, 3, 1, 0)
            bias = fetch(f"body.{i}.bias", (cout,))
            if i == last:
                kernel, bias = kernel[..., order], bias[order]
            layer.kernel.assign(kernel)
            layer.bias.assign(bias)
        elif model.act_type == "prelu":
            layer.alpha.assign(fetch(f"body.{i}.weight", (model.num_feat,)).reshape(layer.alpha.shape))
    extra = sorted(set(state) - expected)
    if extra:
        raise WeightsFileError(f"{name}: weights {_describe(model)} does not have: {extra[:6]}")


def srvgg_state_dict(model):
    """Export a Keras `SRVGGNetCompact` as a BasicSR state dict (float32, PyTorch layout).

    The result loads into BasicSR/Real-ESRGAN's `SRVGGNetCompact` with `load_state_dict`
    (after `torch.from_numpy`), and back with `assign_srvgg_state_dict`, bit for bit.
    """
    inverse = np.argsort(_shuffle_order(model))
    last = len(model.body) - 1
    out = {}
    for i, layer in enumerate(model.body):
        if i % 2 == 0:
            kernel = np.asarray(layer.kernel.numpy(), "float32")
            bias = np.asarray(layer.bias.numpy(), "float32")
            if i == last:
                kernel, bias = kernel[..., inverse], bias[inverse]
            out[f"body.{i}.weight"] = np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))
            out[f"body.{i}.bias"] = bias
        elif model.act_type == "prelu":
            out[f"body.{i}.weight"] = np.asarray(layer.alpha.numpy(), "float32").reshape(-1)
    return out


def srvgg_from_state_dict(state, name="weights", dtype=None, **overrides):
    """Build an `SRVGGNetCompact` from a BasicSR state dict, inferring the architecture.

    Args:
        state: flat state dict (see `infer_srvgg_architecture`).
        name: file name for error messages.
        dtype: Keras dtype policy of the new model.
        **overrides: `act_type` (needed for relu/leakyrelu files), `num_out_ch`, `upscale`.

    Example:
    >>> state = srvgg_state_dict(SRVGGNetCompact(num_feat=4, num_conv=1, upscale=3))
    >>> srvgg_from_state_dict(state).config
    {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4, 'num_conv': 1, 'upscale': 3, 'act_type': 'prelu'}
    """
    unknown = set(overrides) - {"act_type", "num_out_ch", "upscale"}
    if unknown:
        raise TypeError(f"srvgg_from_state_dict: unknown arguments {sorted(unknown)}")
    arch = infer_srvgg_architecture(state, name, **overrides)
    model = SRVGGNetCompact(**arch, dtype=dtype)
    assign_srvgg_state_dict(model, state, name)
    return model


# Largest SRVGGNetCompact a weights file may describe: the released models have num_feat 64
# and num_conv 16 or 32; the limits are 16x those, and the parameter limit is RRDBNet's (2^28,
# 1 GiB of float32), so no few-KB file (a .keras config, an .h5 header) makes the loader build
# a model of tens of GB before its weights are read.
SRVGG_LIMITS = dict(num_in_ch=64, num_out_ch=64, num_feat=1024, num_conv=512)
SRVGG_DEFAULTS = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu")


def srvgg_parameter_count(arch):
    """Number of parameters of `SRVGGNetCompact(**arch)`, computed without building it.

    Example:
    >>> srvgg_parameter_count(dict(SRVGG_DEFAULTS, num_conv=32))   # realesr-general-x4v3
    1213296
    """
    nf = arch["num_feat"]
    act = nf if arch["act_type"] == "prelu" else 0
    return (
        9 * arch["num_in_ch"] * nf + nf + act
        + arch["num_conv"] * (9 * nf * nf + nf + act)
        + 9 * nf * arch["num_out_ch"] * arch["upscale"] ** 2 + arch["num_out_ch"] * arch["upscale"] ** 2
    )


def check_srvgg_architecture(arch, name="weights"):
    """Refuse an SRVGGNetCompact architecture read from a file before anything is built.

    Returns:
        The parameter count.

    Raises:
        WeightsFileError: a value that is not a positive int (num_conv: >= 0), over
            `SRVGG_LIMITS`, an upscale other than 1..4, an unknown act_type, or more than
            `layouts.MAX_PARAMETERS` parameters.
    """
    from keras_esrgan.weights.layouts import MAX_PARAMETERS

    for key, limit in SRVGG_LIMITS.items():
        value = arch.get(key)
        low = 0 if key == "num_conv" else 1
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise WeightsFileError(f"{name}: {key}={str(value)[:40]!r} is not an integer >= {low}")
        if value > limit:
            raise WeightsFileError(
                f"{name}: describes an SRVGGNetCompact with {key}={value:,}, over the limit of "
                f"{limit} (released models: num_feat 64, num_conv 16 or 32): corrupt or hostile file"
            )
    if arch.get("upscale") not in (1, 2, 3, 4) or isinstance(arch.get("upscale"), bool):
        raise WeightsFileError(f"{name}: upscale must be 1, 2, 3 or 4, got {str(arch.get('upscale'))[:20]!r}")
    if arch.get("act_type") not in ACT_TYPES:
        raise WeightsFileError(f"{name}: act_type must be one of {ACT_TYPES}, got {str(arch.get('act_type'))[:20]!r}")
    count = srvgg_parameter_count(arch)
    if count > MAX_PARAMETERS:
        raise WeightsFileError(
            f"{name}: this SRVGGNetCompact would have {count:,} parameters, over the limit of "
            f"{MAX_PARAMETERS:,}: corrupt or hostile file"
        )
    return count


_H5_ACTIVATIONS = {"p_re_lu": "prelu", "re_lu": "relu", "leaky_re_lu": "leakyrelu"}


def _h5_order(names):
    # Keras names sibling layers conv2d, conv2d_1, ..., conv2d_10: sort by the number, not the text.
    def index(key):
        head, _, tail = key.rpartition("_")
        return int(tail) + 1 if head and tail.isdigit() else 0

    return sorted(names, key=index)


def weights_h5_srvgg_architecture(h5file, name="weights"):
    """SRVGGNetCompact's constructor arguments read off its Keras `.weights.h5` (an open h5py File).

    Keras stores the convs under `body/conv2d*` and the activations under `activations/*`,
    whose class names (`p_re_lu`, `re_lu`, `leaky_re_lu`) give `act_type`.

    Raises:
        WeightsFileError: not the `.weights.h5` of a keras_esrgan SRVGGNetCompact.
    """
    try:
        convs = _h5_order(k for k in h5file["body"].keys() if k.startswith("conv2d"))
        acts = _h5_order(h5file["activations"].keys()) if "activations" in h5file else []
        kinds = {_H5_ACTIVATIONS.get(a.rstrip("0123456789").rstrip("_")) for a in acts}
        if len(convs) < 2 or len(kinds) != 1 or None in kinds or len(acts) != len(convs) - 1:
            raise WeightsFileError(
                f"{name}: not the .weights.h5 of a keras_esrgan SRVGGNetCompact (convs {convs[:4]}, "
                f"activations {acts[:4]})"
            )
        first = h5file[f"body/{convs[0]}/vars/0"].shape
        last = h5file[f"body/{convs[-1]}/vars/0"].shape
        num_in_ch, num_feat, last_out = int(first[2]), int(first[3]), int(last[3])
    except WeightsFileError:
        raise
    except (KeyError, IndexError, OSError, TypeError, ValueError, AttributeError) as err:
        raise WeightsFileError(
            f"{name}: not the .weights.h5 of a keras_esrgan SRVGGNetCompact ({type(err).__name__}: {err})"
        ) from err
    root = int(round(np.sqrt(last_out / num_in_ch)))
    if root not in (1, 2, 3, 4) or num_in_ch * root * root != last_out:
        raise WeightsFileError(f"{name}: the last conv has {last_out} outputs: not {num_in_ch} x upscale**2")
    return dict(
        num_in_ch=num_in_ch, num_out_ch=num_in_ch, num_feat=num_feat, num_conv=len(convs) - 2,
        upscale=root, act_type=kinds.pop(),
    )
