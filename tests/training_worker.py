"""Subprocess side of the distribution and resume tests in tests/test_training.py.

    python -m tests.training_worker replicas OUT.npz     # 1 replica vs MirroredStrategy(2 CPUs)
    python -m tests.training_worker multiworker OUT.npz CKPT_DIR  # one MultiWorkerMirroredStrategy worker
    python -m tests.training_worker resume CKPT_DIR OUT.npz [--progress FILE] [--step-delay S]
    python -m tests.training_worker vgg-mirrored OUT.npz 256 mixed_bfloat16  # VGG-style D, 2 CPUs
    python -m tests.training_worker vgg-multiworker OUT.npz      # the same, one MWMS worker

Logical devices must be configured before TensorFlow initialises, and multi-worker training
needs one process per worker, hence subprocesses. The first three modes train the same tiny
ESRGAN (1 RRDB, 8 features, U-Net discriminator, VGG19 up to block1_conv2 with random weights)
on a fixed batch of 32x32 HR patches, with weights drawn from a fixed seed. The `vgg-` modes run
issue 11's snippet (`ESRGAN(generator=tiny, perceptual_weights=None)` with the default
`VGGStyleDiscriminator(128)`, `fit` in graph mode) and its variants: mixed bf16 and 256x256 HR
patches with `VGGStyleDiscriminator(256)`.
"""

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402

# Failures show up in the test's assertion message: keep the full traceback.
keras.config.disable_traceback_filtering()

GLOBAL_BATCH = 4
HR = 32
STEPS = 3


