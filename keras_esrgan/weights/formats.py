"""What a weights file is: its format, its element types, and the state dict inside it.

The one home of what every reader in `keras_esrgan.weights` shares (RRDBNet, SRVGGNetCompact and
discriminator state dicts, VGG19 for the perceptual loss, the model zoo's checks):

- `sniff_format`: `"keras"`, `"h5"`, `"torch"` or `"safetensors"`, by extension, then by signature;
- `decode_array` / `itemsize`: raw little- or big-endian bytes as numpy, bfloat16 widened to
  float32 (numpy has no bfloat16; it is the top half of a float32);
- `check_inflation`: the zip-bomb rule for members of `.pth` and `.keras` archives;
- `unwrap_state_dict`: the state dict inside a training checkpoint (`params_ema`, `params`, ...)
  with DataParallel's `module.` prefixes stripped.

The readers (`torch_pickle`, `safetensors_io`) sit on this module; it imports neither (their one
entry point, `read_checkpoint`, is `weights.reader`).
"""

import os
import zipfile

import numpy as np

from keras_esrgan.weights.errors import WeightsFileError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
FORMATS = ("keras", "h5", "torch", "safetensors")

# Stored tensor data hardly compresses (float weights: about 1.1 times); a member that inflates
# beyond this many times its compressed size, plus the slack for all-zero buffers, is a zip bomb.
MAX_INFLATION = 64
INFLATION_SLACK = 1 << 20

# Checkpoint keys a state dict is nested under, most preferred first: BasicSR saves the EMA
# weights it evaluates with as `params_ema` beside the raw `params`.
NESTING_KEYS = ("params_ema", "params", "state_dict", "model", "net_g")


def is_hdf5(path):
    """True if the file at `path` starts with the HDF5 signature (Keras `.h5` / `.weights.h5`)."""
    with open(path, "rb") as fh:
        return fh.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE


def sniff_format(path, name=None):
    """The format of a weights file: one of `FORMATS`.

    The extension decides when it is a known one; otherwise the first bytes do (HDF5 signature,
    zip archive with or without Keras' `config.json`, a pickle's PROTO opcode, or safetensors'
    8-byte header length followed by `{`).

    Args:
        path: str or PathLike of an existing file.
        name: the file's own name when `path` is a temporary one (a download's `.part`): the
            extension is read off it; default: `path`.

    Returns:
        `"keras"`, `"h5"`, `"torch"` or `"safetensors"`.

    Raises:
        WeightsFileError: none of them, naming the file and the formats read.

    Example:
    >>> sniff_format("RRDB_ESRGAN_x4.pth"), sniff_format("x4.safetensors")
    ('torch', 'safetensors')
    """
    path = os.fspath(path)
    name = os.fspath(name or path)
    lower = name.lower()
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
    if head.startswith(HDF5_SIGNATURE):
        return "h5"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            return "keras" if "config.json" in archive.namelist() else "torch"
    if head[:1] == b"\x80":
        return "torch"
    if len(head) >= 9 and head[8:9] == b"{":
        return "safetensors"
    raise WeightsFileError(
        f"{os.path.basename(name)}: not a weights file keras_esrgan can read (.pth/.pt, "
        ".safetensors, .keras or .weights.h5)"
    )


def itemsize(dtype):
    """Bytes per element of a numpy dtype or `"bfloat16"`."""
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def decode_array(raw, dtype, byteorder="little"):
    """Raw bytes as a flat numpy array in native byte order.

    Args:
        raw: bytes-like, a whole number of elements.
        dtype: a numpy dtype, or `"bfloat16"` (widened to float32, exactly).
        byteorder: `"little"` or `"big"`: the file's.

    Returns:
        1-D numpy array (float32 for bfloat16, bool for `np.bool_` stored as bytes).

    Example:
    >>> decode_array(b"\\x80\\x3f\\x00\\xc0", "bfloat16")      # 1.0 and -2.0
    array([ 1., -2.], dtype=float32)
    """
    order = ">" if byteorder == "big" else "<"
    if dtype == "bfloat16":
        bits = np.frombuffer(raw, dtype=np.dtype("uint16").newbyteorder(order))
        return (bits.astype(np.uint32) << 16).view(np.float32)
    if dtype == np.bool_:
        return np.frombuffer(raw, dtype=np.uint8) != 0
    dtype = np.dtype(dtype)
    return np.frombuffer(raw, dtype=dtype.newbyteorder(order)).astype(dtype)


def check_inflation(info, size, name, what):
    """Refuse a compressed zip member that would inflate to `size` bytes from far fewer.

    Args:
        info: its `zipfile.ZipInfo`.
        size: the bytes it is to inflate to.
        name, what: the file's name and the member's description, for the message.

    Raises:
        WeightsFileError: more than `MAX_INFLATION` times its compressed size plus
            `INFLATION_SLACK`.
    """
    if info.compress_type != zipfile.ZIP_STORED and size > MAX_INFLATION * info.compress_size + INFLATION_SLACK:
        raise WeightsFileError(
            f"{name}: {what} inflates {info.compress_size:,} compressed bytes to {size:,}: a zip "
            "bomb, refused (weights files store tensor data uncompressed)"
        )


def unwrap_state_dict(obj, name="weights"):
    """Find the state dict inside a checkpoint object and strip `module.` prefixes.

    Args:
        obj: what a weights file holds: a flat dict of arrays, or a dict nesting one under
            one of `NESTING_KEYS` (`params_ema` first).
        name: file name for error messages.

    Returns:
        dict str -> numpy array (metadata and non-string keys beside the tensors dropped).

    Raises:
        WeightsFileError: not a dict, or no tensors in it.

    Example:
    >>> sorted(unwrap_state_dict({"params_ema": {"module.conv.weight": np.zeros(2)}, "iter": 5}))
    ['conv.weight']
    """
    if not isinstance(obj, dict):
        raise WeightsFileError(f"{name}: holds a {type(obj).__name__}, not a state dict")
    for key in NESTING_KEYS:
        inner = obj.get(key)
        if isinstance(inner, dict) and inner:
            return unwrap_state_dict(inner, name)
    state = {}
    for key, value in obj.items():
        if not isinstance(value, np.ndarray) or not isinstance(key, str):
            continue  # counters and metadata beside the tensors; a state dict's keys are str
        while key.startswith("module."):
            key = key[len("module.") :]
        state[key] = value
    if not state:
        # Only string keys are shown: str() of another object the pickle built could be huge.
        keys = sorted(k[:60] if isinstance(k, str) else f"<{type(k).__name__}>" for k in obj)
        raise WeightsFileError(f"{name}: no tensors found (top-level keys: {keys[:8]})")
    return state
