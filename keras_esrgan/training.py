"""Training: `PSNRTrainer` (L1 pretraining) and `ESRGAN` (GAN stage) as Keras models.

Both are `keras.Model`s with a custom `train_step`, so `fit`, `evaluate`, callbacks, `History`
and the progress bar work as usual, under `tf.distribute` strategies and mixed precision. Data:
any `tf.data.Dataset` (or numpy arrays `x=lr, y=hr`) of `(lr, hr)` float32 NHWC in [0, 1],
`hr` `scale` times larger than `lr`.

The two-stage recipe of ESRGAN (and BasicSR's configs):
1. `PSNRTrainer`: L1 only, Adam 2e-4 with cosine annealing restarts (BasicSR
   `train_RRDBNet_PSNR_x4.yml`).
2. `ESRGAN`, initialised from the stage-1 generator (its EMA weights): perceptual + 5e-3 x
   relativistic GAN + 1e-2 x L1, Adam 1e-4 halved at 50k/100k/200k/300k (`train_ESRGAN_x4.yml`).
Then `keras_esrgan.interpolate(psnr, gan, alpha)` blends the two generators.

Real-ESRGAN (Wang et al. 2021) is the same two stages on real-world-degraded inputs
(`keras_esrgan.data.realworld_pipeline`): RealESRNet = `PSNRTrainer` (`train_realesrnet_x4plus.yml`),
then `ESRGAN(gan_type="vanilla")` with the U-Net discriminator (`train_realesrgan_x4plus.yml`):
L1 + perceptual on five VGG layers + 0.1 x vanilla GAN. Its batches may carry a third element,
the USM-sharpened HR image, which the L1 and perceptual losses use as their target while the
discriminator sees the plain HR image (`l1_gt_usm`, `percep_gt_usm`, `gan_gt_usm`).
"""

import keras
import tensorflow as tf

from keras_esrgan._compat import distribute_strategy_of
from keras_esrgan.ema import update_ema
from keras_esrgan.losses import (
    GAN_TYPES,
    PIXEL_CRITERIA,
    average_over_global_batch,
    pixel_loss,
    psnr,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
    vanilla_discriminator_loss,
    vanilla_generator_loss,
)
from keras_esrgan.models.discriminators import VGGStyleDiscriminator
from keras_esrgan.models.generator import SRGenerator
from keras_esrgan.models.rrdbnet import RRDBNet
from keras_esrgan.perceptual import DEFAULT_LAYER_WEIGHTS, REAL_ESRGAN_LAYER_WEIGHTS, PerceptualLoss

# The papers' hyperparameters, named once: the trainers' defaults here, and the values of the
# recipe presets (`keras_esrgan.recipes.presets`).
# ESRGAN section 4.1 / BasicSR train_ESRGAN_x4.yml: L_G = L_percep + lambda * L_G^Ra + eta * L1.
PERCEPTUAL_WEIGHT = 1.0
GAN_WEIGHT = 5e-3
PIXEL_WEIGHT = 1e-2
# Real-ESRGAN train_realesrgan_x4plus.yml: perceptual_weight 1.0, gan_opt loss_weight 0.1,
# pixel_opt loss_weight 1.0.
REAL_ESRGAN_PERCEPTUAL_WEIGHT = 1.0
REAL_ESRGAN_GAN_WEIGHT = 0.1
REAL_ESRGAN_PIXEL_WEIGHT = 1.0
# The loss weights and VGG layers each GAN type's paper trains with: ESRGAN's defaults.
LOSS_DEFAULTS = {
    "relativistic": dict(
        perceptual_weight=PERCEPTUAL_WEIGHT, gan_weight=GAN_WEIGHT, pixel_weight=PIXEL_WEIGHT,
        layer_weights=DEFAULT_LAYER_WEIGHTS,
    ),
    "vanilla": dict(
        perceptual_weight=REAL_ESRGAN_PERCEPTUAL_WEIGHT, gan_weight=REAL_ESRGAN_GAN_WEIGHT,
        pixel_weight=REAL_ESRGAN_PIXEL_WEIGHT, layer_weights=REAL_ESRGAN_LAYER_WEIGHTS,
    ),
}
# BasicSR `ema_decay` in both configs.
EMA_DECAY = 0.999
# Stage lengths (BasicSR `total_iter`): train_RRDBNet_PSNR_x4.yml and train_realesrnet_x4plus.yml
# 1M iterations, train_ESRGAN_x4.yml and train_realesrgan_x4plus.yml 400k.
PSNR_STEPS = 1_000_000
GAN_STEPS = 400_000
# ESRGAN section 4.1: Adam, lr 1e-4 halved at 50k, 100k, 200k, 300k iterations; BasicSR uses
# betas (0.9, 0.99) and PyTorch's epsilon 1e-8.
GAN_LEARNING_RATE = 1e-4
GAN_LR_MILESTONES = (50_000, 100_000, 200_000, 300_000)
# BasicSR train_RRDBNet_PSNR_x4.yml: Adam 2e-4, CosineAnnealingRestartLR with four 250k
# periods, restart weights 1, eta_min 1e-7.
PSNR_LEARNING_RATE = 2e-4
PSNR_LR_PERIOD = 250_000
PSNR_LR_MIN = 1e-7
ADAM = dict(beta_1=0.9, beta_2=0.99, epsilon=1e-8)


