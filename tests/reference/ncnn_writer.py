"""Writes ncnn `.param`/`.bin` files the way ncnn's converters do, from a BasicSR state dict.

Written for the tests from ncnn's file format (`ParamDict::load_param`,
`ModelBinFromDataReader::load`, the layers' `load_param`/`load_model`), independently of
`keras_esrgan.weights.ncnn`: a blob consumed twice goes through a `Split` layer, conv weights
carry a storage flag, biases and PReLU slopes are raw float32. Real ncnn runs these files in
tests/test_ncnn_parity.py, which checks this writer against ncnn itself.
"""

import numpy as np

FLAGS = {"fp32": 0, "fp32_scaled": 0x0002C056, "fp16": 0x01306B47, "int8": 0x000D4B38, "lut8": 1}


def encode(values, storage):
    """A tagged weight blob and the float32 values ncnn reads back from it."""
    values = np.asarray(values, np.float32).reshape(-1)
    flag = FLAGS[storage].to_bytes(4, "little")
    if storage in ("fp32", "fp32_scaled"):
        return flag + values.astype("<f4").tobytes(), values
    if storage == "fp16":
        half = values.astype("<f2")
        data = half.tobytes()
        return flag + data + bytes(-len(data) % 4), half.astype(np.float32)
    if storage == "int8":
        data = np.clip(np.round(values * 100), -127, 127).astype(np.int8).tobytes()
        return flag + data + bytes(-len(data) % 4), None
    # lut8: a 256-entry float32 table, then one uint8 index per value, padded to 4 bytes.
    table = np.linspace(values.min(), values.max(), 256).astype(np.float32)
    index = np.abs(values[:, None] - table[None, :]).argmin(axis=1).astype(np.uint8)
    data = index.tobytes()
    return flag + table.astype("<f4").tobytes() + data + bytes(-len(data) % 4), table[index]


class Graph:
    """Layers over symbolic values; `text()` inserts the Splits ncnn needs."""

    def __init__(self):
        self.ops = []  # [type, name, input value ids, params]
        self.blobs = []  # weight bytes in layer order
        self.count = 0

    def add(self, kind, inputs, params=""):
        self.count += 1
        self.ops.append([kind, f"{kind.lower()}_{self.count}", list(inputs), params, self.count])
        return self.count

    def text(self, output, line_end="\n"):
        uses = {}
        for op in self.ops:
            for v in op[2]:
                uses[v] = uses.get(v, 0) + 1
        kinds = {op[4]: op[0] for op in self.ops}

        def blob(v):
            return "output" if v == output else "data" if kinds[v] == "Input" else f"b{v}"

        lines, handed = [], {}
        blobs = set()
        for kind, name, inputs, params, value in self.ops:
            names = []
            for v in inputs:
                k = handed.get(v, 0)
                handed[v] = k + 1
                names.append(blob(v) if uses[v] == 1 else f"{blob(v)}_splitncnn_{k}")
            top = blob(value)
            lines.append(f"{kind:<16} {name:<16} {len(inputs)} 1 {' '.join(names + [top])} {params}".rstrip())
            blobs.update(names + [top])
            if uses.get(value, 0) > 1:
                outs = [f"{top}_splitncnn_{k}" for k in range(uses[value])]
                lines.append(f"{'Split':<16} {'split_' + str(value):<16} 1 {len(outs)} {top} {' '.join(outs)}")
                blobs.update(outs)
        head = ["7767517", f"{len(lines)} {len(blobs)}"]
        return line_end.join(head + lines) + line_end


class Writer:
    """Emits conv/activation layers and their weights; returns the values ncnn will hold."""

    def __init__(self, storage="fp16", fused=True):
        self.graph, self.storage, self.fused = Graph(), storage, fused
        self.stored = {}

    def conv(self, x, key, state, act=None, slope=None, out_perm=None, in_perm=None):
        weight, bias = state[f"{key}.weight"], state[f"{key}.bias"]
        if in_perm is not None:
            weight = weight[:, in_perm]
        if out_perm is not None:
            weight, bias = weight[out_perm], bias[out_perm]
        blob, read = encode(weight, self.storage)
        self.graph.blobs.append(blob + np.asarray(bias, "<f4").tobytes())
        if read is not None:
            read = read.reshape(weight.shape)
            if in_perm is not None:
                read = read[:, np.argsort(in_perm)]
            if out_perm is not None:
                read = read[np.argsort(out_perm)]
        self.stored[f"{key}.weight"] = read
        self.stored[f"{key}.bias"] = np.asarray(state[f"{key}.bias"], np.float32)  # raw float32
        out, cin = weight.shape[0], weight.shape[1]
        params = f"0={out} 1=3 4=1 5=1 6={out * cin * 9}"
        if act == "relu" and self.fused:
            return self.graph.add("Convolution", [x], params + " 9=1")
        if act == "leaky" and self.fused:
            return self.graph.add("Convolution", [x], params + f" 9=2 -23310=1,{slope:e}")
        y = self.graph.add("Convolution", [x], params)
        if act == "relu":
            return self.graph.add("ReLU", [y])
        if act == "leaky":
            return self.graph.add("ReLU", [y], f"0={slope:e}")
        return y

    def prelu(self, x, key, state):
        slopes = np.asarray(state[f"{key}.weight"], np.float32)
        self.graph.blobs.append(slopes.astype("<f4").tobytes())
        self.stored[f"{key}.weight"] = slopes
        return self.graph.add("PReLU", [x], f"0={slopes.size}")

    def save(self, stem, output, line_end="\n"):
        param, weights = f"{stem}.param", f"{stem}.bin"
        with open(param, "w", newline="") as fh:
            fh.write(self.graph.text(output, line_end))
        with open(weights, "wb") as fh:
            fh.write(b"".join(self.graph.blobs))
        return param, weights


