"""Peak resident memory of upscaling: per pixel of one pass, and of `upscale` on large images.

    python benchmarks/memory.py                 # full model: both tables
    python benchmarks/memory.py images --sizes 256,1024,2048
    python benchmarks/memory.py pass --sizes 256,512 --num_block 2     # quicker, same memory

Every figure comes from its own process, because the peak resident set (VmHWM in
/proc/self/status) never goes down: the process builds the generator, runs a small input
(traces the network, allocates its runtime), records the peak so far as its baseline, runs
the measured call once and records the peak again.

`pass`: one untiled window in fp32 and bf16, run two ways: the generator called whole in a
`tf.function`, and `Upscaler(tile=0).predict`, which runs `RRDBNet.lean_call`: the trunk at once
and the upsampling tail in row chunks of the features (`RRDBNet.reconstruct_in_chunks`); and the
exported SavedModel's `serving_default` (fp32, `lean_call` too) on a uint8 image. Printed: peak
growth per LR pixel, less the output. This is what `inference.BYTES_PER_PIXEL` (the automatic
window size) is.

`images`: the default `Upscaler` (precision "auto", automatic windows) on one uint8
`size x size` RGB image. Printed per size: the tile plan, seconds, peak RSS, its growth over the
baseline, the uint8 output's own size (which no tiling can avoid) and the growth beyond it.
"Flat" means that last column stops growing with the image once it is tiled: the network's
memory is set by the window, the host's by a strip one window high (`Upscaler.strips`).

The depth of the model hardly matters (the trunk's maps are freed block by block; the
high-resolution tail dominates), so `--num_block 2` shows about the same memory much faster.
Inputs are uniform noise: memory and time do not depend on the content.
"""

import argparse
import json
import os
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
GIB = 1024**3


def peak_rss():
    """This process's peak resident set size in bytes (VmHWM)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def child(kind, size, num_block, precision):
    """One measurement in this process; prints a JSON line."""
    import numpy as np

    sys.path.insert(0, os.path.join(HERE, ".."))
    from keras_esrgan import RRDBNet
    from keras_esrgan.inference import Upscaler

    rng = np.random.default_rng(0)
    if kind == "images":
        upscaler = Upscaler(RRDBNet(num_block=num_block))
        upscaler(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8))
        baseline = peak_rss()
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        start = time.perf_counter()
        out = upscaler(image)
        seconds = time.perf_counter() - start
        plan = upscaler.tile_plan(size, size)
        return dict(size=size, precision=upscaler.precision, tiles=plan.num_tiles,
                    window=list(plan.window), seconds=seconds, baseline=baseline,
                    peak=peak_rss(), output=out.nbytes)

    import tensorflow as tf

    if precision == "savedmodel":
        import tempfile

        from keras_esrgan.export import saved_model

        path = saved_model(RRDBNet(num_block=num_block), tempfile.mkdtemp(), max_pixels=size * size)
        serve = tf.saved_model.load(path).signatures["serving_default"]
        run_uint8 = lambda v: serve(images=tf.constant(v[None]))["upscaled"].numpy()  # noqa: E731
        run_uint8(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        baseline = peak_rss()
        out = run_uint8(image)
        return dict(per_pixel=(peak_rss() - baseline - out.nbytes) / size**2)
    upscaler = Upscaler(RRDBNet(num_block=num_block), tile=0, precision=precision.split("-")[0])
    if precision.endswith("whole"):
        model = upscaler.runner.model()
        fn = tf.function(lambda v: model(v), input_signature=[tf.TensorSpec([1, None, None, 3])])
        run = lambda v: fn(v[None]).numpy()  # noqa: E731
    else:
        run = upscaler.predict
    run(rng.random((32, 32, 3), dtype=np.float32))
    x = rng.random((size, size, 3), dtype=np.float32)
    baseline = peak_rss()
    out = run(x)
    return dict(per_pixel=(peak_rss() - baseline - out.nbytes) / size**2)


def measure(kind, size, num_block, precision="auto"):
    """Run `child` in a fresh process; its result dict, or None (the failure is printed)."""
    run = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(size), precision, "--num_block", str(num_block)],
        capture_output=True, text=True,
    )
    if run.returncode:
        print(f"  {kind} {size} {precision}: failed (exit {run.returncode}): "
              f"{run.stderr.strip().splitlines()[-1:]}")
        return None
    return json.loads(run.stdout.strip().splitlines()[-1])


def pass_table(args):
    print(f"One untiled pass, RRDBNet x4 with {args.num_block} blocks: peak growth per LR pixel "
          "(KB), float32 output excluded")
    columns = ("fp32-whole", "fp32-chunked", "bf16-whole", "bf16-chunked", "savedmodel")
    print(f"{'size':>6}" + "".join(f"{c:>13}" for c in columns))
    for size in [int(s) for s in args.sizes.split(",")]:
        cells = []
        for precision in columns:
            r = measure("pass", size, args.num_block, precision)
            cells.append("failed" if r is None else f"{r['per_pixel'] / 1024:.1f}")
        print(f"{size:>6}" + "".join(f"{c:>13}" for c in cells), flush=True)
    print()


def images_table(args):
    print(f"Upscaler defaults, RRDBNet x4 with {args.num_block} blocks, {os.cpu_count()} CPUs")
    header = (f"{'LR size':>9} {'output':>11} {'tiles':>6} {'window':>9} {'s':>7} {'peak RSS':>9} "
              f"{'growth':>8} {'output':>8} {'beyond':>8}")
    print(header + "\n" + " " * 47 + "(GiB; growth over the 64x64 baseline; uint8 output; growth - output)")
    print("-" * len(header))
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        r = measure("images", size, args.num_block)
        if r is None:
            continue
        rows.append(r)
        growth = r["peak"] - r["baseline"]
        print(f"{size:>9} {4 * size:>5}x{4 * size:<5} {r['tiles']:>6} {r['window'][0]:>4}x{r['window'][1]:<4} "
              f"{r['seconds']:>7.1f} {r['peak'] / GIB:>9.2f} {growth / GIB:>8.2f} {r['output'] / GIB:>8.2f} "
              f"{(growth - r['output']) / GIB:>8.2f}", flush=True)
    if rows:
        worst = max(rows, key=lambda r: r["peak"])
        print(f"\nprecision {rows[0]['precision']}; baseline peak RSS {rows[0]['baseline'] / GIB:.2f} GiB; "
              f"largest peak {worst['peak'] / GIB:.2f} GiB at {worst['size']}^2 LR "
              "(goal for 2048^2 -> 8192^2: under 3 GiB)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("table", nargs="?", default="all", choices=["all", "pass", "images"])
    parser.add_argument("--sizes", help="LR sizes (square); default 256,512 for pass, 256,1024,2048 for images")
    parser.add_argument("--num_block", type=int, default=23, help="23 is the full ESRGAN model")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, size, precision = args.child
        print(json.dumps(child(kind, int(size), args.num_block, precision)))
        return
    sizes = args.sizes
    if args.table in ("all", "pass"):
        args.sizes = sizes or "256,512"
        pass_table(args)
    if args.table in ("all", "images"):
        args.sizes = sizes or "256,1024,2048"
        images_table(args)


if __name__ == "__main__":
    main()
