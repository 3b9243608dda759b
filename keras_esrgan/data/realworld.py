"""Real-ESRGAN's high-order degradation: real-world-looking LR images made from HR images in tf.data.

ESRGAN trained on bicubic LR images sharpens clean downscales and fails on photos: JPEG blocks,
sensor noise, blur, images resized twice on the way to the web. Real-ESRGAN (Wang et al. 2021)
trains on LR images made by applying a classical degradation twice, as `realesrgan_model.py`'s
`feed_data` does, with the ranges of `options/train_realesrgan_x4plus.yml`:

    GT (400 x 400 crop, reflect-padded if smaller) -> USM sharpening (`gt_usm`)
    first stage:  blur (random kernel, or 2-D sinc) -> resize up/down/keep (area, bilinear or
                  bicubic) -> Gaussian or Poisson noise (colour or grey) -> JPEG
    second stage: blur (with probability 0.8) -> resize around the LR size -> noise -> then,
                  in random order: [resize to the LR size + final sinc filter] and JPEG
    -> clamp and round to 8 bits -> aligned random crop of (LR, HR) -> horizontal flip

`DegradationConfig` holds the yml's options under the yml's names. `sample_degradation` draws
everything random about one image (kernels, factors, noise levels, qualities) with numpy;
`degrade` applies it with TF ops (`keras_esrgan.data.degradation_ops`); `realworld_pipeline`
does both inside `tf.data` and batches the patches.

Differences from Real-ESRGAN, each deliberate:

- Every random choice is made per image. Real-ESRGAN draws the resize factor and method, the
  noise type, the second blur and the final order once per batch (they run on a GPU batch),
  and adds a 180-image pool to mix batches; per-image draws give that diversity without it.
- The randomness comes from the seed and the image's position in the stream only, so the
  same seed gives the same batches (`deterministic=True`). The kernels and values are drawn by
  a `tf.numpy_function` with a `numpy.random.Generator` seeded by `(seed, index)`: kernel maths
  stays in the tested numpy functions, every image gets fresh kernels (a precomputed bank would
  repeat them) and parallel map calls cannot change the result. Its cost, under 1 ms a call
  (holding the GIL), is small against the 40-50 ms of TF ops a 400-pixel region takes on a CPU.
- The flip is applied to the (LR, HR) patches after degradation, where BasicSR flips the GT
  before it: the same distribution (every kernel's rotation range is symmetric), except that
  JPEG's 8 x 8 block grid is then anchored at the other edge.
- JPEG is libjpeg at an integer quality on 8-bit images, not DiffJPEG (see
  `degradation_ops.jpeg_compress`); bicubic and area resizing are TF's (see `degradation_ops`).
- The USM target `hr_usm` is the crop of the sharpened 400-pixel region. Real-ESRGAN sharpens
  its crop again after the pool (needed there because the pool swaps images); the two differ
  only within the 25-pixel blur radius of the patch border, where this one sees real context.
"""

import dataclasses
import math
import random

import numpy as np
import tensorflow as tf

from keras_esrgan.data.augment import random_crop, random_flip_rotate
from keras_esrgan.data.degradation_ops import (
    RESIZE_METHODS,
    add_gaussian_noise,
    add_poisson_noise,
    filter2d,
    jpeg_compress,
    reflect_pad,
    resize,
    usm_sharp,
)
from keras_esrgan.data.hr_images import hr_images
from keras_esrgan.data.kernels import (
    KERNEL_TYPES,
    choose_kernel_type,
    circular_lowpass_kernel,
    random_kernel_of_type,
)
from keras_esrgan.data.pipeline import BATCH_SIZE, PATCH_SIZE
from keras_esrgan.pixels import peak, tf_quantize, tf_to_float

AUTOTUNE = tf.data.AUTOTUNE
REAL_ESRGAN_KERNEL_PROB = (0.45, 0.25, 0.12, 0.03, 0.12, 0.03)
RESIZE_DIRECTIONS = ("up", "down", "keep")
FINAL_ORDERS = ("resize_sinc_jpeg", "jpeg_resize_sinc")
MIN_KERNEL_SIZE = 7
# Real-ESRGAN's `crop_pad_size`: the side of the region of each HR image that is degraded.
CROP_PAD_SIZE = 400

