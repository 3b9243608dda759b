"""Folders of image files as datasets of (LR, HR) pairs.

Two layouts:

- HR only (`lr_dir=None`): each HR image is mod-cropped to a multiple of `scale` and its LR image
  is made from the whole image with MATLAB's bicubic (`bicubic_downsample`), as DIV2K's, Set5's
  and Set14's LR images were made, so crops never see a border that is not in the image.
- Paired (`lr_dir` given): LR files are matched to HR files by name, `0001.png` with `0001.png`
  or with BasicSR/DIV2K's `0001x4.png` (any supported extension on either side). An HR image
  up to `scale - 1` pixels larger than `scale` times its LR image is cropped to fit; other size
  mismatches are reported and skipped.

What every image becomes, whatever its file: `(H, W, 3)` in the chosen dtype (uint8 by default;
16-bit files are rounded to 8 bits, or kept with `dtype="uint16"`, where 8-bit files are scaled
by 257). Greyscale becomes 3 equal channels. Alpha is dropped: the stored colour of transparent
pixels is kept as it is, as BasicSR's `cv2.IMREAD_COLOR` loading does.

Files are decoded inside `tf.data` by `keras_esrgan.images.read_image`; one that cannot be read
(corrupt, truncated, not an image, size mismatch, over the pixel budget or Pillow's
decompression-bomb limit, animated) is logged by name as a warning (once per file) on the
`keras_esrgan.data` logger and skipped, so an epoch never crashes on it and never quietly has
fewer images. File names go through `tf.data` as bytes, so names that are not valid UTF-8 work.
"""

import logging
import os
import threading

import numpy as np
import tensorflow as tf

from keras_esrgan.data.augment import mod_crop
from keras_esrgan.data.degrade import bicubic_downsample
from keras_esrgan.images import IMAGE_EXTENSIONS, read_image, shown
from keras_esrgan.pixels import IMAGE_DTYPES, as_rgb, tf_quantize, to_dtype

logger = logging.getLogger("keras_esrgan.data")

DTYPES = {dtype.name: dtype for dtype in IMAGE_DTYPES}


