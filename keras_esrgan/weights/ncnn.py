"""ncnn `.param` / `.bin` import: Real-ESRGAN's ncnn models as canonical BasicSR state dicts.

`read_ncnn("realesrgan-x4plus.param")` parses the graph (`ncnn_format`), reads its weights,
checks that the graph *is* an RRDBNet or an SRVGGNetCompact wire for wire (every skip,
concatenation, residual scale, slope and resampling, not just the number of convs), and returns
BasicSR's key names, PyTorch layouts and the constructor arguments. Nothing runs, and nothing is
allocated beyond what the `.bin` holds.

The check walks back from the output blob: Split layers are aliases, activations fused into a
Convolution (`9=1` ReLU, `9=2` LeakyReLU) are the same as separate ReLU layers, and the two
channel orders ncnn's PixelShuffle and Reorg offer (`1=0` PyTorch's, `1=1` depth_to_space's)
are both accepted, the weights permuted to BasicSR's order.
"""

import dataclasses
import os
from typing import NamedTuple

import numpy as np

from keras_esrgan.models.layers import pixel_unshuffle_permutation
from keras_esrgan.models.rrdbnet import LRELU_SLOPE, RESIDUAL_SCALE
from keras_esrgan.models.srvgg import LEAKY_SLOPE
from keras_esrgan.weights.errors import WeightsFileError
from keras_esrgan.weights.layouts import infer_architecture
from keras_esrgan.weights.ncnn_format import (
    MAGIC,
    BlobReader,
    NcnnLayer,
    convolution_blobs,
    parse_param,
    positive_param,
)
from keras_esrgan.weights.srvgg_layout import infer_srvgg_architecture

# A .param is text, one short line per layer (116 KB for the 23-block RRDBNet); anything much
# larger is not a model graph and is not read into memory.
MAX_PARAM_BYTES = 16 << 20
LAYER_TYPES = (
    "Input", "Split", "Convolution", "ReLU", "PReLU", "Concat", "Eltwise", "BinaryOp",
    "Interp", "PixelShuffle", "Reorg",
)
# The convs of both architectures: 3x3, stride 1, "same" zero padding. ncnn writes the padding
# as 1 or as -233/-234 (SAME_UPPER/SAME_LOWER, both 1 pixel per side for these convs).
_CONV_GEOMETRY = dict(kernel=(3, 3), dilation=(1, 1), stride=(1, 1), pad=(1, 1, 1, 1), pad_value=0, dynamic_weight=0)
_RESIZE_MODES = {1: "nearest", 2: "bilinear", 3: "bicubic"}


class NcnnModel(NamedTuple):
    """What `read_ncnn` returns.

    Attributes:
        arch: `"RRDBNet"` or `"SRVGGNetCompact"`.
        config: the class's constructor arguments (`RRDBNet(**config)`).
        state_dict: BasicSR key names -> float32 arrays in PyTorch layout (the layout
            `keras_esrgan.weights` assigns from).
        output_resize: `None`, or `{"mode": "bicubic", "factor": 0.5}` when the graph resizes
            the network's output by a fixed factor (Real-ESRGAN's ncnn `animevideov3-x2/x3`
            are the x4 network followed by a bicubic x0.5/x0.75: they have no x2/x3 weights).
        storage: how the conv weights were stored in the `.bin`, e.g. `{"float16": 351}`.
    """

    arch: str
    config: dict
    state_dict: dict
    output_resize: object = None
    storage: object = None

    @property
    def scale(self):
        """Output size / input size of the whole graph (network scale x output resize)."""
        scale = self.config["scale" if self.arch == "RRDBNet" else "upscale"]
        return scale * (self.output_resize["factor"] if self.output_resize else 1)


@dataclasses.dataclass(eq=False)
class _Node:
    """A value in the normalized graph: Split removed, fused activations made explicit."""

    op: str  # input conv act sum concat resize shuffle unshuffle
    inputs: list
    attrs: dict
    layer: NcnnLayer = None


