"""PSNR, SSIM and NIQE against an independent BasicSR transcription and published values."""

import hashlib
import math

import numpy as np
import pytest

from keras_esrgan.data.degrade import imresize
from keras_esrgan.images import read_image
from keras_esrgan.metrics import niqe, psnr, rgb_to_y, ssim
from keras_esrgan.metrics.niqe import PARAMS_FILE, niqe_luma, pristine_model
from tests.reference import numpy_metrics as ref


def _noisy_pair(rng, shape, dtype=np.uint8, sigma=12.0):
    top = np.iinfo(dtype).max
    ref_img = rng.integers(0, top + 1, shape).astype(dtype)
    noise = rng.normal(0, sigma * top / 255, shape)
    img = np.clip(np.round(ref_img + noise), 0, top).astype(dtype)
    return img, ref_img


def _mod_crop(image, mod):
    h, w = image.shape[:2]
    return image[: h - h % mod, : w - w % mod]


def _round_uint8(x):
    return np.floor(np.clip(np.asarray(x), 0, 255) + 0.5).astype(np.uint8)


# ------------------------------------------------------------------ PSNR / SSIM vs reference


@pytest.mark.parametrize("shape", [(37, 41, 3), (30, 26, 1), (25, 33)])
@pytest.mark.parametrize("crop_border", [0, 3])
@pytest.mark.parametrize("test_y_channel", [False, True])
def test_psnr_ssim_match_basicsr_transcription(rng, shape, crop_border, test_y_channel):
    img, gt = _noisy_pair(rng, shape)
    # The reference takes BGR, as BasicSR's numpy functions do; ours takes RGB.
    flip = (lambda a: a[..., ::-1]) if len(shape) == 3 and shape[2] == 3 else (lambda a: a)
    expected_psnr = ref.calculate_psnr(flip(img), flip(gt), crop_border, test_y_channel)
    expected_ssim = ref.calculate_ssim(flip(img), flip(gt), crop_border, test_y_channel)
    # BasicSR's Y is float32: about 1e-6 dB / 1e-8 SSIM from our float64 Y.
    assert psnr(img, gt, crop_border, test_y_channel) == pytest.approx(expected_psnr, abs=1e-5)
    assert ssim(img, gt, crop_border, test_y_channel) == pytest.approx(expected_ssim, abs=1e-6)


def test_uint16_uses_peak_65535(rng):
    img, gt = _noisy_pair(rng, (40, 44, 3), np.uint16)
    for y in (False, True):
        assert psnr(img, gt, 2, y) == pytest.approx(
            ref.calculate_psnr(img[..., ::-1], gt[..., ::-1], 2, y, peak=65535.0), abs=1e-5
        )
        assert ssim(img, gt, 2, y) == pytest.approx(
            ref.calculate_ssim(img[..., ::-1], gt[..., ::-1], 2, y, peak=65535.0), abs=1e-6
        )


def test_16_bit_copy_of_8_bit_images_scores_the_same(rng):
    """x257 maps 0..255 onto 0..65535 exactly: MSE and L^2 scale alike, so do SSIM's C1, C2."""
    img, gt = _noisy_pair(rng, (200, 210, 3))
    img16, gt16 = img.astype(np.uint16) * 257, gt.astype(np.uint16) * 257
    for y in (False, True):
        assert psnr(img16, gt16, 4, y) == pytest.approx(psnr(img, gt, 4, y), rel=1e-12)
        assert ssim(img16, gt16, 4, y) == pytest.approx(ssim(img, gt, 4, y), rel=1e-12)
    assert niqe(img16, 4) == niqe(img, 4)


