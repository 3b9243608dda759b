"""BasicSR's PSNR, SSIM and NIQE transcribed with numpy and scipy, written for the tests.

A second, separate implementation to check `keras_esrgan.metrics` against. It follows BasicSR
1.4.2 (`basicsr/metrics/psnr_ssim.py`, `metric_util.py`, `niqe.py`, `utils/color_util.py`) line
by line and keeps its conventions, so that the library is checked against what the field runs:

- images are **BGR** `(H, W, C)` arrays in [0, 255] (OpenCV's order), as BasicSR's numpy path;
- the Y channel is computed in float32 (`bgr2ycbcr(img.astype(np.float32) / 255., y_only=True)`
  then `* 255.`), PSNR / SSIM then in float64;
- SSIM filters with the full 2-D 11x11 window (`cv2.filter2D`, here `scipy.ndimage.correlate`
  with the same reflect-101 border, `mode="mirror"`) and keeps `[5:-5, 5:-5]`;
- NIQE uses `scipy.ndimage.convolve(..., mode="nearest")` with the 2-D 7x7 window, a Python loop
  over blocks, `scipy.special.gamma`, and MATLAB's `imresize` from
  `tests/reference/matlab_imresize.py` for the half-size scale (in float64, where BasicSR uses
  float32 torch).

Two deliberate departures from BasicSR, both in NIQE and both towards MATLAB-exact values: the
Y channel is computed in float64 before rounding (see `calculate_niqe`), and where `im - mu` is
below 1e-9 (a mathematically exact 0 in flat or symmetric neighbourhoods, left as +-1e-12 noise
by the filter) it is set to exactly 0, because the AGGD fit splits samples by sign
(see `keras_esrgan/metrics/niqe.py`).

Extensions beyond BasicSR, for 16-bit tests: `peak` (BasicSR hard-codes 255) and
`rgb2ycbcr_y_matlab`, MATLAB's `rgb2ycbcr` scale factors per class written as MATLAB does.
"""

import math

import numpy as np
import scipy.ndimage
import scipy.special

from tests.reference.matlab_imresize import imresize as matlab_imresize


def bgr2ycbcr_y(img):
    """BasicSR `bgr2ycbcr(img, y_only=True)` for float32 [0, 1] input: float32 Y in [0, 1]."""
    img = img.astype(np.float32)
    out = np.dot(img, [24.966, 128.553, 65.481]) + 16.0
    return (out / 255.0).astype(np.float32)


def to_y_channel(img):
    """BasicSR `to_y_channel`: BGR [0, 255] -> float Y [0, 255] (H, W, 1), not rounded."""
    img = img.astype(np.float32) / 255.0
    if img.ndim == 3 and img.shape[2] == 3:
        img = bgr2ycbcr_y(img)
        img = img[..., None]
    return img * 255.0


def rgb2ycbcr_y_matlab(rgb, cls):
    """Y of MATLAB's `rgb2ycbcr` for class `cls` ('uint8', 'uint16', 'double'), unrounded.

    MATLAB: `T = scale_T * origT; offset = scale_offset * origOffset` with, per class,
    uint8 (1/255, 1), uint16 (257/65535, 257), double (1/255, 1/255).
    """
    scale_t, scale_offset = {"uint8": (1 / 255, 1.0), "uint16": (257 / 65535, 257.0),
                             "double": (1 / 255, 1 / 255)}[cls]
    t = np.array([65.481, 128.553, 24.966]) * scale_t
    rgb = rgb.astype(np.float64)
    return rgb[..., 0] * t[0] + rgb[..., 1] * t[1] + rgb[..., 2] * t[2] + 16.0 * scale_offset


def _reorder(img):
    return img[..., None] if img.ndim == 2 else img


