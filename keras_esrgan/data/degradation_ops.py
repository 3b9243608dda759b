"""The TF image operations of Real-ESRGAN's degradation: blur, resize, noise, JPEG, USM sharpening.

Each works on one float32 image in [0, 1] (`(H, W, C)`; `filter2d` and `usm_sharp` also on a
batch), with dynamic sizes, inside `tf.data` maps and `tf.function`s as well as eagerly. The
randomness they take is explicit (a shape-[2] seed for TF's stateless random ops, and values
drawn by `keras_esrgan.data.realworld.sample_degradation`), so that a seed reproduces them.

How they relate to BasicSR's PyTorch versions (`filter2D`, `USMSharp`, `F.interpolate`,
`random_add_*_noise_pt`, `DiffJPEG`):

- `filter2d` is the same: reflect padding without repeating the edge pixel (PyTorch's and
  numpy's `"reflect"`, OpenCV's `BORDER_REFLECT_101`, scipy.ndimage's `"mirror"`), then
  cross-correlation (PyTorch's `conv2d`). Here the padding works for any image size, where
  PyTorch's needs the image larger than half the kernel.
- `usm_sharp` is `USMSharp` (51 x 51 Gaussian, OpenCV's sigma 8 for it, weight 0.5, threshold 10
  levels), applied as two 1-D passes of the same separable kernel.
- `resize` uses `tf.image.resize` without antialiasing, as `F.interpolate`. `"bilinear"` matches
  PyTorch's (`align_corners=False`); `"bicubic"` is Keys' cubic with a = -0.5 where PyTorch
  uses a = -0.75 (slightly less overshoot); `"area"` weighs exact pixel overlaps where PyTorch's
  adaptive average pooling takes whole-pixel windows, which differs for non-integer factors.
- the noise functions follow BasicSR's formulas (Poisson noise included: same quantisation and
  the same `2 ** ceil(log2(number of distinct levels))` photon scale, counted exactly per
  image); only the random numbers differ.
- `jpeg_compress` is a real libjpeg round trip at an integer quality; see its docstring for how
  it differs from BasicSR's `DiffJPEG`.
"""

import math

import tensorflow as tf

from keras_esrgan.pixels import tf_quantize, tf_to_float

RESIZE_METHODS = ("area", "bilinear", "bicubic")
# torchvision's rgb_to_grayscale (ITU-R 601 luma), what BasicSR's grey Poisson noise starts from.
GREY_WEIGHTS = (0.299, 0.587, 0.114)


def _reflect_indices(length, before, after):
    """Source indices of a reflect-101 padding of an axis of `length`, for any padding size."""
    index = tf.range(-before, length + after)
    period = tf.maximum(2 * (length - 1), 1)
    folded = tf.math.floormod(index, period)
    return tf.where(folded < length, folded, period - folded)


def reflect_pad(image, top, bottom, left, right):
    """Pad the two spatial axes by reflection about the edge pixels (not repeating them).

    `[a, b, c, d]` padded by 2 on both sides is `[c, b, a, b, c, d, c, b]`, as numpy's and
    PyTorch's `"reflect"` mode, but here for any padding size (it folds back and forth).

    Args:
        image: `(H, W, C)` or `(B, H, W, C)` tensor.
        top, bottom, left, right: non-negative ints or scalar int tensors.

    Returns:
        tensor of `image`'s rank and dtype, `(H + top + bottom, W + left + right)` spatially.

    Example:
    >>> reflect_pad(tf.reshape(tf.range(4), (1, 4, 1)), 0, 0, 2, 2)[0, :, 0].numpy()
    array([2, 1, 0, 1, 2, 3, 2, 1], dtype=int32)
    """
    image = tf.convert_to_tensor(image)
    h_axis = len(image.shape) - 3
    shape = tf.shape(image)
    image = tf.gather(image, _reflect_indices(shape[h_axis], top, bottom), axis=h_axis)
    return tf.gather(image, _reflect_indices(shape[h_axis + 1], left, right), axis=h_axis + 1)


