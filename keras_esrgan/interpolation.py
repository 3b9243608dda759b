"""Network interpolation (ESRGAN section 3.4): blend a PSNR-oriented and a GAN generator.

`interpolate` blends any two generators of one architecture; `interpolate_pair` blends a
model-zoo entry with the `pair` the zoo declares for it (Real-ESRGAN's denoise strength:
realesr-general-x4v3 with realesr-general-wdn-x4v3; RealESRGAN_x4plus with RealESRNet_x4plus).
"""

import os

import numpy as np

from keras_esrgan.models.generator import SRGenerator
from keras_esrgan.pretrained import MODELS
from keras_esrgan.weights import load_generator


def _as_generator(model, role):
    if isinstance(model, (str, os.PathLike)):
        return load_generator(model)
    if not isinstance(model, SRGenerator):
        raise TypeError(
            f"interpolate: {role} must be an SRGenerator such as RRDBNet, a weights path or a "
            f"model-zoo name; got "
            f"{type(model).__name__}"
        )
    return model


def interpolate(psnr_generator, gan_generator, alpha):
    """A new generator with weights `(1 - alpha) * theta_psnr + alpha * theta_gan`.

    ESRGAN's network interpolation trades the PSNR model's smoothness against the GAN model's
    texture continuously, without retraining: alpha = 0 is the PSNR model, 1 the GAN model
    (the paper shows 0.8 as a good balance).

    Args:
        psnr_generator: a generator (`RRDBNet`, `SRVGGNetCompact`, ...), a weights path or a
            model-zoo name, trained with the L1 loss alone.
        gan_generator: the same architecture (generator, path or name) fine-tuned from it
            with the GAN losses.
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


def interpolable_pairs():
    """`{name: pair}` for every registered generator that declares an interpolable `pair`."""
    return {e.name: e.pair for e in MODELS.values() if e.pair and e.kind == "generator" and e.pair in MODELS}


def interpolate_pair(name, strength):
    """Model-zoo generator `name` blended with its declared pair: `strength * name + (1 - strength) * pair`.

    Real-ESRGAN's denoise strength (`-dn`) is this blend for `realesr-general-x4v3` (strong
    denoising) against `realesr-general-wdn-x4v3` (weak); on `RealESRGAN_x4plus` against
    `RealESRNet_x4plus` it is ESRGAN's GAN-versus-PSNR slider. Both files are downloaded (or
    taken from the cache) and verified; the blend is computed once, here.

    Args:
        name: a registered generator whose entry has a `pair` (`interpolable_pairs()`).
        strength: float in [0, 1]: 1 is `name` itself, 0 its pair.

    Returns:
        A new generator of `name`'s architecture (float32).

    Raises:
        ValueError: `name` is not a registered model with a pair (the message lists those that
            have one), or strength outside [0, 1].

    Example (offline here: the error says where to put the file by hand):
    >>> interpolate_pair("realesr-general-x4v3", 0.5)
    Traceback (most recent call last):
    ...
    keras_esrgan.pretrained.errors.OfflineError: ...realesr-general-...
    >>> interpolate_pair("RealESRGAN_x2plus", 0.5)
    Traceback (most recent call last):
    ...
    ValueError: strength: 'RealESRGAN_x2plus' has no interpolable pair in the model zoo; strength works with RealESRGAN_x4plus, RealESRNet_x4plus, realesr-general-wdn-x4v3, realesr-general-x4v3 (or blend two generators with keras_esrgan.interpolate)
    """
    pairs = interpolable_pairs()
    if not isinstance(name, str) or name not in pairs or os.path.exists(name):
        what = f"{name!r} has no interpolable pair in the model zoo" if isinstance(name, str) and (
            name in MODELS) else f"{str(name)[:200]!r} is not a model-zoo name with an interpolable pair"
        raise ValueError(
            f"strength: {what}; strength works with {', '.join(sorted(pairs))} (or blend two "
            "generators with keras_esrgan.interpolate)"
        )
    strength = float(strength)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1] (1: {name}, 0: {pairs[name]}), got {strength}")
    return interpolate(pairs[name], name, alpha=strength)
