"""keras_esrgan.metadata: orientation, ICC, EXIF and PNG text carried across an upscale.

Every file here is made by the test with Pillow (which writes EXIF orientation and ICC profiles)
and read back with Pillow's own readers, which are the independent reference: `read_metadata`'s
PNG chunk walker and `with_png_metadata`'s chunk insertion are checked against them.
"""

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms, ImageOps, PngImagePlugin

from keras_esrgan import metadata as md
from keras_esrgan.images import ImageError, read_image, write_image

SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
TEXT = {"Title": "a lighthouse", "parameters": "steps 30, «cfg» 7"}  # the second needs iTXt
EXIF_IFD = ExifTags.IFD.Exif


def _pattern(h, w, channels=3, dtype=np.uint8, seed=0):
    """An image no flip or rotation maps onto itself (random values)."""
    peak = np.iinfo(dtype).max
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 1 else (h, w, channels)
    return rng.integers(0, peak, shape, dtype=np.int64).astype(dtype)


def _exif(orientation, width, height):
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestCam"
    exif[ExifTags.Base.Model] = "M1"
    exif.get_ifd(EXIF_IFD)[ExifTags.Base.ExifImageWidth] = width
    exif.get_ifd(EXIF_IFD)[ExifTags.Base.ExifImageHeight] = height
    exif.get_ifd(EXIF_IFD)[ExifTags.Base.ExposureTime] = 0.004
    return exif


# Stored pixels for each orientation: the inverse of what the viewer applies, so that after
# `exif_transpose` the upright image is back. Written by hand from the EXIF definitions.
_STORE = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, 1),  # viewer turns it 90 clockwise
    7: lambda a: np.rot90(a, -1)[::-1],  # TRANSVERSE is its own inverse
    8: lambda a: np.rot90(a, -1),
}


@pytest.mark.parametrize("channels", [1, 3, 4])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow_exif_transpose(orientation, channels):
    stored = _pattern(5, 7, channels, seed=orientation)
    image = Image.fromarray(stored)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    image.info["exif"] = exif.tobytes()
    image.getexif()[ExifTags.Base.Orientation] = orientation
    expected = np.asarray(ImageOps.exif_transpose(image))
    got = md.apply_orientation(stored, orientation)
    np.testing.assert_array_equal(got, expected)
    assert got.flags.c_contiguous


@pytest.mark.parametrize("orientation", range(1, 9))
def test_stored_then_applied_is_upright_uint16(orientation):
    upright = _pattern(4, 6, 3, np.uint16, seed=3)
    stored = np.ascontiguousarray(_STORE[orientation](upright))
    np.testing.assert_array_equal(md.apply_orientation(stored, orientation), upright)


def test_apply_orientation_rejects_bad_arguments():
    with pytest.raises(ValueError, match="orientation must be 1..8"):
        md.apply_orientation(np.zeros((2, 2)), 9)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        md.apply_orientation(np.zeros(4), 1)


def _write(path, stored, fmt, orientation=6, icc=True, text=True, **extra):
    h, w = stored.shape[:2]
    kwargs = dict(exif=_exif(orientation, w, h).tobytes(), **extra)
    if icc:
        kwargs["icc_profile"] = SRGB
    if fmt == "PNG" and text:
        info = PngImagePlugin.PngInfo()
        for k, v in TEXT.items():
            info.add_text(k, v)
        kwargs["pnginfo"] = info
    Image.fromarray(stored).save(path, format=fmt, **kwargs)


FORMATS = {  # extension, Pillow format, lossless?, extra save arguments for the test files
    "png": ("PNG", True, {}),
    "tiff": ("TIFF", True, {}),
    "webp": ("WEBP", True, {"lossless": True}),
    "jpg": ("JPEG", False, {"quality": 98, "subsampling": 0}),
}


