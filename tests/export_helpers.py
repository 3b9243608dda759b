"""Shared pieces of the export tests: an image-like tiny generator, images, PSNR."""

import numpy as np
import keras

from keras_esrgan import RRDBNet
from tests.conftest import TINY


def image_like_generator(scale=4, seed=0):
    """A TINY RRDBNet whose output spans the image range like a trained one's.

    Randomly initialised, the generator outputs values within about +-0.05 of zero, so half of
    them clip to black and quantization errors look tiny next to the 0..255 range. Rescaling
    `conv_last` to give outputs of mean 0.5 and standard deviation 0.2 on random input keeps
    every layer random but makes PSNRs on uint8 outputs mean what they mean for real models.
    """
    keras.utils.set_random_seed(seed)
    generator = RRDBNet(scale=scale, **TINY)
    probe = np.random.default_rng(seed).random((1, 24, 24, 3), dtype=np.float32)
    out = generator(probe).numpy().reshape(-1, 3)
    gain = 0.2 / out.std(axis=0)
    kernel, bias = generator.conv_last.get_weights()
    generator.conv_last.set_weights([kernel * gain, (bias - out.mean(axis=0)) * gain + 0.5])
    return generator


def generated_image(height, width, seed=0):
    """A synthetic uint8 RGB photo stand-in: smooth gradients, a sharp disc, mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    image = np.stack([x / width, y / height, 0.5 + 0.5 * np.sin((x + y) / 7.0)], axis=-1)
    disc = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (min(height, width) / 4) ** 2
    image[disc] = 1.0 - image[disc]
    image += rng.normal(0, 0.02, image.shape)
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def real_crop(name, top, left, height, width):
    """A uint8 RGB crop of a procedural photo-like image, one per `name` (tests/standins.py):
    edges, textures and gradients, always available (no ../shared/data)."""
    from tests.standins import photo_crop

    return photo_crop(name, top, left, height, width)


def keras_uint8(generator, images_uint8):
    """The Keras generator's output for uint8 images, rounded and clipped to uint8."""
    out = generator(images_uint8.astype(np.float32) / 255.0).numpy()
    return np.clip(np.round(out * 255.0), 0, 255).astype(np.uint8)


def psnr_uint8(a, b):
    """PSNR in dB between two uint8 arrays (peak 255); inf when identical."""
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10.0 * np.log10(255.0**2 / mse)
