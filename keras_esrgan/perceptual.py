"""ESRGAN's perceptual loss: distances between VGG19 features taken *before* the ReLU.

ESRGAN section 3.3 compares conv5_4 features before activation: after the ReLU they are sparse
(most of them zero in deep layers), which weakens supervision and shifts brightness. Keras'
`keras.applications.VGG19` has the ReLU inside each `Conv2D`, so tapping
`get_layer("block5_conv4").output` gives *post*-activation features. `VGG19FeatureExtractor`
is therefore a dedicated copy of the VGG19 convolution stack whose convs are linear, with the
ReLU applied explicitly between layers; the tapped outputs are the pre-activation features.

Weights come from either of the two ImageNet VGG19s in use:
- Keras' own (`vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, from the Keras cache, a
  download, or a local path): converted from Caffe, it takes BGR input in 0..255 minus the
  ImageNet channel means ("caffe" preprocessing);
- torchvision's (`vgg19-dcbb9e9d.pth`, read without torch by `keras_esrgan.weights`): RGB in
  [0, 1] normalised by the ImageNet mean and std ("torch" preprocessing). This is what
  BasicSR uses, so with it the loss matches BasicSR's `PerceptualLoss` exactly.
"""

import os
import warnings

import h5py
import keras
import numpy as np
import tensorflow as tf

from keras_esrgan.weights import WeightsFileError, load_safetensors, load_torch_file

# (Keras layer name, output channels) for the 16 convolutions, in order; a 2x2 max-pool
# follows the last conv of each block.
_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
VGG19_CONV_LAYERS = tuple(f"block{b}_conv{c}" for b, n, _ in _BLOCKS for c in range(1, n + 1))
_CHANNELS = {f"block{b}_conv{c}": ch for b, n, ch in _BLOCKS for c in range(1, n + 1)}
_LAST_IN_BLOCK = {f"block{b}_conv{n}" for b, n, _ in _BLOCKS}
# torchvision `vgg19().features` index of each conv (ReLUs and pools take the other indices).
TORCHVISION_INDEX = dict(
    zip(VGG19_CONV_LAYERS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34))
)
# BasicSR names the same layers conv1_1 ... conv5_4.
_ALIASES = {f"conv{b}_{c}": f"block{b}_conv{c}" for b, n, _ in _BLOCKS for c in range(1, n + 1)}

PREPROCESSING = ("caffe", "torch")
# Keras applications' VGG preprocessing: BGR channel means on 0..255.
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's ImageNet normalisation on [0, 1] RGB.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

KERAS_VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_VGG19_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_VGG19_FILE
)
KERAS_VGG19_MD5 = "253f8cb515780f3b799900260a226db6"
TORCHVISION_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"

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
    if canonical not in _CHANNELS:
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
                _CHANNELS[name], 3, padding="same", kernel_initializer=init, name=name,
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


def _keras_home():
    # Read at call time (Keras reads KERAS_HOME once, at import).
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def _download_keras_vgg19(cache_dir):
    return keras.utils.get_file(
        KERAS_VGG19_FILE, KERAS_VGG19_URL, cache_subdir="models", file_hash=KERAS_VGG19_MD5,
        cache_dir=cache_dir,
    )


def imagenet_weights_path():
    """Path of Keras' VGG19 ImageNet weights: the Keras cache, else a download.

    Raises:
        WeightsFileError: not cached and the download failed (e.g. offline), with the URLs to
            fetch and how to pass the file.

    Example (offline, with nothing in the Keras cache):
    >>> imagenet_weights_path()
    Traceback (most recent call last):
    ...
    keras_esrgan.weights.errors.WeightsFileError: VGG19 ImageNet weights for the perceptual loss are not in the Keras cache (...) and could not be downloaded (...
    """
    home = _keras_home()
    cached = os.path.join(home, "models", KERAS_VGG19_FILE)
    if os.path.isfile(cached):
        return cached
    try:
        return _download_keras_vgg19(home)
    except Exception as err:  # get_file raises bare Exception on URL errors
        raise WeightsFileError(
            f"VGG19 ImageNet weights for the perceptual loss are not in the Keras cache "
            f"({cached}) and could not be downloaded ({type(err).__name__}: {err}). On a machine "
            f"with internet, download either\n"
            f"  {KERAS_VGG19_URL}  (Keras, 80 MB; put it at {cached}, or pass its path), or\n"
            f"  {TORCHVISION_VGG19_URL}  (torchvision, as BasicSR; 548 MB)\n"
            f"and pass the path: PerceptualLoss(weights='/path/to/file') or "
            f"ESRGAN(perceptual_weights='/path/to/file'). weights=None (random VGG) is for tests only."
        ) from None


