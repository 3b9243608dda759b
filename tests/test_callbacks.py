"""Validation, TensorBoard scalar and image-grid callbacks against direct computations."""

import glob
import io
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_esrgan import PSNRTrainer, RRDBNet, metrics
from keras_esrgan.callbacks import (
    ImageGridCallback,
    ScalarSummaries,
    ValidationCallback,
    image_grid,
)
from keras_esrgan.data import image_folder, validation_pipeline
from keras_esrgan.data.degrade import imresize, matlab_bicubic_resize
from keras_esrgan.data.synthetic import write_synthetic_folder
from keras_esrgan.pixels import quantize
from keras_esrgan.validation import validation_images
from tests.conftest import TINY


@pytest.fixture
def val_dir(tmp_path):
    return write_synthetic_folder(tmp_path / "val", count=2, size=48, seed=3)


def trainer_and_data(rng):
    trainer = PSNRTrainer(RRDBNet(**TINY), ema_decay=0.5)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    hr = rng.random((8, 32, 32, 3), dtype=np.float32)
    lr = hr.reshape(8, 8, 4, 8, 4, 3).mean(axis=(2, 4))
    return trainer, lr, hr


def events(log_dir):
    """{tag: [(step, value ndarray, plugin name of the tag)]} from a TensorBoard folder."""
    out, plugins = {}, {}
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name:  # written with the tag's first value
                    plugins[value.tag] = value.metadata.plugin_data.plugin_name
                out.setdefault(value.tag, []).append((event.step, tf.make_ndarray(value.tensor)))
    return {tag: [(step, v, plugins.get(tag)) for step, v in values] for tag, values in out.items()}


def direct_scores(generator, pairs):
    """PSNR-Y / SSIM-Y, crop 4, computed here from scratch (BasicSR's protocol)."""
    psnrs, ssims = [], []
    for lr, hr in pairs:
        sr = generator(tf.constant(lr, tf.float32)[None] / 255.0).numpy()[0]
        sr = np.round(np.clip(sr, 0, 1) * 255).astype(np.uint8)
        psnrs.append(metrics.psnr(sr, hr, crop_border=4, test_y_channel=True))
        ssims.append(metrics.ssim(sr, hr, crop_border=4, test_y_channel=True))
    return float(np.mean(psnrs)), float(np.mean(ssims))


def test_validation_numbers_equal_a_direct_computation(tmp_path, val_dir, rng):
    trainer, lr, hr = trainer_and_data(rng)
    pairs = [(a.numpy(), b.numpy()) for a, b in image_folder(val_dir)]  # uint8, MATLAB bicubic LR
    direct = {}

    def at_step_2(batch, logs=None):
        if int(trainer.iterations.numpy()) == 2:  # before the callback runs, same weights
            direct[2] = direct_scores(trainer.ema_generator, pairs)

    val = ValidationCallback(
        validation_pipeline(image_folder(val_dir)), every_n_steps=2, log_dir=tmp_path / "tb", verbose=0
    )
    history = trainer.fit(
        lr,
        hr,
        batch_size=4,
        epochs=2,
        shuffle=False,
        verbose=0,
        callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=at_step_2), val],
    )
    direct[4] = direct_scores(trainer.ema_generator, pairs)  # nothing changed after step 4

    assert [r["step"] for r in val.history] == [2, 4]
    for record in val.history:
        np.testing.assert_allclose([record["psnr"], record["ssim"]], direct[record["step"]], rtol=1e-12)
    # Into History (so the progress bar and later callbacks) as val_psnr / val_ssim.
    assert history.history["val_psnr"] == [r["psnr"] for r in val.history]
    assert history.history["val_ssim"] == [r["ssim"] for r in val.history]
    assert val.history[0]["psnr"] != val.history[1]["psnr"]  # it measured the moving weights

    # The bicubic baseline: MATLAB imresize x4 of the uint8 LR images, same protocol.
    bicubic = [np.asarray(imresize(lr_, 4.0)).astype(np.uint8) for lr_, _ in pairs]
    want = np.mean([metrics.psnr(b, h, 4, True) for b, (_, h) in zip(bicubic, pairs)])
    np.testing.assert_allclose(val.bicubic["psnr"], want, rtol=1e-12)
    np.testing.assert_array_equal(matlab_bicubic_resize(pairs[0][0], 4), bicubic[0])

    logged = events(tmp_path / "tb")
    assert [s for s, _, _ in logged["psnr_y"]] == [2, 4]
    np.testing.assert_allclose(
        [float(v) for _, v, _ in logged["psnr_y"]], [r["psnr"] for r in val.history], rtol=1e-6
    )
    assert [s for s, _, _ in logged["ssim_y"]] == [2, 4]
    assert logged["bicubic_psnr_y"][0][1] == pytest.approx(val.bicubic["psnr"], rel=1e-6)
    assert {plugin for values in logged.values() for _, _, plugin in values} == {"scalars"}


