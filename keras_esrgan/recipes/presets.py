"""Recipe presets: everything a run needs besides paths (model, data, schedules, bookkeeping).

`paper` is ESRGAN as BasicSR trains it; `offline` is a small model with a short schedule on
procedural images that trains end to end in a few minutes on two CPU cores; `realesrgan` is
Real-ESRGAN x4plus (RealESRNet, then the GAN stage, on real-world-degraded inputs); `finetune`
fine-tunes the released Real-ESRGAN x4plus models on a folder of HR images. Every field can be
overridden (`get_preset("paper", batch_size=32)`, or `--batch_size=32` in the recipe script).
"""

import dataclasses
import math
import re

from keras_esrgan.data.pipeline import BATCH_SIZE, PATCH_SIZE
from keras_esrgan.data.realworld import CROP_PAD_SIZE
from keras_esrgan.losses import GAN_TYPES
from keras_esrgan.models.rrdbnet import UNSHUFFLE_FACTORS
from keras_esrgan.perceptual import DEFAULT_LAYER_WEIGHTS, REAL_ESRGAN_LAYER_WEIGHTS, canonical_layer_name
from keras_esrgan.training import (
    EMA_DECAY,
    GAN_LEARNING_RATE,
    GAN_LR_MILESTONES,
    GAN_STEPS,
    GAN_WEIGHT,
    PERCEPTUAL_WEIGHT,
    PIXEL_WEIGHT,
    PSNR_LEARNING_RATE,
    PSNR_LR_MIN,
    PSNR_LR_PERIOD,
    PSNR_STEPS,
    REAL_ESRGAN_GAN_WEIGHT,
    REAL_ESRGAN_PERCEPTUAL_WEIGHT,
    REAL_ESRGAN_PIXEL_WEIGHT,
    gan_learning_rate,
    psnr_learning_rate,
)

STAGES = ("psnr", "gan", "both")
DATA_KINDS = ("synthetic", "div2k", "folder")
STRATEGIES = ("mirrored", "multi_worker", "default")
DEFAULT_STRATEGY = "mirrored"
DISCRIMINATORS = ("vgg", "unet")
EXPORT_MODELS = ("gan", "interp", "psnr")
ARCHITECTURE = ("scale", "num_feat", "num_block", "num_grow_ch")
DEGRADATIONS = ("bicubic", "realesrgan")


def _layers_flag(layer_weights):
    """`{"block5_conv4": 1.0}` -> `"conv5_4:1"`: a `perceptual_layers` value, in BasicSR's names."""
    return ",".join(
        re.sub(r"^block(\d)_conv(\d)$", r"conv\1_\2", layer) + f":{weight:g}"
        for layer, weight in layer_weights.items()
    )


