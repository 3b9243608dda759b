"""Input checks shared by the metrics: what an image may be, its peak value, border cropping.

The metrics take numpy-style images as the field's evaluation scripts do (BasicSR, MATLAB):
uint8 (peak 255), uint16 (peak 65535), or float with an explicit `data_range`, because a float
array does not say whether it holds [0, 1] or [0, 255] values and guessing silently changes PSNR
by 48 dB.
"""

import numbers

import numpy as np

from keras_esrgan.pixels import PEAKS


def as_image(img, name, caller):
    """`img` as an array of shape (H, W) or (H, W, 1|3), with a clear error otherwise."""
    try:
        array = np.asarray(img)
    except Exception as err:  # ragged lists and the like
        raise ValueError(f"{caller}: {name} is not an image array ({err})") from None
    if array.ndim not in (2, 3):
        raise ValueError(
            f"{caller}: {name} must be (H, W) or (H, W, C), got shape {array.shape}"
        )
    if array.ndim == 3 and array.shape[2] not in (1, 3):
        hint = " (drop the alpha channel first: img[..., :3])" if array.shape[2] == 4 else ""
        raise ValueError(
            f"{caller}: {name} must have 1 or 3 channels, got shape {array.shape}{hint}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{caller}: {name} is empty, shape {array.shape}")
    if array.dtype not in PEAKS and not np.issubdtype(array.dtype, np.floating):
        raise ValueError(
            f"{caller}: {name} has dtype {array.dtype}; use uint8, uint16, or float with "
            "data_range="
        )
    return array


def peak_value(array, data_range, caller):
    """The peak value L (255, 65535, or the float `data_range`), checked against the dtype."""
    dtype_peak = PEAKS.get(array.dtype)
    if dtype_peak is not None:
        if data_range is not None and float(data_range) != dtype_peak:
            raise ValueError(
                f"{caller}: {array.dtype} images have data_range {dtype_peak:g}, "
                f"got data_range={data_range}"
            )
        return dtype_peak
    if data_range is None:
        raise ValueError(
            f"{caller}: float ({array.dtype}) input needs data_range= (1.0 for [0, 1] images, "
            "255.0 for [0, 255]); it cannot be guessed from the values"
        )
    if not isinstance(data_range, numbers.Real) or not np.isfinite(data_range) or data_range <= 0:
        raise ValueError(f"{caller}: data_range must be a positive number, got {data_range!r}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{caller}: float input contains NaN or inf")
    return float(data_range)


def check_crop_border(crop_border, shape, caller, min_size=1):
    """Validate `crop_border` for an image of `shape`, leaving at least `min_size` pixels."""
    if isinstance(crop_border, bool) or not isinstance(crop_border, numbers.Integral):
        raise ValueError(f"{caller}: crop_border must be an int, got {crop_border!r}")
    if crop_border < 0:
        raise ValueError(f"{caller}: crop_border must be >= 0, got {crop_border}")
    h, w = shape[0] - 2 * crop_border, shape[1] - 2 * crop_border
    if h < min_size or w < min_size:
        raise ValueError(
            f"{caller}: crop_border={crop_border} leaves {max(h, 0)}x{max(w, 0)} pixels of a "
            f"{shape[0]}x{shape[1]} image; {caller} needs at least {min_size}x{min_size}"
        )
    return int(crop_border)


def crop(array, crop_border):
    """Remove `crop_border` pixels from each edge (BasicSR's `img[c:-c, c:-c, ...]`)."""
    if crop_border == 0:
        return array
    return array[crop_border:-crop_border, crop_border:-crop_border, ...]


def as_hwc(array):
    """(H, W) -> (H, W, 1); (H, W, C) unchanged."""
    return array[:, :, None] if array.ndim == 2 else array
