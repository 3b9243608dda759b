"""The keras-esrgan command end to end on a tiny model: upscale, interpolate, convert, bad inputs."""

import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from keras_esrgan import RRDBNet, load_generator, save_generator
from keras_esrgan.cli import build_parser, main, output_path
from keras_esrgan.images import read_image, write_image
from keras_esrgan.inference import DEFAULT_BLEND, DEFAULT_TILE_PAD, Upscaler
from tests.standins import photo_crop

SMALL = dict(num_feat=8, num_block=1, num_grow_ch=4)


# The module-scoped fixtures below are built once: keep this file's tests on one xdist
# worker (pyproject: --dist loadgroup); other files' tests are spread one by one.
pytestmark = pytest.mark.xdist_group("cli")


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    net = RRDBNet(**SMALL)
    net.conv_last.bias.assign(np.full(3, 0.5, "float32"))  # outputs mid-grey, not all 0
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_generator(net, path)
    return str(path)


@pytest.fixture(scope="module")
def reference(weights):
    """The library's own upscaler on the same weights: what the CLI must write."""
    return Upscaler(weights, precision="fp32")


def crop(name, size=24, mode="RGB"):
    return photo_crop(name, 40, 60, size, size, mode)


def png_header_only(width, height):
    """A PNG whose IHDR claims `width x height` (valid CRCs), with a token IDAT."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 16)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def listing(folder):
    return sorted(os.listdir(folder))


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_upscale_files_and_folders(tmp_path, weights, reference, capsys):
    src = tmp_path / "in"
    src.mkdir()
    rgb = crop("baby.png")
    grey = crop("bird.png", 20, "L")
    write_image(src / "baby.png", rgb)
    write_image(src / "bird.png", grey)
    (src / "readme.txt").write_text("not an image, and not listed from a folder")
    extra = tmp_path / "extra.jpg"
    Image.fromarray(crop("head.png", 16)).save(extra, quality=95)
    out = tmp_path / "out"

    code, stdout, stderr = run(
        capsys, "upscale", src, extra, "-o", out, "--weights", weights, "--precision", "fp32"
    )
    assert code == 0, stderr
    assert listing(out) == ["baby_out.png", "bird_out.png", "extra_out.jpg"]
    np.testing.assert_array_equal(read_image(out / "baby_out.png"), reference(rgb))
    np.testing.assert_array_equal(read_image(out / "bird_out.png"), reference(grey))
    assert read_image(out / "extra_out.jpg").shape == (64, 64, 3)
    assert "3 of 3 image(s) upscaled" in stdout

    # Existing outputs are skipped without --overwrite (a rerun resumes), left as they were.
    before = (out / "baby_out.png").read_bytes()
    code, stdout, stderr = run(
        capsys, "upscale", src / "baby.png", "-o", out, "--weights", weights, "--outscale", "2"
    )
    assert code == 0 and "0 of 1 image(s) upscaled" in stdout and "1 skipped (output exists" in stdout
    assert (out / "baby_out.png").read_bytes() == before
    code, _, stderr = run(
        capsys, "upscale", src / "baby.png", "-o", out, "--weights", weights, "--outscale", "2",
        "--overwrite", "--precision", "fp32",
    )
    assert code == 0, stderr
    np.testing.assert_array_equal(read_image(out / "baby_out.png"), reference(rgb, outscale=2))


def test_bad_inputs_are_reported_and_skipped(tmp_path, weights, reference, capsys):
    src = tmp_path / "in"
    src.mkdir()
    good = crop("butterfly.png", 16)
    write_image(src / "a_good.png", good)
    write_image(src / "one.png", np.array([[[9, 99, 199]]], np.uint8))  # 1x1 is a valid image
    full = (src / "a_good.png").read_bytes()
    (src / "truncated.png").write_bytes(full[: len(full) // 2])
    (src / "empty.png").write_bytes(b"")
    (src / "notes.png").write_text("this is text, not a PNG")
    (src / "huge.png").write_bytes(png_header_only(100_000, 100_000))
    out = tmp_path / "out"

    code, stdout, stderr = run(
        capsys, "upscale", src, tmp_path / "missing.png", "-o", out, "--weights", weights,
        "--precision", "fp32",
    )
    assert code == 1
    lines = stderr.strip().splitlines()
    assert len(lines) == 5, stderr
    for name, problem in [
        ("truncated.png", "corrupt or truncated"),
        ("empty.png", "empty file"),
        ("notes.png", "not an image file"),
        ("huge.png", "100000x100000 = 10,000,000,000 pixels is more than max_pixels"),
        ("missing.png", "no such image file"),
    ]:
        assert any(name in line and problem in line for line in lines), (name, stderr)
    assert all("Traceback" not in line for line in lines)
    assert "2 of 7 image(s) upscaled" in stdout and "5 failed" in stdout
    # Only the good outputs, complete; no temporary files left behind.
    assert listing(out) == ["a_good_out.png", "one_out.png"]
    np.testing.assert_array_equal(read_image(out / "a_good_out.png"), reference(good))
    assert read_image(out / "one_out.png").shape == (4, 4, 3)


def test_never_over_an_input_or_another_output(tmp_path, weights, capsys):
    src = tmp_path / "in"
    src.mkdir()
    image = crop("woman.png", 12)
    write_image(src / "w.png", image)
    before = (src / "w.png").read_bytes()
    code, _, stderr = run(
        capsys, "upscale", src / "w.png", "-o", src, "--suffix", "", "--weights", weights
    )
    assert code == 1 and "is an input (pass --overwrite" in stderr
    assert (src / "w.png").read_bytes() == before
    # Two inputs that map to the same output name: the second is refused, not silently lost.
    other = tmp_path / "other"
    other.mkdir()
    write_image(other / "w.png", image[::-1])
    code, _, stderr = run(
        capsys, "upscale", src / "w.png", other / "w.png", "-o", tmp_path / "out",
        "--weights", weights, "--overwrite",
    )
    assert code == 1 and "also the output of" in stderr
    assert listing(tmp_path / "out") == ["w_out.png"]


def test_sixteen_bit_and_alpha_outputs_keep_what_they_hold(tmp_path, weights, reference, rng, capsys):
    src = tmp_path / "in"
    src.mkdir()
    deep = rng.integers(0, 65536, (10, 12, 3), dtype=np.uint16)
    rgba = rng.integers(0, 256, (10, 12, 4), dtype=np.uint8)
    write_image(src / "deep.png", deep)
    write_image(src / "rgba.png", rgba)
    out = tmp_path / "out"
    code, _, stderr = run(
        capsys, "upscale", src, "-o", out, "--weights", weights, "--ext", "jpg",
        "--alpha-mode", "resize", "--precision", "fp32",
    )
    assert code == 0, stderr
    assert listing(out) == ["deep_out.png", "rgba_out.png"]  # JPEG holds neither
    result = read_image(out / "deep_out.png")
    assert result.dtype == np.uint16
    np.testing.assert_array_equal(result, reference(deep))
    up = Upscaler(weights, precision="fp32", alpha_mode="resize")
    np.testing.assert_array_equal(read_image(out / "rgba_out.png"), up(rgba))
    assert output_path("a/b.jpeg", rgba[..., :3], "o", "x", "webp") == os.path.join("o", "b_x.webp")


def test_bad_weights_and_empty_folder_fail_before_any_work(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    write_image(tmp_path / "in" / "a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "bad.pth").write_bytes(b"garbage")
    code, _, stderr = run(
        capsys, "upscale", tmp_path / "in", "-o", tmp_path / "out", "--weights", tmp_path / "bad.pth"
    )
    assert code == 1 and "bad.pth" in stderr and "Traceback" not in stderr
    assert not (tmp_path / "out").exists()
    (tmp_path / "none").mkdir()
    code, _, stderr = run(
        capsys, "upscale", tmp_path / "none", "-o", tmp_path / "out", "--weights", tmp_path / "bad.pth"
    )
    assert code == 1 and "no image files" in stderr


def test_interpolate_and_convert(tmp_path, capsys):
    a, b = RRDBNet(**SMALL), RRDBNet(**SMALL)
    for var in b.weights:
        var.assign(np.random.default_rng(0).normal(0, 0.1, var.shape).astype("float32"))
    psnr, gan = tmp_path / "psnr.safetensors", tmp_path / "gan.keras"
    save_generator(a, psnr)
    save_generator(b, gan)
    target = tmp_path / "mix.keras"
    code, stdout, stderr = run(
        capsys, "interpolate", psnr, gan, "--alpha", "0.25", "-o", target
    )
    assert code == 0, stderr
    assert "mix.keras" in stdout
    mixed = load_generator(target)
    for w, x, y in zip(mixed.weights, a.weights, b.weights):
        np.testing.assert_allclose(w.numpy(), 0.75 * x.numpy() + 0.25 * y.numpy(), atol=1e-7)
    code, _, stderr = run(
        capsys, "interpolate", psnr, gan, "--alpha", "0.5", "-o", target
    )
    assert code == 1 and "exists (pass --overwrite" in stderr
    code, _, stderr = run(
        capsys, "interpolate", psnr, gan, "--alpha", "1.5", "-o", tmp_path / "x.keras"
    )
    assert code == 1 and "--alpha must be in [0, 1]" in stderr
    code, _, stderr = run(
        capsys, "interpolate", psnr, gan, "--alpha", "0.5", "-o", tmp_path / "x.png"
    )
    assert code == 1 and ".keras" in stderr
    assert not (tmp_path / "x.keras").exists() and not (tmp_path / "x.png").exists()
    code, _, stderr = run(capsys, "convert", target, tmp_path / "mix.safetensors")
    assert code == 0, stderr
    for w, x in zip(load_generator(tmp_path / "mix.safetensors").weights, mixed.weights):
        np.testing.assert_array_equal(w.numpy(), x.numpy())


def test_parser_has_one_subparser_per_command_and_true_defaults(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    assert set(commands) == {"upscale", "evaluate", "interpolate", "convert", "degrade", "video", "models"}
    args = parser.parse_args(["upscale", "x.png", "-o", "out", "--weights", "w.pth"])
    assert (args.tile, args.tile_pad, args.blend, args.suffix, args.ext, args.alpha_mode) == (
        None, DEFAULT_TILE_PAD, DEFAULT_BLEND, "out", "auto", "model"
    )
    for bad in (["--tile", "-3"], ["--outscale", "0"], ["--alpha-mode", "nope"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(["upscale", "x.png", "-o", "out", "--weights", "w.pth", *bad])
        assert exit_info.value.code == 2
    capsys.readouterr()


def test_console_script_end_to_end(tmp_path, weights):
    """The installed `keras-esrgan` entry point, in a fresh process, on a photo-like crop."""
    image = crop("head.png", 20)
    write_image(tmp_path / "head.png", image)
    script = os.path.join(os.path.dirname(sys.executable), "keras-esrgan")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "keras_esrgan.cli"]
    result = subprocess.run(
        command + ["upscale", str(tmp_path / "head.png"), "-o", str(tmp_path / "out"),
                   "--weights", weights, "--tile", "8", "--tile-pad", "2", "--blend", "4"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert result.returncode == 0, result.stderr
    out = read_image(tmp_path / "out" / "head_out.png")
    expected = Upscaler(weights, tile=8, tile_pad=2, blend=4)  # "auto" resolves the same way
    assert expected.tile_plan(20, 20).num_tiles == 4
    expected = expected(image)
    np.testing.assert_array_equal(out, expected)


def test_installed_script_is_run_which_exits_with_mains_code_and_gc_frozen(tmp_path):
    """`keras-esrgan` is `cli.run`: main's exit code, and the collector frozen before the
    interpreter's teardown (the ~1 s final collection of a traced model's objects skipped)."""
    from importlib.metadata import entry_points

    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "keras-esrgan"]
    assert script.value == "keras_esrgan.cli:run"
    probe = (
        "import atexit, gc, sys\n"
        "atexit.register(lambda: print('at exit', gc.isenabled(), gc.get_freeze_count() > 0))\n"
        "from keras_esrgan.cli import run\n"
        "sys.argv = ['keras-esrgan'] + sys.argv[1:]\n"
        "sys.exit(run())\n"
    )
    missing = ["upscale", str(tmp_path / "missing.png"), "-o", str(tmp_path), "--weights", "x.pth"]
    # An error main reports (1) and a usage error argparse exits with inside main (2, no freeze).
    for argv, code in [(missing, 1), (["upscale"], 2)]:
        result = subprocess.run([sys.executable, "-c", probe, *argv], capture_output=True, text=True,
                                timeout=120, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
        assert result.returncode == code, result.stderr
        if code == 1:
            assert result.stdout.strip().splitlines()[-1] == "at exit False True"
            assert "x.pth" in result.stderr


def test_failed_write_leaves_nothing_half_written(tmp_path, weights, monkeypatch, capsys):
    src = tmp_path / "in"
    src.mkdir()
    write_image(src / "a.png", crop("bird.png", 12))
    write_image(src / "b.png", crop("baby.png", 12))
    save = Image.Image.save

    def disk_full_on_b(self, fp, *args, **kwargs):
        if "b_out" in str(fp):
            with open(fp, "wb") as fh:
                fh.write(b"\x89PNG\r\n\x1a\n partial")
            raise OSError(28, "No space left on device")
        return save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", disk_full_on_b)
    out = tmp_path / "out"
    code, _, stderr = run(capsys, "upscale", src, "-o", out, "--weights", weights)
    assert code == 1 and "b.png" in stderr and "No space left on device" in stderr
    assert listing(out) == ["a_out.png"]


def test_evaluate_prints_the_library_table_and_writes_json(tmp_path, weights, rng, capsys):
    """`evaluate` on a small folder: the table and JSON are `keras_esrgan.evaluate`'s numbers."""
    import json

    from keras_esrgan.evaluation import evaluate, format_table

    folder = tmp_path / "mini"
    folder.mkdir()
    for i in range(2):
        smooth = np.repeat(np.repeat(rng.integers(0, 256, (9, 10, 3)), 4, 0), 4, 1)
        write_image(folder / f"{i}.png", smooth.astype(np.uint8))  # 36x40
    code, out, err = run(capsys, "evaluate", f"mini={folder}", "--weights", weights, "--name", "tiny",
                         "--json", tmp_path / "scores.json", "--no-progress")
    assert code == 0, err
    expected = evaluate(load_generator(weights), {"mini": str(folder)}, progress=False)
    assert format_table(expected, "tiny") in out
    saved = json.loads((tmp_path / "scores.json").read_text())
    assert saved[0]["name"] == "mini" and len(saved[0]["model"]["images"]) == 2
    assert saved[0]["model"]["psnr"] == pytest.approx(expected[0].model.psnr, abs=1e-9)
    assert saved[0]["bicubic"]["ssim"] == pytest.approx(expected[0].bicubic.ssim, abs=1e-9)
    # An existing JSON is not replaced; a missing folder is one line, exit code 1.
    code, _, err = run(capsys, "evaluate", folder, "--weights", weights, "--json", tmp_path / "scores.json")
    assert code == 1 and "exists" in err
    code, _, err = run(capsys, "evaluate", tmp_path / "nowhere", "--weights", weights)
    assert code == 1 and "nowhere" in err and "Traceback" not in err


