"""`train`: the two-stage recipe run, resumable, in one work directory; `format_summary`.

`train` checks its arguments, then runs one function per stage, each returning a small result:
`psnr_stage` and `gan_stage` (`StageResult`), `interpolation_stage` (a path), `export_stage`
(`ExportResult`) and `score_models` (the final table, through `keras_esrgan.validation`); the
`RunResult` is assembled once from them. Paths come from `WorkDir` (`recipes/workdir.py`).
"""

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
from keras_esrgan.export import saved_model, sidecar_path, tflite
from keras_esrgan.interpolation import interpolate
from keras_esrgan.models import RRDBNet, UNetDiscriminatorSN, VGGStyleDiscriminator
from keras_esrgan.precision import training_policy
from keras_esrgan.pretrained import MODELS
from keras_esrgan.recipes import realworld as recipe_realworld
from keras_esrgan.recipes.environment import describe_strategy, make_strategy, perceptual_loss
from keras_esrgan.recipes.presets import ARCHITECTURE, EXPORT_MODELS, STAGES, RecipeError, get_preset
from keras_esrgan.recipes.sources import DataSources, prepare_data
from keras_esrgan.recipes.workdir import SERVING_NAME, SERVING_VERSION, WorkDir
from keras_esrgan.training import ADAM, ESRGAN, PSNRTrainer
from keras_esrgan.validation import bicubic_upscale, generator_upscale, validate
from keras_esrgan.weights import load_generator, save_generator
from keras_esrgan.weights.discriminator_layout import load_discriminator


@dataclasses.dataclass(frozen=True)
class StageResult:
    """What a training stage left: its generator file and how far it got.

    `resumed` is the step it continued from (None: started afresh, or `skipped` because
    `done.json` said it was complete); `validation` its last validation record.
    """

    stage: str
    model: str
    step: int
    resumed: int = None
    skipped: bool = False
    validation: dict = None
    seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class ExportResult:
    """The exports of one generator: which (`model`), and the files written (or kept)."""

    model: str
    saved_model: str
    tflite: str
    tflite_json: str

    def artifacts(self):
        """`{"saved_model", "tflite", "tflite_json"}`: the entries of `RunResult.artifacts`."""
        return dict(saved_model=self.saved_model, tflite=self.tflite, tflite_json=self.tflite_json)


@dataclasses.dataclass(frozen=True)
class RunResult:
    """What `train` returns, and (`as_dict`) what it writes to `results.json`.

    `scores` `{"bicubic", "psnr", "gan", "interp": {"psnr", "ssim"}}` (validation PSNR-Y /
    SSIM-Y, crop_border = scale), `steps` and `resumed` (the step resumed from) per stage,
    `artifacts` `{name: path}`, `seconds` per stage (and `finish`, `total`), `perceptual` (what
    the GAN stage's VGG was), `gan_start` (where the GAN stage started, when not the PSNR
    stage), `exported` (which model), `validation` (the images and protocol of `scores`).
    A non-chief worker's result has no scores, artifacts or `validation`.
    """

    preset: dict
    workdir: str
    dtype_policy: str
    strategy: str
    replicas: int
    steps: dict
    resumed: dict
    artifacts: dict
    scores: dict
    seconds: dict
    perceptual: str = None
    gan_start: str = None
    exported: str = None
    validation: dict = None

    def as_dict(self):
        """A JSON-ready dict; the optional entries only when set."""
        out = dataclasses.asdict(self)
        for key in ("gan_start", "exported", "validation"):
            if out[key] is None:
                del out[key]
        return out


def _read_json(path):
    try:
        with open(path) as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def _format_time(seconds):
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _file_stamp(path):
    """What identifies a file's version cheaply: path, size, modification time."""
    stat = os.stat(path)
    return [os.path.abspath(path), stat.st_size, stat.st_mtime_ns]


def _banner(text):
    print(f"\n== {text}", flush=True)