def gan_learning_rate(initial=GAN_LEARNING_RATE, milestones=GAN_LR_MILESTONES, factor=0.5):
    """ESRGAN's step schedule: `initial`, multiplied by `factor` after each milestone step.

    Example:
    >>> sched = gan_learning_rate()
    >>> round(float(sched(60_000)), 10)        # halved after 50k steps
    5e-05
    """
    values = [initial * factor**i for i in range(len(milestones) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(list(milestones), values)


def psnr_learning_rate(initial=PSNR_LEARNING_RATE, period=PSNR_LR_PERIOD, minimum=PSNR_LR_MIN):
    """Cosine annealing from `initial` to `minimum` over `period` steps, restarting each period.

    Equal to BasicSR's `CosineAnnealingRestartLR(periods=[period] * k, restart_weights=[1] * k,
    eta_min=minimum)`: lr = minimum + (initial - minimum) * (1 + cos(pi * t / period)) / 2.

    Example:
    >>> sched = psnr_learning_rate()
    >>> round(float(sched(125_000)), 10)       # half way: (2e-4 + 1e-7) / 2
    0.00010005
    """
    return keras.optimizers.schedules.CosineDecayRestarts(
        initial, period, t_mul=1.0, m_mul=1.0, alpha=minimum / initial
    )


def _multi_worker(strategy):
    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) and getattr(
        strategy.extended, "_in_multi_worker_mode", lambda: False
    )()


def _tf_variables(variables):
    return [v.value if isinstance(v, keras.Variable) else v for v in variables]


def _float_weights(model):
    return [w for w in model.weights if "float" in str(w.dtype)]


class _GeneratorTrainer(keras.Model):
    """What both stages share: the generator, its EMA, trackers, data checks, saving."""

    metric_names = ()

    def __init__(self, generator=None, ema_decay=EMA_DECAY, pixel_criterion="l1", **kwargs):
        super().__init__(**kwargs)
        if generator is None:
            generator = RRDBNet()
        if not isinstance(generator, SRGenerator) or not generator.built:
            raise ValueError(
                f"{type(self).__name__}: generator must be a built keras_esrgan SRGenerator (e.g. "
                f"RRDBNet), got {generator!r}"
            )
        if ema_decay is None:
            ema_decay = 0.0
        if not 0.0 <= float(ema_decay) < 1.0:
            raise ValueError(f"{type(self).__name__}: ema_decay must be in [0, 1), got {ema_decay!r}")
        if pixel_criterion not in PIXEL_CRITERIA:
            raise ValueError(
                f"{type(self).__name__}: pixel_criterion must be one of {PIXEL_CRITERIA}, got {pixel_criterion!r}"
            )
        self.generator = generator
        self.ema_decay = float(ema_decay)
        self.pixel_criterion = pixel_criterion
        # BasicSR starts the EMA as a copy of the (pretrained) generator.
        self._ema_generator = generator.clone(name="ema_generator") if self.ema_decay else None
        if self._ema_generator is not None:
            self._ema_generator.trainable = False
        # Counts train steps (not optimizer updates, which mixed_float16 may skip); the
        # checkpoint callback resumes from it.
        self.iterations = self.add_weight(
            shape=(), dtype="int64", initializer="zeros", trainable=False,
            aggregation="only_first_replica", name="iterations",
        )
        self._trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}

    @property
    def ema_generator(self):
        """The generator with EMA weights (the generator itself when `ema_decay` is 0)."""
        return self._ema_generator if self._ema_generator is not None else self.generator

    @property
    def metrics(self):
        return list(self._trackers.values())

    def call(self, inputs, training=False):
        """Super-resolve with the EMA generator (what `predict` uses)."""
        return self.ema_generator(inputs, training=training)

    def save_generator(self, path, ema=True):
        """Save the EMA (default) or raw generator atomically; format from the extension.

        See `keras_esrgan.save_generator` (.keras, .weights.h5, .safetensors).
        """
        from keras_esrgan.weights import save_generator

        save_generator(self.ema_generator if ema else self.generator, path)

    def checkpoint_objects(self):
        """The training state `TrainingCheckpoint` saves (everything but the frozen VGG; it
        adds the step, `iterations`, itself).

        Flat lists of variables, in `weights` / `variables` order: `tf.train.Checkpoint`
        given a Keras 3 model silently skips layers held in Python lists (RRDBNet's `body`),
        because Keras wraps such lists in its own tracking type.
        """
        objects = dict(generator=_tf_variables(self.generator.weights))
        if self._ema_generator is not None:
            objects["ema_generator"] = _tf_variables(self._ema_generator.weights)
        if getattr(self, "optimizer", None) is not None:
            objects["optimizer"] = _tf_variables(self.optimizer.variables)
        return objects

    # -- compile helpers ------------------------------------------------------------------

    def _check_created_in_scope(self, *models):
        strategy = self.distribute_strategy
        if not tf.distribute.has_strategy() and distribute_strategy_of(self) is None:
            return
        for model in models:
            for w in model.weights[:1]:
                if not strategy.extended.variable_created_in_scope(w.value):
                    raise ValueError(
                        f"{type(self).__name__}: {model.name}'s variables were created outside "
                        f"{type(strategy).__name__}.scope(). Create the trainer and every model you "
                        "pass to it inside `with strategy.scope():`."
                    )

    def _prepare_optimizer(self, optimizer, default, model, role):
        opt = default() if optimizer is None else optimizer
        if not isinstance(opt, keras.optimizers.Optimizer):
            raise TypeError(f"{type(self).__name__}.compile: {role} must be a keras optimizer, got {opt!r}")
        inner = opt.inner_optimizer if isinstance(opt, keras.optimizers.LossScaleOptimizer) else opt
        if inner.use_ema:
            raise ValueError(
                f"{type(self).__name__}.compile: {role} has use_ema=True; use the trainer's ema_decay "
                "instead (Keras' optimizer EMA overwrites the live weights at the end of fit)"
            )
        if model.dtype_policy.name == "mixed_float16" and not isinstance(opt, keras.optimizers.LossScaleOptimizer):
            opt = keras.optimizers.LossScaleOptimizer(opt)
        if not opt.built:
            opt.build(model.trainable_variables)
        return opt

    def _compile_common(self, optimizer, kwargs):
        for key in ("loss", "loss_weights", "metrics", "weighted_metrics"):
            if kwargs.get(key) is not None:
                raise ValueError(
                    f"{type(self).__name__}.compile: {key}= is not used; the losses are built in "
                    "(set their weights in the constructor)"
                )
        if kwargs.pop("jit_compile", False) not in (False, "auto"):
            raise ValueError(
                f"{type(self).__name__}.compile: jit_compile must stay off (XLA has no CPU kernel for "
                "the generator's nearest-upsampling gradient, and is slower on CPU anyway)"
            )
        # The generator's optimizer is Keras' `self.optimizer`, so callbacks reading
        # `model.optimizer.iterations` (TensorBoard, schedules) see the real step.
        super().compile(optimizer=optimizer, jit_compile=False, auto_scale_loss=False, **kwargs)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):  # _compat.SYMBOLIC_BUILD_HOOK
        # Keras pulls one batch to build whatever is unbuilt. Here the networks are built in
        # __init__ and the optimizers in compile, and under MultiWorkerMirroredStrategy that
        # pull fails (it reduces a PerReplica batch across workers; keras-team/keras#20329).
        if self.built and self.optimizer is not None and self.optimizer.built:
            return
        super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    # -- step helpers ---------------------------------------------------------------------

    def _split(self, data):
        """`(lr, hr, hr_usm)` float32 from a batch `(lr, hr)` or `(lr, hr, hr_usm)`; `hr_usm`
        is None for two-element batches."""
        lr, hr, hr_usm = keras.utils.unpack_x_y_sample_weight(data)
        if hr is None:
            raise ValueError(
                f"{type(self).__name__} trains on (lr, hr) pairs: give a dataset of (lr, hr) tuples "
                "(or (lr, hr, hr_usm) triples) or x=lr, y=hr arrays"
            )
        named = (("lr", lr), ("hr", hr)) + ((("hr_usm", hr_usm),) if hr_usm is not None else ())
        for name, t in named:
            if not t.dtype.is_floating:
                raise ValueError(
                    f"{type(self).__name__}: {name} must be float in [0, 1], got {t.dtype.name} "
                    "(divide uint8 images by 255)"
                )
            if t.shape.rank != 4:
                raise ValueError(f"{type(self).__name__}: {name} must be (B, H, W, C), got shape {t.shape}")
        if hr_usm is not None:
            message = (
                f"{type(self).__name__}: the third batch element is the USM-sharpened HR image and "
                "must have the shape of hr (these trainers take no sample weights)"
            )
            if not hr_usm.shape.is_compatible_with(hr.shape):
                raise ValueError(f"{message}: hr {hr.shape}, got {hr_usm.shape}")
            if not (hr.shape.is_fully_defined() and hr_usm.shape.is_fully_defined()):
                # A step traced for any size (Keras relaxes shapes on retracing): checked when it runs.
                check = tf.debugging.assert_equal(tf.shape(hr_usm), tf.shape(hr), message=message)
                with tf.control_dependencies([check]):
                    hr_usm = tf.identity(hr_usm)
        scale = getattr(self.generator, "scale", None)
        if scale is not None:
            for axis in (1, 2):
                l, h = lr.shape[axis], hr.shape[axis]
                if l is not None and h is not None and h != l * scale:
                    raise ValueError(
                        f"{type(self).__name__}: hr must be {scale}x the lr size, got lr {lr.shape} "
                        f"and hr {hr.shape}"
                    )
        hr_usm = None if hr_usm is None else tf.cast(hr_usm, tf.float32)
        return tf.cast(lr, tf.float32), tf.cast(hr, tf.float32), hr_usm

    @staticmethod
    def _target(hr, hr_usm, use_usm):
        """The sharpened HR when the batch has one and the loss is set to use it, else `hr`."""
        return hr_usm if use_usm and hr_usm is not None else hr

    def _record(self, **per_sample):
        for name, values in per_sample.items():
            self._trackers[name].update_state(values)
        logs = {name: tracker.result() for name, tracker in self._trackers.items()}
        if _multi_worker(self.distribute_strategy):
            # Keras reduces multi-worker logs with strategy.reduce("MEAN", axis=0), which
            # fails on scalars; the values are synchronised, so a length-1 axis is harmless.
            logs = {name: tf.reshape(value, [1]) for name, value in logs.items()}
        return logs

    def _count_step(self, *losses):
        # After the losses exist: a step stopped by a run-time check (the VGG-style
        # discriminator's patch size on dynamic shapes) must not count, and the counter
        # depends on nothing else in the graph.
        with tf.control_dependencies(losses):
            self.iterations.assign_add(1)

    def _update_ema(self):
        if self._ema_generator is not None:
            update_ema(_float_weights(self._ema_generator), _float_weights(self.generator), self.ema_decay)


