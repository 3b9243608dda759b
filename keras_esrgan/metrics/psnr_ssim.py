"""PSNR and SSIM as super-resolution papers report them (BasicSR's `calculate_psnr/ssim`).

Conventions, all of them BasicSR's (`basicsr/metrics/psnr_ssim.py`, `metric_util.py`) and, for
SSIM, those of Wang et al.'s original MATLAB `ssim_index.m` that BasicSR reproduces:

- Images are `(H, W)`, `(H, W, 1)` or `(H, W, 3)` arrays in **RGB** order (what
  `keras_esrgan.images.read_image` and Pillow give). BasicSR's numpy functions take OpenCV's
  **BGR** arrays instead; `psnr(a, b, ...)` here equals
  `basicsr.metrics.calculate_psnr(a[..., ::-1], b[..., ::-1], ...)`, and the same for SSIM
  (up to BasicSR's float32 colour conversion: below 1e-5 dB / 1e-7 SSIM).
- uint8 images have peak L = 255, uint16 images L = 65535; float images need `data_range=L`.
- `crop_border` pixels are removed from every edge of both images first.
- `test_y_channel=True` compares only the luma Y of ITU-R BT.601 in MATLAB's `rgb2ycbcr` form
  (studio range 16..235 for 8 bits), **not rounded** (BasicSR's `to_y_channel`), see `rgb_to_y`.
  One-channel images are used as they are (they already are luma), as in BasicSR; convert
  greyscale to 3 equal RGB channels first to get the 16..235 Y of the benchmark protocol.
- PSNR = 10 log10(L^2 / MSE), the MSE over all pixels and channels in float64; identical
  images give `inf`.
- SSIM: 11x11 Gaussian window (sigma 1.5, normalised to sum 1), K1 = 0.01, K2 = 0.03, the SSIM
  map over *valid* window positions only (no padding: `(H - 10) x (W - 10)` values), averaged;
  colour images are scored per channel and the three SSIMs averaged. No automatic
  downsampling (the later `ssim.m` of 2009 downsamples large images; `ssim_index.m`,
  BasicSR and the published SR tables do not).
"""

import numpy as np

from keras_esrgan.metrics._common import (
    as_hwc,
    as_image,
    check_crop_border,
    crop,
    peak_value,
)
from keras_esrgan.metrics.luma import rgb_to_y

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _prepare(img, ref, crop_border, test_y_channel, data_range, caller, min_size):
    """Both images validated, cropped, (optionally) reduced to Y, as float64 (H, W, C)."""
    a = as_image(img, "img", caller)
    b = as_image(ref, "ref", caller)
    if as_hwc(a).shape != as_hwc(b).shape:
        raise ValueError(f"{caller}: images of different sizes: img {a.shape} vs ref {b.shape}")
    if a.dtype != b.dtype:
        raise ValueError(
            f"{caller}: img is {a.dtype} but ref is {b.dtype}; convert both to one dtype "
            "(their peak values differ)"
        )
    peak = peak_value(a, data_range, caller)
    peak_value(b, data_range, caller)  # NaN/inf check of the reference too
    crop_border = check_crop_border(crop_border, a.shape, caller, min_size)
    a, b = as_hwc(crop(a, crop_border)), as_hwc(crop(b, crop_border))
    a, b = a.astype(np.float64), b.astype(np.float64)
    if test_y_channel and a.shape[2] == 3:
        a, b = rgb_to_y(a, peak)[..., None], rgb_to_y(b, peak)[..., None]
    return a, b, peak