def test_float_input_with_data_range(rng):
    img, gt = _noisy_pair(rng, (30, 30, 3))
    for y in (False, True):
        expected_p, expected_s = psnr(img, gt, 1, y), ssim(img, gt, 1, y)
        unit = (img / 255.0, gt / 255.0)
        assert psnr(*unit, 1, y, data_range=1.0) == pytest.approx(expected_p, abs=1e-9)
        assert ssim(*unit, 1, y, data_range=1.0) == pytest.approx(expected_s, abs=1e-12)
        wide = (img.astype(np.float32), gt.astype(np.float32))
        assert psnr(*wide, 1, y, data_range=255) == pytest.approx(expected_p, abs=1e-9)


def test_hand_computed_values():
    gt = np.full((20, 20, 3), 100, np.uint8)
    # Every pixel 5 levels off: MSE 25.
    assert psnr(gt + 5, gt) == pytest.approx(10 * math.log10(255**2 / 25), abs=1e-12)
    # On Y, a grey offset of 5 is 5 * (65.481 + 128.553 + 24.966) / 255 = 5 * 219 / 255.
    assert psnr(gt + 5, gt, test_y_channel=True) == pytest.approx(
        10 * math.log10(255**2 / (5 * 219 / 255) ** 2), abs=1e-9
    )
    assert psnr(gt, gt) == float("inf")
    assert ssim(gt, gt) == 1.0
    # Constant images: sigmas are 0, so SSIM = (2ab + C1) / (a^2 + b^2 + C1).
    c1 = (0.01 * 255) ** 2
    expected_ssim = (2 * 105 * 100 + c1) / (105**2 + 100**2 + c1)
    assert ssim(gt + 5, gt) == pytest.approx(expected_ssim, abs=1e-12)
    colours = np.array(
        [[[255, 255, 255], [0, 0, 0], [255, 0, 0], [0, 255, 0], [0, 0, 255]]], np.uint8
    )
    np.testing.assert_allclose(
        rgb_to_y(colours), [[235.0, 16.0, 16 + 65.481, 16 + 128.553, 16 + 24.966]], atol=1e-12
    )
    np.testing.assert_allclose(
        rgb_to_y(colours.astype(np.uint16) * 257), rgb_to_y(colours) * 257, atol=1e-9
    )


# ------------------------------------------------------------------ published values


def test_basicsr_metric_table_on_baboon_and_comic(shared_data):
    """BasicSR's `basicsr/metrics/README.md` table (MATLAB and numpy columns agree for RGB).

    Its `tests/data/gt` images are Set14's baboon and comic mod-cropped to 12 (480x492 and
    360x240, as its lmdb meta_info lists), and `tests/data/bic` their x4 bicubic round trip made
    with MATLAB-style imresize on floats, rounded once at the end: with exactly that we get
    its numbers.
    """
    published = {  # image: (PSNR RGB, SSIM RGB, PSNR Y, SSIM Y), crop_border 4
        "baboon": (20.419710, 0.391853, 22.441898, 0.453097),
        "comic": (20.239912, 0.567738, 21.720398, 0.585511),
    }
    for name, (p_rgb, s_rgb, p_y, s_y) in published.items():
        hr = _mod_crop(read_image(shared_data / "Set14" / f"{name}.png"), 12)
        lr = _round_uint8(imresize(hr.astype(np.float64), 0.25))
        bic = _round_uint8(imresize(lr.astype(np.float64), 4))
        assert psnr(bic, hr, 4) == pytest.approx(p_rgb, abs=1e-6)
        assert ssim(bic, hr, 4) == pytest.approx(s_rgb, abs=1e-6)
        # BasicSR's numpy Y is float32, so its last digit may differ.
        assert psnr(bic, hr, 4, test_y_channel=True) == pytest.approx(p_y, abs=3e-6)
        assert ssim(bic, hr, 4, test_y_channel=True) == pytest.approx(s_y, abs=3e-6)