_PAIRS = (
    "blur_sigma", "betag_range", "betap_range", "resize_range", "noise_range", "poisson_scale_range",
    "jpeg_range", "blur_sigma2", "betag_range2", "betap_range2", "resize_range2", "noise_range2",
    "poisson_scale_range2", "jpeg_range2",
)
_PROBABILITIES = (
    "sinc_prob", "gaussian_noise_prob", "gray_noise_prob", "second_blur_prob", "sinc_prob2",
    "gaussian_noise_prob2", "gray_noise_prob2", "final_sinc_prob",
)


@dataclasses.dataclass(frozen=True)
class DegradationConfig:
    """The options of Real-ESRGAN's degradation, with the names and defaults of its x4plus yml.

    The defaults are `options/train_realesrgan_x4plus.yml` (the same as RealESRNet's). Suffix
    `2`: the second stage. Ranges are `(low, high)`, drawn uniformly; lists are converted to
    tuples; every value is checked when the config is made, with an error naming the option.

    Attributes:
        blur_kernel_size, blur_kernel_size2: largest blur kernel, odd, >= 7; sizes are drawn
            from the odd sizes 7..this (BasicSR hard-codes 7..21 and ignores the option). The
            final sinc kernel takes the first stage's sizes.
        kernel_list, kernel_list2: kernel types among `kernels.KERNEL_TYPES`.
        kernel_prob, kernel_prob2: a weight for each type.
        sinc_prob, sinc_prob2: probability of a 2-D sinc kernel instead (cutoff U(pi/3, pi)
            for kernels below 13 taps, U(pi/5, pi) otherwise).
        blur_sigma, blur_sigma2: sigma range of all kernel types, in pixels.
        betag_range, betag_range2: generalized Gaussian shape, low <= 1 <= high.
        betap_range, betap_range2: plateau shape, low <= 1 <= high.
        resize_prob, resize_prob2: probabilities of (up, down, keep).
        resize_range, resize_range2: factor range, low <= 1 <= high: up draws U(1, high), down
            U(low, 1). The first stage scales the image; the second the LR size.
        gaussian_noise_prob, gaussian_noise_prob2: probability of Gaussian noise (else Poisson).
        noise_range, noise_range2: Gaussian sigma range in 0..255 levels.
        poisson_scale_range, poisson_scale_range2: Poisson noise scale range.
        gray_noise_prob, gray_noise_prob2: probability that the noise is grey (all channels).
        jpeg_range, jpeg_range2: JPEG quality range, within 1..100 (rounded per image).
        second_blur_prob: probability of the second stage's blur.
        final_sinc_prob: probability of the final sinc filter.
        gt_usm: USM-sharpen the ground truth; the LR images are made from the sharpened GT
            (Real-ESRGAN always, RealESRNet's `gt_usm: True`) and it is the training target.

    Example:
    >>> DegradationConfig().jpeg_range
    (30, 95)
    >>> DegradationConfig(noise_range=[0, 5]).noise_range
    (0.0, 5.0)
    """

    blur_kernel_size: int = 21
    kernel_list: tuple = KERNEL_TYPES
    kernel_prob: tuple = REAL_ESRGAN_KERNEL_PROB
    sinc_prob: float = 0.1
    blur_sigma: tuple = (0.2, 3.0)
    betag_range: tuple = (0.5, 4.0)
    betap_range: tuple = (1.0, 2.0)
    resize_prob: tuple = (0.2, 0.7, 0.1)
    resize_range: tuple = (0.15, 1.5)
    gaussian_noise_prob: float = 0.5
    noise_range: tuple = (1.0, 30.0)
    poisson_scale_range: tuple = (0.05, 3.0)
    gray_noise_prob: float = 0.4
    jpeg_range: tuple = (30, 95)

    second_blur_prob: float = 0.8
    blur_kernel_size2: int = 21
    kernel_list2: tuple = KERNEL_TYPES
    kernel_prob2: tuple = REAL_ESRGAN_KERNEL_PROB
    sinc_prob2: float = 0.1
    blur_sigma2: tuple = (0.2, 1.5)
    betag_range2: tuple = (0.5, 4.0)
    betap_range2: tuple = (1.0, 2.0)
    resize_prob2: tuple = (0.3, 0.4, 0.3)
    resize_range2: tuple = (0.3, 1.2)
    gaussian_noise_prob2: float = 0.5
    noise_range2: tuple = (1.0, 25.0)
    poisson_scale_range2: tuple = (0.05, 2.5)
    gray_noise_prob2: float = 0.4
    jpeg_range2: tuple = (30, 95)

    final_sinc_prob: float = 0.8
    gt_usm: bool = True

    def __post_init__(self):
        def fail(name, why):
            raise ValueError(f"DegradationConfig: {name}={getattr(self, name)!r} {why}")

        def number(value):
            return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)

        for name in _PAIRS:
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
                fail(name, "must be a (low, high) pair")
            if not all(number(v) and math.isfinite(v) for v in value):
                fail(name, "must hold two finite numbers")
            if value[0] > value[1]:
                fail(name, "has low > high")
            kind = int if name.startswith("jpeg") else float
            object.__setattr__(self, name, tuple(kind(v) for v in value))
        for name in ("jpeg_range", "jpeg_range2"):
            if not 1 <= getattr(self, name)[0] <= getattr(self, name)[1] <= 100:
                fail(name, "must lie within 1..100 (JPEG quality)")
        for name in ("blur_sigma", "blur_sigma2"):
            if getattr(self, name)[0] <= 0:
                fail(name, "must be positive (pixels)")
        for name in ("noise_range", "noise_range2", "poisson_scale_range", "poisson_scale_range2"):
            if getattr(self, name)[0] < 0:
                fail(name, "must not be negative")
        for name in ("betag_range", "betag_range2", "betap_range", "betap_range2"):
            low, high = getattr(self, name)
            if not 0 < low <= 1 <= high:
                fail(name, "must satisfy 0 < low <= 1 <= high (beta is drawn below or above 1)")
        for name in ("resize_range", "resize_range2"):
            low, high = getattr(self, name)
            if not 0 < low <= 1 <= high:
                fail(name, "must satisfy 0 < low <= 1 <= high (down draws U(low, 1), up U(1, high))")
        for name in _PROBABILITIES:
            value = getattr(self, name)
            if not number(value) or not 0 <= value <= 1:
                fail(name, "must be a probability in [0, 1]")
            object.__setattr__(self, name, float(value))
        for name in ("resize_prob", "resize_prob2"):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 3:
                fail(name, "must be 3 probabilities (up, down, keep)")
            if not all(number(v) and v >= 0 for v in value) or abs(sum(value) - 1) > 1e-6:
                fail(name, "must be 3 non-negative probabilities summing to 1")
            object.__setattr__(self, name, tuple(float(v) for v in value))
        for suffix in ("", "2"):
            names, weights = f"kernel_list{suffix}", f"kernel_prob{suffix}"
            kernel_list, kernel_prob = getattr(self, names), getattr(self, weights)
            if isinstance(kernel_list, str) or not kernel_list:
                fail(names, f"must be a non-empty list of kernel types among {KERNEL_TYPES}")
            unknown = [k for k in kernel_list if k not in KERNEL_TYPES]
            if unknown:
                fail(names, f"has unknown kernel type(s) {unknown}; known: {', '.join(KERNEL_TYPES)}")
            if isinstance(kernel_prob, str) or len(kernel_prob) != len(kernel_list):
                fail(weights, f"must have one weight for each of the {len(kernel_list)} kernel types")
            if not all(number(v) and v >= 0 for v in kernel_prob) or not sum(kernel_prob) > 0:
                fail(weights, "must be non-negative weights with a positive sum")
            object.__setattr__(self, names, tuple(kernel_list))
            object.__setattr__(self, weights, tuple(float(v) for v in kernel_prob))
        for name in ("blur_kernel_size", "blur_kernel_size2"):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < MIN_KERNEL_SIZE or value % 2 == 0:
                fail(name, f"must be an odd int >= {MIN_KERNEL_SIZE}")
        if not isinstance(self.gt_usm, bool):
            fail("gt_usm", "must be True or False")


