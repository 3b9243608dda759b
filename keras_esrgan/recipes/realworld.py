"""What a recipe run does differently for Real-ESRGAN: data streams, validation pairs, start weights.

The `realesrgan` and `finetune` presets make their LR inputs with Real-ESRGAN's degradation
(`degradation="realesrgan"`, `keras_esrgan.data.realworld_pipeline`) and train on USM-sharpened
targets (`gt_usm`); with `--lr_dir` they train on the given LR/HR pairs instead (Real-ESRGAN's
`finetune_realesrgan_x4plus_pairdata.yml`), still with the sharpened targets. The other presets
go through `training_pipeline` exactly as before.
"""

import os

import tensorflow as tf

from keras_esrgan import validation
from keras_esrgan.recipes.presets import RecipeError

AUTOTUNE = tf.data.AUTOTUNE
GRID_IMAGES = 4  # patches per TensorBoard training grid


def uses_degradation(preset, lr_dir=None):
    """True when the run makes its LR images with Real-ESRGAN's degradation (no `--lr_dir`)."""
    return preset.degradation == "realesrgan" and not lr_dir


def degradation_config(preset):
    """The `DegradationConfig` of a run: Real-ESRGAN's x4plus options, `gt_usm` from the preset."""
    from keras_esrgan.data import DegradationConfig

    return DegradationConfig(gt_usm=preset.gt_usm)


def _with_usm_target(batches):
    from keras_esrgan.data.degradation_ops import usm_sharp

    # Real-ESRGAN's paired path sharpens the cropped GT batch (`feed_data`, `usm_sharpener(gt)`).
    return batches.map(lambda lr, hr: (lr, hr, usm_sharp(hr)), num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def training_batches(preset, source, seed, degraded, batch_size=None, small=False):
    """The stream a stage trains on.

    Args:
        preset: the run's `Preset`.
        source: HR images (when `degraded`) or `(lr, hr)` pairs.
        seed: int, or None for a random stream.
        degraded: Real-ESRGAN's degradation on (`uses_degradation`).
        batch_size: default `preset.batch_size`.
        small: a light copy for looking at (no cache, small shuffle buffer).

    Returns:
        `tf.data.Dataset` of `(lr, hr)` batches, or `(lr, hr, hr_usm)` with `preset.gt_usm`
        (the trainers then take L1 and perceptual against `hr_usm`, the GAN against `hr`).
        Without degradation and `gt_usm` it is `training_pipeline`'s stream unchanged.
    """
    from keras_esrgan.data import realworld_pipeline, training_pipeline

    batch_size = batch_size or preset.batch_size
    light = dict(cache=False, shuffle_buffer=8) if small else {}
    if degraded:
        return realworld_pipeline(
            source, batch_size, preset.patch_size, preset.scale, config=degradation_config(preset),
            crop_pad_size=preset.crop_pad_size, with_usm=preset.gt_usm and not small,
            deterministic=seed is not None, seed=seed, **light,
        )
    batches = training_pipeline(
        source, batch_size, preset.patch_size, preset.scale, deterministic=seed is not None, seed=seed, **light
    )
    return _with_usm_target(batches) if preset.gt_usm and not small else batches


def grid_batches(preset, source, seed, degraded):
    """Batches for `TrainingBatchGrid` (degraded LR | SR | target), or None for bicubic presets.

    A separate small stream of the same pipeline (its own seed), so that looking costs little.
    """
    if not (degraded or preset.gt_usm):
        return None
    return training_batches(
        preset, source, None if seed is None else seed + 1, degraded, batch_size=GRID_IMAGES, small=True
    )


def validation_pairs(preset, source, degraded, seed=None):
    """The run's validation images, uint8 `(lr, hr)` pairs (`keras_esrgan.validation.validation_images`).

    Without degradation: `validation_pipeline` of `source` (bicubic LR, or the LR files). With
    it: each HR image (centre-cropped as the preset says), USM-sharpened when `gt_usm` (the
    training target), and its LR made by Real-ESRGAN's degradation with one fixed draw per
    image: `sample_for(config, seed, index)` with `seed` the preset's, or 0 when the run is
    unseeded, so every run and resume validates on the same pairs.
    """
    from keras_esrgan.data import validation_pipeline
    from keras_esrgan.data.degradation_ops import usm_sharp
    from keras_esrgan.data.realworld import degrade, sample_for

    pairs = validation_pipeline(source, preset.scale, center_crop=preset.val_center_crop or None)
    if not degraded:
        return validation.validation_images(pairs)
    config = degradation_config(preset)
    seed = max(preset.seed, 0) if seed is None else seed
    out = []
    for index, (_, hr) in enumerate(pairs):
        target = hr[0]
        if config.gt_usm:
            target = usm_sharp(target)
        lr = degrade(target, sample_for(config, seed, index), tf.constant([seed, index], tf.int64), preset.scale)
        out.append((lr.numpy(), target.numpy()))
    return validation.validation_images(out)


def weights_file(value, flag):
    """The local path of a start-weights file or model-zoo name (downloaded and verified), or None.

    Raises:
        RecipeError: neither a file nor a registered name (with the close names).
    """
    if not value:
        return None
    from keras_esrgan.pretrained import UnknownModelError, resolve

    try:
        return os.fspath(resolve(value))
    except UnknownModelError as err:
        raise RecipeError(f"--{flag}: {err}") from None


def loss_summary(preset):
    """The GAN stage's loss, for the stage banner."""
    gan = "RaGAN" if preset.gan_type == "relativistic" else "vanilla GAN"
    layers = ", ".join(f"{k} {v:g}" for k, v in preset.layer_weights().items())
    text = (
        f"{preset.perceptual_weight:g} perceptual ({layers}) + {preset.gan_weight:g} {gan} + "
        f"{preset.pixel_weight:g} L1"
    )
    return text + ("; L1 and perceptual on USM-sharpened HR" if preset.gt_usm else "")
