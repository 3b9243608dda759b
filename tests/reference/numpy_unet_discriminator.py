"""BasicSR's `UNetDiscriminatorSN.forward` in float64 numpy, on a PyTorch-layout state dict.

Written for the tests from Real-ESRGAN's / BasicSR's module and PyTorch's definitions, sharing
no code with keras_esrgan:

- `torch.nn.utils.spectral_norm` (convs 1-8): `W = weight_orig / sigma`, `sigma = u . (W_mat v)`
  with `W_mat = weight_orig.reshape(out, -1)`; in training mode one power iteration from the
  stored `u` comes first (`v = normalize(W_mat^T u)`, `u = normalize(W_mat v)`), in eval mode
  the stored `u` and `v` are used;
- `nn.Conv2d(k, stride, padding)` cross-correlation with zero padding;
- `F.interpolate(scale_factor=2, mode="bilinear", align_corners=False)`: source coordinate
  `(dst + 0.5) / 2 - 0.5`, clamped at 0, neighbours clamped at the last pixel;
- `F.leaky_relu(negative_slope=0.2)`; skip connections x4 + x2, x5 + x1, x6 + x0.

Inputs and outputs are NHWC (the test's convention); weights stay `[out, in, kh, kw]`.
"""

import numpy as np

# (stride, padding) of each conv, from the module's constructor.
GEOMETRY = dict(conv0=(1, 1), conv1=(2, 1), conv2=(2, 1), conv3=(2, 1), conv4=(1, 1), conv5=(1, 1),
                conv6=(1, 1), conv7=(1, 1), conv8=(1, 1), conv9=(1, 1))


def conv2d(x, weight, bias, stride, padding):
    """NHWC `x`, PyTorch `[out, in, kh, kw]` weight, zero padding, cross-correlation."""
    b, h, w, _ = x.shape
    out_ch, _, kh, kw = weight.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    oh = (h + 2 * padding - kh) // stride + 1
    ow = (w + 2 * padding - kw) // stride + 1
    out = np.zeros((b, oh, ow, out_ch))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i : i + stride * oh : stride, j : j + stride * ow : stride, :]
            out += patch @ weight[:, :, i, j].T
    return out if bias is None else out + bias


def bilinear_x2(x):
    """PyTorch bilinear x2 upsampling, align_corners=False."""

    def axis_weights(n):
        src = np.maximum((np.arange(2 * n) + 0.5) / 2 - 0.5, 0.0)
        low = np.floor(src).astype(int)
        high = np.minimum(low + 1, n - 1)
        return low, high, src - low

    lo, hi, t = axis_weights(x.shape[1])
    x = x[:, lo] * (1 - t)[None, :, None, None] + x[:, hi] * t[None, :, None, None]
    lo, hi, t = axis_weights(x.shape[2])
    return x[:, :, lo] * (1 - t)[None, None, :, None] + x[:, :, hi] * t[None, None, :, None]


def spectral_weight(state, name, training):
    """(weight used by the conv, the `u` the module holds afterwards)."""
    weight = state[f"{name}.weight_orig"].astype(np.float64)
    u = state[f"{name}.weight_u"].astype(np.float64)
    v = state[f"{name}.weight_v"].astype(np.float64)
    matrix = weight.reshape(weight.shape[0], -1)
    if training:
        v = matrix.T @ u
        v = v / max(np.linalg.norm(v), 1e-12)
        u = matrix @ v
        u = u / max(np.linalg.norm(u), 1e-12)
    sigma = u @ matrix @ v
    return weight / sigma, u


def forward(state, x, training=False, skip_connection=True):
    """`(logits (B, H, W, 1), {conv: u after the call})` of the PyTorch module for NHWC `x`."""

    def lrelu(t):
        return np.where(t >= 0, t, 0.2 * t)

    us = {}

    def conv(name, t):
        stride, padding = GEOMETRY[name]
        if f"{name}.weight_orig" in state:
            weight, us[name] = spectral_weight(state, name, training)
            bias = None
        else:
            weight, bias = state[f"{name}.weight"].astype(np.float64), state[f"{name}.bias"].astype(np.float64)
        return conv2d(t, weight, bias, stride, padding)

    x = x.astype(np.float64)
    x0 = lrelu(conv("conv0", x))
    x1 = lrelu(conv("conv1", x0))
    x2 = lrelu(conv("conv2", x1))
    x3 = lrelu(conv("conv3", x2))
    x4 = lrelu(conv("conv4", bilinear_x2(x3)))
    if skip_connection:
        x4 = x4 + x2
    x5 = lrelu(conv("conv5", bilinear_x2(x4)))
    if skip_connection:
        x5 = x5 + x1
    x6 = lrelu(conv("conv6", bilinear_x2(x5)))
    if skip_connection:
        x6 = x6 + x0
    out = lrelu(conv("conv7", x6))
    out = lrelu(conv("conv8", out))
    return conv("conv9", out), us