def _kernel_sizes(largest):
    return np.arange(MIN_KERNEL_SIZE, largest + 1, 2)


def _sinc(rng, size, low):
    cutoff = rng.uniform(low, np.pi)
    return circular_lowpass_kernel(cutoff, int(size))


def _blur_kernel(config, rng, suffix):
    """(kernel, name) of one stage's blur, as BasicSR's `RealESRGANDataset.__getitem__`."""
    size = int(rng.choice(_kernel_sizes(getattr(config, f"blur_kernel_size{suffix}"))))
    if rng.uniform() < getattr(config, f"sinc_prob{suffix}"):
        # Smaller kernels cannot hold the ripples of a low cutoff: BasicSR's rule.
        return _sinc(rng, size, np.pi / 3 if size < 13 else np.pi / 5), f"sinc{size}"
    kernel_list = getattr(config, f"kernel_list{suffix}")
    kernel_type = choose_kernel_type(kernel_list, getattr(config, f"kernel_prob{suffix}"), rng)
    sigma = getattr(config, f"blur_sigma{suffix}")
    kernel = random_kernel_of_type(
        kernel_type, size, sigma, sigma, (-math.pi, math.pi),
        getattr(config, f"betag_range{suffix}"), getattr(config, f"betap_range{suffix}"), rng=rng,
    )
    return kernel, f"{kernel_type}{size}"


