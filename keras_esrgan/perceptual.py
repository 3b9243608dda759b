"""ESRGAN's perceptual loss: distances between VGG19 features taken *before* the ReLU.

ESRGAN section 3.3 compares conv5_4 features before activation: after the ReLU they are sparse
(most of them zero in deep layers), which weakens supervision and shifts brightness. Keras'
`keras.applications.VGG19` has the ReLU inside each `Conv2D`, so tapping
`get_layer("block5_conv4").output` gives *post*-activation features. `VGG19FeatureExtractor`
is therefore a dedicated copy of the VGG19 convolution stack whose convs are linear, with the
ReLU applied explicitly between layers; the tapped outputs are the pre-activation features.

Weights come from either of the two ImageNet VGG19s in use, Keras' (BGR, 0..255, "caffe"
preprocessing) or torchvision's (RGB, ImageNet mean/std, "torch": BasicSR's, so the loss matches
BasicSR's `PerceptualLoss` exactly); `keras_esrgan.weights.vgg19` reads both.
"""

import os
import warnings

import keras
import tensorflow as tf

from keras_esrgan.weights.errors import WeightsFileError  # noqa: F401  (perceptual.WeightsFileError)
# The weight sources live in keras_esrgan.weights.vgg19; the names the loss's users read as
# perceptual.X (recipes/environment.py, benchmarks/train_step.py) are re-exported.
from keras_esrgan.weights.vgg19 import (  # noqa: F401
    KERAS_VGG19_FILE,
    KERAS_VGG19_URL,
    TORCHVISION_INDEX,
    TORCHVISION_VGG19_URL,
    VGG19_BLOCKS,
    VGG19_CHANNELS,
    VGG19_CONV_LAYERS,
    imagenet_weights_path,
    load_vgg19_weights,
)

_LAST_IN_BLOCK = {f"block{b}_conv{n}" for b, n, _ in VGG19_BLOCKS}
# BasicSR names the same layers conv1_1 ... conv5_4.
_ALIASES = {f"conv{b}_{c}": f"block{b}_conv{c}" for b, n, _ in VGG19_BLOCKS for c in range(1, n + 1)}

PREPROCESSING = ("caffe", "torch")
# Keras applications' VGG preprocessing: BGR channel means on 0..255.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's ImageNet normalisation on [0, 1] RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# ESRGAN section 3.3 / BasicSR train_ESRGAN_x4.yml: conv5_4 before activation, weight 1.
DEFAULT_LAYER_WEIGHTS = {"block5_conv4": 1.0}
# Real-ESRGAN train_realesrgan_x4plus.yml ("before relu"): conv1_2 0.1, conv2_2 0.1, conv3_4 1,
# conv4_4 1, conv5_4 1.
REAL_ESRGAN_LAYER_WEIGHTS = {
    "block1_conv2": 0.1, "block2_conv2": 0.1, "block3_conv4": 1.0, "block4_conv4": 1.0, "block5_conv4": 1.0,
}
CRITERIA = ("l1", "l2")


def canonical_layer_name(name):
    """`"conv5_4"` (BasicSR) or `"block5_conv4"` (Keras) -> `"block5_conv4"`; ValueError otherwise.

    Example:
    >>> canonical_layer_name("conv5_4")
    'block5_conv4'
    """
    canonical = _ALIASES.get(name, name)
    if canonical not in VGG19_CHANNELS:
        raise ValueError(
            f"unknown VGG19 layer {name!r}: the perceptual loss taps convolutions before their "
            f"ReLU, named block1_conv1 ... block5_conv4 (or BasicSR's conv1_1 ... conv5_4)"
        )
    return canonical