def _number(layer, key, default, name):
    value = layer.get(key, default)
    if isinstance(value, tuple):
        raise WeightsFileError(f"{name}: layer '{layer.name}': param {key} must be a number, not an array")
    return float(value)


def _numbers(layer, key, name):
    value = layer.get(key, ())
    if not isinstance(value, tuple):
        raise WeightsFileError(f"{name}: layer '{layer.name}': param {key} must be an array (id {-23300 - key})")
    return tuple(float(v) for v in value)


def _build_graph(layers, reader, name):
    """Normalize the layer list into `_Node`s; return (output node, conv nodes in file order)."""
    blobs, consumed, convs = {}, set(), []

    def inp(layer, count):
        if len(layer.inputs) != count:
            raise WeightsFileError(f"{name}: layer '{layer.name}' ({layer.type}) has {len(layer.inputs)} inputs, expected {count}")
        for blob in layer.inputs:
            if blob not in blobs:
                raise WeightsFileError(f"{name}: layer '{layer.name}' reads blob '{blob}' before any layer writes it")
            consumed.add(blob)
        return [blobs[b] for b in layer.inputs]

    def out(layer, node, count=1):
        if len(layer.outputs) != count:
            raise WeightsFileError(f"{name}: layer '{layer.name}' ({layer.type}) has {len(layer.outputs)} outputs, expected {count}")
        for blob in layer.outputs:
            if blob in blobs:
                raise WeightsFileError(f"{name}: blob '{blob}' is written twice (layer '{layer.name}')")
            blobs[blob] = node

    inputs = [layer for layer in layers if layer.type == "Input"]
    if len(inputs) != 1:
        raise WeightsFileError(f"{name}: a generator graph has one Input layer, this one has {len(inputs)}")
    for layer in layers:
        kind = layer.type
        if kind == "Input":
            inp(layer, 0)
            out(layer, _Node("input", [], dict(channels=layer.get(2, 0)), layer))
        elif kind == "Split":
            (x,) = inp(layer, 1)
            out(layer, x, count=len(layer.outputs) or 1)
        elif kind == "Convolution":
            (x,) = inp(layer, 1)
            weight, bias, geometry = convolution_blobs(layer, reader, name)
            geometry["pad"] = tuple(1 if p in (-233, -234) else p for p in geometry["pad"])
            if geometry != _CONV_GEOMETRY:
                raise WeightsFileError(
                    f"{name}: layer '{layer.name}' is a {geometry} convolution; RRDBNet and "
                    "SRVGGNetCompact use only 3x3, stride 1, padding 1"
                )
            node = _Node("conv", [x], dict(weight=weight, bias=bias), layer)
            convs.append(node)
            act = layer.get(9, 0)
            if act == 1:
                node = _Node("act", [node], dict(kind="relu"), layer)
            elif act == 2:
                slope = _numbers(layer, 10, name) or (0.0,)
                node = _Node("act", [node], dict(kind="leakyrelu", slope=slope[0]), layer)
            elif act:
                raise WeightsFileError(f"{name}: layer '{layer.name}' fuses activation type {act}, which these generators do not use")
            out(layer, node)
        elif kind == "ReLU":
            (x,) = inp(layer, 1)
            slope = _number(layer, 0, 0.0, name)
            attrs = dict(kind="leakyrelu", slope=slope) if slope else dict(kind="relu")
            out(layer, _Node("act", [x], attrs, layer))
        elif kind == "PReLU":
            (x,) = inp(layer, 1)
            slopes = reader.raw(positive_param(layer, 0, 1, name, "num_slope"), layer, "slopes")
            out(layer, _Node("act", [x], dict(kind="prelu", slopes=slopes), layer))
        elif kind == "Concat":
            if layer.get(0, 0) not in (0, -3):
                raise WeightsFileError(f"{name}: layer '{layer.name}' concatenates along axis {layer.get(0, 0)}, not channels")
            out(layer, _Node("concat", inp(layer, len(layer.inputs)), {}, layer))
        elif kind in ("Eltwise", "BinaryOp"):
            terms = inp(layer, 2 if kind == "BinaryOp" else len(layer.inputs))
            if kind == "BinaryOp" and (layer.get(0, 0) != 0 or layer.get(1, 0)):
                raise WeightsFileError(f"{name}: layer '{layer.name}' is BinaryOp {layer.get(0, 0)} (only addition of two blobs occurs here)")
            if kind == "Eltwise" and layer.get(0, 1) != 1:
                raise WeightsFileError(f"{name}: layer '{layer.name}' is Eltwise op {layer.get(0, 1)} (only sums occur here)")
            coeffs = _numbers(layer, 1, name) or (1.0,) * len(terms)
            if len(coeffs) != len(terms):
                raise WeightsFileError(f"{name}: layer '{layer.name}' has {len(coeffs)} coefficients for {len(terms)} inputs")
            out(layer, _Node("sum", terms, dict(coeffs=coeffs), layer))
        elif kind == "Interp":
            (x,) = inp(layer, 1)
            mode = _RESIZE_MODES.get(layer.get(0, 0))
            if mode is None or layer.get(3, 0) or layer.get(4, 0) or layer.get(5, 0) or layer.get(6, 0):
                raise WeightsFileError(
                    f"{name}: layer '{layer.name}' is an Interp with a fixed output size, corner "
                    "alignment or unknown mode; these generators resize by constant factors only"
                )
            factors = (_number(layer, 1, 1.0, name), _number(layer, 2, 1.0, name))
            out(layer, _Node("resize", [x], dict(mode=mode, factors=factors), layer))
        elif kind in ("PixelShuffle", "Reorg"):
            (x,) = inp(layer, 1)
            factor = positive_param(layer, 0, 1, name, "factor")
            if layer.get(1, 0) not in (0, 1):
                raise WeightsFileError(f"{name}: layer '{layer.name}' has {kind} mode {layer.get(1, 0)}")
            op = "shuffle" if kind == "PixelShuffle" else "unshuffle"
            out(layer, _Node(op, [x], dict(factor=factor, mode=layer.get(1, 0)), layer))
        else:  # caught by read_ncnn's type check; kept for direct callers
            raise WeightsFileError(f"{name}: unsupported layer type {kind}")
    outputs = [blob for layer in layers for blob in layer.outputs if blob not in consumed]
    if len(outputs) != 1:
        raise WeightsFileError(f"{name}: a generator graph has one output blob, this one has {sorted(outputs)[:6]}")
    reader.finish()
    return blobs[outputs[0]], convs