def data(n=8, seed=7):
    """Fixed (lr, hr) float32 arrays: smooth random HR patches and a box-filtered x4 LR."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((n, HR // 4, HR // 4, 3)).astype(np.float32)
    hr = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    hr = np.clip(hr + 0.1 * rng.standard_normal(hr.shape).astype(np.float32), 0, 1)
    lr = hr.reshape(n, HR // 4, 4, HR // 4, 4, 3).mean(axis=(2, 4))
    return lr, hr


def optimizer(kind):
    """A fresh optimizer: `"adam"` (the trainers' default family) or `"sgd"`.

    The distribution tests use SGD: its update is linear in the gradient, so a loss that is
    averaged over the wrong batch (per replica instead of global) changes the weights. Adam
    would hide that (its step does not depend on the gradient's scale) and, where a gradient is
    near zero (the last discriminator bias, by the symmetry of the relativistic loss), would
    turn float32 summation-order noise into lr-sized differences.
    """
    if kind == "sgd":
        return keras.optimizers.SGD(0.05)
    return keras.optimizers.Adam(1e-3, beta_1=0.9, beta_2=0.99)


def build(seed=0, ema_decay=0.9, optimizer_kind="adam", **compile_kwargs):
    """The tiny ESRGAN, weights from `seed`, compiled with a larger learning rate so steps show."""
    import keras_esrgan
    from keras_esrgan.models import UNetDiscriminatorSN

    keras.utils.set_random_seed(seed)
    generator = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    discriminator = UNetDiscriminatorSN(num_feat=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        perceptual = keras_esrgan.PerceptualLoss({"block1_conv2": 1.0}, weights=None)
    model = keras_esrgan.ESRGAN(
        generator, discriminator, perceptual_loss=perceptual, ema_decay=ema_decay
    )
    model.compile(
        g_optimizer=optimizer(optimizer_kind),
        d_optimizer=optimizer(optimizer_kind),
        **compile_kwargs,
    )
    return model


def weights_of(model):
    out = {}
    for prefix, net in (("g", model.generator), ("d", model.discriminator), ("ema", model.ema_generator)):
        for i, w in enumerate(net.weights):
            out[f"{prefix}/{i:03d}"] = np.asarray(w.numpy())
    out["iterations"] = np.asarray(int(model.iterations.numpy()))
    return out


def dataset(lr, hr):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((lr, hr)).batch(GLOBAL_BATCH)


def replicas(out):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    lr, hr = data()
    results = {}
    for name, strategy in (
        ("one", tf.distribute.OneDeviceStrategy("/cpu:0")),
        ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])),
    ):
        with strategy.scope():
            model = build(optimizer_kind="sgd")
        if name == "one":
            results.update({f"start:{k}": v for k, v in weights_of(model).items()})
        history = model.fit(
            dataset(lr, hr).repeat(), steps_per_epoch=STEPS, epochs=1, verbose=0, shuffle=False
        )
        results.update({f"{name}:{k}": v for k, v in weights_of(model).items()})
        results[f"{name}:replicas"] = np.asarray(strategy.num_replicas_in_sync)
        results[f"{name}:g_loss"] = np.asarray(history.history["g_loss"])
    np.savez(out, **results)


def multiworker(out, directory):
    import tensorflow as tf

    import keras_esrgan

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = build(optimizer_kind="sgd")
    lr, hr = data()
    ds = dataset(lr, hr).repeat()
    ckpt = keras_esrgan.TrainingCheckpoint(directory, verbose=0)
    history = model.fit(ds, steps_per_epoch=STEPS, epochs=1, verbose=0, shuffle=False, callbacks=[ckpt])
    result = weights_of(model)
    result["replicas"] = np.asarray(strategy.num_replicas_in_sync)
    result["g_loss"] = np.asarray(history.history["g_loss"])
    np.savez(out, **result)


def resume(directory, out, epochs, steps_per_epoch, save_freq, progress=None, step_delay=0.0):
    import keras_esrgan

    class Progress(keras.callbacks.Callback):
        """Writes the step after each batch (the parent kills the process on it)."""

        def on_train_begin(self, logs=None):
            self.first_step = int(self.model.iterations.numpy())
            slots = [v.numpy() for v in self.model.optimizer.variables]
            np.savez(out + ".begin.npz", step=self.first_step, *slots)

        def on_train_batch_end(self, batch, logs=None):
            if progress:
                with open(progress + ".tmp", "w") as f:
                    f.write(str(int(self.model.iterations.numpy())))
                os.replace(progress + ".tmp", progress)
            time.sleep(step_delay)

    model = build()
    lr, hr = data(n=GLOBAL_BATCH)
    ckpt = keras_esrgan.TrainingCheckpoint(directory, save_freq=save_freq, verbose=1)
    history = model.fit(
        dataset(lr, hr).repeat(), epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0,
        shuffle=False, callbacks=[ckpt, Progress()],
    )
    result = weights_of(model)
    result["epochs_run"] = np.asarray(len(history.history["g_loss"]))
    result["optimizer_iterations"] = np.asarray(int(model.optimizer.iterations.numpy()))
    np.savez(out, **result)


def snippet_data(size=128, n=8, seed=0):
    """Issue 11's data: random HR patches and their antialiased bicubic x4 LR."""
    import tensorflow as tf

    hr = np.random.default_rng(seed).random((n, size, size, 3), dtype=np.float32)
    lr = tf.image.resize(hr, (size // 4, size // 4), "bicubic", antialias=True).numpy().clip(0, 1)
    return lr, hr


def vgg_style_run(strategy, size, policy, repeat=False, keep_weights=False):
    """Train the issue's snippet (or its 256 px / bf16 variant) under `strategy`.

    Returns arrays: how many trainable tensors of each network moved, out of how many, the
    largest change, whether every weight and logged loss is finite, and the discriminator's
    input size (with `keep_weights`, also every trained weight, flattened).
    """
    import tensorflow as tf

    import keras_esrgan as ke

    keras.config.set_dtype_policy(policy)
    try:
        with strategy.scope(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PerceptualLoss(weights=None) warns
            generator = ke.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
            if (size, policy) == (128, "float32"):  # the snippet, word for word
                model = ke.ESRGAN(generator=generator, perceptual_weights=None)
            else:  # a small VGG-style discriminator and VGG19 keep the variants quick
                model = ke.ESRGAN(
                    generator=generator,
                    discriminator=ke.VGGStyleDiscriminator(size, num_feat=8),
                    perceptual_loss=ke.PerceptualLoss({"block2_conv2": 1.0}, weights=None),
                )
            model.compile()
        lr, hr = snippet_data(size)
        ds = tf.data.Dataset.from_tensor_slices((lr, hr)).batch(4)
        nets = dict(g=model.generator, d=model.discriminator)
        before = {k: [w.numpy().copy() for w in net.trainable_weights] for k, net in nets.items()}
        if repeat:  # every worker takes the same number of steps
            history = model.fit(ds.repeat(), steps_per_epoch=2, epochs=1, verbose=0)
        else:
            history = model.fit(ds, epochs=1, verbose=0)
    finally:
        keras.config.set_dtype_policy("float32")
    out = dict(
        d_input_size=np.asarray(model.discriminator.input_size),
        steps=np.asarray(int(model.iterations.numpy())),
        losses_finite=np.asarray(all(np.all(np.isfinite(v)) for v in history.history.values())),
    )
    for key, net in nets.items():
        after = [w.numpy() for w in net.trainable_weights]
        changes = [np.abs(a.astype(np.float64) - b).max() for a, b in zip(after, before[key])]
        out[f"{key}_moved"] = np.asarray(sum(c > 0 for c in changes))
        out[f"{key}_tensors"] = np.asarray(len(changes))
        out[f"{key}_max_change"] = np.asarray(max(changes))
        out[f"{key}_finite"] = np.asarray(all(np.all(np.isfinite(a)) for a in after))
        if keep_weights:
            out[f"{key}_weights"] = np.concatenate([a.ravel() for a in after])
    return out


def vgg_mirrored(out, size, policy):
    """`vgg_style_run` at `size` and `policy` under a MirroredStrategy over 2 logical CPUs (one
    strategy per process: a second one over the same devices breaks TF's collectives)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    result = vgg_style_run(strategy, size, policy)
    result["replicas"] = np.asarray(strategy.num_replicas_in_sync)
    np.savez(out, **result)


def vgg_multiworker(out):
    """The issue's snippet in one MultiWorkerMirroredStrategy worker (TF_CONFIG from the parent)."""
    import tensorflow as tf

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    result = vgg_style_run(strategy, 128, "float32", repeat=True, keep_weights=True)
    result["replicas"] = np.asarray(strategy.num_replicas_in_sync)
    np.savez(out, **result)


def main(argv=None):
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    sub.add_parser("replicas").add_argument("out")
    p = sub.add_parser("multiworker")
    p.add_argument("out")
    p.add_argument("directory")
    p = sub.add_parser("resume")
    p.add_argument("directory")
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--steps-per-epoch", type=int, default=4)
    p.add_argument("--save-freq", type=int, default=2)
    p.add_argument("--progress")
    p.add_argument("--step-delay", type=float, default=0.0)
    p = sub.add_parser("vgg-mirrored")
    p.add_argument("out")
    p.add_argument("size", type=int)
    p.add_argument("policy")
    sub.add_parser("vgg-multiworker").add_argument("out")
    args = parser.parse_args(argv)
    if args.mode == "replicas":
        replicas(args.out)
    elif args.mode == "vgg-mirrored":
        vgg_mirrored(args.out, args.size, args.policy)
    elif args.mode == "vgg-multiworker":
        vgg_multiworker(args.out)
    elif args.mode == "multiworker":
        multiworker(args.out, args.directory)
    else:
        resume(args.directory, args.out, args.epochs, args.steps_per_epoch, args.save_freq,
               args.progress, args.step_delay)


if __name__ == "__main__":
    sys.exit(main())
