"""The training recipe: presets, the perceptual-loss fallback, and `recipes/train_div2k.py` end to
end (a smoke run in a temporary workdir, a resumed run, a run with nothing left to do, errors).

The end-to-end runs use the offline preset's code path (synthetic images, the VGG19 fallback,
both stages, interpolation, SavedModel/TFLite export) with an even smaller model and image set,
in a subprocess with an empty Keras cache and no network, as on a fresh machine.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import keras_esrgan
from keras_esrgan import recipes
from keras_esrgan.weights import vgg19
from keras_esrgan.atomic import write_json
from keras_esrgan.checkpoints import TrainingCheckpoint
from keras_esrgan.recipes import RecipeError, WorkDir, get_preset
from tests.conftest import ROOT

SCRIPT = ROOT / "recipes" / "train_div2k.py"
# Small enough that a stage takes seconds, big enough that 600 PSNR steps get near bicubic.
TINY = [
    "--num_feat=16",
    "--num_block=1",
    "--num_grow_ch=8",
    "--discriminator_feat=8",
    "--batch_size=8",
    "--patch_size=32",
    "--val_every=20",
    "--checkpoint_every=100",
    "--log_every=20",
    "--image_every=100",
    "--synthetic_train=8",
    "--synthetic_val=2",
    "--synthetic_train_size=64",
    "--synthetic_val_size=48",
    "--seed=0",
    "--verbose=2",
]
FIRST = ["--psnr_steps=600", "--gan_steps=20"]
MORE = ["--psnr_steps=640", "--gan_steps=40"]
ROW = re.compile(
    r"^  (bicubic|PSNR model \(EMA\)|GAN model \(EMA\)|interpolated, alpha=0\.8)\s+(\S+) dB\s+(\S+)", re.M
)


# The module-scoped fixtures below are built once: keep this file's tests on one xdist
# worker (pyproject: --dist loadgroup); other files' tests are spread one by one.
pytestmark = pytest.mark.xdist_group("recipe")


def run_recipe(tmp, *flags, timeout=600):
    """The script in a subprocess as on a fresh offline machine: empty Keras cache (so no
    VGG19 weights), proxies that refuse every connection."""
    env = dict(os.environ)
    env.update(
        KERAS_HOME=str(tmp / "keras_home"),
        HTTP_PROXY="http://127.0.0.1:9",
        HTTPS_PROXY="http://127.0.0.1:9",
        TF_CPP_MIN_LOG_LEVEL="2",
        PYTHONPATH=str(ROOT),
    )
    env.pop("NO_PROXY", None), env.pop("no_proxy", None)
    (tmp / "keras_home").mkdir(exist_ok=True)
    started = time.time()
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), *flags],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    proc.seconds = time.time() - started
    return proc


def printed_scores(stdout):
    return {name: (float(p), float(s)) for name, p, s in ROW.findall(stdout)}


def scalar_events(log_dir, tag):
    out = []
    for path in sorted(glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))):
        for event in tf.compat.v1.train.summary_iterator(path):
            out += [
                (event.step, float(tf.make_ndarray(v.tensor))) for v in event.summary.value if v.tag == tag
            ]
    return out


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recipe")
    proc = run_recipe(tmp, f"--workdir={tmp / 'run'}", *TINY, *FIRST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return tmp, proc


@pytest.mark.slow
def test_smoke_run_trains_both_stages_and_writes_loadable_artifacts(first_run):
    tmp, proc = first_run
    work = WorkDir(tmp / "run")
    result = json.loads(Path(work.results).read_text())
    assert result["steps"] == {"psnr": 600, "gan": 20} and result["resumed"] == {}
    # The offline preset's fallback, said clearly, on the same code path as the paper preset.
    assert "RANDOMLY INITIALISED VGG19" in proc.stderr and "--vgg_weights=" in proc.stderr
    assert result["perceptual"] == "random VGG19 (fallback: ImageNet weights not cached)"
    assert "Traceback" not in proc.stderr

    art = work.artifacts
    files = dict(psnr=art.generator("psnr"), gan=art.generator("gan"), interp=art.interpolated(0.8))
    nets = {}
    for name, path in files.items():
        net = keras_esrgan.load_generator(path)
        assert net.config == dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=16, num_block=1, num_grow_ch=8)
        assert net.dtype_policy.name == "float32"
        nets[name] = net
    lr = np.random.default_rng(0).random((1, 12, 12, 3), dtype=np.float32)
    out = {k: n(lr).numpy() for k, n in nets.items()}
    assert out["gan"].shape == (1, 48, 48, 3)
    assert not np.allclose(out["psnr"], out["gan"])  # the GAN stage changed the weights
    # Interpolation is linear in the weights: check one kernel.
    a, b, c = (nets[k].conv_first.kernel.numpy() for k in ("psnr", "gan", "interp"))
    np.testing.assert_allclose(c, 0.2 * a + 0.8 * b, rtol=1e-5, atol=1e-7)

    # Exports of the GAN model: a SavedModel that serves uint8, a TFLite file with its sidecar.
    serving = art.serving
    sig = tf.saved_model.load(serving).signatures["serving_default"]
    pixels = np.round(lr * 255).astype(np.uint8)
    served = sig(images=tf.constant(pixels))["upscaled"].numpy()
    want = np.round(np.clip(nets["gan"](pixels / np.float32(255)).numpy(), 0, 1) * 255)
    assert served.dtype == np.uint8 and np.abs(served.astype(int) - want).max() <= 1
    sidecar = json.loads(Path(art.tflite("fp16")).with_suffix(".json").read_text())
    assert sidecar["quantization"] == "fp16" and sidecar["architecture"]["num_feat"] == 16
    assert Path(art.tflite("fp16")).stat().st_size == sidecar["size_bytes"]
    assert result["exported"] == "gan"

    # The printed table is the saved one, finite. The PSNR model must come within 1 dB of
    # bicubic: 600 steps of a 1-block model get to about -0.4 dB here (the offline preset
    # itself, 1000 steps of 2 blocks, beats bicubic by about 0.3 dB), so a broken loss, data
    # misalignment (LR/HR off by a pixel), wrong colour handling or an EMA stuck at the random
    # initialisation would fail this by several dB.
    printed = printed_scores(proc.stdout)
    names = {
        "bicubic": "bicubic",
        "psnr": "PSNR model (EMA)",
        "gan": "GAN model (EMA)",
        "interp": "interpolated, alpha=0.8",
    }
    for key, label in names.items():
        psnr, ssim = printed[label]
        assert np.isfinite(psnr) and 0 < ssim <= 1
        assert psnr == pytest.approx(result["scores"][key]["psnr"], abs=0.006)
        assert ssim == pytest.approx(result["scores"][key]["ssim"], abs=6e-5)
    assert result["scores"]["psnr"]["psnr"] > result["scores"]["bicubic"]["psnr"] - 1.0
    # ... and it got there by training: validation PSNR rose by more than 10 dB over the stage.
    curve = scalar_events(work.board("psnr", "validation"), "psnr_y")
    assert [s for s, _ in curve] == list(range(20, 601, 20))
    assert curve[-1][1] > curve[0][1] + 10
    assert "artifacts:" in proc.stdout and str(serving) in proc.stdout


@pytest.mark.slow
def test_second_run_resumes_from_the_checkpoints_and_a_third_has_nothing_to_do(first_run, tmp_path):
    tmp, _ = first_run
    workdir = tmp_path / "run"
    shutil.copytree(tmp / "run", workdir)
    work = WorkDir(workdir)
    gan_before = os.stat(work.artifacts.generator("gan")).st_mtime_ns

    proc = run_recipe(tmp_path, f"--workdir={workdir}", *TINY, *MORE)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resumed from step 600 ({work.checkpoints('psnr')})" in proc.stdout
    assert f"resumed from step 20 ({work.checkpoints('gan')})" in proc.stdout
    result = json.loads(Path(work.results).read_text())
    assert result["resumed"] == {"psnr": 600, "gan": 20} and result["steps"] == {"psnr": 640, "gan": 40}
    assert TrainingCheckpoint(work.checkpoints("psnr")).saved_step() == 640
    assert TrainingCheckpoint(work.checkpoints("gan")).saved_step() == 40
    # The curves continue at the global step: 620 and 640 follow 600 (not 20 and 40 again).
    curve = scalar_events(work.board("psnr", "validation"), "psnr_y")
    assert [s for s, _ in curve][-3:] == [600, 620, 640] and len(curve) == 32
    # The GAN stage went on from its own checkpoint, and says it started from an older PSNR model.
    assert "started from the PSNR generator at step 600" in proc.stderr
    assert os.stat(work.artifacts.generator("gan")).st_mtime_ns != gan_before
    assert "export of the gan model" in proc.stdout  # its source changed, so it was redone

    files = {p: p.stat().st_mtime_ns for p in Path(work.artifacts.folder).rglob("*") if p.is_file()}
    again = run_recipe(tmp_path, f"--workdir={workdir}", *TINY, *MORE)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "stage 1 (PSNR): already complete at step 640; skipped" in again.stdout
    assert "stage 2 (GAN): already complete at step 40; skipped" in again.stdout
    assert "export: up to date" in again.stdout
    assert {p: p.stat().st_mtime_ns for p in files} == files  # no artifact rewritten
    assert printed_scores(again.stdout) == printed_scores(proc.stdout)


@pytest.mark.slow
def test_user_errors_are_one_line_messages(tmp_path):
    proc = run_recipe(tmp_path, f"--workdir={tmp_path / 'w'}", "--patch_size=30")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert (
        "train_div2k.py: error: preset 'offline': patch_size=30 must be a multiple of scale=4" in proc.stderr
    )

    # DIV2K offline: tensorflow-datasets would retry for minutes; the recipe stops in seconds
    # with the list of files to download.
    proc = run_recipe(
        tmp_path, f"--workdir={tmp_path / 'w'}", "--data=div2k", f"--data_dir={tmp_path / 'tfds'}"
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "train_div2k.py: error: DIV2K 'bicubic_x4' is not prepared" in proc.stderr
    assert "DIV2K_train_HR.zip" in proc.stderr
    assert proc.seconds < 60


# -- presets and configuration (in process) -----------------------------------------------------


def test_paper_preset_is_basicsr():
    paper = get_preset("paper")
    assert paper.architecture() == dict(scale=4, num_feat=64, num_block=23, num_grow_ch=32)
    assert (paper.batch_size, paper.patch_size, paper.psnr_steps, paper.gan_steps) == (
        16,
        128,
        1_000_000,
        400_000,
    )
    assert (paper.ema_decay, paper.discriminator, paper.perceptual_fallback) == (0.999, "vgg", False)
    # BasicSR train_RRDBNet_PSNR_x4.yml: cosine restarts every 250k from 2e-4 to 1e-7.
    psnr_lr = paper.psnr_schedule()
    np.testing.assert_allclose(
        [float(psnr_lr(s)) for s in (0, 125_000, 250_000, 999_999)],
        [2e-4, (2e-4 + 1e-7) / 2, 2e-4, 1e-7],
        rtol=1e-3,
    )
    # train_ESRGAN_x4.yml: 1e-4 halved at 50k, 100k, 200k, 300k.
    gan_lr = paper.gan_schedule()
    np.testing.assert_allclose(
        [float(gan_lr(s)) for s in (50_000, 50_001, 100_001, 200_001, 300_001)],
        [1e-4, 5e-5, 2.5e-5, 1.25e-5, 6.25e-6],
    )


def test_offline_preset_and_overrides():
    offline = get_preset("offline")
    assert offline.data == "synthetic" and offline.perceptual_fallback and offline.discriminator == "unet"
    short = get_preset("offline", gan_steps=200, psnr_steps=None)  # None: keep the preset's value
    assert short.gan_steps == 200 and short.psnr_steps == offline.psnr_steps
    # The GAN milestones scale with the stage: 200 steps halve at 25, 50, 100, 150.
    np.testing.assert_allclose(
        [float(short.gan_schedule()(s)) for s in (25, 26, 151)], [1e-4, 5e-5, 6.25e-6]
    )


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(psnr_steps=150), "psnr_steps=150 must be a multiple of val_every=100"),
        (dict(patch_size=64, discriminator="vgg"), "takes 128 or 256 HR patches"),
        (dict(patch_size=36), "needs patch_size a multiple of 8"),
        (dict(scale=3), "scale must be 4, 2 or 1"),
        (dict(alpha=1.5), "alpha must be in"),
        (dict(num_block=0), "num_block must be a positive integer"),
        (dict(gan_steps=0), "gan_steps must be a positive integer, got 0 (to skip a stage, use --stage)"),
        (dict(tflite_quantization="int4"), "tflite_quantization must be one of"),
        (dict(synthetic_train_size=32), "synthetic_train_size=32 must be at least patch_size=64"),
        (dict(gan_lr_milestones=(0.5, 0.25)), "increasing fractions"),
    ],
)
def test_bad_overrides_name_the_field(overrides, message):
    with pytest.raises(RecipeError, match=re.escape(message)):
        get_preset("offline", **overrides)


def test_unknown_preset_or_field():
    with pytest.raises(RecipeError, match="unknown preset 'big'; there are: paper, offline"):
        get_preset("big")
    with pytest.raises(RecipeError, match="unknown preset field"):
        get_preset("offline", num_blocks=3)


def test_perceptual_loss_fallback_only_where_allowed(tmp_path, monkeypatch, caplog):
    from keras_esrgan import perceptual

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))  # an empty Keras cache

    def offline(cache_dir):
        raise Exception("URL fetch failure (test: offline)")

    monkeypatch.setattr(vgg19, "_download_keras_vgg19", offline)
    # Offline preset: no download attempted; a random VGG19 and a warning that says what to do.
    with caplog.at_level("WARNING"):
        loss, what = recipes.perceptual_loss(None, fallback=True)
    assert what == "random VGG19 (fallback: ImageNet weights not cached)"
    assert isinstance(loss, keras_esrgan.PerceptualLoss)
    text = caplog.text
    assert "RANDOMLY INITIALISED VGG19" in text and "--vgg_weights=imagenet" in text and str(tmp_path) in text
    # Paper preset (no fallback), and an explicit --vgg_weights=imagenet: an error, at once.
    for weights, fallback in ((None, False), ("imagenet", True)):
        with pytest.raises(keras_esrgan.WeightsFileError, match="could not be downloaded") as err:
            recipes.perceptual_loss(weights, fallback=fallback)
        assert "--vgg_weights=/path/to/file" in str(err.value)
    _, what = recipes.perceptual_loss("random")
    assert what == "random VGG19 (vgg_weights=random)"


def test_dtype_policy_and_strategy(tmp_path):
    from keras_esrgan.precision import training_policy

    assert training_policy(False) == training_policy("off") == "float32"
    assert training_policy("mixed_float16") == "mixed_float16"
    gpu = bool(tf.config.list_physical_devices("GPU"))
    assert training_policy("auto") == ("mixed_float16" if gpu else "mixed_bfloat16")
    with pytest.raises(RecipeError, match="mixed_precision"):  # before any work
        recipes.train(get_preset("offline"), tmp_path / "w", mixed_precision="fp8")
    assert not (tmp_path / "w").exists()
    if not gpu:
        assert recipes.make_strategy("mirrored") is tf.distribute.get_strategy()
    assert "replica" in recipes.describe_strategy(tf.distribute.MirroredStrategy(["/cpu:0"]))
    with pytest.raises(RecipeError, match="strategy must be one of"):
        recipes.make_strategy("tpu")


def test_train_refuses_bad_runs_before_training(tmp_path):
    preset = get_preset(
        "offline", synthetic_train=1, synthetic_val=1, synthetic_train_size=64, synthetic_val_size=32
    )
    write_json(
        WorkDir(tmp_path / "w").config, dict(architecture=dict(preset.architecture(), num_feat=8))
    )
    with pytest.raises(RecipeError, match="holds a run of RRDBNet"):
        recipes.train(preset, tmp_path / "w", stage="psnr")
    with pytest.raises(RecipeError, match="--data=folder needs --hr_dir"):
        recipes.train(preset, tmp_path / "x", stage="psnr", data="folder")
    # The data arguments are DataSources' fields; a misspelt one is Python's usual TypeError.
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'hr_dirs' \(its data arguments: data, hr_dir,"):
        recipes.train(preset, tmp_path / "x", stage="psnr", data="folder", hr_dirs="hr")
    assert not os.path.exists(tmp_path / "x" / "results.json")
    with pytest.raises(RecipeError, match="export_model=gan needs the GAN stage"):
        recipes.train(preset, tmp_path / "x", stage="psnr", export_model="gan")
    with pytest.raises(RecipeError, match="vgg_weights: no such file"):
        recipes.train(preset, tmp_path / "x", vgg_weights=str(tmp_path / "vgg.h5"))
    with pytest.raises(RecipeError, match="run --stage=psnr .* first"):
        recipes.train(preset, tmp_path / "y", stage="gan", vgg_weights="random")