class VGG19FeatureExtractor(keras.layers.Layer):
    """VGG19 convolutions up to the deepest requested layer, returning pre-ReLU features.

    Every conv is linear; ReLU and the 2x2 max-pools are applied between layers, so the
    tapped tensors are the conv outputs *before* activation (they have negative values).
    Frozen: not trainable. Weights are loaded with `load_vgg19_weights`.

    Args:
        layers: iterable of layer names (`"block5_conv4"` or `"conv5_4"` style).
        preprocessing: `"torch"` (ImageNet mean/std on [0, 1] RGB, torchvision weights) or
            `"caffe"` (BGR, 0..255, mean subtracted: Keras' ImageNet weights).
        dtype: dtype policy; features come out in its compute dtype.

    Input: float `(B, H, W, 3)` RGB in [0, 1]. Output: dict layer name -> `(B, h, w, C)`.

    Example:
    >>> vgg = VGG19FeatureExtractor(["block1_conv2"], preprocessing="torch")
    >>> vgg(np.zeros((1, 8, 8, 3), "float32"))["block1_conv2"].shape
    TensorShape([1, 8, 8, 64])
    """

    def __init__(self, layers=("block5_conv4",), preprocessing="torch", **kwargs):
        super().__init__(**kwargs)
        self.layer_names = tuple(canonical_layer_name(name) for name in layers)
        if not self.layer_names:
            raise ValueError("VGG19FeatureExtractor: give at least one layer")
        if preprocessing not in PREPROCESSING:
            raise ValueError(
                f"VGG19FeatureExtractor: preprocessing must be one of {PREPROCESSING}, got {preprocessing!r}"
            )
        self.preprocessing = preprocessing
        depth = max(VGG19_CONV_LAYERS.index(name) for name in self.layer_names) + 1
        # He-normal (fan_out), as torchvision initialises VGG: only used when no weights are
        # loaded, and keeps random features from vanishing over 16 layers.
        init = keras.initializers.VarianceScaling(2.0, mode="fan_out", distribution="untruncated_normal")
        self.convs = [
            keras.layers.Conv2D(
                VGG19_CHANNELS[name], 3, padding="same", kernel_initializer=init, name=name,
                dtype=self.dtype_policy,
            )
            for name in VGG19_CONV_LAYERS[:depth]
        ]
        self.pool = keras.layers.MaxPooling2D(2, 2, name="pool", dtype=self.dtype_policy)
        self.trainable = False
        self.build((None, None, None, 3))

    def build(self, input_shape=None):
        channels = 3
        for conv in self.convs:
            conv.build((None, None, None, channels))
            channels = conv.filters
        self.built = True

    def preprocess(self, images):
        """[0, 1] RGB -> what the weights expect, in float32."""
        x = tf.cast(images, tf.float32)
        if self.preprocessing == "caffe":
            return x[..., ::-1] * 255.0 - tf.constant(CAFFE_MEAN_BGR, tf.float32)
        return (x - tf.constant(IMAGENET_MEAN, tf.float32)) / tf.constant(IMAGENET_STD, tf.float32)

    def call(self, images):
        if images.shape.rank != 4 or (images.shape[-1] is not None and images.shape[-1] != 3):
            raise ValueError(f"VGG19FeatureExtractor takes (B, H, W, 3) RGB images, got shape {images.shape}")
        x = self.preprocess(images)
        features = {}
        for conv in self.convs:
            x = conv(x)
            if conv.name in self.layer_names:
                features[conv.name] = x
            if conv is self.convs[-1]:
                break
            x = tf.nn.relu(x)
            if conv.name in _LAST_IN_BLOCK:
                x = self.pool(x)
        return features

    def get_config(self):
        config = super().get_config()
        config.update(layers=list(self.layer_names), preprocessing=self.preprocessing)
        return config


