"""Weight import and export: PyTorch `.pth` (no torch needed), `.safetensors`, `.keras`."""

from keras_esrgan.weights.discriminator_layout import load_discriminator
from keras_esrgan.weights.errors import UnsafeWeightsError, WeightsFileError
from keras_esrgan.weights.io import (
    assign_state_dict,
    load_generator,
    read_state_dict,
    save_generator,
    state_dict,
)
from keras_esrgan.weights.layouts import detect_layout, infer_architecture, to_canonical
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
    "read_state_dict",
    "save_generator",
    "save_safetensors",
    "state_dict",
    "to_canonical",
]
