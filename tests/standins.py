"""Small stand-in files under the names the docs use, so README/BUILD blocks, docstring examples
and journey tests run here without downloads.

- Generator weights: the committed fixtures (tiny RRDBNets, 2 blocks of 8 features, written by
  PyTorch; tests/data/make_fixtures.py) under the names of the published files:
  `RRDB_ESRGAN_x4.pth` (ESRGAN repo layout), `RRDB_PSNR_x4.pth` (old layout, legacy format, same
  architecture so the two interpolate), `RealESRGAN_x4plus.pth` (BasicSR, `params_ema`) and its
  `.safetensors` copy.
- Discriminator: `RealESRGAN_x4plus_netD.pth`, a tiny UNetDiscriminatorSN (4 features) in
  BasicSR's layout (`params`, spectral-norm `weight_orig` / `weight_u` / `weight_v`), written
  without torch by `save_torch_zip`.
- VGG19: `vgg19-dcbb9e9d.pth` in torchvision's layout with random He-normal weights, every conv
  up to conv5_4 at full width (the perceptual loss checks the shapes; the classifier is not read)
  stored as float16: 40 MB, written in about a second by `save_torch_zip`, without torch.
- Images: procedural ones (`keras_esrgan.data.synthetic`), so nothing depends on ../shared.
"""

import collections
import functools
import os
import pathlib
import pickle
import shutil
import urllib.request
import zipfile
import zlib

import numpy as np

from tests.conftest import FIXTURES

GENERATORS = {
    "RRDB_ESRGAN_x4.pth": "esrgan_repo_x4.pth",
    "RRDB_PSNR_x4.pth": "old_esrgan_x4_legacy.pth",
    "RealESRGAN_x4plus.pth": "basicsr_x4_params_ema.pth",
}
TORCHVISION_VGG19 = "vgg19-dcbb9e9d.pth"
DISCRIMINATOR = "RealESRGAN_x4plus_netD.pth"


# -- PyTorch's zip format, written without torch ---------------------------------------------


class _Global:
    """A global reference pickled as `GLOBAL module name` (torch need not be importable)."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce wants a callable
        raise TypeError("a pickling marker")


class _Storage:
    def __init__(self, type_name, key, numel):
        self.type_name, self.key, self.numel = type_name, key, numel


class _Tensor:
    def __init__(self, storage, shape):
        self.storage, self.shape = storage, tuple(int(n) for n in shape)

    def __reduce__(self):
        stride = tuple(int(np.prod(self.shape[i + 1 :])) for i in range(len(self.shape)))
        return (
            _Global("torch._utils", "_rebuild_tensor_v2"),
            (self.storage, 0, self.shape, stride, False, collections.OrderedDict()),
        )


class _TorchPickler(pickle._Pickler):  # the Python pickler, whose `save` can be extended
    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            return ("storage", _Global("torch", obj.type_name), obj.key, "cpu", obj.numel)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            return
        super().save(obj, save_persistent_id)


_STORAGE_TYPES = {np.dtype("float32"): "FloatStorage", np.dtype("float16"): "HalfStorage"}


def save_torch_zip(state, path, key=None):
    """Write a dict of numpy arrays as `torch.save` does (zip format, version 3), without torch;
    nested as `{key: state}` when `key` is given (BasicSR's `params`)."""
    tensors, blobs = collections.OrderedDict(), {}
    for i, (name, array) in enumerate(state.items()):
        array = np.ascontiguousarray(array)
        storage = _Storage(_STORAGE_TYPES[array.dtype], str(i), array.size)
        tensors[name] = _Tensor(storage, array.shape)
        blobs[str(i)] = array.astype(array.dtype.newbyteorder("<")).tobytes()
    with open(path, "wb") as fh, zipfile.ZipFile(fh, "w", zipfile.ZIP_STORED) as archive:
        buffer = pickle.io.BytesIO()
        _TorchPickler(buffer, protocol=2).dump(tensors if key is None else {key: tensors})
        archive.writestr("archive/data.pkl", buffer.getvalue())
        archive.writestr("archive/byteorder", "little")
        for key, blob in blobs.items():
            archive.writestr(f"archive/data/{key}", blob)
        archive.writestr("archive/version", "3\n")
    return path


def torchvision_vgg19_state(seed=0, dtype="float16", last="block5_conv4"):
    """A torchvision-layout VGG19 `features` state dict up to `last`, random He-normal weights."""
    from keras_esrgan.weights.vgg19 import TORCHVISION_INDEX, VGG19_CHANNELS, VGG19_CONV_LAYERS

    rng = np.random.default_rng(seed)
    state, channels = {}, 3
    for name in VGG19_CONV_LAYERS[: VGG19_CONV_LAYERS.index(last) + 1]:
        out = VGG19_CHANNELS[name]
        std = np.sqrt(2.0 / (9 * out))  # torchvision: kaiming_normal_(mode="fan_out")
        index = TORCHVISION_INDEX[name]
        state[f"features.{index}.weight"] = (rng.standard_normal((out, channels, 3, 3), np.float32) * std).astype(dtype)
        state[f"features.{index}.bias"] = np.zeros(out, dtype)
        channels = out
    return state


def write_torchvision_vgg19(path, seed=0):
    """`vgg19-dcbb9e9d.pth`'s layout and conv shapes (to conv5_4), random float16 values: 40 MB."""
    return save_torch_zip(torchvision_vgg19_state(seed), path)


def unet_discriminator_state(num_feat=4, num_in_ch=3, seed=0, power_iterations=3):
    """A BasicSR UNetDiscriminatorSN state dict as PyTorch saves it after training: convs 1-8
    under `torch.nn.utils.spectral_norm` (`weight_orig`, and `weight_u` / `weight_v` from a few
    power iterations, so close to but not exactly the singular vectors), random weights."""
    rng = np.random.default_rng(seed)
    f = num_feat
    shapes = dict(conv0=(f, num_in_ch, 3), conv1=(2 * f, f, 4), conv2=(4 * f, 2 * f, 4), conv3=(8 * f, 4 * f, 4),
                  conv4=(4 * f, 8 * f, 3), conv5=(2 * f, 4 * f, 3), conv6=(f, 2 * f, 3), conv7=(f, f, 3),
                  conv8=(f, f, 3), conv9=(1, f, 3))
    state = {}
    for name, (cout, cin, k) in shapes.items():
        weight = (rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k))).astype(np.float32)
        if name in ("conv0", "conv9"):
            state[f"{name}.weight"] = weight
            state[f"{name}.bias"] = (0.1 * rng.standard_normal(cout)).astype(np.float32)
            continue
        matrix = weight.reshape(cout, -1).astype(np.float64)
        u = rng.standard_normal(cout)
        u /= np.linalg.norm(u)
        for _ in range(power_iterations):
            v = matrix.T @ u
            v /= np.linalg.norm(v)
            u = matrix @ v
            u /= np.linalg.norm(u)
        state[f"{name}.weight_orig"] = weight
        state[f"{name}.weight_u"] = u.astype(np.float32)
        state[f"{name}.weight_v"] = v.astype(np.float32)
    return state


