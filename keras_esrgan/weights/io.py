"""Load and save RRDBNet generators in every format people have them in."""

import os
import zipfile

import numpy as np
import keras

from keras_esrgan.atomic import atomic_path
from keras_esrgan.models.rrdbnet import RRDBNet
from keras_esrgan.weights.errors import WeightsFileError
from keras_esrgan.weights.layouts import (
    generator_convs,
    infer_architecture,
    resolve_scale,
    to_canonical,
    unwrap_state_dict,
)
from keras_esrgan.weights.safetensors_io import load_safetensors, save_safetensors
from keras_esrgan.weights.torch_pickle import load_torch_file

_ARCH_KEYS = ("num_in_ch", "num_out_ch", "scale", "num_feat", "num_block", "num_grow_ch")
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _sniff(path):
    """Return the format of `path`: "keras", "h5", "torch" or "safetensors"."""
    lower = path.lower()
    if lower.endswith(".keras"):
        return "keras"
    if lower.endswith(".h5"):
        return "h5"
    if lower.endswith(".safetensors"):
        return "safetensors"
    if lower.endswith((".pth", ".pt", ".ckpt", ".bin")):
        return "torch"
    with open(path, "rb") as fh:
        head = fh.read(16)
    if head.startswith(_HDF5_SIGNATURE):
        return "h5"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return "keras" if "config.json" in archive.namelist() else "torch"
    if head[:1] == b"\x80":
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    raise WeightsFileError(
        f"{os.path.basename(path)}: not a weights file keras_esrgan can read (.pth/.pt, "
        ".safetensors, .keras or .weights.h5)"
    )


