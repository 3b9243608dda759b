"""Image metadata across an upscale: EXIF orientation, ICC profile, EXIF tags, PNG text, dpi.

Photo tools lose what a file says about its pixels: the colour profile (a Display P3 or Adobe RGB
photo turns dull without it), the camera's EXIF, the PNG text a generator wrote. This module reads
that metadata from a file's header, puts the pixels upright, and gives Pillow the arguments that
write it to the upscaled file:

>>> from PIL import Image
>>> exif = Image.Exif()
>>> exif[0x0112] = 6  # the stored pixels are turned: viewers rotate them 90 degrees clockwise
>>> Image.new("RGB", (4, 3), "red").save("photo.jpg", exif=exif)
>>> meta = read_metadata("photo.jpg")  # the header only, nothing decoded
>>> upright = apply_orientation(np.asarray(Image.open("photo.jpg")), meta.orientation)
>>> big = upright.repeat(2, axis=0).repeat(2, axis=1)  # stands for `upscaler(upright)`
>>> Image.fromarray(big).save("big.png", **save_kwargs(meta, "png", size=big.shape[1::-1]))
>>> read_metadata("big.png").orientation, Image.open("big.png").size
(1, (6, 8))

What the output gets, and why:

- **Orientation 1.** The pixels are written upright, so the tag must say so: a copied 6 would make
  viewers rotate them a second time. `apply_orientation` is Pillow's `ImageOps.exif_transpose`
  on arrays (the tests compare all 8 orientations with it), for pixels Pillow did not decode
  (16-bit PNGs go through TensorFlow). Mind one trap: Pillow's TIFF decoder already turns the
  pixels upright (and reports the upright size), so a decoded TIFF must not be turned again;
  `ImageOps.exif_transpose` knows this, `ImageMetadata.orientation` is the tag as stored.
- **ICC profile byte for byte** (PNG iCCP, JPEG APP2, WebP ICCP, TIFF tag 34675): the upscaled
  pixels are in the input's colour space, so the input's profile is the right one.
- **EXIF with the new size.** Every tag is kept (camera, date, GPS, exposure, ...) except:
  Orientation is 1; PixelXDimension/PixelYDimension (Exif IFD) and ImageWidth/ImageLength (IFD0),
  where present, give the output's size; and **the embedded thumbnail (IFD1) is dropped**. The
  thumbnail is the small picture of the input in its stored, unrotated orientation: kept beside
  Orientation 1 it would show sideways in viewers that use it, and it is not what the file holds
  any more. Viewers make their own thumbnail when there is none (the EXIF standard makes IFD1
  optional), so dropping it loses nothing. (Pillow's EXIF writer never writes IFD1 anyway.)
- **PNG text** (tEXt, zTXt, iTXt: prompts, titles, software) is kept when the output is PNG; JPEG,
  WebP and TIFF have no such chunks, and it is dropped there.
- **dpi is kept as it was**, as ImageMagick's and Photoshop's resampling do: the output has more
  pixels per inch of the same value, so it prints larger, at the same sharpness per pixel.
- XMP, IPTC and maker notes outside EXIF are not carried.

`save_kwargs(meta, fmt, size=..., strip=True)` gives no metadata at all (`--strip-metadata`).
16-bit colour PNGs are written by TensorFlow, not Pillow; `with_png_metadata` inserts the same
chunks Pillow would write into such a file.
"""

import dataclasses
import io
import os
import types
import zlib

import numpy as np
from PIL import ExifTags, Image, PngImagePlugin

_ORIENTATION = ExifTags.Base.Orientation  # 0x0112
_EXIF_IFD = ExifTags.IFD.Exif  # 0x8769

