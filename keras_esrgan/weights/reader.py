"""`read_checkpoint`: the one entry point that reads a PyTorch or safetensors file.

Every reader of state dicts (generators in `io`, the discriminator in `discriminator_layout`,
VGG19 in `vgg19`, the model zoo's layout check in `keras_esrgan.pretrained`) goes through it, so
the format is decided one way (`formats.sniff_format`) and the two readers (`torch_pickle`,
`safetensors_io`, neither running pickled code nor needing torch) are chosen in one place.

It sits on the readers and below `io`: `pretrained` imports it without reaching `io`, which
imports `pretrained` for zoo names.
"""

import os

from keras_esrgan.weights.errors import WeightsFileError
from keras_esrgan.weights.formats import sniff_format
from keras_esrgan.weights.safetensors_io import load_safetensors
from keras_esrgan.weights.torch_pickle import load_torch_file


def read_checkpoint(path, kind=None, *, name=None):
    """The object a PyTorch or safetensors weights file holds, read without torch.

    Args:
        path: a `.pth`/`.pt` (zip or legacy pickle) or `.safetensors` file.
        kind: its `formats.sniff_format`, when already known.
        name: the file's own name when `path` is a temporary one (a download's `.part`): its
            extension decides the format before the first bytes do.

    Returns:
        What `load_torch_file` / `load_safetensors` return: (nested) dicts of numpy arrays.

    Raises:
        WeightsFileError: a Keras file, or an unreadable one (named).

    Example (a tiny stand-in of Real-ESRGAN's file: a BasicSR checkpoint, nesting as saved;
    `formats.unwrap_state_dict` takes the state dict out):
    >>> sorted(read_checkpoint("RealESRGAN_x4plus.pth"))
    ['params', 'params_ema']
    """
    path = os.fspath(path)
    kind = kind or sniff_format(path, name=name)
    if kind == "torch":
        return load_torch_file(path)
    if kind == "safetensors":
        return load_safetensors(path)
    raise WeightsFileError(
        f"{os.path.basename(name or path)}: a Keras file, not a PyTorch/safetensors state dict"
    )
