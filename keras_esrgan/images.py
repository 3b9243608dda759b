"""Reading and writing image files as numpy arrays, with clear errors and atomic writes.

One place decides what an image file becomes, so training data, evaluation and the upscaler see
the same arrays:

- dtype: uint8, or uint16 for 16-bit files (PNG/TIFF); never rescaled.
- shape: `(H, W)` for greyscale, `(H, W, 3)` for colour, `(H, W, 4)` when there is alpha.
  Grey+alpha becomes RGBA, palette images RGB or RGBA, CMYK RGB, 1-bit greyscale uint8.
- JPEG EXIF orientation is applied, as photo viewers do.

Pillow decodes everything except 16-bit colour PNGs, which it silently reduces to 8 bits; those
go through `tf.io.decode_png`.
"""

import os
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps

from keras_esrgan.atomic import atomic_path

# 2^28 pixels (16384 x 16384): decoded RGBA uint16 that is 2 GiB. Pillow's own guard is lower
# and raises a DecompressionBombError that does not say what to do.
DEFAULT_MAX_PIXELS = 1 << 28
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


class ImageError(ValueError):
    """An image file that cannot be used (unreadable, truncated, too large, unsupported)."""


def _png_header(path):
    """(bit_depth, colour_type) from a PNG's IHDR, or None if the file is not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(29)
    if len(head) < 29 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return head[24], head[25]


def _decode_png16(path):
    import tensorflow as tf

    try:
        array = tf.io.decode_png(tf.io.read_file(os.fspath(path)), dtype=tf.uint16).numpy()
    except tf.errors.OpError as err:
        raise ImageError(
            f"{path}: corrupt or truncated 16-bit PNG ({err.message.splitlines()[0]})"
        ) from None
    if array.shape[-1] == 2:  # grey + alpha -> RGBA, as for 8-bit files
        array = array[..., [0, 0, 0, 1]]
    return array[..., 0] if array.shape[-1] == 1 else array


def _to_array(image, path):
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N"):
        return np.asarray(image, dtype=np.uint16)
    if mode == "I":
        array = np.asarray(image)
        if array.min() < 0 or array.max() > 65535:
            raise ImageError(f"{path}: 32-bit integer image with values outside 0..65535")
        return array.astype(np.uint16)
    if mode == "F":
        raise ImageError(f"{path}: floating-point images are not supported; save as 8/16-bit")
    if mode == "1":
        image = image.convert("L")
    elif mode == "LA" or mode == "PA" or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    elif mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def read_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Read an image file as a numpy array.

    Args:
        path: str or PathLike to a PNG, JPEG, WebP, BMP or TIFF file.
        max_pixels: refuse images with more pixels than this (checked from the header, before
            decoding), so a hostile or mistaken file cannot exhaust memory.

    Returns:
        uint8 or uint16 array of shape `(H, W)`, `(H, W, 3)` or `(H, W, 4)`.

    Raises:
        ImageError: not an image, truncated or corrupt, zero-size, too large, or unsupported.
        FileNotFoundError: no such file.

    Example:
    >>> write_image("grey16.png", np.zeros((6, 8), np.uint16))
    >>> img = read_image("photo.png")
    >>> img.shape, img.dtype, read_image("grey16.png").dtype
    ((24, 32, 3), dtype('uint8'), dtype('uint16'))
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such image file: {path}")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{path}: empty file")
    saved = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            Image.MAX_IMAGE_PIXELS = None  # our own limit below says what to do
            image = Image.open(path)
    except Image.UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file Pillow can read") from None
    except OSError as err:
        raise ImageError(f"{path}: cannot open image ({err})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageError(f"{path}: zero-size image ({width}x{height})")
        if width * height > max_pixels:
            raise ImageError(
                f"{path}: {width}x{height} = {width * height:,} pixels is more than "
                f"max_pixels={max_pixels:,}; pass a larger max_pixels if you have the memory"
            )
        png = _png_header(path) if image.format == "PNG" else None
        if png is not None and png[0] == 16 and png[1] in (2, 4, 6):
            # 16-bit RGB, grey+alpha, RGBA: Pillow would reduce them to 8 bits.
            image.close()
            return _decode_png16(path)
        try:
            image.load()
            if image.format == "JPEG":
                image = ImageOps.exif_transpose(image)
            array = _to_array(image, path)
        except (OSError, SyntaxError, struct.error, ValueError) as err:
            if isinstance(err, ImageError):
                raise
            raise ImageError(f"{path}: corrupt or truncated image ({err})") from None
    return array


def write_image(path, array, quality=95):
    """Write a uint8/uint16 array as an image file, atomically (temporary file, then rename).

    Args:
        path: destination; the format follows the extension (.png, .jpg/.jpeg, .webp, .bmp,
            .tif). uint16 arrays need .png (written with `tf.io.encode_png`, which keeps 16 bits).
        array: `(H, W)`, `(H, W, 1)`, `(H, W, 3)` or `(H, W, 4)`, uint8 or uint16.
        quality: JPEG/WebP quality.

    A crash or full disk leaves either the old file or none, never a half-written image.
    """
    path = os.fspath(path)
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype not in (np.uint8, np.uint16) or array.ndim not in (2, 3):
        raise ValueError(f"write_image: need uint8/uint16 (H, W[, 3|4]), got {array.dtype} {array.shape}")
    if array.ndim == 3 and array.shape[-1] not in (3, 4):
        raise ValueError(f"write_image: {array.shape[-1]} channels cannot be saved as an image")
    ext = os.path.splitext(path)[1].lower()
    if ext not in IMAGE_EXTENSIONS:
        raise ValueError(f"write_image: unknown image extension {ext!r} for {path}")
    if array.dtype == np.uint16 and ext != ".png":
        raise ValueError(f"write_image: 16-bit images need .png, not {ext}")
    image = None if array.dtype == np.uint16 else Image.fromarray(array)
    if image is not None and ext in (".jpg", ".jpeg") and image.mode == "RGBA":
        raise ValueError("write_image: JPEG has no alpha channel; use .png or .webp")
    with atomic_path(path) as tmp:
        if image is None:
            import tensorflow as tf

            data = tf.io.encode_png(array if array.ndim == 3 else array[..., None]).numpy()
            with open(tmp, "wb") as fh:
                fh.write(data)
        elif ext in (".jpg", ".jpeg", ".webp"):
            image.save(tmp, quality=quality)
        else:
            image.save(tmp)