def _prepare(img, img2, crop_border, test_y_channel, peak):
    """What BasicSR's calculate_psnr and calculate_ssim both do first: crop, Y, float64."""
    assert img.shape == img2.shape, f"Image shapes are different: {img.shape}, {img2.shape}."
    img, img2 = _reorder(img), _reorder(img2)
    if crop_border != 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border, ...]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border, ...]
    if test_y_channel:
        scale = 255.0 / peak  # BasicSR's colour conversion assumes [0, 255]
        img = to_y_channel(img * scale) / scale
        img2 = to_y_channel(img2 * scale) / scale
    img = img.astype(np.float64)
    img2 = img2.astype(np.float64)
    return img, img2


def calculate_psnr(img, img2, crop_border, test_y_channel=False, peak=255.0):
    """BasicSR `calculate_psnr` (input_order 'HWC'); `peak` generalises its 255."""
    img, img2 = _prepare(img, img2, crop_border, test_y_channel, peak)
    mse = np.mean((img - img2) ** 2)
    if mse == 0:
        return float("inf")
    return 10.0 * np.log10(peak * peak / mse)


def _ssim_one_channel(img, img2, peak):
    c1 = (0.01 * peak) ** 2
    c2 = (0.03 * peak) ** 2
    x = np.arange(11) - 5
    kernel = np.exp(-(x**2) / (2 * 1.5**2))
    kernel = kernel / kernel.sum()  # cv2.getGaussianKernel(11, 1.5)
    window = np.outer(kernel, kernel)

    def filt(a):  # cv2.filter2D(a, -1, window)[5:-5, 5:-5]
        return scipy.ndimage.correlate(a, window, mode="mirror")[5:-5, 5:-5]

    mu1 = filt(img)
    mu2 = filt(img2)
    mu1_sq = mu1**2
    mu2_sq = mu2**2
    mu1_mu2 = mu1 * mu2
    sigma1_sq = filt(img**2) - mu1_sq
    sigma2_sq = filt(img2**2) - mu2_sq
    sigma12 = filt(img * img2) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return ssim_map.mean()


def calculate_ssim(img, img2, crop_border, test_y_channel=False, peak=255.0):
    """BasicSR `calculate_ssim` (input_order 'HWC'); `peak` generalises its 255."""
    img, img2 = _prepare(img, img2, crop_border, test_y_channel, peak)
    ssims = [_ssim_one_channel(img[..., i], img2[..., i], peak) for i in range(img.shape[2])]
    return np.array(ssims).mean()


# ----------------------------------------------------------------------------------- NIQE