# File extensions and Pillow format names -> the Pillow format `save_kwargs` writes for.
_FORMATS = {
    "png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF",
    "bmp": "BMP",
}
# What each output format can carry (BMP: none of it).
_CARRIES = {
    "PNG": {"icc", "exif", "text", "dpi"},
    "JPEG": {"icc", "exif", "dpi"},
    "WEBP": {"icc", "exif"},
    "TIFF": {"icc", "exif", "dpi"},
    "BMP": set(),
}
# TIFF tags that describe a TIFF file's own pixel layout: they are not EXIF to carry from a TIFF
# input (the writer sets its own), only the descriptive tags are.
_TIFF_LAYOUT_TAGS = {
    254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 282, 283, 284, 296, 317, 320,
    322, 323, 324, 325, 338, 339, 340, 341, 530, 531, 532, 700, 33723, 34377, 34675,
}
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")


@dataclasses.dataclass(frozen=True)
class ImageMetadata:
    """What an image file says about its pixels, read by `read_metadata`.

    Attributes:
        format: Pillow's format name of the file (`"PNG"`, `"JPEG"`, `"WEBP"`, `"TIFF"`, ...).
        size: `(width, height)` of the stored pixels (before orientation; for TIFF too, whose
            Pillow size is after it).
        mode: Pillow's mode of the stored pixels (`"RGB"`, `"RGBA"`, `"I;16"`, ...).
        orientation: EXIF orientation 1..8 (1: the stored pixels are upright; any other or
            invalid value in the file reads as 1, as Pillow does).
        exif: the file's EXIF as bytes (a TIFF structure, with or without the `Exif\\0\\0`
            prefix), or None.
        icc_profile: the ICC colour profile, byte for byte, or None.
        text: PNG text chunks `{keyword: text}` (read-only), empty for other formats.
        dpi: `(x, y)` pixels per inch, or None when the file does not say.
    """

    format: str
    size: tuple
    mode: str
    orientation: int = 1
    exif: bytes | None = None
    icc_profile: bytes | None = None
    text: types.MappingProxyType = dataclasses.field(default_factory=dict)
    dpi: tuple | None = None

    def __post_init__(self):
        object.__setattr__(self, "text", types.MappingProxyType(dict(self.text)))

    @property
    def upright_size(self):
        """`(width, height)` after `apply_orientation` (orientations 5..8 swap the sides)."""
        w, h = self.size
        return (h, w) if self.orientation in (5, 6, 7, 8) else (w, h)


def _image_error(message):
    # Imported here, not at the top: images.py is to import this module for reading.
    from keras_esrgan.images import ImageError

    return ImageError(message)


def _orientation(exif):
    value = exif.get(_ORIENTATION, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _inflate(data, limit, what):
    """zlib-decompress at most `limit` bytes: a tiny chunk may claim gigabytes (zip bomb)."""
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, limit)
    if inflater.unconsumed_tail:
        raise ValueError(f"{what} decompresses to more than {limit:,} bytes")
    return out


def _png_chunks(path):
    """Yield `(type, data)` of a PNG's chunks, reading only the ancillary ones: image data
    (IDAT) is skipped with a seek, so this costs a few reads whatever the image size."""
    wanted = set(_PNG_TEXT_CHUNKS) | {b"eXIf", b"iCCP", b"pHYs"}
    with open(path, "rb") as fh:
        if fh.read(8) != _PNG_SIGNATURE:
            raise ValueError("not a PNG signature")
        while True:
            head = fh.read(8)
            if len(head) < 8:
                return  # truncated after the last complete chunk: keep what was read
            length, ctype = int.from_bytes(head[:4], "big"), head[4:]
            if ctype == b"IEND":
                return
            if ctype in wanted and length <= PngImagePlugin.MAX_TEXT_MEMORY:
                data = fh.read(length)
                if len(data) < length:
                    return
                yield ctype, data
                fh.seek(4, os.SEEK_CUR)  # CRC
            else:
                fh.seek(length + 4, os.SEEK_CUR)