def psnr(img, ref, crop_border=0, test_y_channel=False, data_range=None):
    """Peak signal-to-noise ratio in dB, as BasicSR's `calculate_psnr` (see the module notes).

    Args:
        img: `(H, W)`, `(H, W, 1)` or `(H, W, 3)` RGB array (e.g. the super-resolved image):
            uint8, uint16, or float with `data_range`.
        ref: the ground truth, same shape and dtype.
        crop_border: pixels removed from each edge of both images first (the scale, by
            convention: 4 for x4).
        test_y_channel: compare the BT.601 Y channel (`rgb_to_y`) instead of RGB.
        data_range: peak value L for float input (1.0 or 255.0, ...); None for integers
            (255 for uint8, 65535 for uint16).

    Returns:
        float, `10 log10(L^2 / MSE)`; `inf` for identical images.

    Raises:
        ValueError: different shapes or dtypes, unsupported dtype or channel count, float
            input without `data_range`, NaN/inf, or `crop_border` negative or too large.

    On Set5's `baby.png` (MATLAB bicubic x4 down and up) it is 31.7842 dB on Y.

    Example:
    >>> from keras_esrgan.data.degrade import imresize
    >>> from keras_esrgan.data.synthetic import synthetic_image
    >>> hr = synthetic_image(128, seed=0)                                  # (128, 128, 3) uint8
    >>> lr = imresize(hr, 1 / 4).numpy().astype("uint8")                   # MATLAB bicubic
    >>> bicubic = imresize(lr, 4).numpy().astype("uint8")
    >>> round(psnr(bicubic, hr, crop_border=4, test_y_channel=True), 4)
    26.4904
    """
    a, b, peak = _prepare(img, ref, crop_border, test_y_channel, data_range, "psnr", 1)
    mse = np.mean((a - b) ** 2)
    if mse == 0:
        return float("inf")
    return float(10.0 * np.log10(peak * peak / mse))


def gaussian_window_1d(size=SSIM_WINDOW, sigma=SSIM_SIGMA):
    """OpenCV's `getGaussianKernel(size, sigma)` in float64: the SSIM window is its outer square."""
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    k = np.exp(-(x * x) / (2.0 * sigma * sigma))
    return k / k.sum()


def _filter_valid(x, k):
    """Separable 'valid' correlation of (H, W, C) with the outer product of `k` and itself.

    Tap by tap rather than through a sliding-window view, so memory stays at a few copies of
    the image even for 2K images.
    """
    n = len(k)
    h, w = x.shape[0] - n + 1, x.shape[1] - n + 1
    rows = sum(k[i] * x[i : i + h] for i in range(n))
    return sum(k[j] * rows[:, j : j + w] for j in range(n))


def _ssim_channels(a, b, peak):
    """Per-channel mean SSIM of float64 (H, W, C) arrays."""
    c1 = (SSIM_K1 * peak) ** 2
    c2 = (SSIM_K2 * peak) ** 2
    k = gaussian_window_1d()
    mu1, mu2 = _filter_valid(a, k), _filter_valid(b, k)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter_valid(a * a, k) - mu1_sq
    sigma2_sq = _filter_valid(b * b, k) - mu2_sq
    sigma12 = _filter_valid(a * b, k) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return ssim_map.mean(axis=(0, 1))


def ssim(img, ref, crop_border=0, test_y_channel=False, data_range=None):
    """Structural similarity, as BasicSR's `calculate_ssim` / MATLAB's `ssim_index.m`.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L the peak value, mean of the SSIM
    map over valid window positions; for RGB the mean of the three per-channel SSIMs.

    Args:
        img: `(H, W)`, `(H, W, 1)` or `(H, W, 3)` RGB array: uint8, uint16, or float with
            `data_range`; at least 11x11 after cropping.
        ref: the ground truth, same shape and dtype.
        crop_border: pixels removed from each edge of both images first.
        test_y_channel: compare the BT.601 Y channel (`rgb_to_y`) instead of RGB.
        data_range: peak value L for float input; None for integers (255 / 65535).

    Returns:
        float in [-1, 1]; 1.0 for identical images.

    Raises:
        ValueError: as `psnr`, and when fewer than 11x11 pixels remain after cropping.

    Example:
    >>> from keras_esrgan.data.degrade import imresize
    >>> from keras_esrgan.data.synthetic import synthetic_image
    >>> hr = synthetic_image(128, seed=0)                     # as in `psnr`
    >>> bicubic = imresize(imresize(hr, 1 / 4).numpy().astype("uint8"), 4).numpy().astype("uint8")
    >>> round(ssim(bicubic, hr, crop_border=4, test_y_channel=True), 4)
    0.7909
    """
    a, b, peak = _prepare(img, ref, crop_border, test_y_channel, data_range, "ssim", SSIM_WINDOW)
    return float(np.mean(_ssim_channels(a, b, peak)))