def test_classic_bicubic_x4_tables(shared_data):
    """Bicubic x4 in the VDSR/EDSR/RCAN tables: Set5 28.42 / 0.8104, Set14 26.00 / 0.7027.

    Those tables come from the SRCNN/VDSR MATLAB protocol: HR to uint8 Y first (MATLAB's
    `rgb2ycbcr`, rounded), greyscale images (Set14's bridge) used as they are, bicubic down and
    up on that Y channel in double, rounded. With it our metrics give Set5 28.4207 / 0.8104
    and Set14 26.0001 / 0.7019 (SSIM 0.0008 below the table's, whose Set14 files were not
    exactly these). The evaluation protocol of `keras_esrgan.evaluate` (bicubic on RGB,
    greyscale as RGB) gives other numbers; see tests/test_evaluation.py.
    """
    published = {"Set5": (28.42, 0.8104), "Set14": (26.00, 0.7027)}
    ssim_tolerance = {"Set5": 5e-5, "Set14": 1e-3}
    for name, (p_pub, s_pub) in published.items():
        scores = []
        for path in sorted((shared_data / name).glob("*.png")):
            hr = _mod_crop(read_image(path), 4)
            y = hr if hr.ndim == 2 else _round_uint8(rgb_to_y(hr))
            down = imresize(y[:, :, None].astype(np.float64), 0.25)
            bic = _round_uint8(imresize(down, 4))[..., 0]
            scores.append((psnr(bic, y, 4), ssim(bic, y, 4)))
        mean_psnr, mean_ssim = np.mean(scores, axis=0)
        assert mean_psnr == pytest.approx(p_pub, abs=0.005), name
        assert mean_ssim == pytest.approx(s_pub, abs=ssim_tolerance[name]), name


# ------------------------------------------------------------------ NIQE


def test_niqe_matches_matlab_on_baboon(shared_data):
    """BasicSR: "MATLAB R2021a result for tests/data/baboon.png: 5.72957338" (its own 5.7295763).

    Our `Set14/baboon.png` is a different file (other PNG bytes), but the score agrees to 5e-7,
    which could not happen with different pixels.
    """
    score = niqe(read_image(shared_data / "Set14" / "baboon.png"))
    assert score == pytest.approx(5.72957338, abs=1e-5)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("Set5/butterfly", "hr"),
        ("Set5/butterfly", "bicubic"),
        ("Set5/woman", "bicubic"),
        ("Set14/bridge", "hr"),
    ],
)
def test_niqe_matches_reference_on_benchmark_images(shared_data, name, kind):
    """Butterfly has exact half-integer Y values and flat areas; the bicubic images ramps."""
    image = read_image(shared_data / f"{name}.png")
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = _mod_crop(image, 4)
    if kind == "bicubic":
        image = imresize(imresize(image, 0.25).numpy().astype(np.uint8), 4).numpy().astype(np.uint8)
    expected = ref.calculate_niqe(image[..., ::-1], 4, PARAMS_FILE)
    assert niqe(image, crop_border=4) == pytest.approx(expected, abs=1e-9)


