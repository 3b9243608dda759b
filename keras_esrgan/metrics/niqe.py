"""NIQE (Mittal, Soundararajan and Bovik, "Making a Completely Blind Image Quality Analyzer",
IEEE SPL 2013), as the authors' MATLAB release computes it, on the Y channel as BasicSR does.

What is computed, following the MATLAB release (`niqe_release.zip`: `computequality.m`,
`computefeature.m`, `estimateaggdparam.m`) step by step:

1. The image becomes one luma plane on the 8-bit scale, rounded to integers: Y of BT.601 in
   MATLAB's `rgb2ycbcr` form (16..235) for RGB (BasicSR's `convert_to='y'`, then its
   `img.round()`; MATLAB's uint8 `rgb2ycbcr` rounds too); one-channel images are used as they
   are. 16-bit and float images are first brought to the 8-bit scale (x 255 / peak), as
   MATLAB's `niqe` does with `round(255 * im2double(im))`, because the pristine model was fit
   on 8-bit intensities and the `sigma + 1` normalisation is not scale-free.
2. `crop_border` pixels are removed from each edge, then the image is cut to whole 96x96 blocks
   (top-left part kept).
3. At two scales (the image, then MATLAB's `imresize(im, 0.5)`, bicubic with antialiasing, on
   doubles, never rounded: `keras_esrgan.data.degrade.imresize` on float64): MSCN coefficients
   `(im - mu) / (sigma + 1)` with a 7x7 Gaussian (sigma 7/6) and replicated borders; per block
   (96x96, then 48x48) an AGGD fit of the coefficients and of their products with the 4
   neighbours (circular shifts inside the block): 18 features per scale, 36 per block.
4. The MVG of the blocks' features (nan-mean, covariance of the NaN-free blocks) against the
   pristine model: `sqrt((mu_p - mu) pinv((cov_p + cov) / 2) (mu_p - mu)^T)`.

Numerics. Everything is float64. Where `im - mu` is mathematically 0 (flat 7x7 neighbourhoods,
and symmetric ones: ramps, ridges) it is set to exactly 0 rather than left as the +-1e-12
rounding noise a filter leaves there: the AGGD fit splits samples by sign, so that noise moves
such pixels between its left and right halves at random. On Set14's baboon, 2-D and separable
filtering changed NIQE by 4e-4 that way, on Set14's ppt3 bicubic x4 image by 4e-3. With exact
zeros this module gives 5.7295739 on `Set14/baboon.png` (500x480 RGB) where BasicSR reports
MATLAB R2021a's 5.72957338 (and its own 5.7295763) for its `tests/data/baboon.png`.
The Y channel is computed in float64 before rounding; BasicSR computes it in float32, which
rounds Y values within 1e-5 of a half-integer the wrong way (two pixels of Set5 butterfly's
bicubic x4 image, NIQE 9.4306 instead of MATLAB-style 9.4117: NIQE is that sensitive on small
images).

The pristine model (`niqe_pris_params.npz`: `mu_pris_param` (1, 36), `cov_pris_param`
(36, 36), `gaussian_window` (7, 7)) is the MATLAB release's `modelparameters.mat` (trained by
Mittal et al. on 125 pristine images, 96x96 patches, sharpness threshold 0.75, says the
release's readme) as converted by BasicSR (`basicsr/metrics/niqe_pris_params.npz`, copied
unchanged from the `basicsr==1.4.2` sdist on PyPI; sha256 of the .npz
2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296; BasicSR is Apache-2.0, as is
this package). The release's copyright notice, which asks to appear in all copies, is at the
end of this file (`niqe_pris_params.README.md` beside the data says the same).

MATLAB's built-in `niqe` (Image Processing Toolbox) is another NIQE: it converts RGB with
`rgb2gray`, counts zeros on the positive side of the AGGD fit and loads the toolbox's own
default model, so its scores are not these.
"""

import functools
import math
import os

import numpy as np

