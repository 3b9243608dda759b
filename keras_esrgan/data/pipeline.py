"""From (LR, HR) full-image pairs to training batches and validation images.

`training_pipeline` turns any dataset of `(lr, hr)` full-image pairs (`image_folder`, `div2k`,
or your own) into an endless stream of float32 patch batches, as BasicSR's paired dataset does:

    pairs -> [skip images smaller than the patch] -> cache decoded pairs in memory
          -> shuffle images -> repeat -> random aligned crop + flips/rotation (parallel)
          -> float32 in [0, 1] -> batch -> prefetch

The cache holds the decoded (uint8) pairs, so after the first epoch no file is decoded and no LR
image is recomputed again; shuffling after an in-memory cache shares the cached buffers (no
second copy). For datasets larger than memory, cache to a file (`cache="/fast/disk/div2k"`) or
cut the images into sub-images first (`extract_subimages`) and run without a cache.
"""

import random
import sys

import tensorflow as tf

from keras_esrgan.data.augment import random_crop, random_flip_rotate
from keras_esrgan.pixels import peak, tf_to_float

AUTOTUNE = tf.data.AUTOTUNE


def _check_source(source, name):
    spec = source.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(s, tf.TensorSpec) for s in spec)):
        raise ValueError(f"{name}: the source must yield (lr, hr) tensor pairs, got elements {spec}")
    lr_spec, hr_spec = spec
    if lr_spec.shape.rank != 3 or hr_spec.shape.rank != 3:
        raise ValueError(
            f"{name}: lr and hr must be single (H, W, C) images, got shapes {lr_spec.shape}, "
            f"{hr_spec.shape} (unbatch the source first)"
        )
    if lr_spec.dtype != hr_spec.dtype:
        raise ValueError(f"{name}: lr is {lr_spec.dtype.name} but hr is {hr_spec.dtype.name}")
    try:
        peak(lr_spec.dtype)
    except ValueError:
        raise ValueError(
            f"(lr, hr) pairs must be uint8, uint16 or float in [0, 1], got {lr_spec.dtype.name}"
        ) from None


def _aligned(lr, hr, scale, name):
    """hr, with a check that it is exactly `scale` times lr (a wrong `scale` stops at once)."""
    check = tf.debugging.assert_equal(
        tf.shape(hr)[:2],
        tf.shape(lr)[:2] * scale,
        message=f"{name}: the HR image is not scale={scale} times the LR image; was the source "
        f"made for another scale?",
    )
    with tf.control_dependencies([check]):
        return tf.identity(hr)


# ESRGAN's (and BasicSR's) training batches: 16 HR patches of 128x128.
BATCH_SIZE = 16
PATCH_SIZE = 128