def read_state_dict(path):
    """Read a PyTorch or safetensors generator file as a canonical (BasicSR-named) state dict.

    Args:
        path: a `.pth`/`.pt` (zip or legacy) or `.safetensors` file of any known layout.

    Returns:
        dict `conv_first.weight` -> numpy array `[out, in, kh, kw]`, ... (see `layouts`).
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    kind = _sniff(path)
    if kind == "torch":
        obj = load_torch_file(path)
    elif kind == "safetensors":
        obj = load_safetensors(path)
    else:
        raise WeightsFileError(f"{name}: a Keras file, not a PyTorch/safetensors state dict")
    return to_canonical(unwrap_state_dict(obj, name), name)


def assign_state_dict(generator, canonical, name="weights"):
    """Copy a canonical PyTorch-layout state dict into a built `RRDBNet`, checking every shape.

    Kernels are transposed from PyTorch's `[out, in, kh, kw]` to Keras' `[kh, kw, in, out]`.
    """
    expected = set()
    for prefix, conv in generator_convs(generator):
        for suffix, var in (("weight", conv.kernel), ("bias", conv.bias)):
            key = f"{prefix}.{suffix}"
            expected.add(key)
            if key not in canonical:
                raise WeightsFileError(f"{name}: missing '{key}' for {_describe(generator)}")
            value = np.asarray(canonical[key], dtype="float32")
            if suffix == "weight":
                value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
            if tuple(value.shape) != tuple(var.shape):
                raise WeightsFileError(
                    f"{name}: '{key}' has shape {tuple(canonical[key].shape)} (PyTorch layout), "
                    f"which does not fit {_describe(generator)} (Keras shape {tuple(var.shape)})"
                )
            var.assign(value)
    extra = sorted(set(canonical) - expected)
    if extra:
        raise WeightsFileError(
            f"{name}: weights for layers {_describe(generator)} does not have: {extra[:6]}"
        )


def _describe(generator):
    args = ", ".join(f"{k}={v}" for k, v in generator.config.items())
    return f"RRDBNet({args})"


def state_dict(generator):
    """Export an `RRDBNet`'s weights as a BasicSR-named, PyTorch-layout dict of float32 arrays.

    The result loads into BasicSR/Real-ESRGAN's `RRDBNet` with `load_state_dict` (after
    `torch.from_numpy`), and back into keras_esrgan with `load_generator`.
    """
    out = {}
    for prefix, conv in generator_convs(generator):
        out[f"{prefix}.weight"] = np.asarray(conv.kernel.numpy(), "float32").transpose(3, 2, 0, 1)
        out[f"{prefix}.bias"] = np.asarray(conv.bias.numpy(), "float32")
    return out


def _weights_h5_architecture(path, name):
    import h5py

    try:
        with h5py.File(path, "r") as f:
            first = f["conv_first/vars/0"].shape
            last = f["conv_last/vars/0"].shape
            blocks = list(f["body"].keys())
            rdb = f[f"body/{blocks[0]}/rdbs"]
            conv1 = rdb[sorted(rdb.keys())[0]]["convs"]
            grow = conv1[sorted(conv1.keys())[0]]["vars/0"].shape[-1]
    except (KeyError, IndexError, OSError) as err:
        raise WeightsFileError(
            f"{name}: not the .weights.h5 of a keras_esrgan RRDBNet ({err})"
        ) from err
    return dict(
        num_feat=first[-1], num_out_ch=last[-1], num_block=len(blocks), num_grow_ch=grow,
        first_in=first[2],
    )


def load_generator(path, **overrides):
    """Build an `RRDBNet` and fill it with the weights of `path`.

    Args:
        path: weights file: PyTorch `.pth`/`.pt` (zip or legacy pickle; read without torch and
            without running pickled code), `.safetensors`, or keras_esrgan's own `.keras` /
            `.weights.h5`. Any of the three RRDBNet state-dict layouts (old ESRGAN, ESRGAN repo,
            BasicSR/Real-ESRGAN), optionally nested under `params_ema`/`params`.
        **overrides: RRDBNet arguments. The architecture is inferred from the file; pass
            `scale=`/`num_in_ch=` only when conv_first's input channels are ambiguous, and
            `dtype=` (e.g. `"mixed_bfloat16"`) to choose the compute precision.

    Returns:
        A built `RRDBNet`.

    Raises:
        FileNotFoundError: `path` does not exist.
        WeightsFileError: unreadable, truncated or unsafe file, unknown layout, a
            discriminator's weights, or shapes that do not fit the architecture.

    Example (the architecture comes from the file: ESRGAN's has 23 blocks of 64 features, this
    stand-in 2 of 8):
    >>> net = load_generator("RRDB_ESRGAN_x4.pth")
    >>> net.config
    {'num_in_ch': 3, 'num_out_ch': 3, 'scale': 4, 'num_feat': 8, 'num_block': 2, 'num_grow_ch': 4}
    >>> lr = np.zeros((12, 10, 3), "float32")          # (H, W, 3) float32 in [0, 1]
    >>> net(lr[None]).shape
    TensorShape([1, 48, 40, 3])
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    dtype = overrides.pop("dtype", None)
    unknown = set(overrides) - set(_ARCH_KEYS)
    if unknown:
        raise TypeError(f"load_generator: unknown arguments {sorted(unknown)}")
    kind = _sniff(path)

    if kind == "keras":
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as err:  # Keras raises many types for a foreign or broken archive
            raise WeightsFileError(f"{name}: cannot load this .keras file ({err})") from err
        if not isinstance(model, RRDBNet):
            raise WeightsFileError(f"{name}: holds a {type(model).__name__}, not an RRDBNet")
        conflicts = {k: v for k, v in overrides.items() if model.config[k] != v}
        if conflicts:
            raise WeightsFileError(f"{name}: is {_describe(model)}, not {conflicts}")
        if dtype is None:
            return model
        canonical, arch = state_dict(model), model.config
    elif kind == "h5":
        found = _weights_h5_architecture(path, name)
        arch = {k: found[k] for k in ("num_feat", "num_out_ch", "num_block", "num_grow_ch")}
        arch.update(overrides)
        arch["scale"], arch["num_in_ch"] = resolve_scale(
            found["first_in"], arch["num_out_ch"], overrides.get("scale"),
            overrides.get("num_in_ch"), name,
        )
        model = RRDBNet(**arch, dtype=dtype)
        try:
            model.load_weights(path)
        except Exception as err:
            raise WeightsFileError(f"{name}: does not fit {_describe(model)} ({err})") from err
        return model
    else:
        canonical = read_state_dict(path)
        arch = infer_architecture(
            canonical, name, scale=overrides.get("scale"), num_in_ch=overrides.get("num_in_ch")
        )
        arch.update(overrides)

    model = RRDBNet(**arch, dtype=dtype)
    assign_state_dict(model, canonical, name)
    return model


def save_generator(generator, path):
    """Save an `RRDBNet` atomically; the format follows the extension.

    Args:
        generator: a built `RRDBNet`.
        path: `.keras` (architecture + weights), `.weights.h5` (Keras weights only), or
            `.safetensors` (BasicSR key names and PyTorch layout, for use from PyTorch).

    The file is written to a temporary name beside `path` and renamed, so an interrupted save
    never leaves a half-written file under the final name.
    """
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith(".safetensors"):
        save_safetensors(state_dict(generator), path, metadata={"arch": repr(generator.config)})
        return
    if lower.endswith(".weights.h5"):
        suffix, save = ".weights.h5", generator.save_weights
    elif lower.endswith(".keras"):
        suffix, save = ".keras", generator.save
    else:
        raise ValueError(f"save_generator: unknown format for {path} (.keras, .weights.h5, .safetensors)")
    with atomic_path(path, suffix=suffix) as tmp:
        save(tmp)
