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

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from absl import app, flags, logging  # noqa: E402

from keras_esrgan import precision, recipes  # noqa: E402

FLAGS = flags.FLAGS

flags.DEFINE_enum(
    "preset",
    "offline",
    list(recipes.PRESETS),
    "offline: small, no downloads, CPU minutes; paper: ESRGAN as published; realesrgan: Real-ESRGAN "
    "x4plus (real-world degradation, vanilla GAN, U-Net discriminator); finetune: Real-ESRGAN x4plus "
    "and its discriminator fine-tuned on --hr_dir (with --lr_dir: on your LR/HR pairs)",
)
flags.DEFINE_enum(
    "stage", None, list(recipes.STAGES), "which training stage(s) to run; default the preset's (finetune: gan)"
)
flags.DEFINE_string("workdir", None, "checkpoints, TensorBoard logs and artifacts; default runs/<preset>")
flags.DEFINE_enum(
    "data",
    None,
    list(recipes.DATA_KINDS),
    "training data; default: the preset's (offline: synthetic, paper: div2k)",
)
flags.DEFINE_string("hr_dir", None, "--data=folder: HR training images")
flags.DEFINE_string(
    "lr_dir", None, "--data=folder: matching LR images (default: MATLAB bicubic of the HR ones)"
)
flags.DEFINE_string(
    "val_dir", None, "HR validation images (default: synthetic validation set / DIV2K validation)"
)
flags.DEFINE_string("val_lr_dir", None, "matching LR validation images (default: bicubic of --val_dir)")
flags.DEFINE_string("data_dir", None, "tensorflow-datasets data_dir for DIV2K")
flags.DEFINE_string("manual_dir", None, "folder holding the downloaded DIV2K zips")
flags.DEFINE_enum(
    "strategy",
    "mirrored",
    list(recipes.STRATEGIES),
    "mirrored: all visible GPUs (the default strategy without GPUs); multi_worker: TF_CONFIG",
)
flags.DEFINE_string(
    "vgg_weights",
    None,
    "perceptual-loss VGG19: imagenet (Keras cache or download), a .h5/.pth path, or random; default: the "
    "preset's (offline: the Keras cache, else a random VGG19 with a warning; paper: imagenet)",
)
flags.DEFINE_string(
    "psnr_generator",
    None,
    "with --stage=gan: start the GAN stage from this generator file (or model-zoo name) instead of the "
    "PSNR stage's; default the preset's gan_init",
)
flags.DEFINE_bool("export", True, "write the SavedModel and TFLite artifacts")
flags.DEFINE_enum(
    "export_model",
    None,
    list(recipes.EXPORT_MODELS),
    "generator to export; default gan (psnr with --stage=psnr)",
)
flags.DEFINE_integer("verbose", 1, "Keras fit verbosity: 1 progress bars, 2 one line per epoch, 0 silent")
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
        "off",
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
            stage=FLAGS.stage,
            data=FLAGS.data,
            hr_dir=FLAGS.hr_dir,
            lr_dir=FLAGS.lr_dir,
            val_dir=FLAGS.val_dir,
            val_lr_dir=FLAGS.val_lr_dir,
            data_dir=FLAGS.data_dir,
            manual_dir=FLAGS.manual_dir,
            strategy=strategy,
            mixed_precision=FLAGS.mixed_precision,
            vgg_weights=FLAGS.vgg_weights,
            psnr_generator=FLAGS.psnr_generator,
            export=FLAGS.export,
            export_model=FLAGS.export_model,
            verbose=FLAGS.verbose,
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
