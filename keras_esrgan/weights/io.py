"""Load and save RRDBNet generators in every format people have them in."""

import io
import json
import os
import zipfile

import numpy as np
import keras

from keras_esrgan.atomic import write_bytes
from keras_esrgan.models.generator import build_uninitialized, finish_initialization, initialize_variable
from keras_esrgan.models.rrdbnet import RRDBNet
from keras_esrgan.weights.errors import WeightsFileError
from keras_esrgan.weights.layouts import (
    check_architecture,
    generator_convs,
    infer_architecture,
    resolve_scale,
    to_canonical,
    unwrap_state_dict,
)
from keras_esrgan.weights.safetensors_io import load_safetensors, save_safetensors
from keras_esrgan.weights.torch_pickle import INFLATION_SLACK, MAX_INFLATION, load_torch_file

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
    Each array goes into its variable in one copy (into the variable itself when the model was
    made by `build_uninitialized`, as `load_generator` does).
    """
    expected = set()
    for prefix, conv in generator_convs(generator):
        for suffix, var in (("weight", conv.kernel), ("bias", conv.bias)):
            key = f"{prefix}.{suffix}"
            expected.add(key)
            if key not in canonical:
                raise WeightsFileError(f"{name}: missing '{key}' for {generator.describe()}")
            value = np.asarray(canonical[key], dtype="float32")
            if suffix == "weight":
                value = value.transpose(2, 3, 1, 0) if value.ndim == 4 else value
            if tuple(value.shape) != tuple(var.shape):
                raise WeightsFileError(
                    f"{name}: '{key}' has shape {tuple(canonical[key].shape)} (PyTorch layout), "
                    f"which does not fit {generator.describe()} (Keras shape {tuple(var.shape)})"
                )
            initialize_variable(var, value)
    finish_initialization(generator)
    extra = sorted(set(canonical) - expected)
    if extra:
        raise WeightsFileError(
            f"{name}: weights for layers {generator.describe()} does not have: {extra[:6]}"
        )


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


def _weights_h5_architecture(h5file, name):
    try:
        first = h5file["conv_first/vars/0"].shape
        last = h5file["conv_last/vars/0"].shape
        blocks = list(h5file["body"].keys())
        rdb = h5file[f"body/{blocks[0]}/rdbs"]
        conv1 = rdb[sorted(rdb.keys())[0]]["convs"]
        grow = conv1[sorted(conv1.keys())[0]]["vars/0"].shape[-1]
        arch = dict(
            num_feat=int(first[-1]), num_out_ch=int(last[-1]), num_block=len(blocks),
            num_grow_ch=int(grow), first_in=int(first[2]),
        )
    except (KeyError, IndexError, OSError, TypeError, ValueError, AttributeError) as err:
        raise WeightsFileError(
            f"{name}: not the .weights.h5 of a keras_esrgan RRDBNet ({type(err).__name__}: {err})"
        ) from err
    return arch


def _check_declared_values(h5file, parameters, name):
    """Refuse an HDF5 weights file whose datasets declare more values than the model has.

    Keras reads each dataset whole before it compares shapes, and a dataset of a few bytes on
    disk (chunks never written) may declare billions of values.
    """
    import h5py

    total = 0

    def visit(_, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += int(obj.size or 0)

    try:
        h5file.visititems(visit)
    except (OSError, RuntimeError, ValueError, TypeError) as err:
        raise WeightsFileError(f"{name}: unreadable HDF5 weights ({type(err).__name__}: {err})") from err
    if total > parameters:
        raise WeightsFileError(
            f"{name}: its datasets declare {total:,} values where the model it describes has "
            f"{parameters:,} parameters: corrupt or hostile file"
        )


def _keras_archive_architecture(path, name):
    """Read and check the RRDBNet config of a `.keras` archive before Keras builds anything."""
    import h5py

    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            for info in infos.values():
                if info.compress_type != zipfile.ZIP_STORED and (
                    info.file_size > MAX_INFLATION * info.compress_size + INFLATION_SLACK
                ):
                    raise WeightsFileError(f"{name}: member {info.filename!r} is a zip bomb, refused")
            info = infos.get("config.json")
            if info is None or info.file_size > 1 << 20:
                raise WeightsFileError(f"{name}: not a Keras model archive (no small config.json)")
            config = json.loads(archive.read(info).decode("utf-8"))
            if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
                raise WeightsFileError(f"{name}: config.json is not a Keras model config")
            kind = config.get("class_name")
            if kind != "RRDBNet":
                raise WeightsFileError(f"{name}: holds a {str(kind)[:60]}, not an RRDBNet")
            defaults = dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32)
            arch = {k: config["config"].get(k, v) for k, v in defaults.items()}
            parameters = check_architecture(arch, name)
            if "model.weights.h5" in infos:
                with archive.open(infos["model.weights.h5"]) as member, h5py.File(member, "r") as h5file:
                    _check_declared_values(h5file, parameters, name)
    except WeightsFileError:
        raise
    except RecursionError:
        raise WeightsFileError(f"{name}: config.json is nested too deeply") from None
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError, KeyError) as err:
        raise WeightsFileError(f"{name}: cannot read this .keras file ({type(err).__name__}: {err})") from err
    return arch


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
        _keras_archive_architecture(path, name)
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as err:  # Keras raises many types for a foreign or broken archive
            raise WeightsFileError(f"{name}: cannot load this .keras file ({err})") from err
        if not isinstance(model, RRDBNet):
            raise WeightsFileError(f"{name}: holds a {type(model).__name__}, not an RRDBNet")
        conflicts = {k: v for k, v in overrides.items() if model.config[k] != v}
        if conflicts:
            raise WeightsFileError(f"{name}: is {model.describe()}, not {conflicts}")
        # Loaded in the policy it was saved with; copied into the one asked for.
        return model if dtype is None else model.with_policy(dtype)
    elif kind == "h5":
        import h5py

        try:
            with h5py.File(path, "r") as h5file:
                found = _weights_h5_architecture(h5file, name)
                arch = {k: found[k] for k in ("num_feat", "num_out_ch", "num_block", "num_grow_ch")}
                arch.update(overrides)
                arch["scale"], arch["num_in_ch"] = resolve_scale(
                    found["first_in"], arch["num_out_ch"], overrides.get("scale"),
                    overrides.get("num_in_ch"), name,
                )
                _check_declared_values(h5file, check_architecture(arch, name), name)
        except OSError as err:
            raise WeightsFileError(f"{name}: not a readable HDF5 file ({err})") from err
        model = RRDBNet(**arch, dtype=dtype)
        try:
            model.load_weights(path)
        except Exception as err:
            raise WeightsFileError(f"{name}: does not fit {model.describe()} ({err})") from err
        return model
    else:
        canonical = read_state_dict(path)
        arch = infer_architecture(
            canonical, name, scale=overrides.get("scale"), num_in_ch=overrides.get("num_in_ch")
        )
        arch.update(overrides)
        check_architecture(arch, name)

    # Every variable's first value is the file's (no random initialization to overwrite).
    model = build_uninitialized(RRDBNet, **arch, dtype=dtype)
    assign_state_dict(model, canonical, name)
    return model


def _keras_bytes(generator, kind):
    """The `.keras` archive or `.weights.h5` file of `generator`, serialised in memory.

    HDF5 writing straight to a file crashes the process (or raises h5py's RuntimeError and leaves
    a partial file) when the disk fills up; in memory it cannot fail that way, and the bytes are
    then written by `write_bytes`, where a full disk is a plain `OSError`. Uses Keras' saving
    library below its path-based API, which has no file-object form for weights.
    """
    from keras.src.saving import saving_lib

    buffer = io.BytesIO()
    if kind == ".keras":
        saving_lib.save_model(generator, buffer)
    else:
        store = saving_lib.H5IOStore(buffer, mode="w")
        try:
            saving_lib._save_state(
                generator, weights_store=store, assets_store=None, inner_path="",
                visited_saveables=set(),
            )
        finally:
            store.close()
    return buffer.getvalue()


def save_generator(generator, path, overwrite=True):
    """Save an `RRDBNet` atomically; the format follows the extension.

    Args:
        generator: a built `RRDBNet`.
        path: `.keras` (architecture + weights), `.weights.h5` (Keras weights only), or
            `.safetensors` (BasicSR key names and PyTorch layout, for use from PyTorch).
        overwrite: replace an existing file; with False a file that exists when the save
            completes (even one created meanwhile) is kept and `FileExistsError` raised.

    The file is serialised in memory and written to a temporary name beside `path`, then moved
    into place, so an interrupted save never leaves a half-written file under the final name and
    a full disk gives an `OSError` (ENOSPC/EFBIG) with no temporary file left.
    """
    path = os.fspath(path)
    lower = path.lower()
    if lower.endswith(".safetensors"):
        save_safetensors(
            state_dict(generator), path, metadata={"arch": repr(generator.config)}, overwrite=overwrite
        )
        return
    if lower.endswith(".weights.h5"):
        kind = ".weights.h5"
    elif lower.endswith(".keras"):
        kind = ".keras"
    else:
        raise ValueError(f"save_generator: unknown format for {path} (.keras, .weights.h5, .safetensors)")
    write_bytes(path, _keras_bytes(generator, kind), overwrite=overwrite)
