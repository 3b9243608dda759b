"""The ncnn model file formats: `.param` graph text and `.bin` weight blobs, read with bounds.

Formats as ncnn reads them (`ParamDict::load_param`, `ModelBinFromDataReader::load`):
- `.param`: `7767517`, then `layer_count blob_count`, then one line per layer:
  `Type name n_in n_out in_blob... out_blob... id=value...`; a value with `.` or `e` is a float;
  ids <= -23300 are arrays (`-23310=1,2.0e-01`: id 10, one element).
- `.bin`: for each layer in file order, its weight blobs. A blob read "with a flag" (conv
  weights) starts with 4 bytes: `0x01306B47` float16 (padded to 4 bytes), `0x000D4B38` int8
  (refused: it needs ncnn's int8 scales and runtime), `0x0002C056` or `0` float32, any other
  non-zero flag an 8-bit index into a 256-entry float32 table. Blobs without a flag (conv bias,
  PReLU slopes) are raw float32. ncnn has no bfloat16 file storage (bf16 is a run-time option,
  `opt.use_bf16_storage`); `0x0002C056` is float32 "with extra scaling" (caffe2ncnn's int8
  scale tables live elsewhere).

Every read is checked against the bytes left, before anything is allocated, so a `.param`
claiming huge shapes next to a small `.bin` fails with the layer's name, not with MemoryError.
"""

import dataclasses
import re

import numpy as np

from keras_esrgan.weights.errors import WeightsFileError

MAGIC = 7767517
FP16_TAG = 0x01306B47
INT8_TAG = 0x000D4B38
FP32_SCALED_TAG = 0x0002C056
MAX_PARAM_ID = 32  # NCNN_MAX_PARAM_COUNT
_INT = re.compile(r"[+-]?\d+$")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


@dataclasses.dataclass(frozen=True)
class NcnnLayer:
    """One layer line of a `.param` file.

    Attributes:
        type: layer type (`"Convolution"`, ...).
        name: layer name.
        inputs, outputs: blob names.
        params: id -> int, float, or tuple (array parameters).
        line: 1-based line number in the file, for error messages.
    """

    type: str
    name: str
    inputs: tuple
    outputs: tuple
    params: dict
    line: int

    def get(self, key, default):
        return self.params.get(key, default)


def _value(text, where):
    if "." in text or "e" in text.lower():
        if not _FLOAT.match(text):
            raise WeightsFileError(f"{where}: '{text}' is not a number")
        return float(text)
    if not _INT.match(text):
        raise WeightsFileError(f"{where}: '{text}' is not a number")
    return int(text)


def _params(tokens, where):
    params = {}
    for token in tokens:
        key, sep, value = token.partition("=")
        if not sep or not _INT.match(key):
            raise WeightsFileError(f"{where}: '{token}' is not an id=value parameter")
        key = int(key)
        if key <= -23300:
            key = -key - 23300
            count, *items = value.split(",")
            count = _value(count, where)
            if not isinstance(count, int) or count != len(items):
                raise WeightsFileError(
                    f"{where}: array parameter {token!r} announces {count} values and has {len(items)}"
                )
            value = tuple(_value(item, where) for item in items)
        else:
            value = _value(value, where)
        if not 0 <= key < MAX_PARAM_ID:
            raise WeightsFileError(f"{where}: parameter id {key} is outside ncnn's 0..{MAX_PARAM_ID - 1}")
        params[key] = value
    return params


def parse_param(text, name="model.param"):
    """Parse the text of an ncnn `.param` file.

    Args:
        text: the file's text (`\\n` or `\\r\\n` line ends).
        name: file name for error messages.

    Returns:
        list of `NcnnLayer`, in file order.

    Raises:
        WeightsFileError: wrong magic, counts that disagree with the lines, malformed lines.

    Example:
    >>> layers = parse_param("7767517\\n2 2\\nInput in 0 1 data\\n"
    ...                      "Convolution conv 1 1 data out 0=8 1=3 4=1 5=1 6=216 -23310=1,2.0e-01\\n")
    >>> layers[1].type, layers[1].inputs, layers[1].params
    ('Convolution', ('data',), {0: 8, 1: 3, 4: 1, 5: 1, 6: 216, 10: (0.2,)})
    """
    lines = [(i, line.split()) for i, line in enumerate(text.splitlines(), start=1)]
    lines = [(i, tokens) for i, tokens in lines if tokens]
    if not lines or lines[0][1] != [str(MAGIC)]:
        first = " ".join(lines[0][1])[:40] if lines else ""
        raise WeightsFileError(
            f"{name}: not an ncnn text .param file (first line must be the magic {MAGIC}, got {first!r})"
        )
    if len(lines) < 2 or len(lines[1][1]) != 2 or not all(map(_INT.match, lines[1][1])):
        raise WeightsFileError(f"{name}: line 2 must be 'layer_count blob_count'")
    layer_count, blob_count = map(int, lines[1][1])
    body = lines[2:]
    if layer_count != len(body):
        raise WeightsFileError(f"{name}: header announces {layer_count} layers, the file has {len(body)} layer lines")
    layers, blobs = [], set()
    for number, tokens in body:
        where = f"{name} line {number}"
        if len(tokens) < 4 or not _INT.match(tokens[2]) or not _INT.match(tokens[3]):
            raise WeightsFileError(f"{where}: expected 'Type name n_in n_out blobs... params...'")
        n_in, n_out = int(tokens[2]), int(tokens[3])
        if n_in < 0 or n_out < 0 or 4 + n_in + n_out > len(tokens):
            raise WeightsFileError(f"{where}: {n_in} inputs and {n_out} outputs announced, fewer blob names given")
        inputs = tuple(tokens[4 : 4 + n_in])
        outputs = tuple(tokens[4 + n_in : 4 + n_in + n_out])
        if any("=" in blob for blob in inputs + outputs):
            raise WeightsFileError(f"{where}: fewer blob names than announced")
        blobs.update(inputs + outputs)
        params = _params(tokens[4 + n_in + n_out :], where)
        layers.append(NcnnLayer(tokens[0], tokens[1], inputs, outputs, params, number))
    if len(blobs) != blob_count:
        raise WeightsFileError(f"{name}: header announces {blob_count} blobs, the layers name {len(blobs)}")
    return layers