def _resize_draw(config, rng, suffix):
    probabilities = np.asarray(getattr(config, f"resize_prob{suffix}"))
    direction = RESIZE_DIRECTIONS[rng.choice(3, p=probabilities / probabilities.sum())]
    low, high = getattr(config, f"resize_range{suffix}")
    factor = {"up": lambda: rng.uniform(1, high), "down": lambda: rng.uniform(low, 1), "keep": lambda: 1.0}
    return direction, float(factor[direction]()), RESIZE_METHODS[rng.integers(3)]


def _noise_draw(config, rng, suffix):
    gaussian = rng.uniform() < getattr(config, f"gaussian_noise_prob{suffix}")
    if gaussian:
        level = rng.uniform(*getattr(config, f"noise_range{suffix}"))
    else:
        level = rng.uniform(*getattr(config, f"poisson_scale_range{suffix}"))
    gray = bool(rng.uniform() < getattr(config, f"gray_noise_prob{suffix}"))
    return ("gaussian" if gaussian else "poisson"), float(level), gray


def _quality(rng, jpeg_range):
    return int(round(rng.uniform(*jpeg_range)))


def sample_degradation(config, rng):
    """Draw everything random about the degradation of one image.

    Args:
        config: `DegradationConfig`.
        rng: `numpy.random.Generator` (or an int seed).

    Returns:
        dict: `kernel1`, `kernel2`, `sinc_kernel` (float32 odd-sized square arrays; `[[1.]]`
        when that blur is skipped), and JSON-able descriptions: `blur1` / `blur2` / `final_sinc`
        (kernel type and size, e.g. `"aniso13"`, `"sinc9"`, or `"none"`), `resize1` /
        `resize2` (`"up"`, `"down"`, `"keep"`), `resize1_scale` / `resize2_scale`,
        `resize1_method` / `resize2_method` / `final_method` (`"area"`, `"bilinear"`,
        `"bicubic"`), `noise1` / `noise2` (`"gaussian"` or `"poisson"`), `noise1_level` /
        `noise2_level` (sigma in levels, or Poisson scale), `noise1_gray` / `noise2_gray`,
        `jpeg1_quality` / `jpeg2_quality` (ints) and `final_order` (`"resize_sinc_jpeg"` or
        `"jpeg_resize_sinc"`).

    Example:
    >>> d = sample_degradation(DegradationConfig(), np.random.default_rng(0))
    >>> d["kernel1"].dtype, d["final_order"] in FINAL_ORDERS
    (dtype('float32'), True)
    """
    if not isinstance(config, DegradationConfig):
        raise TypeError(
            f"sample_degradation: config must be a DegradationConfig, got {type(config).__name__}"
        )
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    kernel1, blur1 = _blur_kernel(config, rng, "")
    kernel2, blur2 = _blur_kernel(config, rng, "2")
    if rng.uniform() < config.final_sinc_prob:
        size = int(rng.choice(_kernel_sizes(config.blur_kernel_size)))
        sinc_kernel, final_sinc = _sinc(rng, size, np.pi / 3), f"sinc{size}"
    else:
        sinc_kernel, final_sinc = np.ones((1, 1)), "none"
    out = {"kernel1": kernel1, "blur1": blur1}
    out["resize1"], out["resize1_scale"], out["resize1_method"] = _resize_draw(config, rng, "")
    out["noise1"], out["noise1_level"], out["noise1_gray"] = _noise_draw(config, rng, "")
    out["jpeg1_quality"] = _quality(rng, config.jpeg_range)
    if rng.uniform() >= config.second_blur_prob:
        kernel2, blur2 = np.ones((1, 1)), "none"
    out["kernel2"], out["blur2"] = kernel2, blur2
    out["resize2"], out["resize2_scale"], out["resize2_method"] = _resize_draw(config, rng, "2")
    out["noise2"], out["noise2_level"], out["noise2_gray"] = _noise_draw(config, rng, "2")
    out["final_order"] = FINAL_ORDERS[int(rng.uniform() >= 0.5)]
    out["final_method"] = RESIZE_METHODS[rng.integers(3)]
    out["jpeg2_quality"] = _quality(rng, config.jpeg_range2)
    out["sinc_kernel"], out["final_sinc"] = sinc_kernel, final_sinc
    for key in ("kernel1", "kernel2", "sinc_kernel"):
        out[key] = np.asarray(out[key], np.float32)
    return out