def test_validation_crop_border_and_rgb(tmp_path, val_dir, rng):
    trainer, lr, hr = trainer_and_data(rng)
    pairs = [(a.numpy(), b.numpy()) for a, b in image_folder(val_dir)]
    val = ValidationCallback(pairs, every_n_steps=1, crop_border=0, test_y_channel=False, verbose=0)
    trainer.fit(lr[:4], hr[:4], batch_size=4, epochs=1, verbose=0, callbacks=[val])
    sr = [quantize(trainer.ema_generator(a[None] / 255.0)[0]) for a, _ in pairs]
    want = np.mean([metrics.psnr(s, h) for s, (_, h) in zip(sr, pairs)])
    np.testing.assert_allclose(val.history[-1]["psnr"], want, rtol=1e-12)


def test_image_grid_is_lr_nearest_sr_hr_and_logged_as_png(tmp_path, val_dir, rng):
    trainer, lr, hr = trainer_and_data(rng)
    pairs = validation_images(validation_pipeline(image_folder(val_dir)))
    grid_cb = ImageGridCallback(pairs, tmp_path / "tb", every_n_steps=1, crop=32)
    trainer.fit(lr[:4], hr[:4], batch_size=4, epochs=1, verbose=0, callbacks=[grid_cb])
    grids = grid_cb.grids(trainer.ema_generator)
    assert grids.shape == (2, 32, 3 * 32 + 4, 3) and grids.dtype == np.uint8
    for grid, (lr_u8, hr_u8) in zip(grids, pairs):
        lr_crop, hr_crop = lr_u8[2:10, 2:10], hr_u8[8:40, 8:40]  # central 8 / 32 of 12 / 48
        np.testing.assert_array_equal(grid[:, :32], np.kron(lr_crop, np.ones((4, 4, 1), np.uint8)))
        np.testing.assert_array_equal(grid[:, 32:34], 255)
        sr = quantize(trainer.ema_generator(lr_crop[None] / 255.0)[0])
        np.testing.assert_array_equal(grid[:, 34:66], sr)
        np.testing.assert_array_equal(grid[:, 68:], hr_crop)

    ((step, tensor, plugin),) = events(tmp_path / "tb")["lr_sr_hr"]
    assert step == 1 and plugin == "images"
    width, height, *pngs = tensor
    assert (int(width), int(height)) == (3 * 32 + 4, 32)
    decoded = [np.asarray(Image.open(io.BytesIO(png))) for png in pngs]
    np.testing.assert_array_equal(np.stack(decoded), grids)


def test_image_grid_helper_and_crop_checks(val_dir):
    lr = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    hr = np.zeros((4, 6, 3), np.uint8)
    grid = image_grid(lr, hr + 1, hr + 2)
    assert grid.shape == (4, 6 * 3 + 4, 3)
    np.testing.assert_array_equal(grid[:2, :2], np.broadcast_to(lr[0, 0], (2, 2, 3)))
    with pytest.raises(ValueError, match="multiple of the scale"):
        ImageGridCallback(validation_pipeline(image_folder(val_dir)), "x", every_n_steps=1, crop=30)


