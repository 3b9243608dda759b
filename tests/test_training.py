"""ESRGAN / PSNRTrainer: fit behaviour, EMA, schedules, mixed precision, distribution, resume."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_esrgan
from keras_esrgan import ESRGAN, PSNRTrainer, RRDBNet, TrainingCheckpoint, UNetDiscriminatorSN, WeightsFileError
from keras_esrgan import losses, perceptual
from keras_esrgan.weights import vgg19
from keras_esrgan.training import gan_learning_rate, psnr_learning_rate

from . import training_worker as worker
from .conftest import ROOT

METRICS = {"g_loss", "d_loss", "l_pix", "l_percep", "l_gan", "d_real", "d_fake", "psnr"}


def tiny_gan(ema_decay=0.9, dtype=None, perceptual_layers=("block1_conv2",)):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = keras_esrgan.PerceptualLoss({name: 1.0 for name in perceptual_layers}, weights=None, dtype=dtype)
    return ESRGAN(
        RRDBNet(num_feat=8, num_block=1, num_grow_ch=4, dtype=dtype),
        UNetDiscriminatorSN(num_feat=4, dtype=dtype),
        perceptual_loss=loss,
        ema_decay=ema_decay,
    )


def snapshot(model):
    return [w.numpy().copy() for w in model.weights]


def moved(before, model):
    return any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.weights))


def run(args, timeout=300, **kwargs):
    proc = subprocess.run(
        [sys.executable, "-m", "tests.training_worker", *args], cwd=ROOT, capture_output=True,
        text=True, timeout=timeout, **kwargs,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc


def test_fit_moves_both_networks_and_logs_every_metric():
    lr, hr = worker.data()
    model = tiny_gan()
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3))
    # The first step's losses, recomputed eagerly from the initial weights. Spectral norm
    # updates the discriminator in training calls: replay them, then rewind.
    d0 = model.discriminator.get_weights()
    sr = model.generator(lr[:4])
    real, fake = model.discriminator(hr[:4], training=True), model.discriminator(sr, training=True)
    model.discriminator.set_weights(d0)
    l_pix = losses.pixel_loss(sr, hr[:4]).numpy().mean()
    l_percep = model.perceptual_loss(sr, hr[:4]).numpy().mean()
    want = dict(
        l_pix=l_pix, l_percep=l_percep,
        l_gan=losses.relativistic_generator_loss(real, fake).numpy().mean(),
        d_loss=losses.relativistic_discriminator_loss(real, fake).numpy().mean(),
        d_real=real.numpy().mean(), d_fake=fake.numpy().mean(),
    )
    want["g_loss"] = l_percep + 5e-3 * want["l_gan"] + 1e-2 * l_pix
    first = {}
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: first or first.update({k: float(v) for k, v in logs.items()})
    )
    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    history = model.fit(lr, hr, batch_size=4, epochs=2, verbose=0, shuffle=False, callbacks=[record])
    for name, value in want.items():
        np.testing.assert_allclose(first[name], value, rtol=1e-4, err_msg=name)

    assert moved(g0, model.generator) and moved(d0, model.discriminator)
    assert set(history.history) == METRICS
    for name, values in history.history.items():
        assert len(values) == 2 and np.all(np.isfinite(values)), name
    # The step counters: ours, Keras' model.optimizer (the generator's) and the discriminator's.
    assert int(model.iterations.numpy()) == 4
    assert model.optimizer is model.g_optimizer and int(model.optimizer.iterations.numpy()) == 4
    assert int(model.d_optimizer.iterations.numpy()) == 4
    result = model.evaluate(lr, hr, batch_size=4, verbose=0, return_dict=True)
    assert set(result) == METRICS and all(np.isfinite(v) for v in result.values())
    assert model.predict(lr[:2], verbose=0).shape == (2, 32, 32, 3)


def _mean_rgb_discriminator():
    """Per-pixel logit = the mean of the three channels: what it judged shows in its logits."""
    d = keras.Sequential([keras.Input((None, None, 3)), keras.layers.Conv2D(1, 1)], name="mean_rgb")
    d.layers[0].set_weights([np.full((1, 1, 3, 1), 1 / 3, np.float32), np.zeros(1, np.float32)])
    return d


def _softplus(x):
    return np.log1p(np.exp(x.astype(np.float64)))


def test_vanilla_gan_step_uses_real_esrgan_weights_and_usm_targets():
    """gan_type="vanilla" on (lr, hr, hr_usm) batches: L1 and perceptual against hr_usm, the
    discriminator's real input hr, g_loss = percep + 0.1 gan + 1 L1 (Real-ESRGAN's weights),
    d_loss = BCE(real, 1) + BCE(fake, 0), each averaged over every logit, all from the first
    step's logs against numpy on the initial weights."""
    lr, hr = worker.data()
    lr, hr = lr[:4], hr[:4]
    hr_usm = np.clip(hr * 1.3 - 0.1, 0, 1).astype(np.float32)  # any different target will do
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = keras_esrgan.PerceptualLoss({"block1_conv2": 1.0}, weights=None)
    model = ESRGAN(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), _mean_rgb_discriminator(),
                   perceptual_loss=loss, gan_type="vanilla", ema_decay=0.9)
    assert (model.perceptual_weight, model.gan_weight, model.pixel_weight) == (1.0, 0.1, 1.0)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3))
    sr = model.generator(lr).numpy()
    real, fake = hr.mean(axis=-1), sr.mean(axis=-1)
    l_pix = np.abs(sr - hr_usm).mean()
    l_percep = loss(sr, hr_usm).numpy().mean()
    l_gan = _softplus(-fake).mean()  # BCE(z, 1) = softplus(-z)
    want = dict(
        l_pix=l_pix, l_percep=l_percep, l_gan=l_gan, g_loss=l_percep + 0.1 * l_gan + l_pix,
        d_loss=_softplus(-real).mean() + _softplus(fake).mean(), d_real=real.mean(), d_fake=fake.mean(),
        psnr=np.mean([10 * np.log10(1 / ((np.clip(s, 0, 1) - t) ** 2).mean()) for s, t in zip(sr, hr_usm)]),
    )
    assert abs(want["l_pix"] - np.abs(sr - hr).mean()) > 1e-3  # the two targets are distinguishable
    first = {}
    record = keras.callbacks.LambdaCallback(
        on_train_batch_end=lambda batch, logs: first or first.update({k: float(v) for k, v in logs.items()})
    )
    ds = tf.data.Dataset.from_tensors((lr, hr, hr_usm)).repeat(2)
    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    model.fit(ds, epochs=1, verbose=0, callbacks=[record])
    for name, value in want.items():
        np.testing.assert_allclose(first[name], value, rtol=1e-4, err_msg=name)
    assert moved(g0, model.generator) and moved(d0, model.discriminator)

    # The three flags switch each target; (lr, hr) batches use hr throughout.
    model.discriminator.set_weights(_mean_rgb_discriminator().get_weights())
    model.l1_gt_usm = model.percep_gt_usm = False
    model.gan_gt_usm = True
    result = model.evaluate(ds.take(1), verbose=0, return_dict=True)
    ema_sr = model.ema_generator(lr).numpy()
    np.testing.assert_allclose(result["l_pix"], np.abs(ema_sr - hr).mean(), rtol=1e-4)
    np.testing.assert_allclose(result["d_real"], hr_usm.mean(), rtol=1e-4)
    pair = model.evaluate(tf.data.Dataset.from_tensors((lr, hr)), verbose=0, return_dict=True)
    np.testing.assert_allclose(pair["d_real"], hr.mean(), rtol=1e-4)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="USM-sharpened HR image and must have the shape of hr"):
        model.evaluate(tf.data.Dataset.from_tensors((lr, hr, hr[:, :8])), verbose=0)
    with pytest.raises(ValueError, match="gan_type must be one of"):
        ESRGAN(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), _mean_rgb_discriminator(),
               perceptual_loss=loss, gan_type="wgan")


