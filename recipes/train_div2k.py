r"""Train ESRGAN in two stages (PSNR, then GAN), interpolate, export: the project's recipe.

With no flags it runs the `offline` preset: a small RRDBNet on procedural images it draws itself,
with nothing downloaded, in a few minutes on two CPU cores, through the same code as the paper
preset. It ends by printing validation PSNR-Y/SSIM-Y against bicubic and where the artifacts are.

    python recipes/train_div2k.py                                  # offline preset -> runs/offline
    python recipes/train_div2k.py --preset=paper --workdir=runs/paper \
        --manual_dir=~/Downloads/div2k --vgg_weights=vgg19-dcbb9e9d.pth --mixed_precision
    python recipes/train_div2k.py --preset=paper --data=folder --hr_dir=DIV2K_train_HR \
        --lr_dir=DIV2K_train_LR_bicubic/X4 --val_dir=../shared/data/Set5
    python recipes/train_div2k.py --preset=paper --stage=gan --psnr_generator=RRDB_PSNR_x4.pth
    python recipes/train_div2k.py --preset=finetune --hr_dir=my_hr_images --val_dir=../shared/data/Set5

Run the same command again to resume: each stage continues from its last checkpoint in
`--workdir`, finished stages are skipped. Every preset field can be overridden by the flag of the
same name (`--psnr_steps=5000 --batch_size=32`); see `keras_esrgan.recipes`.
"""

import dataclasses
import inspect
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import app, flags, logging  # noqa: E402

from keras_esrgan import precision, recipes  # noqa: E402

FLAGS = flags.FLAGS
# The flags for `train`'s own arguments take its defaults, and are passed on by name.
_TRAIN = {name: p.default for name, p in inspect.signature(recipes.train).parameters.items()}
_TRAIN_FLAGS = ["stage", "mixed_precision", "vgg_weights", "psnr_generator", "export", "export_model", "verbose"]
_TRAIN_FLAGS += [f.name for f in dataclasses.fields(recipes.DataSources)]

flags.DEFINE_enum(
    "preset",
    "offline",
    list(recipes.PRESETS),
    "offline: small, no downloads, CPU minutes; paper: ESRGAN as published; realesrgan: Real-ESRGAN "
    "x4plus (real-world degradation, vanilla GAN, U-Net discriminator); finetune: Real-ESRGAN x4plus "
    "and its discriminator fine-tuned on --hr_dir (with --lr_dir: on your LR/HR pairs)",
)
flags.DEFINE_enum(
    "stage", _TRAIN["stage"], list(recipes.STAGES), "which training stage(s) to run; default the preset's (finetune: gan)"
)
flags.DEFINE_string("workdir", None, "checkpoints, TensorBoard logs and artifacts; default runs/<preset>")
# The data flags: one per `DataSources` field, its name, default and help.
for _field in dataclasses.fields(recipes.DataSources):
    if _field.name == "data":
        flags.DEFINE_enum("data", _field.default, list(recipes.DATA_KINDS), _field.metadata["help"])
    else:
        flags.DEFINE_string(_field.name, _field.default, _field.metadata["help"])
flags.DEFINE_enum(
    "strategy",
    recipes.DEFAULT_STRATEGY,
    list(recipes.STRATEGIES),
    "mirrored: all visible GPUs (the default strategy without GPUs); multi_worker: TF_CONFIG",
)
flags.DEFINE_string(
    "vgg_weights",
    _TRAIN["vgg_weights"],
    "perceptual-loss VGG19: imagenet (Keras cache or download), a .h5/.pth path, or random; default: the "
    "preset's (offline: the Keras cache, else a random VGG19 with a warning; paper: imagenet)",
)
flags.DEFINE_string(
    "psnr_generator",
    _TRAIN["psnr_generator"],
    "with --stage=gan: start the GAN stage from this generator file (or model-zoo name) instead of the "
    "PSNR stage's; default the preset's gan_init",
)
flags.DEFINE_bool("export", _TRAIN["export"], "write the SavedModel and TFLite artifacts")
flags.DEFINE_enum(
    "export_model",
    _TRAIN["export_model"],
    list(recipes.EXPORT_MODELS),
    "generator to export; default gan (psnr with --stage=psnr)",
)
flags.DEFINE_integer("verbose", _TRAIN["verbose"], "Keras fit verbosity: 1 progress bars, 2 one line per epoch, 0 silent")
flags.DEFINE_bool("traceback", False, "show Python tracebacks for errors instead of one-line messages")


class _MixedPrecisionParser(flags.ArgumentParser):
    """`--mixed_precision` (auto: bf16 on CPU, fp16 on GPU), `--nomixed_precision`, or a policy:
    the names of `keras_esrgan.precision.training_precision`."""

    def parse(self, argument):
        return precision.training_precision(argument)

    def flag_type(self):
        return "string"


flags.DEFINE_flag(
    flags.Flag(
        _MixedPrecisionParser(),
        flags.ArgumentSerializer(),
        "mixed_precision",
        precision.training_precision(_TRAIN["mixed_precision"]),
        "mixed precision: --mixed_precision (mixed_bfloat16 on CPU, mixed_float16 on GPU) or "
        f"--mixed_precision={'|'.join(precision.TRAINING_PRECISIONS)}",
        boolean=True,
    )
)

# One flag per preset field, same name, default None (= the preset's value).
_DEFINE = {
    int: flags.DEFINE_integer,
    float: flags.DEFINE_float,
    str: flags.DEFINE_string,
    bool: flags.DEFINE_bool,
}
for _field in recipes.preset_fields():
    _DEFINE[_field.type](_field.name, None, f"{_field.metadata['help']} (preset override)")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    import tensorflow as tf

    # TF's INFO lines (checkpoint saver, SavedModel signatures) would drown the progress bars.
    logging.set_verbosity(logging.WARNING)
    tf.get_logger().setLevel("WARNING")
    try:
        # First: MultiWorkerMirroredStrategy must exist before any other TensorFlow work.
        strategy = recipes.make_strategy(FLAGS.strategy)
        overrides = {f.name: FLAGS[f.name].value for f in recipes.preset_fields()}
        preset = recipes.get_preset(FLAGS.preset, **overrides)
        result = recipes.train(
            preset,
            FLAGS.workdir or os.path.join("runs", FLAGS.preset),
            strategy=strategy,
            **{name: FLAGS[name].value for name in _TRAIN_FLAGS},
        )
    except (ValueError, OSError, tf.errors.OpError) as err:  # user errors: bad flags, paths, data
        if FLAGS.traceback:
            raise
        message = err.message if isinstance(err, tf.errors.OpError) else str(err)
        print(f"train_div2k.py: error: {message}\n(--traceback shows where)", file=sys.stderr)
        return 1
    if result.validation is not None:
        print(recipes.format_summary(result), flush=True)
    else:
        print(f"worker finished: {result.steps}", flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