def _read_h5_attribute_list(group, name):
    # Keras splits long attribute lists into name0, name1, ... (HDF5 header size limit).
    if name in group.attrs:
        values = list(group.attrs[name])
    else:
        values, chunk = [], 0
        while f"{name}{chunk}" in group.attrs:
            values.extend(group.attrs[f"{name}{chunk}"])
            chunk += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def _keras_h5_arrays(path, layer_names):
    """{layer: (kernel HWIO, bias)} from a Keras VGG19 .h5 (keras.applications layout)."""
    name = os.path.basename(path)
    out = {}
    with h5py.File(path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for layer in layer_names:
            if layer not in root:
                raise WeightsFileError(
                    f"{name}: no layer {layer!r}; expected Keras' VGG19 weights "
                    f"({KERAS_VGG19_FILE}) with layers block1_conv1 ... block5_conv4"
                )
            group = root[layer]
            arrays = [np.asarray(group[w]) for w in _read_h5_attribute_list(group, "weight_names")]
            kernels = [a for a in arrays if a.ndim == 4]
            biases = [a for a in arrays if a.ndim == 1]
            if len(kernels) != 1 or len(biases) != 1:
                raise WeightsFileError(f"{name}: layer {layer!r} is not a Conv2D with a bias")
            out[layer] = (kernels[0], biases[0])
    return out


def _torch_arrays(state, layer_names, name):
    """{layer: (kernel HWIO, bias)} from a torchvision-layout VGG19 state dict."""
    if not isinstance(state, dict):
        raise WeightsFileError(f"{name}: expected a VGG19 state dict, got {type(state).__name__}")
    for key in ("state_dict", "params", "model"):
        if key in state and isinstance(state[key], dict):
            state = state[key]
    out = {}
    for layer in layer_names:
        suffix = f"features.{TORCHVISION_INDEX[layer]}."
        found = {}
        for key, value in state.items():
            if not isinstance(key, str) or not isinstance(value, np.ndarray):
                continue  # metadata beside the tensors
            for param in ("weight", "bias"):
                # "features.0.weight", or with a prefix: "module.features.0.weight"
                if key == suffix + param or key.endswith("." + suffix + param):
                    found[param] = np.asarray(value, np.float32)
        if set(found) != {"weight", "bias"}:
            raise WeightsFileError(
                f"{name}: no {suffix}weight/bias for {layer}; expected torchvision's VGG19 layout "
                f"(features.0.weight ... features.34.bias)"
            )
        out[layer] = (found["weight"].transpose(2, 3, 1, 0), found["bias"])
    return out


def _is_hdf5(path):
    with open(path, "rb") as f:
        return f.read(8) == b"\x89HDF\r\n\x1a\n"


def load_vgg19_weights(extractor, weights):
    """Fill a `VGG19FeatureExtractor` with pretrained weights; returns the preprocessing they need.

    Args:
        extractor: `VGG19FeatureExtractor`.
        weights: `"imagenet"` (Keras' file: cache, else download), a path to a Keras `.h5`
            (keras.applications layout), a torchvision `.pth` / `.safetensors`
            (`features.N.weight`), or such a state dict of numpy arrays. Only the convs the
            extractor has are read, so a truncated file works for shallow layers.

    Returns:
        `"caffe"` for Keras weights, `"torch"` for torchvision ones.

    Raises:
        WeightsFileError: missing file, missing layers or wrong shapes, with the layer named.

    Example:
    >>> vgg = VGG19FeatureExtractor(["conv2_2"])
    >>> load_vgg19_weights(vgg, "vgg19-dcbb9e9d.pth")     # torchvision's file
    'torch'
    """
    names = [conv.name for conv in extractor.convs]
    if isinstance(weights, dict):
        arrays, kind = _torch_arrays(weights, names, "state dict"), "torch"
    else:
        path = imagenet_weights_path() if weights == "imagenet" else os.fspath(weights)
        if not os.path.isfile(path):
            raise WeightsFileError(f"VGG19 weights file not found: {path}")
        if _is_hdf5(path):
            arrays, kind = _keras_h5_arrays(path, names), "caffe"
        elif path.lower().endswith(".safetensors"):
            arrays, kind = _torch_arrays(load_safetensors(path), names, os.path.basename(path)), "torch"
        else:
            arrays, kind = _torch_arrays(load_torch_file(path), names, os.path.basename(path)), "torch"
    for conv in extractor.convs:
        kernel, bias = arrays[conv.name]
        if tuple(kernel.shape) != tuple(conv.kernel.shape) or tuple(bias.shape) != tuple(conv.bias.shape):
            raise WeightsFileError(
                f"VGG19 layer {conv.name}: weights have kernel {tuple(kernel.shape)} / bias "
                f"{tuple(bias.shape)}, VGG19 needs {tuple(conv.kernel.shape)} / {tuple(conv.bias.shape)}"
            )
        conv.kernel.assign(kernel.astype("float32"))
        conv.bias.assign(bias.astype("float32"))
    return kind


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
