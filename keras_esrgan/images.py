"""Reading and writing image files as numpy arrays, with clear errors and atomic writes.

One place decides what an image file becomes, so training data, evaluation and the upscaler see
the same arrays:

- dtype: uint8, or uint16 for 16-bit files (PNG/TIFF); never rescaled.
- shape: `(H, W)` for greyscale, `(H, W, 3)` for colour, `(H, W, 4)` when there is alpha.
  Grey+alpha becomes RGBA, palette images RGB or RGBA, CMYK RGB, 1-bit greyscale uint8.
- EXIF orientation is applied (JPEG, PNG, WebP, TIFF), as photo viewers do: the pixels come out
  upright. `read_image_with_metadata` also returns the file's ICC profile, EXIF and PNG text
  (`keras_esrgan.metadata`), which `write_image(..., metadata=)` carries to an output.
- Still images only: an animated GIF/PNG/WebP or a multi-page TIFF is refused with an
  `ImageError` (silently taking its first frame would drop the rest); a still GIF is read.

Pillow decodes everything except what it would silently reduce to 8 bits: 16-bit colour PNGs go
through `tf.io.decode_png`, and 16-bit colour TIFFs through the small reader here (uncompressed
or Deflate, the layouts image editors write; other 16-bit colour TIFFs are refused with a hint to
use a 16-bit PNG). Sizes are checked from the header before any pixel is decoded. Pillow's own
decompression-bomb limit (`PIL.Image.MAX_IMAGE_PIXELS`, a process-wide setting this module never
changes) also applies to the formats Pillow decodes; PNGs above it are decoded by TensorFlow,
so `max_pixels` alone decides for them.
"""

import dataclasses
import os
import struct
import zlib
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps

from keras_esrgan.atomic import atomic_path
from keras_esrgan.metadata import apply_orientation, read_metadata, save_kwargs, with_png_metadata
from keras_esrgan.pixels import IMAGE_DTYPES, PEAKS

# 2^28 pixels (16384 x 16384): decoded RGBA uint16 that is 2 GiB. Pillow's own guard is lower
# and raises a DecompressionBombError that does not say what to do.
DEFAULT_MAX_PIXELS = 1 << 28
# What read_image reads (and folders are listed by); write_image writes all but GIF, which would
# quantize a result to 256 colours (a GIF input's result is written as PNG).
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
WRITE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_WRITE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                  ".tif": "TIFF", ".tiff": "TIFF"}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageError(ValueError):
    """An image file that cannot be used (unreadable, truncated, too large, unsupported)."""


class ImageTooLargeError(ImageError):
    """An image over a pixel or memory budget; raised before it is decoded where possible."""