from keras_esrgan.data.degrade import imresize
from keras_esrgan.metrics._common import (
    as_hwc,
    as_image,
    check_crop_border,
    crop,
    peak_value,
)
from keras_esrgan.metrics.luma import rgb_to_y

PARAMS_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "niqe_pris_params.npz")
BLOCK_SIZE = 96  # the block size the pristine model was fit with
NUM_FEATURES = 36
# Pairwise products with the right, lower, lower-right and lower-left neighbours
# (MATLAB circshift amounts, computefeature.m).
SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))
# |im - mu| below this (on the 0..255 scale) is rounding noise of a mathematically exact 0: the
# filters' error is about 49 taps x 255 x 2.2e-16 = 3e-12.
ZERO_TOLERANCE = 1e-9
# Blocks per argmin pass against the 9801-value shape grid: bounds memory at ~20 MB.
_CHUNK = 256


@functools.lru_cache(maxsize=1)
def pristine_model():
    """`(mu (36,), cov (36, 36), window (7, 7))` float64, from `niqe_pris_params.npz`."""
    with np.load(PARAMS_FILE, allow_pickle=False) as data:
        mu = np.asarray(data["mu_pris_param"], np.float64).reshape(NUM_FEATURES)
        cov = np.asarray(data["cov_pris_param"], np.float64)
        window = np.asarray(data["gaussian_window"], np.float64)
    return mu, cov, window


@functools.lru_cache(maxsize=1)
def _shape_grid():
    """The AGGD shape grid 0.2:0.001:10 with Gamma(1/a), Gamma(2/a), Gamma(3/a) and r(a)."""
    alpha = (200 + np.arange(9801)) / 1000.0  # each the double nearest the decimal value
    g1, g2, g3 = (np.array([math.gamma(k / a) for a in alpha]) for k in (1, 2, 3))
    return alpha, g1, g2, g3, g2 * g2 / (g1 * g3)


def _aggd(samples):
    """AGGD fit of each row of `samples` (n, m) as `estimateaggdparam.m`.

    Returns `(alpha, beta_left, beta_right, gamma(2/alpha) / gamma(1/alpha))`, each (n,).
    Zeros count in neither half (`vec < 0`, `vec > 0`) but in `rhat`, as in the release code.
    A row without negative or positive values gives NaN betas and alpha 0.2 (MATLAB's `min`
    of an all-NaN vector returns index 1; numpy's argmin returns the first NaN, index 0).
    """
    alpha_grid, g1, g2, g3, r_grid = _shape_grid()
    sq = samples * samples
    neg, pos = samples < 0, samples > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        left_std = np.sqrt((sq * neg).sum(axis=1) / neg.sum(axis=1))
        right_std = np.sqrt((sq * pos).sum(axis=1) / pos.sum(axis=1))
        gammahat = left_std / right_std
        rhat = np.mean(np.abs(samples), axis=1) ** 2 / np.mean(sq, axis=1)
        rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    index = np.concatenate([
        np.argmin((r_grid[None, :] - rhatnorm[i : i + _CHUNK, None]) ** 2, axis=1)
        for i in range(0, len(rhatnorm), _CHUNK)
    ])
    scale = np.sqrt(g1[index] / g3[index])
    return alpha_grid[index], left_std * scale, right_std * scale, g2[index] / g1[index]