def test_niqe_matches_reference_with_flat_areas_and_ramps(rng):
    """Where im == local mean (flat patches, linear ramps) MSCN is exactly 0 in both."""
    h, w = 192, 288
    base = rng.normal(128, 40, (h // 4, w // 4, 3))
    image = _round_uint8(imresize(base, 4))
    image[20:90, 30:150] = 77  # flat
    image[100:180, 160:280] = (np.arange(120)[None, :, None] + 60).astype(np.uint8)  # ramp
    expected = ref.calculate_niqe(image[..., ::-1], 0, PARAMS_FILE)
    assert math.isfinite(expected)
    assert niqe(image) == pytest.approx(expected, abs=1e-9)


def test_niqe_channel_conventions(rng):
    grey = _round_uint8(imresize(rng.normal(120, 50, (60, 80, 1)), 4))[..., 0]  # 240 x 320
    assert niqe(grey) == niqe(grey[:, :, None])
    # RGB with equal channels is scored on its 16..235 Y, i.e. 16 + 219/255 v rounded.
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    y = np.floor(16 + grey.astype(np.float64) * 219 / 255 + 0.5)
    assert niqe(rgb) == pytest.approx(niqe_luma(y), abs=1e-12)
    assert niqe(rgb / 255.0, data_range=1.0) == pytest.approx(niqe(rgb), abs=1e-12)
    # crop_border trims before the blocks are cut.
    assert niqe(rgb, crop_border=5) == pytest.approx(niqe(rgb[5:-5, 5:-5]), abs=1e-12)


def test_niqe_of_flat_image_is_nan():
    assert math.isnan(niqe(np.full((200, 200, 3), 90, np.uint8)))


def test_pristine_parameters_file():
    """The file BasicSR converted from the MATLAB release's modelparameters.mat, unchanged."""
    with open(PARAMS_FILE, "rb") as fh:
        digest = hashlib.sha256(fh.read()).hexdigest()
    assert digest == "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
    mu, cov, window = pristine_model()
    assert mu.shape == (36,) and cov.shape == (36, 36) and window.shape == (7, 7)
    np.testing.assert_allclose(cov, cov.T, atol=1e-12)
    assert np.linalg.eigvalsh(cov).min() > 0
    # MATLAB's fspecial('gaussian', 7, 7/6), normalised.
    x = np.arange(-3, 4)
    g = np.exp(-(x[:, None] ** 2 + x[None, :] ** 2) / (2 * (7 / 6) ** 2))
    np.testing.assert_allclose(window, g / g.sum(), atol=1e-15)


# ------------------------------------------------------------------ bad input


def _errors():
    a = np.zeros((32, 32, 3), np.uint8)
    big = np.zeros((200, 200, 3), np.uint8)
    return [
        (lambda: psnr(a, np.zeros((32, 30, 3), np.uint8)), "different sizes"),
        (lambda: ssim(a, np.zeros((30, 32, 3), np.uint8)), "different sizes"),
        (lambda: psnr(a, a.astype(np.uint16)), "uint8 but ref is uint16"),
        (lambda: psnr(a.astype(np.int32), a.astype(np.int32)), "dtype int32"),
        (lambda: psnr(a.astype(bool), a.astype(bool)), "dtype bool"),
        (lambda: psnr(a / 255.0, a / 255.0), "needs data_range"),
        (lambda: ssim(a.astype(np.float32), a.astype(np.float32)), "needs data_range"),
        (lambda: niqe(big / 255.0), "needs data_range"),
        (lambda: psnr(a, a, data_range=1.0), "uint8 images have data_range 255"),
        (lambda: psnr(a / 1.0, a / 1.0, data_range=-1), "positive number"),
        (lambda: psnr(np.full((8, 8), np.nan), np.zeros((8, 8)), data_range=1.0), "NaN or inf"),
        (lambda: psnr(a, a, crop_border=16), "crop_border=16 leaves 0x0"),
        (lambda: psnr(a, a, crop_border=-1), ">= 0"),
        (lambda: psnr(a, a, crop_border=1.5), "must be an int"),
        (lambda: ssim(a, a, crop_border=11), "at least 11x11"),
        (lambda: niqe(big, crop_border=100), "crop_border=100"),
        (lambda: psnr(np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8, 4), np.uint8)), "alpha"),
        (lambda: psnr(np.zeros((2, 8, 8, 3), np.uint8), np.zeros((2, 8, 8, 3))), r"\(H, W\)"),
        (lambda: psnr(np.zeros((0, 8, 3), np.uint8), np.zeros((0, 8, 3), np.uint8)), "empty"),
        (lambda: rgb_to_y(np.zeros((8, 8), np.uint8)), r"\(H, W, 3\)"),
        (lambda: niqe(np.zeros((150, 150, 3), np.uint8)), "two whole 96x96 blocks"),
    ]


@pytest.mark.parametrize("call, message", _errors())
def test_bad_input_raises_value_error(call, message):
    with pytest.raises(ValueError, match=message):
        call()
