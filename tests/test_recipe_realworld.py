"""The Real-ESRGAN presets of the recipe: `realesrgan` end to end on procedural images (both stages,
tiny), `finetune` from model-zoo stand-ins served on 127.0.0.1 (killed after a checkpoint, then
resumed), and the presets and data streams in process.

The subprocess runs see what a fresh offline machine sees (empty Keras and zoo caches, proxies
that refuse every connection); the fine-tuning one can reach only the local zoo server.
"""

import hashlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import keras_esrgan
from keras_esrgan.checkpoints import checkpoints_on_disk
from keras_esrgan.data import image_folder
from keras_esrgan.data.degrade import matlab_bicubic_resize
from keras_esrgan.recipes import RecipeError, WorkDir, get_preset
from keras_esrgan.recipes import realworld as recipe_realworld
from keras_esrgan.validation import validate, validation_images
from tests import standins
from tests.conftest import FIXTURES, ROOT
from tests.test_callbacks import events
from tests.test_recipe import run_recipe, scalar_events
from tests.zoo_server import ZooServer

SMALL = {  # shared by both runs: a model and images small enough for seconds per stage
    "num_feat": 8, "num_block": 1, "num_grow_ch": 4, "discriminator_feat": 4, "batch_size": 2, "patch_size": 32,
    "crop_pad_size": 48, "val_every": 4, "checkpoint_every": 4, "image_every": 4, "val_center_crop": 0, "seed": 0,
}
REALESRGAN = dict(SMALL, synthetic_train=2, synthetic_val=1, synthetic_train_size=48, synthetic_val_size=32,
                  psnr_init="", psnr_steps=8, gan_steps=4, log_every=1, ema_decay=0.0, psnr_lr=2e-3)


def flags(values):
    return [f"--{k}={v}" for k, v in values.items()]


def scalars(log_dir):
    return {tag: dict(values) for tag, values in events_scalars(log_dir).items()}


def events_scalars(log_dir):
    return {tag: [(step, float(v)) for step, v, _ in values] for tag, values in events(log_dir).items()
            if tag != "train_lr_sr_hr"}


@pytest.mark.slow
def test_realesrgan_preset_trains_both_stages_on_degraded_inputs(tmp_path):
    workdir = tmp_path / "run"
    work = WorkDir(workdir)
    proc = run_recipe(tmp_path, "--preset=realesrgan", f"--workdir={workdir}", "--data=synthetic",
                      "--vgg_weights=random", "--noexport", "--verbose=2", *flags(REALESRGAN))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    result = json.loads(Path(work.results).read_text())
    assert result["steps"] == {"psnr": 8, "gan": 4}
    assert result["preset"]["gan_type"] == "vanilla" and result["preset"]["degradation"] == "realesrgan"
    assert "LR made by Real-ESRGAN's degradation (48px regions)" in proc.stdout
    assert "0.1 vanilla GAN + 1 L1; L1 and perceptual on USM-sharpened HR" in proc.stdout

    # Stage 1 trained (L1 fell); stage 2 logged Real-ESRGAN's losses: g = percep + 0.1 gan + L1
    # at every step (running means are linear), and D's loss is the vanilla sum of two BCE terms,
    # about 2 log 2 while the discriminator is still undecided (the relativistic one is log 2).
    psnr = scalars(work.board("psnr", "train"))
    assert psnr["l_pix"][8] < 0.8 * psnr["l_pix"][1]
    gan = scalars(work.board("gan", "train"))
    for step in range(1, 5):  # each stage counts its own steps
        want = gan["l_percep"][step] + 0.1 * gan["l_gan"][step] + gan["l_pix"][step]
        assert gan["g_loss"][step] == pytest.approx(want, rel=1e-5), step
    assert abs(gan["d_loss"][1] - 2 * math.log(2)) < 0.3
    np.testing.assert_allclose(gan["learning_rate"][4], 1e-4, rtol=1e-6)  # constant (MultiStepLR at the end)
    assert psnr["learning_rate"][8] == pytest.approx(2e-3)

    # The training grids: degraded LR | SR | target of the grid stream, at the image period.
    for stage, steps in (("psnr", [4, 8]), ("gan", [4])):
        grids = events(work.board(stage, "train"))["train_lr_sr_hr"]
        assert [s for s, _, _ in grids] == steps
        width, height, *pngs = grids[0][1]
        assert (int(width), int(height), len(pngs)) == (3 * 32 + 4, 32, recipe_realworld.GRID_IMAGES)

    # Validation ran on degraded pairs, the same ones an in-process call makes.
    preset = get_preset("realesrgan", **REALESRGAN)
    val = image_folder(Path(work.synthetic) / "val")
    pairs = recipe_realworld.validation_pairs(preset, val, degraded=True)
    bicubic = validate(lambda lr: matlab_bicubic_resize(lr, 4), pairs, 4)["model"].psnr
    assert result["scores"]["bicubic"]["psnr"] == pytest.approx(bicubic, abs=1e-6)
    clean = validate(lambda lr: matlab_bicubic_resize(lr, 4), validation_images(
        keras_esrgan.validation_pipeline(val)), 4)["model"].psnr
    assert abs(clean - bicubic) > 1.0
    curve = scalar_events(work.board("gan", "validation"), "psnr_y")
    assert [s for s, _ in curve] == [4]


