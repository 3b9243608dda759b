"""Benchmark evaluation: PSNR-Y / SSIM-Y (and NIQE) of a generator and of bicubic, per set.

The protocol is the one of `../shared/data/README.md`, i.e. BasicSR's and the SR papers':

1. Each HR image is read (`read_image`); greyscale becomes 3 equal RGB channels, alpha is
   dropped; it is mod-cropped to a multiple of `scale` (top-left part kept).
2. LR = MATLAB `imresize(hr, 1/scale, 'bicubic')` (`keras_esrgan.data.degrade.imresize`:
   antialiased, and for integer images rounded after each pass as MATLAB does).
3. SR = `keras_esrgan.inference.Upscaler(generator, tile=tile, precision=precision)(lr)`, the
   object `keras_esrgan.inference.upscale` builds per call, made once here so the network is
   traced once per evaluation: the output is clipped and rounded to the input's dtype.
   The `bicubic` baseline row is MATLAB `imresize(lr, scale, 'bicubic')`, rounded the same way.
4. Scores by `keras_esrgan.validation.validate`, the protocol training validation uses: PSNR and
   SSIM on the BT.601 Y channel (`keras_esrgan.metrics`, BasicSR's conventions), `crop_border`
   (default: `scale`) pixels off each edge; NIQE (on request) of the whole SR / bicubic image
   with the same crop. 16-bit HR images give a 16-bit LR and SR, and their PSNR and SSIM use the
   peak 65535 (NIQE maps them to the 8-bit scale of its model).
5. A set's score is the mean over its images.

Measured with this protocol, bicubic x4: Set5 28.4290 dB / 0.8111, Set14 26.0884 / 0.7048. The
classic tables (VDSR, EDSR, RCAN: 28.42 / 0.8104, 26.00 / 0.7027) made their bicubic on the Y
channel, not on RGB, and scored greyscale images (Set14's bridge) on their grey values rather
than on the 16..235 Y of 3 equal channels: that is -0.094 dB on Set14 (20 log10(255 / 219) on one
image of 14). Model rows follow the protocol above in both, so they are comparable.

Example (an untrained generator on procedural images; with trained weights, run it on
`{"Set5": "../shared/data/Set5", "Set14": "../shared/data/Set14"}`):
>>> from keras_esrgan.data.synthetic import write_synthetic_folder
>>> keras.utils.set_random_seed(0)
>>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
>>> sets = {"A": write_synthetic_folder("A", count=2, size=48), "B": write_synthetic_folder("B", count=1, size=40)}
>>> print(format_table(evaluate(net, sets, progress=False), model_name="untrained"))
| set | method | images | PSNR-Y (dB) | SSIM-Y |
|---|---|---:|---:|---:|
| A | untrained | 2 | 7.08 | 0.0835 |
| A | bicubic | 2 | 23.22 | 0.5874 |
| B | untrained | 1 | 7.85 | 0.0676 |
| B | bicubic | 1 | 22.45 | 0.5917 |
"""

import dataclasses
import numbers
import os

import numpy as np
from tqdm.auto import tqdm

from keras_esrgan.data.augment import mod_crop
from keras_esrgan.data.degrade import matlab_bicubic_resize
from keras_esrgan.data.folders import list_image_pairs
from keras_esrgan.images import read_image
from keras_esrgan.inference import Upscaler
from keras_esrgan.pixels import as_rgb
from keras_esrgan.precision import SCORING_PRECISION
from keras_esrgan.validation import ImageScores, MethodScores, bicubic_upscale, validate

__all__ = ["ImageScores", "MethodScores", "SetResult", "evaluate", "format_table", "load_hr"]