class PSNRTrainer(_GeneratorTrainer):
    """Stage 1 of ESRGAN: train the generator with the pixel loss alone (PSNR-oriented).

    Also Real-ESRGAN's first stage (RealESRNet) on `realworld_pipeline` batches.

    Args:
        generator: an `SRGenerator` such as `RRDBNet` (default: the full ESRGAN x4 one),
            mapping `(B, h, w, 3)` to float32 `(B, s*h, s*w, 3)`; its EMA copy is
            `generator.clone()`.
        ema_decay: float in [0, 1); 0.999 as BasicSR. 0 or None disables the EMA.
        pixel_criterion: `"l1"` (ESRGAN) or `"l2"`.
        l1_gt_usm: for batches `(lr, hr, hr_usm)`: the pixel loss's target is `hr_usm` (True,
            Real-ESRGAN's `l1_gt_usm` / RealESRNet's `gt_usm`) or `hr`. Batches `(lr, hr)` always
            use `hr`.

    `compile(optimizer=None, **kwargs)` defaults to Adam(beta_1=0.9, beta_2=0.99) with
    `psnr_learning_rate()` (2e-4, cosine restarts every 250k steps down to 1e-7).
    Metrics: `l_pix` (the loss) and `psnr` (RGB, on the training patches, against the target).

    Example (ESRGAN's stage 1 is `PSNRTrainer(RRDBNet())` for 5000 x 200 steps of 16 patches):
    >>> trainer = PSNRTrainer(RRDBNet(num_feat=8, num_block=1, num_grow_ch=4))
    >>> trainer.compile()
    >>> lr, hr = np.full((4, 8, 8, 3), 0.5, "float32"), np.full((4, 32, 32, 3), 0.5, "float32")
    >>> ds = tf.data.Dataset.from_tensor_slices((lr, hr)).batch(2)     # (lr, hr) float32 pairs
    >>> history = trainer.fit(ds.repeat(), steps_per_epoch=2, epochs=1, verbose=0,
    ...                       callbacks=[keras_esrgan.TrainingCheckpoint("ckpt/psnr", verbose=0)])
    >>> sorted(history.history), int(trainer.iterations.numpy())
    (['l_pix', 'psnr'], 2)
    >>> trainer.save_generator("RRDB_PSNR_x4.keras")  # the EMA weights
    """

    metric_names = ("l_pix", "psnr")

    def __init__(self, generator=None, ema_decay=EMA_DECAY, pixel_criterion="l1", l1_gt_usm=True, **kwargs):
        kwargs.setdefault("name", "psnr_trainer")
        super().__init__(generator, ema_decay=ema_decay, pixel_criterion=pixel_criterion, **kwargs)
        self.l1_gt_usm = bool(l1_gt_usm)
        self.built = True

    def compile(self, optimizer=None, **kwargs):
        """Build the optimizer inside the strategy scope (Adam, cosine restarts by default)."""
        with self.distribute_strategy.scope():
            self._check_created_in_scope(self.generator)
            optimizer = self._prepare_optimizer(
                optimizer,
                lambda: keras.optimizers.Adam(psnr_learning_rate(), **ADAM),
                self.generator,
                "optimizer",
            )
        self._compile_common(optimizer, kwargs)

    def train_step(self, data):
        lr, hr, hr_usm = self._split(data)
        target = self._target(hr, hr_usm, self.l1_gt_usm)
        variables = self.generator.trainable_variables
        with tf.GradientTape() as tape:
            sr = self.generator(lr, training=True)
            l_pix = pixel_loss(sr, target, self.pixel_criterion)
            loss = self.optimizer.scale_loss(average_over_global_batch(l_pix))
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        self._update_ema()
        self._count_step(loss)
        return self._record(l_pix=l_pix, psnr=psnr(sr, target))

    def test_step(self, data):
        lr, hr, hr_usm = self._split(data)
        target = self._target(hr, hr_usm, self.l1_gt_usm)
        sr = self.ema_generator(lr, training=False)
        return self._record(l_pix=pixel_loss(sr, target, self.pixel_criterion), psnr=psnr(sr, target))