# --- the model zoo: keras-esrgan models, --weights NAME, --strength ----------------------------

def test_models_command_lists_downloads_and_weights_take_names(tmp_path, monkeypatch, capsys):
    from keras_esrgan import interpolate
    from tests.zoo_server import LocalZoo, serve_rrdbnet_pair

    with LocalZoo(monkeypatch, tmp_path / "cache") as server:
        files = serve_rrdbnet_pair(server)
        code, out, _ = run(capsys, "models")
        assert code == 0
        rows = {line.split()[0]: line.split() for line in out.splitlines()[1:] if line.strip()}
        assert rows["realesr-general-x4v3"][:7] == ["realesr-general-x4v3", "SRVGGNetCompact", "x4", "1.2M",
                                                    "4.9MB", "no", "BSD-3-Clause"]
        assert rows["tiny-gan"][5] == "no" and "RealESRGAN_x4plus <-> RealESRNet_x4plus" in out
        assert f"cache: {tmp_path / 'cache'}" in out

        code, out, err = run(capsys, "models", "download", "tiny-gan", "tiny-gn")
        assert code == 1 and f"tiny-gan: {tmp_path / 'cache' / 'tiny-gan.pth'}" in out
        assert "'tiny-gn' is not a registered model name. Did you mean 'tiny-gan'" in err
        code, out, _ = run(capsys, "models", "list")
        assert code == 0 and [line.split()[5] for line in out.splitlines() if line.startswith("tiny-gan")] == ["yes"]

        write_image(tmp_path / "in.png", crop("zoo"))
        code, out, err = run(capsys, "upscale", tmp_path / "in.png", "-o", tmp_path / "out", "--weights", "tiny-gan",
                             "--strength", "0.4", "--precision", "fp32")
        assert code == 0, err
        want = Upscaler(interpolate(files["tiny-psnr"], files["tiny-gan"], 0.4), precision="fp32")(crop("zoo"))
        np.testing.assert_array_equal(read_image(tmp_path / "out" / "in_out.png"), want)
        code, _, err = run(capsys, "upscale", tmp_path / "in.png", "-o", tmp_path / "o2", "--weights", "RealESRGAN_x2plus",
                           "--strength", "0.4")
        assert code == 1 and "has no interpolable pair" in err and not os.path.exists(tmp_path / "o2")
        with pytest.raises(SystemExit):
            build_parser().parse_args(["upscale", "x", "-o", "o", "--weights", "w", "--strength", "2"])

        code, out, err = run(capsys, "convert", "tiny-psnr", tmp_path / "psnr.keras")
        assert code == 0, err
        x = np.random.default_rng(0).random((1, 5, 4, 3), dtype=np.float32)
        np.testing.assert_array_equal(load_generator(tmp_path / "psnr.keras")(x).numpy(), load_generator(files["tiny-psnr"])(x).numpy())
        assert len(server.log) == 2  # every file fetched once
    capsys.readouterr()
