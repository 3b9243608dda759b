"""Load and save generators (RRDBNet, SRVGGNetCompact) in every format people have them in.

`load_generator` takes a model-zoo name (`keras_esrgan.pretrained`: downloaded, verified and
cached) or a file: PyTorch `.pth`, `.safetensors`, keras_esrgan's `.keras` / `.weights.h5`, or an
ncnn `.param` (with its `.bin`); it reads the architecture off the file and builds the matching
generator.
"""

import io
import json
import os
import zipfile

import h5py
import keras
import numpy as np

from keras_esrgan._compat import save_model_to_buffer, save_weights_to_buffer
from keras_esrgan.atomic import write_bytes
from keras_esrgan.models.generator import build_uninitialized, finish_initialization, initialize_variable
from keras_esrgan.models.rrdbnet import SPACE_TO_DEPTH_MARKER, RRDBNet, fold_unshuffle, unfold_unshuffle
from keras_esrgan.models.srvgg import SRVGGNetCompact
# The zoo's download module imports keras_esrgan.weights (layout checks), which imports this
# one: bound as a module and read at call time, it works whichever package is imported first.
import keras_esrgan.pretrained.download as zoo_download
from keras_esrgan.pretrained.registry import MODELS
from keras_esrgan.weights.errors import WeightsFileError
from keras_esrgan.weights.formats import check_inflation, sniff_format, unwrap_state_dict
from keras_esrgan.weights.layouts import (
    check_architecture,
    detect_layout,
    generator_convs,
    infer_architecture,
    resolve_scale,
    to_canonical,
)
from keras_esrgan.weights.ncnn import read_ncnn
from keras_esrgan.weights.reader import read_checkpoint
from keras_esrgan.weights.srvgg_layout import (
    SRVGG_DEFAULTS,
    assign_srvgg_state_dict,
    check_srvgg_architecture,
    infer_srvgg_architecture,
    is_srvgg_state_dict,
    srvgg_state_dict,
    weights_h5_srvgg_architecture,
)
from keras_esrgan.weights.safetensors_io import save_safetensors

_ARCH_KEYS = ("num_in_ch", "num_out_ch", "scale", "num_feat", "num_block", "num_grow_ch")
# What an SRVGGNetCompact file may leave open (relu/leakyrelu leave no weights; the last conv's
# outputs are num_out_ch x upscale**2); the rest is read off the file.
_SRVGG_KEYS = ("act_type", "num_out_ch", "upscale")
_GENERATOR_CLASSES = {"RRDBNet": RRDBNet, "SRVGGNetCompact": SRVGGNetCompact}
_NCNN_MAGIC = b"7767517"
# Key patterns of other super-resolution networks people try to load, to name them in the error.
_FOREIGN = (
    (("residual_group",), "SwinIR/HAT-style transformer"),
    (("head.0.weight", "tail."), "EDSR/RCAN-style (head/body/tail) network"),
    (("conv_first.weight", "body.0.conv1.weight"), "SRResNet/MSRResNet"),
    (("upconv1.weight", "conv_first.weight", "body.0.conv1."), "SRResNet/MSRResNet"),
)
_SUPPORTED = (
    "keras_esrgan loads RRDBNet (ESRGAN, Real-ESRGAN x4plus/x2plus/anime_6B, BSRGAN...) and "
    "SRVGGNetCompact (realesr-animevideov3, realesr-general-x4v3) generators"
)


def _sniff(path):
    """The format of `path`: `formats.sniff_format`'s, or "ncnn" for an ncnn `.param` graph."""
    lower = path.lower()
    if lower.endswith(".param"):
        return "ncnn"
    if lower.endswith(".bin") and os.path.isfile(path[:-4] + ".param"):
        raise WeightsFileError(
            f"{os.path.basename(path)}: the weights of the ncnn model "
            f"{os.path.basename(path[:-4])}.param: pass the .param file (the .bin beside it is read too)"
        )
    if not lower.endswith((".keras", ".h5", ".safetensors", ".pth", ".pt", ".ckpt", ".bin")):
        with open(path, "rb") as fh:
            if fh.read(len(_NCNN_MAGIC)) == _NCNN_MAGIC:
                return "ncnn"
    return sniff_format(path)


