"""Pixel values: image dtypes and their peaks, float conversion, the one rounding, RGB, padding.

Images are uint8 (peak 255) or uint16 (peak 65535), decided by the dtype and never by the
values; the networks see float32 in [0, 1] (`to_float`). Every float -> integer conversion in
the package is `quantize`: `round(clip(x, 0, 1) * peak)` with round-half-to-even (numpy's
`rint`/`round`, and TensorFlow's `tf.round` in `tf_quantize`: the same rule, so an image
rounded in numpy and in an exported graph has the same bytes).

The `tf_` functions are the TensorFlow twins of the numpy ones, for graphs (SavedModel
signatures, `tf.data`); they take the same arguments and give the same values.
"""

import numpy as np
import tensorflow as tf

IMAGE_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16))
PEAKS = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}
# ITU-R BT.601 luma, as OpenCV's RGB2GRAY (what Real-ESRGAN uses to bring grey and alpha back).
# Not the metrics' Y (`keras_esrgan.metrics.rgb_to_y`: MATLAB's studio-range 16..235 form).
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _numpy_dtype(dtype):
    return np.dtype(getattr(dtype, "as_numpy_dtype", dtype))


def peak(dtype):
    """The value white has in images of `dtype`: 255.0 (uint8), 65535.0 (uint16), 1.0 (float).

    Args:
        dtype: a numpy or TensorFlow dtype, or its name.

    Raises:
        ValueError: any other dtype (int32, bool, ...): not an image dtype.

    Example:
    >>> peak(np.uint8), peak("uint16"), peak(tf.float32)
    (255.0, 65535.0, 1.0)
    """
    dtype = _numpy_dtype(dtype)
    if dtype in PEAKS:
        return PEAKS[dtype]
    if np.issubdtype(dtype, np.floating):
        return 1.0
    raise ValueError(f"{dtype} is not an image dtype: images are uint8, uint16 or float in [0, 1]")


def to_float(image):
    """float32 in [0, 1]: an integer image divided by its dtype's peak.

    Float input is taken as [0, 1] already and returned as float32 (not copied when it is
    float32); integer input gives a new array.

    Example:
    >>> to_float(np.array([0, 51, 255], np.uint8))
    array([0. , 0.2, 1. ], dtype=float32)
    """
    image = np.asarray(image)
    scale = peak(image.dtype)
    if scale == 1.0:
        return image.astype(np.float32, copy=False)
    out = image.astype(np.float32)
    out /= np.float32(scale)
    return out


def quantize(x, dtype=np.uint8, *, in_place=False):
    """Float values nominally in [0, 1] -> integer `dtype`: `round(clip(x, 0, 1) * peak)`.

    The one float -> integer rounding of the package (outputs of the upscaler, of validation,
    of the SavedModel via `tf_quantize`): half to even, as numpy's `rint` and `tf.round`.

    Args:
        x: float array (or tensor, or list), any shape.
        dtype: uint8 (default) or uint16.
        in_place: allow a float32 `x` to be used as scratch space (clipped and scaled in
            place) instead of copying it: for large images whose float copy is not needed after.

    Example:
    >>> quantize(np.array([-0.2, 0.5 / 255, 1.5 / 255, 0.5, 1.2]))        # .5 rounds to even
    array([  0,   0,   2, 128, 255], dtype=uint8)
    >>> quantize(np.array([0.5]), np.uint16)
    array([32768], dtype=uint16)
    """
    dtype = _numpy_dtype(dtype)
    if dtype not in PEAKS:
        raise ValueError(f"quantize: dtype must be uint8 or uint16, got {dtype}")
    x = np.asarray(x, np.float32)
    if in_place and x.flags.writeable:
        np.clip(x, 0.0, 1.0, out=x)
    else:
        x = np.clip(x, 0.0, 1.0)
    x *= np.float32(PEAKS[dtype])
    return np.rint(x, out=x).astype(dtype)