@dataclasses.dataclass(frozen=True)
class SetResult:
    """The evaluation of one set: where, how, and the model and bicubic rows."""

    name: str
    folder: str
    scale: int
    crop_border: int
    model: MethodScores
    bicubic: MethodScores

    @property
    def rows(self):
        """`(model, bicubic)`, the table's rows."""
        return (self.model, self.bicubic)

    def as_dict(self):
        """Plain dict (JSON-ready) with per-image scores and the means of both rows."""
        out = dataclasses.asdict(self)
        for key, row in (("model", self.model), ("bicubic", self.bicubic)):
            out[key].update(psnr=row.psnr, ssim=row.ssim, niqe=row.niqe)
        return out


def _sets(folder_or_sets):
    """`[(name, folder)]` from one folder, a list of folders, or a dict name -> folder."""
    if isinstance(folder_or_sets, (str, os.PathLike)):
        folders = [folder_or_sets]
    elif isinstance(folder_or_sets, dict):
        if not folder_or_sets:
            raise ValueError("evaluate: the dict of sets is empty")
        return [(str(name), os.fspath(folder)) for name, folder in folder_or_sets.items()]
    elif isinstance(folder_or_sets, (list, tuple)):
        if not folder_or_sets:
            raise ValueError("evaluate: the list of folders is empty")
        folders = list(folder_or_sets)
    else:
        raise TypeError(
            "evaluate: folder_or_sets must be a folder path, a list of folders or a dict "
            f"name -> folder, got {type(folder_or_sets).__name__}"
        )
    sets = [(os.path.basename(os.path.normpath(os.fspath(f))), os.fspath(f)) for f in folders]
    names = [name for name, _ in sets]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(
            f"evaluate: several folders are named {', '.join(duplicates)}; pass a dict "
            "name -> folder to tell the sets apart"
        )
    return sets


def _check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"evaluate: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def load_hr(path, scale):
    """An HR image as the protocol uses it: RGB (grey repeated, alpha dropped), mod-cropped.

    Args:
        path: image file (8- or 16-bit).
        scale: int; height and width are cut down to multiples of it.

    Returns:
        uint8 or uint16 `(H, W, 3)`, H and W multiples of `scale`.

    Example:
    >>> from keras_esrgan.images import write_image
    >>> write_image("comic.png", np.zeros((361, 250), np.uint8))    # grey, not a multiple of 4
    >>> load_hr("comic.png", 4).shape
    (360, 248, 3)
    """
    image = as_rgb(read_image(path))
    if image.shape[0] < scale or image.shape[1] < scale:
        raise ValueError(f"{path}: {image.shape[0]}x{image.shape[1]} is smaller than scale={scale}")
    return np.ascontiguousarray(mod_crop(image, scale))


