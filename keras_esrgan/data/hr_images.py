"""HR-only image sources: a folder or a list of image files as a dataset of single images.

What the real-world degradation (`realworld_pipeline`, `write_degraded_samples`) starts from: it
makes its own LR images, so nothing else is computed here. Files are decoded inside `tf.data`
by the same loader as `image_folder` (grey becomes 3 channels, alpha is dropped, 16-bit files
are rounded to 8 bits unless `dtype="uint16"`); an unreadable file is logged by name on the
`keras_esrgan.data` logger and skipped.
"""

import os

import tensorflow as tf

from keras_esrgan.data.folders import DTYPES, _PairLoader, list_image_pairs


def image_paths(paths_or_folder):
    """The image files of a folder (sorted by name), or a list of files checked to exist.

    Args:
        paths_or_folder: a folder (str or PathLike; not searched recursively), one image file,
            or a list/tuple of image files.

    Returns:
        list of path strings.

    Raises:
        FileNotFoundError: a listed file or the folder does not exist.
        ValueError: the folder has no images, or the list is empty.

    Example:
    >>> image_paths("photo.png"), image_paths(["photo.png", "photo.png"])
    (['photo.png'], ['photo.png', 'photo.png'])
    """
    if isinstance(paths_or_folder, (str, os.PathLike)):
        path = os.fspath(paths_or_folder)
        if os.path.isdir(path):
            return [hr for hr, _ in list_image_pairs(path)]
        paths = [path]
    else:
        paths = [os.fspath(p) for p in paths_or_folder]
        if not paths:
            raise ValueError("no image files given (empty list)")
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError(f"no such image file or folder: {', '.join(missing[:5])}")
    return paths


def hr_images(paths_or_folder, *, dtype="uint8"):
    """A `tf.data.Dataset` of the HR images of a folder or list of files, one `(H, W, 3)` each.

    Args:
        paths_or_folder: folder, image file, or list of image files (see `image_paths`).
        dtype: `"uint8"` or `"uint16"`.

    Returns:
        `tf.data.Dataset` of `(H, W, 3)` tensors of `dtype`, in file order, unreadable files
        skipped (with a warning naming them).

    Example:
    >>> next(iter(hr_images("photo.png"))).shape   # a 32x24 RGB file
    TensorShape([24, 32, 3])
    """
    if dtype not in DTYPES:
        raise ValueError(f"hr_images: dtype must be 'uint8' or 'uint16', got {dtype!r}")
    paths = image_paths(paths_or_folder)
    tf_dtype = tf.as_dtype(dtype)
    loader = _PairLoader(1, DTYPES[dtype])  # scale 1: no mod-crop

    def load(path):
        _, hr, ok = tf.numpy_function(loader, [path, ""], [tf_dtype, tf_dtype, tf.bool], stateful=False)
        hr.set_shape((None, None, 3))
        ok.set_shape(())
        return hr, ok

    def readable(hr, ok):
        return ok

    def image(hr, ok):
        return hr

    ds = tf.data.Dataset.from_tensor_slices(paths).map(load, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.filter(readable).map(image)