def training_pipeline(
    source,
    batch_size=BATCH_SIZE,
    patch_size=PATCH_SIZE,
    scale=4,
    *,
    cache=True,
    shuffle_buffer=None,
    augment=True,
    repeat=True,
    deterministic=False,
    seed=None,
):
    """Random aligned patch batches for training, from a dataset of full-image pairs.

    Args:
        source: `tf.data.Dataset` of `(lr, hr)` pairs, `(h, w, C)` and `(scale * h, scale * w,
            C)`, uint8/uint16 (or float in [0, 1]): `image_folder(...)` or `div2k(...)`.
        batch_size: patches per batch (global batch under a distribution strategy).
        patch_size: HR patch side (BasicSR's `gt_size`: 128 for ESRGAN), a multiple of `scale`;
            LR patches are `patch_size // scale`.
        scale: int factor between LR and HR.
        cache: `True` caches the decoded pairs in memory (DIV2K train x4: about 7 GB as uint8),
            a path string caches them in files there, `False` decodes every epoch.
        shuffle_buffer: images in the shuffle buffer; default 1024 with an in-memory cache
            (free: the buffer shares the cached tensors), 16 otherwise (decoded full images).
        augment: random horizontal/vertical flips and 90-degree rotations.
        repeat: repeat forever (for `fit(steps_per_epoch=...)`); `False` gives one pass.
        deterministic: the same seed gives the same batches, in the same order, every run
            (parallel maps keep their order; the randomness of each patch depends only on the
            seed and its position in the stream). As everywhere in tf.data, a second iterator
            over the same dataset object continues the seeded shuffle with new epoch orders;
            build the pipeline again to replay it. `False` lets parallel maps finish out of
            order, which is faster.
        seed: int; default 0 when `deterministic`, else drawn from the OS.

    Returns:
        `tf.data.Dataset` of `(lr, hr)` float32 batches in [0, 1]: `(batch_size, patch_size //
        scale, patch_size // scale, C)` and `(batch_size, patch_size, patch_size, C)`.
        Images smaller than the patch are skipped with a warning printed to stderr.

    Example:
    >>> from keras_esrgan.data import image_folder, write_synthetic_folder
    >>> ds = training_pipeline(image_folder(write_synthetic_folder("DIV2K_train_HR", 2, 160)),
    ...                        batch_size=4, patch_size=128)
    >>> lr, hr = next(iter(ds))
    >>> lr.shape, hr.shape, hr.dtype
    (TensorShape([4, 32, 32, 3]), TensorShape([4, 128, 128, 3]), tf.float32)
    """
    name = "training_pipeline"
    _check_source(source, name)
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"{name}: scale must be a positive int, got {scale!r}")
    if not isinstance(patch_size, int) or patch_size < scale or patch_size % scale:
        raise ValueError(f"{name}: patch_size={patch_size!r} must be a positive multiple of scale={scale}")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"{name}: batch_size must be a positive int, got {batch_size!r}")
    if seed is None:
        seed = 0 if deterministic else random.SystemRandom().randrange(2**31)
    lr_patch = patch_size // scale
    in_memory = cache is True
    if shuffle_buffer is None:
        shuffle_buffer = 1024 if in_memory else 16

    def big_enough(lr, hr):
        ok = tf.reduce_all(tf.shape(lr)[:2] >= lr_patch)

        def warn():
            tf.print(
                "keras_esrgan.data: skipped an image pair with HR size", tf.shape(hr)[:2],
                f"smaller than the {patch_size}x{patch_size} patch", output_stream=sys.stderr,
            )
            return ok

        return tf.cond(ok, lambda: ok, warn)

    ds = source.filter(big_enough)
    if cache:
        ds = ds.cache("" if in_memory else str(cache))
    ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()

    def make_patch(index, pair):
        lr, hr = pair
        hr = _aligned(lr, hr, scale, name)
        crop_seed, flip_seed = tf.unstack(
            tf.random.experimental.stateless_split(tf.stack([tf.constant(seed, tf.int64), index]), 2)
        )
        lr, hr = random_crop(lr, hr, patch_size, scale, crop_seed)
        if augment:
            lr, hr = random_flip_rotate(lr, hr, flip_seed)
        return tf_to_float(lr), tf_to_float(hr)

    ds = ds.enumerate().map(make_patch, num_parallel_calls=AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = bool(deterministic)
    return ds.with_options(options)


def validation_pipeline(source, scale=4, *, center_crop=None, cache=True):
    """Full validation images, one per batch, for PSNR/SSIM during training.

    Args:
        source: `tf.data.Dataset` of `(lr, hr)` full-image pairs (mod-cropped: `image_folder`
            and `div2k` make them so), uint8/uint16 or float in [0, 1].
        scale: int factor between LR and HR (checked on every pair).
        center_crop: optional int: keep the central `center_crop` x `center_crop` HR pixels (a
            multiple of `scale`; smaller images are kept whole) and the matching LR pixels, to
            bound validation time (a 2K DIV2K image takes minutes on a CPU).
        cache: keep the pairs in memory after the first pass.

    Returns:
        `tf.data.Dataset` of `(lr, hr)` float32 in [0, 1], batches of one: `(1, h, w, C)` and
        `(1, scale * h, scale * w, C)`; no augmentation, in source order.

    Example:
    >>> from keras_esrgan.data import image_folder, write_synthetic_folder
    >>> val = validation_pipeline(image_folder(write_synthetic_folder("Set5", 2, 48)))
    >>> generator = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    >>> [(generator(lr).shape, hr.shape) for lr, hr in val]   # compare sr with hr
    [(TensorShape([1, 48, 48, 3]), TensorShape([1, 48, 48, 3])), (TensorShape([1, 48, 48, 3]), TensorShape([1, 48, 48, 3]))]
    """
    name = "validation_pipeline"
    _check_source(source, name)
    if center_crop is not None and (center_crop < scale or center_crop % scale):
        raise ValueError(f"{name}: center_crop={center_crop} must be a positive multiple of scale={scale}")

    def crop(lr, hr):
        hr = _aligned(lr, hr, scale, name)
        if center_crop is None:
            return lr, hr
        size = tf.minimum(tf.shape(lr)[:2], center_crop // scale)
        top, left = tf.unstack((tf.shape(lr)[:2] - size) // 2)
        lr = lr[top : top + size[0], left : left + size[1]]
        hr = hr[top * scale : (top + size[0]) * scale, left * scale : (left + size[1]) * scale]
        return lr, hr

    ds = source.map(crop, num_parallel_calls=AUTOTUNE)
    if cache:
        ds = ds.cache()  # before the float conversion: a quarter of the memory
    ds = ds.map(lambda lr, hr: (tf_to_float(lr)[None], tf_to_float(hr)[None]))
    return ds.prefetch(AUTOTUNE)