@pytest.mark.parametrize("ext", sorted(FORMATS))
def test_read_orient_upscale_write_read_back(tmp_path, ext):
    fmt, lossless, extra = FORMATS[ext]
    upright = _pattern(3, 5, 3, seed=4).repeat(4, 0).repeat(4, 1)  # 4x4 blocks: JPEG-friendly
    stored = np.ascontiguousarray(_STORE[6](upright))
    src = tmp_path / f"in.{ext}"
    _write(src, stored, fmt, dpi=(300, 300), **extra)

    meta = md.read_metadata(src)
    assert (meta.format, meta.orientation, meta.size) == (fmt, 6, stored.shape[1::-1])
    assert meta.upright_size == upright.shape[1::-1]
    assert meta.icc_profile == SRGB
    if fmt == "PNG":
        assert dict(meta.text) == TEXT

    raw = np.asarray(Image.open(src).convert("RGB"))
    if fmt == "TIFF":  # Pillow's TIFF decoder turns the pixels upright itself
        np.testing.assert_array_equal(raw, upright)
        pixels = raw
    else:
        np.testing.assert_array_equal(raw, stored) if lossless else None
        pixels = md.apply_orientation(raw, meta.orientation)
    big = pixels.repeat(2, 0).repeat(2, 1)  # the "upscale"
    out = tmp_path / f"out.{ext}"
    kwargs = md.save_kwargs(meta, ext, size=big.shape[1::-1])
    Image.fromarray(big).save(out, **kwargs, **extra)

    back = Image.open(out)  # Pillow's own reader: the reference
    assert back.size == (2 * upright.shape[1], 2 * upright.shape[0])
    got = np.asarray(back.convert("RGB")).astype(int)
    want = upright.repeat(2, 0).repeat(2, 1).astype(int)
    if lossless:
        np.testing.assert_array_equal(got, want)
    else:  # upright, not turned: a turned image would be off by about 80 levels on average
        assert np.abs(got - want).mean() < 4
        assert np.abs(got - np.rot90(want, 2)).mean() > 40
    assert back.info["icc_profile"] == SRGB
    exif = back.getexif()
    assert exif[ExifTags.Base.Orientation] == 1
    assert (exif[ExifTags.Base.Make], exif[ExifTags.Base.Model]) == ("TestCam", "M1")
    sub = exif.get_ifd(EXIF_IFD)
    assert (sub[ExifTags.Base.ExifImageWidth], sub[ExifTags.Base.ExifImageHeight]) == back.size
    assert float(sub[ExifTags.Base.ExposureTime]) == pytest.approx(0.004)
    if fmt == "PNG":
        assert back.text == TEXT
    if fmt != "WEBP":
        assert back.info["dpi"] == pytest.approx((300, 300), rel=1e-5)  # PNG: per metre
    again = md.read_metadata(out)
    assert (again.orientation, again.icc_profile, again.upright_size) == (1, SRGB, back.size)

    # read_image (what the CLI uses) sees the same upright pixels.
    if lossless:
        np.testing.assert_array_equal(read_image(out), want)

    stripped = tmp_path / f"stripped.{ext}"
    assert md.save_kwargs(meta, ext, size=back.size, strip=True) == {}
    Image.fromarray(big).save(stripped, **md.save_kwargs(meta, ext, size=back.size, strip=True))
    bare = md.read_metadata(stripped)
    assert bare.icc_profile is None and bare.exif is None and not bare.text
    assert "icc_profile" not in Image.open(stripped).info


def test_metadata_goes_only_where_the_format_can_hold_it(tmp_path):
    src = tmp_path / "in.png"
    _write(src, _pattern(4, 4), "PNG", dpi=(72, 72))
    meta = md.read_metadata(src)
    assert set(md.save_kwargs(meta, "png", size=(8, 8))) == {"icc_profile", "exif", "pnginfo", "dpi"}
    assert set(md.save_kwargs(meta, ".JPG", size=(8, 8))) == {"icc_profile", "exif", "dpi"}
    assert set(md.save_kwargs(meta, "WEBP", size=(8, 8))) == {"icc_profile", "exif"}
    assert md.save_kwargs(meta, "bmp", size=(8, 8)) == {}
    assert md.save_kwargs(None, "png", size=(8, 8)) == {}
    with pytest.raises(ValueError, match="unknown image format 'gif'"):
        md.save_kwargs(meta, "gif", size=(8, 8))


def _chunk(ctype, data):
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(">I", zlib.crc32(ctype + data))


