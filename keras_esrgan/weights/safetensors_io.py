"""Read and write `.safetensors` files as dicts of numpy arrays.

Reading is done here rather than with `safetensors.numpy`, which cannot return bfloat16 tensors
(numpy has no bf16) and reports truncated files with a bare exception; writing uses the
`safetensors` package.
"""

import json
import math
import os
import struct

import numpy as np
from safetensors.numpy import save

from keras_esrgan.atomic import write_bytes
from keras_esrgan.weights.errors import WeightsFileError
from keras_esrgan.weights.formats import decode_array, itemsize

_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": "bfloat16",
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
    "BOOL": np.bool_,
}
_ITEMSIZE = {k: itemsize(v) for k, v in _DTYPES.items()}
_MAX_HEADER = 100 * 1024 * 1024


def _header(raw, name):
    """The JSON header as a dict, refusing duplicate keys, NaN/Infinity and deep nesting."""

    def unique(pairs):
        result = dict(pairs)
        if len(result) != len(pairs):
            seen = set()
            dup = next(k for k, _ in pairs if k in seen or seen.add(k))
            raise WeightsFileError(f"{name}: the header names {dup[:60]!r} twice")
        return result

    def no_constant(text):
        raise WeightsFileError(f"{name}: the header holds {text}, which is not JSON")

    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=unique, parse_constant=no_constant)
    except RecursionError:
        raise WeightsFileError(f"{name}: the header is nested too deeply: not a safetensors file") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightsFileError(f"{name}: not a safetensors file (header is not JSON)") from err
    if not isinstance(header, dict):
        raise WeightsFileError(f"{name}: not a safetensors file (header is not a JSON object)")
    return header


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _entries(header, body_len, name):
    """`[(key, dtype, shape, start, end)]` sorted by start, checked to tile the data exactly."""
    entries = []
    for key, info in header.items():
        if key == "__metadata__":
            if not isinstance(info, dict):
                raise WeightsFileError(f"{name}: __metadata__ must be a JSON object")
            continue
        if not isinstance(info, dict):
            raise WeightsFileError(f"{name}: tensor '{key}' has an entry of type {type(info).__name__}")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or dtype not in _DTYPES:
            raise WeightsFileError(
                f"{name}: tensor '{key}' has dtype {str(dtype)[:20]!r}; supported: {', '.join(_DTYPES)}"
            )
        if not isinstance(shape, list) or len(shape) > 32 or not all(_is_int(n) and n >= 0 for n in shape):
            raise WeightsFileError(
                f"{name}: tensor '{key}' has shape {str(shape)[:60]}; a shape is a list of "
                "non-negative integers"
            )
        if not (
            isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_int, offsets))
            and 0 <= offsets[0] <= offsets[1]
        ):
            raise WeightsFileError(
                f"{name}: tensor '{key}' has data_offsets {str(offsets)[:60]}; expected [start, end] "
                "integers with 0 <= start <= end"
            )
        start, end = offsets
        need = math.prod(shape) * _ITEMSIZE[dtype]
        if end - start != need:
            raise WeightsFileError(
                f"{name}: tensor '{key}' of {dtype} {shape} needs {need:,} bytes, its data_offsets "
                f"give {end - start:,}: corrupt file"
            )
        entries.append((start, end, key, dtype, shape))
    entries.sort(key=lambda e: (e[0], e[1]))
    position = 0
    for start, end, key, _, _ in entries:
        if start != position:
            what = "overlaps the previous tensor" if start < position else "leaves a gap before it"
            raise WeightsFileError(
                f"{name}: tensor '{key}' at bytes {start:,}-{end:,} {what}: corrupt or hostile file"
            )
        position = end
    if position != body_len:
        if position > body_len:
            raise WeightsFileError(f"{name}: tensors run past the end of the file: truncated")
        raise WeightsFileError(
            f"{name}: {body_len - position:,} bytes after the last tensor belong to none: corrupt file"
        )
    return entries


def load_safetensors(path):
    """Load every tensor of a `.safetensors` file.

    The header is checked before any tensor is read: each entry's dtype, shape (non-negative
    ints) and `data_offsets` (ints) are well-formed, its byte length is exactly
    `prod(shape) * itemsize`, and the tensors tile the data section in order, without overlap
    or gap, to its end, as the format requires. So nothing outside the file is ever read and no
    tensor is built twice from the same bytes.

    Args:
        path: str or PathLike.

    Returns:
        dict name -> numpy array (bfloat16 widened to float32, float16 kept).

    Raises:
        WeightsFileError: not a safetensors file, truncated, malformed header, or an
            unsupported dtype; the message names the file.

    Example (BasicSR's key names, PyTorch's layout):
    >>> from keras_esrgan import RRDBNet, save_generator
    >>> save_generator(RRDBNet(num_feat=16, num_block=1, num_grow_ch=8), "x4.safetensors")
    >>> load_safetensors("x4.safetensors")["conv_first.weight"].shape
    (16, 3, 3, 3)
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise WeightsFileError(f"{name}: too short to be a safetensors file")
        (header_len,) = struct.unpack("<Q", head)
        if header_len > min(_MAX_HEADER, size - 8):
            raise WeightsFileError(f"{name}: not a safetensors file (bad header length), or truncated")
        entries = _entries(_header(fh.read(header_len), name), size - 8 - header_len, name)
        tensors = {}
        for start, end, key, dtype, shape in entries:
            fh.seek(8 + header_len + start)
            raw = fh.read(end - start)
            if len(raw) != end - start:
                raise WeightsFileError(f"{name}: tensor '{key}' runs past the end of the file: truncated")
            tensors[key] = decode_array(raw, _DTYPES[dtype]).reshape(shape)
    return tensors


def save_safetensors(tensors, path, metadata=None, overwrite=True):
    """Write a dict of numpy arrays as `.safetensors`, atomically.

    The file is serialised in memory and written through `keras_esrgan.atomic.write_bytes`, so a
    full disk is an `OSError` naming the problem and leaves no partial file.

    Args:
        tensors: dict name -> numpy array.
        path: destination.
        metadata: optional dict str -> str stored in the header.
        overwrite: replace an existing file (see `keras_esrgan.atomic.atomic_path`).
    """
    data = save({k: np.ascontiguousarray(v) for k, v in tensors.items()}, metadata=metadata)
    write_bytes(os.fspath(path), data, overwrite=overwrite)