def _read_png(path):
    """(exif, icc, text, dpi) of a PNG, including chunks after the image data, which Pillow
    reads only when it decodes the pixels."""
    exif = icc = dpi = None
    text = {}
    budget = PngImagePlugin.MAX_TEXT_MEMORY
    for ctype, data in _png_chunks(path):
        try:
            if ctype == b"eXIf":
                exif = data
            elif ctype == b"iCCP":
                name, rest = data.split(b"\0", 1)
                icc = _inflate(rest[1:], PngImagePlugin.MAX_TEXT_MEMORY, "iCCP profile")
            elif ctype == b"pHYs" and len(data) == 9 and data[8] == 1:
                # pixels per metre; Pillow reports the same value as dpi
                dpi = tuple(int.from_bytes(data[i : i + 4], "big") * 0.0254 for i in (0, 4))
            elif ctype == b"tEXt":
                key, value = data.split(b"\0", 1)
                text[key.decode("latin-1")] = value.decode("latin-1")
            elif ctype == b"zTXt":
                key, rest = data.split(b"\0", 1)
                value = _inflate(rest[1:], min(budget, PngImagePlugin.MAX_TEXT_CHUNK), "zTXt")
                text[key.decode("latin-1")] = value.decode("latin-1")
            elif ctype == b"iTXt":
                key, rest = data.split(b"\0", 1)
                compressed, rest = rest[0], rest[2:]
                _lang, _translated, value = rest.split(b"\0", 2)
                if compressed:
                    value = _inflate(value, min(budget, PngImagePlugin.MAX_TEXT_CHUNK), "iTXt")
                text[key.decode("latin-1")] = value.decode("utf-8")
            else:
                continue
        except (ValueError, UnicodeDecodeError, zlib.error):
            continue  # a damaged ancillary chunk is skipped, as Pillow and libpng do
        if ctype in _PNG_TEXT_CHUNKS:
            budget -= len(text[key.decode("latin-1")])
            if budget <= 0:
                break
    return exif, icc, text, dpi