def test_read_metadata_reads_the_header_only_and_chunks_after_the_image_data(tmp_path, monkeypatch):
    # A PNG whose text and EXIF come after IDAT (allowed; Pillow reads those only on decode).
    buf = io.BytesIO()
    Image.fromarray(_pattern(16, 16)).save(buf, format="PNG")
    png = buf.getvalue()
    iend = png.rindex(b"IEND") - 4
    exif = _exif(8, 16, 16).tobytes()[6:]  # the eXIf chunk holds no "Exif\0\0"
    late = (
        _chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"written after the pixels"))
        + _chunk(b"iTXt", b"Title\0\0\0\0\0" + "phare ✓".encode())
        + _chunk(b"eXIf", exif)
    )
    path = tmp_path / "late.png"
    path.write_bytes(png[:iend] + late + png[iend:])
    reference = Image.open(path)
    reference.load()
    assert reference.text == {"Comment": "written after the pixels", "Title": "phare ✓"}

    # A JPEG cut short inside its pixel data: a full decode would fail, the header is intact.
    jpg = tmp_path / "cut.jpg"
    _write(jpg, _pattern(64, 48), "JPEG", orientation=3)
    jpg.write_bytes(jpg.read_bytes()[: -400])

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("read_metadata decoded the pixels")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(PngImagePlugin.PngImageFile, "load", no_decoding)
    meta = md.read_metadata(path)
    assert dict(meta.text) == reference.text
    assert meta.orientation == 8 and meta.upright_size == (16, 16)

    meta = md.read_metadata(jpg)  # a full decode would fail here, and is forbidden anyway
    assert (meta.orientation, meta.icc_profile, meta.size) == (3, SRGB, (48, 64))


def test_read_metadata_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such image file"):
        md.read_metadata(tmp_path / "missing.png")
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match="notes.png: not an image file"):
        md.read_metadata(bad)


def test_metadata_is_frozen():
    meta = md.ImageMetadata("PNG", (1, 1), "RGB", text={"a": "b"})
    with pytest.raises(AttributeError):
        meta.orientation = 3
    with pytest.raises(TypeError):
        meta.text["a"] = "c"


def _exif_with_thumbnail(thumbnail):
    """Big-endian TIFF structure: IFD0 (Make, Orientation) -> IFD1 (a JPEG thumbnail)."""
    ifd0 = 8
    ifd1 = ifd0 + 2 + 2 * 12 + 4
    thumb_at = ifd1 + 2 + 2 * 12 + 4
    head = b"MM\0*" + struct.pack(">I", ifd0)
    ifd0_bytes = (
        struct.pack(">H", 2)
        + struct.pack(">HHI4s", 0x010F, 2, 4, b"Cam\0")
        + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0)
        + struct.pack(">I", ifd1)
    )
    ifd1_bytes = (
        struct.pack(">H", 2)
        + struct.pack(">HHII", 0x0201, 4, 1, thumb_at)
        + struct.pack(">HHII", 0x0202, 4, 1, len(thumbnail))
        + struct.pack(">I", 0)
    )
    return b"Exif\0\0" + head + ifd0_bytes + ifd1_bytes + thumbnail


def test_updated_exif_drops_the_thumbnail_and_keeps_the_tags():
    buf = io.BytesIO()
    Image.fromarray(_pattern(8, 8)).save(buf, format="JPEG")
    thumbnail = buf.getvalue()
    source = _exif_with_thumbnail(thumbnail)
    before = Image.Exif()
    before.load(source)
    assert before[0x0112] == 6 and before.get_ifd(ExifTags.IFD.IFD1)[0x0202] == len(thumbnail)

    out = md.updated_exif(source, 64, 32)
    after = Image.Exif()
    after.load(out)
    assert after[0x0112] == 1 and after[0x010F] == "Cam"
    assert not after.get_ifd(ExifTags.IFD.IFD1)
    assert thumbnail[:64] not in out
    # No Exif IFD in the input: none is invented for the dimensions.
    assert not after.get_ifd(EXIF_IFD)


