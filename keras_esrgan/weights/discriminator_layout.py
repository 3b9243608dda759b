"""Real-ESRGAN's U-Net discriminator weights (BasicSR `UNetDiscriminatorSN`) into `UNetDiscriminatorSN`.

`RealESRGAN_x4plus_netD.pth` is BasicSR's `{"params": state_dict}` of a PyTorch module whose
convs `conv1` ... `conv8` carry `torch.nn.utils.spectral_norm`. That parametrisation stores, per
conv, three tensors instead of `weight`:

- `convN.weight_orig` `[out, in, kh, kw]`: the raw weight, the trainable parameter;
- `convN.weight_u` `[out]` and `convN.weight_v` `[in * kh * kw]`: the power iteration's current
  estimates of the first left and right singular vectors of `weight_orig.reshape(out, -1)`.

PyTorch computes the weight it convolves with as `weight_orig / sigma`, `sigma = u . (W v)`. In
training mode it first runs one power iteration from the stored `u` (`v = normalize(W^T u)`,
`u = normalize(W v)`; the stored `v` is then overwritten); in eval mode it uses the stored `u`
and `v` as they are.

`keras.layers.SpectralNormalization` stores two things: the wrapped layer's `kernel` and
`vector_u` `(1, out)`. It keeps no `v` (each training call derives it from `u`, as PyTorch's
training mode does), and it normalises the kernel *in place*: a `training=True` call replaces
`kernel` by `kernel / sigma`, and `training=False` convolves with `kernel` as stored. So:

- `weight_u -> vector_u` (the same vector: Keras' kernel reshaped to `[kh * kw * in, out]` has
  the same `out` axis);
- `weight_orig / sigma -> kernel` (transposed to `[kh, kw, in, out]`), with `sigma` from the
  stored `weight_u` and `weight_v`. This is where `weight_v` goes: folded into the kernel, the
  discriminator's inference output (`training=False`) is PyTorch's eval output, and its first
  training call is PyTorch's train-mode forward too (the power iteration is invariant to the
  kernel's scale, so `kernel / sigma'` is `weight_orig / sigma'` whatever `sigma` was).

One difference remains, and it is Keras' design, not the loader's: PyTorch's optimizer updates
`weight_orig` and differentiates through `1 / sigma`, where Keras' updates the normalised kernel
and treats `sigma` as a constant. Fine-tuning therefore follows Real-ESRGAN from the same start
but not step for step.

`conv0` and `conv9` are plain convs (`weight`, `bias`). PyTorch's newer
`torch.nn.utils.parametrizations.spectral_norm` names the same tensors
`convN.parametrizations.weight.original` / `.0._u` / `.0._v`; both spellings load.
"""

import os

import numpy as np

from keras_esrgan.models.discriminators import UNetDiscriminatorSN
# pretrained.layout imports keras_esrgan.weights (the layout checks), which imports this module:
# bound as a module and read at call time, it works whichever package is imported first.
import keras_esrgan.pretrained.download as zoo_download
from keras_esrgan.weights.errors import WeightsFileError
from keras_esrgan.weights.formats import sniff_format, unwrap_state_dict
from keras_esrgan.weights.layouts import detect_layout
from keras_esrgan.weights.reader import read_checkpoint

SN_CONVS = tuple(f"conv{i}" for i in range(1, 9))
PLAIN_CONVS = ("conv0", "conv9")
# Real-ESRGAN's is num_feat 64; the bounds refuse a few-KB file that describes a network of
# tens of GB before anything is built.
LIMITS = dict(num_in_ch=64, num_feat=1024)
_NEW_SPELLING = {
    "parametrizations.weight.original": "weight_orig",
    "parametrizations.weight.0._u": "weight_u",
    "parametrizations.weight.0._v": "weight_v",
}


def _legacy_names(state):
    """The newer parametrisation's keys renamed to `torch.nn.utils.spectral_norm`'s."""
    out = {}
    for key, value in state.items():
        for new, old in _NEW_SPELLING.items():
            if key.endswith("." + new):
                key = key[: -len(new)] + old
                break
        out[key] = value
    return out


def discriminator_state(obj, name="weights"):
    """The flat UNetDiscriminatorSN state dict inside a checkpoint object (`{"params": ...}`).

    Args:
        obj: what the file holds (a state dict, or one nested under `params` and the like).
        name: file name for error messages.

    Returns:
        dict str -> numpy array, spectral-norm tensors under their `weight_orig` / `weight_u` /
        `weight_v` names.

    Raises:
        WeightsFileError: not a UNetDiscriminatorSN state dict (a generator's, say).
    """
    state = _legacy_names(unwrap_state_dict(obj, name))
    layout = detect_layout(state)
    if layout != "unet_discriminator":
        what = {None: "an unknown layout", "vgg_discriminator": "a VGGStyleDiscriminator"}.get(layout, "a generator")
        raise WeightsFileError(
            f"{name}: holds {what} (keys {sorted(state)[:4]}...), not a UNetDiscriminatorSN: Real-ESRGAN's "
            "discriminator files (RealESRGAN_x4plus_netD.pth) have conv0.weight, conv1.weight_orig ... "
            "conv9.weight"
        )
    return state


def discriminator_architecture(state, name="weights"):
    """`UNetDiscriminatorSN` arguments read off a state dict: `num_in_ch` and `num_feat`.

    `skip_connection` leaves no trace in the weights (Real-ESRGAN's is True).
    """
    conv0 = state.get("conv0.weight")
    if conv0 is None or conv0.ndim != 4:
        raise WeightsFileError(f"{name}: conv0.weight must be a 4-D [out, in, kh, kw] tensor")
    arch = dict(num_in_ch=int(conv0.shape[1]), num_feat=int(conv0.shape[0]))
    for key, limit in LIMITS.items():
        if not 1 <= arch[key] <= limit:
            raise WeightsFileError(
                f"{name}: describes a UNetDiscriminatorSN with {key}={arch[key]:,}, outside 1..{limit} "
                "(Real-ESRGAN's has num_feat 64): corrupt or hostile file"
            )
    return arch