class _Mismatch(Exception):
    pass


def _expect(node, op, what, **attrs):
    if node.op != op or any(node.attrs.get(k) != v for k, v in attrs.items()):
        found = node.op + (f" {node.attrs.get('kind', '')}" if node.op == "act" else "")
        at = f" (layer '{node.layer.name}')" if node.layer is not None else ""
        raise _Mismatch(f"expected {what}, found {found}{at}")
    return node


def _lrelu_conv(node, what):
    _expect(node, "act", f"LeakyReLU({LRELU_SLOPE}) after {what}")
    if node.attrs.get("kind") != "leakyrelu" or not np.isclose(node.attrs["slope"], LRELU_SLOPE):
        raise _Mismatch(f"expected LeakyReLU({LRELU_SLOPE}) after {what}, found {node.attrs}")
    return _expect(node.inputs[0], "conv", what)


def _scaled_sum(node, what):
    """(residual input, scaled branch) of `x + 0.2 * branch` (coefficients in either order)."""
    _expect(node, "sum", what)
    pairs = sorted(zip(node.attrs["coeffs"], range(2), node.inputs)) if len(node.inputs) == 2 else []
    if not pairs or not (np.isclose(pairs[0][0], RESIDUAL_SCALE) and pairs[1][0] == 1.0):
        raise _Mismatch(f"expected {what} as x + {RESIDUAL_SCALE} * branch, found coefficients {node.attrs['coeffs']}")
    return pairs[1][2], pairs[0][2]