# The numeric part of a sample, in the order the tf.numpy_function returns it as one vector.
_VECTOR = (
    "resize1_scale", "resize1_method", "noise1", "noise1_level", "noise1_gray", "jpeg1_quality",
    "resize2_scale", "resize2_method", "noise2", "noise2_level", "noise2_gray", "jpeg2_quality",
    "final_order", "final_method",
)
_CODES = {"noise1": ("gaussian", "poisson"), "noise2": ("gaussian", "poisson"), "final_order": FINAL_ORDERS}
_CODES.update({key: RESIZE_METHODS for key in ("resize1_method", "resize2_method", "final_method")})


def _as_vector(sample):
    values = [_CODES[k].index(sample[k]) if k in _CODES else float(sample[k]) for k in _VECTOR]
    return np.asarray(values, np.float32)


def _as_tensors(sample):
    """A sample (from `sample_degradation`, or already tensors) as a dict of tensors."""
    if "vector" not in sample:
        sample = {
            "kernel1": sample["kernel1"], "kernel2": sample["kernel2"], "sinc_kernel": sample["sinc_kernel"],
            "vector": _as_vector(sample),
        }
    vector = tf.convert_to_tensor(sample["vector"], tf.float32)
    out = {k: tf.convert_to_tensor(sample[k], tf.float32) for k in ("kernel1", "kernel2", "sinc_kernel")}
    out.update({key: vector[i] for i, key in enumerate(_VECTOR)})
    return out


def _blur(image, kernel):
    """`filter2d`, skipped for the `[[1]]` kernel of a blur that was not drawn."""
    return tf.cond(tf.shape(kernel)[0] > 1, lambda: filter2d(image, kernel), lambda: image)


def _noise(image, poisson, level, gray, seed):
    return tf.cond(
        poisson > 0.5,
        lambda: add_poisson_noise(image, level, gray > 0.5, seed),
        lambda: add_gaussian_noise(image, level, gray > 0.5, seed),
    )


def _jpeg(image, quality):
    return jpeg_compress(tf.ensure_shape(image, (None, None, 3)), tf.cast(quality, tf.int32))


