"""Draw docs/realworld_degradations.png: one procedural image and four Real-ESRGAN degradations of it.

    python docs/make_degradation_figure.py                 # writes docs/realworld_degradations.png
    python docs/make_degradation_figure.py --seed 3 --size 160 -o /tmp/figure.png

The image is `keras_esrgan.data.synthetic.synthetic_image` (drawn from a seed: no third-party
picture, so the figure carries no licence but the project's). The samples are what
`keras-esrgan degrade` writes (`write_degraded_samples`, the per-image computation of
`realworld_pipeline`) with `crop_pad_size` equal to the image size, so every panel shows the whole
image. Panels: the USM-sharpened HR target, then each degraded LR image enlarged by pixel
repetition, labelled with what was drawn for it (degradations.json), one line per stage: blur
kernel and size (gen_: generalized Gaussian, plat_: plateau), resize (up/down factor or keep), noise (gauss: sigma in levels, poiss: Poisson
scale; g: grey), JPEG quality (q); the second line ends with the final step's order
(`sinc9>q40`: sinc filter then JPEG; `none` when no sinc filter was drawn).
"""

import argparse
import json
import os
import pathlib
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from keras_esrgan.data import write_degraded_samples  # noqa: E402
from keras_esrgan.data.degraded_samples import SEPARATOR  # noqa: E402
from keras_esrgan.data.synthetic import synthetic_image  # noqa: E402
from keras_esrgan.images import read_image, write_image  # noqa: E402

GAP = 4
LABEL_HEIGHT = 30


def _stage(d, n):
    resize = d[f"resize{n}"] + ("" if d[f"resize{n}"] == "keep" else f"{d[f'resize{n}_scale']:.2f}")
    noise = ("gauss" if d[f"noise{n}"] == "gaussian" else "poiss") + f"{d[f'noise{n}_level']:.1f}"
    blur = d[f"blur{n}"].replace("generalized_", "gen_").replace("plateau_", "plat_")
    return f"{n}: {blur} {resize} {noise}{'g' if d[f'noise{n}_gray'] else ''}"


def _label(d):
    """Two lines: stage 1 (blur, resize, noise, JPEG), stage 2 and the final sinc/JPEG order."""
    final = f"{d['final_sinc']}>q{d['jpeg2_quality']}" if d["final_order"] == "resize_sinc_jpeg" else (
        f"q{d['jpeg2_quality']}>{d['final_sinc']}")
    return [_stage(d, 1) + f" q{d['jpeg1_quality']}", _stage(d, 2) + f" {final}"]


def make_figure(output, seed=0, size=192, count=4, scale=4):
    """Write the figure PNG to `output`; returns its (height, width)."""
    with tempfile.TemporaryDirectory() as tmp:
        source = os.path.join(tmp, "procedural.png")
        write_image(source, synthetic_image(size, seed=seed))
        paths = write_degraded_samples([source], os.path.join(tmp, "samples"), seed=seed, count=count, scale=scale,
                                       crop_pad_size=size)
        drawn = json.loads(pathlib.Path(tmp, "samples", "degradations.json").read_text())["samples"]
        samples = [read_image(p) for p in paths]
    target = samples[0][:, size + SEPARATOR :]
    panels = [(target, ["HR target (USM-sharpened)", f"procedural image, seed {seed}"])]
    panels += [(s[:, :size], _label(d["degradation"])) for s, d in zip(samples, drawn)]
    width = len(panels) * size + (len(panels) - 1) * GAP
    figure = Image.new("RGB", (width, size + LABEL_HEIGHT), "white")
    draw = ImageDraw.Draw(figure)
    for i, (pixels, lines) in enumerate(panels):
        left = i * (size + GAP)
        figure.paste(Image.fromarray(np.ascontiguousarray(pixels)), (left, 0))
        for j, line in enumerate(lines):
            draw.text((left + 2, size + 3 + 13 * j), line, fill="black")
    figure.save(output, optimize=True)
    return figure.height, figure.width


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(pathlib.Path(__file__).with_name("realworld_degradations.png")))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=192, help="image side in pixels (a multiple of 4)")
    parser.add_argument("--count", type=int, default=4)
    args = parser.parse_args()
    height, width = make_figure(args.output, args.seed, args.size, args.count)
    print(f"{args.output}: {width}x{height}, {os.path.getsize(args.output):,} bytes")


if __name__ == "__main__":
    main()