def _same(a, b, what):
    if a is not b:
        raise _Mismatch(f"{what} does not come from the expected blob")


def _dense_block(node, k, what):
    """Check one ResidualDenseBlock ending at `node`; return (block input, its 5 convs)."""
    x, conv5 = _scaled_sum(node, f"{what} output")
    conv5 = _expect(conv5, "conv", f"{what}.conv5")
    cat = _expect(conv5.inputs[0], "concat", f"the concatenation before {what}.conv5")
    if len(cat.inputs) != 5:
        raise _Mismatch(f"{what}.conv5 sees {len(cat.inputs)} concatenated blobs, not 5")
    _same(cat.inputs[0], x, f"{what}'s dense input")
    convs = []
    for j in range(1, 5):
        conv = _lrelu_conv(cat.inputs[j], f"{what}.conv{j}")
        seen = conv.inputs[0]
        if j == 1:
            _same(seen, x, f"{what}.conv1's input")
        else:
            _expect(seen, "concat", f"the concatenation before {what}.conv{j}")
            if len(seen.inputs) != j:
                raise _Mismatch(f"{what}.conv{j} sees {len(seen.inputs)} blobs, not {j}")
            for a, b in zip(seen.inputs, cat.inputs):
                _same(a, b, f"{what}.conv{j}'s dense input")
        convs.append(conv)
    return x, convs + [conv5]


def _match_rrdbnet(output):
    """Names for every conv of an RRDBNet graph ending at `output`, plus the unshuffle node."""
    names = {}
    last = _expect(output, "conv", "conv_last (no activation)")
    hr = _lrelu_conv(last.inputs[0], "conv_hr")
    up2 = _lrelu_conv(hr.inputs[0], "conv_up2")
    x = _expect(up2.inputs[0], "resize", "nearest x2 before conv_up2", mode="nearest", factors=(2.0, 2.0))
    up1 = _lrelu_conv(x.inputs[0], "conv_up1")
    total = _expect(up1.inputs[0], "resize", "nearest x2 before conv_up1", mode="nearest", factors=(2.0, 2.0)).inputs[0]
    _expect(total, "sum", "trunk skip (conv_first + conv_body)")
    if len(total.inputs) != 2 or total.attrs["coeffs"] != (1.0, 1.0):
        raise _Mismatch(f"expected the trunk skip conv_first + conv_body, found {total.attrs['coeffs']}")
    a, b = total.inputs
    if a.op == "conv" and a.inputs[0].op in ("input", "unshuffle"):
        first, body = a, b
    else:
        first, body = b, a
    first = _expect(first, "conv", "conv_first")
    names.update(conv_first=first, conv_body=_expect(body, "conv", "conv_body"), conv_up1=up1,
                 conv_up2=up2, conv_hr=hr, conv_last=last)
    blocks = []
    x = body.inputs[0]
    while x is not first:
        if len(blocks) > 100_000:
            raise _Mismatch("the trunk does not lead back to conv_first")
        block_in, branch = _scaled_sum(x, "an RRDB output")
        convs = []
        for k in (3, 2, 1):
            branch, rdb = _dense_block(branch, k, f"rdb{k}")
            convs = rdb + convs
        _same(branch, block_in, "an RRDB's input")
        blocks.append(convs)
        x = block_in
    if not blocks:
        raise _Mismatch("no RRDB between conv_first and conv_body")
    for i, convs in enumerate(reversed(blocks)):
        for n, conv in enumerate(convs):
            names[f"body.{i}.rdb{n // 5 + 1}.conv{n % 5 + 1}"] = conv
    source = first.inputs[0]
    unshuffle = source if source.op == "unshuffle" else None
    if unshuffle is not None:
        if unshuffle.attrs["factor"] not in (2, 4):
            raise _Mismatch(f"pixel unshuffle by {unshuffle.attrs['factor']} (RRDBNet x2 uses 2, x1 uses 4)")
        source = unshuffle.inputs[0]
    _expect(source, "input", "the input before conv_first")
    return names, unshuffle


