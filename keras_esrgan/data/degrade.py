"""MATLAB-compatible bicubic resizing in TensorFlow ops: how benchmark LR images are made.

MATLAB's `imresize(img, 1/4, 'bicubic')` (the degradation behind DIV2K's `bicubic_x4`, Set5 and
Set14 LR images, and every published PSNR table) uses Keys' cubic kernel with a = -0.5, widened by
1/scale when shrinking (antialiasing), and mirrors the image at its borders. `tf.image.resize`
with `method="bicubic", antialias=True` uses a = -0.5 as well but treats borders and kernel
support differently, so its LR images, and PSNRs measured on them, differ slightly.

Everything here is TF ops with dynamic sizes, so it runs inside `tf.data` pipelines and in
graph mode as well as eagerly on numpy arrays.
"""

import math

import tensorflow as tf


def cubic_kernel(x):
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's `cubic`), elementwise."""
    ax = tf.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = 1.5 * ax3 - 2.5 * ax2 + 1.0
    far = -0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0
    return tf.where(ax <= 1.0, near, tf.where(ax <= 2.0, far, tf.zeros_like(ax)))


def contributions(in_length, out_length, scale, antialias=True):
    """Source indices and weights of MATLAB's `imresize` along one axis.

    Args:
        in_length: int or scalar int tensor, input length.
        out_length: int or scalar int tensor, output length.
        scale: Python float, output / input.
        antialias: widen the kernel by 1/scale when shrinking (MATLAB's default).

    Returns:
        `(indices, weights)`: int32 `(out_length, P)` zero-based source positions, already
        mirrored at the borders, and float64 `(out_length, P)` weights summing to 1 per row.
    """
    kernel_width = 4.0
    shrink = scale < 1 and antialias
    if shrink:
        kernel_width /= scale
    taps = int(math.ceil(kernel_width)) + 2
    x = tf.range(1, tf.cast(out_length, tf.int32) + 1, dtype=tf.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)  # output pixel centre in input coordinates (1-based)
    left = tf.floor(u - kernel_width / 2.0)
    idx = left[:, None] + tf.range(taps, dtype=tf.float64)[None, :]
    dist = u[:, None] - idx
    weights = scale * cubic_kernel(dist * scale) if shrink else cubic_kernel(dist)
    weights = weights / tf.reduce_sum(weights, axis=1, keepdims=True)
    # MATLAB mirrors: index sequence 1..n, n..1, repeating (symmetric padding).
    n = tf.cast(in_length, tf.int32)
    period = 2 * n
    zero_based = tf.math.floormod(tf.cast(idx, tf.int32) - 1, period)
    indices = tf.where(zero_based < n, zero_based, period - 1 - zero_based)
    return indices, weights


def _resize_axis(image, axis, out_length, scale, antialias):
    in_length = tf.shape(image)[axis]
    indices, weights = contributions(in_length, out_length, scale, antialias)
    gathered = tf.gather(image, indices, axis=axis)  # axis becomes (out_length, taps)
    shape = [1] * (len(image.shape) + 1)
    shape[axis], shape[axis + 1] = -1, weights.shape[1]
    weights = tf.reshape(tf.cast(weights, image.dtype), shape)
    return tf.reduce_sum(gathered * weights, axis=axis + 1)


def imresize(image, scale, antialias=True):
    """Resize like MATLAB's `imresize(image, scale, 'bicubic')`.

    Args:
        image: float tensor or array `(H, W, C)` or `(B, H, W, C)`, any range (not clipped).
        scale: Python float (e.g. 0.25 to downscale x4, 4 to upscale); output size is
            `ceil(H * scale) x ceil(W * scale)`, as in MATLAB.
        antialias: MATLAB's antialiasing when shrinking.

    Returns:
        float tensor (float32 unless the input is float64), same rank; rows are resized
        first, then columns (MATLAB's order for equal scales). No rounding: see
        `bicubic_downsample` for uint8-faithful LR images.

    Example:
    >>> lr = imresize(hr.astype("float32") / 255, 0.25)    # hr: (256, 256, 3) uint8
    >>> lr.shape
    TensorShape([64, 64, 3])
    """
    image = tf.convert_to_tensor(image)
    if not image.dtype.is_floating:
        image = tf.cast(image, tf.float32)
    elif image.dtype != tf.float64:
        image = tf.cast(image, tf.float32)
    rank = len(image.shape)
    if rank not in (3, 4):
        raise ValueError(f"imresize: expected (H, W, C) or (B, H, W, C), got shape {image.shape}")
    h_axis = rank - 3
    shape = tf.shape(image)
    out_h = tf.cast(tf.math.ceil(tf.cast(shape[h_axis], tf.float64) * scale), tf.int32)
    out_w = tf.cast(tf.math.ceil(tf.cast(shape[h_axis + 1], tf.float64) * scale), tf.int32)
    image = _resize_axis(image, h_axis, out_h, scale, antialias)
    return _resize_axis(image, h_axis + 1, out_w, scale, antialias)


def bicubic_downsample(hr, scale=4, method="matlab"):
    """Make the LR image of an HR image the way benchmark LR images were made.

    Args:
        hr: uint8 `(H, W, C)` / `(B, H, W, C)`, or float in [0, 1]; H and W multiples of
            `scale` (mod-crop first).
        scale: int downscaling factor.
        method: `"matlab"` (MATLAB `imresize` bicubic with antialiasing: the benchmark protocol)
            or `"tf"` (`tf.image.resize(..., "bicubic", antialias=True)`: similar, not identical).

    Returns:
        float32 LR in [0, 1], rounded to the nearest of 256 levels, as if saved as 8-bit PNG.

    Example:
    >>> lr = bicubic_downsample(read_image("../shared/data/Set5/baby.png"))   # (128, 128, 3)
    """
    hr = tf.convert_to_tensor(hr)
    hr = tf.cast(hr, tf.float32) / 255.0 if hr.dtype == tf.uint8 else tf.cast(hr, tf.float32)
    if method == "matlab":
        lr = imresize(hr, 1.0 / scale)
    elif method == "tf":
        size = tf.shape(hr)[-3:-1] // scale
        lr = tf.image.resize(hr, size, method="bicubic", antialias=True)
    else:
        raise ValueError(f"bicubic_downsample: method must be 'matlab' or 'tf', got {method!r}")
    return tf.round(tf.clip_by_value(lr, 0.0, 1.0) * 255.0) / 255.0