def events_in_file(path, tag):
    return [event.step for event in tf.compat.v1.train.summary_iterator(str(path))
            for value in event.summary.value if value.tag == tag]


def _entry(server, name, data, **fields):
    server.files[f"/zoo/{name}.pth"] = data
    return dict(url=server.url(f"/zoo/{name}.pth"), sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                file_name=f"{name}.pth", **fields)


def _worker(tmp_path, entries, *args, delay=None, popen=False):
    env = dict(os.environ)
    env.update(
        KERAS_HOME=str(tmp_path / "keras_home"), KERAS_ESRGAN_HOME=str(tmp_path / "zoo"),
        HTTP_PROXY="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9", NO_PROXY="127.0.0.1,localhost",
        TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(ROOT),
    )
    env.pop("no_proxy", None)
    env.pop("KERAS_ESRGAN_MIRROR", None)
    own = [str(entries)] + (["--step-delay", str(delay)] if delay else [])
    command = [sys.executable, "-m", "tests.recipe_worker", *own, "--", *args]
    if popen:
        return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_finetune_starts_from_zoo_files_and_resumes_after_sigkill(tmp_path):
    generator_file = FIXTURES / "basicsr_x4_params_ema.pth"  # tiny RRDBNet x4 (8 features, 2 blocks), torch-written
    netd_state = standins.unet_discriminator_state(num_feat=4, seed=7)
    netd = standins.save_torch_zip(netd_state, tmp_path / "netD.pth", key="params").read_bytes()
    hr_dir = standins.write_images(tmp_path / "my_hr_images", [(56, 48), (48, 64), (40, 40)], seed=8)
    val_dir = standins.write_images(tmp_path / "val", [(32, 32)], seed=9)
    (tmp_path / "keras_home").mkdir()
    workdir = tmp_path / "run"
    values = dict(SMALL, num_block=2, gan_steps=12, log_every=4)
    args = ["--preset=finetune", f"--workdir={workdir}", f"--hr_dir={hr_dir}", f"--val_dir={val_dir}",
            "--vgg_weights=random", "--noexport", "--verbose=2", *flags(values)]
    work = WorkDir(workdir)
    ckpt = work.checkpoints("gan")
    with ZooServer() as server:
        entries = tmp_path / "entries.json"
        entries.write_text(json.dumps({
            "RealESRGAN_x4plus": _entry(server, "RealESRGAN_x4plus", generator_file.read_bytes(),
                                        arch_kwargs=dict(num_feat=8, num_block=2, num_grow_ch=4), param_key="params_ema"),
            "RealESRGAN_x4plus_netD": _entry(server, "RealESRGAN_x4plus_netD", netd, arch="UNetDiscriminatorSN",
                                             arch_kwargs=dict(num_feat=4), scale=1, kind="discriminator",
                                             param_key="params"),
        }))
        victim = _worker(tmp_path, entries, *args, delay=0.5, popen=True)
        deadline = time.time() + 300
        while time.time() < deadline and victim.poll() is None and not checkpoints_on_disk(str(ckpt)):
            time.sleep(0.05)
        victim.send_signal(signal.SIGKILL)
        out = victim.communicate()[0]
        assert victim.returncode == -signal.SIGKILL, out[-4000:]
        saved = checkpoints_on_disk(str(ckpt))[-1][0]
        assert saved in (4, 8), out[-3000:]
        assert not os.path.exists(work.results)

        proc = _worker(tmp_path, entries, *args)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stdout[-2000:] + proc.stderr[-4000:]
        # Each zoo file was fetched once, verified, and taken from the cache by the second run.
        assert sorted(r["path"] for r in server.log) == ["/zoo/RealESRGAN_x4plus.pth", "/zoo/RealESRGAN_x4plus_netD.pth"]
    zoo = tmp_path / "zoo"
    assert f"resumed from step {saved} ({ckpt})" in proc.stdout
    # ... and trained on from there: the second run's TensorBoard file starts after that step.
    files = sorted(Path(work.board("gan", "train")).glob("events.out.tfevents.*"),
                   key=lambda p: int(p.name.split(".")[3]))  # events.out.tfevents.<time>.<host>...
    scalar_runs = [steps for steps in (events_in_file(p, "l_pix") for p in files) if steps]
    assert scalar_runs[-1] == list(range(saved + 4, 13, 4))
    assert all(max(steps) <= saved for steps in scalar_runs[:-1])
    result = json.loads(Path(work.results).read_text())
    assert result["steps"] == {"gan": 12} and result["resumed"] == {"gan": saved}
    assert "start: RealESRGAN_x4plus.pth" in proc.stdout
    assert json.loads(Path(work.gan_init_record).read_text())["psnr_generator"] == str(zoo / "RealESRGAN_x4plus.pth")
    assert f"unet discriminator from {zoo / 'RealESRGAN_x4plus_netD.pth'}" in proc.stdout

    # It fine-tuned the zoo models: after 12 Adam steps of 1e-4, the EMA generator and the
    # discriminator are within about 12 x 1e-4 of the stand-ins (random weights would be ~0.1 off).
    start = keras_esrgan.load_generator(generator_file)
    tuned = keras_esrgan.load_generator(work.artifacts.generator("gan"))
    for a, b in zip(start.weights, tuned.weights):
        assert np.abs(a.numpy() - b.numpy()).max() < 2e-3
    assert np.abs(start.conv_first.kernel.numpy()).std() > 0.02
    prefix = checkpoints_on_disk(str(ckpt))[-1][1]
    reader = tf.train.load_checkpoint(prefix)
    conv0 = [reader.get_tensor(name) for name, shape in tf.train.list_variables(prefix)
             if name.startswith("discriminator/") and tuple(shape) == (3, 3, 3, 4)]
    assert len(conv0) == 1
    want = netd_state["conv0.weight"].transpose(2, 3, 1, 0)
    assert 0 < np.abs(conv0[0] - want).max() < 2e-3
    assert events(work.board("gan", "train"))["train_lr_sr_hr"]