class ESRGAN(_GeneratorTrainer):
    """The GAN stage: ESRGAN's (relativistic) or Real-ESRGAN's (vanilla GAN) generator training.

    Each `train_step` on a batch `(lr, hr)` or `(lr, hr, hr_usm)`:
    1. generator step, discriminator frozen: `L_G = perceptual_weight * L_percep +
       gan_weight * L_G + pixel_weight * L1`;
    2. discriminator step: `L_D`.
    `gan_type` picks the GAN losses (`keras_esrgan.losses`) and the default weights:

    | gan_type | GAN losses | perceptual / GAN / L1 weights | VGG19 layers (before ReLU) |
    |---|---|---|---|
    | `"relativistic"` (ESRGAN) | relativistic average | 1, 5e-3, 1e-2 | conv5_4 |
    | `"vanilla"` (Real-ESRGAN) | BCE, real 1 / fake 0 | 1, 0.1, 1 | conv1_2, conv2_2 (0.1 each), conv3_4, conv4_4, conv5_4 (1 each) |

    With per-pixel logits (`UNetDiscriminatorSN`) every loss averages over the pixels, as
    BasicSR's `GANLoss` does. Batches with a third element `hr_usm` (the USM-sharpened HR,
    `realworld_pipeline(with_usm=True)`) give the L1 and perceptual losses that target and the
    discriminator the plain `hr` as the real image, Real-ESRGAN's `l1_gt_usm: True`,
    `percep_gt_usm: True`, `gan_gt_usm: False`; the three flags below change that.

    The discriminator runs once on the real and once on the generated batch per step; both
    gradients come from the same forward passes (the discriminator is not updated between the
    two steps, so this is what BasicSR's separate passes compute). All losses and logits are
    float32; every loss is averaged over the global batch, so the update does not depend on the
    replica count.

    Args:
        generator: `RRDBNet` (default: full ESRGAN x4). Initialise it from the PSNR stage,
            e.g. `load_generator("RRDB_PSNR_x4.keras")` or `psnr_trainer.ema_generator`'s
            saved weights.
        discriminator: any built Keras model returning float32 logits (no sigmoid), per image
            `(B, 1)` or per pixel `(B, H, W, 1)`; default `VGGStyleDiscriminator(128)` (so HR
            patches must be 128x128; pass `UNetDiscriminatorSN` for any multiple of 8, or
            `load_discriminator("RealESRGAN_x4plus_netD")` to fine-tune Real-ESRGAN's).
        perceptual_weights: VGG19 weights for the default perceptual loss: `"imagenet"` (Keras'
            file: cache or download), a path to Keras' `.h5` or torchvision's `vgg19-*.pth`,
            or None (random VGG: tests only).
        perceptual_loss: a `PerceptualLoss` (or any layer `(pred, target) -> (B,)`) to use
            instead; then `perceptual_weights` is ignored and its layers are its own.
        perceptual_weight, gan_weight, pixel_weight: loss weights; None: the `gan_type`'s
            (table above).
        pixel_criterion: `"l1"` or `"l2"`.
        ema_decay: EMA decay of the generator weights (0.999; 0 disables). The EMA generator
            is used by `evaluate`, `predict` and `save_generator`.
        gan_type: `"relativistic"` (default) or `"vanilla"`.
        l1_gt_usm, percep_gt_usm, gan_gt_usm: for `(lr, hr, hr_usm)` batches, whether the
            pixel loss, the perceptual loss and the discriminator's real input use `hr_usm`
            (True, True, False as Real-ESRGAN) or `hr`.

    `compile(g_optimizer=None, d_optimizer=None, **kwargs)`: defaults to two Adam(1e-4,
    beta_1=0.9, beta_2=0.99) with `gan_learning_rate()` (halved at 50k/100k/200k/300k).
    Metrics: `g_loss`, `d_loss`, `l_pix`, `l_percep`, `l_gan` (unweighted), `d_real`, `d_fake`
    (mean logits), `psnr` (RGB, patches, against the pixel loss's target).

    Create it (and the models you pass) inside `strategy.scope()` to distribute it.

    Example (ESRGAN trains 5000 x 80 steps of 16 patches; two steps here):
    >>> gan = ESRGAN(generator=keras_esrgan.load_generator("RRDB_PSNR_x4.pth"),
    ...              perceptual_weights="vgg19-dcbb9e9d.pth")
    >>> gan.compile()
    >>> hr = np.random.default_rng(0).random((4, 128, 128, 3), dtype="float32")   # 128x128 HR
    >>> lr = tf.image.resize(hr, (32, 32), "bicubic", antialias=True).numpy().clip(0, 1)
    >>> ds = tf.data.Dataset.from_tensor_slices((lr, hr)).batch(2)
    >>> history = gan.fit(ds.repeat(), steps_per_epoch=2, epochs=1, verbose=0,
    ...                   callbacks=[keras_esrgan.TrainingCheckpoint("ckpt/gan", verbose=0)])
    >>> sorted(history.history)
    ['d_fake', 'd_loss', 'd_real', 'g_loss', 'l_gan', 'l_percep', 'l_pix', 'psnr']
    >>> gan.save_generator("RRDB_ESRGAN_x4.keras")

    Real-ESRGAN's GAN stage on degraded (lr, hr, hr_usm) batches, with its U-Net discriminator:
    >>> real = ESRGAN(keras_esrgan.load_generator("RealESRGAN_x4plus.pth"),
    ...               keras_esrgan.UNetDiscriminatorSN(num_feat=8), gan_type="vanilla",
    ...               perceptual_weights="vgg19-dcbb9e9d.pth")
    >>> real.gan_weight, real.pixel_weight, sorted(real.perceptual_loss.layer_weights.values())
    (0.1, 1.0, [0.1, 0.1, 1.0, 1.0, 1.0])
    >>> real.compile()
    >>> ds = keras_esrgan.data.realworld_pipeline("photo.png", batch_size=2, patch_size=32,
    ...                                           crop_pad_size=32, with_usm=True)
    >>> sorted(real.fit(ds, steps_per_epoch=1, epochs=1, verbose=0).history)[:3]
    ['d_fake', 'd_loss', 'd_real']
    """

    metric_names = ("g_loss", "d_loss", "l_pix", "l_percep", "l_gan", "d_real", "d_fake", "psnr")

    def __init__(
        self,
        generator=None,
        discriminator=None,
        perceptual_weights="imagenet",
        perceptual_loss=None,
        perceptual_weight=None,
        gan_weight=None,
        pixel_weight=None,
        pixel_criterion="l1",
        ema_decay=EMA_DECAY,
        gan_type="relativistic",
        l1_gt_usm=True,
        percep_gt_usm=True,
        gan_gt_usm=False,
        **kwargs,
    ):
        kwargs.setdefault("name", "esrgan")
        if gan_type not in GAN_TYPES:
            raise ValueError(f"ESRGAN: gan_type must be one of {GAN_TYPES}, got {gan_type!r}")
        defaults = LOSS_DEFAULTS[gan_type]
        # Built first: with weights="imagenet" offline it fails before the big models exist.
        if perceptual_loss is None:
            perceptual_loss = PerceptualLoss(
                defaults["layer_weights"], weights=perceptual_weights, name="perceptual_loss"
            )
        super().__init__(generator, ema_decay=ema_decay, pixel_criterion=pixel_criterion, **kwargs)
        weights = dict(perceptual_weight=perceptual_weight, gan_weight=gan_weight, pixel_weight=pixel_weight)
        for arg, value in weights.items():
            if value is None:
                weights[arg] = value = defaults[arg]
            if not float(value) >= 0.0:
                raise ValueError(f"ESRGAN: {arg} must be >= 0, got {value!r}")
        if discriminator is None:
            discriminator = VGGStyleDiscriminator(input_size=128, name="discriminator")
        if not isinstance(discriminator, keras.Model) or not discriminator.built:
            raise ValueError(f"ESRGAN: discriminator must be a built keras.Model, got {discriminator!r}")
        self.gan_type = gan_type
        self.discriminator = discriminator
        self.perceptual_loss = perceptual_loss
        self.perceptual_loss.trainable = False
        self.perceptual_weight = float(weights["perceptual_weight"])
        self.gan_weight = float(weights["gan_weight"])
        self.pixel_weight = float(weights["pixel_weight"])
        self.l1_gt_usm, self.percep_gt_usm, self.gan_gt_usm = bool(l1_gt_usm), bool(percep_gt_usm), bool(gan_gt_usm)
        self.d_optimizer = None
        self.built = True

    @property
    def g_optimizer(self):
        """The generator's optimizer (Keras' `self.optimizer`)."""
        return self.optimizer

    def compile(self, g_optimizer=None, d_optimizer=None, **kwargs):
        """Build both optimizers inside the strategy scope (ESRGAN's Adam schedule by default)."""
        if g_optimizer is not None and g_optimizer is d_optimizer:
            raise ValueError("ESRGAN.compile: g_optimizer and d_optimizer must be two optimizers")
        default = lambda: keras.optimizers.Adam(gan_learning_rate(), **ADAM)  # noqa: E731
        with self.distribute_strategy.scope():
            self._check_created_in_scope(self.generator, self.discriminator)
            g_optimizer = self._prepare_optimizer(g_optimizer, default, self.generator, "g_optimizer")
            self.d_optimizer = self._prepare_optimizer(d_optimizer, default, self.discriminator, "d_optimizer")
        self._compile_common(g_optimizer, kwargs)

    def checkpoint_objects(self):
        """The generator's state (see `_GeneratorTrainer`) plus the discriminator and its optimizer."""
        objects = super().checkpoint_objects()
        objects["discriminator"] = _tf_variables(self.discriminator.weights)
        if self.d_optimizer is not None:
            objects["d_optimizer"] = _tf_variables(self.d_optimizer.variables)
        return objects

    def _gan_losses(self, sr, pixel_target, percep_target, real_logits, fake_logits):
        l_pix = pixel_loss(sr, pixel_target, self.pixel_criterion)
        l_percep = tf.cast(self.perceptual_loss(sr, percep_target), tf.float32)
        if self.gan_type == "vanilla":
            l_gan = vanilla_generator_loss(fake_logits)
            d_loss = vanilla_discriminator_loss(real_logits, fake_logits)
        else:
            l_gan = relativistic_generator_loss(real_logits, fake_logits)
            d_loss = relativistic_discriminator_loss(real_logits, fake_logits)
        g_loss = self.perceptual_weight * l_percep + self.gan_weight * l_gan + self.pixel_weight * l_pix
        return dict(g_loss=g_loss, d_loss=d_loss, l_pix=l_pix, l_percep=l_percep, l_gan=l_gan)

    def _targets(self, hr, hr_usm):
        """(pixel-loss target, perceptual target, the discriminator's real images)."""
        return tuple(
            self._target(hr, hr_usm, use) for use in (self.l1_gt_usm, self.percep_gt_usm, self.gan_gt_usm)
        )

    def train_step(self, data):
        lr, hr, hr_usm = self._split(data)
        pixel_target, percep_target, real = self._targets(hr, hr_usm)
        g_vars = self.generator.trainable_variables
        d_vars = self.discriminator.trainable_variables
        # Each tape watches one network: the generator's gradient flows through the
        # discriminator without touching its weights (frozen), and the discriminator's loss
        # is not differentiated into the generator (BasicSR's `output.detach()`).
        with tf.GradientTape(watch_accessed_variables=False) as g_tape, tf.GradientTape(
            watch_accessed_variables=False
        ) as d_tape:
            g_tape.watch([v.value for v in g_vars])
            d_tape.watch([v.value for v in d_vars])
            sr = self.generator(lr, training=True)
            real_logits = tf.cast(self.discriminator(real, training=True), tf.float32)
            fake_logits = tf.cast(self.discriminator(sr, training=True), tf.float32)
            losses = self._gan_losses(sr, pixel_target, percep_target, real_logits, fake_logits)
            g_loss = self.optimizer.scale_loss(average_over_global_batch(losses["g_loss"]))
            d_loss = self.d_optimizer.scale_loss(average_over_global_batch(losses["d_loss"]))
        g_grads = g_tape.gradient(g_loss, g_vars)
        d_grads = d_tape.gradient(d_loss, d_vars)
        self.optimizer.apply(g_grads, g_vars)
        self.d_optimizer.apply(d_grads, d_vars)
        self._update_ema()
        self._count_step(g_loss, d_loss)
        return self._record(**losses, **self._monitors(sr, pixel_target, real_logits, fake_logits))

    def test_step(self, data):
        lr, hr, hr_usm = self._split(data)
        pixel_target, percep_target, real = self._targets(hr, hr_usm)
        sr = self.ema_generator(lr, training=False)
        real_logits = tf.cast(self.discriminator(real, training=False), tf.float32)
        fake_logits = tf.cast(self.discriminator(sr, training=False), tf.float32)
        losses = self._gan_losses(sr, pixel_target, percep_target, real_logits, fake_logits)
        return self._record(**losses, **self._monitors(sr, pixel_target, real_logits, fake_logits))

    @staticmethod
    def _monitors(sr, hr, real_logits, fake_logits):
        def per_sample(x):
            return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)

        return dict(d_real=per_sample(real_logits), d_fake=per_sample(fake_logits), psnr=psnr(sr, hr))
