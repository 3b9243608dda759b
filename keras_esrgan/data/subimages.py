"""Cut large training images into overlapping sub-images on disk, as BasicSR does for DIV2K.

Decoding a 2K PNG to crop one 128-pixel patch from it wastes most of the work; BasicSR therefore
cuts DIV2K once into 480x480 sub-images with a 240-pixel step (and the x4 LR images into
120x120 with a 60-pixel step, so both sets stay aligned and share names). Use this when the
decoded images do not fit in memory (`training_pipeline(cache=True)` is faster when they do).
"""

import concurrent.futures
import os
import re

from tqdm.auto import tqdm

from keras_esrgan.data.folders import _image_files
from keras_esrgan.images import read_image, write_image

# DIV2K/BasicSR LR names: a number, then x2/x3/x4/x8 ("0001x4"). Only after a digit, so that
# "matrix4" keeps its name.
_SCALE_SUFFIX = re.compile(r"(?<=\d)[xX][2348]$")


def _positions(length, crop_size, step, thresh_size):
    """BasicSR's positions along one axis: every `step`, plus a last crop flush with the end
    when more than `thresh_size` pixels would be left over; one crop when the image is smaller."""
    if length <= crop_size:
        return [0]
    positions = list(range(0, length - crop_size + 1, step))
    if length - (positions[-1] + crop_size) > thresh_size:
        positions.append(length - crop_size)
    return positions


def _cut(path, output_dir, crop_size, step, thresh_size):
    image = read_image(path)
    stem = _SCALE_SUFFIX.sub("", os.path.splitext(os.path.basename(path))[0])
    h, w = image.shape[:2]
    index = 0
    for top in _positions(h, crop_size, step, thresh_size):
        for left in _positions(w, crop_size, step, thresh_size):
            index += 1
            crop = image[top : top + crop_size, left : left + crop_size]
            write_image(os.path.join(output_dir, f"{stem}_s{index:03d}.png"), crop)
    return index


def extract_subimages(input_dir, output_dir, crop_size=480, step=240, thresh_size=0, num_workers=None):
    """Write every image of `input_dir` as overlapping `crop_size` squares to `output_dir`.

    Args:
        input_dir: folder of images (not recursive).
        output_dir: created if needed; sub-images are PNG (16-bit kept), named
            `<name>_s001.png`, `<name>_s002.png`, ... row by row, with a DIV2K scale suffix
            after a digit (`0001x4` -> `0001`) removed so that HR and LR sub-images pair by name.
        crop_size: sub-image side: 480 for DIV2K HR, 480 / scale for its LR images.
        step: distance between sub-images: 240 for HR, 240 / scale for LR.
        thresh_size: a last, end-flush sub-image is added when more than this many pixels
            would be left uncovered (BasicSR: 0).
        num_workers: threads (PNG decoding and encoding release the GIL); default all cores.

    Returns:
        number of sub-images written. Writes are atomic; unreadable files raise `ImageError`.

    Example (DIV2K: 480/240 on the HR folder, 120/60 on the x4 LR one; here a 64 px image):
    >>> from keras_esrgan.data import image_folder, write_synthetic_folder
    >>> write_image("lr.png", read_image(write_synthetic_folder("DIV2K_train_HR", 1, 64) + "/0000.png")[::4, ::4])
    >>> os.makedirs("DIV2K_train_LR_bicubic/X4", exist_ok=True)
    >>> os.replace("lr.png", "DIV2K_train_LR_bicubic/X4/0000x4.png")
    >>> extract_subimages("DIV2K_train_HR", "DIV2K_train_HR_sub", 32, 16)
    9
    >>> extract_subimages("DIV2K_train_LR_bicubic/X4", "DIV2K_train_LR_sub", 8, 4)
    9
    >>> pairs = image_folder("DIV2K_train_HR_sub", "DIV2K_train_LR_sub")
    >>> len(list(pairs))
    9
    """
    if crop_size < 1 or step < 1:
        raise ValueError(f"extract_subimages: crop_size and step must be positive, got {crop_size}, {step}")
    paths = list(_image_files(input_dir).values())
    os.makedirs(output_dir, exist_ok=True)
    total = 0
    with concurrent.futures.ThreadPoolExecutor(num_workers or os.cpu_count()) as pool:
        jobs = [pool.submit(_cut, p, output_dir, crop_size, step, thresh_size) for p in paths]
        done = concurrent.futures.as_completed(jobs)
        for job in tqdm(done, total=len(jobs), desc="sub-images", unit="image"):
            total += job.result()
    return total