def degrade(image, degradation, seed, scale=4):
    """Apply a drawn degradation to one (sharpened) GT image: Real-ESRGAN's two stages.

    Args:
        image: float32 `(H, W, 3)` in [0, 1]; `H` and `W` multiples of `scale`.
        degradation: a dict from `sample_degradation` (or its tensor form in a pipeline).
        seed: shape-[2] int tensor for the noise.
        scale: int; the result is `(H // scale, W // scale)`.

    Returns:
        float32 `(H // scale, W // scale, 3)`, multiples of 1/255 in [0, 1].

    Example:
    >>> d = sample_degradation(DegradationConfig(), 0)
    >>> degrade(tf.random.uniform((64, 64, 3)), d, tf.constant([0, 0])).shape
    TensorShape([16, 16, 3])
    """
    d = _as_tensors(degradation)
    image = tf.ensure_shape(tf.cast(image, tf.float32), (None, None, 3))
    noise1_seed, noise2_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    size = tf.shape(image)[:2]
    lr_size = size // scale

    # First stage. Sizes are truncated as PyTorch's F.interpolate and int() truncate them.
    out = _blur(image, d["kernel1"])
    size1 = tf.maximum(tf.cast(tf.cast(size, tf.float32) * d["resize1_scale"], tf.int32), 1)
    out = resize(out, size1, d["resize1_method"])
    out = _noise(out, d["noise1"], d["noise1_level"], d["noise1_gray"], noise1_seed)
    out = _jpeg(out, d["jpeg1_quality"])

    # Second stage: its resize is relative to the LR size.
    out = _blur(out, d["kernel2"])
    size2 = tf.cast(tf.cast(size, tf.float32) / scale * d["resize2_scale"], tf.int32)
    out = resize(out, tf.maximum(size2, 1), d["resize2_method"])
    out = _noise(out, d["noise2"], d["noise2_level"], d["noise2_gray"], noise2_seed)

    def resize_and_sinc(x):
        return _blur(resize(x, lr_size, d["final_method"]), d["sinc_kernel"])

    # Real-ESRGAN found other orders (sinc, JPEG, resize) make twisted lines.
    out = tf.cond(
        d["final_order"] > 0.5,
        lambda: resize_and_sinc(_jpeg(out, d["jpeg2_quality"])),
        lambda: _jpeg(resize_and_sinc(out), d["jpeg2_quality"]),
    )
    out = tf_to_float(tf_quantize(out))  # saved as 8-bit, as Real-ESRGAN rounds its LR
    return tf.ensure_shape(out, (None, None, 3))


def _check_image_source(source, name):
    """A dataset of single HR images from a folder, a list of files, or a dataset (of pairs)."""
    if not isinstance(source, tf.data.Dataset):
        source = hr_images(source)
    spec = source.element_spec
    if isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(s, tf.TensorSpec) for s in spec):
        source, spec = source.map(lambda lr, hr: hr), spec[1]  # (lr, hr) pairs: the LR is remade
    if not isinstance(spec, tf.TensorSpec) or spec.shape.rank != 3:
        raise ValueError(
            f"{name}: the source must be a folder, a list of image files, or a dataset of (H, W, 3) "
            f"images or (lr, hr) pairs; got elements {spec}"
        )
    if spec.shape[-1] not in (None, 3):
        raise ValueError(f"{name}: images must have 3 channels (RGB), got {spec.shape[-1]}")
    peak(spec.dtype)  # an image dtype, or a clear ValueError
    return source


