"""How fast the data pipeline makes training patches, against how fast a training step eats them.

    python benchmarks/data.py                         # Set14 from ../shared/data, batch 16 of 128 px
    python benchmarks/data.py --folder DIV2K_train_HR --lr-folder DIV2K_train_LR_bicubic/X4
    python benchmarks/data.py --step-seconds 0.25     # a measured GPU step instead of timing one here
    python benchmarks/data.py --realworld-crop-pad 400 192   # real-world rows for two region sizes

Rows: `training_pipeline` with the decoded pairs cached in memory, without a cache (every patch
decodes its file and, for HR-only folders, recomputes the MATLAB bicubic LR of the whole image),
and without a cache on BasicSR-style 480-pixel sub-images (`extract_subimages`); then
`realworld_pipeline` (Real-ESRGAN's two-stage degradation of every patch, HR images cached) for
each `--realworld-crop-pad` region size (400: Real-ESRGAN's; the cost grows with its area). Then the
consumption of a PSNR-stage training step (generator forward + L1 + backward + Adam, fp32,
`tf.function`) for a tiny and the full RRDBNet on one batch. The GAN stage adds a discriminator
and VGG19 to each step, so it eats patches more slowly still. In real training the pipeline
shares the CPU with the step; the figures here are each measured alone.
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import tensorflow as tf  # noqa: E402

from keras_esrgan import RRDBNet  # noqa: E402
from keras_esrgan.data import (  # noqa: E402
    extract_subimages,
    hr_images,
    image_folder,
    realworld_pipeline,
    training_pipeline,
)

DEFAULT_FOLDER = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "Set14"


def pipeline_rate(source, args, cache, warmup_batches):
    """Patches per second of `training_pipeline` after `warmup_batches` (which fill a cache)."""
    ds = training_pipeline(
        source, batch_size=args.batch_size, patch_size=args.patch_size, scale=args.scale, cache=cache
    )
    return batches_rate(ds, args, warmup_batches)


def realworld_rate(source, args, crop_pad_size, warmup_batches):
    """Patches per second of `realworld_pipeline` (HR images cached in memory, degradation live)."""
    ds = realworld_pipeline(
        source, batch_size=args.batch_size, patch_size=args.patch_size, scale=args.scale,
        crop_pad_size=crop_pad_size,
    )
    return batches_rate(ds, args, warmup_batches)


def batches_rate(ds, args, warmup_batches):
    """Patches per second over `args.batches` batches of `ds`, after `warmup_batches`."""
    iterator = iter(ds)
    for _ in range(warmup_batches):
        next(iterator)
    start = time.perf_counter()
    for _ in range(args.batches):
        next(iterator)
    return args.batches * args.batch_size / (time.perf_counter() - start)


def step_seconds(num_feat, num_block, num_grow_ch, args):
    """Median seconds of one fp32 PSNR-stage training step (forward, L1, backward, Adam)."""
    import keras

    model = RRDBNet(scale=args.scale, num_feat=num_feat, num_block=num_block, num_grow_ch=num_grow_ch)
    optimizer = keras.optimizers.Adam(2e-4)
    optimizer.build(model.trainable_variables)
    lr_side = args.patch_size // args.scale
    lr = tf.random.uniform((args.batch_size, lr_side, lr_side, 3))
    hr = tf.random.uniform((args.batch_size, args.patch_size, args.patch_size, 3))

    @tf.function
    def step(lr, hr):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.abs(model(lr, training=True) - hr))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    step(lr, hr).numpy()  # trace
    times = []
    for _ in range(args.steps):
        start = time.perf_counter()
        step(lr, hr).numpy()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=pathlib.Path, default=DEFAULT_FOLDER, help="HR image folder")
    parser.add_argument("--lr-folder", type=pathlib.Path, help="matching LR folder (else MATLAB bicubic)")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--patch-size", type=int, default=128, help="HR patch side")
    parser.add_argument("--batches", type=int, default=30, help="batches timed per pipeline")
    parser.add_argument("--steps", type=int, default=3, help="training steps timed per model")
    parser.add_argument("--step-seconds", type=float, default=None, help="use this step time instead of timing")
    parser.add_argument("--skip-full", action="store_true", help="do not time the full 23-block RRDBNet step")
    parser.add_argument(
        "--realworld-crop-pad", type=int, nargs="*", default=[400],
        help="region sizes for the real-world degradation rows (none: skip them)",
    )
    args = parser.parse_args(argv)
    if not args.folder.is_dir():
        parser.error(f"no image folder at {args.folder}; pass --folder")

    source = image_folder(args.folder, args.lr_folder, scale=args.scale)
    images = sum(1 for _ in source)
    lr_from = f" + {args.lr_folder}" if args.lr_folder else " (LR: MATLAB bicubic)"
    print(f"{images} images from {args.folder}{lr_from}; batch {args.batch_size} of {args.patch_size} px "
          f"HR patches, x{args.scale}; {os.cpu_count()} CPUs, TF {tf.__version__}")
    # Enough warm-up batches to fill the cache (one epoch) and the prefetch buffer.
    warmup = images // args.batch_size + 3
    rows = [
        ("pipeline, decoded pairs cached in memory", pipeline_rate(source, args, True, warmup)),
        ("pipeline, no cache (decode every patch)", pipeline_rate(source, args, False, 3)),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        hr_sub, lr_sub = pathlib.Path(tmp, "hr"), pathlib.Path(tmp, "lr")
        count = extract_subimages(args.folder, hr_sub, 480, 240)
        if args.lr_folder:
            extract_subimages(args.lr_folder, lr_sub, 480 // args.scale, 240 // args.scale)
        sub_source = image_folder(hr_sub, lr_sub if args.lr_folder else None, scale=args.scale)
        sub_rate = pipeline_rate(sub_source, args, False, 3)
        rows.append((f"pipeline, no cache, {count} sub-images 480/240", sub_rate))
    hr_source = hr_images(args.folder)
    for crop_pad_size in args.realworld_crop_pad:
        rate = realworld_rate(hr_source, args, crop_pad_size, warmup)
        rows.append((f"realworld_pipeline (Real-ESRGAN degradation), {crop_pad_size} px regions", rate))

    steps = []
    if args.step_seconds:
        steps.append(("training step (--step-seconds)", args.step_seconds))
    else:
        steps.append(("PSNR step, tiny RRDBNet (8 feat, 2 blocks)", step_seconds(8, 2, 4, args)))
        if not args.skip_full:
            steps.append(("PSNR step, full RRDBNet (64 feat, 23 blocks)", step_seconds(64, 23, 32, args)))

    # Ratios against the fastest-eating step: above 1x the pipeline keeps that step fed.
    need = args.batch_size / min(seconds for _, seconds in steps)
    print("\n| what | patches/s | x what the fastest step eats |")
    print("|---|---:|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:,.0f} | {rate / need:,.2f}x |")
    for name, seconds in steps:
        rate = args.batch_size / seconds
        print(f"| {name}: {seconds:.3f} s/step | eats {rate:,.1f} | {rate / need:,.2f}x |")


if __name__ == "__main__":
    main()
