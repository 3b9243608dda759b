"""VGG19 weight files for the perceptual loss: Keras' and torchvision's ImageNet VGG19s.

Two files are in use, with different layouts and input conventions:
- Keras' (`vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, from the Keras cache, a
  download, or a local path): layers `block1_conv1` ... `block5_conv4`, HWIO kernels; converted
  from Caffe, it takes BGR input in 0..255 minus the ImageNet channel means ("caffe");
- torchvision's (`vgg19-dcbb9e9d.pth`, or its `.safetensors`): `features.N.weight` in PyTorch's
  `[out, in, kh, kw]`; RGB in [0, 1] normalised by the ImageNet mean and std ("torch"). BasicSR
  uses it, so with it the loss matches BasicSR's `PerceptualLoss` exactly.

The network itself (pre-activation features, the loss) is `keras_esrgan.perceptual`'s; this
module names VGG19's convolutions, reads either file and fills the convs.
"""

import os

import h5py
import keras
import numpy as np

from keras_esrgan.weights.errors import WeightsFileError
from keras_esrgan.weights.formats import sniff_format, unwrap_state_dict
from keras_esrgan.weights.reader import read_checkpoint

# (block, convolutions, output channels): a 2x2 max-pool follows the last conv of each block.
VGG19_BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 4, 256), (4, 4, 512), (5, 4, 512))
VGG19_CONV_LAYERS = tuple(f"block{b}_conv{c}" for b, n, _ in VGG19_BLOCKS for c in range(1, n + 1))
VGG19_CHANNELS = {f"block{b}_conv{c}": ch for b, n, ch in VGG19_BLOCKS for c in range(1, n + 1)}
# torchvision `vgg19().features` index of each conv (ReLUs and pools take the other indices).
TORCHVISION_INDEX = dict(
    zip(VGG19_CONV_LAYERS, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34))
)

KERAS_VGG19_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_VGG19_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg19/" + KERAS_VGG19_FILE
)
KERAS_VGG19_MD5 = "253f8cb515780f3b799900260a226db6"
TORCHVISION_VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"


def keras_home():
    """Keras' cache folder: `$KERAS_HOME`, else `~/.keras` (read at call time; Keras reads it once)."""
    return os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")


def keras_cache_path():
    """Where Keras' VGG19 ImageNet file is (or would be) in the Keras cache."""
    return os.path.join(keras_home(), "models", KERAS_VGG19_FILE)


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
    cached = keras_cache_path()
    if os.path.isfile(cached):
        return cached
    try:
        return _download_keras_vgg19(keras_home())
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


def _torch_arrays(obj, layer_names, name):
    """{layer: (kernel HWIO, bias)} from a torchvision-layout VGG19 state dict (or checkpoint)."""
    state = unwrap_state_dict(obj, name)
    out = {}
    for layer in layer_names:
        suffix = f"features.{TORCHVISION_INDEX[layer]}."
        found = {}
        for key, value in state.items():
            for param in ("weight", "bias"):
                # "features.0.weight", or inside a larger module: "vgg.features.0.weight"
                if key == suffix + param or key.endswith("." + suffix + param):
                    found[param] = np.asarray(value, np.float32)
        if set(found) != {"weight", "bias"}:
            raise WeightsFileError(
                f"{name}: no {suffix}weight/bias for {layer}; expected torchvision's VGG19 layout "
                f"(features.0.weight ... features.34.bias)"
            )
        out[layer] = (found["weight"].transpose(2, 3, 1, 0), found["bias"])
    return out


def read_vgg19_weights(weights, layer_names):
    """Read the convs `layer_names` of a VGG19 weights source.

    Args:
        weights: `"imagenet"` (Keras' file: cache, else download), a path to a Keras `.h5`
            (keras.applications layout), a torchvision `.pth` / `.safetensors`
            (`features.N.weight`), or such a state dict of numpy arrays.
        layer_names: Keras names (`"block1_conv1"`, ...); only these are read, so a truncated
            file works for shallow layers.

    Returns:
        `(arrays, preprocessing)`: dict layer -> `(kernel HWIO, bias)` and `"caffe"` for Keras
        weights, `"torch"` for torchvision ones.

    Raises:
        WeightsFileError: missing file or layers, or not a VGG19 weights file, naming it.
    """
    if isinstance(weights, dict):
        return _torch_arrays(weights, layer_names, "state dict"), "torch"
    path = imagenet_weights_path() if weights == "imagenet" else os.fspath(weights)
    if not os.path.isfile(path):
        raise WeightsFileError(f"VGG19 weights file not found: {path}")
    name = os.path.basename(path)
    kind = sniff_format(path)
    if kind == "h5":
        try:
            return _keras_h5_arrays(path, layer_names), "caffe"
        except OSError as err:
            raise WeightsFileError(f"{name}: not a readable HDF5 file ({err})") from err
    if kind == "keras":
        raise WeightsFileError(f"{name}: a .keras model archive; VGG19 weights are a .h5, .pth or .safetensors")
    return _torch_arrays(read_checkpoint(path, kind), layer_names, name), "torch"


def load_vgg19_weights(extractor, weights):
    """Fill a `VGG19FeatureExtractor` with pretrained weights; returns the preprocessing they need.

    Args:
        extractor: `keras_esrgan.perceptual.VGG19FeatureExtractor` (its `convs`, named as
            `VGG19_CONV_LAYERS`).
        weights: see `read_vgg19_weights`.

    Returns:
        `"caffe"` for Keras weights, `"torch"` for torchvision ones.

    Raises:
        WeightsFileError: missing file, missing layers or wrong shapes, with the layer named.

    Example:
    >>> from keras_esrgan.perceptual import VGG19FeatureExtractor
    >>> vgg = VGG19FeatureExtractor(["conv2_2"])
    >>> load_vgg19_weights(vgg, "vgg19-dcbb9e9d.pth")     # torchvision's file
    'torch'
    """
    arrays, kind = read_vgg19_weights(weights, [conv.name for conv in extractor.convs])
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