def _space_to_depth_order(channels, f):
    """in_perm: file channel (i*f + j)*C + c holds BasicSR's channel c*f*f + i*f + j."""
    perm = np.empty(channels * f * f, int)
    for c in range(channels):
        for i in range(f):
            for j in range(f):
                perm[(i * f + j) * channels + c] = c * f * f + i * f + j
    return perm


def write_rrdbnet(stem, state, scale=4, storage="fp16", fused=True, reorg_mode=0, line_end="\n"):
    """An ncnn RRDBNet as onnx2ncnn/pnnx lay it out; returns (param, bin, stored state)."""
    w = Writer(storage, fused)
    g = w.graph
    x = g.add("Input", [], "0=0 1=0 2=3")
    f = {4: 1, 2: 2, 1: 4}[scale]
    in_perm = None
    if f > 1:
        x = g.add("Reorg", [x], f"0={f} 1={reorg_mode}")
        if reorg_mode == 1:
            in_perm = _space_to_depth_order(state["conv_first.weight"].shape[1] // (f * f), f)
    feat = w.conv(x, "conv_first", state, in_perm=in_perm)
    num_block = len({k.split(".")[1] for k in state if k.startswith("body.")})
    body = feat
    for i in range(num_block):
        block_in = body
        for k in (1, 2, 3):
            rdb_in, feats = body, [body]
            for j in range(1, 5):
                cat = feats[0] if j == 1 else g.add("Concat", feats, "0=0")
                feats = feats + [w.conv(cat, f"body.{i}.rdb{k}.conv{j}", state, "leaky", 0.2)]
            out = w.conv(g.add("Concat", feats, "0=0"), f"body.{i}.rdb{k}.conv5", state)
            body = g.add("Eltwise", [out, rdb_in], "0=1 -23301=2,2.000000e-01,1.000000e+00")
        body = g.add("Eltwise", [body, block_in], "0=1 -23301=2,2.000000e-01,1.000000e+00")
    x = g.add("BinaryOp", [feat, w.conv(body, "conv_body", state)], "0=0")
    x = w.conv(g.add("Interp", [x], "0=1 1=2.000000e+00 2=2.000000e+00"), "conv_up1", state, "leaky", 0.2)
    x = w.conv(g.add("Interp", [x], "0=1 1=2.000000e+00 2=2.000000e+00"), "conv_up2", state, "leaky", 0.2)
    x = w.conv(w.conv(x, "conv_hr", state, "leaky", 0.2), "conv_last", state)
    param, weights = w.save(stem, x, line_end)
    return param, weights, w.stored


def write_srvgg(stem, state, upscale, act_type="prelu", storage="fp16", fused=True, shuffle_mode=0,
                output_resize=None, line_end="\n"):
    """An ncnn SRVGGNetCompact as Real-ESRGAN's release lays it out; returns (param, bin, stored)."""
    w = Writer(storage, fused)
    g = w.graph
    data = g.add("Input", [])
    last = max(int(k.split(".")[1]) for k in state)
    x = data
    for i in range(0, last, 2):
        if act_type == "prelu":
            x = w.prelu(w.conv(x, f"body.{i}", state), f"body.{i + 1}", state)
        else:
            x = w.conv(x, f"body.{i}", state, "relu" if act_type == "relu" else "leaky", 0.1)
    out_perm = None
    if shuffle_mode == 1:
        c = state[f"body.{last}.weight"].shape[0] // upscale**2
        out_perm = _space_to_depth_order(c, upscale)
    x = w.conv(x, f"body.{last}", state, out_perm=out_perm)
    if upscale > 1:
        x = g.add("PixelShuffle", [x], f"0={upscale} 1={shuffle_mode}")
        base = g.add("Interp", [data], f"0=1 1={float(upscale):e} 2={float(upscale):e}")
    else:
        base = data
    x = g.add("BinaryOp", [x, base], "0=0")
    if output_resize is not None:
        x = g.add("Interp", [x], f"0=3 1={output_resize:e} 2={output_resize:e}")
    param, weights = w.save(stem, x, line_end)
    return param, weights, w.stored
