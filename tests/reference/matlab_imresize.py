"""MATLAB's `imresize(A, scale, 'bicubic')` in plain numpy (float64), written for the tests.

Follows `toolbox/images/images/imresize.m` step by step, with loops and MATLAB's 1-based
indices kept visible, and shares no code with `keras_esrgan.data.degrade`:

- `contributions()`: output pixel `x` (1-based) sits at `u = x / scale + 0.5 * (1 - 1 / scale)`
  in input coordinates; `P = ceil(kernel_width) + 2` taps start at `floor(u - kernel_width / 2)`;
  when shrinking with antialiasing the kernel is `h(x) = scale * cubic(scale * x)` and its width
  `4 / scale`; rows of weights are normalised to sum 1; out-of-range indices are mirrored
  through `aux = [1:n, n:-1:1]` (symmetric padding); all-zero weight columns are dropped.
- Dimension order: `[~, order] = sort(scale)`, a stable sort, so with one scalar scale the rows
  (dimension 1) are resized first, then the columns.
- Classes: the output of each one-dimensional pass (`imresizemex`) has the class of its input,
  so uint8/uint16 images are rounded (half away from zero) and saturated after EACH pass;
  double images are never rounded or clipped.
- Output size: `ceil(scale * size)` per dimension.
"""

import math

import numpy as np


def cubic(x):
    """MATLAB's `cubic` (Keys, a = -0.5)."""
    absx = np.abs(x)
    absx2 = absx**2
    absx3 = absx**3
    return (1.5 * absx3 - 2.5 * absx2 + 1) * (absx <= 1) + (
        -0.5 * absx3 + 2.5 * absx2 - 4 * absx + 2
    ) * ((absx > 1) & (absx <= 2))


def contributions(in_length, out_length, scale, antialiasing=True):
    """(weights, indices) with MATLAB's 1-based indices, shapes `(out_length, P')`."""
    kernel_width = 4.0
    if scale < 1 and antialiasing:
        kernel = lambda x: scale * cubic(scale * x)  # noqa: E731
        kernel_width = kernel_width / scale
    else:
        kernel = cubic
    x = np.arange(1, out_length + 1, dtype=np.float64)[:, None]
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    P = int(math.ceil(kernel_width)) + 2
    indices = left + np.arange(P)[None, :]  # 1-based, may fall outside 1..in_length
    weights = kernel(u - indices)
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
    indices = aux[np.mod(indices.astype(np.int64) - 1, len(aux))]
    keep = np.any(weights != 0, axis=0)
    return weights[:, keep], indices[:, keep]


def _matlab_round(x):
    return np.floor(x + 0.5)  # values here are >= 0 after saturation: half away from zero


def resize_along_dim(image, dim, weights, indices):
    """One `imresizemex` pass over dimension `dim` (0 rows, 1 columns) of an (H, W, C) array."""
    moved = np.moveaxis(image.astype(np.float64), dim, 0)
    out = np.zeros((weights.shape[0],) + moved.shape[1:])
    for i in range(weights.shape[0]):
        for k in range(weights.shape[1]):
            out[i] += weights[i, k] * moved[indices[i, k] - 1]
    out = np.moveaxis(out, 0, dim)
    if image.dtype in (np.uint8, np.uint16):
        top = np.iinfo(image.dtype).max
        return _matlab_round(np.clip(out, 0, top)).astype(image.dtype)
    return out


def imresize(image, scale, antialiasing=True):
    """`imresize(image, scale, 'bicubic')`: uint8/uint16 in -> same out, float in -> float64 out.

    Args:
        image: `(H, W)` or `(H, W, C)`, uint8, uint16 or float.
        scale: scalar factor (0.25 shrinks x4).
    """
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16):
        image = image.astype(np.float64)
    squeeze = image.ndim == 2
    if squeeze:
        image = image[:, :, None]
    out = image
    for dim in (0, 1):  # sort([scale, scale]) is stable: rows first
        in_length = image.shape[dim]
        out_length = int(math.ceil(scale * in_length))
        weights, indices = contributions(in_length, out_length, scale, antialiasing)
        out = resize_along_dim(out, dim, weights, indices)
    return out[:, :, 0] if squeeze else out
