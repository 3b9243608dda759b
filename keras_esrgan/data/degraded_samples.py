"""Look at the training data: write real-world-degraded LR images beside their HR images as PNGs.

`write_degraded_samples` runs the same per-image computation as `realworld_pipeline` (region
crop, USM, two-stage degradation) on a folder of HR images and writes, for each sample, one PNG
with the LR image (enlarged `scale` times by pixel repetition, so every LR pixel shows) on the
left and the HR training target on the right, plus `degradations.json`: what was drawn for each
sample (kernel types and sizes, resize factors and methods, noise type and level, JPEG qualities,
final order). The same seed writes the same files.
"""

import os

import numpy as np
import tensorflow as tf

from keras_esrgan.atomic import write_json
from keras_esrgan.data.folders import rgb_image
from keras_esrgan.data.hr_images import image_paths
from keras_esrgan.data.realworld import CROP_PAD_SIZE, DegradationConfig, degraded_example, sample_for
from keras_esrgan.images import read_image, write_image
from keras_esrgan.pixels import quantize, tf_to_float

SEPARATOR = 4  # white pixels between the LR and the HR image
KERNEL_KEYS = ("kernel1", "kernel2", "sinc_kernel")  # arrays: left out of the JSON description


def write_degraded_samples(
    hr_paths_or_folder, output_dir, seed=0, count=8, scale=4, *, config=None, crop_pad_size=CROP_PAD_SIZE,
    overwrite=True,
):
    """Write `count` LR | HR side-by-side PNGs of the real-world degradation, and what was drawn.

    Args:
        hr_paths_or_folder: a folder of HR images, an image file, or a list of them; sample `i`
            uses image `i % len(images)` (in name order), so more samples than images show
            several degradations of each.
        output_dir: folder to write into (created if missing). Files are written atomically;
            existing files of other names are left alone.
        seed: int; the degradation of sample `i` is the one `realworld_pipeline(seed=seed)`
            draws for the `i`-th element of its stream.
        count: number of samples.
        scale: int factor.
        config: `DegradationConfig` (default: Real-ESRGAN's).
        crop_pad_size: side of the HR region degraded, as in `realworld_pipeline`.
        overwrite: replace files of the same names; with False, nothing is written when one of
            them exists (FileExistsError naming it).

    Returns:
        list of the PNG paths written, `NNN_<image name>.png`; `degradations.json` beside them
        lists, per file, its source image and the drawn degradation.

    Raises:
        FileNotFoundError, ValueError: missing or empty input, a bad argument, or an image that
            cannot be read (named).

    Example:
    >>> paths = write_degraded_samples(["photo.png"], "degraded", count=2, crop_pad_size=16)
    >>> [os.path.basename(p) for p in paths]
    ['000_photo.png', '001_photo.png']
    """
    name = "write_degraded_samples"
    config = DegradationConfig() if config is None else config
    if not isinstance(config, DegradationConfig):
        raise TypeError(f"{name}: config must be a DegradationConfig, got {type(config).__name__}")
    for arg, value in (("count", count), ("scale", scale), ("crop_pad_size", crop_pad_size)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: {arg} must be a positive int, got {value!r}")
    if crop_pad_size % scale:
        raise ValueError(f"{name}: crop_pad_size={crop_pad_size} must be a multiple of scale={scale}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"{name}: seed must be an int, got {seed!r}")
    paths = image_paths(hr_paths_or_folder)
    output_dir = os.fspath(output_dir)
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ValueError(f"{name}: output_dir {output_dir} exists and is not a folder")
    out_paths = [
        os.path.join(output_dir, f"{index:03d}_{os.path.splitext(os.path.basename(paths[index % len(paths)]))[0]}.png")
        for index in range(count)
    ]
    manifest_path = os.path.join(output_dir, "degradations.json")
    if not overwrite:
        existing = [p for p in out_paths + [manifest_path] if os.path.lexists(p)]
        if existing:
            raise FileExistsError(
                f"{name}: {existing[0]} exists ({len(existing)} of the files to write do); pass "
                "overwrite=True to replace them"
            )
    os.makedirs(output_dir, exist_ok=True)

    @tf.function(
        input_signature=[tf.TensorSpec((None, None, 3), tf.float32), tf.TensorSpec((), tf.int64)]
    )
    def example(image, index):
        return degraded_example(image, seed, index, scale, config=config, crop_pad_size=crop_pad_size)

    written, manifest = [], []
    for index, out_path in enumerate(out_paths):
        path = paths[index % len(paths)]
        image = rgb_image(read_image(path), np.uint8)
        lr, hr, hr_usm = example(tf_to_float(image), tf.constant(index, tf.int64))
        target = hr_usm if config.gt_usm else hr
        lr_big = np.repeat(np.repeat(lr.numpy(), scale, axis=0), scale, axis=1)
        gap = np.ones((lr_big.shape[0], SEPARATOR, 3), np.float32)
        side_by_side = np.concatenate([lr_big, gap, target.numpy()], axis=1)
        write_image(out_path, quantize(side_by_side), overwrite=overwrite)
        written.append(out_path)
        drawn = {k: v for k, v in sample_for(config, seed, index).items() if k not in KERNEL_KEYS}
        manifest.append({"file": os.path.basename(out_path), "source": path, "degradation": drawn})
    write_json(
        manifest_path,
        {"seed": seed, "scale": scale, "crop_pad_size": crop_pad_size, "gt_usm": config.gt_usm,
         "samples": manifest},
        overwrite=overwrite,
    )
    return written