# The presets' values of the papers' hyperparameters, from `keras_esrgan.training`'s constants.
ESRGAN_LAYERS = _layers_flag(DEFAULT_LAYER_WEIGHTS)  # "conv5_4:1"
REAL_ESRGAN_LAYERS = _layers_flag(REAL_ESRGAN_LAYER_WEIGHTS)  # "conv1_2:0.1,...,conv5_4:1"
PSNR_LR_PERIODS = PSNR_STEPS // PSNR_LR_PERIOD  # 4 cosine periods of 250k
GAN_LR_FRACTIONS = tuple(step / GAN_STEPS for step in GAN_LR_MILESTONES)  # 50k/400k ... 300k/400k


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
    (ESRGAN: 50k/100k/200k/300k of 400k). `psnr_lr_periods=0` and `gan_lr_milestones=()` are
    constant learning rates (Real-ESRGAN: its MultiStepLR milestone is the stage's last step).

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
    batch_size: int = _field(BATCH_SIZE, "global batch size (split over replicas)")
    patch_size: int = _field(PATCH_SIZE, "HR training patch side (LR patch = patch_size / scale)")
    psnr_steps: int = _field(PSNR_STEPS, "PSNR-stage iterations")
    gan_steps: int = _field(GAN_STEPS, "GAN-stage iterations")
    psnr_lr: float = _field(PSNR_LEARNING_RATE, "PSNR-stage initial learning rate")
    psnr_lr_periods: int = _field(PSNR_LR_PERIODS, "cosine-annealing restart periods over the PSNR stage")
    psnr_lr_min: float = _field(PSNR_LR_MIN, "PSNR-stage learning rate at the end of each period")
    gan_lr: float = _field(GAN_LEARNING_RATE, "GAN-stage learning rate (both networks), halved at the milestones")
    gan_lr_milestones: tuple = _field(GAN_LR_FRACTIONS, "GAN learning-rate halvings, fractions of gan_steps")
    ema_decay: float = _field(EMA_DECAY, "generator EMA decay")
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
    stage: str = _field("both", "default stage(s): psnr, gan or both (--stage overrides it)")
    degradation: str = _field(
        "bicubic",
        "LR inputs: bicubic (the LR files, or MATLAB bicubic of the HR images) or realesrgan "
        "(Real-ESRGAN's high-order degradation of the HR images, made while training; off with "
        "--lr_dir, which trains on your LR/HR pairs)",
    )
    crop_pad_size: int = _field(
        CROP_PAD_SIZE,
        f"realesrgan degradation: side of the region of each HR image degraded (Real-ESRGAN: {CROP_PAD_SIZE})",
    )
    gt_usm: bool = _field(
        False,
        "USM-sharpen the HR targets: L1 (and the GAN stage's perceptual loss) against the sharpened "
        "image, the discriminator against the plain one (Real-ESRGAN)",
    )
    gan_type: str = _field("relativistic", "GAN loss: relativistic (ESRGAN) or vanilla (Real-ESRGAN)")
    perceptual_layers: str = _field(
        ESRGAN_LAYERS, "VGG19 layers (before ReLU) and weights of the perceptual loss, layer:weight,..."
    )
    perceptual_weight: float = _field(PERCEPTUAL_WEIGHT, "GAN stage: perceptual loss weight")
    gan_weight: float = _field(
        GAN_WEIGHT, f"GAN stage: GAN loss weight (ESRGAN {GAN_WEIGHT:g}, Real-ESRGAN {REAL_ESRGAN_GAN_WEIGHT:g})"
    )
    pixel_weight: float = _field(
        PIXEL_WEIGHT, f"GAN stage: L1 loss weight (ESRGAN {PIXEL_WEIGHT:g}, Real-ESRGAN {REAL_ESRGAN_PIXEL_WEIGHT:g})"
    )
    psnr_init: str = _field(
        "", "PSNR stage: start from this generator (file or model-zoo name) instead of random weights"
    )
    gan_init: str = _field(
        "",
        "GAN stage: start from this generator (file or model-zoo name, e.g. RealESRGAN_x4plus) "
        "instead of the PSNR stage's output (with --stage=gan; as --psnr_generator)",
    )
    discriminator_init: str = _field(
        "",
        "GAN stage: start the U-Net discriminator from this file or model-zoo name (e.g. "
        "RealESRGAN_x4plus_netD) instead of random weights",
    )

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
        need(
            isinstance(self.psnr_lr_periods, int) and self.psnr_lr_periods >= 0,
            f"psnr_lr_periods must be an integer >= 0 (0: constant), got {self.psnr_lr_periods!r}",
        )
        need(self.scale in UNSHUFFLE_FACTORS, f"scale must be 4, 2 or 1 (RRDBNet), got {self.scale!r}")
        need(self.data in DATA_KINDS, f"data must be one of {', '.join(DATA_KINDS)}, got {self.data!r}")
        need(
            self.degradation in DEGRADATIONS,
            f"degradation must be one of {', '.join(DEGRADATIONS)}, got {self.degradation!r}",
        )
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
            # The real-world degradation reflect-pads small images to crop_pad_size.
            self.synthetic_train_size >= self.patch_size or self.degradation == "realesrgan",
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
        need(self.stage in STAGES, f"stage must be one of {', '.join(STAGES)}, got {self.stage!r}")
        if self.degradation == "realesrgan":
            need(
                isinstance(self.crop_pad_size, int)
                and self.crop_pad_size >= self.patch_size
                and self.crop_pad_size % self.scale == 0,
                f"crop_pad_size={self.crop_pad_size!r} must be a multiple of scale={self.scale} and at "
                f"least patch_size={self.patch_size}",
            )
        need(self.gan_type in GAN_TYPES, f"gan_type must be one of {', '.join(GAN_TYPES)}, got {self.gan_type!r}")
        for name in ("perceptual_weight", "gan_weight", "pixel_weight"):
            value = getattr(self, name)
            need(
                isinstance(value, (int, float)) and math.isfinite(value) and value >= 0,
                f"{name} must be >= 0, got {value!r}",
            )
        self.layer_weights()
        for name in ("psnr_init", "gan_init", "discriminator_init"):
            need(isinstance(getattr(self, name), str), f"{name} must be a file or model name, or empty")
        need(
            not self.discriminator_init or self.discriminator == "unet",
            f"discriminator_init={self.discriminator_init!r} is a UNetDiscriminatorSN; it needs "
            f"discriminator='unet', got {self.discriminator!r}",
        )
        return self

    def layer_weights(self):
        """`perceptual_layers` as the dict `PerceptualLoss` takes (`{"conv5_4": 1.0}`)."""
        out = {}
        for item in str(self.perceptual_layers).split(","):
            layer, sep, weight = item.strip().partition(":")
            try:
                value = float(weight) if sep else 1.0
                canonical_layer_name(layer)
            except ValueError:
                raise RecipeError(
                    f"preset {self.name!r}: perceptual_layers={self.perceptual_layers!r} must be "
                    f"layer:weight,... with VGG19 conv layers (conv1_1 ... conv5_4), e.g. {REAL_ESRGAN_LAYERS}"
                ) from None
            if not (math.isfinite(value) and value >= 0) or layer in out:
                raise RecipeError(
                    f"preset {self.name!r}: perceptual_layers: {item.strip()!r} needs a weight >= 0 and a "
                    "layer named once"
                )
            out[layer] = value
        return out

    def architecture(self):
        """The `RRDBNet` arguments of this preset (a dict)."""
        return {name: getattr(self, name) for name in ARCHITECTURE}

    def psnr_schedule(self):
        """The PSNR stage's learning rate: `psnr_lr_periods` cosine periods over `psnr_steps`
        (a constant `psnr_lr` with 0 periods)."""
        if self.psnr_lr_periods == 0:
            return self.psnr_lr
        period = max(1, self.psnr_steps // self.psnr_lr_periods)
        return psnr_learning_rate(self.psnr_lr, period, self.psnr_lr_min)

    def gan_schedule(self):
        """The GAN stage's learning rate: halved at `gan_lr_milestones` fractions of `gan_steps`
        (a constant `gan_lr` without milestones)."""
        if not self.gan_lr_milestones:
            return self.gan_lr
        milestones = sorted({max(1, int(round(f * self.gan_steps))) for f in self.gan_lr_milestones})
        return gan_learning_rate(self.gan_lr, milestones)


# What the realesrgan and finetune presets share: train_realesrgan_x4plus.yml's GAN stage (and
# finetune_realesrgan_x4plus.yml's, which is the same): gt_size 256 from 400 px degraded regions,
# 400k iterations at a constant Adam 1e-4, U-Net SN discriminator, vanilla GAN 0.1 + L1 1 +
# perceptual 1 on five VGG19 layers, USM-sharpened targets.
_REAL_ESRGAN_GAN_STAGE = dict(
    patch_size=256,
    gan_steps=GAN_STEPS,
    gan_lr=GAN_LEARNING_RATE,
    gan_lr_milestones=(),
    discriminator="unet",
    degradation="realesrgan",
    crop_pad_size=CROP_PAD_SIZE,
    gt_usm=True,
    gan_type="vanilla",
    perceptual_layers=REAL_ESRGAN_LAYERS,
    perceptual_weight=REAL_ESRGAN_PERCEPTUAL_WEIGHT,
    gan_weight=REAL_ESRGAN_GAN_WEIGHT,
    pixel_weight=REAL_ESRGAN_PIXEL_WEIGHT,
)

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
    # Real-ESRGAN x4plus (Wang et al. 2021) as its options train it. Stage 1, RealESRNet
    # (train_realesrnet_x4plus.yml): L1 on USM-sharpened targets (gt_usm), 1M iterations,
    # Adam 2e-4 (MultiStepLR at 1M: constant), from ESRGAN_SRx4_DF2KOST_official. Stage 2
    # (train_realesrgan_x4plus.yml): 400k iterations, Adam 1e-4 (constant) for both networks,
    # L1 1.0 and perceptual 1.0 (conv1_2/conv2_2 0.1, conv3_4/conv4_4/conv5_4 1, before ReLU) on
    # the sharpened target, vanilla GAN 0.1 on the plain one, U-Net SN discriminator. Both:
    # batch 48 (12 per GPU x 4) of 256x256 HR patches cropped from 400x400 degraded regions,
    # EMA 0.999, horizontal flips. Real-ESRGAN trains on DF2K+OST (--data=folder --hr_dir=...);
    # the default is DIV2K's HR images. Its configs have no validation; here the validation
    # images are degraded once with a fixed draw, checkpoints every 5000 iterations as there.
    "realesrgan": Preset(
        name="realesrgan",
        description="Real-ESRGAN x4plus: RealESRNet (L1) then GAN stage on Real-ESRGAN-degraded inputs",
        data="div2k",
        batch_size=48,
        psnr_steps=PSNR_STEPS,
        psnr_lr=PSNR_LEARNING_RATE,
        psnr_lr_periods=0,
        psnr_init="ESRGAN_SRx4_DF2KOST_official",
        **_REAL_ESRGAN_GAN_STAGE,
    ),
    # Real-ESRGAN's finetune_realesrgan_x4plus.yml on your HR images (--data=folder --hr_dir
    # --val_dir): the GAN stage of `realesrgan` (same losses, degradation, schedule: 400k
    # iterations at Adam 1e-4) started from the released RealESRGAN_x4plus generator and
    # RealESRGAN_x4plus_netD discriminator, as Real-ESRGAN's Training.md has you download (its
    # yml names RealESRNet_x4plus.pth instead: --gan_init=RealESRNet_x4plus). Batch 12: the
    # yml's per-GPU batch (num_gpu: auto); scale it with your devices. With --lr_dir it is
    # finetune_realesrgan_x4plus_pairdata.yml: your LR/HR pairs, no degradation, the same losses
    # (USM-sharpened targets included).
    "finetune": Preset(
        name="finetune",
        description="fine-tune Real-ESRGAN x4plus (and its discriminator) on a folder of HR images",
        data="folder",
        batch_size=12,
        stage="gan",
        **_REAL_ESRGAN_GAN_STAGE,
        gan_init="RealESRGAN_x4plus",
        discriminator_init="RealESRGAN_x4plus_netD",
    ),
}


def preset_fields():
    """The overridable `Preset` fields (`dataclasses.Field`s), for building command-line flags."""
    return [
        f
        for f in dataclasses.fields(Preset)
        if f.name not in ("name", "description", "data", "gan_lr_milestones", "stage")
    ]


def get_preset(name, **overrides):
    """A validated preset: `PRESETS[name]` with some fields replaced.

    Args:
        name: `"paper"`, `"offline"`, `"realesrgan"` or `"finetune"`.
        **overrides: `Preset` fields, e.g. `psnr_steps=200`; `None` values are ignored.

    Raises:
        RecipeError: unknown preset or field, or a value the recipe cannot use.

    Example:
    >>> preset = get_preset("offline", psnr_steps=300, gan_steps=100)
    >>> preset.psnr_steps, preset.num_block, preset.discriminator
    (300, 2, 'unet')
    >>> get_preset("offline", psnr_steps=250)
    Traceback (most recent call last):
    ...
    keras_esrgan.recipes.presets.RecipeError: preset 'offline': psnr_steps=250 must be a multiple of val_every=100 ...
    """
    if name not in PRESETS:
        raise RecipeError(f"unknown preset {name!r}; there are: {', '.join(PRESETS)}")
    fields = {f.name for f in dataclasses.fields(Preset)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise RecipeError(f"unknown preset field(s) {unknown}")
    overrides = {k: v for k, v in overrides.items() if v is not None}
    return dataclasses.replace(PRESETS[name], **overrides).validate()
