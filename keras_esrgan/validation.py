"""The validation protocol: how an upscaler is scored on `(lr, hr)` pairs, in one place.

Training (`callbacks.ValidationCallback`), the recipe's final table (`recipes.train`) and
benchmark evaluation (`evaluation.evaluate`) all score through `validate`, as BasicSR's
`nondist_validation` serves both its `train.py` and `test.py`. The protocol is in the arguments,
as in BasicSR's `calculate_psnr` / `calculate_ssim`:

1. each method upscales the uint8 (or uint16) LR image to an image of the HR's dtype; a float
   network output becomes integers through `keras_esrgan.pixels.quantize` (the package's one
   rounding rule, BasicSR's `tensor2img`);
2. `crop_border` pixels (the scale, by convention) are removed from each edge;
3. PSNR and SSIM (`keras_esrgan.metrics`) on the BT.601 Y channel (`test_y_channel=True`, the
   papers') or on RGB; NIQE of the upscaled image on request;
4. a method's score is the mean over the images.

Which network call makes the SR image is the caller's choice, given as the `upscale` callable:
`generator_upscale(net)` (one eager, untiled call: the training-time monitor, which follows the
weights as they change) or a `keras_esrgan.inference.Upscaler` (traced, tiled when large: what
`evaluate` reports); `bicubic_upscale(scale)` is the baseline row.
"""

import dataclasses

import numpy as np

from keras_esrgan import metrics
from keras_esrgan.data.degrade import matlab_bicubic_resize
from keras_esrgan.pixels import quantize, to_float


@dataclasses.dataclass(frozen=True)
class ImageScores:
    """One image's scores for one method. `niqe` is None unless asked for."""

    name: str
    psnr: float
    ssim: float
    niqe: float = None


@dataclasses.dataclass(frozen=True)
class MethodScores:
    """One method's scores on a set: its name (`"model"`, `"bicubic"`...) and per-image scores."""

    method: str
    images: tuple

    @property
    def psnr(self):
        """Mean PSNR over the images, dB."""
        return float(np.mean([image.psnr for image in self.images]))

    @property
    def ssim(self):
        """Mean SSIM over the images."""
        return float(np.mean([image.ssim for image in self.images]))

    @property
    def niqe(self):
        """Mean NIQE over the images, or None when NIQE was not computed."""
        if any(image.niqe is None for image in self.images):
            return None
        return float(np.mean([image.niqe for image in self.images]))

    def means(self):
        """`{"psnr", "ssim"}`: the two means, as the recipe's tables and logs record them."""
        return dict(psnr=self.psnr, ssim=self.ssim)


def validation_images(pairs):
    """`(lr, hr)` pairs as a list of uint8 numpy pairs `(h, w, 3)`, `(s*h, s*w, 3)`.

    Args:
        pairs: `validation_pipeline(...)` (float batches of one in [0, 1]), any iterable of
            float `(1, h, w, 3)` / `(h, w, 3)` pairs in [0, 1], or of uint8 pairs.

    Float input in [0, 1] that came from uint8 files rounds back to exactly the file's values
    (`keras_esrgan.pixels.quantize`, BasicSR's `tensor2img` rounding).

    Example:
    >>> from keras_esrgan.data import image_folder, validation_pipeline, write_synthetic_folder
    >>> val = validation_images(validation_pipeline(image_folder(write_synthetic_folder("val", 2, 64))))
    >>> len(val), val[0][0].shape, val[0][0].dtype, val[0][1].shape
    (2, (16, 16, 3), dtype('uint8'), (64, 64, 3))
    """
    out = []
    for lr, hr in pairs:
        lr, hr = np.asarray(lr), np.asarray(hr)
        if lr.ndim == 4:
            if lr.shape[0] != 1 or hr.shape[0] != 1:
                raise ValueError(f"validation_images: batches of one image expected, got {lr.shape}")
            lr, hr = lr[0], hr[0]
        if lr.dtype != np.uint8:
            lr, hr = quantize(lr), quantize(hr)
        out.append((lr, hr))
    if not out:
        raise ValueError("validation_images: the validation set is empty")
    return out


