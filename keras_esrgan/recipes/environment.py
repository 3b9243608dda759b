"""Where a recipe runs: the distribution strategy and the perceptual loss's VGG19.

(The dtype policy of `--mixed_precision` is `keras_esrgan.precision.training_policy`.)
"""

import os
import warnings

import tensorflow as tf
from absl import logging

from keras_esrgan._compat import is_default_strategy
from keras_esrgan.perceptual import PerceptualLoss
from keras_esrgan.precision import has_gpu
from keras_esrgan.recipes.presets import DEFAULT_STRATEGY, STRATEGIES, RecipeError
from keras_esrgan.weights import vgg19
from keras_esrgan.weights.errors import WeightsFileError


def make_strategy(name=DEFAULT_STRATEGY):
    """The `tf.distribute` strategy for `--strategy`.

    Args:
        name: `"mirrored"`: `MirroredStrategy` over all visible GPUs, or, with no GPU, the
            default (single-device) strategy; `"multi_worker"`: `MultiWorkerMirroredStrategy`
            from `TF_CONFIG` (create it before any other TensorFlow work in the process);
            `"default"`: the default strategy.

    Returns:
        a `tf.distribute.Strategy`.

    Example:
    >>> strategy = make_strategy("mirrored")
    >>> strategy is tf.distribute.get_strategy() or bool(tf.config.list_logical_devices("GPU"))
    True
    """
    if name not in STRATEGIES:
        raise RecipeError(f"strategy must be one of {', '.join(STRATEGIES)}, got {name!r}")
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            logging.warning("strategy=multi_worker without TF_CONFIG: this process is the only worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if gpus:
            return tf.distribute.MirroredStrategy([gpu.name for gpu in gpus])
    return tf.distribute.get_strategy()


def describe_strategy(strategy):
    """A short description of a strategy for the logs, e.g. "MirroredStrategy, 2 replicas".

    Example:
    >>> describe_strategy(tf.distribute.MirroredStrategy(["/cpu:0"]))
    'MirroredStrategy, 1 replica'
    """
    replicas = strategy.num_replicas_in_sync
    if is_default_strategy(strategy):
        device = "/GPU:0" if has_gpu() else "/CPU:0"
        return f"default strategy (one device: {device})"
    return f"{type(strategy).__name__}, {replicas} replica{'s' if replicas != 1 else ''}"


def perceptual_loss(weights=None, fallback=False, dtype=None, layer_weights=None):
    """The GAN stage's `PerceptualLoss`, with the offline preset's logged fallback.

    Args:
        weights: `None` (the preset's choice: Keras' ImageNet VGG19, from the Keras cache only
            when `fallback`, else from the cache or a download), `"imagenet"` (cache or
            download), `"random"` (a random VGG19, logged), or a path to Keras'
            `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5` or torchvision's
            `vgg19-dcbb9e9d.pth`.
        fallback: when `weights` is None and the ImageNet file is not cached, log a warning
            and use a random VGG19 instead of failing (the offline preset; the paper preset
            must not train ESRGAN without its loss).
        dtype: dtype policy of the VGG.
        layer_weights: the VGG19 layers and their weights (`PerceptualLoss`'s; default conv5_4).

    Returns:
        `(loss, description)`: the `PerceptualLoss` and a short description for the logs.

    Raises:
        WeightsFileError: the weights cannot be had and no fallback applies (in seconds).

    Example:
    >>> loss, what = perceptual_loss(fallback=True)     # nothing in the Keras cache
    >>> what
    'random VGG19 (fallback: ImageNet weights not cached)'
    >>> perceptual_loss("vgg19-dcbb9e9d.pth")[1]
    'VGG19 from vgg19-dcbb9e9d.pth'
    """
    def random_vgg(reason):
        with warnings.catch_warnings():  # PerceptualLoss warns about weights=None; we log instead
            warnings.simplefilter("ignore", UserWarning)
            return PerceptualLoss(layer_weights, weights=None, dtype=dtype), f"random VGG19 ({reason})"

    if weights == "random":
        logging.warning(
            "vgg_weights=random: the perceptual loss uses a randomly initialised VGG19, so the GAN "
            "stage is not ESRGAN's (for tests and timing only)"
        )
        return random_vgg("vgg_weights=random")
    if weights is None and fallback:
        cached = os.path.join(vgg19.keras_home(), "models", vgg19.KERAS_VGG19_FILE)
        if os.path.isfile(cached):
            return PerceptualLoss(layer_weights, weights=cached, dtype=dtype), f"ImageNet VGG19 ({cached})"
        logging.warning(
            "VGG19 ImageNet weights for the perceptual loss are not in the Keras cache (%s), and the "
            "offline preset downloads nothing. The GAN stage continues with a RANDOMLY INITIALISED "
            "VGG19 (PerceptualLoss(weights=None)): the run goes through the whole ESRGAN code path, "
            "but its perceptual loss is not ESRGAN's, so the GAN model's textures mean little. For "
            "the real loss pass --vgg_weights=imagenet (downloads 80 MB from %s into the Keras "
            "cache) or --vgg_weights=/path/to/%s (or torchvision's vgg19-dcbb9e9d.pth, as BasicSR).",
            cached,
            vgg19.KERAS_VGG19_URL,
            vgg19.KERAS_VGG19_FILE,
        )
        return random_vgg("fallback: ImageNet weights not cached")
    source = "imagenet" if weights is None else weights
    try:
        loss = PerceptualLoss(layer_weights, weights=source, dtype=dtype)
    except WeightsFileError as err:
        raise type(err)(f"{err}\nWith recipes/train_div2k.py: --vgg_weights=/path/to/file.") from None
    return loss, "ImageNet VGG19 (Keras)" if source == "imagenet" else f"VGG19 from {source}"
