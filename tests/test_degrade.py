"""MATLAB-compatible bicubic resizing against an independent numpy transcription of imresize.m."""

import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan.data.degrade import bicubic_downsample, imresize
from keras_esrgan.images import read_image
from tests.reference.matlab_imresize import imresize as matlab_imresize

SCALES = [0.25, 0.5, 1 / 3, 2.0, 4.0]


def _rgb(image):
    return np.repeat(image[..., None], 3, axis=-1) if image.ndim == 2 else image[..., :3]


def _mod_crop(image, scale):
    h, w = image.shape[:2]
    return image[: h - h % scale, : w - w % scale]


@pytest.mark.parametrize("scale", [4, 2])
def test_uint8_downscale_matches_matlab_on_benchmark_images(shared_data, scale):
    """Benchmark LR images exactly as MATLAB makes them from uint8 HR PNGs (x4 and x2)."""
    paths = sorted((shared_data / "Set5").glob("*.png")) + sorted((shared_data / "Set14").glob("*.png"))
    differing = total = 0
    for path in paths:
        hr = _mod_crop(_rgb(read_image(path)), scale)
        expected = matlab_imresize(hr, 1 / scale).astype(np.int32)
        ours = np.round(bicubic_downsample(hr, scale).numpy() * 255).astype(np.int32)
        assert ours.shape == expected.shape == (hr.shape[0] // scale, hr.shape[1] // scale, 3)
        assert np.abs(ours - expected).max() <= 1, path.name
        differing += int((ours != expected).sum())
        total += expected.size
    # Rounding only once at the end (not after each pass, as MATLAB does for uint8) makes about
    # 10% of the pixels differ by 1-2 levels; with MATLAB's per-pass rounding in float64 none do.
    assert differing / total < 1e-4


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_resize_matches_matlab_on_random_images(rng, scale, dtype):
    top = np.iinfo(dtype).max
    for shape in [(37, 53, 3), (16, 16, 1), (5, 9, 2)]:  # odd sizes: ceil() output sizes
        image = rng.integers(0, top + 1, shape, dtype=np.int64).astype(dtype)
        expected = matlab_imresize(image, scale).astype(np.int64)
        ours = imresize(image, scale).numpy()
        assert ours.shape == expected.shape
        assert ours.dtype == np.float32 and np.all(ours == np.round(ours))
        assert np.abs(ours.astype(np.int64) - expected).max() <= 1


@pytest.mark.parametrize("scale", SCALES)
def test_float_resize_matches_matlab_doubles(rng, scale):
    """Float input is never rounded or clipped, as MATLAB's doubles (values outside [0, 1] too)."""
    image = rng.normal(0.5, 0.5, (29, 41, 3))
    expected = matlab_imresize(image, scale)
    np.testing.assert_allclose(imresize(image, scale).numpy(), expected, atol=1e-12)  # float64
    np.testing.assert_allclose(imresize(image.astype(np.float32), scale).numpy(), expected, atol=2e-5)


def test_constant_image_stays_constant():
    for scale in SCALES:
        out = imresize(np.full((23, 30, 3), 0.37), scale).numpy()
        np.testing.assert_allclose(out, 0.37, atol=1e-12)
        out8 = imresize(np.full((23, 30, 3), 200, np.uint8), scale).numpy()
        assert np.all(out8 == 200)


def test_linear_ramp_stays_linear_away_from_borders():
    """Hand-computed: output pixel i (0-based) samples the input at u_i - 1 = (i + 0.5) / s - 0.5.

    Keys' kernel reproduces linear functions and the antialiased kernel is symmetric about the
    sample points, so a ramp v[j] = j gives v(u) exactly: 4i + 1.5 at scale 1/4, i/4 - 0.375 at
    scale 4. Borders are mirrored, so only the interior is linear.
    """
    ramp = np.tile(np.arange(64, dtype=np.float64)[:, None, None], (1, 8, 1))
    down = imresize(ramp, 0.25).numpy()[:, 0, 0]
    i = np.arange(16)
    np.testing.assert_allclose(down[2:-2], 4 * i[2:-2] + 1.5, atol=1e-9)
    assert abs(down[0] - 1.5) > 0.1  # the mirrored border is not linear
    up = imresize(ramp[:16], 4.0).numpy()[:, 0, 0]
    i = np.arange(64)
    np.testing.assert_allclose(up[8:-8], i[8:-8] / 4 - 0.375, atol=1e-9)
    columns = imresize(np.swapaxes(ramp, 0, 1), 0.25).numpy()[0, :, 0]  # the other axis too
    np.testing.assert_allclose(columns[2:-2], 4 * np.arange(16)[2:-2] + 1.5, atol=1e-9)


def test_tf_method_is_close_but_not_identical(shared_data):
    """How far `tf.image.resize(bicubic, antialias=True)` is from MATLAB's, in 8-bit levels."""
    hr = _mod_crop(read_image(shared_data / "Set5" / "butterfly.png"), 4)
    matlab = bicubic_downsample(hr).numpy() * 255
    tf_lr = bicubic_downsample(hr, method="tf").numpy() * 255
    diff = np.abs(matlab - tf_lr)
    interior = diff[2:-2, 2:-2]
    print(f"tf vs matlab on butterfly x4: max {diff.max():.0f} levels (interior {interior.max():.0f}), "
          f"{(diff > 0).mean():.1%} of pixels differ, mean {diff.mean():.3f} levels")
    assert diff.max() >= 5  # border handling differs
    assert 1 <= interior.max() <= 2 and (interior > 0).mean() > 0.02  # rounding differs
    assert diff.mean() < 0.5


def test_runs_in_tf_data_with_dynamic_shapes(rng):
    images = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in [(32, 48), (20, 12)]]
    ds = tf.data.Dataset.from_generator(
        lambda: iter(images), output_signature=tf.TensorSpec((None, None, 3), tf.uint8)
    ).map(lambda hr: bicubic_downsample(hr, 4))
    for hr, lr in zip(images, ds):
        np.testing.assert_array_equal(np.round(lr.numpy() * 255), matlab_imresize(hr, 0.25))


def test_batched_input_and_bad_arguments(rng):
    batch = rng.integers(0, 256, (2, 16, 24, 3), dtype=np.uint8)
    out = bicubic_downsample(batch, 4).numpy()
    for b in range(2):
        np.testing.assert_array_equal(np.round(out[b] * 255), matlab_imresize(batch[b], 0.25))
    with pytest.raises(ValueError, match="method must be"):
        bicubic_downsample(batch, 4, method="area")
    with pytest.raises(ValueError, match=r"\(H, W, C\)"):
        imresize(np.zeros((4, 4)), 0.5)