# -- in process: presets, paired fine-tuning, errors --------------------------------------------


def test_realesrgan_and_finetune_presets_are_the_ymls():
    real = get_preset("realesrgan")
    assert real.architecture() == dict(scale=4, num_feat=64, num_block=23, num_grow_ch=32)
    # train_realesrnet_x4plus.yml / train_realesrgan_x4plus.yml
    assert (real.batch_size, real.patch_size, real.crop_pad_size, real.psnr_steps, real.gan_steps) == (
        48, 256, 400, 1_000_000, 400_000)
    assert real.psnr_schedule() == 2e-4 and real.gan_schedule() == 1e-4 and real.ema_decay == 0.999
    assert (real.gan_type, real.perceptual_weight, real.gan_weight, real.pixel_weight) == ("vanilla", 1.0, 0.1, 1.0)
    assert real.layer_weights() == {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    assert (real.discriminator, real.discriminator_feat, real.degradation, real.gt_usm) == ("unet", 64, "realesrgan", True)
    assert (real.psnr_init, real.stage) == ("ESRGAN_SRx4_DF2KOST_official", "both")
    tune = get_preset("finetune")
    assert (tune.stage, tune.gan_init, tune.discriminator_init) == ("gan", "RealESRGAN_x4plus", "RealESRGAN_x4plus_netD")
    assert (tune.batch_size, tune.gan_steps, tune.gan_schedule(), tune.data) == (12, 400_000, 1e-4, "folder")
    # The ESRGAN presets keep their losses.
    for name in ("paper", "offline"):
        p = get_preset(name)
        assert (p.gan_type, p.gan_weight, p.pixel_weight, p.layer_weights(), p.degradation, p.gt_usm) == (
            "relativistic", 5e-3, 1e-2, {"conv5_4": 1.0}, "bicubic", False)


@pytest.mark.parametrize("overrides, message", [
    (dict(gan_type="wgan"), "gan_type must be one of relativistic, vanilla"),
    (dict(degradation="jpeg"), "degradation must be one of bicubic, realesrgan"),
    (dict(crop_pad_size=100), "crop_pad_size=100 must be a multiple of scale=4 and at least patch_size=256"),
    (dict(perceptual_layers="conv6_1:1"), "perceptual_layers='conv6_1:1' must be layer:weight"),
    (dict(perceptual_layers="conv5_4:-1"), "needs a weight >= 0"),
    (dict(gan_weight=-0.1), "gan_weight must be >= 0"),
    (dict(discriminator="vgg", discriminator_init="x.pth"), "needs discriminator='unet'"),
    (dict(stage="all"), "stage must be one of"),
])
def test_bad_realworld_overrides_name_the_field(overrides, message):
    with pytest.raises(RecipeError, match=message):
        get_preset("realesrgan", **overrides)


def test_paired_finetune_stream_is_the_lr_files_with_usm_targets(tmp_path):
    """--lr_dir: the LR patches are crops of the LR files (no degradation) and the third element
    is the USM-sharpened HR patch (finetune_realesrgan_x4plus_pairdata.yml keeps l1/percep_gt_usm)."""
    from keras_esrgan.data.degradation_ops import usm_sharp

    hr = standins.write_images(tmp_path / "hr", [(64, 64)], seed=4)
    lr_dir = tmp_path / "lr"
    lr_dir.mkdir()
    from keras_esrgan.images import read_image, write_image

    hr_image = read_image(hr / "0000.png")
    lr_image = np.ascontiguousarray(hr_image[::4, ::4])  # any LR file of the right size
    write_image(lr_dir / "0000.png", lr_image)
    preset = get_preset("finetune", patch_size=64, crop_pad_size=64, batch_size=1, seed=0)
    assert not recipe_realworld.uses_degradation(preset, lr_dir)
    lr, target, target_usm = next(iter(recipe_realworld.training_batches(
        preset, image_folder(hr, lr_dir), seed=0, degraded=False)))
    # The whole 64 px image is the patch, possibly flipped or rotated: find which.
    candidates = [np.rot90(lr_image, k) for k in range(4)] + [np.rot90(lr_image[:, ::-1], k) for k in range(4)]
    got = np.round(lr.numpy()[0] * 255).astype(np.uint8)
    assert any(np.array_equal(got, c) for c in candidates)
    np.testing.assert_allclose(target_usm.numpy(), usm_sharp(target).numpy(), atol=1e-6)
    assert np.abs(target_usm.numpy() - target.numpy()).max() > 0.01
    assert recipe_realworld.grid_batches(preset, image_folder(hr, lr_dir), 0, degraded=False) is not None
    assert recipe_realworld.grid_batches(get_preset("offline"), image_folder(hr, lr_dir), 0, degraded=False) is None


def test_train_refuses_conflicting_starts(tmp_path):
    preset = get_preset("finetune", **SMALL)
    with pytest.raises(RecipeError, match="with stage=both it starts from the PSNR stage's output"):
        keras_esrgan.recipes.train(preset, tmp_path / "w", stage="both", psnr_generator=str(FIXTURES / "basicsr_x4_params_ema.pth"))
    with pytest.raises(RecipeError, match="--discriminator_init: 'RealESRGAN_x4plus_netDD' is neither"):
        keras_esrgan.recipes.train(get_preset("finetune", **dict(SMALL, discriminator_init="RealESRGAN_x4plus_netDD")),
                                   tmp_path / "w", psnr_generator=str(FIXTURES / "basicsr_x4_params_ema.pth"))
