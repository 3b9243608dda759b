"""The luma Y of the benchmark protocol: ITU-R BT.601 in MATLAB's `rgb2ycbcr` form, unrounded.

The one Y conversion of the metrics: PSNR/SSIM with `test_y_channel=True` and NIQE (which
rounds it, as MATLAB's uint8 `rgb2ycbcr` does) both call `rgb_to_y`. `keras_esrgan.pixels.LUMA`
is another Y on purpose (OpenCV's full-range RGB2GRAY, for greyscale and alpha), not this one.
"""

import numpy as np

from keras_esrgan.metrics._common import as_image, peak_value

# MATLAB rgb2ycbcr's first row (BT.601 luma for 8-bit studio range, x 255).
Y_COEFFS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0  # on the 8-bit scale; 16 * 257 = 4112 for uint16, 16 / 255 for [0, 1]


def rgb_to_y(img, data_range=None):
    """The Y (luma) channel of an RGB image, as MATLAB's `rgb2ycbcr(img)(:, :, 1)`, unrounded.

    `Y = (16 L + 65.481 R + 128.553 G + 24.966 B) / 255` with L the peak value. For uint8 that
    is `16 + (65.481 R + 128.553 G + 24.966 B) / 255` in 16..235; for uint16 MATLAB's
    `16 * 257 + (...) / 255`; for floats in [0, 1] `16/255 + (...) / 255`. It equals BasicSR's
    `bgr2ycbcr(img[..., ::-1], y_only=True)` (which expects BGR order) without its float32
    rounding; MATLAB's uint8 `rgb2ycbcr` additionally rounds the result to integers, which
    BasicSR and this function do not.

    Args:
        img: `(H, W, 3)` RGB array, uint8, uint16, or float with `data_range`.
        data_range: peak value of float input (e.g. 1.0 or 255.0); must be left None or match
            the dtype for integer input.

    Returns:
        float64 `(H, W)` array on the same scale as the input.

    Example:
    >>> rgb_to_y(np.array([[[255, 255, 255], [0, 0, 0]]], np.uint8))
    array([[235.,  16.]])
    """
    array = as_image(img, "img", "rgb_to_y")
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"rgb_to_y: need an (H, W, 3) RGB image, got shape {array.shape}")
    peak = peak_value(array, data_range, "rgb_to_y")
    rgb = array.astype(np.float64, copy=False)
    # MATLAB's arithmetic (rgb2ycbcr: T = origT * (1/255); imlincomb: T(1) R + T(2) G + T(3) B
    # + offset, in double): it decides which way the exact half-integers of uint8 input round
    # (6 pixels of Set5 butterfly, 6 of Set14 monarch), which NIQE notices.
    t = [c * (1.0 / 255.0) for c in Y_COEFFS]
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return r * t[0] + g * t[1] + b * t[2] + Y_OFFSET * peak / 255.0