def test_scalars_are_written_at_the_global_step(tmp_path, rng):
    """A resumed run (iterations restored to 10) continues its curves at 11, 12, ..."""
    trainer, lr, hr = trainer_and_data(rng)
    trainer.iterations.assign(10)
    logs = []
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs=None, out=logs: out.append(dict(logs))
    )
    trainer.fit(
        lr,
        hr,
        batch_size=4,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=[record, ScalarSummaries(tmp_path / "tb", every_n_steps=2)],
    )
    logged = events(tmp_path / "tb")
    assert {"l_pix", "psnr", "learning_rate"} <= set(logged)
    assert [s for s, _, _ in logged["l_pix"]] == [12, 14]
    np.testing.assert_allclose(
        [float(v) for _, v, _ in logged["l_pix"]], [logs[1]["l_pix"], logs[3]["l_pix"]], rtol=1e-6
    )
    assert all(float(v) == pytest.approx(1e-3) for _, v, _ in logged["learning_rate"])


def test_helpers():
    np.testing.assert_array_equal(
        quantize([-0.2, 0.0, 0.5 / 255, 1.5 / 255, 1.0, 1.7]), [0, 0, 0, 2, 255, 255]
    )
    lr8 = np.random.default_rng(0).integers(0, 256, (4, 4, 3), dtype=np.uint8)
    ((lr, hr),) = validation_images([(lr8[None] / 255.0, np.zeros((1, 16, 16, 3)))])
    np.testing.assert_array_equal(lr, lr8)  # float from uint8 files rounds back exactly
    with pytest.raises(ValueError, match="empty"):
        validation_images([])
    with pytest.raises(ValueError, match="every_n_steps"):
        ScalarSummaries("x", every_n_steps=0)


def test_training_batch_grid_shows_degraded_lr_beside_hr(tmp_path, rng):
    """Each grid is the next batch of its own stream: LR (nearest) | SR of the EMA generator | HR,
    the LR and HR columns exactly those of the batch (a fresh copy of the same seeded pipeline)."""
    from keras_esrgan.callbacks import TrainingBatchGrid
    from keras_esrgan.data import realworld_pipeline
    from tests.standins import write_images

    folder = write_images(tmp_path / "hr", [(40, 48), (48, 40)], seed=6)

    def pipeline():
        return realworld_pipeline(folder, batch_size=3, patch_size=32, crop_pad_size=40, seed=5, deterministic=True,
                                  with_usm=True)

    trainer, lr, hr = trainer_and_data(rng)
    grid_cb = TrainingBatchGrid(pipeline(), tmp_path / "tb", every_n_steps=1, max_images=2)
    trainer.fit(lr[:4], hr[:4], batch_size=4, epochs=2, verbose=0, callbacks=[grid_cb])
    logged = events(tmp_path / "tb")["train_lr_sr_hr"]
    assert [step for step, _, _ in logged] == [1, 2] and logged[0][2] == "images"
    expected = iter(pipeline())
    for _, tensor, _ in logged:
        width, height, *pngs = tensor
        assert (int(width), int(height), len(pngs)) == (3 * 32 + 4, 32, 2)
        batch_lr, batch_hr, _ = next(expected)
        for png, one_lr, one_hr in zip(pngs, batch_lr.numpy(), batch_hr.numpy()):
            grid = np.asarray(Image.open(io.BytesIO(png)))
            np.testing.assert_array_equal(grid[:, :32], np.kron(quantize(one_lr), np.ones((4, 4, 1), np.uint8)))
            np.testing.assert_array_equal(grid[:, 68:], quantize(one_hr))
    first, second = (np.asarray(Image.open(io.BytesIO(t[2]))) for _, t, _ in logged)
    assert not np.array_equal(first[:, :32], second[:, :32])  # the next batch, not the same one again
    with pytest.raises(ValueError, match="max_images"):
        TrainingBatchGrid(pipeline(), tmp_path / "tb", every_n_steps=1, max_images=0)
