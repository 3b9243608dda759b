"""A plain-numpy SRVGGNetCompact forward pass (float64) with PyTorch semantics: no TF, no torch.

It follows BasicSR's `srvgg_arch.py` on NCHW arrays: `nn.Conv2d(3, 1, 1)`, `nn.PReLU(num_feat)`,
`nn.PixelShuffle(r)` as PyTorch defines it (input channel `c*r*r + i*r + j` -> output channel c,
row offset i, column offset j) and `F.interpolate(mode="nearest")` (source index
`floor(dst * in / out)`), so it checks the Keras model's channel permutation independently.
"""

import numpy as np


def conv2d_nchw(x, weight, bias):
    """`nn.Conv2d(k, stride 1, padding k // 2)` on NCHW, weight `[out, in, k, k]`."""
    k = weight.shape[-1]
    p = k // 2
    b, _, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    out = np.zeros((b, weight.shape[0], h, w))
    for dy in range(k):
        for dx in range(k):
            out += np.einsum("bchw,oc->bohw", xp[:, :, dy : dy + h, dx : dx + w], weight[:, :, dy, dx])
    return out + bias[None, :, None, None]


def pixel_shuffle_nchw(x, r):
    """PyTorch `PixelShuffle(r)`: (B, C*r*r, H, W) -> (B, C, H*r, W*r)."""
    b, crr, h, w = x.shape
    c = crr // (r * r)
    return x.reshape(b, c, r, r, h, w).transpose(0, 1, 4, 2, 5, 3).reshape(b, c, h * r, w * r)


def nearest_nchw(x, factor):
    """PyTorch `F.interpolate(scale_factor=factor, mode="nearest")`."""
    _, _, h, w = x.shape
    rows = np.floor(np.arange(h * factor) * (h / (h * factor))).astype(int)
    cols = np.floor(np.arange(w * factor) * (w / (w * factor))).astype(int)
    return x[:, :, rows][:, :, :, cols]


def activation(x, act_type, slope=None):
    if act_type == "relu":
        return np.maximum(x, 0)
    if act_type == "leakyrelu":
        return np.where(x >= 0, x, 0.1 * x)
    return np.where(x >= 0, x, slope[None, :, None, None] * x)  # PReLU, one slope per channel


def srvgg_forward(state, x, upscale, act_type="prelu"):
    """SRVGGNetCompact on an NHWC float batch with a BasicSR state dict; returns NHWC float64."""
    out = x.astype(np.float64).transpose(0, 3, 1, 2)
    base = nearest_nchw(out, upscale)
    last = max(int(k.split(".")[1]) for k in state)
    for i in range(0, last + 1, 2):
        out = conv2d_nchw(out, state[f"body.{i}.weight"], state[f"body.{i}.bias"])
        if i < last:
            out = activation(out, act_type, state.get(f"body.{i + 1}.weight"))
    out = pixel_shuffle_nchw(out, upscale) + base
    return out.transpose(0, 2, 3, 1)


def random_srvgg_state(rng, num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=4, act_type="prelu"):
    """A BasicSR-layout state dict with random weights, biases and slopes (float32)."""
    state = {}
    shapes = [(num_feat, num_in_ch)] + [(num_feat, num_feat)] * num_conv
    shapes.append((num_out_ch * upscale * upscale, num_feat))
    for n, (cout, cin) in enumerate(shapes):
        state[f"body.{2 * n}.weight"] = rng.normal(0, 0.3 / np.sqrt(cin), (cout, cin, 3, 3)).astype("float32")
        state[f"body.{2 * n}.bias"] = rng.normal(0, 0.05, cout).astype("float32")
        if act_type == "prelu" and n < len(shapes) - 1:
            state[f"body.{2 * n + 1}.weight"] = rng.uniform(-0.2, 0.5, num_feat).astype("float32")
    return state