def test_gan_type_defaults_and_psnr_trainer_usm_target():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        esrgan = ESRGAN(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), _mean_rgb_discriminator(), perceptual_weights=None)
        real = ESRGAN(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), _mean_rgb_discriminator(), perceptual_weights=None,
                      gan_type="vanilla", gan_weight=0.05)
    assert (esrgan.gan_type, esrgan.perceptual_weight, esrgan.gan_weight, esrgan.pixel_weight) == ("relativistic", 1.0, 5e-3, 1e-2)
    assert esrgan.perceptual_loss.layer_weights == {"block5_conv4": 1.0}
    assert (real.perceptual_weight, real.gan_weight, real.pixel_weight) == (1.0, 0.05, 1.0)
    assert real.perceptual_loss.layer_weights == {
        "block1_conv2": 0.1, "block2_conv2": 0.1, "block3_conv4": 1.0, "block4_conv4": 1.0, "block5_conv4": 1.0}
    # RealESRNet: the pixel loss of a (lr, hr, hr_usm) batch is against hr_usm unless told otherwise.
    lr, hr = worker.data(n=2)
    hr_usm = np.clip(hr + 0.2, 0, 1).astype(np.float32)
    for flag, target in ((True, hr_usm), (False, hr)):
        trainer = PSNRTrainer(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), l1_gt_usm=flag)
        trainer.compile()
        got = trainer.evaluate(tf.data.Dataset.from_tensors((lr, hr, hr_usm)), verbose=0, return_dict=True)
        np.testing.assert_allclose(got["l_pix"], np.abs(trainer.ema_generator(lr).numpy() - target).mean(), rtol=1e-5)