def test_updated_exif_updates_ifd0_dimensions_when_present():
    exif = _exif(5, 10, 20)
    exif[0x0100], exif[0x0101] = 10, 20
    after = Image.Exif()
    after.load(md.updated_exif(exif.tobytes(), 40, 80))
    assert (after[0x0100], after[0x0101]) == (40, 80)
    assert after.get_ifd(EXIF_IFD)[0xA002] == 40 and after.get_ifd(EXIF_IFD)[0xA003] == 80


@pytest.mark.parametrize("channels", [3, 4])
def test_sixteen_bit_png_keeps_depth_alpha_and_metadata(tmp_path, channels):
    import tensorflow as tf

    upright = _pattern(5, 3, channels, np.uint16, seed=channels)
    stored = np.ascontiguousarray(_STORE[3](upright))
    # A 16-bit source with metadata, chunks written by hand after TensorFlow's IHDR.
    src_png = tf.io.encode_png(stored).numpy()
    chunks = (
        _chunk(b"iCCP", b"ICC Profile\0\0" + zlib.compress(SRGB))
        + _chunk(b"eXIf", _exif(3, 3, 5).tobytes()[6:])
        + _chunk(b"tEXt", b"Title\0" + TEXT["Title"].encode("latin-1"))
        + _chunk(b"iTXt", b"parameters\0\0\0\0\0" + TEXT["parameters"].encode())
    )
    src = tmp_path / "in16.png"
    src.write_bytes(src_png[:33] + chunks + src_png[33:])

    meta = md.read_metadata(src)
    assert meta.icc_profile == SRGB and dict(meta.text) == TEXT and meta.orientation == 3
    pixels = read_image(src)  # the 16-bit path of images.py: TensorFlow, then the orientation
    assert pixels.dtype == np.uint16
    np.testing.assert_array_equal(pixels, upright)
    np.testing.assert_array_equal(md.apply_orientation(stored, meta.orientation), upright)
    big = pixels.repeat(2, 0).repeat(2, 1)
    out = tmp_path / "out16.png"
    write_image(out, big)  # 16 bits through tf.io.encode_png, as today
    out.write_bytes(md.with_png_metadata(out.read_bytes(), meta))
    np.testing.assert_array_equal(read_image(out), big)  # depth and alpha unaffected
    with Image.open(out) as pil:
        assert pil.info["icc_profile"] == SRGB
        exif = pil.getexif()
        assert exif[0x0112] == 1 and exif.get_ifd(EXIF_IFD)[0xA002] == 6
        pil.load()
        assert pil.text == TEXT
    stripped = md.with_png_metadata(tf.io.encode_png(big).numpy(), meta, strip=True)
    assert stripped == tf.io.encode_png(big).numpy()


def test_with_png_metadata_rejects_other_files():
    with pytest.raises(ValueError, match="not a PNG file"):
        md.with_png_metadata(b"\xff\xd8\xff\xe0 jpeg", md.ImageMetadata("PNG", (1, 1), "RGB"))


def test_alpha_png_round_trip_keeps_alpha_and_metadata(tmp_path):
    upright = _pattern(4, 6, 4, seed=9)
    src = tmp_path / "rgba.png"
    _write(src, np.ascontiguousarray(_STORE[8](upright)), "PNG", orientation=8)
    meta = md.read_metadata(src)
    pixels = read_image(src)  # turned upright on read
    np.testing.assert_array_equal(pixels, upright)
    big = pixels.repeat(2, 0).repeat(2, 1)
    out = tmp_path / "rgba_out.png"
    Image.fromarray(big).save(out, **md.save_kwargs(meta, "png", size=big.shape[1::-1]))
    np.testing.assert_array_equal(read_image(out), big)
    assert md.read_metadata(out).orientation == 1
    assert md.read_metadata(out).icc_profile == SRGB


# --- read_image / read_image_with_metadata / write_image(metadata=) -------------------------