def shown(path):
    """`path` as text that can always be printed (undecodable bytes of a file name escaped).

    Example:
    >>> import os
    >>> shown(os.fsdecode(b"caf\\xe9.png"))
    'caf\\\\xe9.png'
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _png_info(path):
    """`(width, height, bit_depth, colour_type, animated)` from a PNG's chunks before IDAT, or
    None if the file is not a PNG."""
    with open(path, "rb") as fh:
        head = fh.read(33)
        if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
            return None
        width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
        fh.seek(33)
        animated = False
        for _ in range(10_000):  # chunks before the image data: a few in real files
            chunk = fh.read(8)
            if len(chunk) < 8 or chunk[4:] in (b"IDAT", b"IEND"):
                break
            animated |= chunk[4:] == b"acTL"
            fh.seek(struct.unpack(">I", chunk[:4])[0] + 4, os.SEEK_CUR)
    return width, height, depth, colour, animated


def _decode_png_tf(path, dtype):
    """A PNG decoded by TensorFlow at its own bit depth (`"uint8"` or `"uint16"`)."""
    import tensorflow as tf

    with open(path, "rb") as fh:  # a Python open: TF's own file API cannot take every file name
        data = fh.read()
    try:
        array = tf.io.decode_png(data, dtype=tf.as_dtype(dtype)).numpy()
    except tf.errors.OpError as err:
        raise ImageError(
            f"{shown(path)}: corrupt or truncated PNG ({err.message.splitlines()[0]})"
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
        if array.min() < 0 or array.max() > PEAKS[np.dtype(np.uint16)]:
            raise ImageError(f"{shown(path)}: 32-bit integer image with values outside 0..65535")
        return array.astype(np.uint16)
    if mode == "F":
        raise ImageError(f"{shown(path)}: floating-point images are not supported; save as 8/16-bit")
    if mode == "1":
        image = image.convert("L")
    elif mode == "LA" or mode == "PA" or (mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    elif mode not in ("L", "RGB", "RGBA"):
        image = image.convert("RGB")
    return np.asarray(image, dtype=np.uint8)


def _tiff16_samples(image):
    """Bits per sample of a TIFF whose samples are all 16-bit, else None."""
    bits = image.tag_v2.get(258)
    bits = (bits,) if isinstance(bits, int) else tuple(bits or ())
    return bits if bits and all(b == 16 for b in bits) else None


def _read_tiff16(image, path):
    """A 16-bit TIFF Pillow would reduce to 8 bits, read from its strips or tiles.

    Uncompressed or Deflate (Adobe/zlib) data, chunky samples, horizontal predictor or none:
    what image editors write for 16-bit TIFF. Anything else is refused, never reduced.
    """
    tags = image.tag_v2
    width, height = image.size
    samples = int(tags.get(277, 1))
    compression, predictor = int(tags.get(259, 1)), int(tags.get(317, 1))
    planar, photometric = int(tags.get(284, 1)), int(tags.get(262, 2))
    sample_format = tags.get(339, 1)
    sample_format = {sample_format} if isinstance(sample_format, int) else set(sample_format)
    supported = (
        compression in (1, 8, 32946) and predictor in (1, 2) and planar == 1
        and photometric in (1, 2) and 1 <= samples <= 4 and sample_format <= {1}
    )
    if not supported:
        raise ImageError(
            f"{shown(path)}: a 16-bit TIFF (compression {compression}, predictor {predictor}, "
            f"{samples} samples, photometric {photometric}, planar {planar}) that Pillow would "
            "reduce to 8 bits and keras-esrgan does not read; save it as a 16-bit PNG (or an "
            "uncompressed/Deflate TIFF) to keep its 16 bits"
        )
    order = ">" if getattr(tags, "_endian", "<") == ">" else "<"
    if 322 in tags:  # tiles
        block_w, block_h = int(tags[322]), int(tags[323])
        offsets, counts = tags[324], tags[325]
        across = -(-width // block_w)
        places = [((i // across) * block_h, (i % across) * block_w) for i in range(len(offsets))]
    else:
        block_w, block_h = width, int(tags.get(278, height))
        offsets, counts = tags[273], tags[279]
        places = [(i * block_h, 0) for i in range(len(offsets))]
    offsets = (offsets,) if isinstance(offsets, int) else tuple(offsets)
    counts = (counts,) if isinstance(counts, int) else tuple(counts)
    size = os.path.getsize(path)
    out = np.zeros((height, width, samples), np.uint16)
    with open(path, "rb") as fh:
        for (top, left), offset, count in zip(places, offsets, counts):
            if top >= height or left >= width:
                continue
            rows = block_h if 322 in tags else min(block_h, height - top)
            need = rows * block_w * samples * 2
            if offset + count > size:
                raise ImageError(f"{shown(path)}: a strip runs past the end of the file: truncated")
            fh.seek(offset)
            raw = fh.read(count)
            if compression != 1:
                try:
                    raw = zlib.decompressobj().decompress(raw, need)
                except zlib.error as err:
                    raise ImageError(f"{shown(path)}: corrupt Deflate data ({err})") from None
            if len(raw) < need:
                raise ImageError(f"{shown(path)}: a strip holds {len(raw)} of {need} bytes: truncated")
            block = np.frombuffer(raw[:need], order + "u2").reshape(rows, block_w, samples)
            if predictor == 2:
                block = np.cumsum(block, axis=1, dtype=np.uint16)
            h, w = min(rows, height - top), min(block_w, width - left)
            out[top : top + h, left : left + w] = block[:h, :w]
    if samples == 2:  # grey + alpha -> RGBA, as for other formats
        out = out[..., [0, 0, 0, 1]]
    return out[..., 0] if samples == 1 else out


def _png_orientation(path):
    """The EXIF orientation of a PNG (its eXIf chunk, before or after the image data), 1 if none."""
    try:
        return read_metadata(path).orientation
    except (OSError, ValueError, Image.DecompressionBombError):
        # Unreadable metadata, or a PNG past Pillow's bomb guard (which `read_metadata` keeps,
        # process-wide): the pixels as stored.
        return 1


def _too_large(path, width, height, max_pixels):
    return ImageTooLargeError(
        f"{shown(path)}: {width}x{height} = {width * height:,} pixels is more than "
        f"max_pixels={max_pixels:,}; pass a larger max_pixels if you have the memory"
    )


def _animated(path, kind, frames=None):
    count = f" with {frames} frames" if frames else ""
    return ImageError(
        f"{shown(path)}: an animated or multi-page {kind}{count}; keras-esrgan reads still images "
        f"only (it would otherwise use the first frame alone): extract the frames first, e.g. "
        f"`ffmpeg -i {os.path.basename(shown(path))} frame_%04d.png`"
    )


class ImageInfo(NamedTuple):
    """What `probe_image` reads from a file's header: the size and what `read_image` returns.

    Attributes:
        width, height: pixels.
        channels: 1 (grey), 3 or 4 of the array `read_image` returns (4 for palette images
            that may have transparency).
        dtype: `"uint8"` or `"uint16"`.
    """

    width: int
    height: int
    channels: int
    dtype: str


def _pillow_info(image):
    mode = image.mode
    if mode.startswith("I;16") or mode == "I":
        return 1, "uint16"
    if image.format == "TIFF" and _tiff16_samples(image):
        samples = int(image.tag_v2.get(277, 1))
        return (1 if samples == 1 else 4 if samples in (2, 4) else 3), "uint16"
    if mode in ("1", "L"):
        return 1, "uint8"
    if mode in ("LA", "PA", "RGBA", "P"):
        return (4 if mode != "P" or "transparency" in image.info else 3), "uint8"
    return 3, "uint8"


def _open(path, max_pixels, decode):
    """Header checks shared by `read_image` (`decode=True`: the array) and `probe_image`."""
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such image file: {shown(path)}")
    if os.path.getsize(path) == 0:
        raise ImageError(f"{shown(path)}: empty file")
    png = _png_info(path)
    if png is not None:
        width, height, depth, colour, animated = png
        if width < 1 or height < 1:
            raise ImageError(f"{shown(path)}: zero-size image ({width}x{height})")
        if width * height > max_pixels:
            raise _too_large(path, width, height, max_pixels)
        if animated:
            raise _animated(path, "PNG")
        pillow_limit = Image.MAX_IMAGE_PIXELS
        big = pillow_limit is not None and width * height > pillow_limit
        if (depth == 16 and colour in (2, 4, 6)) or big:
            # 16-bit RGB, grey+alpha, RGBA: Pillow would reduce them to 8 bits. Within
            # max_pixels but past Pillow's bomb guard: decoded here, per call, instead of
            # switching that process-wide guard off.
            dtype = "uint16" if depth == 16 else "uint8"
            orientation = _png_orientation(path)
            if not decode:
                channels = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}.get(colour, 4)
                if orientation in (5, 6, 7, 8):
                    width, height = height, width
                return ImageInfo(width, height, channels, dtype)
            return apply_orientation(_decode_png_tf(path, dtype), orientation)
    try:
        image = Image.open(path)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageTooLargeError(
            f"{shown(path)}: refused by Pillow's decompression-bomb limit ({err}); raise "
            "PIL.Image.MAX_IMAGE_PIXELS in your program if you trust the file"
        ) from None
    except Image.UnidentifiedImageError:
        raise ImageError(f"{shown(path)}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, struct.error, EOFError) as err:
        # ValueError: e.g. a PNG text chunk that decompresses past Pillow's MAX_TEXT_CHUNK.
        raise ImageError(f"{shown(path)}: cannot open image ({err})") from None
    with image:
        width, height = image.size
        if width < 1 or height < 1:
            raise ImageError(f"{shown(path)}: zero-size image ({width}x{height})")
        if width * height > max_pixels:
            raise _too_large(path, width, height, max_pixels)
        try:
            if getattr(image, "is_animated", False):
                raise _animated(path, image.format, getattr(image, "n_frames", None))
            if not decode:
                if image.format == "PNG":
                    orientation = _png_orientation(path)  # an eXIf chunk may follow the pixels
                else:
                    orientation = image.getexif().get(0x0112)
                # read_image turns the pixels as EXIF says (Pillow's TIFF size is upright already)
                if image.format != "TIFF" and orientation in (5, 6, 7, 8):
                    width, height = height, width
                return ImageInfo(width, height, *_pillow_info(image))
            if image.format == "TIFF" and _tiff16_samples(image) and not image.mode.startswith("I;16"):
                return _read_tiff16(image, path)
            image.load()
            if image.format == "PNG":
                # Pillow finds an eXIf chunk after the image data only in some cases: read it here.
                return apply_orientation(_to_array(image, path), _png_orientation(path))
            # exif_transpose knows that Pillow's TIFF decoder has already turned the pixels;
            # in place: no copy of an upright image.
            ImageOps.exif_transpose(image, in_place=True)
            return _to_array(image, path)
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            raise ImageTooLargeError(
                f"{shown(path)}: refused by Pillow's decompression-bomb limit ({err})"
            ) from None
        except (OSError, SyntaxError, struct.error, ValueError, EOFError, KeyError, IndexError,
                TypeError, zlib.error) as err:
            raise ImageError(f"{shown(path)}: corrupt or truncated image ({err})") from None


def read_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """Read an image file as a numpy array.

    Args:
        path: str or PathLike to a PNG, JPEG, WebP, BMP, TIFF or (still) GIF file. File names
            that are not valid UTF-8 work (as `os.fsdecode` gives them).
        max_pixels: refuse images with more pixels than this (checked from the header, before
            decoding), so a hostile or mistaken file cannot exhaust memory.

    Returns:
        uint8 or uint16 array of shape `(H, W)`, `(H, W, 3)` or `(H, W, 4)`.

    Raises:
        ImageError: not an image, truncated or corrupt, zero-size, too large (an
            `ImageTooLargeError`, also for Pillow's decompression-bomb limit), animated or
            multi-page, or unsupported. The message names the file.
        FileNotFoundError: no such file.

    Example:
    >>> write_image("grey16.png", np.zeros((6, 8), np.uint16))
    >>> img = read_image("photo.png")
    >>> img.shape, img.dtype, read_image("grey16.png").dtype
    ((24, 32, 3), dtype('uint8'), dtype('uint16'))
    """
    return _open(path, max_pixels, decode=True)


class LoadedImage(NamedTuple):
    """An image's upright pixels and its file's metadata, as `read_image_with_metadata` gives them.

    Attributes:
        pixels: the array `read_image` returns.
        metadata: `keras_esrgan.metadata.ImageMetadata` (ICC profile, EXIF, PNG text, dpi), or
            None when the file's metadata could not be read (the pixels are still good).
    """

    pixels: np.ndarray
    metadata: object


def read_image_with_metadata(path, max_pixels=DEFAULT_MAX_PIXELS):
    """`read_image` and the file's metadata, to write both into an upscaled file.

    Pass the result's `metadata` to `write_image(..., metadata=)`: the output keeps the ICC colour
    profile, the EXIF (orientation 1, since the pixels are upright, and the new size) and PNG
    text, as far as its format can hold them (see `keras_esrgan.metadata`).

    Returns:
        `LoadedImage(pixels, metadata)`. Raises what `read_image` raises.

    Example:
    >>> from PIL import Image
    >>> exif = Image.Exif()
    >>> exif[0x0112] = 6  # viewers turn the stored 4x3 pixels 90 degrees clockwise
    >>> Image.new("RGB", (4, 3), "red").save("turned.jpg", exif=exif)
    >>> loaded = read_image_with_metadata("turned.jpg")
    >>> loaded.pixels.shape, loaded.metadata.orientation    # upright: 4 rows of 3
    ((4, 3, 3), 6)
    >>> write_image("turned_x2.png", loaded.pixels.repeat(2, 0).repeat(2, 1), metadata=loaded.metadata)
    >>> from keras_esrgan.metadata import read_metadata
    >>> read_metadata("turned_x2.png").orientation, read_metadata("turned_x2.png").size
    (1, (6, 8))
    """
    pixels = read_image(path, max_pixels=max_pixels)  # a module lookup: tests can wrap it
    try:
        metadata = read_metadata(path)
    except (OSError, ValueError):
        metadata = None
    return LoadedImage(pixels, metadata)


def _matching_icc(metadata, array):
    """`metadata` without its ICC profile when the profile's colour space is not the array's
    (a CMYK JPEG's profile on RGB pixels, an RGB profile on grey ones would shift colours)."""
    profile = metadata.icc_profile
    if not profile:
        return metadata
    space = profile[16:20]
    grey = array.ndim == 2
    if (space == b"GRAY" and grey) or (space == b"RGB " and not grey):
        return metadata
    return dataclasses.replace(metadata, icc_profile=None)


def probe_image(path, max_pixels=DEFAULT_MAX_PIXELS):
    """The size, channels and dtype `read_image` would give, from the header alone (the size
    after a JPEG's EXIF rotation, as `read_image` applies it).

    Every check `read_image` makes before decoding is made (and raises the same errors), so a
    caller can budget the memory of what it will do with the image before decoding it.

    Returns:
        `ImageInfo(width, height, channels, dtype)`.

    Example:
    >>> write_image("probe.png", np.zeros((24, 32, 4), np.uint8))
    >>> probe_image("probe.png")
    ImageInfo(width=32, height=24, channels=4, dtype='uint8')
    """
    return _open(path, max_pixels, decode=False)


def write_image(path, array, quality=95, overwrite=True, metadata=None, lossless=False):
    """Write a uint8/uint16 array as an image file, atomically (temporary file, then rename).

    Args:
        path: destination; the format follows the extension (.png, .jpg/.jpeg, .webp, .bmp,
            .tif). uint16 arrays need .png (written with `tf.io.encode_png`, which keeps 16 bits).
        array: `(H, W)`, `(H, W, 1)`, `(H, W, 3)` or `(H, W, 4)`, uint8 or uint16.
        quality: JPEG/WebP quality (for lossless WebP: the compression effort, 0..100).
        metadata: `keras_esrgan.metadata.ImageMetadata` of the input (`read_image_with_metadata`)
            to carry to this file: ICC profile, EXIF (orientation 1, the array's size, no
            thumbnail), PNG text, dpi, as far as the format holds them (BMP: none). An ICC
            profile of another colour space than the array's (CMYK, or RGB on grey) is dropped.
            None (default): no metadata.
        lossless: lossless WebP (ignored for other formats).
        overwrite: replace an existing file. With False, a file that exists when the image is
            complete (even one created while it was being encoded) is kept and
            `FileExistsError` raised (see `keras_esrgan.atomic.atomic_path`).

    A crash or full disk leaves either the old file or none, never a half-written image.
    """
    path = os.fspath(path)
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.dtype not in IMAGE_DTYPES or array.ndim not in (2, 3):
        raise ValueError(f"write_image: need uint8/uint16 (H, W[, 3|4]), got {array.dtype} {array.shape}")
    if array.ndim == 3 and array.shape[-1] not in (3, 4):
        raise ValueError(f"write_image: {array.shape[-1]} channels cannot be saved as an image")
    ext = os.path.splitext(path)[1].lower()
    if ext not in WRITE_EXTENSIONS:
        raise ValueError(f"write_image: cannot write {ext!r} images ({shown(path)}); use one of {WRITE_EXTENSIONS}")
    if array.dtype == np.uint16 and ext != ".png":
        raise ValueError(f"write_image: 16-bit images need .png, not {ext}")
    image = None if array.dtype == np.uint16 else Image.fromarray(array)
    if image is not None and ext in (".jpg", ".jpeg") and image.mode == "RGBA":
        raise ValueError("write_image: JPEG has no alpha channel; use .png or .webp")
    if metadata is not None:
        metadata = _matching_icc(metadata, array)
    with atomic_path(path, overwrite=overwrite) as tmp:
        if image is None:
            import tensorflow as tf

            data = tf.io.encode_png(array if array.ndim == 3 else array[..., None]).numpy()
            with open(tmp, "wb") as fh:
                fh.write(with_png_metadata(data, metadata))
            return
        kwargs = save_kwargs(metadata, ext, size=image.size)
        if ext in (".jpg", ".jpeg", ".webp"):
            kwargs["quality"] = quality
        if ext == ".webp" and lossless:
            kwargs["lossless"] = True
        # The extension decides the format, not the temporary name's.
        image.save(tmp, format=_WRITE_FORMATS[ext], **kwargs)
