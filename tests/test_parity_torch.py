"""Live parity with the PyTorch reference implementations (optional: needs `pip install torch`).

CI runs without torch and relies on the committed fixtures (tests/test_weights.py); this module
checks fresh random models of every layout, scale and serialisation format when torch is present.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from keras_esrgan import load_generator  # noqa: E402
from tests.reference import torch_rrdbnet as ref  # noqa: E402

ARCH = dict(nf=16, nb=3, gc=8)


@pytest.mark.parametrize(
    "make,scale",
    [
        (lambda: ref.BasicSRRRDBNet(scale=4, **ARCH), 4),
        (lambda: ref.BasicSRRRDBNet(scale=2, **ARCH), 2),
        (lambda: ref.BasicSRRRDBNet(scale=1, **ARCH), 1),
        (lambda: ref.ESRGANRepoRRDBNet(**ARCH), 4),
        (lambda: ref.OldESRGANRRDBNet(**ARCH), 4),
    ],
)
@pytest.mark.parametrize("legacy", [False, True])
def test_random_model_parity(make, scale, legacy, tmp_path, rng):
    model = ref.randomize(make(), seed=scale)
    path = tmp_path / "g.pth"
    torch.save(model.state_dict(), path, _use_new_zipfile_serialization=not legacy)
    net = load_generator(path)
    assert net.config["scale"] == scale and net.config["num_block"] == 3
    x = rng.random((2, 12, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(net(x).numpy(), ref.run_nhwc(model, x), atol=1e-5, rtol=0)