class BlobReader:
    """Reads a `.bin`'s weight blobs in order, each read checked against the bytes left.

    Args:
        data: the `.bin` file's bytes.
        name: its file name, for error messages.

    Attributes:
        storage: how the flagged blobs read so far were stored, e.g. `{"float16": 351}`.
    """

    def __init__(self, data, name):
        self.data, self.name, self.offset = data, name, 0
        self.storage = {}

    def _take(self, nbytes, layer, what):
        if nbytes > len(self.data) - self.offset:
            raise WeightsFileError(
                f"{self.name}: truncated: layer '{layer.name}' ({layer.type}, .param line "
                f"{layer.line}) needs {nbytes} bytes of {what} at offset {self.offset}, the file "
                f"has {len(self.data) - self.offset} left"
            )
        start = self.offset
        self.offset += nbytes
        return start

    def raw(self, count, layer, what):
        """`count` raw little-endian float32 values (conv bias, PReLU slopes)."""
        start = self._take(4 * count, layer, what)
        return np.frombuffer(self.data, "<f4", count, start).astype(np.float32)

    def tagged(self, count, layer, what):
        """`count` values behind a storage flag (conv weights), widened to float32."""
        start = self._take(4, layer, f"{what} storage flag")
        tag = int.from_bytes(self.data[start : start + 4], "little")
        kind = {FP16_TAG: "float16", INT8_TAG: "int8", 0: "float32", FP32_SCALED_TAG: "float32"}.get(tag, "8-bit table")
        self.storage[kind] = self.storage.get(kind, 0) + 1
        if tag == FP16_TAG:
            start = self._take((2 * count + 3) // 4 * 4, layer, f"float16 {what}")
            return np.frombuffer(self.data, "<f2", count, start).astype(np.float32)
        if tag == INT8_TAG:
            raise WeightsFileError(
                f"{self.name}: layer '{layer.name}' holds int8-quantized weights (ncnn2int8), which "
                "need ncnn's int8 runtime; use the float16 or float32 model"
            )
        if tag in (0, FP32_SCALED_TAG):
            return self.raw(count, layer, f"float32 {what}")
        table_start = self._take(4 * 256, layer, f"{what} lookup table")
        table = np.frombuffer(self.data, "<f4", 256, table_start)
        start = self._take((count + 3) // 4 * 4, layer, f"8-bit {what} indices")
        return table[np.frombuffer(self.data, np.uint8, count, start)].astype(np.float32)

    def finish(self):
        """Raise if bytes are left over: the `.bin` then belongs to another graph."""
        if self.offset != len(self.data):
            raise WeightsFileError(
                f"{self.name}: {len(self.data) - self.offset} bytes left after the last weight "
                "blob: this .bin does not belong to this .param"
            )


def positive_param(layer, key, default, name, what):
    """Layer parameter `key` (default `default`), which must be a positive int."""
    value = layer.get(key, default)
    if not isinstance(value, int) or value < 1:
        raise WeightsFileError(f"{name}: layer '{layer.name}': {what} (param {key}) must be a positive integer, got {value!r}")
    return value


def convolution_blobs(layer, reader, name):
    """Read a Convolution layer's blobs: (weight `[out, in, kh, kw]`, bias `[out]`, geometry).

    geometry: dict kernel (kh, kw), dilation, stride, pad (top, left, right, bottom), with
    ncnn's defaults filled in; int8 convolutions are refused.
    """
    out = positive_param(layer, 0, 0, name, "num_output")
    kw = positive_param(layer, 1, 0, name, "kernel_w")
    kh = positive_param(layer, 11, kw, name, "kernel_h")
    size = positive_param(layer, 6, 0, name, "weight_data_size")
    pad = layer.get(4, 0)
    geometry = dict(
        kernel=(kh, kw), dilation=(layer.get(12, layer.get(2, 1)), layer.get(2, 1)),
        stride=(layer.get(13, layer.get(3, 1)), layer.get(3, 1)),
        pad=(layer.get(14, pad), pad, layer.get(15, pad), layer.get(16, layer.get(14, pad))),
        pad_value=layer.get(18, 0.0), dynamic_weight=layer.get(19, 0),
    )
    if layer.get(8, 0):
        raise WeightsFileError(
            f"{name}: layer '{layer.name}' is int8-quantized (int8_scale_term); use the float model"
        )
    cin, rest = divmod(size, out * kh * kw)
    if rest or cin < 1:
        raise WeightsFileError(
            f"{name}: layer '{layer.name}': weight_data_size {size} is not num_output ({out}) x "
            f"{kh}x{kw} x input channels"
        )
    weight = reader.tagged(size, layer, "weights").reshape(out, cin, kh, kw)
    bias = reader.raw(out, layer, "bias") if layer.get(5, 0) else np.zeros(out, np.float32)
    return weight, bias, geometry