def filter2d(image, kernel):
    """Correlate every channel with a 2-D kernel after reflect padding, as BasicSR's `filter2D`.

    Args:
        image: float `(H, W, C)` or `(B, H, W, C)`.
        kernel: `(k, k)` with `k` odd, the same for every image and channel (cast to the
            image's dtype). A `1 x 1` kernel `[[1]]` returns the image unchanged.

    Returns:
        tensor of `image`'s shape and dtype.

    Example:
    >>> image = tf.random.uniform((8, 8, 3))
    >>> bool(tf.reduce_all(filter2d(image, tf.ones((1, 1))) == image))
    True
    """
    image = tf.convert_to_tensor(image)
    kernel = tf.convert_to_tensor(kernel, dtype=image.dtype)
    batched = len(image.shape) == 4
    if not batched:
        image = image[None]
    size = tf.shape(kernel)[0]
    check = tf.debugging.assert_equal(
        size % 2, 1, message="filter2d: the kernel size must be odd (centred kernel)"
    )
    with tf.control_dependencies([check]):
        pad = size // 2
    padded = reflect_pad(image, pad, pad, pad, pad)
    channels = tf.shape(image)[-1]
    taps = tf.tile(kernel[:, :, None, None], tf.stack([1, 1, channels, 1]))
    out = tf.nn.depthwise_conv2d(padded, taps, [1, 1, 1, 1], "VALID")
    out = tf.ensure_shape(out, image.shape)
    return out if batched else out[0]


def _separable_filter(image, taps):
    """`filter2d` with the outer product of a 1-D kernel, as a row pass and a column pass."""
    pad = taps.shape[0] // 2
    channels = image.shape[-1]
    out = reflect_pad(image, pad, pad, pad, pad)
    column = tf.tile(tf.reshape(taps, (-1, 1, 1, 1)), [1, 1, channels, 1])
    row = tf.tile(tf.reshape(taps, (1, -1, 1, 1)), [1, 1, channels, 1])
    out = tf.nn.depthwise_conv2d(out, column, [1, 1, 1, 1], "VALID")
    return tf.nn.depthwise_conv2d(out, row, [1, 1, 1, 1], "VALID")


def gaussian_taps(size, sigma=0.0):
    """OpenCV's `getGaussianKernel(size, sigma)` as a numpy-free list of floats summing to 1.

    A `sigma <= 0` is derived from the size as OpenCV does: `0.3 * ((size - 1) / 2 - 1) + 0.8`
    (8.0 for the 51 taps of USM sharpening).

    Example:
    >>> [round(t, 4) for t in gaussian_taps(3, 1.0)]
    [0.2741, 0.4519, 0.2741]
    """
    if sigma <= 0:
        sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8
    centre = (size - 1) / 2
    taps = [math.exp(-((i - centre) ** 2) / (2 * sigma * sigma)) for i in range(size)]
    total = sum(taps)
    return [t / total for t in taps]


