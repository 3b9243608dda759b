"""The two-stage ESRGAN training recipe behind `recipes/train_div2k.py`, as library code.

`train(preset, workdir, ...)` runs ESRGAN as the paper and BasicSR do:
1. PSNR-oriented pretraining (`PSNRTrainer`, L1, Adam 2e-4 with cosine restarts);
2. the GAN stage (`ESRGAN`) initialised from the stage-1 EMA generator;
3. network interpolation (`interpolate`, ESRGAN sec. 3.4) at `alpha`;
4. export of the chosen generator as a TF Serving SavedModel and a TFLite file;
5. validation PSNR-Y / SSIM-Y of every model against bicubic, printed and saved.

Everything goes into one work directory, and running the same call again resumes: each stage
continues from its last complete `TrainingCheckpoint`, finished stages are skipped, and every
artifact is written atomically (a kill never leaves a half-written file under its final name).

    workdir/config.json                    the architecture, checked when resuming
    workdir/data/synthetic/{train,val}/    procedural images (synthetic data only)
    workdir/psnr/ckpt/, workdir/gan/ckpt/  resumable training state
    workdir/psnr/done.json, gan/done.json  a finished stage: its step and validation scores
    workdir/tensorboard/{psnr,gan}/{train,validation}/   scalars, LR | SR | HR image grids
    workdir/artifacts/psnr_ema.keras, gan_ema.keras, interp_alpha0.8.keras
    workdir/artifacts/saved_model/esrgan/1/, esrgan_fp16.tflite (+ esrgan_fp16.json)
    workdir/results.json                   the final validation table and artifact paths

Presets (`PRESETS`, `get_preset`): `paper` is ESRGAN/BasicSR (23 RRDBs, 64 features, batch 16
of 128x128 HR patches, 1M PSNR + 400k GAN iterations, DIV2K); `offline` is a small model with a
short schedule on procedural images that trains end to end in a few minutes on two CPU cores
with nothing downloaded.
"""

import dataclasses
import json
import math
import os
import shutil
import tempfile
import time
import warnings

import keras
import tensorflow as tf
from absl import logging

from keras_esrgan import callbacks as cb
from keras_esrgan.checkpoints import TrainingCheckpoint
from keras_esrgan.data.degrade import matlab_bicubic_resize
from keras_esrgan.models import RRDBNet, UNetDiscriminatorSN, VGGStyleDiscriminator
from keras_esrgan.training import ADAM, ESRGAN, PSNRTrainer, gan_learning_rate, psnr_learning_rate

STAGES = ("psnr", "gan", "both")
DATA_KINDS = ("synthetic", "div2k", "folder")
STRATEGIES = ("mirrored", "multi_worker", "default")
DISCRIMINATORS = ("vgg", "unet")
EXPORT_MODELS = ("gan", "interp", "psnr")
DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
ARCHITECTURE = ("scale", "num_feat", "num_block", "num_grow_ch")


class RecipeError(ValueError):
    """A configuration the recipe cannot run (bad flag values, missing inputs, wrong workdir)."""


def _field(default, help):  # noqa: A002 (the absl flag's help text)
    return dataclasses.field(default=default, metadata={"help": help})


