"""`train`: the two-stage recipe run, resumable, in one work directory; `format_summary`."""

import dataclasses
import json
import os
import shutil
import tempfile
import time

import keras
import tensorflow as tf
from absl import logging

from keras_esrgan import callbacks as cb
from keras_esrgan.atomic import write_json
from keras_esrgan.checkpoints import TrainingCheckpoint
from keras_esrgan.models import RRDBNet, UNetDiscriminatorSN, VGGStyleDiscriminator
from keras_esrgan.precision import training_policy
from keras_esrgan.recipes.environment import describe_strategy, make_strategy, perceptual_loss
from keras_esrgan.recipes import realworld as recipe_realworld
from keras_esrgan.recipes.presets import (
    ARCHITECTURE,
    EXPORT_MODELS,
    STAGES,
    RecipeError,
    get_preset,
)
from keras_esrgan.recipes.sources import prepare_data
from keras_esrgan.training import ADAM, ESRGAN, PSNRTrainer
from keras_esrgan.validation import bicubic_upscale, generator_upscale, validate


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
    >>> checkpoint_step("runs/nothing/psnr/ckpt") is None
    True
    >>> trainer = keras_esrgan.PSNRTrainer(keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4))
    >>> trainer.compile()
    >>> lr, hr = np.zeros((2, 8, 8, 3), "float32"), np.zeros((2, 32, 32, 3), "float32")
    >>> _ = trainer.fit(lr, hr, batch_size=2, epochs=3, verbose=0,
    ...                 callbacks=[TrainingCheckpoint("runs/x/psnr/ckpt", verbose=0)])
    >>> checkpoint_step("runs/x/psnr/ckpt")
    3
    """
    from keras_esrgan.checkpoints import checkpoints_on_disk

    # The rule TrainingCheckpoint resumes by: the newest complete, readable ckpt-N on disk,
    # whatever the `checkpoint` state file says (a kill between the data files and that file
    # leaves it one checkpoint behind, or not written at all).
    found = checkpoints_on_disk(os.fspath(directory)) if os.path.isdir(directory) else []
    for _, prefix in reversed(found):
        try:
            return int(tf.train.load_checkpoint(prefix).get_tensor("iterations/.ATTRIBUTES/VARIABLE_VALUE"))
        except (tf.errors.OpError, ValueError, KeyError):
            continue
    return None


def _is_zoo_name(name):
    from keras_esrgan.pretrained import MODELS

    return name in MODELS


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
        write_json(path, dict(architecture=arch, preset=dataclasses.asdict(preset)))


# -- the stages ---------------------------------------------------------------------------------


def _stage_callbacks(stage, preset, workdir, val_images, verbose, grid_batches=None):
    board = os.path.join(workdir, "tensorboard", stage)
    smallest = min(min(hr.shape[:2]) for _, hr in val_images)
    validation = cb.ValidationCallback(
        val_images, every_n_steps=preset.val_every, log_dir=os.path.join(board, "validation"), verbose=verbose
    )
    # Real-ESRGAN presets: the degraded training inputs beside their targets.
    extra = [] if grid_batches is None else [
        cb.TrainingBatchGrid(grid_batches, os.path.join(board, "train"), every_n_steps=preset.image_every)
    ]
    return validation, extra + [
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


def _fit(trainer, stage, steps, preset, workdir, train_ds, val_images, verbose, grid_batches=None):
    """Fit `trainer` up to `steps` steps in total, with checkpoints and validation.

    Returns `(step reached, last validation record or None)`.
    """
    validation, callbacks = _stage_callbacks(stage, preset, workdir, val_images, verbose, grid_batches)
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


def _discriminator(preset, policy, init=None):
    if init:
        from keras_esrgan.weights.discriminator_layout import load_discriminator

        return load_discriminator(init, dtype=policy, name="discriminator")
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
        # Start weights (local files, zoo names resolved) and the training-grid batches.
        self.psnr_init = self.discriminator_init = self.grid_batches = None
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
        """`name` in the workdir's artifacts folder (the chief's copy, which every worker reads)."""
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
        save_generator(trainer.ema_generator.with_policy("float32"), path)
        if self.chief:
            write_json(os.path.join(self.workdir, stage, "done.json"), dict(step=step, validation=last))
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
        if run.psnr_init and not resumed:
            print(f"starting from {run.psnr_init}", flush=True)
        generator = (
            _start_generator(run.psnr_init, preset, run.policy)
            if run.psnr_init
            else RRDBNet(**preset.architecture(), dtype=run.policy)
        )
        trainer = PSNRTrainer(generator, ema_decay=preset.ema_decay)
        trainer.compile(optimizer=keras.optimizers.Adam(preset.psnr_schedule(), **ADAM))
    step, last = _fit(
        trainer, "psnr", preset.psnr_steps, preset, run.workdir, train_ds, val_images, run.verbose,
        run.grid_batches,
    )
    return run.finish_stage("psnr", trainer, step, last)


def _start_generator(path, preset, policy):
    """The generator in `path`, checked to be the preset's architecture."""
    from keras_esrgan.weights import load_generator

    generator = load_generator(path, dtype=policy)
    found = {k: generator.config[k] for k in ARCHITECTURE}
    if found != preset.architecture():
        raise RecipeError(
            f"{path} is RRDBNet({found}), not the preset's RRDBNet({preset.architecture()}); "
            f"pass the matching --scale/--num_feat/--num_block/--num_grow_ch"
        )
    return generator