def test_ema_follows_the_decay_formula_and_is_what_gets_saved(tmp_path):
    lr, hr = worker.data()
    decay = 0.8
    model = tiny_gan(ema_decay=decay)
    model.compile(g_optimizer=keras.optimizers.Adam(1e-2), d_optimizer=keras.optimizers.Adam(1e-2))
    expected = [w.numpy().astype(np.float64) for w in model.generator.weights]

    class Follow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            for i, w in enumerate(model.generator.weights):
                expected[i] = decay * expected[i] + (1 - decay) * w.numpy()

    model.fit(lr, hr, batch_size=4, epochs=2, verbose=0, shuffle=False, callbacks=[Follow()])
    ema = model.ema_generator
    assert ema is not model.generator and ema.trainable_weights == []
    for e, want, raw in zip(ema.weights, expected, model.generator.weights):
        np.testing.assert_allclose(e.numpy(), want, rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(e.numpy(), r.numpy()) for e, r in zip(ema.weights, model.generator.weights))

    model.save_generator(tmp_path / "ema.keras")
    loaded = keras_esrgan.load_generator(tmp_path / "ema.keras")
    np.testing.assert_array_equal(loaded(lr[:1]).numpy(), ema(lr[:1]).numpy())
    assert not np.array_equal(loaded(lr[:1]).numpy(), model.generator(lr[:1]).numpy())


