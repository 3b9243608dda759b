"""MATLAB-compatible bicubic resizing in TensorFlow ops: how benchmark LR images are made.

MATLAB's `imresize(img, 1/4, 'bicubic')` (the degradation behind DIV2K's `bicubic_x4`, Set5 and
Set14 LR images, and every published PSNR table) uses Keys' cubic kernel with a = -0.5, widened by
1/scale when shrinking (antialiasing), and mirrors the image at its borders. `tf.image.resize`
with `method="bicubic", antialias=True` uses a = -0.5 as well but treats borders and kernel
support differently, so its LR images, and PSNRs measured on them, differ slightly. MATLAB also
keeps the class of its input between the row and the column pass: a uint8 image is rounded after
each pass, and `imresize` here does the same for uint8/uint16 input (bit-exact with a numpy
transcription of MATLAB's imresize.m on Set5/Set14, see tests/test_degrade.py).

Everything here is TF ops with dynamic sizes, so it runs inside `tf.data` pipelines and in
graph mode as well as eagerly on numpy arrays.
"""

import math

import numpy as np
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
        image: tensor or array `(H, W, C)` or `(B, H, W, C)`. Float input is resized as MATLAB
            resizes doubles: any range, never rounded or clipped. uint8/uint16 input follows
            MATLAB's integer arithmetic: each one-dimensional pass is computed in float64,
            then rounded and saturated to the integer range before the next pass (MATLAB keeps
            the class of its input between passes; rounding only at the end differs by up to
            2 levels on 10% of pixels).
        scale: Python float (e.g. 0.25 to downscale x4, 4 to upscale); output size is
            `ceil(H * scale) x ceil(W * scale)`, as in MATLAB.
        antialias: MATLAB's antialiasing when shrinking.

    Returns:
        float32 tensor (float64 for float64 input), same rank; rows are resized first, then
        columns (MATLAB's order for equal scales). For integer input the values are the
        integers MATLAB would return (0..255 or 0..65535), as float32.

    Example:
    >>> hr = np.zeros((256, 256, 3), np.uint8)
    >>> lr = imresize(hr.astype("float32") / 255, 0.25)
    >>> lr.shape
    TensorShape([64, 64, 3])
    """
    image = tf.convert_to_tensor(image)
    rank = len(image.shape)
    if rank not in (3, 4):
        raise ValueError(f"imresize: expected (H, W, C) or (B, H, W, C), got shape {image.shape}")
    integer_max = None
    if image.dtype in (tf.uint8, tf.uint16):
        integer_max = float(image.dtype.max)
        image = tf.cast(image, tf.float64)
    elif image.dtype != tf.float64:
        image = tf.cast(image, tf.float32)
    h_axis = rank - 3
    shape = tf.shape(image)
    out_h = tf.cast(tf.math.ceil(tf.cast(shape[h_axis], tf.float64) * scale), tf.int32)
    out_w = tf.cast(tf.math.ceil(tf.cast(shape[h_axis + 1], tf.float64) * scale), tf.int32)
    for axis, length in ((h_axis, out_h), (h_axis + 1, out_w)):
        image = _resize_axis(image, axis, length, scale, antialias)
        if integer_max is not None:
            # MATLAB's rounding: half away from zero (values are >= 0 after saturation).
            image = tf.floor(tf.clip_by_value(image, 0.0, integer_max) + 0.5)
    return tf.cast(image, tf.float32) if integer_max is not None else image


def matlab_bicubic_resize(image, scale):
    """MATLAB `imresize(image, scale, 'bicubic')` of a uint8/uint16 numpy image, same dtype back.

    What benchmark tables use for both directions: the LR input (`scale=1/4`) and the bicubic
    baseline (`scale=4`). Integer arithmetic as MATLAB's (rounded after each pass, see
    `imresize`), so the result equals MATLAB's bit for bit.

    Args:
        image: numpy uint8 or uint16 `(H, W, C)`.
        scale: Python float, output / input size (`ceil(H * scale) x ceil(W * scale)`).

    Returns:
        numpy array of `image`'s dtype.

    Example:
    >>> hr = np.full((512, 512, 3), 200, np.uint8)
    >>> lr = matlab_bicubic_resize(hr, 1 / 4)
    >>> bicubic = matlab_bicubic_resize(lr, 4)        # the table's "bicubic" row
    >>> lr.shape, bicubic.shape, bicubic.dtype, int(bicubic.min()), int(bicubic.max())
    ((128, 128, 3), (512, 512, 3), dtype('uint8'), 200, 200)
    """
    image = np.asarray(image)
    if image.dtype not in (np.uint8, np.uint16) or image.ndim != 3:
        raise ValueError(
            f"matlab_bicubic_resize: need a uint8/uint16 (H, W, C) array, got {image.dtype} {image.shape}"
        )
    # imresize returns MATLAB's integer results of integer input as float32 values.
    return imresize(image, float(scale)).numpy().astype(image.dtype)


def bicubic_downsample(hr, scale=4, method="matlab"):
    """Make the LR image of an HR image the way benchmark LR images were made.

    Args:
        hr: uint8 or uint16 `(H, W, C)` / `(B, H, W, C)`, or float in [0, 1]; H and W
            multiples of `scale` (mod-crop first).
        scale: int downscaling factor.
        method: `"matlab"` (MATLAB `imresize` bicubic with antialiasing: the benchmark protocol;
            integer input follows MATLAB's integer arithmetic, see `imresize`) or `"tf"`
            (`tf.image.resize(..., "bicubic", antialias=True)`: similar, not identical: on Set5
            x4 it differs from MATLAB by up to 16 levels in the outer LR rows/columns, where
            borders are handled differently, and by 1-2 levels on about 10% of the other
            pixels, as it rounds only once).

    Returns:
        float32 LR in [0, 1] on the levels of the input's bit depth (65536 for uint16, 256
        otherwise), as if saved as a PNG of that depth. Rounding is half away from zero, as
        MATLAB's.

    Example:
    >>> from keras_esrgan.data.synthetic import synthetic_image
    >>> lr = bicubic_downsample(synthetic_image(512, seed=0))
    >>> lr.shape, lr.dtype
    (TensorShape([128, 128, 3]), tf.float32)
    """
    if method not in ("matlab", "tf"):
        raise ValueError(f"bicubic_downsample: method must be 'matlab' or 'tf', got {method!r}")
    hr = tf.convert_to_tensor(hr)
    integer = hr.dtype in (tf.uint8, tf.uint16)
    levels = float(hr.dtype.max) if integer else 255.0
    if method == "matlab" and integer:
        return imresize(hr, 1.0 / scale) / levels  # already MATLAB's rounded integers
    x = tf.cast(hr, tf.float32) / levels if integer else tf.cast(hr, tf.float32)
    if method == "matlab":
        lr = imresize(x, 1.0 / scale)
    else:
        lr = tf.image.resize(x, tf.shape(x)[-3:-1] // scale, method="bicubic", antialias=True)
    return tf.floor(tf.clip_by_value(lr, 0.0, 1.0) * levels + 0.5) / levels
