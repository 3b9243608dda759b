"""Network interpolation: exact endpoints, the midpoint, and refusals."""

import numpy as np
import pytest

from keras_esrgan import RRDBNet, interpolate, save_generator
from tests.conftest import TINY


def _pair():
    a, b = RRDBNet(**TINY), RRDBNet(**TINY)
    rng = np.random.default_rng(0)
    for var in b.weights:
        var.assign(rng.normal(0, 0.1, var.shape).astype("float32"))
    return a, b


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_endpoints_are_the_inputs(alpha):
    a, b = _pair()
    out = interpolate(a, b, alpha)
    source = a if alpha == 0 else b
    for w, s in zip(out.weights, source.weights):
        np.testing.assert_array_equal(w.numpy(), s.numpy())


def test_midpoint_and_paths(tmp_path, rng):
    a, b = _pair()
    save_generator(a, tmp_path / "a.safetensors")
    save_generator(b, tmp_path / "b.keras")
    out = interpolate(tmp_path / "a.safetensors", str(tmp_path / "b.keras"), 0.5)
    for w, x, y in zip(out.weights, a.weights, b.weights):
        np.testing.assert_allclose(w.numpy(), (x.numpy() + y.numpy()) / 2, atol=1e-7)
    assert out is not a and out is not b
    x = rng.random((1, 4, 4, 3), dtype=np.float32)
    assert out(x).shape == (1, 16, 16, 3)


def test_refuses_mismatch_and_bad_alpha():
    with pytest.raises(ValueError, match="differ in architecture"):
        interpolate(RRDBNet(**TINY), RRDBNet(num_feat=8, num_block=3, num_grow_ch=4), 0.5)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        interpolate(RRDBNet(**TINY), RRDBNet(**TINY), 1.5)
    with pytest.raises(TypeError, match="RRDBNet"):
        interpolate(RRDBNet(**TINY), object(), 0.5)


# --- strength: a zoo model and its declared pair -----------------------------------------------

@pytest.fixture
def zoo(tmp_path, monkeypatch):
    from tests.zoo_server import LocalZoo

    with LocalZoo(monkeypatch, tmp_path / "cache") as server:
        yield server


def test_interpolate_pair_blends_a_zoo_model_with_its_pair(zoo):
    from keras_esrgan import load_generator
    from keras_esrgan.interpolation import interpolable_pairs, interpolate_pair
    from tests.zoo_server import serve_rrdbnet_pair

    files = serve_rrdbnet_pair(zoo)
    assert interpolable_pairs()["tiny-gan"] == "tiny-psnr"
    assert interpolable_pairs()["realesr-general-x4v3"] == "realesr-general-wdn-x4v3"
    gan, psnr = load_generator(files["tiny-gan"]), load_generator(files["tiny-psnr"])
    mid = interpolate_pair("tiny-gan", 0.3)
    for w, g, p in zip(mid.weights, gan.weights, psnr.weights):
        np.testing.assert_allclose(w.numpy(), 0.3 * g.numpy() + 0.7 * p.numpy(), atol=1e-6)
    for strength, ends in ((1.0, gan), (0.0, psnr)):
        blended = interpolate_pair("tiny-gan", strength)
        assert all(np.array_equal(a.numpy(), b.numpy()) for a, b in zip(blended.weights, ends.weights))
    with pytest.raises(ValueError, match="'RealESRGAN_x2plus' has no interpolable pair.*tiny-gan, tiny-psnr"):
        interpolate_pair("RealESRGAN_x2plus", 0.5)
    with pytest.raises(ValueError, match="is not a model-zoo name with an interpolable pair"):
        interpolate_pair(str(files["tiny-gan"]), 0.5)
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\] \(1: tiny-gan, 0: tiny-psnr\)"):
        interpolate_pair("tiny-gan", 1.5)
