"""Training callbacks: validation PSNR/SSIM, TensorBoard scalars and LR | SR | HR image grids
(of validation crops, `ImageGridCallback`, and of training batches, `TrainingBatchGrid`).

All of them work with `PSNRTrainer` and `ESRGAN` (they read the EMA generator, which is what
gets saved) and write TensorBoard events at the trainer's global step (`model.iterations`), so
curves continue where they stopped when a run resumes from a `TrainingCheckpoint`. Keras' own
`TensorBoard` callback counts batches from 0 at every `fit`, which would draw a resumed run
over the start of the old one.

Summaries are written with `tf.summary.write` and the scalar/image plugin metadata TensorBoard
reads, which is all `tf.summary.scalar` / `tf.summary.image` do, but those two live in the
`tensorboard` package, which TensorFlow 2.21 no longer installs. Training therefore needs no
`tensorboard`; only viewing the logs does (`pip install tensorboard`).

Validation scores with `keras_esrgan.validation.validate`, the protocol `evaluate` and the
recipe's report use too (the papers': uint8 output, `scale` pixels cropped from each border, PSNR
and SSIM on the BT.601 Y channel, averaged over the images).
"""

import keras
import numpy as np
import tensorflow as tf

from tensorflow.core.framework import summary_pb2

from keras_esrgan.pixels import quantize
from keras_esrgan.validation import bicubic_upscale, generator_upscale, validate, validation_images


def _plugin_metadata(plugin, data_class):
    # TensorBoard's scalar and image plugins, version 0 (their content protos serialise to b"").
    return summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin, content=b""),
        data_class=data_class,
    )


def write_scalar(name, value, step):
    """A TensorBoard scalar into the default summary writer (`tf.summary.scalar` without the
    `tensorboard` package).

    Example:
    >>> with tf.summary.create_file_writer("logs").as_default():
    ...     bool(write_scalar("psnr_y", 28.4, step=100))
    True
    """
    return tf.summary.write(
        tag=name,
        tensor=tf.constant(float(value), tf.float32),
        step=int(step),
        metadata=_plugin_metadata("scalars", summary_pb2.DATA_CLASS_SCALAR),
    )


def write_images(name, images, step):
    """TensorBoard images (uint8 `(N, H, W, 3)`) into the default summary writer, PNG-encoded
    (`tf.summary.image` without the `tensorboard` package).

    Example:
    >>> grids = np.zeros((2, 96, 292, 3), np.uint8)       # image_grid(...) results, stacked
    >>> with tf.summary.create_file_writer("logs").as_default():
    ...     bool(write_images("lr_sr_hr", grids, step=100))
    True
    """
    images = np.asarray(images, np.uint8)
    if images.ndim != 4 or images.shape[-1] not in (1, 3, 4):
        raise ValueError(f"write_images: need uint8 (N, H, W, C), got shape {images.shape}")
    # The image plugin's layout: [width, height, png_0, png_1, ...] as one string vector.
    encoded = [tf.io.encode_png(image) for image in images]
    tensor = tf.stack([tf.constant(str(images.shape[2])), tf.constant(str(images.shape[1]))] + encoded)
    return tf.summary.write(
        tag=name,
        tensor=tensor,
        step=int(step),
        metadata=_plugin_metadata("images", summary_pb2.DATA_CLASS_BLOB_SEQUENCE),
    )


def _generator_of(model):
    """What a callback evaluates: the trainer's EMA generator, or the model itself."""
    return getattr(model, "ema_generator", model)


def _step(model):
    iterations = getattr(model, "iterations", None)
    if iterations is None and getattr(model, "optimizer", None) is not None:
        iterations = model.optimizer.iterations
    return int(iterations.numpy()) if iterations is not None else 0


def is_chief(model):
    """Whether this process writes files: always, except on non-chief multi-worker workers."""
    try:
        return bool(model.distribute_strategy.extended.should_checkpoint)
    except AttributeError:
        return True


class _EveryNSteps(keras.callbacks.Callback):
    """Runs `self._run()` every `every_n_steps` global steps and at the end of training."""

    def __init__(self, every_n_steps, log_dir):
        super().__init__()
        if not (isinstance(every_n_steps, int) and every_n_steps > 0):
            raise ValueError(
                f"{type(self).__name__}: every_n_steps must be a positive int, got {every_n_steps!r}"
            )
        self.every_n_steps = every_n_steps
        self.log_dir = None if log_dir is None else str(log_dir)
        self._writer = None
        self._last_step = None

    def _summary_writer(self):
        if self.log_dir is None or not is_chief(self.model):
            return None
        if self._writer is None:
            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def _maybe_run(self, logs, force=False):
        step = _step(self.model)
        if step == self._last_step or not (force or step % self.every_n_steps == 0):
            return
        self._last_step = step
        self._run(step, logs)

    def on_train_batch_end(self, batch, logs=None):
        self._maybe_run(logs)

    def on_train_end(self, logs=None):
        self._maybe_run(logs, force=True)
        if self._writer is not None:
            self._writer.flush()

    def _run(self, step, logs):
        raise NotImplementedError