def write_discriminator(path, num_feat=4, seed=0):
    """`RealESRGAN_x4plus_netD.pth`'s layout (`{"params": state}`) for a small UNetDiscriminatorSN."""
    return save_torch_zip(unet_discriminator_state(num_feat, seed=seed), path, key="params")


# -- images and folders ----------------------------------------------------------------------


def write_images(directory, sizes, seed=0, names=None):
    """Procedural PNGs of the given `(height, width)` sizes into `directory`; returns it."""
    from keras_esrgan.data.synthetic import synthetic_image
    from keras_esrgan.images import write_image

    directory = pathlib.Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for i, size in enumerate(sizes):
        name = names[i] if names else f"{i:04d}.png"
        write_image(directory / name, synthetic_image(size, seed=(seed, i)))
    return directory


@functools.lru_cache(maxsize=8)
def _photo(size, seed):
    from keras_esrgan.data.synthetic import synthetic_image

    return synthetic_image(size, seed=seed)


def photo_crop(name, top, left, height, width, mode="RGB", size=512):
    """A uint8 crop of a procedural "photo" (edges, textures, gradients, strokes), one per
    `name`: what tests that need natural-looking content use instead of ../shared/data."""
    from PIL import Image

    image = _photo(size, zlib.crc32(name.encode()))[top : top + height, left : left + width]
    assert image.shape[:2] == (height, width), f"crop outside the {size}px image"
    return np.ascontiguousarray(np.asarray(Image.fromarray(image).convert(mode)))


def write_generators(directory):
    """The generator stand-ins of `GENERATORS`, plus `RealESRGAN_x4plus.safetensors` and the
    discriminator stand-in `RealESRGAN_x4plus_netD.pth`."""
    from keras_esrgan import load_generator, save_generator

    directory = pathlib.Path(directory)
    for name, fixture in GENERATORS.items():
        shutil.copyfile(FIXTURES / fixture, directory / name)
    save_generator(load_generator(directory / "RealESRGAN_x4plus.pth"), directory / "RealESRGAN_x4plus.safetensors")
    write_discriminator(directory / DISCRIMINATOR)
    return directory


def benchmark_folders(root):
    """`root/Set5`, `root/Set14` of small procedural images named like the real ones (for docs
    that point at ../shared/data; the real sets stay the business of the tests that need them)."""
    root = pathlib.Path(root)
    write_images(root / "Set5", [(48, 48), (40, 56)], seed=5, names=["baby.png", "bird.png"])
    write_images(root / "Set14", [(56, 48), (48, 64)], seed=14, names=["baboon.png", "comic.png"])
    return root


def go_offline(monkeypatch, keras_home):
    """An empty Keras cache at `keras_home` and proxies that refuse every connection (on
    127.0.0.1): whatever tries to download fails at once, and no request leaves the machine."""
    os.makedirs(keras_home, exist_ok=True)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    for proxy in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    # urlopen builds one opener per process and its ProxyHandler keeps the proxies it saw then:
    # without this, a download tried here would leave later localhost requests (the serving
    # client's tests) going to the refusing proxy.
    monkeypatch.setattr(urllib.request, "_opener", None)
