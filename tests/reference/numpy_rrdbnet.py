"""A plain-numpy RRDBNet forward pass (float64), written for the tests: no TF, no torch.

It reads a canonical (BasicSR-named, PyTorch-layout) state dict and follows BasicSR's forward
literally, so it checks the Keras model's wiring on random configurations in CI.
"""

import numpy as np


def conv3x3(x, weight, bias):
    """NHWC input, PyTorch `[out, in, 3, 3]` weight, padding 1, stride 1."""
    b, h, w, _ = x.shape
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros((b, h, w, weight.shape[0]))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("bhwc,oc->bhwo", xp[:, dy : dy + h, dx : dx + w], weight[:, :, dy, dx])
    return out + bias


def lrelu(x):
    return np.where(x >= 0, x, 0.2 * x)


def nearest_x2(x):
    return x.repeat(2, axis=1).repeat(2, axis=2)


def pixel_unshuffle(x, f):
    """PyTorch's definition on NCHW, applied through a transpose from NHWC."""
    nchw = x.transpose(0, 3, 1, 2)
    b, c, hh, ww = nchw.shape
    y = nchw.reshape(b, c, hh // f, f, ww // f, f).transpose(0, 1, 3, 5, 2, 4)
    return y.reshape(b, c * f * f, hh // f, ww // f).transpose(0, 2, 3, 1)


def rrdbnet_forward(state, x, scale=4):
    """Forward pass of RRDBNet with a canonical state dict on an NHWC float batch."""
    conv = lambda name, t: conv3x3(t, state[f"{name}.weight"], state[f"{name}.bias"])  # noqa: E731
    if scale < 4:
        x = pixel_unshuffle(x, {2: 2, 1: 4}[scale])
    feat = conv("conv_first", x.astype(np.float64))
    num_block = len({k.split(".")[1] for k in state if k.startswith("body.")})
    body = feat
    for i in range(num_block):
        block_in = body
        for k in (1, 2, 3):
            rdb_in, feats = body, [body]
            for j in range(1, 6):
                out = conv(f"body.{i}.rdb{k}.conv{j}", np.concatenate(feats, axis=-1))
                if j < 5:
                    feats.append(lrelu(out))
            body = rdb_in + 0.2 * out
        body = block_in + 0.2 * body
    feat = feat + conv("conv_body", body)
    feat = lrelu(conv("conv_up1", nearest_x2(feat)))
    feat = lrelu(conv("conv_up2", nearest_x2(feat)))
    return conv("conv_last", lrelu(conv("conv_hr", feat)))