class ValidationCallback(_EveryNSteps):
    """PSNR-Y / SSIM-Y of the EMA generator on a validation set, every N steps.

    Every `every_n_steps` global steps (and at the end of training) the trainer's EMA
    generator upscales each validation image whole; the results are rounded to uint8 and
    compared with the HR images by `keras_esrgan.metrics.psnr` / `ssim` with
    `crop_border=scale` on the Y channel (the papers' protocol). The bicubic baseline on the
    same images is computed once, at the start of training.

    Where the numbers go:
    - into the epoch logs as `val_psnr` / `val_ssim` (the latest values; so into `History`,
      the progress bar and every later callback) when a validation ran during that epoch;
    - into `self.history`: a list of `{"step", "psnr", "ssim"}` dicts;
    - into TensorBoard under `log_dir` (if given) as `psnr_y`, `ssim_y` and, once,
      `bicubic_psnr_y` / `bicubic_ssim_y`, at the global step.

    Args:
        pairs: validation `(lr, hr)` pairs: `validation_pipeline(...)` or anything
            `validation_images` takes. Keep it small (it runs eagerly, one image at a time).
        every_n_steps: int, validation period in global steps.
        crop_border: pixels cropped from each edge; default the generator's `scale`.
        test_y_channel: Y channel (True) or RGB.
        log_dir: TensorBoard folder, or None.
        prefix: key prefix in the logs (`"val_"`).
        verbose: 1 prints the bicubic baseline when training starts.

    Example:
    >>> from keras_esrgan.data import image_folder, validation_pipeline, write_synthetic_folder
    >>> val = ValidationCallback(validation_pipeline(image_folder(write_synthetic_folder("val", 2, 64))),
    ...                          every_n_steps=2, log_dir="runs/x/tensorboard/psnr/validation", verbose=0)
    >>> trainer = keras_esrgan.PSNRTrainer(keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4))
    >>> trainer.compile()
    >>> lr, hr = np.full((2, 8, 8, 3), 0.5, "float32"), np.full((2, 32, 32, 3), 0.5, "float32")
    >>> _ = trainer.fit(lr, hr, batch_size=2, epochs=4, verbose=0, callbacks=[val])
    >>> [record["step"] for record in val.history], {k: round(v, 2) for k, v in val.bicubic.items()}
    ([2, 4], {'psnr': 24.45, 'ssim': 0.65})
    """

    def __init__(
        self,
        pairs,
        every_n_steps,
        crop_border=None,
        test_y_channel=True,
        log_dir=None,
        prefix="val_",
        verbose=1,
    ):
        super().__init__(every_n_steps, log_dir)
        self.images = validation_images(pairs)
        self.crop_border = crop_border
        self.test_y_channel = bool(test_y_channel)
        self.prefix = prefix
        self.verbose = verbose
        self.history = []
        self.bicubic = None
        self._pending = None

    def _scale(self):
        lr, hr = self.images[0]
        return hr.shape[0] // lr.shape[0]

    def _border(self):
        return self._scale() if self.crop_border is None else int(self.crop_border)

    def evaluate(self, generator):
        """`MethodScores` of `generator` (one eager call per image) on this callback's images
        and protocol (`keras_esrgan.validation.validate`)."""
        return self._validate(generator_upscale(generator))

    def _validate(self, upscale):
        return validate(upscale, self.images, self._border(), self.test_y_channel)["model"]

    def on_train_begin(self, logs=None):
        if self.bicubic is None:
            self.bicubic = self._validate(bicubic_upscale(self._scale())).means()
            writer = self._summary_writer()
            if writer is not None:
                with writer.as_default():
                    write_scalar("bicubic_psnr_y", self.bicubic["psnr"], _step(self.model))
                    write_scalar("bicubic_ssim_y", self.bicubic["ssim"], _step(self.model))
            if self.verbose:
                channel = "Y" if self.test_y_channel else "RGB"
                print(
                    f"validation: {len(self.images)} image(s); bicubic PSNR-{channel} "
                    f"{self.bicubic['psnr']:.2f} dB, SSIM-{channel} {self.bicubic['ssim']:.4f}",
                    flush=True,
                )

    def _run(self, step, logs):
        record = dict(step=step, **self.evaluate(_generator_of(self.model)).means())
        self.history.append(record)
        self._pending = record
        writer = self._summary_writer()
        if writer is not None:
            with writer.as_default():
                write_scalar("psnr_y", record["psnr"], step)
                write_scalar("ssim_y", record["ssim"], step)

    def on_epoch_end(self, epoch, logs=None):
        if self._pending is not None and logs is not None:
            logs[f"{self.prefix}psnr"] = self._pending["psnr"]
            logs[f"{self.prefix}ssim"] = self._pending["ssim"]
        self._pending = None