def estimate_aggd_param(block):
    """BasicSR `estimate_aggd_param` (= MATLAB release `estimateaggdparam.m`)."""
    block = block.flatten()
    gam = np.arange(0.2, 10.001, 0.001)  # len = 9801
    gam_reciprocal = np.reciprocal(gam)
    r_gam = np.square(scipy.special.gamma(gam_reciprocal * 2)) / (
        scipy.special.gamma(gam_reciprocal) * scipy.special.gamma(gam_reciprocal * 3)
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt(np.mean(block[block < 0] ** 2)) if np.any(block < 0) else np.nan
        right_std = np.sqrt(np.mean(block[block > 0] ** 2)) if np.any(block > 0) else np.nan
        gammahat = left_std / right_std
        rhat = (np.mean(np.abs(block))) ** 2 / np.mean(block**2)
        rhatnorm = (rhat * (gammahat**3 + 1) * (gammahat + 1)) / ((gammahat**2 + 1) ** 2)
    array_position = np.argmin((r_gam - rhatnorm) ** 2)
    alpha = gam[array_position]
    g = scipy.special.gamma
    beta_l = left_std * np.sqrt(g(1 / alpha) / g(3 / alpha))
    beta_r = right_std * np.sqrt(g(1 / alpha) / g(3 / alpha))
    return alpha, beta_l, beta_r


def compute_feature(block):
    """BasicSR `compute_feature`: 18 features of one block."""
    feat = []
    alpha, beta_l, beta_r = estimate_aggd_param(block)
    feat.extend([alpha, (beta_l + beta_r) / 2])
    shifts = [[0, 1], [1, 0], [1, 1], [1, -1]]
    for shift in shifts:
        shifted_block = np.roll(block, shift, axis=(0, 1))
        alpha, beta_l, beta_r = estimate_aggd_param(block * shifted_block)
        mean = (beta_r - beta_l) * (scipy.special.gamma(2 / alpha) / scipy.special.gamma(1 / alpha))
        feat.extend([alpha, mean, beta_l, beta_r])
    return feat


def niqe_core(
    img, mu_pris_param, cov_pris_param, gaussian_window, block_size_h=96, block_size_w=96
):
    """BasicSR `niqe` on an (h, w) float64 image in [0, 255] (exact zeros where im == mu)."""
    assert img.ndim == 2
    h, w = img.shape
    num_block_h = math.floor(h / block_size_h)
    num_block_w = math.floor(w / block_size_w)
    img = img[0 : num_block_h * block_size_h, 0 : num_block_w * block_size_w]

    distparam = []
    for scale in (1, 2):
        mu = scipy.ndimage.convolve(img, gaussian_window, mode="nearest")
        mean_sq = scipy.ndimage.convolve(np.square(img), gaussian_window, mode="nearest")
        sigma = np.sqrt(np.abs(mean_sq - np.square(mu)))
        centred = img - mu
        centred[np.abs(centred) < 1e-9] = 0.0  # exact zeros where im == mu, see module notes
        img_normalized = centred / (sigma + 1)

        feat = []
        for idx_w in range(num_block_w):
            for idx_h in range(num_block_h):
                block = img_normalized[
                    idx_h * block_size_h // scale : (idx_h + 1) * block_size_h // scale,
                    idx_w * block_size_w // scale : (idx_w + 1) * block_size_w // scale,
                ]
                feat.append(compute_feature(block))
        distparam.append(np.array(feat))

        if scale == 1:
            img = matlab_imresize(img / 255.0, 0.5) * 255.0

    distparam = np.concatenate(distparam, axis=1)
    distparam_no_nan = distparam[~np.isnan(distparam).any(axis=1)]
    if len(distparam_no_nan) < 2:
        return float("nan")  # MATLAB's nancov gives NaN; numpy's pinv would not converge
    mu_distparam = np.nanmean(distparam, axis=0)
    cov_distparam = np.cov(distparam_no_nan, rowvar=False)
    invcov_param = np.linalg.pinv((cov_pris_param + cov_distparam) / 2)
    quality = np.matmul(
        np.matmul((mu_pris_param - mu_distparam), invcov_param),
        np.transpose((mu_pris_param - mu_distparam)),
    )
    return float(np.squeeze(np.sqrt(quality)))


def calculate_niqe(img, crop_border, params_file, peak=255.0):
    """BasicSR `calculate_niqe(img, crop_border, input_order='HWC', convert_to='y')`.

    `img`: BGR (H, W, 3) or (H, W) in [0, peak]; images with another peak are brought to the
    8-bit scale first (as MATLAB's `niqe` does). Unlike BasicSR the Y channel is computed in
    float64 (MATLAB's `rgb2ycbcr` on uint8 rounds a double result): BasicSR's float32 Y puts
    values within 1e-5 of a half-integer on the wrong side (two pixels of Set5 butterfly's
    bicubic x4 image, which moves its NIQE from 9.4117 to 9.4306).
    """
    params = np.load(params_file)
    img = img.astype(np.float64) * (255.0 / peak)
    if img.ndim == 3 and img.shape[2] == 3:
        img = rgb2ycbcr_y_matlab(img[..., ::-1], "uint8")
    elif img.ndim == 3:
        img = img[..., 0]
    if crop_border != 0:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
    img = np.floor(img + 0.5)  # BasicSR's img.round(); MATLAB rounds half away from zero
    return niqe_core(
        img, params["mu_pris_param"], params["cov_pris_param"], params["gaussian_window"]
    )