def test_recursive_folders_formats_metadata_and_resuming(tmp_path, weights, reference, capsys):
    """--recursive mirrors the tree; --suffix/--ext/--quality/--lossless; EXIF orientation applied
    and ICC/EXIF/PNG text carried (or stripped); existing outputs skipped; the summary line."""
    from PIL import ExifTags, ImageCms, PngImagePlugin

    from keras_esrgan.metadata import read_metadata

    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src = tmp_path / "album"
    (src / "2024" / "june").mkdir(parents=True)
    (src / ".hidden").mkdir()
    upright = crop("baby.png", 12)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored turned: viewers rotate 90 degrees clockwise
    exif[ExifTags.Base.Make] = "TestCam"
    info = PngImagePlugin.PngInfo()
    info.add_text("Title", "a lighthouse")
    Image.fromarray(np.rot90(upright, 1).copy()).save(
        src / "turned.png", exif=exif.tobytes(), icc_profile=srgb, pnginfo=info)
    write_image(src / "2024" / "grey.png", crop("bird.png", 10, "L"))
    write_image(src / "2024" / "june" / "deep.png", (crop("head.png", 8).astype(np.uint16) * 257))
    write_image(src / ".hidden" / "skip.png", upright)
    out = tmp_path / "out"

    code, stdout, stderr = run(capsys, "upscale", src, "-o", out, "--weights", weights, "--precision",
                               "fp32", "--recursive", "--suffix", "x4", "--ext", "webp", "--lossless")
    assert code == 0, stderr
    found = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert found == ["2024/grey_x4.webp", "2024/june/deep_x4.png", "turned_x4.webp"]
    assert "3 of 3 image(s) upscaled" in stdout and "images/s" in stdout and "Mpx/s of input" in stdout
    np.testing.assert_array_equal(read_image(out / "turned_x4.webp"), reference(upright))  # upright
    np.testing.assert_array_equal(read_image(out / "2024" / "grey_x4.webp"),
                                  np.asarray(Image.fromarray(reference(crop("bird.png", 10, "L"))).convert("RGB")))
    assert read_image(out / "2024" / "june" / "deep_x4.png").dtype == np.uint16  # 16-bit: PNG
    meta = read_metadata(out / "turned_x4.webp")
    assert meta.icc_profile == srgb and meta.orientation == 1
    back = Image.open(out / "turned_x4.webp").getexif()
    assert back[ExifTags.Base.Make] == "TestCam"

    # Rerun: every output exists, nothing is redone.
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    code, stdout, _ = run(capsys, "upscale", src, "-o", out, "--weights", weights, "--recursive",
                          "--suffix", "x4", "--ext", "webp")
    assert code == 0 and "0 of 3 image(s) upscaled" in stdout and "3 skipped" in stdout
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}

    # PNG keeps the text; JPEG with --quality; --strip-metadata drops everything.
    code, _, stderr = run(capsys, "upscale", src / "turned.png", "-o", out, "--weights", weights,
                          "--ext", "same", "--precision", "fp32")
    assert code == 0, stderr
    kept = read_metadata(out / "turned_out.png")
    assert dict(kept.text) == {"Title": "a lighthouse"} and kept.icc_profile == srgb
    np.testing.assert_array_equal(read_image(out / "turned_out.png"), reference(upright))
    for quality in (30, 95):
        run(capsys, "upscale", src / "turned.png", "-o", out / f"q{quality}", "--weights", weights,
            "--ext", "jpg", "--quality", quality, "--strip-metadata")
    small, big = (out / "q30" / "turned_out.jpg", out / "q95" / "turned_out.jpg")
    assert small.stat().st_size < big.stat().st_size
    bare = read_metadata(big)
    assert bare.icc_profile is None and bare.exif is None
    assert read_image(big).shape == (48, 48, 3)  # still upright
    with pytest.raises(SystemExit):
        build_parser().parse_args(["upscale", "x", "-o", "y", "--weights", "w", "--quality", "101"])
    capsys.readouterr()


def test_overlapped_run_writes_what_the_one_by_one_loop_writes(tmp_path, weights, capsys):
    """--workers 2 (decode/encode threads) against --workers 0 (one after the other): the same
    files, byte for byte, and errors still reported per image."""
    src = tmp_path / "in"
    src.mkdir()
    for i, name in enumerate(("baby.png", "bird.png", "head.png", "woman.png", "butterfly.png")):
        write_image(src / f"{i}.png", crop(name, 8 + 2 * i))
    (src / "2_bad.png").write_bytes(b"not a png")
    outs = {}
    for workers in (0, 2):
        out = tmp_path / f"w{workers}"
        code, stdout, stderr = run(capsys, "upscale", src, "-o", out, "--weights", weights,
                                   "--precision", "fp32", "--workers", workers)
        assert code == 1 and "5 of 6 image(s) upscaled" in stdout and "1 failed" in stdout
        assert "2_bad.png: not an image file" in stderr
        outs[workers] = {n: (out / n).read_bytes() for n in listing(out)}
    assert outs[0] == outs[2] and len(outs[0]) == 5