class ScalarSummaries(_EveryNSteps):
    """Every logged training metric and the learning rate(s) as TensorBoard scalars.

    Keras' epoch-averaged metrics are reset each epoch, so the values written are the running
    means since the epoch began, as Keras' `TensorBoard(update_freq=N)` writes them, but at
    the trainer's global step.

    Args:
        log_dir: TensorBoard folder.
        every_n_steps: int.

    Example:
    >>> trainer = keras_esrgan.PSNRTrainer(keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4))
    >>> trainer.compile()
    >>> lr, hr = np.full((2, 8, 8, 3), 0.5, "float32"), np.full((2, 32, 32, 3), 0.5, "float32")
    >>> _ = trainer.fit(lr, hr, batch_size=2, epochs=2, verbose=0,
    ...                 callbacks=[ScalarSummaries("runs/x/tensorboard/psnr/train", 1)])
    >>> import glob; len(glob.glob("runs/x/tensorboard/psnr/train/events.out.tfevents.*"))
    1
    """

    def __init__(self, log_dir, every_n_steps=100):
        super().__init__(every_n_steps, log_dir)

    def _run(self, step, logs):
        writer = self._summary_writer()
        if writer is None or not logs:
            return
        with writer.as_default():
            for name, value in logs.items():
                try:
                    value = float(np.mean(np.asarray(value)))
                except (TypeError, ValueError):
                    continue
                write_scalar(name, value, step)
            for name in ("optimizer", "d_optimizer"):
                opt = getattr(self.model, name, None)
                if opt is not None and hasattr(opt, "learning_rate"):
                    label = "learning_rate" if name == "optimizer" else "d_learning_rate"
                    write_scalar(label, float(np.asarray(opt.learning_rate)), step)


def _center_crop(lr, hr, lr_size):
    h, w = lr.shape[:2]
    s = hr.shape[0] // h
    size_h, size_w = min(h, lr_size), min(w, lr_size)
    top, left = (h - size_h) // 2, (w - size_w) // 2
    return (
        lr[top : top + size_h, left : left + size_w],
        hr[top * s : (top + size_h) * s, left * s : (left + size_w) * s],
    )


def image_grid(lr, sr, hr):
    """One uint8 image `[LR nearest-upsampled | SR | HR]`, side by side with 2-pixel gaps.

    Args:
        lr: uint8 `(h, w, 3)`.
        sr, hr: uint8 `(s*h, s*w, 3)`.

    Returns:
        uint8 `(s*h, 3*s*w + 4, 3)`.

    Example:
    >>> lr, sr, hr = np.zeros((24, 24, 3), np.uint8), np.zeros((96, 96, 3), np.uint8), np.zeros((96, 96, 3), np.uint8)
    >>> image_grid(lr, sr, hr).shape           # x4
    (96, 292, 3)
    """
    scale = hr.shape[0] // lr.shape[0]
    nearest = np.repeat(np.repeat(lr, scale, axis=0), scale, axis=1)
    gap = np.full((hr.shape[0], 2, 3), 255, np.uint8)
    return np.concatenate([nearest, gap, sr, gap, hr], axis=1)