def _match_srvgg(output):
    """Names (`body.N`) for an SRVGGNetCompact graph ending at `output`; act_type and upscale."""
    total = _expect(output, "sum", "the final addition of the upsampled input")
    if len(total.inputs) != 2 or total.attrs["coeffs"] != (1.0, 1.0):
        raise _Mismatch(f"expected network output + upsampled input, found coefficients {total.attrs['coeffs']}")
    a, b = total.inputs
    net, base = (a, b) if b.op in ("resize", "input") else (b, a)
    shuffle = None
    if net.op == "shuffle":
        shuffle, net = net, net.inputs[0]
    upscale = shuffle.attrs["factor"] if shuffle else 1
    if base.op == "resize":
        _expect(base, "resize", f"nearest x{upscale} of the input", mode="nearest", factors=(float(upscale),) * 2)
        base = base.inputs[0]
    elif upscale != 1:
        raise _Mismatch(f"the input is added without the nearest x{upscale} upsampling")
    _expect(base, "input", "the input of the skip path")
    convs, acts = [_expect(net, "conv", "the last conv (no activation)")], []
    x = net.inputs[0]
    while x.op != "input":
        act = _expect(x, "act", "an activation between convs")
        conv = _expect(act.inputs[0], "conv", "a conv before the activation")
        acts.insert(0, act)
        convs.insert(0, conv)
        x = conv.inputs[0]
        if len(convs) > 100_000:
            raise _Mismatch("the conv chain does not reach the input")
    _same(x, base, "the first conv's input")
    if len(convs) < 2:
        raise _Mismatch("no hidden conv between the input and the last conv")
    kinds = {(a.attrs["kind"], a.attrs.get("slope")) for a in acts}
    if len(kinds) != 1:
        raise _Mismatch(f"mixed activations {sorted(map(str, kinds))}")
    kind, slope = kinds.pop()
    if kind == "leakyrelu" and not np.isclose(slope, LEAKY_SLOPE):
        raise _Mismatch(f"LeakyReLU slope {slope}; SRVGGNetCompact's is {LEAKY_SLOPE}")
    return convs, acts, kind, shuffle


def _trailing_resize(output):
    """Split off a final fixed-factor bicubic/bilinear resize (ncnn animevideov3 x2/x3)."""
    if output.op != "resize" or output.attrs["mode"] == "nearest":
        return output, None
    fy, fx = output.attrs["factors"]
    if fy != fx:
        raise _Mismatch(f"the output is resized by {fy} x {fx}: not one factor")
    return output.inputs[0], dict(mode=output.attrs["mode"], factor=fy)