def test_psnr_stage_then_gan_stage(tmp_path):
    lr, hr = worker.data()
    trainer = PSNRTrainer(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4))
    trainer.compile()
    opt = trainer.optimizer
    assert (opt.beta_1, opt.beta_2) == (0.9, 0.99)
    g0 = snapshot(trainer.generator)
    history = trainer.fit(lr, hr, batch_size=4, epochs=2, verbose=0)
    assert set(history.history) == {"l_pix", "psnr"} and moved(g0, trainer.generator)
    assert int(opt.iterations.numpy()) == 4
    np.testing.assert_allclose(float(opt.learning_rate), float(psnr_learning_rate()(4)), rtol=1e-6)
    trainer.save_generator(tmp_path / "psnr.keras")
    # GAN stage initialised from the PSNR EMA generator; interpolation between the two.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gan = ESRGAN(keras_esrgan.load_generator(tmp_path / "psnr.keras"), UNetDiscriminatorSN(num_feat=4), perceptual_weights=None)
    np.testing.assert_array_equal(gan.ema_generator(lr[:1]).numpy(), trainer.ema_generator(lr[:1]).numpy())
    gan.compile()
    gan.fit(lr, hr, batch_size=4, epochs=1, verbose=0)
    mid = keras_esrgan.interpolate(trainer.ema_generator, gan.ema_generator, 0.5)
    for m, a, b in zip(mid.weights, trainer.ema_generator.weights, gan.ema_generator.weights):
        np.testing.assert_allclose(m.numpy(), (a.numpy() + b.numpy()) / 2, rtol=1e-6, atol=1e-7)


def test_default_schedules_and_optimizers():
    gan_lr = gan_learning_rate()
    for step, want in ((0, 1e-4), (50_000, 1e-4), (50_001, 5e-5), (150_000, 2.5e-5), (250_000, 1.25e-5), (10**6, 6.25e-6)):
        np.testing.assert_allclose(float(gan_lr(step)), want, rtol=1e-6)
    psnr_lr = psnr_learning_rate()
    lr0, lo, period = 2e-4, 1e-7, 250_000
    for t in (0, 1000, 125_000, 249_999, 250_000, 400_000):
        tau = (t % period) / period
        np.testing.assert_allclose(float(psnr_lr(t)), lo + (lr0 - lo) * 0.5 * (1 + np.cos(np.pi * tau)), rtol=1e-4)
    model = tiny_gan()
    model.compile()
    for opt in (model.g_optimizer, model.d_optimizer):
        assert isinstance(opt, keras.optimizers.Adam) and opt.built
        assert (opt.beta_1, opt.beta_2, opt.epsilon) == (0.9, 0.99, 1e-8)
    assert model.g_optimizer is not model.d_optimizer


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_step_is_finite(policy):
    lr, hr = worker.data(n=4)
    model = tiny_gan(dtype=policy)
    model.compile()
    if policy == "mixed_float16":
        assert isinstance(model.g_optimizer, keras.optimizers.LossScaleOptimizer)
        assert isinstance(model.d_optimizer, keras.optimizers.LossScaleOptimizer)
    g0 = snapshot(model.generator)
    history = model.fit(lr, hr, batch_size=4, epochs=2, verbose=0)
    assert all(np.all(np.isfinite(v)) for v in history.history.values())
    assert model.generator.weights[0].dtype == "float32" and moved(g0, model.generator)
    assert model.discriminator(hr).dtype == tf.float32


def test_bad_input_and_compile_arguments_are_refused():
    lr, hr = worker.data(n=4)
    model = tiny_gan()
    with pytest.raises(ValueError, match="jit_compile"):
        model.compile(jit_compile=True)
    with pytest.raises(ValueError, match="loss="):
        model.compile(loss="mse")
    with pytest.raises(ValueError, match="two optimizers"):
        opt = keras.optimizers.Adam()
        model.compile(g_optimizer=opt, d_optimizer=opt)
    with pytest.raises(ValueError, match="use_ema"):
        model.compile(g_optimizer=keras.optimizers.Adam(use_ema=True))
    model.compile()
    with pytest.raises(ValueError, match=r"\(lr, hr\) pairs"):
        model.fit(lr, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="4x the lr size"):
        model.fit(lr, hr[:, :16, :16], batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="divide uint8"):
        model.fit((lr * 255).astype(np.uint8), hr, batch_size=4, verbose=0)
    with pytest.raises(ValueError, match="ema_decay"):
        PSNRTrainer(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), ema_decay=1.0)