def _take(state, key, shape, name):
    if key not in state:
        raise WeightsFileError(f"{name}: missing '{key}' for a UNetDiscriminatorSN")
    value = np.asarray(state[key])
    if tuple(value.shape) != tuple(shape):
        raise WeightsFileError(f"{name}: '{key}' has shape {tuple(value.shape)}, the model needs {tuple(shape)}")
    if not np.all(np.isfinite(value)):
        raise WeightsFileError(f"{name}: '{key}' holds NaN or infinite values")
    return value.astype(np.float64)


def _kernel_shape(conv):
    # The PyTorch [out, in, kh, kw] shape of a built Keras Conv2D's HWIO kernel.
    kh, kw, cin, cout = conv.kernel.shape
    return (cout, cin, kh, kw)


def assign_discriminator_state(discriminator, state, name="weights"):
    """Copy a BasicSR UNetDiscriminatorSN state dict into a built `UNetDiscriminatorSN`.

    Every shape is checked; a key the model has no place for is an error. For the spectral-norm
    convs the kernel becomes `weight_orig / (u . W v)` and `vector_u` becomes `weight_u` (see the
    module docstring).
    """
    expected = set()
    for conv_name in PLAIN_CONVS:
        conv = getattr(discriminator, conv_name)
        weight = _take(state, f"{conv_name}.weight", _kernel_shape(conv), name)
        bias = _take(state, f"{conv_name}.bias", conv.bias.shape, name)
        conv.kernel.assign(weight.transpose(2, 3, 1, 0).astype(np.float32))
        conv.bias.assign(bias.astype(np.float32))
        expected |= {f"{conv_name}.weight", f"{conv_name}.bias"}
    for conv_name in SN_CONVS:
        wrapper = getattr(discriminator, conv_name)
        shape = _kernel_shape(wrapper.layer)
        weight = _take(state, f"{conv_name}.weight_orig", shape, name)
        u = _take(state, f"{conv_name}.weight_u", (shape[0],), name)
        v = _take(state, f"{conv_name}.weight_v", (int(np.prod(shape[1:])),), name)
        sigma = float(u @ (weight.reshape(shape[0], -1) @ v))
        if not (np.isfinite(sigma) and sigma > 0):
            raise WeightsFileError(
                f"{name}: {conv_name}'s spectral-norm vectors give sigma = u . (W v) = {sigma:g}; it must be "
                "positive: weight_u / weight_v do not belong to weight_orig"
            )
        wrapper.layer.kernel.assign((weight / sigma).transpose(2, 3, 1, 0).astype(np.float32))
        wrapper.vector_u.assign(u[None].astype(np.float32))
        expected |= {f"{conv_name}.weight_orig", f"{conv_name}.weight_u", f"{conv_name}.weight_v"}
    extra = sorted(set(state) - expected)
    if extra:
        raise WeightsFileError(f"{name}: weights UNetDiscriminatorSN has no place for: {extra[:6]}")


def _read(path, name):
    kind = sniff_format(path)
    if kind in ("keras", "h5"):
        raise WeightsFileError(
            f"{name}: load_discriminator reads PyTorch (.pth) and .safetensors state dicts in BasicSR's "
            "layout (Real-ESRGAN's RealESRGAN_x4plus_netD.pth); a Keras file is not one"
        )
    return read_checkpoint(path, kind)


def load_discriminator(path_or_name, *, skip_connection=True, dtype=None, name="discriminator"):
    """Build a `UNetDiscriminatorSN` and fill it with Real-ESRGAN's (or any BasicSR) discriminator weights.

    Args:
        path_or_name: a `.pth` / `.pt` (read without torch and without running pickled code) or
            `.safetensors` file in BasicSR's UNetDiscriminatorSN layout (nested under `params`
            or not), or a model-zoo name (`"RealESRGAN_x4plus_netD"`, or one added with
            `keras_esrgan.pretrained.register`), downloaded and verified on first use.
        skip_connection: the U-Net's skip connections (Real-ESRGAN: True; not in the weights).
        dtype: dtype policy of the model (e.g. `"mixed_bfloat16"`).
        name: the Keras model's name.

    Returns:
        A built `UNetDiscriminatorSN` whose inference output (`training=False`) is PyTorch's
        eval-mode output for the same file (see the module docstring).

    Raises:
        FileNotFoundError: neither a file nor a registered name (`UnknownModelError` lists close
            names). WeightsFileError: unreadable or unsafe file, another network's weights,
            missing keys or wrong shapes (named). The zoo's errors when a download fails.

    Example (a discriminator saved by PyTorch in Real-ESRGAN's layout; here a tiny stand-in):
    >>> d = load_discriminator("RealESRGAN_x4plus_netD.pth")
    >>> d.num_feat, d(np.zeros((1, 16, 16, 3), "float32")).shape
    (4, TensorShape([1, 16, 16, 1]))
    """
    path = os.fspath(zoo_download.resolve(path_or_name))
    file_name = os.path.basename(path)
    state = discriminator_state(_read(path, file_name), file_name)
    arch = discriminator_architecture(state, file_name)
    model = UNetDiscriminatorSN(**arch, skip_connection=skip_connection, dtype=dtype, name=name)
    assign_discriminator_state(model, state, file_name)
    return model