@pytest.mark.parametrize("ext", sorted(FORMATS))
@pytest.mark.parametrize("orientation", [3, 6, 7])
def test_read_image_turns_every_format_upright_and_probe_agrees(tmp_path, ext, orientation):
    from keras_esrgan.images import probe_image

    fmt, lossless, extra = FORMATS[ext]
    upright = _pattern(3, 5, 3, seed=orientation).repeat(4, 0).repeat(4, 1)
    stored = np.ascontiguousarray(_STORE[orientation](upright))
    src = tmp_path / f"in.{ext}"
    _write(src, stored, fmt, orientation=orientation, **extra)
    got = read_image(src)
    assert got.shape == upright.shape
    if lossless:
        np.testing.assert_array_equal(got, upright)
    else:
        assert np.abs(got.astype(int) - upright).mean() < 4
    info = probe_image(src)
    assert (info.height, info.width) == upright.shape[:2]


def test_sixteen_bit_png_with_exif_after_the_pixels_is_turned(tmp_path):
    from keras_esrgan.images import probe_image

    upright = _pattern(4, 6, 3, np.uint16, seed=9)
    stored = np.ascontiguousarray(_STORE[8](upright))
    import tensorflow as tf

    png = tf.io.encode_png(stored).numpy()
    iend = png.rindex(b"IEND") - 4
    exif = _exif(8, stored.shape[1], stored.shape[0]).tobytes()
    (tmp_path / "deep.png").write_bytes(png[:iend] + _chunk(b"eXIf", exif) + png[iend:])
    got = read_image(tmp_path / "deep.png")
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, upright)
    assert probe_image(tmp_path / "deep.png")[:2] == (6, 4)


@pytest.mark.parametrize("out_ext", ["png", "jpg", "webp", "tiff"])
def test_write_image_carries_what_read_image_with_metadata_read(tmp_path, out_ext):
    from keras_esrgan.images import read_image_with_metadata

    upright = _pattern(3, 5, 3, seed=2).repeat(4, 0).repeat(4, 1)
    src = tmp_path / "in.png"
    _write(src, np.ascontiguousarray(_STORE[6](upright)), "PNG", dpi=(300, 300))
    loaded = read_image_with_metadata(src)
    np.testing.assert_array_equal(loaded.pixels, upright)
    big = loaded.pixels.repeat(2, 0).repeat(2, 1)
    out = tmp_path / f"out.{out_ext}"
    write_image(out, big, metadata=loaded.metadata, lossless=True)
    back = Image.open(out)
    assert back.size == big.shape[1::-1] and back.info["icc_profile"] == SRGB
    exif = back.getexif()
    assert exif[ExifTags.Base.Orientation] == 1 and exif[ExifTags.Base.Make] == "TestCam"
    assert exif.get_ifd(EXIF_IFD)[ExifTags.Base.ExifImageWidth] == big.shape[1]
    assert (back.text if out_ext == "png" else {}) == (TEXT if out_ext == "png" else {})
    if out_ext != "jpg":  # lossless WebP, PNG, TIFF: the very pixels
        np.testing.assert_array_equal(read_image(out), big)
    plain = tmp_path / f"plain.{out_ext}"
    write_image(plain, big)  # no metadata= : none written
    bare = md.read_metadata(plain)
    assert bare.icc_profile is None and bare.exif is None and not bare.text


def test_write_image_sixteen_bit_keeps_metadata_and_drops_a_profile_of_another_colour_space(tmp_path):
    deep = _pattern(4, 6, 3, np.uint16, seed=3)
    meta = md.ImageMetadata("PNG", (6, 4), "RGB", icc_profile=SRGB, text=TEXT)
    write_image(tmp_path / "deep.png", deep, metadata=meta)
    np.testing.assert_array_equal(read_image(tmp_path / "deep.png"), deep)
    back = md.read_metadata(tmp_path / "deep.png")
    assert back.icc_profile == SRGB and dict(back.text) == TEXT
    # An RGB profile on grey pixels (or a CMYK JPEG's on RGB ones) would shift colours: dropped.
    write_image(tmp_path / "grey.png", deep[..., 0], metadata=meta)
    assert md.read_metadata(tmp_path / "grey.png").icc_profile is None
    cmyk = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    cmyk = cmyk[:16] + b"CMYK" + cmyk[20:]
    write_image(tmp_path / "rgb.png", deep, metadata=md.ImageMetadata("JPEG", (6, 4), "CMYK", icc_profile=cmyk))
    assert md.read_metadata(tmp_path / "rgb.png").icc_profile is None