def evaluate(
    generator,
    folder_or_sets,
    scale=4,
    crop_border=None,
    niqe=False,
    tile=None,
    precision=SCORING_PRECISION,
    progress=True,
):
    """PSNR-Y / SSIM-Y (and NIQE) of `generator` and of bicubic on benchmark folders.

    Follows the benchmark protocol step by step (see the module docstring): mod-crop, MATLAB
    bicubic LR, SR through `keras_esrgan.inference`, metrics on Y with `crop_border`.

    Args:
        generator: an `SRGenerator` such as `keras_esrgan.RRDBNet` (or a weights path,
            anything `Upscaler` takes) whose scale is `scale`.
        folder_or_sets: a folder of HR images (the set is named after the folder), a list of
            folders, or a dict `{set name: folder}`. Folders are not searched recursively.
        scale: int, the upscaling factor (mod-crop, LR and bicubic use it).
        crop_border: pixels removed from each edge before the metrics; None = `scale`.
        niqe: also compute NIQE of the SR and bicubic images (about 0.1 s per 0.25 MP image;
            every image must keep two 96x96 blocks after cropping).
        tile: `Upscaler`'s `tile`: None = automatic (whole image when it fits the memory
            budget), 0 = never tile, n = windows of n LR pixels.
        precision: `"fp32"` (default: benchmark numbers), `"bf16"` or `"auto"`
            (`keras_esrgan.precision.INFERENCE_PRECISIONS`).
        progress: show a tqdm progress bar over the images.

    Returns:
        list of `SetResult`, one per set in the given order; `result[i].model.psnr` etc. are
        the means, `result[i].model.images` the per-image `ImageScores` (sorted by file name).

    Raises:
        ValueError: bad `scale` / `crop_border`, a generator of another scale, an image smaller
            than `scale` or too small for `crop_border` (or for NIQE), an unreadable image
            (`keras_esrgan.images.ImageError`), duplicate set names.
        FileNotFoundError: a folder that does not exist.

    On `../shared/data/Set5` the bicubic row is 28.43 dB / 0.8111 (tests/test_evaluation.py).

    Example:
    >>> from keras_esrgan.data.synthetic import write_synthetic_folder
    >>> folder = write_synthetic_folder("images", count=2, size=64)
    >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    >>> result = evaluate(net, folder, progress=False)
    >>> result[0].name, len(result[0].model.images), round(result[0].bicubic.psnr, 2)
    ('images', 2, 24.45)
    """
    scale = _check_int(scale, "scale", 1)
    crop_border = scale if crop_border is None else _check_int(crop_border, "crop_border", 0)
    sets = [
        (name, folder, [hr for hr, _ in list_image_pairs(folder)])
        for name, folder in _sets(folder_or_sets)
    ]
    upscaler = Upscaler(generator, tile=tile, precision=precision)
    if upscaler.scale != scale:
        raise ValueError(
            f"evaluate: the generator upscales x{upscaler.scale} but scale={scale}; pass "
            f"scale={upscaler.scale} (or a x{scale} generator)"
        )
    methods = dict(model=upscaler, bicubic=bicubic_upscale(scale))

    def pairs(paths, bar):
        # Read one image at a time, as the protocol scores it: a set is never all in memory.
        for path in paths:
            hr = load_hr(path, scale)
            yield matlab_bicubic_resize(hr, 1.0 / scale), hr
            bar.update(1)

    results = []
    total = sum(len(paths) for _, _, paths in sets)
    with tqdm(total=total, disable=not progress, unit="image") as bar:
        for name, folder, paths in sets:
            bar.set_description(name)
            rows = validate(
                methods, pairs(paths, bar), crop_border, test_y_channel=True, niqe=niqe,
                names=[os.path.basename(path) for path in paths],
            )
            results.append(
                SetResult(
                    name=name, folder=folder, scale=scale, crop_border=crop_border, **rows
                )
            )
    return results


def format_table(result, model_name="model"):
    """A Markdown table: per set, the model row and the `bicubic` row (means over images).

    Args:
        result: what `evaluate` returns (a list of `SetResult`), or one `SetResult`.
        model_name: label of the model rows.

    Returns:
        str; PSNR in dB with 2 decimals, SSIM and NIQE with 4 (the papers' precision); the
        NIQE column only when NIQE was computed.

    Example:
    >>> from keras_esrgan.data.synthetic import write_synthetic_folder
    >>> folder = write_synthetic_folder("Set", count=2, size=48)
    >>> keras.utils.set_random_seed(0)
    >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    >>> print(format_table(evaluate(net, folder, progress=False), "untrained"))
    | set | method | images | PSNR-Y (dB) | SSIM-Y |
    |---|---|---:|---:|---:|
    | Set | untrained | 2 | 7.08 | 0.0835 |
    | Set | bicubic | 2 | 23.22 | 0.5874 |
    """
    sets = [result] if isinstance(result, SetResult) else list(result)
    with_niqe = any(row.niqe is not None for s in sets for row in s.rows)
    header = ["set", "method", "images", "PSNR-Y (dB)", "SSIM-Y"] + (["NIQE"] if with_niqe else [])
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|---|" + "---:|" * (len(header) - 2),
    ]
    for s in sets:
        for row in s.rows:
            label = model_name if row.method == "model" else row.method
            cells = [s.name, label, str(len(row.images)), f"{row.psnr:.2f}", f"{row.ssim:.4f}"]
            if with_niqe:
                cells.append("-" if row.niqe is None else f"{row.niqe:.4f}")
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