@dataclasses.dataclass
class _Run:
    """What every stage of one `train` call reads: settings, paths, data, start weights."""

    preset: object
    work: WorkDir
    strategy: tf.distribute.Strategy
    policy: str
    verbose: int
    chief: bool
    # Every worker of a multi-worker run saves (TF's rule), but only the chief into the
    # workdir; the others into a scratch folder of the same layout, which they read back from.
    own: WorkDir
    psnr_init: str = None
    discriminator_init: str = None
    perceptual: object = None
    perceptual_description: str = None
    train_ds: tf.data.Dataset = None
    val_images: list = None
    grid_batches: tf.data.Dataset = None

    def done(self, stage, steps):
        """The stage's `done.json` if it reached `steps` and its generator exists (all workers
        read the chief's files, so they agree on what to skip)."""
        record = _read_json(self.work.done_record(stage))
        if record and record.get("step", -1) >= steps and os.path.isfile(self.work.artifacts.generator(stage)):
            return record
        return None


# -- the stages ---------------------------------------------------------------------------------


def _callbacks(run, stage, checkpoint):
    """The stage's callbacks (checkpoint, validation, TensorBoard) and its validation callback."""
    preset, work = run.preset, run.work
    smallest = min(min(hr.shape[:2]) for _, hr in run.val_images)
    validation = cb.ValidationCallback(
        run.val_images, every_n_steps=preset.val_every, log_dir=work.board(stage, "validation"),
        verbose=run.verbose,
    )
    # Real-ESRGAN presets: the degraded training inputs beside their targets.
    extra = [] if run.grid_batches is None else [
        cb.TrainingBatchGrid(run.grid_batches, work.board(stage, "train"), every_n_steps=preset.image_every)
    ]
    return validation, extra + [
        checkpoint,
        validation,
        cb.ScalarSummaries(work.board(stage, "train"), every_n_steps=preset.log_every),
        cb.ImageGridCallback(
            run.val_images,
            work.board(stage, "validation"),
            every_n_steps=preset.image_every,
            crop=max(preset.scale, min(128, smallest) // preset.scale * preset.scale),
        ),
    ]


def _checkpoint(run, stage):
    """The stage's `TrainingCheckpoint` and the step it would resume from (None: fresh)."""
    # Silent: a line per save would break the progress bar; the stage banner says where
    # checkpoints go and which step a run resumes from.
    checkpoint = TrainingCheckpoint(run.work.checkpoints(stage), save_freq=run.preset.checkpoint_every, verbose=0)
    return checkpoint, checkpoint.saved_step() or None


def _checkpoint_line(run, stage, resumed):
    directory = run.work.checkpoints(stage)
    every = run.preset.checkpoint_every
    if resumed:
        print(f"resumed from step {resumed} ({directory}); checkpoints every {every} steps", flush=True)
    else:
        print(f"checkpoints every {every} steps in {directory}", flush=True)


def _fit(run, trainer, stage, steps, checkpoint, resumed, started):
    """Fit `trainer` up to `steps` steps in total; save its EMA generator; the `StageResult`."""
    preset = run.preset
    validation, callbacks = _callbacks(run, stage, checkpoint)
    trainer.fit(
        run.train_ds,
        steps_per_epoch=preset.val_every,
        epochs=steps // preset.val_every,
        callbacks=callbacks,
        verbose=run.verbose,
        shuffle=False,  # tf.data shuffles
    )
    done = int(trainer.iterations.numpy())
    if done < steps:
        raise RecipeError(
            f"{stage} stage: the training data ran out after {done} of {steps} steps (are all "
            f"images smaller than patch_size={preset.patch_size}?)"
        )
    last = validation.history[-1] if validation.history else None
    path = run.own.artifacts.generator(stage)
    save_generator(trainer.ema_generator.with_policy("float32"), path)
    if run.chief:
        write_json(run.work.done_record(stage), dict(step=done, validation=last))
    return StageResult(stage, path, done, resumed=resumed, validation=last, seconds=_since(started))


def _since(started):
    return round(time.time() - started, 1)


def _skipped(run, stage, number, done, started):
    _banner(f"stage {number} ({stage.upper()}): already complete at step {done['step']}; skipped")
    return StageResult(
        stage, run.work.artifacts.generator(stage), done["step"], skipped=True,
        validation=done.get("validation"), seconds=_since(started),
    )


def _start_generator(path, preset, policy):
    """The generator in `path`, checked to be the preset's architecture."""
    generator = load_generator(path, dtype=policy)
    found = {k: generator.config[k] for k in ARCHITECTURE}
    if found != preset.architecture():
        raise RecipeError(
            f"{path} is RRDBNet({found}), not the preset's RRDBNet({preset.architecture()}); "
            f"pass the matching --scale/--num_feat/--num_block/--num_grow_ch"
        )
    return generator


def _discriminator(preset, policy, init=None):
    if init:
        return load_discriminator(init, dtype=policy, name="discriminator")
    if preset.discriminator == "vgg":
        return VGGStyleDiscriminator(
            input_size=preset.patch_size,
            num_feat=preset.discriminator_feat,
            dtype=policy,
            name="discriminator",
        )
    return UNetDiscriminatorSN(num_feat=preset.discriminator_feat, dtype=policy, name="discriminator")


def psnr_stage(run):
    """Stage 1: `PSNRTrainer` (L1) from random weights or `run.psnr_init`; a `StageResult`."""
    preset, started = run.preset, time.time()
    done = run.done("psnr", preset.psnr_steps)
    if done:
        return _skipped(run, "psnr", 1, done, started)
    checkpoint, resumed = _checkpoint(run, "psnr")
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
    return _fit(run, trainer, "psnr", preset.psnr_steps, checkpoint, resumed, started)


def gan_stage(run, init_path, external_init):
    """Stage 2: `ESRGAN` from the generator in `init_path`; a `StageResult`.

    `external_init`: `init_path` is not this workdir's PSNR stage (`--psnr_generator`, the
    preset's `gan_init`), so the PSNR step it started from is not recorded.
    """
    preset, work, started = run.preset, run.work, time.time()
    psnr_step = None if external_init else (_read_json(work.done_record("psnr")) or {}).get("step")
    init_record = _read_json(work.gan_init_record)
    checkpoint, resumed = _checkpoint(run, "gan")
    if resumed and init_record and init_record.get("psnr_step") != psnr_step:
        logging.warning(
            "the GAN stage in %s started from the PSNR generator at step %s; the PSNR stage is now "
            "at step %s. The GAN stage keeps its own weights; delete %s and %s to redo it from the "
            "new PSNR generator.",
            work.stage("gan"),
            init_record.get("psnr_step"),
            psnr_step,
            work.stage("gan"),
            work.artifacts.generator("gan"),
        )
    done = run.done("gan", preset.gan_steps)
    if done:
        return _skipped(run, "gan", 2, done, started)
    if not init_path or not os.path.isfile(init_path):
        raise RecipeError(
            f"the GAN stage starts from the PSNR generator, and {init_path} does not exist: run "
            f"--stage=psnr (or both) first, or pass --psnr_generator=FILE"
        )
    if not resumed and run.chief:
        write_json(work.gan_init_record, dict(psnr_generator=init_path, psnr_step=psnr_step))
    discriminator = f"{preset.discriminator} discriminator" + (
        f" from {run.discriminator_init}" if run.discriminator_init else ""
    )
    _banner(
        f"stage 2 (GAN: {recipe_realworld.loss_summary(preset)}): {preset.gan_steps} steps from "
        f"{init_path}; {discriminator}; perceptual loss: {run.perceptual_description}"
    )
    _checkpoint_line(run, "gan", resumed)
    with run.strategy.scope():
        gan = ESRGAN(
            _start_generator(init_path, preset, run.policy),
            _discriminator(preset, run.policy, run.discriminator_init),
            perceptual_loss=run.perceptual,
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
    return _fit(run, gan, "gan", preset.gan_steps, checkpoint, resumed, started)


def interpolation_stage(run, psnr_path, gan_path):
    """Write (or keep, if its inputs did not change) the interpolated generator; its path."""
    alpha = run.preset.alpha
    artifacts = run.work.artifacts
    path = artifacts.interpolated(alpha)
    stamp = dict(psnr=_file_stamp(psnr_path), gan=_file_stamp(gan_path), alpha=alpha, file=path)
    if _read_json(artifacts.interpolation_stamp) == stamp and os.path.isfile(path):
        return path
    save_generator(interpolate(psnr_path, gan_path, alpha), path)
    write_json(artifacts.interpolation_stamp, stamp)
    return path


def export_stage(run, name, source):
    """SavedModel + TFLite of the generator in `source` (kept when already made from it)."""
    quant = run.preset.tflite_quantization
    artifacts = run.work.artifacts
    serving, tflite_path = artifacts.serving, artifacts.tflite(quant)
    stamp = dict(model=name, source=_file_stamp(source), quantization=quant)
    if _read_json(artifacts.export_stamp) == stamp and os.path.isdir(serving) and os.path.isfile(tflite_path):
        print(f"\nexport: up to date (from {source})", flush=True)
    else:
        _banner(f"export of the {name} model: SavedModel (TF Serving) and TFLite ({quant})")
        net = load_generator(source)
        serving = saved_model(net, artifacts.saved_model, name=SERVING_NAME, version=SERVING_VERSION, overwrite=True)
        representative = [lr for lr, _ in run.val_images] if quant == "int8" else None
        tflite(net, tflite_path, quantization=quant, representative_images=representative)
        write_json(artifacts.export_stamp, stamp)
    return ExportResult(name, serving, tflite_path, sidecar_path(tflite_path))


def score_models(preset, val_images, models):
    """The final table: bicubic and every model on the validation images, with the protocol
    used during training (`keras_esrgan.validation.validate`, crop_border = scale, Y channel).

    Returns `{name: {"psnr", "ssim"}}`, bicubic first, then `models`' order.
    """
    methods = dict(bicubic=bicubic_upscale(preset.scale))
    methods.update({name: generator_upscale(load_generator(path)) for name, path in models.items()})
    return {name: scores.means() for name, scores in validate(methods, val_images, preset.scale).items()}


# -- train ----------------------------------------------------------------------------------------


def _arguments(preset, stage, export_model, psnr_generator, vgg_weights):
    """Check `train`'s arguments before any work: `(preset, stage, psnr_generator)`."""
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
        if not os.path.isfile(psnr_generator) and psnr_generator not in MODELS:
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
    return preset, stage, psnr_generator


def _check_workdir(work, preset, is_chief):
    """Record the architecture in `config.json`; refuse a workdir of another one."""
    previous = _read_json(work.config)
    arch = preset.architecture()
    if previous is not None and previous.get("architecture") not in (None, arch):
        raise RecipeError(
            f"{work.root} holds a run of RRDBNet({previous['architecture']}), this one asks for "
            f"RRDBNet({arch}): use another --workdir, or the same architecture to resume"
        )
    if is_chief:
        write_json(work.config, dict(architecture=arch, preset=dataclasses.asdict(preset)))


def _load_data(run, data_sources):
    """Read the run's data (a `DataSources`) into `run` (training and grid streams, validation
    pairs); returns the validation set's description."""
    preset = run.preset
    lr_dir = data_sources.lr_dir
    degraded = recipe_realworld.uses_degradation(preset, lr_dir)
    if preset.degradation == "realesrgan" and not degraded:
        print(f"--lr_dir: paired LR/HR training on {lr_dir}; the real-world degradation is off", flush=True)
    loaded = prepare_data(
        preset, run.work.root, data_sources, synthetic_dir=run.own.synthetic, hr_only=degraded
    )
    val_degraded = degraded and not data_sources.val_lr_dir
    if val_degraded:
        loaded.val_description = loaded.val_description.replace(" (bicubic LR)", "") + (
            f", LR degraded once by Real-ESRGAN's pipeline (seed {max(preset.seed, 0)})"
        )
    print(f"training data: {loaded.description}\nvalidation data: {loaded.val_description}", flush=True)
    run.val_images = recipe_realworld.validation_pairs(preset, loaded.val, val_degraded)
    seed = preset.seed if preset.seed >= 0 else None
    train_ds = recipe_realworld.training_batches(preset, loaded.train, seed, degraded)
    run.grid_batches = recipe_realworld.grid_batches(preset, loaded.train, seed, degraded)
    if isinstance(run.strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # The pipeline starts from a list of file names, which tf.data would try to shard by
        # file; each worker instead takes every n-th batch of its own shuffled stream.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        train_ds = train_ds.with_options(options)
    run.train_ds = train_ds
    return loaded.val_description


def _setup(preset, workdir, strategy, mixed_precision, verbose):
    """The run's settings, strategy and folders (the workdir checked against the preset)."""
    work = WorkDir(os.path.abspath(os.fspath(workdir)))
    strategy = strategy or make_strategy()
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
    os.makedirs(work.root, exist_ok=True)
    chief = bool(strategy.extended.should_checkpoint)
    own = work if chief else WorkDir(tempfile.mkdtemp(prefix="keras_esrgan_worker_"))
    os.makedirs(own.artifacts.folder, exist_ok=True)
    _check_workdir(work, preset, chief)
    return _Run(preset, work, strategy, policy, verbose, chief, own)


def _start_weights(run, stage, psnr_generator, vgg_weights):
    """Resolve the start weights and build the perceptual loss of the stages still to train,
    before any data is read: a zoo name downloads (or fails offline) and the paper preset
    without VGG weights fails here, in seconds. Prints the run's banner; returns the resolved
    `psnr_generator`."""
    preset = run.preset
    psnr = stage in ("psnr", "both") and not run.done("psnr", preset.psnr_steps)
    gan = stage in ("gan", "both") and not run.done("gan", preset.gan_steps)
    if psnr:
        run.psnr_init = recipe_realworld.weights_file(preset.psnr_init, "psnr_init")
    if psnr_generator is not None:
        psnr_generator = recipe_realworld.weights_file(psnr_generator, "psnr_generator")
    if gan:
        run.discriminator_init = recipe_realworld.weights_file(preset.discriminator_init, "discriminator_init")
    arch = ", ".join(f"{k}={v}" for k, v in preset.architecture().items())
    _banner(
        f"ESRGAN recipe, preset {preset.name!r}: RRDBNet({arch}), {run.policy}, {describe_strategy(run.strategy)}"
    )
    print(f"workdir: {run.work.root}", flush=True)
    if gan:
        with run.strategy.scope():
            run.perceptual, run.perceptual_description = perceptual_loss(
                vgg_weights, preset.perceptual_fallback, run.policy, preset.layer_weights()
            )
    return psnr_generator


def _train_stages(run, stage, psnr_generator):
    """Run (or skip) the requested stages: `([StageResult], {name: generator path})`."""
    stages, models = [], {}
    if stage in ("psnr", "both"):
        stages.append(psnr_stage(run))
        models["psnr"] = stages[-1].model
    elif psnr_generator:
        models["psnr"] = psnr_generator
    elif os.path.isfile(run.work.artifacts.generator("psnr")):
        models["psnr"] = run.work.artifacts.generator("psnr")
    if stage in ("gan", "both"):
        stages.append(gan_stage(run, models.get("psnr"), bool(psnr_generator)))
        models["gan"] = stages[-1].model
    return stages, models


def train(
    preset,
    workdir,
    *,
    stage=None,
    strategy=None,
    mixed_precision=False,
    vgg_weights=None,
    psnr_generator=None,
    export=True,
    export_model=None,
    verbose=1,
    **sources,
):
    """Run the ESRGAN recipe in `workdir`: PSNR stage, GAN stage, interpolation, export, scores.

    Running it again with the same `workdir` resumes: an unfinished stage continues from its
    last checkpoint (a larger step count than before continues training), finished stages
    are skipped, and the interpolation and export are redone only when their inputs changed.

    Args:
        preset: a `Preset` (`get_preset("offline")`, `get_preset("paper", batch_size=32)`) or
            a preset name.
        workdir: folder of the run (its layout: `keras_esrgan.recipes.WorkDir`).
        stage: `"psnr"`, `"gan"` (starts from `workdir`'s PSNR generator, `psnr_generator` or
            the preset's `gan_init`) or `"both"`; default: the preset's (`finetune`: gan).
        strategy: a `tf.distribute.Strategy` (default: `make_strategy()`, `DEFAULT_STRATEGY`).
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
        **sources: where the images come from, by the names of `DataSources`' fields
            (`data`, `hr_dir`, `lr_dir`, `val_dir`, `val_lr_dir`, `data_dir`, `manual_dir`;
            see `prepare_data`); each the preset's choice when left out.

    Returns:
        `RunResult` (its `as_dict()` is also written to `WorkDir(workdir).results`).

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
    >>> result.steps, sorted(result.scores), sorted(result.artifacts)
    ({'psnr': 2}, ['bicubic', 'psnr'], ['psnr_keras'])
    """
    started = time.time()
    sources = DataSources.from_arguments("train", sources)
    preset, stage, psnr_generator = _arguments(preset, stage, export_model, psnr_generator, vgg_weights)
    run = _setup(preset, workdir, strategy, mixed_precision, verbose)
    psnr_generator = _start_weights(run, stage, psnr_generator, vgg_weights)
    val_description = _load_data(run, sources)
    stages, models = _train_stages(run, stage, psnr_generator)
    fields = dict(
        preset=dataclasses.asdict(preset),
        workdir=run.work.root,
        dtype_policy=run.policy,
        strategy=describe_strategy(run.strategy),
        replicas=run.strategy.num_replicas_in_sync,
        steps={s.stage: s.step for s in stages},
        resumed={s.stage: s.resumed for s in stages if s.resumed},
        seconds={s.stage: s.seconds for s in stages},
        perceptual=run.perceptual_description,
        gan_start=psnr_generator,
    )
    if not run.chief:  # the chief writes the interpolation, the exports and the report
        shutil.rmtree(run.own.root, ignore_errors=True)
        return RunResult(**fields, artifacts={}, scores={})
    finish = time.time()
    if "psnr" in models and "gan" in models:
        models["interp"] = interpolation_stage(run, models["psnr"], models["gan"])
    artifacts = {f"{name}_keras": path for name, path in models.items()}
    exported = None
    if export:
        exported = export_model or ("gan" if "gan" in models else "psnr")
        if exported not in models:
            raise RecipeError(f"export_model={exported}: there is no {exported} model in this run")
        artifacts.update(export_stage(run, exported, models[exported]).artifacts())
    scores = score_models(preset, run.val_images, models)
    validation = dict(
        images=len(run.val_images), description=val_description, crop_border=preset.scale, channel="Y"
    )
    fields["seconds"].update(finish=_since(finish), total=_since(started))
    result = RunResult(**fields, artifacts=artifacts, scores=scores, exported=exported, validation=validation)
    write_json(run.work.results, result.as_dict())
    return result


def format_summary(result):
    """The end-of-run report for `train`'s result: the validation table and artifact paths.

    Args:
        result: a `RunResult`, or its `as_dict()` (e.g. read back from `results.json`).

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
    if isinstance(result, RunResult):
        result = result.as_dict()
    preset = result["preset"]
    val = result["validation"]
    work = WorkDir(result["workdir"])
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
    lines.append(f"TensorBoard: tensorboard --logdir {work.tensorboard}")
    lines.append(f"results:     {work.results}")
    return "\n".join(lines)
