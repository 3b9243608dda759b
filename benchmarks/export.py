"""Export benchmark: size, conversion time, LiteRT latency and accuracy of each TFLite variant.

    python benchmarks/export.py                                   # full model, random weights
    python benchmarks/export.py --weights ~/.cache/keras_esrgan/RealESRGAN_x4plus.safetensors
    python benchmarks/export.py --num_block 4                     # quicker check

For each quantization (fp32, fp16, dynamic_int8, int8, mixed_int8, int16x8) it converts the generator to a fixed
1x128x128x3 `.tflite` (what an app ships), then reports:
- file size and conversion time (int8 includes calibration on Set14 tiles);
- LiteRT latency for one 128x128 tile on --threads threads: median of --runs after warm-up,
  and its ratio to the Keras float32 `tf.function` measured in the same process;
- PSNR (RGB, uint8) and mean / 99th-percentile / max absolute error in levels to the Keras
  float32 output on Set5's bicubic x4 LR images;
- with --weights, PSNR (Y channel, 4-pixel border crop, the Set5 protocol) to the HR ground
  truth, next to the Keras float32 model's own. Random weights make that number meaningless,
  so without --weights it is not reported.
Set5 LR images (at most 128x128) are reflect-padded to the 128x128 input, and the output cropped;
the Keras reference sees the same padded input. The SavedModel row gives its size against the
weight bytes, Keras' own `model.export` size, and the `serving_default` latency.
"""