def assert_trained(result, size, prefix=""):
    """What `worker.vgg_style_run` measured: both networks moved, nothing is NaN."""
    r = {k[len(prefix):]: result[k] for k in result if k.startswith(prefix)}
    assert int(r["d_input_size"]) == size and int(r["steps"]) == 2 and bool(r["losses_finite"])
    for net in ("g", "d"):
        assert bool(r[f"{net}_finite"]), net
        # Adam moves every weight with a gradient by about the learning rate (1e-4) per step;
        # all of them do here (the last discriminator bias too, by float noise).
        assert int(r[f"{net}_moved"]) == int(r[f"{net}_tensors"]) > 30, net
        assert 5e-5 < float(r[f"{net}_max_change"]) < 1e-3, net


def test_issue_snippet_trains_with_the_default_vgg_discriminator():
    """Issue 11: `ESRGAN(generator=..., perceptual_weights=None).fit(ds)` with the default
    VGGStyleDiscriminator(128), in graph mode as fit runs it (the 256 px bf16 variant runs
    under MirroredStrategy below)."""
    assert_trained(worker.vgg_style_run(tf.distribute.get_strategy(), 128, "float32"), 128)


def test_wrong_patch_size_is_a_clear_error_in_graph_mode():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss = keras_esrgan.PerceptualLoss({"block1_conv1": 1.0}, weights=None)
    model = ESRGAN(
        RRDBNet(num_feat=8, num_block=1, num_grow_ch=4),
        keras_esrgan.VGGStyleDiscriminator(128, num_feat=4),
        perceptual_loss=loss,
    )
    model.compile()
    lr, hr = worker.snippet_data(64, n=4)
    # Static patch size (a dataset of arrays): refused while fit traces the step.
    with pytest.raises(ValueError, match=r"input_size=128\) takes 128x128 patches.*got shape \(None, 64, 64, 3\)"):
        model.fit(tf.data.Dataset.from_tensor_slices((lr, hr)).batch(2), epochs=1, verbose=0)
    # Unknown static size (any-size pipeline): the run-time check stops the first step.
    spec = tf.TensorSpec((None, None, None, 3), tf.float32)
    ds = tf.data.Dataset.from_generator(lambda: iter([(lr, hr)]), output_signature=(spec, spec))
    g0, d0 = snapshot(model.generator), snapshot(model.discriminator)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_size=128\) takes 128x128 patches"):
        model.fit(ds, epochs=1, verbose=0)
    # The failed step changed nothing and did not count.
    assert not moved(g0, model.generator) and not moved(d0, model.discriminator)
    assert int(model.iterations.numpy()) == 0


def test_vgg_discriminator_under_mirrored_strategy(tmp_path):
    """The bf16 256 px variant under a MirroredStrategy over 2 logical CPUs. The snippet itself
    (fp32, 128 px, full-size default discriminator and VGG19) runs in-process above and under
    MultiWorkerMirroredStrategy below; a 2-replica MirroredStrategy run of it added 2 minutes
    and no code path those two and this one do not cover."""
    run(["vgg-mirrored", str(tmp_path / "out.npz"), "256", "mixed_bfloat16"])
    result = np.load(tmp_path / "out.npz")
    assert int(result["replicas"]) == 2
    assert_trained(result, 256)


def test_vgg_discriminator_under_multi_worker_mirrored_strategy(tmp_path):
    w0, w1 = run_two_workers(tmp_path, "vgg-multiworker")
    assert int(w0["replicas"]) == 2
    assert_trained(w0, 128)
    for key in ("g_weights", "d_weights"):  # the workers stay in sync
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)


