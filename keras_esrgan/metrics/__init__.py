"""Image quality metrics with the conventions of the super-resolution literature.

`psnr`, `ssim` (full-reference, BasicSR's `calculate_psnr` / `calculate_ssim`: BT.601 Y in
MATLAB's 16..235 form, `crop_border`, 11x11 Gaussian SSIM over valid positions) and `niqe`
(no-reference, the MATLAB release of Mittal et al. with its pristine model). Inputs are RGB
numpy arrays: uint8 (peak 255), uint16 (peak 65535), or float with `data_range=`.

Example:
>>> from keras_esrgan.metrics import psnr, ssim, niqe
>>> from keras_esrgan.data.synthetic import synthetic_image
>>> hr = synthetic_image(200, seed=0)
>>> sr = np.clip(hr.astype(int) + np.random.default_rng(0).integers(-8, 9, hr.shape), 0, 255).astype(np.uint8)
>>> [round(v, 4) for v in (psnr(sr, hr, crop_border=4, test_y_channel=True), ssim(sr, hr, 4, True), niqe(sr, 4))]
[39.2452, 0.9158, 15.2327]
"""

from keras_esrgan.metrics.niqe import niqe
from keras_esrgan.metrics.luma import rgb_to_y
from keras_esrgan.metrics.psnr_ssim import psnr, ssim

__all__ = ["niqe", "psnr", "rgb_to_y", "ssim"]
