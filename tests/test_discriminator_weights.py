"""Real-ESRGAN's discriminator weights (BasicSR UNetDiscriminatorSN, spectral norm) into Keras.

The reference is tests/reference/numpy_unet_discriminator.py: PyTorch's forward (eval and train
mode spectral norm, bilinear upsampling, skip connections) in float64 numpy, on state dicts
written in BasicSR's layout by tests/standins.py (no torch here).
"""

import hashlib

import numpy as np
import pytest

from keras_esrgan import UNetDiscriminatorSN, WeightsFileError, pretrained
from keras_esrgan.pretrained import MODELS, UnknownModelError
from keras_esrgan.weights import save_safetensors
from keras_esrgan.weights.discriminator_layout import load_discriminator
from tests import standins
from tests.conftest import FIXTURES
from tests.reference import numpy_unet_discriminator as reference
from tests.zoo_server import ZooServer


def _write(tmp_path, state, name="netD.pth"):
    return standins.save_torch_zip(state, tmp_path / name, key="params")


def _close(got, want):
    scale = np.abs(want).max()
    np.testing.assert_allclose(np.asarray(got) / scale, want / scale, atol=2e-6)


def test_keras_spectral_normalization_stores_kernel_and_u_only():
    """What the loader maps onto: per SN conv, the wrapped kernel (HWIO) and vector_u (1, out)."""
    d = UNetDiscriminatorSN(num_feat=4)
    names = sorted(w.path.split("/")[-1] for w in d.conv1.weights)
    assert names == ["kernel", "vector_u"]
    assert tuple(d.conv1.layer.kernel.shape) == (4, 4, 4, 8) and tuple(d.conv1.vector_u.shape) == (1, 8)
    assert d.conv1.layer.bias is None and d.conv0.bias is not None and d.conv9.bias is not None


def test_loaded_discriminator_is_pytorchs_in_eval_and_train_mode(tmp_path, rng):
    state = standins.unet_discriminator_state(num_feat=4, seed=1, power_iterations=2)
    path = _write(tmp_path, state)
    x = rng.random((2, 16, 24, 3)).astype(np.float32)

    d = load_discriminator(path)
    assert (d.num_feat, d.num_in_ch, d.skip_connection) == (4, 3, True)
    want_eval, _ = reference.forward(state, x, training=False)
    _close(d(x, training=False).numpy(), want_eval)
    _close(d(x, training=False).numpy(), want_eval)  # inference leaves the weights alone

    # Train mode: one power iteration from the stored u, then weight_orig / sigma; and the
    # updated u is PyTorch's.
    d = load_discriminator(path)
    want_train, us = reference.forward(state, x, training=True)
    assert np.abs(want_train - want_eval).max() > 1e-3 * np.abs(want_eval).max()  # the modes differ here
    _close(d(x, training=True).numpy(), want_train)
    for name, u in us.items():
        np.testing.assert_allclose(getattr(d, name).vector_u.numpy()[0], u, atol=1e-5, err_msg=name)

    # Why weight_v matters: mapping weight_orig straight to the kernel (sigma not folded in)
    # would give another network at inference.
    naive = UNetDiscriminatorSN(num_feat=4)
    naive.set_weights(load_discriminator(path).get_weights())
    for name in ("conv1", "conv4"):
        getattr(naive, name).layer.kernel.assign(state[f"{name}.weight_orig"].transpose(2, 3, 1, 0))
    assert np.abs(naive(x, training=False).numpy() - want_eval).max() > 1e-2 * np.abs(want_eval).max()


def test_safetensors_new_parametrization_names_and_options(tmp_path, rng):
    state = standins.unet_discriminator_state(num_feat=4, seed=2)
    renamed = {}
    for key, value in state.items():  # torch.nn.utils.parametrizations.spectral_norm's names
        key = (key.replace(".weight_orig", ".parametrizations.weight.original")
               .replace(".weight_u", ".parametrizations.weight.0._u")
               .replace(".weight_v", ".parametrizations.weight.0._v"))
        renamed["module." + key] = value  # and a DataParallel prefix
    save_safetensors(renamed, tmp_path / "netD.safetensors")
    x = rng.random((1, 16, 16, 3)).astype(np.float32)
    d = load_discriminator(tmp_path / "netD.safetensors", dtype="mixed_bfloat16", name="netD")
    assert d.name == "netD" and d.dtype_policy.name == "mixed_bfloat16"
    want, _ = reference.forward(state, x)
    np.testing.assert_allclose(d(x).numpy(), want, atol=0.05 * np.abs(want).max())  # bf16
    plain = load_discriminator(tmp_path / "netD.safetensors", skip_connection=False)
    _close(plain(x).numpy(), reference.forward(state, x, skip_connection=False)[0])


def test_zoo_name_downloads_and_verifies(tmp_path, monkeypatch, rng):
    saved = dict(MODELS)
    monkeypatch.setenv("KERAS_ESRGAN_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("KERAS_ESRGAN_MIRROR", raising=False)
    state = standins.unet_discriminator_state(num_feat=4, seed=3)
    data = _write(tmp_path, state).read_bytes()
    try:
        with ZooServer() as server:
            server.files["/netD.pth"] = data
            pretrained.register("tiny_netD", url=server.url("/netD.pth"), sha256=hashlib.sha256(data).hexdigest(),
                                size=len(data), arch="UNetDiscriminatorSN", arch_kwargs=dict(num_feat=4),
                                scale=1, kind="discriminator")
            d = load_discriminator("tiny_netD")
            load_discriminator("tiny_netD")  # from the cache the second time
            assert [r["path"] for r in server.log] == ["/netD.pth"]
    finally:
        MODELS.clear()
        MODELS.update(saved)
    x = rng.random((1, 8, 8, 3)).astype(np.float32)
    _close(d(x).numpy(), reference.forward(state, x)[0])
    with pytest.raises(UnknownModelError, match="RealESRGAN_x4plus_netD"):
        load_discriminator("RealESRGAN_x4plus_net")


def test_bad_files_are_named(tmp_path):
    state = standins.unet_discriminator_state(num_feat=4)
    with pytest.raises(WeightsFileError, match="holds a generator.*not a UNetDiscriminatorSN"):
        load_discriminator(FIXTURES / "basicsr_x4_params_ema.pth")
    cases = [
        ({k: v for k, v in state.items() if k != "conv5.weight_v"}, "missing 'conv5.weight_v'"),
        (dict(state, **{"conv2.weight_u": state["conv2.weight_u"][:3]}), r"'conv2.weight_u' has shape \(3,\)"),
        (dict(state, **{"conv10.weight": state["conv9.weight"]}), "no place for: \\['conv10.weight'\\]"),
        (dict(state, **{"conv3.weight_u": -state["conv3.weight_u"]}), "conv3's spectral-norm vectors give sigma"),
        (dict(state, **{"conv0.weight": np.zeros((2000, 3, 3, 3), np.float32)}), "num_feat=2,000, outside"),
        (dict(state, **{"conv7.weight_orig": state["conv7.weight_orig"] * np.nan}), "NaN"),
    ]
    for i, (bad, message) in enumerate(cases):
        with pytest.raises(WeightsFileError, match=message):
            load_discriminator(_write(tmp_path, bad, f"bad{i}.pth"))
    (tmp_path / "d.keras").write_bytes(b"PK")
    with pytest.raises(WeightsFileError, match="a Keras file is not one"):
        load_discriminator(tmp_path / "d.keras")