def _rrdbnet_model(output, name):
    names, unshuffle = _match_rrdbnet(output)
    state = {}
    for key, conv in names.items():
        weight = conv.attrs["weight"]
        if key == "conv_first" and unshuffle is not None and unshuffle.attrs["mode"] == 1:
            # Reorg mode 1 orders channels as space_to_depth; BasicSR's as pixel_unshuffle.
            f = unshuffle.attrs["factor"]
            weight = weight[:, pixel_unshuffle_permutation(weight.shape[1] // (f * f), f)]
        state[f"{key}.weight"], state[f"{key}.bias"] = weight, conv.attrs["bias"]
    scale = {None: 4, 2: 2, 4: 1}[unshuffle.attrs["factor"] if unshuffle else None]
    config = infer_architecture(state, name, scale=scale)
    _check_shapes(state, _rrdbnet_shapes(**config), name)
    return "RRDBNet", config, state


def _srvgg_model(output, name):
    convs, acts, kind, shuffle = _match_srvgg(output)
    state = {}
    for n, conv in enumerate(convs):
        state[f"body.{2 * n}.weight"], state[f"body.{2 * n}.bias"] = conv.attrs["weight"], conv.attrs["bias"]
    if shuffle is not None and shuffle.attrs["mode"] == 1:
        # PixelShuffle mode 1 reads channels in depth_to_space order; BasicSR's in PyTorch's.
        key = f"body.{2 * len(convs) - 2}"
        r = shuffle.attrs["factor"]
        perm = pixel_unshuffle_permutation(state[f"{key}.weight"].shape[0] // (r * r), r)
        state[f"{key}.weight"], state[f"{key}.bias"] = state[f"{key}.weight"][perm], state[f"{key}.bias"][perm]
    if kind == "prelu":
        for n, act in enumerate(acts):
            state[f"body.{2 * n + 1}.weight"] = act.attrs["slopes"]
    upscale = shuffle.attrs["factor"] if shuffle else 1
    num_out_ch = state[f"body.{2 * len(convs) - 2}.bias"].shape[0] // upscale**2
    config = infer_srvgg_architecture(state, name, act_type=kind, num_out_ch=num_out_ch, upscale=upscale)
    return "SRVGGNetCompact", config, state


def _rrdbnet_shapes(num_in_ch, num_out_ch, scale, num_feat, num_block, num_grow_ch):
    f = {4: 1, 2: 2, 1: 4}[scale]
    shapes = {"conv_first": (num_feat, num_in_ch * f * f)}
    for i in range(num_block):
        for k in (1, 2, 3):
            for j in range(1, 6):
                cout = num_grow_ch if j < 5 else num_feat
                shapes[f"body.{i}.rdb{k}.conv{j}"] = (cout, num_feat + (j - 1) * num_grow_ch)
    for key in ("conv_body", "conv_up1", "conv_up2", "conv_hr"):
        shapes[key] = (num_feat, num_feat)
    shapes["conv_last"] = (num_out_ch, num_feat)
    return shapes


def _check_shapes(state, shapes, name):
    for key, (cout, cin) in shapes.items():
        found = state[f"{key}.weight"].shape
        if found != (cout, cin, 3, 3):
            raise WeightsFileError(f"{name}: {key} has weights {found}, RRDBNet needs {(cout, cin, 3, 3)}")


def parse_ncnn(param_text, weights, name="model.param", bin_name="model.bin"):
    """Turn an ncnn model (the `.param` text and the `.bin` bytes) into an `NcnnModel`.

    Args:
        param_text: the `.param` file's text.
        weights: the `.bin` file's bytes.
        name, bin_name: file names for error messages.

    Returns:
        `NcnnModel(arch, config, state_dict, output_resize, storage)`.

    Raises:
        WeightsFileError: see `read_ncnn`.

    Example: a two-conv SRVGGNetCompact x2 with ReLU fused into its convs, zero weights stored
    as float32 (flag 0) and raw float32 biases:
    >>> param = '''7767517
    ... 8 9
    ... Input        in      0 1 data
    ... Split        split   1 2 data x0 x1
    ... Convolution  conv0   1 1 x0 c0 0=4 1=3 4=1 5=1 6=108 9=1
    ... Convolution  conv1   1 1 c0 c1 0=4 1=3 4=1 5=1 6=144 9=1
    ... Convolution  conv2   1 1 c1 c2 0=12 1=3 4=1 5=1 6=432
    ... PixelShuffle shuffle 1 1 c2 s 0=2
    ... Interp       up      1 1 x1 u 0=1 1=2.0 2=2.0
    ... BinaryOp     add     2 1 s u out
    ... '''
    >>> weights = b"".join(bytes(4) + bytes(4 * n) + bytes(4 * c) for n, c in [(108, 4), (144, 4), (432, 12)])
    >>> model = parse_ncnn(param, weights)
    >>> model.arch, model.config
    ('SRVGGNetCompact', {'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4, 'num_conv': 1, 'upscale': 2, 'act_type': 'relu'})
    >>> model.state_dict["body.4.weight"].shape
    (12, 4, 3, 3)
    """
    layers = parse_param(param_text, name)
    types = sorted({layer.type for layer in layers})
    unknown = [t for t in types if t not in LAYER_TYPES]
    if unknown:
        raise WeightsFileError(
            f"{name}: not an RRDBNet or SRVGGNetCompact graph: has layer types {types} "
            f"({unknown} occur in neither)"
        )
    reader = BlobReader(bytes(weights), bin_name)
    output, _ = _build_graph(layers, reader, name)
    arch = "RRDBNet" if "Concat" in types else "SRVGGNetCompact"
    try:
        output, resize = _trailing_resize(output)
        found = _rrdbnet_model(output, name) if arch == "RRDBNet" else _srvgg_model(output, name)
    except _Mismatch as err:
        raise WeightsFileError(
            f"{name}: not an RRDBNet or SRVGGNetCompact graph: has layer types {types}; read as "
            f"{arch}: {err}"
        ) from None
    arch, config, state = found
    channels = next(layer for layer in layers if layer.type == "Input").get(2, 0)
    if channels and channels != config["num_in_ch"]:
        raise WeightsFileError(f"{name}: the Input layer declares {channels} channels, the first conv reads {config['num_in_ch']}")
    return NcnnModel(arch, config, state, resize, dict(sorted(reader.storage.items())))


def read_ncnn(param_path, bin_path=None):
    """Read an ncnn generator (`.param` + `.bin`) as a canonical BasicSR state dict.

    Args:
        param_path: the `.param` file (text format).
        bin_path: its weights; default: the same path with `.bin` for `.param`.

    Returns:
        `NcnnModel(arch, config, state_dict, output_resize, storage)`: `arch` is `"RRDBNet"` (any
        block count; x4, or x2/x1 with a pixel unshuffle) or `"SRVGGNetCompact"` (x1..x4,
        PReLU, ReLU or LeakyReLU), `config` its constructor arguments, `state_dict` in
        BasicSR's names and PyTorch layout (float32; float16 storage is widened exactly),
        `output_resize` a fixed resize of the output or None, `storage` the weight storage
        kinds found.

    Raises:
        FileNotFoundError: a file is missing.
        WeightsFileError: not an ncnn text .param, a truncated or oversized .bin (naming the
            file and the layer), int8 weights, unknown layer types, or a graph that is neither
            architecture (naming what differs).

    Example (Real-ESRGAN's ncnn x4 anime video model: SRVGGNetCompact, 16 convs, PReLU):
    `arch, config, state, resize, storage = read_ncnn("realesr-animevideov3-x4.param")` gives
    `"SRVGGNetCompact"`, `{..., "num_conv": 16, "upscale": 4, "act_type": "prelu"}`, None,
    `{"float16": 18}`.
    """
    param_path = os.fspath(param_path)
    if bin_path is None:
        root, ext = os.path.splitext(param_path)
        bin_path = (root if ext == ".param" else param_path) + ".bin"
    bin_path = os.fspath(bin_path)
    name, bin_name = os.path.basename(param_path), os.path.basename(bin_path)
    for path in (param_path, bin_path):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"ncnn model file not found: {path}")
    size = os.path.getsize(param_path)
    if size > MAX_PARAM_BYTES:
        raise WeightsFileError(f"{name}: {size} bytes is too large for an ncnn text .param (limit {MAX_PARAM_BYTES})")
    with open(param_path, "rb") as fh:
        raw = fh.read()
    if raw[:4] == MAGIC.to_bytes(4, "little"):
        raise WeightsFileError(f"{name}: a binary ncnn .param (.param.bin); convert it to text with ncnn's ncnn2mem or use the .param")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise WeightsFileError(f"{name}: not a text ncnn .param ({err})") from None
    with open(bin_path, "rb") as fh:
        weights = fh.read()
    return parse_ncnn(text, weights, name, bin_name)
