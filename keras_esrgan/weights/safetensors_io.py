"""Read and write `.safetensors` files as dicts of numpy arrays.

Reading is done here rather than with `safetensors.numpy`, which cannot return bfloat16 tensors
(numpy has no bf16) and reports truncated files with a bare exception; writing uses the
`safetensors` package.
"""

import json
import os
import struct

import numpy as np

from keras_esrgan.atomic import atomic_path
from keras_esrgan.weights.errors import WeightsFileError

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bfloat16",
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}
_MAX_HEADER = 100 * 1024 * 1024


def load_safetensors(path):
    """Load every tensor of a `.safetensors` file.

    Args:
        path: str or PathLike.

    Returns:
        dict name -> numpy array (bfloat16 widened to float32, float16 kept).

    Raises:
        WeightsFileError: not a safetensors file, truncated, or an unsupported dtype.

    Example (BasicSR's key names, PyTorch's layout):
    >>> from keras_esrgan import RRDBNet, save_generator
    >>> save_generator(RRDBNet(num_feat=16, num_block=1, num_grow_ch=8), "x4.safetensors")
    >>> load_safetensors("x4.safetensors")["conv_first.weight"].shape
    (16, 3, 3, 3)
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 8:
        raise WeightsFileError(f"{name}: too short to be a safetensors file")
    (header_len,) = struct.unpack("<Q", data[:8])
    if header_len > min(_MAX_HEADER, len(data) - 8):
        raise WeightsFileError(f"{name}: not a safetensors file (bad header length), or truncated")
    try:
        header = json.loads(data[8 : 8 + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsFileError(f"{name}: not a safetensors file (header is not JSON)") from err
    if not isinstance(header, dict):
        raise WeightsFileError(f"{name}: not a safetensors file (header is not a JSON object)")
    body = memoryview(data)[8 + header_len :]
    tensors = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = _DTYPES[info["dtype"]], info["shape"], info["data_offsets"]
        except (KeyError, TypeError, ValueError) as err:
            raise WeightsFileError(f"{name}: tensor '{key}' has an unsupported entry {info!r}") from err
        if not 0 <= start <= end <= len(body):
            raise WeightsFileError(f"{name}: tensor '{key}' runs past the end of the file: truncated")
        raw = body[start:end]
        if dtype == "bfloat16":
            array = (np.frombuffer(raw, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            array = np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).astype(dtype)
        if array.size != int(np.prod(shape)):
            raise WeightsFileError(f"{name}: tensor '{key}' has {array.size} values for shape {shape}")
        tensors[key] = array.reshape(shape)
    return tensors


def save_safetensors(tensors, path, metadata=None):
    """Write a dict of numpy arrays as `.safetensors` (atomically: temp file, then rename).

    Args:
        tensors: dict name -> numpy array.
        path: destination.
        metadata: optional dict str -> str stored in the header.
    """
    from safetensors.numpy import save_file

    path = os.fspath(path)
    with atomic_path(path) as tmp:
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, tmp, metadata=metadata)
