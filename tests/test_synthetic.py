"""The procedural images of the offline recipe: deterministic, the right size, image-like."""

import os

import numpy as np
import pytest

from keras_esrgan.data import image_folder, training_pipeline
from keras_esrgan.data.synthetic import synthetic_folders, synthetic_image, write_synthetic_folder
from keras_esrgan.images import read_image


def test_same_seed_same_image_other_seed_other_image():
    a = synthetic_image(96, seed=7)
    np.testing.assert_array_equal(a, synthetic_image(96, seed=7))
    np.testing.assert_array_equal(synthetic_image(64, seed=(3, 1)), synthetic_image(64, seed=(3, 1)))
    b = synthetic_image(96, seed=8)
    assert np.mean(a != b) > 0.5  # not a shifted copy: most pixels differ


@pytest.mark.parametrize("size, shape", [(48, (48, 48, 3)), ((40, 72), (40, 72, 3)), (8, (8, 8, 3))])
def test_sizes_and_dtype(size, shape):
    image = synthetic_image(size, seed=0)
    assert image.shape == shape and image.dtype == np.uint8


@pytest.mark.parametrize("bad", [7, (0, 10), "big", (10,)])
def test_bad_sizes_are_refused(bad):
    with pytest.raises(ValueError, match="size"):
        synthetic_image(bad)


def test_images_have_structure_at_several_scales():
    """What super-resolution needs to learn from: not flat, edges, fine detail, colour."""
    for seed in range(8):
        image = synthetic_image(128, seed=seed).astype(np.float64)
        grey = image.mean(axis=2)
        assert image.std() > 25 and np.ptp(image, axis=(0, 1)).max() > 200, seed  # contrast
        gx = np.abs(np.diff(grey, axis=1))
        # Sharp edges somewhere, smooth regions elsewhere (not noise everywhere).
        assert np.mean(gx > 30) > 0.003 and np.mean(gx < 3) > 0.3, seed
        # Fine detail: the image is not reproduced by its own 4x bicubic-ish downsampling.
        small = grey.reshape(32, 4, 32, 4).mean(axis=(1, 3))
        assert np.abs(np.repeat(np.repeat(small, 4, 0), 4, 1) - grey).mean() > 1.5, seed
        # Colour, not grey: the channels differ.
        assert np.abs(image[..., 0] - image[..., 1]).mean() > 5, seed


def test_folder_is_written_once_and_read_by_image_folder(tmp_path):
    folder = tmp_path / "train"
    assert write_synthetic_folder(folder, count=3, size=64, seed=5) == str(folder)
    names = sorted(os.listdir(folder))
    assert names == ["0000.png", "0001.png", "0002.png", "synthetic.json"]
    np.testing.assert_array_equal(read_image(folder / "0001.png"), synthetic_image(64, seed=(5, 1)))
    mtimes = {n: os.stat(folder / n).st_mtime_ns for n in names}
    write_synthetic_folder(folder, count=3, size=64, seed=5)  # same arguments: nothing rewritten
    assert {n: os.stat(folder / n).st_mtime_ns for n in names} == mtimes
    write_synthetic_folder(folder, count=2, size=64, seed=5)  # other arguments: redrawn
    assert sorted(os.listdir(folder)) == ["0000.png", "0001.png", "synthetic.json"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]  # no temporary left

    pairs = list(image_folder(folder, scale=4))
    assert [(lr.shape, hr.shape) for lr, hr in pairs] == [((16, 16, 3), (64, 64, 3))] * 2
    lr, hr = next(iter(training_pipeline(image_folder(folder), batch_size=2, patch_size=32, seed=0)))
    assert lr.shape == (2, 8, 8, 3) and hr.shape == (2, 32, 32, 3)


def test_train_and_val_share_no_image(tmp_path):
    train, val = synthetic_folders(tmp_path, num_train=4, num_val=2, train_size=48, val_size=48, seed=1)
    train_images = [read_image(os.path.join(train, f"{i:04d}.png")) for i in range(4)]
    for i in range(2):
        v = read_image(os.path.join(val, f"{i:04d}.png"))
        assert all(not np.array_equal(v, t) for t in train_images)
    # Another root seed gives other images again.
    other, _ = synthetic_folders(tmp_path / "b", num_train=1, num_val=1, train_size=48, val_size=48, seed=2)
    assert not np.array_equal(read_image(os.path.join(other, "0000.png")), train_images[0])


def test_bad_counts_are_refused(tmp_path):
    with pytest.raises(ValueError, match="count"):
        write_synthetic_folder(tmp_path / "x", count=0, size=32)
    with pytest.raises(ValueError, match="seed"):
        write_synthetic_folder(tmp_path / "x", count=1, size=32, seed=-1)