def _gan_stage(run, init_path, perceptual, train_ds, val_images, external_init):
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
        write_json(os.path.join(gan_dir, "init.json"), dict(psnr_generator=init_path, psnr_step=psnr_step))
    discriminator = f"{preset.discriminator} discriminator" + (
        f" from {run.discriminator_init}" if run.discriminator_init else ""
    )
    _banner(
        f"stage 2 (GAN: {recipe_realworld.loss_summary(preset)}): {preset.gan_steps} steps from "
        f"{init_path}; {discriminator}; perceptual loss: {run.result['perceptual']}"
    )
    _checkpoint_line(run, "gan", resumed)
    with run.strategy.scope():
        gan = ESRGAN(
            _start_generator(init_path, preset, run.policy),
            _discriminator(preset, run.policy, run.discriminator_init),
            perceptual_loss=perceptual,
            ema_decay=preset.ema_decay,
            gan_type=preset.gan_type,
            perceptual_weight=preset.perceptual_weight,
            gan_weight=preset.gan_weight,
            pixel_weight=preset.pixel_weight,
        )
        gan.compile(
            g_optimizer=keras.optimizers.Adam(preset.gan_schedule(), **ADAM),
            d_optimizer=keras.optimizers.Adam(preset.gan_schedule(), **ADAM),
        )
    step, last = _fit(
        gan, "gan", preset.gan_steps, preset, run.workdir, train_ds, val_images, run.verbose, run.grid_batches
    )
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
    write_json(stamp_path, stamp)
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
        write_json(stamp_path, stamp)
    return dict(saved_model=serving, tflite=tflite_path, tflite_json=sidecar_path(tflite_path))