import argparse
import os
import pathlib
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from timing import median_seconds  # noqa: E402  (benchmarks/timing.py)
from keras_esrgan.export.tflite_export import DEFAULT_CALIBRATION_TILES, QUANTIZATIONS  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(os.environ.get("KERAS_ESRGAN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def set5(tile):
    """(LR float32 padded to tile x tile, LR height, width, HR uint8) per Set5 image."""
    from keras_esrgan.data.degrade import bicubic_downsample
    from keras_esrgan.evaluation import load_hr

    items = []
    for path in sorted((SHARED / "Set5").glob("*.png")):
        hr = load_hr(path, 4)  # the benchmark protocol: RGB, mod-cropped
        lr = bicubic_downsample(hr, 4).numpy()
        h, w = lr.shape[:2]
        if h > tile or w > tile:
            raise SystemExit(f"{path.name}: LR {h}x{w} is larger than the {tile} tile")
        padded = np.pad(lr, ((0, tile - h), (0, tile - w), (0, 0)), mode="reflect")
        items.append((path.stem, padded, h, w, hr))
    return items


def folder_mb(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file()) / 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", help="trained generator weights (enables PSNR to ground truth)")
    parser.add_argument("--num_block", type=int, default=23, help="RRDBs of the random model")
    parser.add_argument("--num_feat", type=int, default=64)
    parser.add_argument("--tile", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calibration_tiles", type=int, default=DEFAULT_CALIBRATION_TILES,
                        help="int8 calibration tiles (each a slow, unaccelerated forward pass)")
    parser.add_argument("--variants", default=",".join(QUANTIZATIONS))
    parser.add_argument("--out_dir", help="keep the artifacts here (default: a temporary folder)")
    args = parser.parse_args(argv)

    import keras
    import tensorflow as tf

    from keras_esrgan import RRDBNet, load_generator, metrics
    from keras_esrgan.export import LiteRTModel, saved_model, tflite, weight_bytes
    from keras_esrgan.pixels import quantize

    def y_psnr(sr, hr):  # the Set5 protocol: BT.601 Y, 4 pixels off each border
        return metrics.psnr(sr, hr, crop_border=4, test_y_channel=True)

    if not (SHARED / "Set5").is_dir() or not (SHARED / "Set14").is_dir():
        raise SystemExit(f"needs Set5 and Set14 under {SHARED}")
    if args.weights:
        generator = load_generator(args.weights)
        source = os.path.basename(args.weights)
    else:
        keras.utils.set_random_seed(0)
        generator = RRDBNet(num_block=args.num_block, num_feat=args.num_feat)
        source = "random weights"
    print(f"RRDBNet({generator.config}), {generator.count_params():,} parameters, {source}; "
          f"TF {tf.__version__}, {args.threads} LiteRT threads, {os.cpu_count()} CPUs")

    tile = args.tile
    images = set5(tile)
    keras_fn = tf.function(lambda x: generator(x, training=False))
    reference = {name: keras_fn(lr[None]).numpy()[0] for name, lr, *_ in images}
    probe = images[0][1][None]
    keras_s = median_seconds(lambda: keras_fn(probe), args.runs, warmup=2)
    rows = []
    gt = None
    if args.weights:
        gt = np.mean([y_psnr(quantize(reference[n][: 4 * h, : 4 * w]), hr)
                      for n, _, h, w, hr in images])
    rows.append(("Keras fp32 tf.function", weight_bytes(generator) / 1e6, None, keras_s, 1.0,
                 None, None, gt))

    out_dir = args.out_dir or tempfile.mkdtemp(prefix="keras_esrgan_export_bench_")
    os.makedirs(out_dir, exist_ok=True)
    sm_path = saved_model(generator, out_dir, name="esrgan", overwrite=True)
    keras_export = os.path.join(out_dir, "keras_export")
    generator.export(keras_export, format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    serving = tf.saved_model.load(sm_path).signatures["serving_default"]
    probe_u8 = tf.constant(quantize(probe))
    serving_s = median_seconds(lambda: serving(images=probe_u8), args.runs, warmup=2)
    print(f"SavedModel {sm_path}: {folder_mb(sm_path):.1f} MB (variables "
          f"{folder_mb(os.path.join(sm_path, 'variables')):.1f} MB for "
          f"{weight_bytes(generator) / 1e6:.1f} MB of weights; Keras' model.export: "
          f"{folder_mb(keras_export):.1f} MB); serving_default {tile}x{tile}: {serving_s:.2f} s")
    rows.append(("SavedModel serving_default", folder_mb(sm_path), None, serving_s,
                 serving_s / keras_s, None, None, None))

    for quantization in args.variants.split(","):
        path = os.path.join(out_dir, f"esrgan_{quantization}.tflite")
        info = tflite(generator, path, quantization, input_shape=(1, tile, tile, 3),
                      representative_images=[SHARED / "Set14"],
                      num_calibration_tiles=args.calibration_tiles)
        model = LiteRTModel(path, num_threads=args.threads)
        latency = median_seconds(lambda: model(probe), args.runs, warmup=2)
        to_fp32, to_gt, errors = [], [], []
        for name, lr, h, w, hr in images:
            out = quantize(model(lr[None])[0, : 4 * h, : 4 * w])
            ref = quantize(reference[name][: 4 * h, : 4 * w])
            to_fp32.append(metrics.psnr(out, ref))
            to_gt.append(y_psnr(out, hr))
            errors.append(np.abs(out.astype(int) - ref).ravel())
        errors = np.concatenate(errors)
        rows.append((f"TFLite {quantization}", info["size_bytes"] / 1e6, info["conversion_seconds"],
                     latency, latency / keras_s, float(np.mean(to_fp32)),
                     (errors.mean(), np.percentile(errors, 99), errors.max()),
                     float(np.mean(to_gt)) if args.weights else None))
        if quantization == "fp32":
            tflite_fp32_s = latency
        vs = f", {latency / tflite_fp32_s:.2f}x TFLite fp32 latency" if "tflite_fp32_s" in locals() else ""
        extra = ""
        if info.get("calibration") and "float_layers" in info["calibration"]:
            extra = (f", {len(info['calibration']['float_layers'])} layers kept in float, debugger "
                     f"{info['calibration']['debug_seconds']:.0f} s")
        print(f"  {quantization}: done ({path}){vs}{extra}; conversion {info['conversion_seconds']:.0f} s",
              flush=True)

    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    print(f"\n| artifact | size MB | convert s | {tile}x{tile} s | vs Keras | PSNR to fp32 dB | "
          "error to fp32: mean / p99 / max levels | Set5 Y-PSNR dB |")
    print("|---|---|---|---|---|---|---|---|")
    for name, size, convert, seconds, ratio, p_fp32, err, p_gt in rows:
        err = "-" if err is None else f"{err[0]:.2f} / {err[1]:.0f} / {err[2]:.0f}"
        print(f"| {name} | {size:.1f} | {fmt(convert, '.0f')} | {seconds:.2f} | {ratio:.2f} | "
              f"{fmt(p_fp32, '.1f')} | {err} | {fmt(p_gt, '.2f')} |")
    if not args.weights:
        print("\nRandom weights: PSNR to ground truth not reported (pass --weights).")
    print(f"\nartifacts in {out_dir}")


if __name__ == "__main__":
    main()