def _image_files(directory):
    """{stem: path} of the image files directly in `directory` (not recursive)."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"image folder not found: {shown(directory)}")
    files = {}
    for name in sorted(os.listdir(directory)):
        stem, ext = os.path.splitext(name)
        path = os.path.join(directory, name)
        if ext.lower() not in IMAGE_EXTENSIONS or not os.path.isfile(path) or name.startswith("."):
            continue
        if stem in files:
            raise ValueError(
                f"{shown(directory)}: two images named {shown(stem)!r} "
                f"({shown(os.path.basename(files[stem]))} and {shown(name)}); keep one so that "
                "pairs are unambiguous"
            )
        files[stem] = path
    if not files:
        raise ValueError(f"no image files ({', '.join(IMAGE_EXTENSIONS)}) in {shown(directory)}")
    return files


def _name_list(names, limit=10):
    text = ", ".join(shown(n) for n in names[:limit])
    return text + (f" and {len(names) - limit} more" if len(names) > limit else "")


def list_image_pairs(hr_dir, lr_dir=None, scale=4):
    """The `(hr_path, lr_path)` pairs `image_folder` reads, sorted by HR file name.

    Args:
        hr_dir: folder of HR images (PNG, JPEG, WebP, BMP, TIFF), not searched recursively.
        lr_dir: optional folder of LR images; `None` for HR-only folders.
        scale: int; LR names may carry BasicSR's `x{scale}` suffix (`0001x4.png`).

    Returns:
        list of `(hr_path, lr_path)` string tuples; `lr_path` is `None` for HR-only folders.
        HR images without an LR partner (and LR images without an HR one) are logged as a
        warning by name and left out.

    Raises:
        FileNotFoundError: a folder does not exist.
        ValueError: a folder has no images, or two images with the same name.

    Example:
    >>> from keras_esrgan.images import write_image
    >>> for folder, name, size in (("DIV2K_train_HR", "0001.png", 32), ("DIV2K_train_LR_bicubic/X4", "0001x4.png", 8)):
    ...     os.makedirs(folder, exist_ok=True)
    ...     write_image(os.path.join(folder, name), np.zeros((size, size, 3), np.uint8))
    >>> list_image_pairs("DIV2K_train_HR", "DIV2K_train_LR_bicubic/X4")[0]
    ('DIV2K_train_HR/0001.png', 'DIV2K_train_LR_bicubic/X4/0001x4.png')
    """
    hr_files = _image_files(hr_dir)
    if lr_dir is None:
        return [(path, None) for path in hr_files.values()]
    lr_files = _image_files(lr_dir)
    pairs, unmatched, used = [], [], set()
    for stem, hr_path in hr_files.items():
        for lr_stem in (f"{stem}x{scale}", f"{stem}X{scale}", stem):
            if lr_stem in lr_files:
                pairs.append((hr_path, lr_files[lr_stem]))
                used.add(lr_stem)
                break
        else:
            unmatched.append(os.path.basename(hr_path))
    if unmatched:
        logger.warning(
            "%d HR image(s) in %s have no LR image NAME.* or NAMEx%d.* in %s, skipped: %s",
            len(unmatched), shown(hr_dir), scale, shown(lr_dir), _name_list(unmatched),
        )
    orphans = [os.path.basename(p) for s, p in lr_files.items() if s not in used]
    if orphans:
        logger.warning(
            "%d LR image(s) in %s have no HR image in %s, unused: %s",
            len(orphans), shown(lr_dir), shown(hr_dir), _name_list(orphans),
        )
    if not pairs:
        raise ValueError(f"no image in {shown(hr_dir)} has a partner in {shown(lr_dir)} (scale {scale})")
    return pairs


def rgb_image(image, dtype):
    """uint8/uint16 `(H, W)`, `(H, W, 3|4)` -> contiguous `(H, W, 3)` in `dtype`: grey
    repeated, alpha dropped, the bit depth converted (`keras_esrgan.pixels.to_dtype`)."""
    return np.ascontiguousarray(to_dtype(as_rgb(image), dtype))


class _PairLoader:
    """`(hr_path, lr_path)` -> `(lr, hr, ok)` numpy arrays; failures logged once per file."""

    def __init__(self, scale, dtype):
        self.scale, self.dtype = scale, dtype
        self._reported = set()
        self._lock = threading.Lock()

    def _skip(self, key, message):
        with self._lock:
            if key in self._reported:
                return
            self._reported.add(key)
        logger.warning("skipped: %s", message)

    def __call__(self, hr_path, lr_path):
        # Paths arrive as the file system's bytes (see image_folder).
        hr_path, lr_path = os.fsdecode(hr_path), os.fsdecode(lr_path) or None
        empty = np.zeros((0, 0, 3), self.dtype)
        s = self.scale
        try:
            hr = rgb_image(read_image(hr_path), self.dtype)
            lr = empty if lr_path is None else rgb_image(read_image(lr_path), self.dtype)
        except (OSError, ValueError) as err:  # ImageError is a ValueError
            self._skip(hr_path, str(err))
            return empty, empty, False
        if lr_path is None:
            (hh, hw) = hr.shape[:2]
            if hh < s or hw < s:
                self._skip(hr_path, f"{shown(hr_path)}: {hw}x{hh} is smaller than the scale {s}")
                return empty, empty, False
            return lr, np.ascontiguousarray(mod_crop(hr, s)), True
        (h, w), (hh, hw) = lr.shape[:2], hr.shape[:2]
        if not (h * s <= hh < (h + 1) * s and w * s <= hw < (w + 1) * s):
            self._skip(
                hr_path,
                f"{shown(hr_path)} ({hw}x{hh}) and {shown(lr_path)} ({w}x{h}): the HR image is not {s} times "
                f"the LR image",
            )
            return empty, empty, False
        return lr, np.ascontiguousarray(hr[: h * s, : w * s]), True


def image_folder(
    hr_dir,
    lr_dir=None,
    scale=4,
    *,
    dtype="uint8",
    method="matlab",
    shuffle_files=False,
    seed=None,
):
    """A `tf.data.Dataset` of `(lr, hr)` full-image pairs from image folders.

    Args:
        hr_dir: folder of HR images (PNG, JPEG, WebP, also BMP/TIFF; 8- or 16-bit; grey, RGB or
            with alpha), not searched recursively.
        lr_dir: folder of matching LR images, or `None` to make them from the HR images.
        scale: int factor between LR and HR.
        dtype: `"uint8"` or `"uint16"`: what the pairs are stored as (and cached as by
            `training_pipeline`); uint8 takes half the memory.
        method: LR degradation for HR-only folders: `"matlab"` (benchmark protocol) or `"tf"`
            (see `bicubic_downsample`).
        shuffle_files: shuffle the file order each epoch (before decoding); useful when the
            pairs are not cached, so that the decoded-image shuffle buffer can stay small.
        seed: int seed for `shuffle_files`.

    Returns:
        `tf.data.Dataset` of `(lr, hr)`: `(h, w, 3)` and `(scale * h, scale * w, 3)` tensors
        of `dtype`, one element per readable pair, in file-name order unless `shuffle_files`.
        Feed it to `training_pipeline` or `validation_pipeline`.

    Raises:
        FileNotFoundError, ValueError: missing folder, no images, ambiguous names (at once).

    Example:
    >>> from keras_esrgan.data.synthetic import write_synthetic_folder
    >>> pairs = image_folder(write_synthetic_folder("hr", count=2, size=64))   # LR: MATLAB bicubic
    >>> lr, hr = next(iter(pairs))
    >>> lr.shape, hr.shape, hr.dtype
    (TensorShape([16, 16, 3]), TensorShape([64, 64, 3]), tf.uint8)
    >>> paired = image_folder("hr", "hr_lr")                # DIV2K-style: 0000.png with 0000x4.png
    Traceback (most recent call last):
    ...
    FileNotFoundError: ...hr_lr...
    """
    if dtype not in DTYPES:
        raise ValueError(f"image_folder: dtype must be 'uint8' or 'uint16', got {dtype!r}")
    if not isinstance(scale, int) or scale < 1:
        raise ValueError(f"image_folder: scale must be a positive int, got {scale!r}")
    if method not in ("matlab", "tf"):
        raise ValueError(f"image_folder: method must be 'matlab' or 'tf', got {method!r}")
    pairs = list_image_pairs(hr_dir, lr_dir, scale)
    tf_dtype = tf.as_dtype(dtype)
    loader = _PairLoader(scale, DTYPES[dtype])

    def load(hr_path, lr_path):
        lr, hr, ok = tf.numpy_function(
            loader, [hr_path, lr_path], [tf_dtype, tf_dtype, tf.bool], stateful=False
        )
        lr.set_shape((None, None, 3))
        hr.set_shape((None, None, 3))
        ok.set_shape(())
        return lr, hr, ok

    def degrade(lr, hr, ok):
        lr = bicubic_downsample(hr, scale, method=method)  # on the integer levels already
        return tf_quantize(lr, tf_dtype), hr

    # Bytes, not str: TensorFlow encodes str as UTF-8, which a file name need not be.
    paths = tf.data.Dataset.from_tensor_slices(
        ([os.fsencode(hr) for hr, _ in pairs], [os.fsencode(lr or "") for _, lr in pairs])
    )
    if shuffle_files:
        paths = paths.shuffle(len(pairs), seed=seed, reshuffle_each_iteration=True)
    ds = paths.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.filter(lambda lr, hr, ok: ok)
    if lr_dir is None:
        return ds.map(degrade, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.map(lambda lr, hr, ok: (lr, hr))
