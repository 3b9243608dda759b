"""Why large windows run fewer pixels per second: the full model by window size, then one block.

    python benchmarks/window_speed.py                   # both tables, bf16
    python benchmarks/window_speed.py model --sizes 256,512 --repeats 2
    python benchmarks/window_speed.py block --precision fp32
    python benchmarks/window_speed.py interleaved --sizes 256
    python benchmarks/window_speed.py variants --sizes 64,512 --repeats 15

`model`: the full RRDBNet x4 (23 blocks) as `Upscaler` runs one window (trunk, then the tail
in row chunks, one traced function), on square windows of each size. Printed: pixels per second of
the pass, the trunk's (`RRDBNet.features` alone) share of its time, and the useful rate: the
pass's rate times the fraction of a window that is new pixels with the default overlap of 80
(`((size - 80) / size)^2`), which is what a tiled image of many windows gets.

`block`: one `ResidualDenseBlock(64, 32)` in a `tf.function` at each size, then its five convs
alone, each on a random input of the shape it sees in the block (64, 96, 128, 160, 192
channels). The difference is the glue between them: four concatenations, four LeakyReLUs and
the scaled residual, all memory-bound. Printed: pixels per second of the block and of its
convs, and the glue's share of the block's time.

`interleaved`: `Upscaler`'s window pass (bf16 weights, tail in row chunks) against the generator
called whole under `mixed_bfloat16`, alternating call by call so that drift over minutes (up to
about 10% on this machine) hits both alike. Rows of `benchmarks/inference.py` are timed minutes
apart; this is the like-for-like check of what the chunked tail costs.

`variants`: one `ResidualDenseBlock(64, 32)` (bfloat16) as the model computes it (each conv on
the concatenation of the block's input and earlier outputs) against two ways without the
concatenations, exact up to float summation order, interleaved call by call: `split`, each conv
as the sum of one conv per concatenated input over its slice of the kernel's input channels
(conv(concat(x0..xk)) = sum_i conv_i(x_i)); `fanout`, each new feature map convolved once with the
slices of every later conv's kernel side by side (one wider conv per feature, its output split
and added into the later convs' sums). Printed: wall and CPU (`time.process_time`, less moved by
other processes on a shared machine) medians, and their ratio to the concatenating block.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_esrgan import RRDBNet  # noqa: E402
from keras_esrgan.inference import DEFAULT_BLEND, DEFAULT_TILE_PAD, Upscaler  # noqa: E402
from keras_esrgan.models.rrdbnet import LRELU_SLOPE, RESIDUAL_SCALE, ResidualDenseBlock  # noqa: E402
from keras_esrgan.precision import (  # noqa: E402
    INFERENCE_PRECISIONS,
    inference_policy,
    inference_precision,
    training_policy,
)
from timing import load_average, median_seconds  # noqa: E402  (benchmarks/timing.py)


def model_table(args):
    upscaler = Upscaler(RRDBNet(), tile=0, precision=args.precision)
    model = upscaler.runner.model()
    window = upscaler.runner.function()
    trunk = tf.function(lambda x: model.features(x),
                        input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)], autograph=False)
    overlap = 2 * DEFAULT_TILE_PAD + DEFAULT_BLEND
    print(f"Full RRDBNet x4, one window, {upscaler.precision}, median of {args.repeats} after warm-up")
    print(f"{'size':>6}{'pass kpx/s':>12}{'trunk share':>13}{'useful kpx/s':>14}")
    rng = np.random.default_rng(0)
    for size in [int(s) for s in (args.sizes or "128,192,256,384,512,640").split(",")]:
        x = rng.random((1, size, size, 3), dtype=np.float32)
        t_pass = median_seconds(lambda: window(x).numpy(), args.repeats)
        t_trunk = median_seconds(lambda: trunk(x).numpy(), args.repeats)
        rate = size * size / t_pass / 1e3
        useful = max(0.0, (size - overlap) / size) ** 2
        print(f"{size:>6}{rate:>12.1f}{t_trunk / t_pass:>13.0%}{rate * useful:>14.1f}", flush=True)
    print()


def block_table(args):
    block = ResidualDenseBlock(64, 32, dtype=inference_policy(args.precision))
    block.build((None, None, None, 64))
    dtype = block.compute_dtype
    whole = tf.function(lambda x: block(x), input_signature=[tf.TensorSpec([1, None, None, 64], dtype)])
    convs = [
        tf.function(lambda x, c=conv: c(x), input_signature=[tf.TensorSpec([1, None, None, 64 + 32 * i], dtype)])
        for i, conv in enumerate(block.convs)
    ]
    print(f"ResidualDenseBlock(64, 32), {args.precision}, median of {args.repeats} after warm-up")
    print(f"{'size':>6}{'block kpx/s':>13}{'5 convs kpx/s':>15}{'glue share':>12}")
    for size in [int(s) for s in (args.sizes or "192,256,384,512,640").split(",")]:
        def random(channels):
            return tf.cast(tf.random.uniform((1, size, size, channels)), dtype)

        x = random(64)
        t_block = median_seconds(lambda: whole(x).numpy(), args.repeats)
        t_convs = 0.0
        for i, conv in enumerate(convs):
            xi = random(64 + 32 * i)
            t_convs += median_seconds(lambda: conv(xi).numpy(), args.repeats)
        pixels = size * size
        print(f"{size:>6}{pixels / t_block / 1e3:>13.0f}{pixels / t_convs / 1e3:>15.0f}"
              f"{max(0.0, 1 - t_convs / t_block):>12.0%}", flush=True)
    print()


def interleaved_table(args):
    import statistics
    import time

    upscaler = Upscaler(RRDBNet(), tile=0, precision=args.precision)
    window = upscaler.runner.function()
    policy = training_policy(upscaler.precision)  # the mixed policy: float32 weights, cast per call
    whole_model = upscaler.generator.clone(dtype=policy)
    whole = tf.function(lambda x: whole_model(x),
                        input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)], autograph=False)
    rng = np.random.default_rng(0)
    for size in [int(s) for s in (args.sizes or "256").split(",")]:
        x = rng.random((1, size, size, 3), dtype=np.float32)
        calls = {"Upscaler window pass": lambda: window(x).numpy(), f"whole model, {policy}": lambda: whole(x).numpy()}
        times = {name: [] for name in calls}
        for fn in calls.values():
            fn()
        for _ in range(max(3, args.repeats)):
            for name, fn in calls.items():
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        for name, values in times.items():
            print(f"{size:>6} px  {name:<32} median {statistics.median(values):.3f} s", flush=True)
    print()


def _block_split(block, x):
    """The dense block without concatenations: each conv as a sum of convs over kernel slices."""
    features = [x]
    for k, conv in enumerate(block.convs):
        kernel = tf.cast(conv.kernel, conv.compute_dtype)
        out, start = None, 0
        for f in features:
            c = f.shape[-1]
            y = tf.nn.conv2d(f, kernel[:, :, start : start + c], 1, "SAME")
            start += c
            out = tf.nn.bias_add(y, tf.cast(conv.bias, conv.compute_dtype)) if out is None else y + out
        if k < len(block.convs) - 1:
            features.append(tf.nn.leaky_relu(out, LRELU_SLOPE))
    return x + RESIDUAL_SCALE * out


def _block_fanout(block, x):
    """The dense block without concatenations: one conv per new feature map into all later sums."""
    n = len(block.convs)
    kernels = [tf.cast(c.kernel, c.compute_dtype) for c in block.convs]
    widths = [c.filters for c in block.convs]
    sums = [None] * n
    f, start = x, 0
    for j in range(n):
        c = f.shape[-1]
        kernel = tf.concat([kernels[k][:, :, start : start + c] for k in range(j, n)], -1)
        pieces = tf.split(tf.nn.conv2d(f, kernel, 1, "SAME"), widths[j:], -1)
        for k, piece in zip(range(j, n), pieces):
            sums[k] = piece if sums[k] is None else sums[k] + piece
        start += c
        out = tf.nn.bias_add(sums[j], tf.cast(block.convs[j].bias, block.compute_dtype))
        if j < n - 1:
            f = tf.nn.leaky_relu(out, LRELU_SLOPE)
    return x + RESIDUAL_SCALE * out


def variants_table(args):
    import statistics
    import time

    block = ResidualDenseBlock(64, 32, dtype=inference_policy(args.precision))
    block.build((None, None, None, 64))
    dtype = block.compute_dtype
    spec = [tf.TensorSpec([1, None, None, 64], dtype)]
    fns = {
        name: tf.function(lambda x, fn=fn: fn(x), input_signature=spec, autograph=False)
        for name, fn in [("concat (model)", block), ("split", lambda x: _block_split(block, x)),
                         ("fanout", lambda x: _block_fanout(block, x))]
    }
    print(f"ResidualDenseBlock(64, 32), {args.precision}, interleaved, median of {max(3, args.repeats)}")
    for size in [int(s) for s in (args.sizes or "64,512").split(",")]:
        x = tf.cast(tf.random.uniform((1, size, size, 64)), dtype)
        ref = fns["concat (model)"](x).numpy().astype(np.float32)
        diffs = {name: float(np.abs(fn(x).numpy().astype(np.float32) - ref).max()) for name, fn in fns.items()}
        wall = {name: [] for name in fns}
        cpu = {name: [] for name in fns}
        for _ in range(max(3, args.repeats)):
            for name, fn in fns.items():
                w, c = time.perf_counter(), time.process_time()
                fn(x).numpy()
                wall[name].append(time.perf_counter() - w)
                cpu[name].append(time.process_time() - c)
        w0, c0 = statistics.median(wall["concat (model)"]), statistics.median(cpu["concat (model)"])
        for name in fns:
            w, c = statistics.median(wall[name]), statistics.median(cpu[name])
            print(f"{size:>6} px  {name:<16} wall {1e3 * w:8.1f} ms ({w0 / w:.2f}x)  cpu {1e3 * c:8.1f} ms "
                  f"({c0 / c:.2f}x)  max |diff| to concat {diffs[name]:.3g}", flush=True)
        print(f"        load average {load_average()}")
    print()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?", default="all", choices=["all", "model", "block", "interleaved", "variants"])
    parser.add_argument("--sizes", help="square sizes (default 128..640 for model, 192..640 for block)")
    parser.add_argument("--precision", default="bf16", choices=INFERENCE_PRECISIONS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.precision = inference_precision(args.precision)
    if args.table in ("all", "model"):
        model_table(args)
    if args.table in ("all", "block"):
        block_table(args)
    if args.table == "interleaved":
        interleaved_table(args)
    if args.table == "variants":
        variants_table(args)


if __name__ == "__main__":
    main()
