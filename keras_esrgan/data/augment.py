"""Aligned random crops, flips and 90-degree rotations of (LR, HR) pairs, as BasicSR does them.

All functions take one pair of `(H, W, C)` tensors, `hr` exactly `scale` times the size of `lr`,
and a `seed`: a shape-[2] integer tensor for TF's stateless random ops. The same seed gives the
same crop and transform whatever the thread or order a `tf.data` map runs them in, which is what
makes `training_pipeline(deterministic=True)` reproducible.
"""

import numpy as np
import tensorflow as tf


def mod_crop(image, scale):
    """Crop an `(H, W[, C])` image to the top-left `H - H % scale` x `W - W % scale` pixels.

    The benchmark protocol's first step, so that the LR image is exactly `1 / scale` of it.
    A numpy array gives a numpy view; anything else a tensor.

    Example:
    >>> mod_crop(tf.zeros((250, 361, 3)), 4).shape, mod_crop(np.zeros((250, 361)), 4).shape
    (TensorShape([248, 360, 3]), (248, 360))
    """
    if isinstance(image, np.ndarray):
        h, w = image.shape[:2]
        return image[: h - h % scale, : w - w % scale]
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    return image[: shape[0] - shape[0] % scale, : shape[1] - shape[1] % scale]


def random_crop(lr, hr, patch_size, scale, seed):
    """Crop an LR patch at a random position and the HR patch at `scale` times that position.

    Args:
        lr: `(h, w, C)` tensor, `h, w >= patch_size // scale`.
        hr: `(h * scale, w * scale, C)` tensor.
        patch_size: int, HR patch side (BasicSR's `gt_size`), a multiple of `scale`.
        scale: int upscaling factor.
        seed: shape-[2] int32/int64 tensor for stateless random ops.

    Returns:
        `(lr_patch, hr_patch)` of shapes `(patch_size // scale,) * 2 + (C,)` and
        `(patch_size, patch_size, C)`. Every LR position is equally likely, as in BasicSR's
        `paired_random_crop`, so HR patches start on the `scale` grid.

    Example:
    >>> hr = tf.reshape(tf.range(256 * 192 * 3), (256, 192, 3))
    >>> lr = hr[::4, ::4]                                  # (64, 48, 3), aligned with hr
    >>> lr_p, hr_p = random_crop(lr, hr, 128, 4, seed=tf.constant([0, 1]))
    >>> lr_p.shape, hr_p.shape, bool(tf.reduce_all(lr_p == hr_p[::4, ::4]))
    (TensorShape([32, 32, 3]), TensorShape([128, 128, 3]), True)
    """
    if patch_size % scale:
        raise ValueError(f"random_crop: patch_size={patch_size} is not a multiple of scale={scale}")
    lr_patch = patch_size // scale
    lr, hr = tf.convert_to_tensor(lr), tf.convert_to_tensor(hr)
    shape = tf.shape(lr)
    top_seed, left_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    top = tf.random.stateless_uniform((), top_seed, 0, shape[0] - lr_patch + 1, dtype=tf.int32)
    left = tf.random.stateless_uniform((), left_seed, 0, shape[1] - lr_patch + 1, dtype=tf.int32)
    lr = lr[top : top + lr_patch, left : left + lr_patch]
    hr = hr[top * scale : (top + lr_patch) * scale, left * scale : (left + lr_patch) * scale]
    lr.set_shape((lr_patch, lr_patch, lr.shape[-1]))
    hr.set_shape((patch_size, patch_size, hr.shape[-1]))
    return lr, hr


def random_flip_rotate(lr, hr, seed, hflip=True, rotation=True):
    """The same random flips and 90-degree rotation applied to both images of a pair.

    As BasicSR's `augment`: a horizontal flip, a vertical flip and a transpose (a rotation by 90
    degrees combined with the flips), each with probability 1/2; together the 8 symmetries of
    the square, equally likely.

    Args:
        lr, hr: `(H, W, C)` tensors; with `rotation=True`, non-square images lose their static
            shape (a transpose swaps H and W).
        seed: shape-[2] int tensor.
        hflip: allow the horizontal flip.
        rotation: allow the vertical flip and the transpose.

    Returns:
        `(lr, hr)` transformed identically.

    Example:
    >>> lr = tf.reshape(tf.range(2 * 3 * 3), (2, 3, 3))
    >>> hr = tf.repeat(tf.repeat(lr, 4, axis=0), 4, axis=1)  # lr's pixels as 4x4 blocks
    >>> lr_p, hr_p = random_flip_rotate(lr, hr, seed=tf.constant([0, 2]))
    >>> bool(tf.reduce_all(lr_p == hr_p[::4, ::4]))   # the same flips/transpose on both
    True
    """
    lr, hr = tf.convert_to_tensor(lr), tf.convert_to_tensor(hr)
    coins = tf.random.stateless_uniform((3,), seed, 0, 2, dtype=tf.int32)
    do_hflip = tf.logical_and(hflip, tf.equal(coins[0], 1))
    do_vflip = tf.logical_and(rotation, tf.equal(coins[1], 1))
    do_transpose = tf.logical_and(rotation, tf.equal(coins[2], 1))

    def transform(image):
        image = tf.cond(do_hflip, lambda: tf.reverse(image, [1]), lambda: image)
        image = tf.cond(do_vflip, lambda: tf.reverse(image, [0]), lambda: image)
        if rotation:  # keeps the static shape when it is square
            image = tf.cond(do_transpose, lambda: tf.transpose(image, (1, 0, 2)), lambda: image)
        return image

    return transform(lr), transform(hr)