@dataclasses.dataclass(frozen=True)
class Preset:
    """Everything a recipe run needs besides paths: model, data, schedules, bookkeeping.

    Fields are plain values so that each can be overridden (`get_preset(name, field=value)`,
    or `--field=value` on the command line). Learning-rate schedules are given relative to the
    stage length, so a shortened run keeps their shape: `psnr_lr_periods` cosine periods over
    `psnr_steps` (BasicSR: 4 x 250k over 1M) and GAN milestones at fractions of `gan_steps`
    (ESRGAN: 50k/100k/200k/300k of 400k).

    Example:
    >>> get_preset("paper").psnr_steps, get_preset("offline", psnr_steps=200).psnr_steps
    (1000000, 200)
    """

    name: str = _field("custom", "preset name")
    description: str = _field("", "one line")
    scale: int = _field(4, "upscaling factor (4, 2 or 1)")
    num_feat: int = _field(64, "generator trunk channels")
    num_block: int = _field(23, "generator RRDB blocks")
    num_grow_ch: int = _field(32, "generator dense-block growth channels")
    data: str = _field("div2k", "default data source: synthetic, div2k or folder")
    batch_size: int = _field(16, "global batch size (split over replicas)")
    patch_size: int = _field(128, "HR training patch side (LR patch = patch_size / scale)")
    psnr_steps: int = _field(1_000_000, "PSNR-stage iterations")
    gan_steps: int = _field(400_000, "GAN-stage iterations")
    psnr_lr: float = _field(2e-4, "PSNR-stage initial learning rate")
    psnr_lr_periods: int = _field(4, "cosine-annealing restart periods over the PSNR stage")
    psnr_lr_min: float = _field(1e-7, "PSNR-stage learning rate at the end of each period")
    gan_lr: float = _field(1e-4, "GAN-stage learning rate (both networks), halved at the milestones")
    gan_lr_milestones: tuple = _field(
        (0.125, 0.25, 0.5, 0.75), "GAN learning-rate halvings, fractions of gan_steps"
    )
    ema_decay: float = _field(0.999, "generator EMA decay")
    discriminator: str = _field(
        "vgg", "vgg (VGGStyleDiscriminator, 128/256 patches) or unet (UNetDiscriminatorSN)"
    )
    discriminator_feat: int = _field(64, "discriminator base channels")
    perceptual_fallback: bool = _field(
        False, "use a random VGG19 when ImageNet weights are not cached (offline preset only)"
    )
    val_every: int = _field(5000, "validation period in steps (also the Keras epoch length)")
    checkpoint_every: int = _field(5000, "checkpoint period in steps")
    log_every: int = _field(100, "TensorBoard scalar period in steps")
    image_every: int = _field(5000, "TensorBoard LR | SR | HR image-grid period in steps")
    val_images: int = _field(10, "DIV2K validation images used for validation")
    val_center_crop: int = _field(512, "central HR crop of each validation image (0: whole images)")
    synthetic_train: int = _field(32, "synthetic training images")
    synthetic_val: int = _field(4, "synthetic validation images")
    synthetic_train_size: int = _field(192, "synthetic training image side")
    synthetic_val_size: int = _field(128, "synthetic validation image side")
    alpha: float = _field(0.8, "network interpolation weight of the GAN model (ESRGAN sec. 3.4)")
    tflite_quantization: str = _field("fp16", "TFLite export: fp32, fp16, dynamic_int8 or int8")
    seed: int = _field(-1, "random seed (deterministic data order and initialisation); -1: random")

    def validate(self):
        """Raise `RecipeError` naming the first field with an unusable value; returns self."""

        def need(ok, message):
            if not ok:
                raise RecipeError(f"preset {self.name!r}: {message}")

        for name in (
            "num_feat",
            "num_block",
            "num_grow_ch",
            "batch_size",
            "patch_size",
            "psnr_lr_periods",
            "discriminator_feat",
            "val_every",
            "checkpoint_every",
            "log_every",
            "image_every",
            "val_images",
            "synthetic_train",
            "synthetic_val",
            "synthetic_train_size",
            "synthetic_val_size",
        ):
            value = getattr(self, name)
            need(isinstance(value, int) and value >= 1, f"{name} must be a positive integer, got {value!r}")
        for name in ("psnr_steps", "gan_steps"):
            value = getattr(self, name)
            need(
                isinstance(value, int) and value >= 1,
                f"{name} must be a positive integer, got {value!r} (to skip a stage, use --stage)",
            )
            need(
                value % self.val_every == 0,
                f"{name}={value} must be a multiple of val_every={self.val_every} (validation ends "
                f"each Keras epoch of val_every steps)",
            )
        need(self.scale in (1, 2, 4), f"scale must be 4, 2 or 1 (RRDBNet), got {self.scale!r}")
        need(self.data in DATA_KINDS, f"data must be one of {', '.join(DATA_KINDS)}, got {self.data!r}")
        need(
            self.patch_size % self.scale == 0 and self.patch_size // self.scale >= 4,
            f"patch_size={self.patch_size} must be a multiple of scale={self.scale}, at least 4x it",
        )
        need(
            self.discriminator in DISCRIMINATORS,
            f"discriminator must be one of {', '.join(DISCRIMINATORS)}, got {self.discriminator!r}",
        )
        if self.discriminator == "vgg":
            need(
                self.patch_size in (128, 256),
                f"discriminator='vgg' (VGGStyleDiscriminator) takes 128 or 256 HR patches, got "
                f"patch_size={self.patch_size}; use discriminator='unet' for other sizes",
            )
        else:
            need(
                self.patch_size % 8 == 0,
                f"discriminator='unet' needs patch_size a multiple of 8, got {self.patch_size}",
            )
        for name in ("psnr_lr", "psnr_lr_min", "gan_lr"):
            value = getattr(self, name)
            need(
                isinstance(value, (int, float)) and math.isfinite(value) and value > 0,
                f"{name} must be > 0, got {value!r}",
            )
        need(
            self.psnr_lr_min < self.psnr_lr,
            f"psnr_lr_min={self.psnr_lr_min} must be below psnr_lr={self.psnr_lr}",
        )
        need(
            all(0 < f < 1 for f in self.gan_lr_milestones)
            and list(self.gan_lr_milestones) == sorted(self.gan_lr_milestones),
            f"gan_lr_milestones must be increasing fractions in (0, 1), got {self.gan_lr_milestones!r}",
        )
        need(0 <= self.ema_decay < 1, f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        need(0 <= self.alpha <= 1, f"alpha must be in [0, 1], got {self.alpha!r}")
        need(
            self.val_center_crop == 0
            or (self.val_center_crop > 0 and self.val_center_crop % self.scale == 0),
            f"val_center_crop must be 0 or a positive multiple of scale={self.scale}, "
            f"got {self.val_center_crop!r}",
        )
        for name in ("synthetic_train_size", "synthetic_val_size"):
            value = getattr(self, name)
            need(value % self.scale == 0, f"{name}={value} must be a multiple of scale={self.scale}")
        need(
            self.synthetic_train_size >= self.patch_size,
            f"synthetic_train_size={self.synthetic_train_size} must be at least patch_size={self.patch_size}",
        )
        from keras_esrgan.export import QUANTIZATIONS

        need(
            self.tflite_quantization in QUANTIZATIONS,
            f"tflite_quantization must be one of {', '.join(QUANTIZATIONS)}, "
            f"got {self.tflite_quantization!r}",
        )
        need(
            isinstance(self.seed, int) and self.seed >= -1,
            f"seed must be an integer >= -1, got {self.seed!r}",
        )
        return self

    def architecture(self):
        """The `RRDBNet` arguments of this preset (a dict)."""
        return {name: getattr(self, name) for name in ARCHITECTURE}


PRESETS = {
    # ESRGAN (Wang et al. 2018) as BasicSR trains it: train_RRDBNet_PSNR_x4.yml (1M iterations,
    # Adam 2e-4, cosine restarts every 250k to 1e-7) then train_ESRGAN_x4.yml (400k, Adam 1e-4
    # halved at 50k/100k/200k/300k); batch 16 of 128x128 HR patches, EMA 0.999, VGG-style
    # discriminator, validation and checkpoints every 5000 iterations.
    "paper": Preset(
        name="paper",
        description="ESRGAN x4 as published: RRDBNet 23x64, DIV2K, 1M PSNR + 400k GAN iterations",
    ),
    # Small enough for two CPU cores: 2 RRDBs of 32 features (87k parameters instead of 16.7M),
    # 8 patches of 64x64, 1000 + 100 steps (a GAN step costs about 5 PSNR steps: VGG19 to
    # conv5_4 and the discriminator, forward and backward). The higher PSNR learning rate and the short EMA
    # (0.99: a window of about 100 steps; 0.999 would still hold 37% of the random
    # initialisation after 1000 steps) are what let so short a run beat bicubic.
    "offline": Preset(
        name="offline",
        description="smoke-scale ESRGAN on procedural images, no downloads, a few CPU minutes",
        num_feat=32,
        num_block=2,
        num_grow_ch=16,
        data="synthetic",
        batch_size=8,
        patch_size=64,
        psnr_steps=1000,
        gan_steps=100,
        psnr_lr=2e-3,
        psnr_lr_periods=1,
        psnr_lr_min=2e-5,
        ema_decay=0.99,
        discriminator="unet",
        discriminator_feat=32,
        perceptual_fallback=True,
        val_every=100,
        checkpoint_every=100,
        log_every=10,
        image_every=100,
        val_center_crop=0,
    ),
}


def preset_fields():
    """The overridable `Preset` fields (`dataclasses.Field`s), for building command-line flags."""
    return [
        f
        for f in dataclasses.fields(Preset)
        if f.name not in ("name", "description", "data", "gan_lr_milestones")
    ]


def get_preset(name, **overrides):
    """A validated preset: `PRESETS[name]` with some fields replaced.

    Args:
        name: `"paper"` or `"offline"`.
        **overrides: `Preset` fields, e.g. `psnr_steps=200`; `None` values are ignored.

    Raises:
        RecipeError: unknown preset or field, or a value the recipe cannot use.

    Example:
    >>> preset = get_preset("offline", psnr_steps=300, gan_steps=100)
    """
    if name not in PRESETS:
        raise RecipeError(f"unknown preset {name!r}; there are: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(Preset)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise RecipeError(f"unknown preset field(s) {unknown}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(PRESETS[name], **overrides).validate()


# -- environment --------------------------------------------------------------------------------


def make_strategy(name="mirrored"):
    """The `tf.distribute` strategy for `--strategy`.

    Args:
        name: `"mirrored"`: `MirroredStrategy` over all visible GPUs, or, with no GPU, the
            default (single-device) strategy; `"multi_worker"`: `MultiWorkerMirroredStrategy`
            from `TF_CONFIG` (create it before any other TensorFlow work in the process);
            `"default"`: the default strategy.

    Returns:
        a `tf.distribute.Strategy`.

    Example:
    >>> strategy = make_strategy("mirrored")    # no GPU: the default strategy
    """
    if name not in STRATEGIES:
        raise RecipeError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            logging.warning("strategy=multi_worker without TF_CONFIG: this process is the only worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


def describe_strategy(strategy):
    """A short description of a strategy for the logs, e.g. "MirroredStrategy, 2 replicas".

    Example:
    >>> describe_strategy(tf.distribute.get_strategy())
    'default strategy (one device: /CPU:0)'
    """
    replicas = strategy.num_replicas_in_sync
    if type(strategy).__name__ == "_DefaultDistributionStrategy":
        device = "/GPU:0" if tf.config.list_logical_devices("GPU") else "/CPU:0"
        return f"default strategy (one device: {device})"
    return f"{type(strategy).__name__}, {replicas} replica{'s' if replicas != 1 else ''}"


def resolve_dtype_policy(mixed_precision=False):
    """The Keras dtype policy for `--mixed_precision`.

    Args:
        mixed_precision: False/None/"off"/"float32" -> `"float32"`; True/"auto" ->
            `"mixed_float16"` when a GPU is visible (loss-scaled), else `"mixed_bfloat16"`
            (CPUs with AVX-512 BF16/AMX run it about 1.5-2x faster); or an explicit
            `"mixed_bfloat16"` / `"mixed_float16"`.

    Example:
    >>> resolve_dtype_policy(True)     # on a CPU-only machine
    'mixed_bfloat16'
    """
    if mixed_precision in (None, False, "off", "false", "float32"):
        return "float32"
    if mixed_precision in (True, "auto", "true", "on"):
        return "mixed_float16" if tf.config.list_physical_devices("GPU") else "mixed_bfloat16"
    if mixed_precision in DTYPE_POLICIES:
        return mixed_precision
    raise RecipeError(
        f"mixed_precision must be on/off/auto or one of {', '.join(DTYPE_POLICIES)}, got {mixed_precision!r}"
    )


def perceptual_loss(weights=None, fallback=False, dtype=None):
    """The GAN stage's `PerceptualLoss`, with the offline preset's logged fallback.

    Args:
        weights: `None` (the preset's choice: Keras' ImageNet VGG19, from the Keras cache only
            when `fallback`, else from the cache or a download), `"imagenet"` (cache or
            download), `"random"` (a random VGG19, logged), or a path to Keras'
            `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` or torchvision's
            `vgg19-dcbb9e9d.pth`.
        fallback: when `weights` is None and the ImageNet file is not cached, log a warning
            and use a random VGG19 instead of failing (the offline preset; the paper preset
            must not train ESRGAN without its loss).
        dtype: dtype policy of the VGG.

    Returns:
        `(loss, description)`: the `PerceptualLoss` and a short description for the logs.

    Raises:
        WeightsFileError: the weights cannot be had and no fallback applies (in seconds).

    Example:
    >>> loss, what = perceptual_loss(fallback=True)     # nothing cached
    >>> what
    'random VGG19 (fallback: ImageNet weights not cached)'
    """
    from keras_esrgan import perceptual
    from keras_esrgan.perceptual import PerceptualLoss

    def random_vgg(reason):
        with warnings.catch_warnings():  # PerceptualLoss warns about weights=None; we log instead
            warnings.simplefilter("ignore", UserWarning)
            return PerceptualLoss(weights=None, dtype=dtype), f"random VGG19 ({reason})"

    if weights == "random":
        logging.warning(
            "vgg_weights=random: the perceptual loss uses a randomly initialised VGG19, so the GAN "
            "stage is not ESRGAN's (for tests and timing only)"
        )
        return random_vgg("vgg_weights=random")
    if weights is None and fallback:
        cached = os.path.join(perceptual._keras_home(), "models", perceptual.KERAS_VGG19_FILE)
        if os.path.isfile(cached):
            return PerceptualLoss(weights=cached, dtype=dtype), f"ImageNet VGG19 ({cached})"
        logging.warning(
            "VGG19 ImageNet weights for the perceptual loss are not in the Keras cache (%s), and the "
            "offline preset downloads nothing. The GAN stage continues with a RANDOMLY INITIALISED "
            "VGG19 (PerceptualLoss(weights=None)): the run goes through the whole ESRGAN code path, "
            "but its perceptual loss is not ESRGAN's, so the GAN model's textures mean little. For "
            "the real loss pass --vgg_weights=imagenet (downloads 80 MB from %s into the Keras "
            "cache) or --vgg_weights=/path/to/%s (or torchvision's vgg19-dcbb9e9d.pth, as BasicSR).",
            cached,
            perceptual.KERAS_VGG19_URL,
            perceptual.KERAS_VGG19_FILE,
        )
        return random_vgg("fallback: ImageNet weights not cached")
    source = "imagenet" if weights is None else weights
    try:
        loss = PerceptualLoss(weights=source, dtype=dtype)
    except perceptual.WeightsFileError as err:
        raise type(err)(f"{err}\nWith recipes/train_div2k.py: --vgg_weights=/path/to/file.") from None
    return loss, "ImageNet VGG19 (Keras)" if source == "imagenet" else f"VGG19 from {source}"


# -- data ---------------------------------------------------------------------------------------


@dataclasses.dataclass
class RecipeData:
    """Where a run's images come from: sources of `(lr, hr)` pairs and a description."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    description: str
    val_description: str


def prepare_data(
    preset,
    workdir,
    data=None,
    hr_dir=None,
    lr_dir=None,
    val_dir=None,
    val_lr_dir=None,
    data_dir=None,
    manual_dir=None,
    synthetic_dir=None,
):
    """The training and validation sources of a run.

    Args:
        preset: a `Preset` (scale, synthetic sizes, DIV2K validation size).
        workdir: the run's folder (synthetic images go to `workdir/data/synthetic`).
        data: `"synthetic"`, `"div2k"` or `"folder"`; default `preset.data`.
        hr_dir, lr_dir: training folders for `"folder"` (`lr_dir` optional: bicubic from HR).
        val_dir, val_lr_dir: validation folders (HR, optional LR); required for `"folder"`,
            optional otherwise (default: the synthetic validation images / DIV2K validation).
        data_dir, manual_dir: tensorflow-datasets folders for DIV2K (see `div2k`).
        synthetic_dir: where to write synthetic images instead of `workdir/data/synthetic`.

    Returns:
        `RecipeData`.

    Raises:
        RecipeError: inconsistent arguments. DatasetNotFoundError: DIV2K not available
            (offline, within seconds). FileNotFoundError / ValueError: bad folders.
    """
    from keras_esrgan.data import div2k, image_folder
    from keras_esrgan.data.synthetic import synthetic_folders

    data = data or preset.data
    scale = preset.scale
    if data not in DATA_KINDS:
        raise RecipeError(f"data must be one of {', '.join(DATA_KINDS)}, got {data!r}")
    if data != "folder" and (hr_dir or lr_dir):
        raise RecipeError(f"--hr_dir/--lr_dir are for --data=folder, not --data={data}")
    if val_lr_dir and not val_dir:
        raise RecipeError("--val_lr_dir needs --val_dir (the matching HR images)")
    val = val_desc = None
    if val_dir:
        val = image_folder(val_dir, val_lr_dir, scale=scale)
        val_desc = f"{val_dir}" + (f" with LR images from {val_lr_dir}" if val_lr_dir else " (bicubic LR)")
    if data == "synthetic":
        root = synthetic_dir or os.path.join(workdir, "data", "synthetic")
        seed = max(preset.seed, 0)
        train_dir, synthetic_val = synthetic_folders(
            root,
            preset.synthetic_train,
            preset.synthetic_val,
            preset.synthetic_train_size,
            preset.synthetic_val_size,
            seed=seed,
        )
        train = image_folder(train_dir, scale=scale)
        description = (
            f"synthetic: {preset.synthetic_train} procedural {preset.synthetic_train_size}px images "
            f"in {train_dir}"
        )
        if val is None:
            val = image_folder(synthetic_val, scale=scale)
            val_desc = (
                f"{preset.synthetic_val} held-out procedural {preset.synthetic_val_size}px images "
                f"in {synthetic_val}"
            )
    elif data == "folder":
        if not hr_dir:
            raise RecipeError("--data=folder needs --hr_dir (a folder of HR training images)")
        if not val_dir:
            raise RecipeError(
                "--data=folder needs --val_dir (a folder of held-out HR images, e.g. ../shared/data/Set5)"
            )
        train = image_folder(hr_dir, lr_dir, scale=scale)
        description = f"folder: {hr_dir}" + (f" with LR images from {lr_dir}" if lr_dir else " (bicubic LR)")
    else:
        train = div2k("train", scale=scale, data_dir=data_dir, manual_dir=manual_dir)
        description = f"DIV2K train (bicubic x{scale}, tensorflow-datasets)"
        if val is None:
            val = div2k(
                f"validation[:{preset.val_images}]", scale=scale, data_dir=data_dir, manual_dir=manual_dir
            )
            val_desc = f"DIV2K validation, first {preset.val_images} images"
    if preset.val_center_crop:
        val_desc += f", central {preset.val_center_crop}px HR crops"
    return RecipeData(train=train, val=val, description=description, val_description=val_desc)


# -- small helpers ------------------------------------------------------------------------------


def _write_json(path, obj):
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.tmp-", dir=os.path.dirname(os.path.abspath(path))
    )
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(obj, fh, indent=2)
            fh.write("\n")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def checkpoint_step(directory):
    """The training step of the newest checkpoint `TrainingCheckpoint` wrote in `directory`,
    or None when there is none.

    Example:
    >>> checkpoint_step("runs/offline/psnr/ckpt")
    1000
    """
    latest = tf.train.latest_checkpoint(os.fspath(directory)) if os.path.isdir(directory) else None
    if latest is None:
        return None
    try:
        return int(tf.train.load_checkpoint(latest).get_tensor("iterations/.ATTRIBUTES/VARIABLE_VALUE"))
    except (tf.errors.OpError, ValueError, KeyError):
        return None


def _float32_copy(generator):
    from keras_esrgan.export.savedmodel_export import float32_generator

    return float32_generator(generator)


def _format_time(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _check_workdir(workdir, preset, is_chief):
    """Record the architecture in `workdir/config.json`; refuse a workdir of another one."""
    path = os.path.join(workdir, "config.json")
    previous = _read_json(path)
    arch = preset.architecture()
    if previous is not None and previous.get("architecture") not in (None, arch):
        raise RecipeError(
            f"{workdir} holds a run of RRDBNet({previous['architecture']}), this one asks for "
            f"RRDBNet({arch}): use another --workdir, or the same architecture to resume"
        )
    if is_chief:
        _write_json(path, dict(architecture=arch, preset=dataclasses.asdict(preset)))


# -- the stages ---------------------------------------------------------------------------------


def _stage_callbacks(stage, preset, workdir, val_images, verbose):
    board = os.path.join(workdir, "tensorboard", stage)
    smallest = min(min(hr.shape[:2]) for _, hr in val_images)
    validation = cb.ValidationCallback(
        val_images, every_n_steps=preset.val_every, log_dir=os.path.join(board, "validation"), verbose=verbose
    )
    return validation, [
        # Silent: a line per save would break the progress bar; the stage banner says where
        # checkpoints go and which step a run resumes from.
        TrainingCheckpoint(
            os.path.join(workdir, stage, "ckpt"), save_freq=preset.checkpoint_every, verbose=0
        ),
        validation,
        cb.ScalarSummaries(os.path.join(board, "train"), every_n_steps=preset.log_every),
        cb.ImageGridCallback(
            val_images,
            os.path.join(board, "validation"),
            every_n_steps=preset.image_every,
            crop=max(preset.scale, min(128, smallest) // preset.scale * preset.scale),
        ),
    ]


def _fit(trainer, stage, steps, preset, workdir, train_ds, val_images, verbose):
    """Fit `trainer` up to `steps` steps in total, with checkpoints and validation.

    Returns `(step reached, last validation record or None)`.
    """
    validation, callbacks = _stage_callbacks(stage, preset, workdir, val_images, verbose)
    trainer.fit(
        train_ds,
        steps_per_epoch=preset.val_every,
        epochs=steps // preset.val_every,
        callbacks=callbacks,
        verbose=verbose,
        shuffle=False,  # tf.data shuffles
    )
    done = int(trainer.iterations.numpy())
    if done < steps:
        raise RecipeError(
            f"{stage} stage: the training data ran out after {done} of {steps} steps (are all "
            f"images smaller than patch_size={preset.patch_size}?)"
        )
    return done, (validation.history[-1] if validation.history else None)


def _psnr_schedule(preset):
    period = max(1, preset.psnr_steps // preset.psnr_lr_periods)
    return psnr_learning_rate(preset.psnr_lr, period, preset.psnr_lr_min)


def _gan_schedule(preset):
    milestones = sorted({max(1, int(round(f * preset.gan_steps))) for f in preset.gan_lr_milestones})
    return gan_learning_rate(preset.gan_lr, milestones)


def _discriminator(preset, policy):
    if preset.discriminator == "vgg":
        return VGGStyleDiscriminator(
            input_size=preset.patch_size,
            num_feat=preset.discriminator_feat,
            dtype=policy,
            name="discriminator",
        )
    return UNetDiscriminatorSN(num_feat=preset.discriminator_feat, dtype=policy, name="discriminator")


def _file_stamp(path):
    """What identifies a file's version cheaply: path, size, modification time."""
    stat = os.stat(path)
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


def _banner(text):
    print(f"\n== {text}", flush=True)


class _Run:
    """The state of one `train` call: paths, strategy, and the result being assembled."""

    def __init__(self, preset, workdir, strategy, policy, verbose):
        self.preset, self.workdir, self.strategy = preset, workdir, strategy
        self.policy, self.verbose = policy, verbose
        self.chief = bool(strategy.extended.should_checkpoint)
        self.artifacts = os.path.join(workdir, "artifacts")
        # Every worker of a multi-worker run saves (TF's rule), but only the chief into the
        # workdir; the others into a scratch folder, which they also read their copy back from.
        self.own = self.artifacts if self.chief else tempfile.mkdtemp(prefix="keras_esrgan_worker_")
        os.makedirs(self.own, exist_ok=True)
        self.result = dict(
            preset=dataclasses.asdict(preset),
            workdir=workdir,
            dtype_policy=policy,
            strategy=describe_strategy(strategy),
            replicas=strategy.num_replicas_in_sync,
            steps={},
            resumed={},
            artifacts={},
            scores={},
            seconds={},
            perceptual=None,
        )

    def shared(self, name):
        return os.path.join(self.artifacts, name)

    def done(self, stage, steps):
        """The stage's `done.json` if it reached `steps` and its artifact exists (all workers
        read the chief's files, so they agree on what to skip)."""
        record = _read_json(os.path.join(self.workdir, stage, "done.json"))
        if record and record.get("step", -1) >= steps and os.path.isfile(self.shared(f"{stage}_ema.keras")):
            return record
        return None

    def finish_stage(self, stage, trainer, step, last):
        """Save the stage's EMA generator (float32) and mark the stage done; returns its path."""
        from keras_esrgan.weights import save_generator

        path = os.path.join(self.own, f"{stage}_ema.keras")
        save_generator(_float32_copy(trainer.ema_generator), path)
        if self.chief:
            _write_json(os.path.join(self.workdir, stage, "done.json"), dict(step=step, validation=last))
        self.result["steps"][stage] = step
        return path


def _checkpoint_line(run, stage, resumed):
    directory = os.path.join(run.workdir, stage, "ckpt")
    every = run.preset.checkpoint_every
    if resumed:
        print(f"resumed from step {resumed} ({directory}); checkpoints every {every} steps", flush=True)
    else:
        print(f"checkpoints every {every} steps in {directory}", flush=True)


def _psnr_stage(run, train_ds, val_images):
    preset = run.preset
    done = run.done("psnr", preset.psnr_steps)
    if done:
        _banner(f"stage 1 (PSNR): already complete at step {done['step']}; skipped")
        run.result["steps"]["psnr"] = done["step"]
        return run.shared("psnr_ema.keras")
    resumed = checkpoint_step(os.path.join(run.workdir, "psnr", "ckpt"))
    if resumed:
        run.result["resumed"]["psnr"] = resumed
    _banner(
        f"stage 1 (PSNR-oriented, L1): {preset.psnr_steps} steps, batch {preset.batch_size} of "
        f"{preset.patch_size}x{preset.patch_size} HR patches"
    )
    _checkpoint_line(run, "psnr", resumed)
    with run.strategy.scope():
        trainer = PSNRTrainer(RRDBNet(**preset.architecture(), dtype=run.policy), ema_decay=preset.ema_decay)
        trainer.compile(optimizer=keras.optimizers.Adam(_psnr_schedule(preset), **ADAM))
    step, last = _fit(
        trainer, "psnr", preset.psnr_steps, preset, run.workdir, train_ds, val_images, run.verbose
    )
    return run.finish_stage("psnr", trainer, step, last)


def _gan_stage(run, init_path, perceptual, train_ds, val_images, external_init):
    from keras_esrgan.weights import load_generator

    preset = run.preset
    gan_dir = os.path.join(run.workdir, "gan")
    psnr_step = (
        None
        if external_init
        else (_read_json(os.path.join(run.workdir, "psnr", "done.json")) or {}).get("step")
    )
    init_record = _read_json(os.path.join(gan_dir, "init.json"))
    resumed = checkpoint_step(os.path.join(gan_dir, "ckpt"))
    if resumed and init_record and init_record.get("psnr_step") != psnr_step:
        logging.warning(
            "the GAN stage in %s started from the PSNR generator at step %s; the PSNR stage is now "
            "at step %s. The GAN stage keeps its own weights; delete %s and %s to redo it from the "
            "new PSNR generator.",
            gan_dir,
            init_record.get("psnr_step"),
            psnr_step,
            gan_dir,
            run.shared("gan_ema.keras"),
        )
    done = run.done("gan", preset.gan_steps)
    if done:
        _banner(f"stage 2 (GAN): already complete at step {done['step']}; skipped")
        run.result["steps"]["gan"] = done["step"]
        return run.shared("gan_ema.keras")
    if not init_path or not os.path.isfile(init_path):
        raise RecipeError(
            f"the GAN stage starts from the PSNR generator, and {init_path} does not exist: run "
            f"--stage=psnr (or both) first, or pass --psnr_generator=FILE"
        )
    if resumed:
        run.result["resumed"]["gan"] = resumed
    elif run.chief:
        _write_json(os.path.join(gan_dir, "init.json"), dict(psnr_generator=init_path, psnr_step=psnr_step))
    _banner(
        f"stage 2 (GAN: perceptual + 5e-3 RaGAN + 1e-2 L1): {preset.gan_steps} steps from "
        f"{init_path}; {preset.discriminator} discriminator; perceptual loss: {run.result['perceptual']}"
    )
    _checkpoint_line(run, "gan", resumed)
    with run.strategy.scope():
        generator = load_generator(init_path, dtype=run.policy)
        found = {k: generator.config[k] for k in ARCHITECTURE}
        if found != preset.architecture():
            raise RecipeError(
                f"{init_path} is RRDBNet({found}), not the preset's RRDBNet({preset.architecture()}); "
                f"pass the matching --scale/--num_feat/--num_block/--num_grow_ch"
            )
        gan = ESRGAN(
            generator,
            _discriminator(preset, run.policy),
            perceptual_loss=perceptual,
            ema_decay=preset.ema_decay,
        )
        gan.compile(
            g_optimizer=keras.optimizers.Adam(_gan_schedule(preset), **ADAM),
            d_optimizer=keras.optimizers.Adam(_gan_schedule(preset), **ADAM),
        )
    step, last = _fit(gan, "gan", preset.gan_steps, preset, run.workdir, train_ds, val_images, run.verbose)
    return run.finish_stage("gan", gan, step, last)


def _interpolated(run, psnr_path, gan_path):
    """Write (or keep, if its inputs did not change) the interpolated generator; its path."""
    from keras_esrgan.interpolation import interpolate
    from keras_esrgan.weights import save_generator

    alpha = run.preset.alpha
    path = run.shared(f"interp_alpha{alpha:g}.keras")
    stamp_path = run.shared("interp.json")
    stamp = dict(psnr=_file_stamp(psnr_path), gan=_file_stamp(gan_path), alpha=alpha, file=path)
    if _read_json(stamp_path) == stamp and os.path.isfile(path):
        return path
    save_generator(interpolate(psnr_path, gan_path, alpha), path)
    _write_json(stamp_path, stamp)
    return path


def _export(run, name, source, val_images):
    """SavedModel + TFLite of the generator in `source` (skipped when already made from it)."""
    from keras_esrgan.export import saved_model, sidecar_path, tflite
    from keras_esrgan.weights import load_generator

    quant = run.preset.tflite_quantization
    saved_dir = run.shared("saved_model")
    serving = os.path.join(saved_dir, "esrgan", "1")
    tflite_path = run.shared(f"esrgan_{quant}.tflite")
    stamp_path = run.shared("export.json")
    stamp = dict(model=name, source=_file_stamp(source), quantization=quant)
    if _read_json(stamp_path) == stamp and os.path.isdir(serving) and os.path.isfile(tflite_path):
        print(f"\nexport: up to date (from {source})", flush=True)
    else:
        _banner(f"export of the {name} model: SavedModel (TF Serving) and TFLite ({quant})")
        net = load_generator(source)
        serving = saved_model(net, saved_dir, name="esrgan", version=1, overwrite=True)
        representative = [lr for lr, _ in val_images] if quant == "int8" else None
        tflite(net, tflite_path, quantization=quant, representative_images=representative)
        _write_json(stamp_path, stamp)
    return dict(saved_model=serving, tflite=tflite_path, tflite_json=sidecar_path(tflite_path))


def train(
    preset,
    workdir,
    *,
    stage="both",
    data=None,
    hr_dir=None,
    lr_dir=None,
    val_dir=None,
    val_lr_dir=None,
    data_dir=None,
    manual_dir=None,
    strategy=None,
    mixed_precision=False,
    vgg_weights=None,
    psnr_generator=None,
    export=True,
    export_model=None,
    verbose=1,
):
    """Run the ESRGAN recipe in `workdir`: PSNR stage, GAN stage, interpolation, export, scores.

    Running it again with the same `workdir` resumes: an unfinished stage continues from its
    last checkpoint (a larger step count than before continues training), finished stages
    are skipped, and the interpolation and export are redone only when their inputs changed.

    Args:
        preset: a `Preset` (`get_preset("offline")`, `get_preset("paper", batch_size=32)`) or
            a preset name.
        workdir: folder of the run (see the module docstring for its layout).
        stage: `"psnr"`, `"gan"` (starts from `workdir`'s PSNR generator or `psnr_generator`)
            or `"both"`.
        data, hr_dir, lr_dir, val_dir, val_lr_dir, data_dir, manual_dir: see `prepare_data`.
        strategy: a `tf.distribute.Strategy` (default: `make_strategy("mirrored")`).
        mixed_precision: see `resolve_dtype_policy`.
        vgg_weights: see `perceptual_loss` (None: the preset's choice).
        psnr_generator: weights file to start the GAN stage from instead of the PSNR stage's
            output (e.g. BasicSR's `RRDB_PSNR_x4.pth`); it must match the preset's architecture.
        export: write the SavedModel and TFLite artifacts.
        export_model: which generator to export: `"gan"` (default when there is one),
            `"interp"` or `"psnr"`.
        verbose: Keras `fit` verbosity (1: progress bars, 2: one line per epoch, 0: silent).

    Returns:
        dict, also written to `workdir/results.json`: `scores` {"bicubic", "psnr", "gan",
        "interp": {"psnr", "ssim"}} (validation PSNR-Y / SSIM-Y, crop_border = scale),
        `steps` and `resumed` (step resumed from) per stage, `artifacts` {name: path},
        `seconds`, `perceptual` (what the GAN stage's VGG was), `validation`.

    Raises:
        RecipeError: bad arguments, or a workdir holding another architecture. Also what the
        data sources and weights raise (`DatasetNotFoundError`, `WeightsFileError`, ...).

    Example:
    >>> result = train(get_preset("offline"), "runs/offline")
    >>> print(format_summary(result))
    """
    from keras_esrgan.data import training_pipeline, validation_pipeline
    from keras_esrgan.weights import load_generator

    started = time.time()
    if isinstance(preset, str):
        preset = get_preset(preset)
    preset.validate()
    if stage not in STAGES:
        raise RecipeError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    if export_model is not None and export_model not in EXPORT_MODELS:
        raise RecipeError(f"export_model must be one of {', '.join(EXPORT_MODELS)}, got {export_model!r}")
    if stage == "psnr" and export_model in ("gan", "interp"):
        raise RecipeError(f"export_model={export_model} needs the GAN stage (stage=gan or both)")
    if psnr_generator is not None:
        if stage == "psnr":
            raise RecipeError("psnr_generator is where the GAN stage starts; it does nothing with stage=psnr")
        if not os.path.isfile(psnr_generator):
            raise RecipeError(f"psnr_generator not found: {psnr_generator}")
    if vgg_weights not in (None, "imagenet", "random") and not os.path.isfile(vgg_weights):
        raise RecipeError(f"vgg_weights: no such file {vgg_weights} (or use imagenet / random)")
    workdir = os.path.abspath(os.fspath(workdir))
    strategy = strategy or make_strategy("mirrored")
    policy = resolve_dtype_policy(mixed_precision)
    if preset.batch_size % strategy.num_replicas_in_sync:
        raise RecipeError(
            f"batch_size={preset.batch_size} must be divisible by the "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    if preset.seed >= 0:
        keras.utils.set_random_seed(preset.seed)
    os.makedirs(workdir, exist_ok=True)
    run = _Run(preset, workdir, strategy, policy, verbose)
    _check_workdir(workdir, preset, run.chief)
    arch = ", ".join(f"{k}={v}" for k, v in preset.architecture().items())
    _banner(
        f"ESRGAN recipe, preset {preset.name!r}: RRDBNet({arch}), {policy}, {describe_strategy(strategy)}"
    )
    print(f"workdir: {workdir}", flush=True)

    # The perceptual loss first: the paper preset without VGG weights fails here, in seconds,
    # before any data is read or any model built.
    perceptual = None
    if stage in ("gan", "both") and not run.done("gan", preset.gan_steps):
        with strategy.scope():
            perceptual, run.result["perceptual"] = perceptual_loss(
                vgg_weights, preset.perceptual_fallback, policy
            )

    sources = prepare_data(
        preset,
        workdir,
        data,
        hr_dir,
        lr_dir,
        val_dir,
        val_lr_dir,
        data_dir,
        manual_dir,
        synthetic_dir=None if run.chief else os.path.join(run.own, "synthetic"),
    )
    print(f"training data: {sources.description}\nvalidation data: {sources.val_description}", flush=True)
    val_images = cb.validation_images(
        validation_pipeline(sources.val, preset.scale, center_crop=preset.val_center_crop or None)
    )
    seed = preset.seed if preset.seed >= 0 else None
    train_ds = training_pipeline(
        sources.train,
        preset.batch_size,
        preset.patch_size,
        preset.scale,
        deterministic=seed is not None,
        seed=seed,
    )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # The pipeline starts from a list of file names, which tf.data would try to shard by
        # file; each worker instead takes every n-th batch of its own shuffled stream.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds = train_ds.with_options(options)

    models = {}
    if stage in ("psnr", "both"):
        t0 = time.time()
        models["psnr"] = _psnr_stage(run, train_ds, val_images)
        run.result["seconds"]["psnr"] = round(time.time() - t0, 1)
    elif psnr_generator:
        models["psnr"] = psnr_generator
    elif os.path.isfile(run.shared("psnr_ema.keras")):
        models["psnr"] = run.shared("psnr_ema.keras")
    if stage in ("gan", "both"):
        t0 = time.time()
        models["gan"] = _gan_stage(
            run, models.get("psnr"), perceptual, train_ds, val_images, bool(psnr_generator)
        )
        run.result["seconds"]["gan"] = round(time.time() - t0, 1)
    if not run.chief:  # the chief writes the interpolation, the exports and the report
        shutil.rmtree(run.own, ignore_errors=True)
        return run.result

    t0 = time.time()
    if "psnr" in models and "gan" in models:
        models["interp"] = _interpolated(run, models["psnr"], models["gan"])
    run.result["artifacts"].update({f"{name}_keras": path for name, path in models.items()})
    if export:
        name = export_model or ("gan" if "gan" in models else "psnr")
        if name not in models:
            raise RecipeError(f"export_model={name}: there is no {name} model in this run")
        run.result["artifacts"].update(_export(run, name, models[name], val_images))
        run.result["exported"] = name

    # The final table: every model on the same images with the protocol used during training.
    border = preset.scale
    bicubic = cb.validation_scores(lambda lr: matlab_bicubic_resize(lr, preset.scale), val_images, border)
    run.result["scores"]["bicubic"] = dict(psnr=bicubic["psnr"], ssim=bicubic["ssim"])
    for name, path in models.items():
        scores = cb.validation_scores(cb.generator_upscale(load_generator(path)), val_images, border)
        run.result["scores"][name] = dict(psnr=scores["psnr"], ssim=scores["ssim"])
    run.result["validation"] = dict(
        images=len(val_images), description=sources.val_description, crop_border=border, channel="Y"
    )
    run.result["seconds"]["finish"] = round(time.time() - t0, 1)
    run.result["seconds"]["total"] = round(time.time() - started, 1)
    _write_json(os.path.join(workdir, "results.json"), run.result)
    return run.result


def format_summary(result):
    """The end-of-run report for `train`'s result: the validation table and artifact paths.

    Example:
    >>> print(format_summary(train("offline", "runs/offline")))
    """
    preset = result["preset"]
    val = result["validation"]
    steps = ", ".join(f"{stage} stage {step} steps" for stage, step in result["steps"].items())
    lines = [
        "",
        f"== done in {_format_time(result['seconds']['total'])}: preset {preset['name']!r}, {steps}",
        f"validation PSNR-Y / SSIM-Y on {val['images']} image(s), crop_border={val['crop_border']} "
        f"({val['description']}):",
    ]
    labels = dict(
        bicubic="bicubic",
        psnr="PSNR model (EMA)",
        gan="GAN model (EMA)",
        interp=f"interpolated, alpha={preset['alpha']:g}",
    )
    bicubic = result["scores"]["bicubic"]["psnr"]
    for name, scores in result["scores"].items():
        delta = "" if name == "bicubic" else f"  {scores['psnr'] - bicubic:+.2f} dB vs bicubic"
        lines.append(f"  {labels.get(name, name):<26} {scores['psnr']:6.2f} dB  {scores['ssim']:.4f}{delta}")
    if result.get("perceptual"):
        lines.append(f"GAN-stage perceptual loss: {result['perceptual']}")
    lines.append("artifacts:")
    for name, path in result["artifacts"].items():
        lines.append(f"  {name:<12} {path}")
    lines.append(f"TensorBoard: tensorboard --logdir {os.path.join(result['workdir'], 'tensorboard')}")
    lines.append(f"results:     {os.path.join(result['workdir'], 'results.json')}")
    return "\n".join(lines)
