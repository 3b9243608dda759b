"""Check that a weights file holds the network its registry entry describes.

Used for files whose SHA-256 could not be pinned (or whose published digests disagree): the
file is parsed with keras_esrgan's restricted unpickler (no code runs, whatever the file holds)
and its keys and shapes are compared with the entry's architecture and arguments.
"""

import re

from keras_esrgan.pretrained.errors import VerificationError
from keras_esrgan.weights.errors import WeightsFileError
from keras_esrgan.weights.formats import unwrap_state_dict
from keras_esrgan.weights.layouts import detect_layout, infer_architecture, to_canonical
from keras_esrgan.weights.reader import read_checkpoint


def _rrdbnet(state, entry, name):
    found = infer_architecture(to_canonical(state, name), name)
    return {k: found[k] for k in ("num_in_ch", "num_out_ch", "num_feat", "num_block", "num_grow_ch")}, found["scale"]


def _srvgg(state, entry, name):
    # BasicSR's SRVGGNetCompact: body.0 conv, body.1 act, then num_conv x (conv, act), last conv.
    convs = sorted(int(m.group(1)) for m in map(re.compile(r"body\.(\d+)\.weight$").match, state) if m
                   and state[m.group(0)].ndim == 4)
    acts = sorted(int(m.group(1)) for m in map(re.compile(r"body\.(\d+)\.weight$").match, state) if m
                  and state[m.group(0)].ndim == 1)
    unknown = [k for k in state if not re.fullmatch(r"body\.\d+\.(weight|bias)", k)]
    if len(convs) < 2 or unknown or convs != list(range(0, 2 * len(convs) - 1, 2)):
        raise WeightsFileError(
            f"{name}: not an SRVGGNetCompact state dict (conv keys body.{convs[:4]}..., other keys "
            f"{unknown[:4]})"
        )
    first, last = state[f"body.{convs[0]}.weight"], state[f"body.{convs[-1]}.weight"]
    out_ch = entry.config["num_out_ch"]
    upscale = round((last.shape[0] / out_ch) ** 0.5)
    if upscale * upscale * out_ch != last.shape[0]:
        raise WeightsFileError(f"{name}: last conv has {last.shape[0]} outputs, not {out_ch} x upscale^2")
    config = dict(
        num_in_ch=int(first.shape[1]), num_out_ch=out_ch, num_feat=int(first.shape[0]),
        num_conv=len(convs) - 2, upscale=upscale,
        act_type="prelu" if acts and acts == [i + 1 for i in convs[:-1]] else "other",
    )
    if entry.config["act_type"] != "prelu" and config["act_type"] == "other":
        config["act_type"] = entry.config["act_type"]  # ReLU/LeakyReLU leave no weights to see
    return config, upscale


def _unet(state, entry, name):
    if detect_layout(state) != "unet_discriminator":
        raise WeightsFileError(f"{name}: not a UNetDiscriminatorSN state dict (keys {sorted(state)[:4]})")
    conv0 = state["conv0.weight"]
    # skip_connection leaves no trace in the weights: taken from the entry.
    config = dict(num_in_ch=int(conv0.shape[1]), num_feat=int(conv0.shape[0]),
                  skip_connection=entry.config["skip_connection"])
    return config, 1


_CHECKS = {"RRDBNet": _rrdbnet, "SRVGGNetCompact": _srvgg, "UNetDiscriminatorSN": _unet}


def check_layout(path, entry, source=None):
    """Raise `VerificationError` unless `path` holds `entry.arch` with `entry.config`/`entry.scale`.

    Args:
        path: the downloaded file (`.pth` zip/legacy pickle, or `.safetensors`).
        entry: its `ModelEntry`.
        source: where the file came from (URL), for the message.

    Returns:
        The architecture arguments read from the file (dict).
    """
    name = entry.file_name
    where = f" (from {source})" if source else ""
    try:
        # By the entry's file name: `path` may be a `.part` file.
        obj = read_checkpoint(path, name=entry.file_name)
        if entry.param_key is not None and not (isinstance(obj, dict) and isinstance(obj.get(entry.param_key), dict)):
            keys = sorted(map(str, obj))[:6] if isinstance(obj, dict) else type(obj).__name__
            raise WeightsFileError(f"{name}: no '{entry.param_key}' state dict in the checkpoint (top level: {keys})")
        state = unwrap_state_dict(obj[entry.param_key] if entry.param_key else obj, name)
        config, scale = _CHECKS[entry.arch](state, entry, name)
    except WeightsFileError as err:
        raise VerificationError(
            f"{entry.name}: the downloaded file{where} is not the {entry.arch} the entry describes: "
            f"{err}. It was not kept."
        ) from err
    expected = {k: v for k, v in entry.config.items() if k in config}
    if config != expected or scale != entry.scale:
        diff = {k: (config.get(k), v) for k, v in expected.items() if config.get(k) != v}
        if scale != entry.scale:
            diff["scale"] = (scale, entry.scale)
        detail = ", ".join(f"{k}={got!r} (entry: {want!r})" for k, (got, want) in diff.items())
        raise VerificationError(
            f"{entry.name}: the downloaded file{where} holds an {entry.arch} with {detail}: not the "
            "network the entry describes. It was not kept."
        )
    return config
