"""Real-ESRGAN's degradation in TF: ops against scipy/numpy references, statistics, pipeline, samples."""

import json
import math

import numpy as np
import pytest
import scipy.ndimage
import tensorflow as tf

from keras_esrgan.data import DegradationConfig, realworld_pipeline, write_degraded_samples
from keras_esrgan.data import degradation_ops as ops
from keras_esrgan.data import realworld
from keras_esrgan.data.kernels import bivariate_gaussian, circular_lowpass_kernel
from keras_esrgan.images import read_image, write_image


def smooth_image(rng, h, w):
    """Blocks plus texture: edges for USM and JPEG to act on, float64 in [0, 1]."""
    small = rng.random((h // 8 + 2, w // 8 + 2, 3))
    return np.kron(small, np.ones((8, 8, 1)))[:h, :w] * 0.8 + rng.random((h, w, 3)) * 0.2


def correlate_mirror(image, kernel):
    """What BasicSR's filter2D computes: PyTorch 'reflect' padding is scipy's 'mirror'."""
    return scipy.ndimage.correlate(image, kernel[:, :, None], mode="mirror")


def jpeg_round_trip(image, quality):
    """An 8-bit JPEG file written and read by TF's encoder/decoder: (decoded float, file bytes)."""
    levels = tf.constant(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
    data = tf.io.encode_jpeg(levels, quality=quality)
    return tf.io.decode_jpeg(data).numpy().astype(np.float32) / 255, len(data.numpy())


# ---------------------------------------------------------------- blur, padding, USM


@pytest.mark.parametrize("size,kernel_size", [((20, 17), 3), ((12, 15), 7), ((6, 5), 21)])
def test_filter2d_is_correlation_with_mirror_borders(rng, size, kernel_size):
    image = rng.random(size + (3,))
    kernel = rng.random((kernel_size, kernel_size))  # asymmetric on purpose
    kernel /= kernel.sum()
    out = ops.filter2d(tf.constant(image, tf.float32), tf.constant(kernel, tf.float32)).numpy()
    np.testing.assert_allclose(out, correlate_mirror(image, kernel), atol=1e-5)
    convolved = scipy.ndimage.convolve(image, kernel[:, :, None], mode="mirror")
    assert np.abs(out - convolved).max() > 1e-3  # the distinction is real for this kernel
    batch = ops.filter2d(tf.constant(np.stack([image, image[::-1]]), tf.float32), kernel).numpy()
    np.testing.assert_allclose(batch[1], correlate_mirror(image[::-1], kernel), atol=1e-5)


def test_reflect_pad_matches_numpy_for_any_size():
    image = np.arange(4 * 3 * 2).reshape(4, 3, 2)
    for pads in [(1, 2, 0, 1), (3, 3, 2, 2), (9, 0, 7, 11)]:
        top, bottom, left, right = pads
        expected = np.pad(image, ((top, bottom), (left, right), (0, 0)), mode="reflect")
        np.testing.assert_array_equal(ops.reflect_pad(image, *pads).numpy(), expected)
    single = ops.reflect_pad(np.ones((1, 1, 3)), 2, 2, 2, 2).numpy()
    np.testing.assert_array_equal(single, np.ones((5, 5, 3)))


def usm_reference(image, weight=0.5, radius=51, threshold=10):
    """USMSharp written out: OpenCV's Gaussian for sigma 0, mirror-padded 2-D correlations."""
    sigma = 0.3 * ((radius - 1) * 0.5 - 1) + 0.8
    offsets = np.arange(radius) - (radius - 1) / 2
    taps = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel = np.outer(taps, taps) / taps.sum() ** 2
    residual = image - correlate_mirror(image, kernel)
    mask = (np.abs(residual) * 255 > threshold).astype(np.float64)
    soft_mask = correlate_mirror(mask, kernel)
    sharp = np.clip(image + weight * residual, 0, 1)
    return soft_mask * sharp + (1 - soft_mask) * image


def test_usm_sharp_equals_the_formula(rng):
    image = smooth_image(rng, 48, 40)
    out = ops.usm_sharp(tf.constant(image, tf.float32)).numpy()
    expected = usm_reference(image)
    np.testing.assert_allclose(out, expected, atol=2e-4)
    assert np.mean(np.abs(out - expected)) < 1e-6
    assert np.abs(out - image).max() > 0.02  # it does sharpen
    batched = ops.usm_sharp(tf.constant(image[None], tf.float32)).numpy()[0]
    np.testing.assert_allclose(batched, out, atol=1e-6)
    assert ops.gaussian_taps(51) == pytest.approx(list(np.exp(-((np.arange(51) - 25) ** 2) / 128) /
                                                       np.exp(-((np.arange(51) - 25) ** 2) / 128).sum()))


def test_resize_method_by_index_and_name():
    image = tf.random.stateless_uniform((20, 24, 3), (1, 2))
    for index, method in enumerate(ops.RESIZE_METHODS):
        expected = tf.image.resize(image, (7, 30), method=method)
        np.testing.assert_array_equal(ops.resize(image, (7, 30), index).numpy(), expected.numpy())
        np.testing.assert_array_equal(ops.resize(image, (7, 30), method).numpy(), expected.numpy())
    with pytest.raises(ValueError, match="method must be one of"):
        ops.resize(image, (7, 7), "lanczos")


# ---------------------------------------------------------------- noise and JPEG


@pytest.mark.parametrize("sigma", [3.0, 20.0])
def test_gaussian_noise_has_the_requested_std(sigma):
    image = tf.fill((128, 128, 3), 0.5)
    colour = (ops.add_gaussian_noise(image, sigma, False, tf.constant([3, 4])) - image).numpy() * 255
    assert abs(colour.std() / sigma - 1) < 0.03 and abs(colour.mean()) < 0.05 * sigma
    correlation = np.corrcoef(colour[..., 0].ravel(), colour[..., 1].ravel())[0, 1]
    assert abs(correlation) < 0.05
    grey = (ops.add_gaussian_noise(image, sigma, True, tf.constant([3, 4])) - image).numpy() * 255
    assert abs(grey.std() / sigma - 1) < 0.03
    np.testing.assert_array_equal(grey[..., 0], grey[..., 2])
    clipped = ops.add_gaussian_noise(tf.zeros((8, 8, 3)), 50.0, False, tf.constant([0, 0])).numpy()
    assert clipped.min() == 0 and clipped.max() <= 1


def _level_image(levels, block=64):
    """A (block * len(levels), block, 3) image of constant blocks at the given 0..255 levels."""
    values = np.repeat(np.asarray(levels, np.float32) / 255, block * block * 3)
    return values.reshape(len(levels) * block, block, 3)


@pytest.mark.parametrize("scale", [1.0, 0.5])
def test_poisson_noise_variance_is_scale2_mean_over_vals(scale):
    levels = [16 * k for k in range(16)]  # 16 distinct levels -> vals = 2 ** ceil(log2(16)) = 16
    image = _level_image(levels)
    noise = (ops.add_poisson_noise(tf.constant(image), scale, False, tf.constant([7, 8])).numpy() - image)
    for k in (2, 5, 9):  # away from 0 and 1 (no clipping)
        block = noise[k * 64 : (k + 1) * 64]
        mean = levels[k] / 255
        assert abs(block.var() / (scale**2 * mean / 16) - 1) < 0.06, k
        assert abs(block.mean()) < 0.01 * mean
    grey = ops.add_poisson_noise(tf.constant(image), scale, True, tf.constant([7, 8])).numpy()
    np.testing.assert_array_equal(grey[..., 0], grey[..., 1])


def test_poisson_photon_scale_counts_distinct_levels():
    # 200 distinct levels -> vals = 256: half the variance that 128 would give.
    image = _level_image([128] * 8, block=64)
    image[:200, 0, :] = (np.arange(200, dtype=np.float32) / 255)[:, None]
    noise = ops.add_poisson_noise(tf.constant(image), 1.0, False, tf.constant([1, 1])).numpy() - image
    block = noise[:, 1:]
    assert abs(block.var() / ((128 / 255) / 256) - 1) < 0.06


def test_jpeg_error_and_file_size_fall_with_quality(rng):
    image = smooth_image(rng, 64, 64).astype(np.float32)
    errors, sizes = [], []
    for quality in (10, 30, 50, 70, 90):
        out = ops.jpeg_compress(tf.constant(image), quality).numpy()
        reference, size = jpeg_round_trip(image, quality)
        np.testing.assert_array_equal(out, reference)  # a real 8-bit JPEG file's pixels
        errors.append(np.mean(np.abs(out - image)))
        sizes.append(size)
    assert errors == sorted(errors, reverse=True) and len(set(errors)) == 5
    assert sizes == sorted(sizes) and len(set(sizes)) == 5
    np.testing.assert_array_equal(np.round(out * 255), out * 255)
    with pytest.raises(ValueError, match="one \\(H, W, 1 or 3\\) image"):
        ops.jpeg_compress(tf.zeros((2, 8, 8, 3)), 50)


# ---------------------------------------------------------------- the two stages


def _fixed_sample(final_order):
    return {
        "kernel1": bivariate_gaussian(9, 2.0, 0.6, 0.5, isotropic=False),
        "kernel2": bivariate_gaussian(7, 1.0, 1.0, 0.0),
        "sinc_kernel": circular_lowpass_kernel(1.5, 7),
        "resize1_scale": 0.7, "resize1_method": "bilinear", "noise1": "gaussian", "noise1_level": 0.0,
        "noise1_gray": False, "jpeg1_quality": 80,
        "resize2_scale": 1.1, "resize2_method": "bicubic", "noise2": "poisson", "noise2_level": 0.0,
        "noise2_gray": True, "jpeg2_quality": 60,
        "final_order": final_order, "final_method": "area",
    }


@pytest.mark.parametrize("final_order", realworld.FINAL_ORDERS)
def test_degrade_applies_the_stages_in_real_esrgans_order(rng, final_order):
    image = smooth_image(rng, 64, 64)
    sample = _fixed_sample(final_order)
    out = realworld.degrade(tf.constant(image, tf.float32), sample, tf.constant([0, 0]), scale=4).numpy()

    def resized(x, size, method):
        return np.clip(tf.image.resize(x.astype(np.float32), size, method=method).numpy(), 0, 1)

    x = correlate_mirror(image, sample["kernel1"])
    x = resized(x, (44, 44), "bilinear")  # int(64 * 0.7); zero noise: only the clip
    x = jpeg_round_trip(x, 80)[0]
    x = correlate_mirror(x.astype(np.float64), sample["kernel2"])
    x = resized(x, (17, 17), "bicubic")  # int(64 / 4 * 1.1)
    if final_order == "resize_sinc_jpeg":
        x = correlate_mirror(tf.image.resize(x, (16, 16), "area").numpy(), sample["sinc_kernel"])
        x = jpeg_round_trip(x, 60)[0]
    else:
        x = jpeg_round_trip(x, 60)[0]
        x = correlate_mirror(tf.image.resize(x, (16, 16), "area").numpy(), sample["sinc_kernel"])
    expected = np.clip(np.round(x * 255), 0, 255) / 255
    assert out.shape == (16, 16, 3)
    np.testing.assert_array_equal(np.round(out * 255), out * 255)
    # float32 against float64 may move a pixel across a rounding step before a JPEG.
    assert np.mean(np.abs(out - expected)) < 0.3 / 255 and np.abs(out - expected).max() <= 4 / 255


def test_sample_degradation_follows_the_yml_probabilities():
    config = DegradationConfig()
    rng = np.random.default_rng(0)
    n = 1500
    samples = [realworld.sample_degradation(config, rng) for _ in range(n)]

    def close(fraction, p):
        return abs(fraction - p) < 4 * math.sqrt(p * (1 - p) / n)

    def share(test):
        return sum(map(test, samples)) / n

    for direction, p in zip(realworld.RESIZE_DIRECTIONS, config.resize_prob):
        assert close(share(lambda s: s["resize1"] == direction), p), direction
    for direction, p in zip(realworld.RESIZE_DIRECTIONS, config.resize_prob2):
        assert close(share(lambda s: s["resize2"] == direction), p), direction
    assert close(share(lambda s: s["blur1"].startswith("sinc")), config.sinc_prob)
    assert close(share(lambda s: s["blur2"] != "none"), config.second_blur_prob)
    assert close(share(lambda s: s["final_sinc"] != "none"), config.final_sinc_prob)
    assert close(share(lambda s: s["noise1"] == "gaussian"), config.gaussian_noise_prob)
    assert close(share(lambda s: s["noise2_gray"]), config.gray_noise_prob2)
    assert close(share(lambda s: s["final_order"] == "jpeg_resize_sinc"), 0.5)
    assert close(share(lambda s: s["final_method"] == "bicubic"), 1 / 3)
    for s in samples:
        assert 30 <= s["jpeg1_quality"] <= 95 and 30 <= s["jpeg2_quality"] <= 95
        low, high = {"up": (1, 1.5), "down": (0.15, 1), "keep": (1, 1)}[s["resize1"]]
        assert low <= s["resize1_scale"] <= high
        sizes = {s["kernel1"].shape[0], s["kernel2"].shape[0], s["sinc_kernel"].shape[0]}
        assert sizes <= {1, 7, 9, 11, 13, 15, 17, 19, 21}
        level, (g_low, g_high) = s["noise1_level"], config.noise_range
        if s["noise1"] == "gaussian":
            assert g_low <= level <= g_high
        else:
            assert config.poisson_scale_range[0] <= level <= config.poisson_scale_range[1]


def test_pipeline_sampler_draws_what_sample_for_describes():
    config = DegradationConfig()
    kernel1, kernel2, sinc_kernel, vector = realworld._Sampler(config)(np.int64(3), np.int64(41))
    described = realworld.sample_for(config, 3, 41)
    np.testing.assert_array_equal(kernel1, described["kernel1"])
    np.testing.assert_array_equal(sinc_kernel, described["sinc_kernel"])
    np.testing.assert_array_equal(vector, realworld._as_vector(described))


@pytest.mark.parametrize(
    "options,message",
    [
        ({"sinc_prob": 1.5}, "sinc_prob=1.5 must be a probability"),
        ({"resize_prob": (0.5, 0.5, 0.5)}, "resize_prob.*summing to 1"),
        ({"resize_range": (1.2, 1.5)}, "resize_range.*low <= 1 <= high"),
        ({"kernel_list": ("iso", "box"), "kernel_prob": (0.5, 0.5)}, "unknown kernel type.*box"),
        ({"kernel_prob2": (1.0,)}, "kernel_prob2.*one weight for each"),
        ({"jpeg_range2": (30, 120)}, "jpeg_range2.*1..100"),
        ({"jpeg_range": (95, 30)}, "jpeg_range.*low > high"),
        ({"blur_sigma": (0, 3)}, "blur_sigma.*positive"),
        ({"betap_range2": (1.5, 2)}, "betap_range2.*low <= 1 <= high"),
        ({"blur_kernel_size": 20}, "blur_kernel_size=20 must be an odd int"),
        ({"noise_range": 5}, "noise_range=5 must be a \\(low, high\\) pair"),
        ({"gt_usm": "yes"}, "gt_usm"),
    ],
)
def test_bad_config_is_named(options, message):
    with pytest.raises(ValueError, match=message):
        DegradationConfig(**options)


def test_config_normalises_lists_and_is_frozen():
    config = DegradationConfig(noise_range=[2, 4], kernel_list=["iso"], kernel_prob=[1])
    assert config.noise_range == (2.0, 4.0) and config.kernel_list == ("iso",)
    assert hash(config) == hash(DegradationConfig(noise_range=(2, 4), kernel_list=("iso",), kernel_prob=(1,)))
    with pytest.raises(Exception, match="cannot assign"):
        config.sinc_prob = 0.5


# ---------------------------------------------------------------- pipeline


def _images(rng):
    shapes = [(80, 72), (40, 52), (64, 64)]  # one smaller than the degraded region: padded
    images = [np.round(smooth_image(rng, h, w) * 255).astype(np.uint8) for h, w in shapes]
    return tf.data.Dataset.from_generator(
        lambda: iter(images), output_signature=tf.TensorSpec((None, None, 3), tf.uint8)
    )


def _batches(ds, count=3):
    iterator = iter(ds)
    return [[t.numpy() for t in next(iterator)] for _ in range(count)]


def test_pipeline_shapes_and_determinism(rng):
    source = _images(rng)
    kwargs = dict(batch_size=2, patch_size=32, crop_pad_size=64, deterministic=True)
    first = _batches(realworld_pipeline(source, seed=0, **kwargs))
    again = _batches(realworld_pipeline(source, seed=0, **kwargs))
    other = _batches(realworld_pipeline(source, seed=1, **kwargs))
    for (lr, hr), (lr2, hr2) in zip(first, again):
        np.testing.assert_array_equal(lr, lr2)
        np.testing.assert_array_equal(hr, hr2)
    assert not all(np.array_equal(a[0], b[0]) for a, b in zip(first, other))
    lr, hr = first[0]
    assert lr.shape == (2, 8, 8, 3) and hr.shape == (2, 32, 32, 3)
    assert lr.dtype == hr.dtype == np.float32
    assert lr.min() >= 0 and lr.max() <= 1 and hr.min() >= 0 and hr.max() <= 1
    np.testing.assert_array_equal(np.round(lr * 255), lr * 255)  # clamped and rounded


def test_pipeline_usm_outputs_are_consistent(rng):
    source = _images(rng)
    kwargs = dict(batch_size=3, patch_size=16, crop_pad_size=32, deterministic=True, seed=5)
    lr, hr = _batches(realworld_pipeline(source, **kwargs), 1)[0]
    lr3, hr_plain, hr_usm = _batches(realworld_pipeline(source, with_usm=True, **kwargs), 1)[0]
    np.testing.assert_array_equal(lr, lr3)
    np.testing.assert_array_equal(hr, hr_usm)  # gt_usm: the target is the sharpened GT
    np.testing.assert_allclose(np.round(hr_plain * 255), hr_plain * 255, atol=1e-4)  # plain uint8 crop
    assert np.abs(hr_usm - hr_plain).max() > 0.01
    plain = DegradationConfig(gt_usm=False)
    lr_plain, hr_target = _batches(realworld_pipeline(source, config=plain, **kwargs), 1)[0]
    np.testing.assert_array_equal(hr_target, hr_plain)
    assert not np.array_equal(lr_plain, lr)  # the LR is made from the unsharpened GT


def test_pipeline_takes_pairs_and_folders(tmp_path, rng):
    image = np.round(smooth_image(rng, 48, 48) * 255).astype(np.uint8)
    write_image(tmp_path / "a.png", image)
    pairs = tf.data.Dataset.from_tensors((tf.zeros((12, 12, 3), tf.uint8), tf.constant(image)))
    kwargs = dict(batch_size=1, patch_size=16, crop_pad_size=32, deterministic=True, seed=2)
    from_pairs = _batches(realworld_pipeline(pairs, **kwargs), 1)[0]
    from_folder = _batches(realworld_pipeline(tmp_path, **kwargs), 1)[0]
    for a, b in zip(from_pairs, from_folder):
        np.testing.assert_array_equal(a, b)


def test_pipeline_bad_arguments_are_named(rng):
    source = _images(rng)
    with pytest.raises(ValueError, match="crop_pad_size=64 must be .* at least patch_size=128"):
        realworld_pipeline(source, patch_size=128, crop_pad_size=64)
    with pytest.raises(ValueError, match="crop_pad_size=66 must be a multiple of scale=4"):
        realworld_pipeline(source, patch_size=32, crop_pad_size=66)
    with pytest.raises(ValueError, match="source must be a folder"):
        realworld_pipeline(tf.data.Dataset.range(3), patch_size=32, crop_pad_size=64)
    with pytest.raises(TypeError, match="config must be a DegradationConfig"):
        realworld_pipeline(source, config={"sinc_prob": 0})
    with pytest.raises(FileNotFoundError, match="no such image file or folder"):
        realworld_pipeline("/nonexistent/folder")


# ---------------------------------------------------------------- samples on disk


def _contains(big, small):
    h, w = small.shape[:2]
    return any(
        np.array_equal(big[top : top + h, left : left + w], small)
        for top in range(big.shape[0] - h + 1)
        for left in range(big.shape[1] - w + 1)
    )


def test_write_degraded_samples(tmp_path, rng):
    folder = tmp_path / "hr"
    originals = {"a": (50, 44), "b": (36, 40)}
    for name, (h, w) in originals.items():
        write_image(folder / f"{name}.png", np.round(smooth_image(rng, h, w) * 255).astype(np.uint8))
    config = DegradationConfig(gt_usm=False)
    kwargs = dict(count=3, crop_pad_size=32, config=config)
    paths = write_degraded_samples(folder, tmp_path / "out", seed=4, **kwargs)
    assert [p.rsplit("/", 1)[1] for p in paths] == ["000_a.png", "001_b.png", "002_a.png"]
    for path, source in zip(paths, "aba"):
        picture = read_image(path)
        assert picture.shape == (32, 32 + 4 + 32, 3)
        lr_big, hr = picture[:, :32], picture[:, 36:]
        np.testing.assert_array_equal(lr_big, np.repeat(np.repeat(lr_big[::4, ::4], 4, 0), 4, 1))
        assert _contains(read_image(folder / f"{source}.png"), hr)  # the HR is a crop of the image
    manifest = json.loads((tmp_path / "out" / "degradations.json").read_text())
    assert [s["file"] for s in manifest["samples"]] == ["000_a.png", "001_b.png", "002_a.png"]
    assert all(30 <= s["degradation"]["jpeg2_quality"] <= 95 for s in manifest["samples"])
    assert manifest["samples"][1]["degradation"] == {
        k: v for k, v in realworld.sample_for(config, 4, 1).items() if "kernel" not in k
    }
    again = write_degraded_samples(folder, tmp_path / "again", seed=4, **kwargs)
    other = write_degraded_samples(folder, tmp_path / "other", seed=5, **kwargs)
    assert [open(p, "rb").read() for p in paths] == [open(p, "rb").read() for p in again]
    assert [open(p, "rb").read() for p in paths] != [open(p, "rb").read() for p in other]
    with pytest.raises(ValueError, match="count must be a positive int"):
        write_degraded_samples(folder, tmp_path / "x", count=0)
    with pytest.raises(FileNotFoundError):
        write_degraded_samples(tmp_path / "missing", tmp_path / "x")