def test_default_esrgan_offline_fails_before_building_models(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(home):
        raise Exception("URL fetch failure")

    monkeypatch.setattr(vgg19, "_download_keras_vgg19", offline)
    with pytest.raises(WeightsFileError, match="perceptual_weights="):
        ESRGAN()


def test_models_created_outside_the_strategy_scope_are_refused():
    generator = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    strategy = tf.distribute.OneDeviceStrategy("/cpu:0")
    with strategy.scope():
        trainer = PSNRTrainer(generator)
        with pytest.raises(ValueError, match="outside OneDeviceStrategy.scope"):
            trainer.compile()


def assert_same_updates(actual, expected, start, keys):
    """Every weight tensor took the same training update, up to float32 summation order.

    Compared relative to how far the tensor moved: most generator weights move by 1e-7 in
    three steps (0.1-scaled init, 0.2 residual scaling), so an absolute tolerance would hide
    an update that is twice too large. SGD makes the update linear in the gradient, so a loss
    averaged over the wrong batch shows up here.
    """
    big = 0
    for key in keys:
        update = np.abs(expected[key] - start[key]).max()
        big += bool(update > 1e-4)
        np.testing.assert_allclose(actual[key], expected[key], rtol=0, atol=1e-4 * update + 1e-8, err_msg=key)
    assert big >= 20, f"only {big} weight tensors moved by more than 1e-4: the test shows nothing"


def test_one_replica_and_two_mirrored_replicas_agree(tmp_path):
    run(["replicas", str(tmp_path / "out.npz")])
    r = np.load(tmp_path / "out.npz")
    assert int(r["one:replicas"]) == 1 and int(r["two:replicas"]) == 2
    keys = sorted(k[4:] for k in r.files if k.startswith("one:") and "/" in k)
    assert len(keys) > 50
    view = {prefix: {k: r[f"{prefix}:{k}"] for k in keys} for prefix in ("one", "two", "start")}
    assert_same_updates(view["two"], view["one"], view["start"], keys)
    np.testing.assert_allclose(r["two:g_loss"], r["one:g_loss"], rtol=1e-5)
    assert int(r["two:iterations"]) == worker.STEPS


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def run_two_workers(tmp_path, mode, *args):
    """`python -m tests.training_worker MODE OUT ARGS` as the two workers of one
    MultiWorkerMirroredStrategy cluster on localhost; returns their two outputs, loaded."""
    cluster = {"worker": [f"127.0.0.1:{p}" for p in _free_ports(2)]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tests.training_worker", mode, str(tmp_path / f"w{index}.npz"), *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        ))
    try:
        outputs = [p.communicate(timeout=300)[0] for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-5000:]
    return np.load(tmp_path / "w0.npz"), np.load(tmp_path / "w1.npz")


def test_multi_worker_mirrored_two_processes(tmp_path):
    w0, w1 = run_two_workers(tmp_path, "multiworker", str(tmp_path / "ckpt"))
    assert int(w0["replicas"]) == 2 and int(w0["iterations"]) == worker.STEPS
    keys = [k for k in w0.files if "/" in k]
    for key in keys:
        np.testing.assert_array_equal(w0[key], w1[key], err_msg=key)
    # Only the chief's checkpoint remains (the other worker's scratch copy is deleted).
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "checkpoint", "ckpt-3.data-00000-of-00001", "ckpt-3.index"]
    # Each worker holds half of every global batch; with global-batch losses the result is the
    # single-process one.
    lr, hr = worker.data()
    single = worker.build(optimizer_kind="sgd")
    start = worker.weights_of(single)
    single.fit(worker.dataset(lr, hr).repeat(), steps_per_epoch=worker.STEPS, epochs=1, verbose=0, shuffle=False)
    assert_same_updates(w0, worker.weights_of(single), start, keys)


def test_sigkill_mid_run_then_resume(tmp_path):
    ckpt, progress = tmp_path / "ckpt", tmp_path / "progress"
    args = ["resume", str(ckpt), str(tmp_path / "out.npz"), "--epochs", "3", "--steps-per-epoch", "4",
            "--save-freq", "2"]
    victim = subprocess.Popen(
        [sys.executable, "-m", "tests.training_worker", *args, "--progress", str(progress), "--step-delay", "0.4"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.time() + 240
    step = 0
    while time.time() < deadline and victim.poll() is None:
        try:
            step = int(progress.read_text())
        except (FileNotFoundError, ValueError):
            pass
        if step >= 5:
            break
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    out = victim.communicate()[0]
    assert victim.returncode == -signal.SIGKILL, out[-5000:]
    assert 5 <= step < 12, out[-3000:]
    latest = tf.train.latest_checkpoint(str(ckpt))
    saved_step = int(latest.rsplit("-", 1)[1])
    assert saved_step in (4, 6) and saved_step <= step
    # The generator optimizer's variables as saved, by position in `optimizer.variables`.
    reader = tf.train.load_checkpoint(latest)
    saved_slots = {
        int(name.split("/")[1]): reader.get_tensor(name)
        for name, _ in tf.train.list_variables(latest)
        if name.startswith("optimizer/")
    }

    proc = run(args)
    assert f"resumed from {latest} at step {saved_step}" in proc.stdout
    begin = np.load(str(tmp_path / "out.npz") + ".begin.npz")
    assert int(begin["step"]) == saved_step
    assert set(saved_slots) == set(range(len(begin.files) - 1))
    for i, value in saved_slots.items():
        np.testing.assert_array_equal(begin[f"arr_{i}"], value)
    assert int(begin["arr_0"]) == saved_step  # Adam's own iteration counter
    assert np.abs(begin["arr_2"]).max() > 0  # a first-moment slot, not a fresh zero

    resumed = np.load(tmp_path / "out.npz")
    assert int(resumed["iterations"]) == 12 and int(resumed["optimizer_iterations"]) == 12
    assert tf.train.latest_checkpoint(str(ckpt)).endswith("ckpt-12")
    # An uninterrupted run on the same (constant) batch ends with the same weights: the state
    # restored is the whole state.
    model = worker.build()
    lr, hr = worker.data(n=worker.GLOBAL_BATCH)
    model.fit(worker.dataset(lr, hr).repeat(), epochs=3, steps_per_epoch=4, verbose=0, shuffle=False)
    reference = worker.weights_of(model)
    for key, value in reference.items():
        np.testing.assert_allclose(resumed[key], value, rtol=1e-5, atol=1e-6, err_msg=key)


def test_resume_from_epoch_checkpoint_in_process(tmp_path):
    """save_freq="epoch": a second fit resumes after the saved epochs; a damaged newest
    checkpoint falls back to the previous one; a finished run does not train again."""
    lr, hr = worker.data(n=4)
    ds = worker.dataset(lr, hr).repeat()
    fit = dict(steps_per_epoch=2, verbose=0, shuffle=False)
    model = worker.build()
    model.fit(ds, epochs=2, **fit, callbacks=[TrainingCheckpoint(tmp_path, verbose=0)])
    assert sorted(p.name for p in tmp_path.glob("*.index")) == ["ckpt-2.index", "ckpt-4.index"]
    for data_file in tmp_path.glob("ckpt-4.data-*"):
        data_file.write_bytes(b"")
    fresh = worker.build()
    history = fresh.fit(ds, epochs=3, **fit, callbacks=[TrainingCheckpoint(tmp_path, verbose=0)])
    assert len(history.history["g_loss"]) == 2  # resumed at step 2 (epoch 1), ran epochs 1 and 2
    assert int(fresh.iterations.numpy()) == 6
    again = worker.build()
    history = again.fit(ds, epochs=3, **fit, callbacks=[TrainingCheckpoint(tmp_path, verbose=0)])
    assert history.history == {} and int(again.iterations.numpy()) == 6
    for a, b in zip(again.generator.weights, fresh.generator.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
