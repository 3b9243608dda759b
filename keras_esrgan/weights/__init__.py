"""Weight import and export: PyTorch `.pth` (no torch needed), `.safetensors`, `.keras`.

What a file is (format, element types, the state dict inside a checkpoint): `formats`. Readers:
`torch_pickle`, `safetensors_io` (both behind `reader.read_checkpoint`, the one entry point),
`ncnn`. Layouts: `layouts` (RRDBNet), `srvgg_layout`, `discriminator_layout`, `vgg19` (the
perceptual loss's VGG19). Generators in and out: `io`.
"""

from keras_esrgan.weights.discriminator_layout import load_discriminator
from keras_esrgan.weights.errors import UnsafeWeightsError, WeightsFileError
from keras_esrgan.weights.formats import sniff_format, unwrap_state_dict
from keras_esrgan.weights.io import (
    assign_state_dict,
    load_generator,
    read_state_dict,
    save_generator,
    state_dict,
)
from keras_esrgan.weights.layouts import detect_layout, infer_architecture, to_canonical
from keras_esrgan.weights.reader import read_checkpoint
from keras_esrgan.weights.safetensors_io import load_safetensors, save_safetensors
from keras_esrgan.weights.torch_pickle import load_torch_file

__all__ = [
    "UnsafeWeightsError",
    "WeightsFileError",
    "assign_state_dict",
    "detect_layout",
    "infer_architecture",
    "load_discriminator",
    "load_generator",
    "load_safetensors",
    "load_torch_file",
    "read_checkpoint",
    "read_state_dict",
    "save_generator",
    "save_safetensors",
    "sniff_format",
    "state_dict",
    "to_canonical",
    "unwrap_state_dict",
]