def read_metadata(path):
    """Read an image file's metadata from its header, without decoding the pixels.

    Args:
        path: str or PathLike to a PNG, JPEG, WebP, TIFF or BMP file.

    Returns:
        `ImageMetadata`. PNG text and EXIF chunks stored after the image data are read too
        (by seeking over the data, not decoding it).

    Raises:
        FileNotFoundError: no such file.
        ImageError: not an image file Pillow can open.

    Example:
    >>> from PIL import Image
    >>> exif = Image.Exif()
    >>> exif[0x0112] = 6
    >>> Image.new("RGB", (4, 3)).save("rotated.jpg", exif=exif)
    >>> meta = read_metadata("rotated.jpg")
    >>> meta.format, meta.size, meta.orientation, meta.upright_size
    ('JPEG', (4, 3), 6, (3, 4))
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such image file: {path}")
    try:
        image = Image.open(path)
    except Image.UnidentifiedImageError:
        raise _image_error(f"{path}: not an image file Pillow can read") from None
    except OSError as err:
        raise _image_error(f"{path}: cannot open image ({err})") from None
    with image:
        fmt, size, mode = image.format, image.size, image.mode
        dpi = image.info.get("dpi")
        text = {}
        if fmt == "PNG":
            exif_bytes, icc, text, dpi = _read_png(path)
        else:
            icc = image.info.get("icc_profile") or None
            exif_bytes = image.info.get("exif") or None
            if fmt == "TIFF":
                # Pillow reports a TIFF's size after orientation (its decoder turns the pixels
                # upright itself); the stored size is in the tags.
                size = (image.tag_v2.get(256, size[0]), image.tag_v2.get(257, size[1]))
                # A TIFF's EXIF is its own first IFD: keep the descriptive tags only.
                tags = image.getexif()
                for tag in _TIFF_LAYOUT_TAGS & set(tags):
                    del tags[tag]
                exif_bytes = tags.tobytes() if len(tags) else None
    exif = Image.Exif()
    if exif_bytes:
        try:
            exif.load(exif_bytes)
        except Exception:  # Pillow raises assorted errors on broken EXIF; the pixels are fine
            exif_bytes = None
    if fmt == "JPEG" and image.info.get("jfif_unit", 0) == 0 and 282 not in exif:
        dpi = None  # Pillow's guess of 72 for a JPEG with EXIF but no resolution anywhere
    if dpi is not None:
        dpi = tuple(float(v) for v in dpi)
    return ImageMetadata(
        format=fmt, size=tuple(size), mode=mode, orientation=_orientation(exif),
        exif=exif_bytes or None, icc_profile=icc or None, text=text, dpi=dpi,
    )


def apply_orientation(array, orientation):
    """Turn stored pixels upright for an EXIF orientation, as `ImageOps.exif_transpose` does.

    Args:
        array: `(H, W)` or `(H, W, C)` numpy array of any dtype (uint16 and alpha included).
        orientation: EXIF orientation 1..8 (`ImageMetadata.orientation`).

    Returns:
        The upright array: `(W, H[, C])` for orientations 5..8. Orientation 1 returns `array`
        itself; the others a C-contiguous copy.

    Example:
    >>> a = np.arange(6).reshape(2, 3)
    >>> apply_orientation(a, 6)   # stored rotated 90 degrees anticlockwise: turn it clockwise
    array([[3, 0],
           [4, 1],
           [5, 2]])
    """
    array = np.asarray(array)
    if array.ndim not in (2, 3):
        raise ValueError(f"apply_orientation: expected (H, W) or (H, W, C), got {array.shape}")
    if isinstance(orientation, bool) or orientation not in range(1, 9):
        raise ValueError(f"apply_orientation: orientation must be 1..8, got {orientation!r}")
    if orientation == 1:
        return array
    transforms = {
        2: lambda a: a[:, ::-1],  # FLIP_LEFT_RIGHT
        3: lambda a: a[::-1, ::-1],  # ROTATE_180
        4: lambda a: a[::-1],  # FLIP_TOP_BOTTOM
        5: lambda a: a.swapaxes(0, 1),  # TRANSPOSE
        6: lambda a: np.rot90(a, -1),  # ROTATE_270 (anticlockwise), i.e. 90 clockwise
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # TRANSVERSE
        8: lambda a: np.rot90(a, 1),  # ROTATE_90 (anticlockwise)
    }
    return np.ascontiguousarray(transforms[orientation](array))


def updated_exif(exif_bytes, width, height):
    """EXIF for upright pixels of a new size: orientation 1, dimensions updated, no thumbnail.

    Args:
        exif_bytes: EXIF as read (`ImageMetadata.exif`), with or without `Exif\\0\\0`.
        width, height: the output image's size.

    Returns:
        bytes (with the `Exif\\0\\0` prefix, which every Pillow writer accepts). All other tags
        are kept; PixelXDimension/PixelYDimension and IFD0 ImageWidth/ImageLength are set to
        the new size where the input had them; the thumbnail (IFD1) is dropped (see the module
        docstring for why).

    Example:
    >>> exif = Image.Exif()
    >>> exif[0x0112], exif[0x010F] = 6, "Canon"
    >>> exif.get_ifd(0x8769)[0xA002] = 400
    >>> out = Image.Exif()
    >>> out.load(updated_exif(exif.tobytes(), 1600, 1200))
    >>> out[0x0112], out[0x010F], out.get_ifd(0x8769)[0xA002]
    (1, 'Canon', 1600)
    """
    exif = Image.Exif()
    exif.load(exif_bytes)
    exif[_ORIENTATION] = 1
    for tag, value in ((0x0100, width), (0x0101, height)):  # ImageWidth, ImageLength
        if tag in exif:
            exif[tag] = int(value)
    sub = exif.get_ifd(_EXIF_IFD)
    for tag, value in ((0xA002, width), (0xA003, height)):  # PixelX/YDimension
        if sub:  # an Exif IFD exists: it describes this image, so it gets the new size
            sub[tag] = int(value)
    # The thumbnail (IFD1) is not written: Pillow's `Exif.tobytes` writes IFD0 and the IFDs it
    # points to (Exif, GPS, Interop), never IFD1 (tests/test_metadata.py checks it).
    return exif.tobytes()


def _pil_format(fmt):
    key = str(fmt).lower().lstrip(".")
    name = _FORMATS.get(key, str(fmt).upper())
    if name not in _CARRIES:
        raise ValueError(
            f"save_kwargs: unknown image format {fmt!r}; expected one of "
            f"{sorted(set(_FORMATS))} (or a Pillow name: {sorted(_CARRIES)})"
        )
    return name


def save_kwargs(metadata, fmt, *, size, strip=False):
    """Pillow `Image.save` arguments that write `metadata` into an upscaled `fmt` file.

    Args:
        metadata: `ImageMetadata` of the input, or None (no metadata).
        fmt: the output format: an extension (`".png"`, `"jpg"`) or Pillow name (`"WEBP"`).
        size: `(width, height)` of the output, for the EXIF dimension tags.
        strip: True gives `{}`: nothing of the input's metadata is written.

    Returns:
        dict with some of `icc_profile`, `exif`, `pnginfo` (PNG text), `dpi`: what `fmt` can
        carry. Add `quality=` and the like yourself. The pixels must already be upright
        (`apply_orientation`): the EXIF says orientation 1.

    Example:
    >>> exif = Image.Exif()
    >>> exif[0x0112] = 6
    >>> Image.new("RGB", (4, 3)).save("turned.jpg", exif=exif)
    >>> meta = read_metadata("turned.jpg")
    >>> sorted(save_kwargs(meta, "png", size=(6, 8)))
    ['exif']
    >>> save_kwargs(meta, "png", size=(6, 8), strip=True)
    {}
    """
    carries = _CARRIES[_pil_format(fmt)]
    if strip or metadata is None:
        return {}
    kwargs = {}
    if metadata.icc_profile and "icc" in carries:
        kwargs["icc_profile"] = metadata.icc_profile
    if metadata.exif and "exif" in carries:
        kwargs["exif"] = updated_exif(metadata.exif, *size)
    if metadata.text and "text" in carries:
        info = PngImagePlugin.PngInfo()
        for key, value in metadata.text.items():
            info.add_text(key, value)  # iTXt (UTF-8) when the text is not Latin-1
        kwargs["pnginfo"] = info
    if metadata.dpi and "dpi" in carries:
        kwargs["dpi"] = metadata.dpi
    return kwargs


def with_png_metadata(png_bytes, metadata, *, strip=False):
    """A PNG file's bytes with `metadata`'s chunks added, for PNGs Pillow did not write.

    16-bit colour PNGs are encoded by TensorFlow (Pillow cannot write them), with no metadata.
    This inserts after the header exactly the chunks (iCCP, eXIf, text, pHYs) that Pillow
    writes for `save_kwargs(metadata, "png", ...)`, with the EXIF size taken from the PNG itself.

    Args:
        png_bytes: a complete PNG file without those chunks.
        metadata: `ImageMetadata` or None; strip: as for `save_kwargs`.

    Returns:
        bytes of the PNG with the chunks (the same bytes when there is nothing to add).

    Example:
    >>> import tensorflow as tf
    >>> png = tf.io.encode_png(np.zeros((2, 3, 3), np.uint16)).numpy()
    >>> meta = ImageMetadata("PNG", (3, 2), "RGB", text={"Title": "x"})
    >>> Image.open(io.BytesIO(with_png_metadata(png, meta))).text
    {'Title': 'x'}
    """
    if not png_bytes.startswith(_PNG_SIGNATURE) or png_bytes[12:16] != b"IHDR":
        raise ValueError("with_png_metadata: not a PNG file (no PNG signature and IHDR)")
    width = int.from_bytes(png_bytes[16:20], "big")
    height = int.from_bytes(png_bytes[20:24], "big")
    kwargs = save_kwargs(metadata, "png", size=(width, height), strip=strip)
    if not kwargs:
        return png_bytes
    # Let Pillow encode the chunks (on a 1x1 image) so both paths write the same bytes.
    probe = io.BytesIO()
    Image.new("RGB", (1, 1)).save(probe, format="PNG", **kwargs)
    data, chunks, pos = probe.getvalue(), [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos : pos + 4], "big")
        ctype = data[pos + 4 : pos + 8]
        if ctype not in (b"IHDR", b"IDAT", b"IEND"):
            chunks.append(data[pos : pos + 12 + length])
        pos += 12 + length
    ihdr_end = 8 + 12 + 13
    return png_bytes[:ihdr_end] + b"".join(chunks) + png_bytes[ihdr_end:]
