"""Where the trunk's time goes as windows grow: one ResidualDenseBlock, its convs against the rest.

    python benchmarks/dense_block.py                       # bf16, 192 to 640 px
    python benchmarks/dense_block.py --dtype float32 --sizes 256,512

The full model's trunk (23 RRDBs of 3 dense blocks, 92% of the FLOPs) runs fewer pixels per
second on large windows (`Upscaler._run`: 42-47 kpx/s on 192-384 px windows, 32 at 512 in bf16).
This times one `ResidualDenseBlock(64, 32)` in a `tf.function` at each size, and then its five
convs alone, each on a random input of the shape it sees in the block (64, 96, 128, 160, 192
channels). The difference is the glue between them: four concatenations, four LeakyReLUs and
the scaled residual, all memory-bound. Printed per size: pixels per second of the block and of
its convs, and the glue's share of the block's time.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

import tensorflow as tf  # noqa: E402

from keras_esrgan.models.rrdbnet import ResidualDenseBlock  # noqa: E402
from timing import median_seconds  # noqa: E402  (benchmarks/timing.py)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="192,256,384,512,640", help="square feature-map sizes")
    parser.add_argument("--dtype", default="bfloat16", help="Keras dtype policy of the block")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    block = ResidualDenseBlock(64, 32, dtype=args.dtype)
    block.build((None, None, None, 64))
    dtype = block.compute_dtype
    whole = tf.function(lambda x: block(x), input_signature=[tf.TensorSpec([1, None, None, 64], dtype)])
    convs = [
        tf.function(lambda x, c=conv: c(x), input_signature=[tf.TensorSpec([1, None, None, 64 + 32 * i], dtype)])
        for i, conv in enumerate(block.convs)
    ]
    print(f"ResidualDenseBlock(64, 32), {args.dtype}, median of {args.repeats} after warm-up")
    print(f"{'size':>6}{'block kpx/s':>13}{'5 convs kpx/s':>15}{'glue share':>12}")
    for size in [int(s) for s in args.sizes.split(",")]:
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


if __name__ == "__main__":
    main()