def to_dtype(image, dtype):
    """An integer image on another integer scale: `quantize(to_float(image), dtype)`, exactly.

    uint16 -> uint8 is `round(x / 257)` (65535 / 255 = 257, an odd number, so no value is a
    tie), uint8 -> uint16 is `x * 257`; computed in integers, without a float copy.

    Example:
    >>> to_dtype(np.array([0, 128, 65535], np.uint16), np.uint8), to_dtype(np.array([1], np.uint8), "uint16")
    (array([  0,   0, 255], dtype=uint8), array([257], dtype=uint16))
    """
    image = np.asarray(image)
    dtype = _numpy_dtype(dtype)
    if image.dtype not in PEAKS or dtype not in PEAKS:
        raise ValueError(f"to_dtype: converts between uint8 and uint16, got {image.dtype} -> {dtype}")
    if image.dtype == dtype:
        return image
    if dtype == np.uint8:
        return ((image.astype(np.uint32) + 128) // 257).astype(np.uint8)
    return image.astype(np.uint16) * np.uint16(257)


def as_rgb(image, alpha=False):
    """An `(H, W)`, `(H, W, 1)`, `(H, W, 3)` or `(H, W, 4)` image as RGB (or RGBA).

    Grey becomes three equal channels; alpha is dropped, or kept with `alpha=True` (a grey
    image then stays without one). Any dtype; RGB input is returned as it is.

    Example:
    >>> as_rgb(np.array([[7]], np.uint8)), as_rgb(np.zeros((1, 1, 4), np.uint8)).shape
    (array([[[7, 7, 7]]], dtype=uint8), (1, 1, 3))
    """
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[-1] not in (1, 3, 4):
        raise ValueError(f"as_rgb: expected (H, W) or (H, W, 1|3|4), got shape {image.shape}")
    if image.shape[-1] == 1:
        return np.repeat(image, 3, axis=-1)
    if image.shape[-1] == 4 and not alpha:
        return image[..., :3]
    return image


def luma(rgb):
    """BT.601 luma `0.299 R + 0.587 G + 0.114 B` of float RGB `(..., 3)` -> `(...)` (`LUMA`).

    Example:
    >>> luma(np.array([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]], np.float32))
    array([1.   , 0.299], dtype=float32)
    """
    return np.asarray(rgb) @ LUMA


def pad_to_multiple(x, multiple):
    """Edge-replicate the bottom rows and right columns of `(H, W[, C])` up to multiples of
    `multiple` (a model's `input_multiple`); `x` itself when nothing is missing.

    Example:
    >>> pad_to_multiple(np.array([[1, 2, 3]]), 2)
    array([[1, 2, 3, 3],
           [1, 2, 3, 3]])
    """
    x = np.asarray(x)
    pad_h, pad_w = -x.shape[0] % multiple, -x.shape[1] % multiple
    if not (pad_h or pad_w):
        return x
    return np.pad(x, ((0, pad_h), (0, pad_w)) + ((0, 0),) * (x.ndim - 2), mode="edge")


def tf_to_float(image):
    """`to_float` in TensorFlow: float32 `image / peak(image.dtype)`, for graphs and tf.data."""
    image = tf.convert_to_tensor(image)
    scale = peak(image.dtype)
    image = tf.cast(image, tf.float32)
    return image if scale == 1.0 else image / scale


def tf_quantize(x, dtype=tf.uint8):
    """`quantize` in TensorFlow: `round(clip(x, 0, 1) * peak)`, half to even like numpy.

    `tf.round` rounds half to even as `np.rint` does, so the bytes equal `quantize`'s on the
    same float32 values (tests/test_pixels.py checks the .5 cases).

    Example:
    >>> tf_quantize(tf.constant([0.5 / 255, 1.5 / 255, 2.5 / 255])).numpy()
    array([0, 2, 2], dtype=uint8)
    """
    dtype = tf.as_dtype(dtype)
    scale = peak(dtype)
    if scale == 1.0:
        raise ValueError(f"tf_quantize: dtype must be uint8 or uint16, got {dtype.name}")
    return tf.cast(tf.round(tf.clip_by_value(x, 0.0, 1.0) * scale), dtype)


def tf_pad_to_multiple(x, multiple):
    """`pad_to_multiple` in TensorFlow, for a batch `(B, H, W, C)` of dynamic size: the bottom
    rows and right columns edge-replicated up to multiples of `multiple`."""
    if multiple == 1:
        return x
    h, w = tf.shape(x)[1], tf.shape(x)[2]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    x = tf.concat([x, tf.repeat(x[:, -1:], pad_h, axis=1)], axis=1)
    return tf.concat([x, tf.repeat(x[:, :, -1:], pad_w, axis=2)], axis=2)