class ImageGridCallback(_EveryNSteps):
    """TensorBoard images `LR (nearest) | SR (EMA generator) | HR` every N steps.

    Fixed validation crops, so successive grids show the same content at the same place and
    the training progress is visible by scrubbing TensorBoard's step slider.

    Args:
        pairs: validation pairs (see `validation_images`); the first `max_images` are used.
        log_dir: TensorBoard folder.
        every_n_steps: int.
        crop: HR side of the central crop shown (a multiple of the scale; smaller images whole).
        max_images: int.
        name: summary tag.

    Example:
    >>> from keras_esrgan.data import image_folder, write_synthetic_folder
    >>> val_pairs = image_folder(write_synthetic_folder("val", 2, 64))
    >>> grids = ImageGridCallback(val_pairs, "runs/x/tensorboard/gan/images", every_n_steps=5000, crop=32)
    >>> grids.grids(keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)).shape             # 2 images: LR nearest | SR | HR, 32 px crops
    (2, 32, 100, 3)
    """

    def __init__(self, pairs, log_dir, every_n_steps, crop=128, max_images=4, name="lr_sr_hr"):
        super().__init__(every_n_steps, log_dir)
        images = validation_images(pairs)[: int(max_images)]
        scale = images[0][1].shape[0] // images[0][0].shape[0]
        if crop % scale:
            raise ValueError(f"ImageGridCallback: crop={crop} must be a multiple of the scale {scale}")
        crops = [_center_crop(lr, hr, crop // scale) for lr, hr in images]
        # One tf.summary.image batch needs one size: the smallest crop of the set.
        h = min(lr.shape[0] for lr, _ in crops)
        w = min(lr.shape[1] for lr, _ in crops)
        self.crops = [(lr[:h, :w], hr[: h * scale, : w * scale]) for lr, hr in crops]
        self.name = name

    def grids(self, generator):
        """uint8 `(N, s*h, 3*s*w + 4, 3)`: the grids for `generator` (what gets logged)."""
        upscale = generator_upscale(generator)
        return np.stack([image_grid(lr, upscale(lr), hr) for lr, hr in self.crops])

    def _run(self, step, logs):
        writer = self._summary_writer()
        if writer is None:
            return
        with writer.as_default():
            write_images(self.name, self.grids(_generator_of(self.model)), step)


class TrainingBatchGrid(_EveryNSteps):
    """TensorBoard images `LR (nearest) | SR (EMA generator) | HR` of training batches, every N steps.

    What the model trains on, shown: with the real-world degradation
    (`keras_esrgan.data.realworld_pipeline`) the LR column is the degraded input (blur, noise,
    JPEG...) beside its HR target. The batches come from `batches`, a second copy of the
    training pipeline (e.g. the same pipeline with a small batch size and another seed): an
    iterator over it is kept, so successive grids show successive batches of that stream, not the
    exact batch the step consumed (Keras does not hand that to callbacks).

    Args:
        batches: a `tf.data.Dataset` (or any iterable) of training batches `(lr, hr)` or
            `(lr, hr, hr_usm)`, float in [0, 1], `hr` `scale` times `lr`; the first
            `max_images` of each batch are shown, with `hr` as the HR column.
        log_dir: TensorBoard folder.
        every_n_steps: int.
        max_images: int.
        name: summary tag.

    Example:
    >>> from keras_esrgan.data import realworld_pipeline
    >>> batches = realworld_pipeline("photo.png", batch_size=2, patch_size=32, crop_pad_size=32, seed=1)
    >>> grid = TrainingBatchGrid(batches, "runs/x/tensorboard/psnr/train", every_n_steps=1000)
    >>> grid.grids(keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4), next(iter(batches))).shape
    (2, 32, 100, 3)
    """

    def __init__(self, batches, log_dir, every_n_steps, max_images=4, name="train_lr_sr_hr"):
        super().__init__(every_n_steps, log_dir)
        if not (isinstance(max_images, int) and max_images > 0):
            raise ValueError(f"TrainingBatchGrid: max_images must be a positive int, got {max_images!r}")
        self.batches = batches
        self.max_images = max_images
        self.name = name
        self._iterator = None

    def grids(self, generator, batch):
        """uint8 `(N, s*h, 3*s*w + 4, 3)`: the grids of one batch for `generator`."""
        if not isinstance(batch, (tuple, list)) or len(batch) not in (2, 3):
            raise ValueError(
                f"TrainingBatchGrid: batches must be (lr, hr) or (lr, hr, hr_usm) tuples, got {type(batch).__name__}"
            )
        lr = np.asarray(batch[0], np.float32)[: self.max_images]
        hr = np.asarray(batch[1], np.float32)[: self.max_images]
        if lr.ndim != 4 or hr.ndim != 4:
            raise ValueError(f"TrainingBatchGrid: need (B, H, W, 3) batches, got lr {lr.shape}, hr {hr.shape}")
        sr = quantize(generator(tf.convert_to_tensor(lr), training=False))
        return np.stack([image_grid(a, b, c) for a, b, c in zip(quantize(lr), sr, quantize(hr))])

    def _run(self, step, logs):
        writer = self._summary_writer()
        if writer is None:
            return
        if self._iterator is None:  # made at the first grid: no pipeline runs before it is needed
            self._iterator = iter(self.batches)
        try:
            batch = next(self._iterator)
        except StopIteration:
            return  # a finite stream ran out: no more grids
        with writer.as_default():
            write_images(self.name, self.grids(_generator_of(self.model), batch), step)