def _block_features(mscn, block):
    """18 features per `block` x `block` tile of `mscn` (computefeature.m), shape (n, 18)."""
    h, w = mscn.shape
    tiles = mscn.reshape(h // block, block, w // block, block).transpose(0, 2, 1, 3)
    tiles = tiles.reshape(-1, block, block)
    alpha, beta_l, beta_r, _ = _aggd(tiles.reshape(len(tiles), -1))
    columns = [alpha, (beta_l + beta_r) / 2]
    for shift in SHIFTS:
        pairs = tiles * np.roll(tiles, shift, axis=(1, 2))
        alpha, beta_l, beta_r, g_ratio = _aggd(pairs.reshape(len(tiles), -1))
        columns += [alpha, (beta_r - beta_l) * g_ratio, beta_l, beta_r]
    return np.stack(columns, axis=1)


def _filter_replicate(x, g):
    """Correlate (H, W) with outer(g, g), borders replicated (`imfilter(..., 'replicate')`).

    Separable, as MATLAB's imfilter applies a rank-1 kernel of 49 or more taps.
    """
    r = len(g) // 2
    p = np.pad(x, r, mode="edge")
    h, w = x.shape
    rows = sum(g[i] * p[i : i + h] for i in range(len(g)))
    return sum(g[j] * rows[:, j : j + w] for j in range(len(g)))


def _mscn(image, window):
    """Mean-subtracted contrast-normalised coefficients `(im - mu) / (sigma + 1)` (Eq. 1)."""
    # The stored 2-D window is outer(g, g) with g summing to 1, so its row sums are g.
    g = window.sum(axis=1)
    mu = _filter_replicate(image, g)
    sigma = np.sqrt(np.abs(_filter_replicate(image * image, g) - mu * mu))
    centred = image - mu
    # Where im == mu exactly (flat or symmetric neighbourhoods: ramps, ridges), filters leave
    # +-1e-12 of rounding noise whose sign decides which half of the AGGD fit the pixel joins.
    centred[np.abs(centred) < ZERO_TOLERANCE] = 0.0
    return centred / (sigma + 1.0)


def niqe_luma(luma):
    """NIQE of one luma plane on the 8-bit scale (float (H, W), at least two 96x96 blocks).

    The core of `niqe`, without colour conversion, rounding or cropping: for MATLAB parity
    pass integers, as `niqe` does.
    """
    mu_pris, cov_pris, window = pristine_model()
    luma = np.asarray(luma, np.float64)
    rows, cols = luma.shape[0] // BLOCK_SIZE, luma.shape[1] // BLOCK_SIZE
    if rows * cols < 2:
        raise ValueError(
            f"niqe: needs at least two whole {BLOCK_SIZE}x{BLOCK_SIZE} blocks (an image of at "
            f"least {BLOCK_SIZE}x{2 * BLOCK_SIZE} after cropping) to fit its covariance; got "
            f"{luma.shape[0]}x{luma.shape[1]}"
        )
    image = luma[: rows * BLOCK_SIZE, : cols * BLOCK_SIZE]
    features = []
    for scale in (1, 2):
        features.append(_block_features(_mscn(image, window), BLOCK_SIZE // scale))
        if scale == 1:
            image = imresize(image[:, :, None], 0.5).numpy()[:, :, 0]
    features = np.concatenate(features, axis=1)
    complete = features[~np.isnan(features).any(axis=1)]
    if len(complete) < 2:
        return float("nan")  # nancov of fewer than two complete rows is NaN in MATLAB too
    mu = np.nanmean(features, axis=0)
    cov = np.cov(complete, rowvar=False)
    diff = mu_pris - mu
    # MATLAB's pinv tolerance, max(size) * eps(norm), instead of numpy's 1e-15.
    inv = np.linalg.pinv((cov_pris + cov) / 2, rcond=NUM_FEATURES * np.finfo(np.float64).eps)
    return float(np.sqrt(diff @ inv @ diff))


def niqe(img, crop_border=0, data_range=None):
    """NIQE no-reference quality (lower is better), MATLAB release / BasicSR `calculate_niqe`.

    Args:
        img: `(H, W)`, `(H, W, 1)` or `(H, W, 3)` **RGB** array: uint8, uint16 (peak 65535), or
            float with `data_range`. RGB is scored on its BT.601 Y channel (16..235, rounded);
            one-channel images as they are. BasicSR's `calculate_niqe` takes BGR:
            `niqe(img)` equals `calculate_niqe(img[..., ::-1], 0, convert_to='y')`.
            After cropping it needs at least two 96x96 blocks (e.g. 96x192).
        crop_border: pixels removed from each edge first (BasicSR crops the scale, 4 for x4).
        data_range: peak value for float input (1.0, 255.0, ...); None for integers.

    Returns:
        float; NaN when fewer than two blocks have finite features (flat images).

    Raises:
        ValueError: unsupported shape or dtype, float input without `data_range`, NaN/inf,
            `crop_border` negative or too large, image too small.

    On Set14's `baboon.png` it is 5.7296, as MATLAB's `niqe` (tests/test_metrics.py).

    Example:
    >>> from keras_esrgan.data.synthetic import synthetic_image
    >>> round(niqe(synthetic_image((192, 256), seed=0)), 4)
    12.9647
    """
    array = as_image(img, "img", "niqe")
    peak = peak_value(array, data_range, "niqe")
    crop_border = check_crop_border(crop_border, array.shape, "niqe")
    array = as_hwc(crop(array, crop_border)).astype(np.float64)
    if peak != 255.0:
        # Multiply first: a uint16 image that is 257 x a uint8 one then gives the very same
        # values, and the same NIQE.
        array = array * 255.0 / peak
    luma = rgb_to_y(array, 255.0) if array.shape[2] == 3 else array[:, :, 0]
    # MATLAB round (half away from zero) of non-negative values; negative floats are the
    # caller's business and round the same way.
    luma = np.sign(luma) * np.floor(np.abs(luma) + 0.5)
    return niqe_luma(luma)


# -----------COPYRIGHT NOTICE of the NIQE release (niqe_release.zip), whose modelparameters.mat
# -----------is the source of niqe_pris_params.npz, reproduced in its entirety:
#
# Copyright (c) 2011 The University of Texas at Austin
# All rights reserved.
#
# Permission is hereby granted, without written agreement and without license or royalty fees, to use, copy,
# modify, and distribute this code (the source files) and its documentation for
# any purpose, provided that the copyright notice in its entirety appear in all copies of this code, and the
# original source of this code, Laboratory for Image and Video Engineering (LIVE, http://live.ece.utexas.edu)
# and Center for Perceptual Systems (CPS, http://www.cps.utexas.edu) at the University of Texas at Austin (UT Austin,
# http://www.utexas.edu), is acknowledged in any publication that reports research using this code. The research
# is to be cited in the bibliography as:
#
# 1) A. Mittal, R. Soundararajan and A. C. Bovik, "NIQE Software Release",
# URL: http://live.ece.utexas.edu/research/quality/niqe.zip, 2012.
#
# 2) A. Mittal, R. Soundararajan and A. C. Bovik, "Making a Completely Blind Image Quality Analyzer", submitted to IEEE Signal Processing Letters, 2012.
#
# IN NO EVENT SHALL THE UNIVERSITY OF TEXAS AT AUSTIN BE LIABLE TO ANY PARTY FOR DIRECT, INDIRECT, SPECIAL, INCIDENTAL,
# OR CONSEQUENTIAL DAMAGES ARISING OUT OF THE USE OF THIS DATABASE AND ITS DOCUMENTATION, EVEN IF THE UNIVERSITY OF TEXAS
# AT AUSTIN HAS BEEN ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.
#
# THE UNIVERSITY OF TEXAS AT AUSTIN SPECIFICALLY DISCLAIMS ANY WARRANTIES, INCLUDING, BUT NOT LIMITED TO, THE IMPLIED
# WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A PARTICULAR PURPOSE. THE DATABASE PROVIDED HEREUNDER IS ON AN "AS IS" BASIS,
# AND THE UNIVERSITY OF TEXAS AT AUSTIN HAS NO OBLIGATION TO PROVIDE MAINTENANCE, SUPPORT, UPDATES, ENHANCEMENTS, OR MODIFICATIONS.
#
# -----------COPYRIGHT NOTICE ENDS WITH THIS LINE------------