def usm_sharp(image, weight=0.5, radius=50, threshold=10):
    """Unsharp masking of the ground truth, as BasicSR's `USMSharp` (Real-ESRGAN's `gt_usm`).

    `blur = G * image` (Gaussian of `radius` taps, made odd, OpenCV's default sigma);
    `residual = image - blur`; `mask = 1 where |residual| * 255 > threshold`, softened by the
    same blur; `sharp = clip(image + weight * residual, 0, 1)`;
    result `= soft_mask * sharp + (1 - soft_mask) * image`: edges are sharpened, flat areas and
    fine noise are left alone.

    Args:
        image: float `(H, W, C)` or `(B, H, W, C)` in [0, 1].
        weight: how much of the residual is added.
        radius: Gaussian size in taps (an even size is made odd by adding 1, as BasicSR does).
        threshold: residual, in 0..255 levels, below which nothing is sharpened.

    Returns:
        float tensor of `image`'s shape, in [0, 1].

    Example:
    >>> step = tf.concat([tf.zeros((64, 32, 3)), tf.ones((64, 32, 3)) * 0.5], axis=1)
    >>> sharp = usm_sharp(step)
    >>> bool(sharp[0, 31, 0] < 0.0001), bool(sharp[0, 32, 0] > 0.55)   # dark and bright sides
    (True, True)
    """
    image = tf.convert_to_tensor(image)
    if not image.dtype.is_floating:
        raise ValueError(f"usm_sharp: need a float image in [0, 1], got {image.dtype.name}")
    if radius % 2 == 0:
        radius += 1
    taps = tf.constant(gaussian_taps(radius), dtype=image.dtype)
    batched = len(image.shape) == 4
    batch = image if batched else image[None]
    residual = batch - _separable_filter(batch, taps)
    mask = tf.cast(tf.abs(residual) * 255.0 > threshold, image.dtype)
    soft_mask = _separable_filter(mask, taps)
    sharp = tf.clip_by_value(batch + weight * residual, 0.0, 1.0)
    out = soft_mask * sharp + (1.0 - soft_mask) * batch
    return out if batched else out[0]


def resize(image, size, method):
    """`tf.image.resize` without antialiasing, with the method chosen by a (tensor) index.

    Args:
        image: float `(H, W, C)`.
        size: `(height, width)` ints or int tensor.
        method: index into `RESIZE_METHODS` (`"area"`, `"bilinear"`, `"bicubic"`), an int or
            scalar int tensor, or one of those names.

    Returns:
        float32 `(height, width, C)`; bicubic may overshoot [0, 1] (as in Real-ESRGAN, the
        next noise step clips).

    Example:
    >>> resize(tf.zeros((40, 40, 3)), (10, 20), "bicubic").shape
    TensorShape([10, 20, 3])
    """
    if isinstance(method, str):
        if method not in RESIZE_METHODS:
            raise ValueError(f"resize: method must be one of {RESIZE_METHODS}, got {method!r}")
        method = RESIZE_METHODS.index(method)
    image = tf.cast(image, tf.float32)
    size = tf.cast(size, tf.int32)
    branches = [
        lambda name=name: tf.image.resize(image, size, method=name, antialias=False)
        for name in RESIZE_METHODS
    ]
    out = tf.switch_case(tf.cast(method, tf.int32), branches)
    return tf.ensure_shape(out, (None, None, image.shape[-1]))


def add_gaussian_noise(image, sigma, gray, seed):
    """`clip(image + N(0, (sigma / 255)^2), 0, 1)`, the same noise on every channel if `gray`.

    Args:
        image: float32 `(H, W, C)` in [0, 1].
        sigma: standard deviation in 0..255 levels (scalar, may be a tensor).
        gray: bool (scalar, may be a tensor): one noise field shared by the channels.
        seed: shape-[2] int tensor.

    Returns:
        float32 `(H, W, C)` in [0, 1].

    Example:
    >>> noisy = add_gaussian_noise(tf.fill((64, 64, 3), 0.5), 10.0, False, tf.constant([0, 1]))
    >>> round(float(tf.math.reduce_std(noisy) * 255))
    10
    """
    image = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    noise_shape = tf.where(tf.cast(gray, tf.bool), tf.concat([shape[:2], [1]], 0), shape)
    noise = tf.random.stateless_normal(noise_shape, seed) * (tf.cast(sigma, tf.float32) / 255.0)
    return tf.clip_by_value(image + noise, 0.0, 1.0)


def _photon_scale(levels):
    """`2 ** ceil(log2(n))` for the number `n` of distinct 0..255 values in `levels`."""
    counts = tf.math.bincount(tf.reshape(levels, [-1]), minlength=256, maxlength=256)
    distinct = tf.cast(tf.math.count_nonzero(counts), tf.float32)
    return tf.pow(2.0, tf.math.ceil(tf.math.log(distinct) / math.log(2.0)))