@keras.saving.register_keras_serializable(package="keras_esrgan")
class PerceptualLoss(keras.layers.Layer):
    """Weighted distance between pre-activation VGG19 features of two images (ESRGAN sec. 3.3).

    Per sample: `sum_l w_l * mean(|phi_l(pred) - phi_l(target)|)` (`"l1"`, as ESRGAN/BasicSR)
    or the squared difference (`"l2"`), in float32, where phi_l are VGG19 conv outputs before
    the ReLU. The VGG is frozen; gradients flow to `pred` only.

    Args:
        layer_weights: dict layer name -> weight; default `{"block5_conv4": 1.0}` (conv5_4,
            ESRGAN). BasicSR names (`"conv5_4"`) are accepted.
        weights: `"imagenet"` (Keras' VGG19 from the Keras cache, downloaded if missing), a
            path (Keras `.h5`, torchvision `.pth` or `.safetensors`), a torchvision-layout
            state dict, or None (random VGG: for tests and benchmarks only; warns).
        criterion: `"l1"` or `"l2"`.
        preprocessing: None (follow the weights: `"caffe"` for Keras files, `"torch"` for
            torchvision and for random weights) or force `"caffe"` / `"torch"`.
        dtype: dtype policy of the VGG (e.g. `"mixed_bfloat16"`); the loss is float32.

    Call: `loss(pred, target)` with float `(B, H, W, 3)` RGB in [0, 1] -> float32 `(B,)`.

    Example:
    >>> loss = PerceptualLoss(weights="vgg19-dcbb9e9d.pth")  # conv5_4, matches BasicSR
    >>> sr, hr = np.zeros((2, 32, 32, 3), "float32"), np.ones((2, 32, 32, 3), "float32")
    >>> loss(sr, hr).shape, float(loss(hr, hr)[0])
    (TensorShape([2]), 0.0)
    """

    def __init__(self, layer_weights=None, weights="imagenet", criterion="l1", preprocessing=None, **kwargs):
        super().__init__(**kwargs)
        layer_weights = dict(DEFAULT_LAYER_WEIGHTS if layer_weights is None else layer_weights)
        if not layer_weights:
            raise ValueError("PerceptualLoss: layer_weights is empty")
        self.layer_weights = {canonical_layer_name(k): float(v) for k, v in layer_weights.items()}
        if criterion not in CRITERIA:
            raise ValueError(f"PerceptualLoss: criterion must be one of {CRITERIA}, got {criterion!r}")
        if preprocessing is not None and preprocessing not in PREPROCESSING:
            raise ValueError(
                f"PerceptualLoss: preprocessing must be None or one of {PREPROCESSING}, got {preprocessing!r}"
            )
        self.criterion = criterion
        self.weights_source = weights if isinstance(weights, (str, os.PathLike)) or weights is None else "state dict"
        self.extractor = VGG19FeatureExtractor(
            list(self.layer_weights), preprocessing=preprocessing or "torch", name="vgg19",
            dtype=self.dtype_policy,
        )
        if weights is None:
            warnings.warn(
                "PerceptualLoss(weights=None): the VGG19 has random weights, so the perceptual "
                "loss is meaningless for training (use it for tests and benchmarks only)",
                stacklevel=2,
            )
        else:
            kind = load_vgg19_weights(self.extractor, weights)
            self.extractor.preprocessing = preprocessing or kind
        self.preprocessing = self.extractor.preprocessing
        self.trainable = False
        self.built = True

    def call(self, pred, target):
        pred_features = self.extractor(pred)
        target_features = self.extractor(tf.stop_gradient(target))
        total = 0.0
        for layer, weight in self.layer_weights.items():
            diff = tf.cast(pred_features[layer], tf.float32) - tf.cast(target_features[layer], tf.float32)
            dist = tf.abs(diff) if self.criterion == "l1" else tf.square(diff)
            total += weight * tf.reduce_mean(dist, axis=[1, 2, 3])
        return total

    def get_config(self):
        config = super().get_config()
        source = self.weights_source
        config.update(
            layer_weights=dict(self.layer_weights),
            weights=None if source in (None, "state dict") else os.fspath(source),
            criterion=self.criterion,
            preprocessing=self.preprocessing,
        )
        return config