def generator_upscale(generator):
    """`lr uint8 (h, w, 3) -> sr uint8 (s*h, s*w, 3)` with a Keras generator, one full image.

    The generator runs eagerly in inference mode (any dtype policy; outputs are float32), so a
    training run's validation sees the weights of the moment without retracing anything.
    """

    def upscale(lr):
        return quantize(generator(to_float(lr)[None], training=False)[0])

    return upscale


def bicubic_upscale(scale):
    """`lr -> MATLAB imresize(lr, scale, 'bicubic')` in the LR's dtype: the baseline row."""

    def upscale(lr):
        return matlab_bicubic_resize(lr, scale)

    return upscale


def score_image(sr, hr, crop_border, test_y_channel=True, niqe=False, name=""):
    """`ImageScores` of one upscaled image against its HR image.

    Args:
        sr, hr: integer `(H, W, 3)` images of one dtype (uint8: peak 255, uint16: 65535).
        crop_border: pixels removed from each edge before measuring.
        test_y_channel: PSNR/SSIM on the BT.601 Y channel (True) or on RGB.
        niqe: also NIQE of `sr` (same crop).
        name: recorded in the result.
    """
    if sr.shape != hr.shape:
        raise ValueError(f"output {sr.shape} for an HR image of {hr.shape}")
    return ImageScores(
        name=name,
        psnr=float(metrics.psnr(sr, hr, crop_border, test_y_channel=test_y_channel)),
        ssim=float(metrics.ssim(sr, hr, crop_border, test_y_channel=test_y_channel)),
        niqe=float(metrics.niqe(sr, crop_border)) if niqe else None,
    )


def validate(methods, pairs, crop_border, test_y_channel=True, niqe=False, names=None):
    """Score one or several upscalers on `(lr, hr)` pairs with the protocol in the arguments.

    Args:
        methods: `{name: upscale}` with `upscale` an integer `(h, w, 3)` -> `(s*h, s*w, 3)`
            callable (`generator_upscale(net)`, an `Upscaler`, `bicubic_upscale(4)`), or one
            such callable (then named `"model"`).
        pairs: iterable of integer `(lr, hr)` numpy pairs (`validation_images`); read once, so
            it may be a generator that loads each image when asked.
        crop_border: pixels removed from each edge (the scale, by convention).
        test_y_channel: Y channel (True, as the papers) or RGB.
        niqe: also NIQE of each upscaled image.
        names: image names recorded in the scores and named in errors (default `"#<i>"`).

    Returns:
        `{name: MethodScores}` in the order of `methods` (`.psnr`, `.ssim`, `.niqe` are the
        means, `.images` the per-image `ImageScores`).

    Raises:
        ValueError: no images, an output of the wrong size, an image too small for
            `crop_border` (or for NIQE); the message starts with the image's name.

    Example:
    >>> from keras_esrgan.data import image_folder, write_synthetic_folder
    >>> val = validation_images(image_folder(write_synthetic_folder("val", 2, 64)))
    >>> scores = validate({"bicubic": bicubic_upscale(4)}, val, crop_border=4)["bicubic"]
    >>> round(scores.psnr, 2), round(scores.ssim, 4), len(scores.images)
    (24.45, 0.6539, 2)
    """
    if callable(methods):
        methods = {"model": methods}
    rows = {method: [] for method in methods}
    for index, (lr, hr) in enumerate(pairs):
        name = names[index] if names is not None else f"#{index}"
        try:
            for method, upscale in methods.items():
                rows[method].append(score_image(upscale(lr), hr, crop_border, test_y_channel, niqe, name))
        except ValueError as err:
            raise ValueError(f"{name}: {err}") from None
    if not any(rows.values()) and methods:
        raise ValueError("validate: no images to score")
    return {method: MethodScores(method, tuple(images)) for method, images in rows.items()}