def _poisson_noise(image, seed):
    """BasicSR's Poisson noise of one image: quantise, count levels, draw photons, difference."""
    levels = tf_quantize(image)
    quantised = tf_to_float(levels)
    vals = _photon_scale(tf.cast(levels, tf.int32))
    photons = tf.random.stateless_poisson(tf.shape(image), seed, quantised * vals, dtype=tf.float32)
    return photons / vals - quantised


def add_poisson_noise(image, scale, gray, seed):
    """Shot noise, as BasicSR's `random_add_poisson_noise_pt` with a given scale and grey flag.

    The image is quantised to 255 levels, `vals = 2 ** ceil(log2(distinct levels))` (the photon
    count of a full-scale pixel), the noise is `Poisson(quantised * vals) / vals - quantised`,
    multiplied by `scale` and added to the (unquantised) image, then clipped to [0, 1]. Its
    variance at a pixel of value `m` is therefore `scale^2 * m / vals`. With `gray`, the noise
    is made from the image's luma (0.299 R + 0.587 G + 0.114 B) and added to every channel.

    Args:
        image: float32 `(H, W, 3)` in [0, 1].
        scale: noise multiplier (BasicSR's `poisson_scale_range` draws it).
        gray: bool (may be a tensor).
        seed: shape-[2] int tensor.

    Returns:
        float32 `(H, W, 3)` in [0, 1].

    Example:
    >>> noisy = add_poisson_noise(tf.fill((32, 32, 3), 0.25), 1.0, True, tf.constant([0, 2]))
    >>> bool(tf.reduce_all(noisy[..., 0] == noisy[..., 2]))
    True
    """
    image = tf.cast(image, tf.float32)

    def grey_noise():
        luma = tf.reduce_sum(image * tf.constant(GREY_WEIGHTS, tf.float32), axis=-1, keepdims=True)
        return _poisson_noise(luma, seed) + tf.zeros_like(image)

    noise = tf.cond(tf.cast(gray, tf.bool), grey_noise, lambda: _poisson_noise(image, seed))
    return tf.clip_by_value(image + noise * tf.cast(scale, tf.float32), 0.0, 1.0)


def jpeg_compress(image, quality):
    """A JPEG encode/decode round trip of one image at an integer quality (libjpeg, in TF).

    The image is clipped to [0, 1], rounded to 8 bits, compressed with
    `tf.image.adjust_jpeg_quality` and returned as float32 `levels / 255`.

    How it differs from BasicSR's `DiffJPEG` (Real-ESRGAN's `jpeger`): DiffJPEG runs the JPEG
    maths in floating point on the unrounded image with a real-valued quality factor, keeps
    its output unrounded, upsamples chroma by repetition, and can pass gradients; here the
    input and the output are 8-bit (as any real JPEG file), the quality is rounded to an int,
    chroma is 4:2:0 with libjpeg's smooth upsampling, and there are no gradients (none are
    needed: the degradation only makes training inputs). Both use the standard IJG
    quantisation tables scaled by quality, so the artefacts are of the same kind and size.

    Args:
        image: float `(H, W, 1 or 3)` (static channel count) in [0, 1].
        quality: int or scalar int tensor in 0..100 (higher: better).

    Returns:
        float32 `(H, W, C)`, multiples of 1/255.

    Example:
    >>> ramp = tf.tile(tf.linspace(0.0, 1.0, 64)[None, :, None], (64, 1, 3))
    >>> low, high = jpeg_compress(ramp, 10), jpeg_compress(ramp, 95)
    >>> bool(tf.reduce_mean(tf.abs(low - ramp)) > tf.reduce_mean(tf.abs(high - ramp)))
    True
    """
    image = tf.convert_to_tensor(image)
    if image.shape.rank != 3 or image.shape[-1] not in (1, 3):
        raise ValueError(f"jpeg_compress: need one (H, W, 1 or 3) image, got shape {image.shape}")
    levels = tf_quantize(tf.cast(image, tf.float32))
    quality = tf.cast(quality, tf.int32)
    out = tf.image.adjust_jpeg_quality(levels, quality)
    return tf_to_float(out)
