"""Network interpolation (ESRGAN section 3.4): blend a PSNR-oriented and a GAN generator."""

import os

import numpy as np

from keras_esrgan.models.generator import SRGenerator
from keras_esrgan.weights import load_generator


def _as_generator(model, role):
    if isinstance(model, (str, os.PathLike)):
        return load_generator(model)
    if not isinstance(model, SRGenerator):
        raise TypeError(
            f"interpolate: {role} must be an SRGenerator such as RRDBNet, or a weights path; got "
            f"{type(model).__name__}"
        )
    return model


def interpolate(psnr_generator, gan_generator, alpha):
    """A new generator with weights `(1 - alpha) * theta_psnr + alpha * theta_gan`.

    ESRGAN's network interpolation trades the PSNR model's smoothness against the GAN model's
    texture continuously, without retraining: alpha = 0 is the PSNR model, 1 the GAN model
    (the paper shows 0.8 as a good balance).

    Args:
        psnr_generator: `RRDBNet` (or a weights path) trained with the L1 loss alone.
        gan_generator: `RRDBNet` (or a weights path) fine-tuned from it with the GAN losses.
        alpha: float in [0, 1].

    Returns:
        A new generator of the PSNR model's class, configuration and dtype policy
        (`psnr_generator.clone()`, then blended).

    Raises:
        ValueError: alpha outside [0, 1], or the two generators differ in architecture.

    Example:
    >>> net = interpolate("RRDB_PSNR_x4.pth", "RRDB_ESRGAN_x4.pth", alpha=0.8)
    >>> psnr, gan = (keras_esrgan.load_generator(f) for f in ("RRDB_PSNR_x4.pth", "RRDB_ESRGAN_x4.pth"))
    >>> w = [v.numpy() for v in (net.conv_first.kernel, psnr.conv_first.kernel, gan.conv_first.kernel)]
    >>> np.allclose(w[0], 0.2 * w[1] + 0.8 * w[2])
    True
    """
    alpha = float(alpha)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"interpolate: alpha must be in [0, 1], got {alpha}")
    psnr = _as_generator(psnr_generator, "psnr_generator")
    gan = _as_generator(gan_generator, "gan_generator")
    if type(psnr) is not type(gan) or psnr.config != gan.config:
        raise ValueError(
            f"interpolate: the generators differ in architecture: {psnr.describe()} vs {gan.describe()}"
        )
    blended = psnr.clone()
    for target, a, b in zip(blended.weights, psnr.weights, gan.weights):
        a, b = np.asarray(a.numpy(), np.float64), np.asarray(b.numpy(), np.float64)
        target.assign(((1.0 - alpha) * a + alpha * b).astype("float32"))
    return blended
