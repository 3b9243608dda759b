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