def train(
    preset,
    workdir,
    *,
    stage=None,
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
        stage: `"psnr"`, `"gan"` (starts from `workdir`'s PSNR generator, `psnr_generator` or
            the preset's `gan_init`) or `"both"`; default: the preset's (`finetune`: gan).
        data, hr_dir, lr_dir, val_dir, val_lr_dir, data_dir, manual_dir: see `prepare_data`.
        strategy: a `tf.distribute.Strategy` (default: `make_strategy("mirrored")`).
        mixed_precision: see `keras_esrgan.precision.training_policy` (False/"off", True/
            "auto", "mixed_bfloat16", "mixed_float16").
        vgg_weights: see `perceptual_loss` (None: the preset's choice).
        psnr_generator: weights file (or model-zoo name) to start the GAN stage from instead of
            the PSNR stage's output (e.g. BasicSR's `RRDB_PSNR_x4.pth`), with `stage="gan"`; it
            must match the preset's architecture. Default: the preset's `gan_init`.
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

    Example (`train(get_preset("offline"), "runs/offline")` runs both stages and the export
    in about 2 minutes; here the PSNR stage of a smaller model, in seconds):
    >>> preset = get_preset("offline", num_feat=8, num_block=1, num_grow_ch=4, batch_size=2,
    ...                     patch_size=32, psnr_steps=2, val_every=1, synthetic_train=2,
    ...                     synthetic_val=1, synthetic_train_size=32, synthetic_val_size=32)
    >>> result = train(preset, "runs/offline", stage="psnr", export=False, verbose=0)
    <BLANKLINE>
    == ESRGAN recipe, preset 'offline': RRDBNet(scale=4, num_feat=8, num_block=1, num_grow_ch=4), float32, ...
    ...
    >>> result["steps"], sorted(result["scores"]), sorted(result["artifacts"])
    ({'psnr': 2}, ['bicubic', 'psnr'], ['psnr_keras'])
    """
    from keras_esrgan.weights import load_generator

    started = time.time()
    if isinstance(preset, str):
        preset = get_preset(preset)
    preset.validate()
    stage = preset.stage if stage is None else stage
    if stage not in STAGES:
        raise RecipeError(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
    if export_model is not None and export_model not in EXPORT_MODELS:
        raise RecipeError(f"export_model must be one of {', '.join(EXPORT_MODELS)}, got {export_model!r}")
    if stage == "psnr" and export_model in ("gan", "interp"):
        raise RecipeError(f"export_model={export_model} needs the GAN stage (stage=gan or both)")
    if psnr_generator is not None:
        if stage == "psnr":
            raise RecipeError("psnr_generator is where the GAN stage starts; it does nothing with stage=psnr")
        if not os.path.isfile(psnr_generator) and not _is_zoo_name(psnr_generator):
            raise RecipeError(f"psnr_generator not found: {psnr_generator}")
    if psnr_generator is None and stage == "gan":
        psnr_generator = preset.gan_init or None
    if psnr_generator is not None and stage == "both":
        raise RecipeError(
            f"{psnr_generator} would start the GAN stage, but with stage=both it starts from the PSNR "
            "stage's output: pass stage=gan (--stage=gan) to start from it"
        )
    if vgg_weights not in (None, "imagenet", "random") and not os.path.isfile(vgg_weights):
        raise RecipeError(f"vgg_weights: no such file {vgg_weights} (or use imagenet / random)")
    workdir = os.path.abspath(os.fspath(workdir))
    strategy = strategy or make_strategy("mirrored")
    try:
        policy = training_policy(mixed_precision)
    except ValueError as err:
        raise RecipeError(str(err)) from None
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
    # Start weights before any data is read: a zoo name downloads (or fails offline) here.
    if stage in ("psnr", "both") and not run.done("psnr", preset.psnr_steps):
        run.psnr_init = recipe_realworld.weights_file(preset.psnr_init, "psnr_init")
    if psnr_generator is not None:
        psnr_generator = recipe_realworld.weights_file(psnr_generator, "psnr_generator")
        run.result["gan_start"] = psnr_generator
    if stage in ("gan", "both") and not run.done("gan", preset.gan_steps):
        run.discriminator_init = recipe_realworld.weights_file(preset.discriminator_init, "discriminator_init")
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
                vgg_weights, preset.perceptual_fallback, policy, preset.layer_weights()
            )
    degraded = recipe_realworld.uses_degradation(preset, lr_dir)
    if preset.degradation == "realesrgan" and not degraded:
        print(f"--lr_dir: paired LR/HR training on {lr_dir}; the real-world degradation is off", flush=True)

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
        hr_only=degraded,
    )
    val_degraded = degraded and not val_lr_dir
    if val_degraded:
        sources.val_description = sources.val_description.replace(" (bicubic LR)", "") + (
            f", LR degraded once by Real-ESRGAN's pipeline (seed {max(preset.seed, 0)})"
        )
    print(f"training data: {sources.description}\nvalidation data: {sources.val_description}", flush=True)
    val_images = recipe_realworld.validation_pairs(preset, sources.val, val_degraded)
    seed = preset.seed if preset.seed >= 0 else None
    train_ds = recipe_realworld.training_batches(preset, sources.train, seed, degraded)
    run.grid_batches = recipe_realworld.grid_batches(preset, sources.train, seed, degraded)
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
    methods = dict(bicubic=bicubic_upscale(preset.scale))
    methods.update({name: generator_upscale(load_generator(path)) for name, path in models.items()})
    for name, scores in validate(methods, val_images, border).items():
        run.result["scores"][name] = scores.means()
    run.result["validation"] = dict(
        images=len(val_images), description=sources.val_description, crop_border=border, channel="Y"
    )
    run.result["seconds"]["finish"] = round(time.time() - t0, 1)
    run.result["seconds"]["total"] = round(time.time() - started, 1)
    write_json(os.path.join(workdir, "results.json"), run.result)
    return run.result


def format_summary(result):
    """The end-of-run report for `train`'s result: the validation table and artifact paths.

    Example (`train`'s result, abridged):
    >>> result = dict(
    ...     preset=dict(name="offline", alpha=0.8), workdir="runs/offline", steps=dict(psnr=1000, gan=100),
    ...     validation=dict(images=4, crop_border=4, description="4 held-out procedural images"),
    ...     scores=dict(bicubic=dict(psnr=28.63, ssim=0.8205), gan=dict(psnr=28.90, ssim=0.8235)),
    ...     seconds=dict(total=111), perceptual=None, artifacts=dict(gan_keras="runs/offline/artifacts/gan_ema.keras"))
    >>> print(format_summary(result))
    <BLANKLINE>
    == done in 1m51s: preset 'offline', psnr stage 1000 steps, gan stage 100 steps
    validation PSNR-Y / SSIM-Y on 4 image(s), crop_border=4 (4 held-out procedural images):
      bicubic                     28.63 dB  0.8205
      GAN model (EMA)             28.90 dB  0.8235  +0.27 dB vs bicubic
    artifacts:
      gan_keras    runs/offline/artifacts/gan_ema.keras
    TensorBoard: tensorboard --logdir runs/offline/tensorboard
    results:     runs/offline/results.json
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
    start = result.get("gan_start")
    labels = dict(
        bicubic="bicubic",
        psnr=f"start: {os.path.basename(start)}" if start else "PSNR model (EMA)",
        gan="GAN model (EMA)",
        interp=f"interpolated, alpha={preset['alpha']:g}",
    )
    bicubic = result["scores"]["bicubic"]["psnr"]
    width = max([26] + [len(labels.get(name, name)) for name in result["scores"]])
    for name, scores in result["scores"].items():
        delta = "" if name == "bicubic" else f"  {scores['psnr'] - bicubic:+.2f} dB vs bicubic"
        lines.append(f"  {labels.get(name, name):<{width}} {scores['psnr']:6.2f} dB  {scores['ssim']:.4f}{delta}")
    if result.get("perceptual"):
        lines.append(f"GAN-stage perceptual loss: {result['perceptual']}")
    lines.append("artifacts:")
    for name, path in result["artifacts"].items():
        lines.append(f"  {name:<12} {path}")
    lines.append(f"TensorBoard: tensorboard --logdir {os.path.join(result['workdir'], 'tensorboard')}")
    lines.append(f"results:     {os.path.join(result['workdir'], 'results.json')}")
    return "\n".join(lines)