def _foreign_architecture(state):
    keys = list(state)
    for needles, arch in _FOREIGN:
        if all(any(needle in key for key in keys) for needle in needles):
            return arch
    return None


def _flat_state_dict(path, name):
    """The flat state dict of a PyTorch/safetensors file (nesting and `module.` removed)."""
    kind = _sniff(path)
    if kind not in ("torch", "safetensors"):
        raise WeightsFileError(f"{name}: a {kind} file, not a PyTorch/safetensors state dict")
    return unwrap_state_dict(read_checkpoint(path, kind), name)


def _canonical(state, name):
    """A flat generator state dict in BasicSR's names: RRDBNet's renamed, SRVGGNetCompact's as is."""
    if is_srvgg_state_dict(state):
        return state
    if detect_layout(state) is None:
        arch = _foreign_architecture(state)
        if arch is not None:
            raise WeightsFileError(
                f"{name}: the weights of a {arch} (keys {sorted(state)[:4]}), not a network "
                f"keras_esrgan implements: {_SUPPORTED}"
            )
    return to_canonical(state, name)


def read_state_dict(path):
    """Read a PyTorch or safetensors generator file as a canonical (BasicSR-named) state dict.

    Args:
        path: a `.pth`/`.pt` (zip or legacy) or `.safetensors` file: an RRDBNet of any known
            layout, or BasicSR's SRVGGNetCompact (`body.N.weight`), nested or not.

    Returns:
        dict `conv_first.weight` -> numpy array `[out, in, kh, kw]`, ... (see `layouts`), or
        SRVGGNetCompact's `body.N.weight` / `body.N.bias` unchanged.
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    return _canonical(_flat_state_dict(path, name), name)


def assign_state_dict(generator, canonical, name="weights"):
    """Copy a canonical PyTorch-layout state dict into a built `RRDBNet` or `SRVGGNetCompact`,
    checking every shape.

    Kernels are transposed from PyTorch's `[out, in, kh, kw]` to Keras' `[kh, kw, in, out]`
    (SRVGGNetCompact: see `srvgg_layout.assign_srvgg_state_dict`); conv_first's input channels of
    an x2/x1 RRDBNet are reordered from `pixel_unshuffle` to `tf.nn.space_to_depth` order
    (`fold_unshuffle`), which the Keras model's input stage uses.
    Each array goes into its variable in one copy (into the variable itself when the model was
    made by `build_uninitialized`, as `load_generator` does).
    """
    if isinstance(generator, SRVGGNetCompact):
        return assign_srvgg_state_dict(generator, canonical, name)
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
            if key == "conv_first.weight":
                value = fold_unshuffle(value, generator.unshuffle_factor)
            initialize_variable(var, value)
    finish_initialization(generator)
    extra = sorted(set(canonical) - expected)
    if extra:
        raise WeightsFileError(
            f"{name}: weights for layers {generator.describe()} does not have: {extra[:6]}"
        )


def state_dict(generator):
    """Export an `RRDBNet`'s (or `SRVGGNetCompact`'s) weights as a BasicSR-named, PyTorch-layout
    dict of float32 arrays.

    The result loads into BasicSR/Real-ESRGAN's `RRDBNet` (`SRVGGNetCompact`) with
    `load_state_dict` (after `torch.from_numpy`), and back into keras_esrgan with `load_generator`,
    bit for bit (conv_first's space_to_depth channel order is unfolded back to `pixel_unshuffle`'s).
    """
    if isinstance(generator, SRVGGNetCompact):
        return srvgg_state_dict(generator)
    out = {}
    for prefix, conv in generator_convs(generator):
        kernel = np.asarray(conv.kernel.numpy(), "float32")
        if prefix == "conv_first":
            kernel = unfold_unshuffle(kernel, generator.unshuffle_factor)
        out[f"{prefix}.weight"] = kernel.transpose(3, 2, 0, 1)
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
    total = 0

    def visit(path, obj):
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            if path.endswith(SPACE_TO_DEPTH_MARKER) and obj.size == 1:
                return  # the model's one-value marker beside its weights, not a parameter
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
    try:
        with zipfile.ZipFile(path) as archive:
            infos = {info.filename: info for info in archive.infolist()}
            for info in infos.values():
                check_inflation(info, info.file_size, name, f"member {info.filename!r}")
            info = infos.get("config.json")
            if info is None or info.file_size > 1 << 20:
                raise WeightsFileError(f"{name}: not a Keras model archive (no small config.json)")
            config = json.loads(archive.read(info).decode("utf-8"))
            if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
                raise WeightsFileError(f"{name}: config.json is not a Keras model config")
            kind = config.get("class_name")
            if kind == "RRDBNet":
                defaults = dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32)
                arch = {k: config["config"].get(k, v) for k, v in defaults.items()}
                parameters = check_architecture(arch, name)
            elif kind == "SRVGGNetCompact":
                arch = {k: config["config"].get(k, v) for k, v in SRVGG_DEFAULTS.items()}
                parameters = check_srvgg_architecture(arch, name)
            else:
                raise WeightsFileError(f"{name}: holds a {str(kind)[:60]}, not an RRDBNet or SRVGGNetCompact")
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


def _zoo_entry(source):
    """The registry entry `source` names when it is not an existing file, else None."""
    if isinstance(source, str) and source in MODELS and not os.path.exists(source):
        return MODELS[source]
    return None


def _split_overrides(overrides, arch, name):
    """The overrides that apply to `arch`; a clear error for those of the other architecture."""
    allowed = _ARCH_KEYS if arch == "RRDBNet" else _SRVGG_KEYS
    foreign = sorted(set(overrides) - set(allowed))
    if foreign:
        raise WeightsFileError(
            f"{name}: holds an {arch}, whose architecture is read from the file; {foreign} "
            f"cannot be set (only {list(allowed)} when the file is ambiguous)"
        )
    return dict(overrides)


def _check_conflicts(model, overrides, name):
    conflicts = {k: v for k, v in overrides.items() if model.config.get(k, v) != v}
    if conflicts:
        raise WeightsFileError(f"{name}: is {model.describe()}, not {conflicts}")


def _load_keras(path, name, overrides, dtype):
    _keras_archive_architecture(path, name)
    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as err:  # Keras raises many types for a foreign or broken archive
        raise WeightsFileError(f"{name}: cannot load this .keras file ({err})") from err
    if not isinstance(model, tuple(_GENERATOR_CLASSES.values())):
        raise WeightsFileError(f"{name}: holds a {type(model).__name__}, not an RRDBNet or SRVGGNetCompact")
    _check_conflicts(model, overrides, name)
    # Loaded in the policy it was saved with; copied into the one asked for.
    return model if dtype is None else model.with_policy(dtype)


def _load_weights_h5(path, name, overrides, dtype):
    import h5py

    try:
        with h5py.File(path, "r") as h5file:
            if "conv_first" not in h5file and "body" in h5file and "activations" in h5file:
                arch = weights_h5_srvgg_architecture(h5file, name)
                overrides = _split_overrides(overrides, "SRVGGNetCompact", name)
                conflicts = {k: v for k, v in overrides.items() if arch[k] != v}
                if conflicts:
                    raise WeightsFileError(f"{name}: holds an SRVGGNetCompact with {arch}, not {conflicts}")
                _check_declared_values(h5file, check_srvgg_architecture(arch, name), name)
                cls = SRVGGNetCompact
            else:
                overrides = _split_overrides(overrides, "RRDBNet", name)
                found = _weights_h5_architecture(h5file, name)
                arch = {k: found[k] for k in ("num_feat", "num_out_ch", "num_block", "num_grow_ch")}
                arch.update(overrides)
                arch["scale"], arch["num_in_ch"] = resolve_scale(
                    found["first_in"], arch["num_out_ch"], overrides.get("scale"),
                    overrides.get("num_in_ch"), name,
                )
                _check_declared_values(h5file, check_architecture(arch, name), name)
                cls = RRDBNet
    except OSError as err:
        raise WeightsFileError(f"{name}: not a readable HDF5 file ({err})") from err
    model = cls(**arch, dtype=dtype)
    try:
        model.load_weights(path)
    except Exception as err:
        raise WeightsFileError(f"{name}: does not fit {model.describe()} ({err})") from err
    return model


def _load_ncnn(path, name, overrides, dtype, drop_output_resize):
    found = read_ncnn(path)
    if found.output_resize is not None and not drop_output_resize:
        network = found.config["scale" if found.arch == "RRDBNet" else "upscale"]
        factor = found.output_resize["factor"]
        raise WeightsFileError(
            f"{name}: this ncnn graph is the x{network} {found.arch} followed by a fixed "
            f"{found.output_resize['mode']} resize of its output by {factor:g} (x{found.scale:g} in "
            f"all): it holds no x{found.scale:g} weights, and keras_esrgan generators end at the "
            f"network. Load the x{network} network with load_generator(path, "
            f"drop_output_resize=True) and ask the Upscaler for the final size: "
            f"Upscaler(net)(image, outscale={found.scale:g}) (CLI: --outscale {found.scale:g}), "
            "which resizes with antialiased bicubic, not ncnn's plain bicubic"
        )
    model = _GENERATOR_CLASSES[found.arch](**found.config, dtype=dtype)
    _check_conflicts(model, _split_overrides(overrides, found.arch, name), name)
    assign_state_dict(model, found.state_dict, name)
    return model


def _load_state_dict_file(path, name, overrides, dtype):
    state = _flat_state_dict(path, name)
    if is_srvgg_state_dict(state):
        overrides = _split_overrides(overrides, "SRVGGNetCompact", name)
        arch = infer_srvgg_architecture(state, name, **overrides)
        check_srvgg_architecture(arch, name)
        model = SRVGGNetCompact(**arch, dtype=dtype)
        assign_srvgg_state_dict(model, state, name)
        return model
    canonical = _canonical(state, name)
    overrides = _split_overrides(overrides, "RRDBNet", name)
    arch = infer_architecture(
        canonical, name, scale=overrides.get("scale"), num_in_ch=overrides.get("num_in_ch")
    )
    arch.update(overrides)
    check_architecture(arch, name)
    # Every variable's first value is the file's (no random initialization to overwrite).
    model = build_uninitialized(RRDBNet, **arch, dtype=dtype)
    assign_state_dict(model, canonical, name)
    return model


def load_generator(path, *, drop_output_resize=False, **overrides):
    """Build the generator a weights file (or model-zoo name) holds and fill it with its weights.

    Args:
        path: a model-zoo name (`"RealESRGAN_x4plus"`, `"realesr-general-x4v3"`, ... see
            `keras_esrgan.pretrained.MODELS`; downloaded, verified and cached on first use),
            or a weights file: PyTorch `.pth`/`.pt` (zip or legacy pickle; read without torch
            and without running pickled code), `.safetensors`, keras_esrgan's own `.keras` /
            `.weights.h5`, or an ncnn `.param` (its `.bin` beside it). RRDBNet in any of its
            three state-dict layouts (old ESRGAN, ESRGAN repo, BasicSR/Real-ESRGAN) or BasicSR's
            SRVGGNetCompact (`body.N.weight`), optionally nested under `params_ema`/`params`.
            An existing file wins over a model of the same name.
        drop_output_resize: for an ncnn graph that resizes the network's output by a fixed
            factor (Real-ESRGAN's ncnn `realesr-animevideov3-x2/x3`: the x4 network, then a
            bicubic x0.5/x0.75), return the network without the resize; without it such a file
            is refused, saying so.
        **overrides: only for files that leave the architecture open. RRDBNet: `scale=`/
            `num_in_ch=` when conv_first's input channels are ambiguous. SRVGGNetCompact:
            `act_type="relu"`/`"leakyrelu"` for files without PReLU weights, `num_out_ch=`/
            `upscale=` for an ambiguous last conv. Any generator: `dtype=` (e.g.
            `"mixed_bfloat16"`) to choose the compute precision.

    Returns:
        A built `RRDBNet` or `SRVGGNetCompact`.

    Raises:
        FileNotFoundError: neither an existing file nor a registered name
            (`keras_esrgan.pretrained.UnknownModelError`, listing close names).
        WeightsFileError: unreadable, truncated or unsafe file, unknown layout, another
            architecture (named when recognised), a discriminator's weights, or shapes that do
            not fit the architecture.
        keras_esrgan.pretrained.PretrainedError: a zoo download failed or did not verify
            (`OfflineError` says where to put the file by hand).

    Example (the architecture comes from the file: ESRGAN's has 23 blocks of 64 features, this
    stand-in 2 of 8):
    >>> net = load_generator("RRDB_ESRGAN_x4.pth")
    >>> net.config
    {'num_in_ch': 3, 'num_out_ch': 3, 'scale': 4, 'num_feat': 8, 'num_block': 2, 'num_grow_ch': 4}
    >>> lr = np.zeros((12, 10, 3), "float32")          # (H, W, 3) float32 in [0, 1]
    >>> net(lr[None]).shape
    TensorShape([1, 48, 40, 3])

    By name, from the model zoo (here offline, so the error says how to get the file):
    >>> load_generator("realesr-general-x4v3")
    Traceback (most recent call last):
    ...
    keras_esrgan.pretrained.errors.OfflineError: ...realesr-general-x4v3.pth...
    """
    source = os.fspath(path)
    dtype = overrides.pop("dtype", None)
    unknown = set(overrides) - set(_ARCH_KEYS) - set(_SRVGG_KEYS)
    if unknown:
        raise TypeError(f"load_generator: unknown arguments {sorted(unknown)}")
    entry = _zoo_entry(source)
    if entry is not None:
        if entry.kind != "generator":
            raise WeightsFileError(
                f"{source}: a {entry.arch} {entry.kind}, not a generator: load it with "
                f"keras_esrgan.load_discriminator({source!r})"
            )
        if entry.arch == "SRVGGNetCompact" and entry.config["act_type"] != "prelu":
            overrides.setdefault("act_type", entry.config["act_type"])  # no weights tell it
    path = os.fspath(zoo_download.resolve(source))
    name = os.path.basename(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights file not found: {path}")
    kind = _sniff(path)
    if kind == "keras":
        model = _load_keras(path, name, overrides, dtype)
    elif kind == "h5":
        model = _load_weights_h5(path, name, overrides, dtype)
    elif kind == "ncnn":
        model = _load_ncnn(path, name, overrides, dtype, drop_output_resize)
    else:
        model = _load_state_dict_file(path, name, overrides, dtype)
    if entry is not None and (type(model).__name__ != entry.arch or model.scale != entry.scale):
        raise WeightsFileError(
            f"{source}: the registry says {entry.arch} x{entry.scale}, but {path} holds "
            f"{model.describe()}: fix the entry (keras_esrgan.pretrained.register) or the file"
        )
    return model


def _keras_bytes(generator, kind):
    """The `.keras` archive or `.weights.h5` file of `generator`, serialised in memory.

    HDF5 writing straight to a file crashes the process (or raises h5py's RuntimeError and leaves
    a partial file) when the disk fills up; in memory it cannot fail that way, and the bytes are
    then written by `write_bytes`, where a full disk is a plain `OSError`.
    """
    buffer = io.BytesIO()
    (save_model_to_buffer if kind == ".keras" else save_weights_to_buffer)(generator, buffer)
    return buffer.getvalue()


def save_generator(generator, path, overwrite=True):
    """Save an `RRDBNet` or `SRVGGNetCompact` atomically; the format follows the extension.

    Args:
        generator: a built `RRDBNet` or `SRVGGNetCompact`.
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