def _region(image, size, seed):
    """A random `size` x `size` crop, after reflect-101 padding at the bottom/right if smaller.

    As BasicSR's `RealESRGANDataset` (its `crop_pad_size`, 400 there).
    """
    shape = tf.shape(image)
    image = reflect_pad(image, 0, tf.maximum(size - shape[0], 0), 0, tf.maximum(size - shape[1], 0))
    shape = tf.shape(image)
    top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    top = tf.random.stateless_uniform((), top_seed, 0, shape[0] - size + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform((), left_seed, 0, shape[1] - size + 1, dtype=tf.int32)
    region = image[top : top + size, left : left + size]
    return tf.ensure_shape(region, (size, size, 3))


class _Sampler:
    """`(seed, index) -> kernels and values` for `tf.numpy_function`; pure in its arguments."""

    def __init__(self, config):
        self.config = config

    def __call__(self, seed, index):
        sample = sample_degradation(self.config, np.random.default_rng([int(seed), int(index)]))
        return sample["kernel1"], sample["kernel2"], sample["sinc_kernel"], _as_vector(sample)


def sample_for(config, seed, index):
    """The degradation `realworld_pipeline(seed=seed)` draws for element `index` of its stream.

    Example:
    >>> sample_for(DegradationConfig(), 0, 5)["blur1"] == sample_for(DegradationConfig(), 0, 5)["blur1"]
    True
    """
    return sample_degradation(config, np.random.default_rng([int(seed), int(index)]))


def degraded_example(image, seed, index, scale=4, *, config=None, crop_pad_size=CROP_PAD_SIZE):
    """One element of the real-world stream before the patch crop: `(lr, hr, hr_usm)`.

    What `realworld_pipeline` computes per image (and `write_degraded_samples` shows).

    Args:
        image: `(H, W, 3)` HR image, float in [0, 1] (cast from its dtype by the caller).
        seed: int or scalar int64 tensor, the pipeline's seed.
        index: int or scalar int64 tensor, the element's position in the stream.
        scale: int factor.
        config: `DegradationConfig` (default: Real-ESRGAN's).
        crop_pad_size: side of the region degraded (reflect-padded if the image is smaller).

    Returns:
        `(lr, hr, hr_usm)` float32: `(crop_pad_size // scale,) * 2 + (3,)`, then twice
        `(crop_pad_size, crop_pad_size, 3)`; `hr_usm` is `hr` USM-sharpened. The LR image was
        made from `hr_usm` when `config.gt_usm`, else from `hr`.

    Example:
    >>> lr, hr, hr_usm = degraded_example(tf.random.uniform((50, 70, 3)), 0, 0, crop_pad_size=64)
    >>> lr.shape, hr.shape
    (TensorShape([16, 16, 3]), TensorShape([64, 64, 3]))
    """
    config = DegradationConfig() if config is None else config
    seed = tf.cast(seed, tf.int64)
    index = tf.cast(index, tf.int64)
    region_seed, noise_seed = tf.unstack(tf.random.experimental.stateless_split(tf.stack([seed, index]), 2))
    hr = _region(tf.cast(image, tf.float32), crop_pad_size, region_seed)
    hr_usm = usm_sharp(hr)
    kernel1, kernel2, sinc_kernel, vector = tf.numpy_function(
        _Sampler(config), [seed, index], [tf.float32] * 4, stateful=False
    )
    for kernel in (kernel1, kernel2, sinc_kernel):
        kernel.set_shape((None, None))
    vector.set_shape((len(_VECTOR),))
    degradation = {"kernel1": kernel1, "kernel2": kernel2, "sinc_kernel": sinc_kernel, "vector": vector}
    lr = degrade(hr_usm if config.gt_usm else hr, degradation, noise_seed, scale)
    lr = tf.ensure_shape(lr, (crop_pad_size // scale, crop_pad_size // scale, 3))
    return lr, hr, hr_usm


def realworld_pipeline(
    source_hr,
    batch_size=BATCH_SIZE,
    patch_size=PATCH_SIZE,
    scale=4,
    *,
    config=None,
    crop_pad_size=CROP_PAD_SIZE,
    with_usm=False,
    cache=True,
    shuffle_buffer=None,
    augment=True,
    use_rot=False,
    repeat=True,
    deterministic=False,
    seed=None,
):
    """Batches of Real-ESRGAN-degraded LR patches and their HR patches, made inside `tf.data`.

    The interface of `training_pipeline`, for HR images only (the LR images are made here).

    Args:
        source_hr: a folder of HR images, a list of image files, or a `tf.data.Dataset` of
            `(H, W, 3)` images (uint8, uint16 or float in [0, 1]) or of `(lr, hr)` pairs (the
            LR images are ignored and remade).
        batch_size: patches per batch.
        patch_size: HR patch side (Real-ESRGAN: 256), a multiple of `scale`, at most
            `crop_pad_size`.
        scale: int factor between LR and HR.
        config: `DegradationConfig`; default Real-ESRGAN's x4plus options.
        crop_pad_size: side of the region of each image that is degraded (Real-ESRGAN's 400):
            the patch is cropped from it after degradation. Smaller is faster (cost grows with
            its area), larger gives the crop more room; a multiple of `scale`.
        with_usm: yield `(lr, hr, hr_usm)`: the plain and the USM-sharpened HR patch, for
            Real-ESRGAN's GAN stage (its L1 and perceptual losses use `hr_usm`, its GAN loss
            `hr`). Without it, `(lr, hr)` with `hr` the target: sharpened when `config.gt_usm`
            (RealESRNet's recipe), plain otherwise.
        cache: `True` caches the decoded HR images in memory, a path string in files there,
            `False` decodes every epoch. The degradation is never cached: each epoch draws new.
        shuffle_buffer: images in the shuffle buffer; default 1024 with an in-memory cache, 16
            otherwise.
        augment: random horizontal flips of the pairs (Real-ESRGAN's `use_hflip`).
        use_rot: also vertical flips and 90-degree rotations (Real-ESRGAN's `use_rot: False`).
        repeat: repeat forever; `False` gives one pass.
        deterministic: the same seed gives the same batches in the same order every run (as
            `training_pipeline`); `False` lets parallel maps finish out of order.
        seed: int; default 0 when `deterministic`, else drawn from the OS.

    Returns:
        `tf.data.Dataset` of float32 batches in [0, 1]: `lr` `(batch_size, patch_size // scale,
        patch_size // scale, 3)` in multiples of 1/255, `hr` (and `hr_usm`)
        `(batch_size, patch_size, patch_size, 3)`.

    Example:
    >>> images = tf.data.Dataset.from_tensors(tf.random.uniform((96, 96, 3)))
    >>> ds = realworld_pipeline(images, batch_size=2, patch_size=32, crop_pad_size=64, deterministic=True)
    >>> [t.shape for t in next(iter(ds))]
    [TensorShape([2, 8, 8, 3]), TensorShape([2, 32, 32, 3])]
    """
    name = "realworld_pipeline"
    config = DegradationConfig() if config is None else config
    if not isinstance(config, DegradationConfig):
        raise TypeError(f"{name}: config must be a DegradationConfig, got {type(config).__name__}")
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"{name}: scale must be a positive int, got {scale!r}")
    if not isinstance(patch_size, int) or patch_size < scale or patch_size % scale:
        raise ValueError(f"{name}: patch_size={patch_size!r} must be a positive multiple of scale={scale}")
    if not isinstance(crop_pad_size, int) or crop_pad_size < patch_size or crop_pad_size % scale:
        raise ValueError(
            f"{name}: crop_pad_size={crop_pad_size!r} must be a multiple of scale={scale} and at least "
            f"patch_size={patch_size}"
        )
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{name}: batch_size must be a positive int, got {batch_size!r}")
    source = _check_image_source(source_hr, name)
    if seed is None:
        seed = 0 if deterministic else random.SystemRandom().randrange(2**31)
    in_memory = cache is True
    if shuffle_buffer is None:
        shuffle_buffer = 1024 if in_memory else 16

    ds = source
    if cache:
        ds = ds.cache("" if in_memory else str(cache))
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def make_patches(index, image):
        image = tf_to_float(image)
        lr, hr, hr_usm = degraded_example(
            image, seed, index, scale, config=config, crop_pad_size=crop_pad_size
        )
        key = tf.random.experimental.stateless_fold_in(tf.stack([tf.constant(seed, tf.int64), index]), 1)
        crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(key, 2))
        if with_usm:
            targets = tf.concat([hr, hr_usm], axis=-1)
        else:
            targets = hr_usm if config.gt_usm else hr
        lr, targets = random_crop(lr, targets, patch_size, scale, crop_seed)
        if augment or use_rot:
            lr, targets = random_flip_rotate(lr, targets, flip_seed, hflip=augment, rotation=use_rot)
        if with_usm:
            return lr, targets[..., :3], targets[..., 3:]
        return lr, targets

    ds = ds.enumerate().map(make_patches, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    return ds.with_options(options)
