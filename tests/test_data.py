"""Data sources and pipelines: image folders, DIV2K through tfds, aligned crops, determinism."""

import importlib
import logging

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_esrgan.data import (
    DatasetNotFoundError,
    bicubic_downsample,
    div2k,
    extract_subimages,
    image_folder,
    list_image_pairs,
    random_crop,
    random_flip_rotate,
    training_pipeline,
    validation_pipeline,
)
from keras_esrgan.images import read_image, write_image
from tests.reference.matlab_imresize import imresize as matlab_imresize
from tests.standins import photo_crop, write_images

LOGGER = "keras_esrgan.data"
div2k_module = importlib.import_module("keras_esrgan.data.div2k")  # the package's `div2k` is the function


def _smooth(rng, h, w, channels=3, dtype=np.uint8):
    """A random image with some structure (so that crops and flips are distinguishable)."""
    small = rng.random((h // 8 + 2, w // 8 + 2, channels))
    big = np.kron(small, np.ones((8, 8, 1)))[:h, :w] * 0.7 + rng.random((h, w, channels)) * 0.3
    return np.round(big * np.iinfo(dtype).max).astype(dtype)


def _expected_rgb8(image):
    """The conversion image_folder promises, written out independently for the test."""
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = image[..., :3]
    if image.dtype == np.uint16:
        image = np.floor(image / 257.0 + 0.5).astype(np.uint8)
    return image


def _pairs(ds):
    return [(lr.numpy(), hr.numpy()) for lr, hr in ds]


# ---------------------------------------------------------------- image folders


def test_image_folder_makes_matlab_lr_from_mod_cropped_hr(tmp_path):
    folder = write_images(tmp_path / "hr", [(64, 64), (50, 61), (47, 36)], seed=5)
    pairs = _pairs(image_folder(folder, scale=4))
    paths = sorted(folder.glob("*.png"))
    assert len(pairs) == len(paths) == 3
    for (lr, hr), path in zip(pairs, paths):
        original = read_image(path)
        h, w = original.shape[0] // 4 * 4, original.shape[1] // 4 * 4
        np.testing.assert_array_equal(hr, original[:h, :w])
        np.testing.assert_array_equal(lr, matlab_imresize(original[:h, :w], 0.25))


def test_image_kinds_and_bad_files(tmp_path, rng, caplog):
    """8/16-bit, grey, grey+alpha, RGBA, JPEG, WebP decode consistently; bad files are named."""
    originals = {
        "a_rgb8.png": _smooth(rng, 40, 48),
        "b_rgb16.png": _smooth(rng, 40, 48, dtype=np.uint16),
        "c_grey8.png": _smooth(rng, 41, 50, channels=1)[..., 0],  # not a multiple of 4: mod-crop
        "d_grey16.png": _smooth(rng, 40, 48, channels=1, dtype=np.uint16)[..., 0],
        "e_rgba8.png": _smooth(rng, 40, 48, channels=4),
        "f_rgba16.png": _smooth(rng, 40, 48, channels=4, dtype=np.uint16),
        "g_photo.jpg": _smooth(rng, 40, 48),
        "h_photo.webp": _smooth(rng, 40, 48),
    }
    for name, array in originals.items():
        write_image(tmp_path / name, array)
    grey_alpha = _smooth(rng, 40, 48, channels=2)
    Image.fromarray(grey_alpha, "LA").save(tmp_path / "i_greyalpha.png")
    originals["i_greyalpha.png"] = grey_alpha[..., [0, 0, 0]]
    noise = bytes(rng.integers(0, 256, 300, dtype=np.uint8))
    (tmp_path / "x_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + noise)  # PNG signature, then garbage
    good = (tmp_path / "a_rgb8.png").read_bytes()
    (tmp_path / "y_truncated.png").write_bytes(good[: len(good) // 2])
    (tmp_path / "z_empty.webp").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not an image")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        pairs = _pairs(image_folder(tmp_path, scale=4))
    assert len(pairs) == len(originals)
    for (lr, hr), name in zip(pairs, sorted(originals)):
        assert hr.dtype == lr.dtype == np.uint8 and hr.shape[2] == 3, name
        expected = _expected_rgb8(read_image(tmp_path / name))  # lossy JPEG/WebP: as decoded
        if name.endswith(".png"):
            np.testing.assert_array_equal(expected, _expected_rgb8(originals[name]))
        expected = expected[: expected.shape[0] // 4 * 4, : expected.shape[1] // 4 * 4]
        np.testing.assert_array_equal(hr, expected, err_msg=name)
        np.testing.assert_array_equal(lr, matlab_imresize(expected, 0.25), err_msg=name)
    log = caplog.text
    for bad in ("x_corrupt.png", "y_truncated.png", "z_empty.webp"):
        assert bad in log, f"{bad} not reported: {log}"
    assert "notes.txt" not in log and log.count("skipped") == 3

    # uint16 keeps 16-bit files exact and scales 8-bit ones by 257.
    wide = dict(zip(sorted(originals), _pairs(image_folder(tmp_path, dtype="uint16"))))
    np.testing.assert_array_equal(wide["b_rgb16.png"][1], originals["b_rgb16.png"])
    np.testing.assert_array_equal(wide["a_rgb8.png"][1], originals["a_rgb8.png"].astype(np.uint16) * 257)
    np.testing.assert_array_equal(wide["f_rgba16.png"][1], originals["f_rgba16.png"][..., :3])
    np.testing.assert_array_equal(wide["b_rgb16.png"][0], matlab_imresize(originals["b_rgb16.png"], 0.25))


def test_paired_folders_match_basicsr_names(tmp_path, rng, caplog):
    hr_dir, lr_dir = tmp_path / "hr", tmp_path / "lr"
    hr_dir.mkdir(), lr_dir.mkdir()
    hrs = {name: _smooth(rng, 32, 40) for name in ("0001", "0002", "0003", "0004", "0005")}
    for name, hr in hrs.items():
        write_image(hr_dir / f"{name}.png", hr)
    lrs = {name: _smooth(rng, 8, 10) for name in hrs}
    write_image(lr_dir / "0001x4.png", lrs["0001"])  # DIV2K naming
    write_image(lr_dir / "0002.png", lrs["0002"])  # same name
    Image.fromarray(lrs["0003"]).save(lr_dir / "0003x4.webp", lossless=True)  # other format
    write_image(lr_dir / "0004x4.png", _smooth(rng, 7, 10))  # wrong size
    write_image(lr_dir / "0099x4.png", _smooth(rng, 8, 10))  # no HR
    write_image(hr_dir / "0006.png", np.pad(_smooth(rng, 32, 40), ((0, 3), (0, 2), (0, 0))))  # 35x42
    write_image(lr_dir / "0006x4.png", lrs.setdefault("0006", _smooth(rng, 8, 10)))
    hrs["0006"] = read_image(hr_dir / "0006.png")

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        listed = list_image_pairs(hr_dir, lr_dir, scale=4)
        pairs = _pairs(image_folder(hr_dir, lr_dir, scale=4))
    assert [p[0].split("/")[-1] for p in listed] == ["0001.png", "0002.png", "0003.png", "0004.png", "0006.png"]
    assert "0005.png" in caplog.text and "0099x4.png" in caplog.text
    assert "0004.png" in caplog.text and "not 4 times" in caplog.text
    assert len(pairs) == 4
    for (lr, hr), name in zip(pairs, ["0001", "0002", "0003", "0006"]):
        np.testing.assert_array_equal(lr, lrs[name])
        np.testing.assert_array_equal(hr, hrs[name][:32, :40])  # 0006: cropped to 4 x LR


def test_folder_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        image_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="no image files"):
        image_folder(tmp_path)
    write_image(tmp_path / "a.png", np.zeros((8, 8, 3), np.uint8))
    write_image(tmp_path / "a.jpg", np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="two images named 'a'"):
        image_folder(tmp_path)
    with pytest.raises(ValueError, match="dtype"):
        image_folder(tmp_path, dtype="float32")


# ---------------------------------------------------------------- crops and augmentation


def test_crop_on_the_scale_grid_matches_downscaled_crop(rng):
    """bicubic_downsample(HR crop) == LR crop, except 2 LR pixels at each crop border.

    At x4 the antialiased kernel spans 16 HR pixels: LR pixel i reads HR pixels 4i-6 .. 4i+9,
    so the crop's own mirrored border reaches the first and last 2 LR rows/columns only.
    """
    hr = photo_crop("butterfly", 0, 0, 256, 256)
    lr = np.round(bicubic_downsample(hr, 4).numpy() * 255)
    border_differs = 0
    for i in range(6):
        lr_patch, hr_patch = random_crop(lr, hr, 96, 4, seed=tf.constant([i, 7]))
        lr_patch, hr_patch = lr_patch.numpy(), hr_patch.numpy()
        again = np.round(bicubic_downsample(hr_patch, 4).numpy() * 255)
        np.testing.assert_array_equal(again[2:-2, 2:-2], lr_patch[2:-2, 2:-2])
        border_differs += int(np.any(again != lr_patch))
        # The patch is the pair's content at some grid position.
        top, left = np.argwhere(np.all(lr == lr_patch[0, 0], axis=-1))[0]
        np.testing.assert_array_equal(hr_patch, hr[top * 4 : top * 4 + 96, left * 4 : left * 4 + 96])
    assert border_differs > 0  # the exclusion above is needed, not decoration


def test_flips_and_rotations_identical_on_lr_and_hr(rng):
    """With HR = LR upsampled by pixel repetition, any aligned transform keeps HR == repeat(LR)."""
    lr = _smooth(rng, 16, 16)
    hr = lr.repeat(4, axis=0).repeat(4, axis=1)
    seen = set()
    for i in range(64):
        lr_t, hr_t = random_flip_rotate(lr, hr, seed=tf.constant([3, i]))
        lr_t, hr_t = lr_t.numpy(), hr_t.numpy()
        np.testing.assert_array_equal(hr_t, lr_t.repeat(4, axis=0).repeat(4, axis=1))
        seen.add(lr_t.tobytes())
    assert len(seen) == 8  # all symmetries of the square occur
    lr_t, _ = random_flip_rotate(lr, hr, seed=tf.constant([3, 0]), hflip=False, rotation=False)
    np.testing.assert_array_equal(lr_t, lr)


def _repeat_folder(tmp_path, rng, count=3, size=(40, 56)):
    """Paired folder whose HR is the LR repeated 4x: every aligned patch keeps that relation."""
    for d in ("hr", "lr"):
        (tmp_path / d).mkdir()
    for i in range(count):
        lr = _smooth(rng, *size)
        write_image(tmp_path / "lr" / f"{i:04d}x4.png", lr)
        write_image(tmp_path / "hr" / f"{i:04d}.png", lr.repeat(4, axis=0).repeat(4, axis=1))
    return image_folder(tmp_path / "hr", tmp_path / "lr", scale=4)


def test_training_pipeline_batches_are_aligned_patches(tmp_path, rng):
    ds = training_pipeline(_repeat_folder(tmp_path, rng), batch_size=5, patch_size=32, scale=4)
    assert ds.element_spec[0].shape == (5, 8, 8, 3) and ds.element_spec[1].shape == (5, 32, 32, 3)
    for lr, hr in ds.take(4):  # 20 patches > 3 images: repeats and reshuffles
        lr, hr = lr.numpy(), hr.numpy()
        assert lr.dtype == np.float32 and 0 <= lr.min() and hr.max() <= 1
        np.testing.assert_array_equal(hr, lr.repeat(4, axis=1).repeat(4, axis=2))


def test_deterministic_with_seed(tmp_path, rng):
    source = _repeat_folder(tmp_path, rng, count=4)

    def batches(seed, deterministic=True):
        ds = training_pipeline(source, batch_size=3, patch_size=16, deterministic=deterministic, seed=seed)
        return [lr.numpy() for lr, _ in ds.take(5)]

    first, second, other = batches(3), batches(3), batches(4)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    assert len(batches(None, deterministic=False)) == 5

    # Uncached, with the file order shuffled before decoding: reproducible too. (Built anew for
    # each run, as a rerun of a script would: a second iterator over the same seeded shuffle
    # continues its sequence of epoch orders, as tf.data's reshuffle_each_iteration does.)
    def uncached():
        shuffled = image_folder(tmp_path / "hr", tmp_path / "lr", shuffle_files=True, seed=2)
        ds = training_pipeline(shuffled, batch_size=3, patch_size=16, cache=False, deterministic=True, seed=5)
        return [lr.numpy() for lr, _ in ds.take(4)]

    uncached = [uncached(), uncached()]
    for a, b in zip(*uncached):
        np.testing.assert_array_equal(a, b)


def test_small_images_skipped_and_bad_arguments(tmp_path, rng, capfd):
    write_image(tmp_path / "big.png", _smooth(rng, 64, 64))
    write_image(tmp_path / "tiny.png", _smooth(rng, 16, 20))
    lr, hr = next(iter(training_pipeline(image_folder(tmp_path), batch_size=2, patch_size=48)))
    assert hr.shape == (2, 48, 48, 3)
    assert "smaller than the 48x48 patch" in capfd.readouterr().err
    source = image_folder(tmp_path)
    with pytest.raises(ValueError, match="multiple of scale"):
        training_pipeline(source, patch_size=30, scale=4)
    with pytest.raises(ValueError, match=r"\(lr, hr\)"):
        training_pipeline(source.map(lambda lr, hr: {"lr": lr, "hr": hr}))
    with pytest.raises(tf.errors.InvalidArgumentError, match="not scale=2 times"):
        next(iter(training_pipeline(source, batch_size=1, patch_size=8, scale=2)))


def test_validation_pipeline(tmp_path):
    source = image_folder(write_images(tmp_path / "val", [(160, 160), (96, 112), (40, 36)], seed=6))
    full = list(validation_pipeline(source))
    assert len(full) == 3
    for (lr, hr), (lr8, hr8) in zip(full, _pairs(source)):
        assert lr.shape == (1,) + lr8.shape and hr.dtype == tf.float32
        np.testing.assert_array_equal(hr.numpy()[0] * 255, hr8.astype(np.float32))
    cropped = list(validation_pipeline(source, center_crop=64))
    lr, hr = cropped[0]
    _, hr8 = _pairs(source)[0]  # 160 x 160: the centre 64 x 64 starts at 48
    np.testing.assert_array_equal(np.round(hr.numpy()[0] * 255), hr8[48:112, 48:112])
    assert lr.shape == (1, 16, 16, 3)
    assert cropped[2][1].shape == (1, 40, 36, 3)  # smaller than the crop: kept whole


def test_extract_subimages_pairs_by_name(tmp_path, rng):
    (tmp_path / "hr").mkdir(), (tmp_path / "lr").mkdir()
    lr = _smooth(rng, 25, 17)
    write_image(tmp_path / "lr" / "0001x4.png", lr)
    write_image(tmp_path / "hr" / "0001.png", lr.repeat(4, axis=0).repeat(4, axis=1))
    # 100 x 68 HR, 48 px crops, step 24: rows at 0, 24, 48 and the flush 52; columns 0 and 20.
    assert extract_subimages(tmp_path / "hr", tmp_path / "hr_sub", 48, 24, num_workers=1) == 8
    assert extract_subimages(tmp_path / "lr", tmp_path / "lr_sub", 12, 6, num_workers=1) == 8
    pairs = _pairs(image_folder(tmp_path / "hr_sub", tmp_path / "lr_sub"))
    assert len(pairs) == 8
    for sub_lr, sub_hr in pairs:
        np.testing.assert_array_equal(sub_hr, sub_lr.repeat(4, axis=0).repeat(4, axis=1))
    np.testing.assert_array_equal(read_image(tmp_path / "lr_sub" / "0001_s008.png"), lr[13:25, 5:17])


# ---------------------------------------------------------------- DIV2K through tfds


def _sparse_zips(builder_urls, directory, skip=(), wrong_size=()):
    """Files with the names and sizes tfds expects, without their contents (sparse)."""
    import tensorflow_datasets as tfds

    infos = tfds.builder_cls("div2k").url_infos
    directory.mkdir(exist_ok=True)
    for url in builder_urls:
        info = infos[url]
        if info.filename in skip:
            continue
        with open(directory / info.filename, "wb") as fh:
            fh.truncate(int(info.size) - (1 if info.filename in wrong_size else 0))


def _div2k_urls(config="bicubic_x4"):
    import tensorflow_datasets as tfds

    return sorted(set(tfds.builder(f"div2k/{config}").builder_config.download_urls.values()))


def test_div2k_pipeline_on_mock_data(tmp_path, rng):
    """The real div2k() -> training_pipeline path on mocked tfds data whose LR is MATLAB's x4."""
    import tensorflow_datasets as tfds

    hrs = [_smooth(rng, 64, 96), _smooth(rng, 80, 64), _smooth(rng, 66, 70)]  # last: mod-crop
    lrs = [matlab_imresize(hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4], 0.25) for hr in hrs]

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False):
        def examples():
            for lr, hr in zip(lrs, hrs):
                yield {"lr": lr, "hr": hr}

        spec = tf.TensorSpec((None, None, 3), tf.uint8)
        return tf.data.Dataset.from_generator(examples, output_signature={"lr": spec, "hr": spec})

    manual = tmp_path / "manual"
    _sparse_zips(_div2k_urls(), manual)  # what the presence check looks at
    with tfds.testing.mock_data(policy=tfds.testing.MockPolicy.USE_CODE, as_dataset_fn=as_dataset):
        source = div2k("train", scale=4, data_dir=tmp_path / "tfds", manual_dir=manual, download=False)
        pairs = _pairs(source)
        batches = list(training_pipeline(source, batch_size=4, patch_size=32, scale=4, seed=1).take(3))
    assert len(pairs) == 3
    for (lr, hr), hr_full, lr_full in zip(pairs, hrs, lrs):
        assert hr.shape[:2] == (lr.shape[0] * 4, lr.shape[1] * 4)
        np.testing.assert_array_equal(hr, hr_full[: hr.shape[0], : hr.shape[1]])
        np.testing.assert_array_equal(lr, lr_full)
    # Each patch, flipped and/or rotated, still downscales exactly to its LR patch (inside the
    # 2-pixel crop border). MATLAB rounds after the row pass, so for a transposed patch the
    # match is with the rows and columns resized in the other order.
    for lr, hr in batches:
        lr8 = np.round(lr.numpy() * 255).astype(np.uint8)
        for lr_patch, hr_patch in zip(lr8, np.round(hr.numpy() * 255).astype(np.uint8)):
            rows_first = matlab_imresize(hr_patch, 0.25)
            columns_first = matlab_imresize(hr_patch.transpose(1, 0, 2), 0.25).transpose(1, 0, 2)
            inner = (slice(2, -2), slice(2, -2))
            assert np.array_equal(rows_first[inner], lr_patch[inner]) or np.array_equal(
                columns_first[inner], lr_patch[inner]
            )


def test_div2k_fails_fast_offline(tmp_path, monkeypatch):
    """Nothing prepared, nothing downloaded: an error naming the files, without any download."""
    import tensorflow_datasets as tfds

    def no_download(*args, **kwargs):
        raise AssertionError("download_and_prepare must not run when files are missing offline")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)
    monkeypatch.setattr(div2k_module, "_reachable", lambda url: (False, "ConnectionError: no network"))
    manual = tmp_path / "manual"
    _sparse_zips(_div2k_urls(), manual, skip=("DIV2K_train_HR.zip",), wrong_size=("DIV2K_valid_HR.zip",))
    with pytest.raises(DatasetNotFoundError) as info:
        div2k("train", data_dir=tmp_path / "tfds", manual_dir=manual)
    message = str(info.value)
    assert "data.vision.ee.ethz.ch cannot be reached (ConnectionError: no network)" in message
    assert "DIV2K_train_HR.zip (3.53 GB)" in message
    assert "DIV2K_valid_HR.zip" in message and "incomplete download?" in message
    assert "DIV2K_train_LR_bicubic_X4.zip" not in message  # present with the right size
    assert str(manual) in message and "image_folder(" in message

    with pytest.raises(DatasetNotFoundError, match="download=False"):
        div2k("validation", scale=2, data_dir=tmp_path / "tfds", download=False)
    with pytest.raises(ValueError, match="no DIV2K 'bicubic' x5"):
        div2k("train", scale=5)
    with pytest.raises(ValueError, match="split"):
        div2k("test")


def test_server_check_is_a_single_quick_request():
    ok, why = div2k_module._reachable("http://div2k.invalid/DIV2K_train_HR.zip", timeout=2)
    assert not ok and why
