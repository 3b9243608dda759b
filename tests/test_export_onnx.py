"""ONNX export (tf2onnx), checked in onnxruntime against the Keras model.

Bound: >= 60 dB PSNR (peak 1.0) between onnxruntime's and Keras' float32 outputs, for RRDBNet
x4/x2/x1 (the image-like TINY generator of export_helpers, outputs spread over [0, 1]) and
SRVGGNetCompact, with dynamic batch, H and W (measured: 150 dB and more, float32 rounding).
"""

import json

import numpy as np
import pytest

onnxruntime = pytest.importorskip("onnxruntime")
pytest.importorskip("tf2onnx")

import onnx as onnx_lib  # noqa: E402

from keras_esrgan.export import DEFAULT_OPSET, OnnxModel, onnx  # noqa: E402
from keras_esrgan.models.srvgg import SRVGGNetCompact  # noqa: E402
from tests.conftest import FIXTURES, ROOT  # noqa: E402
from tests.export_helpers import image_like_generator  # noqa: E402

BOUND_DB = 60.0


def psnr_float(a, b):
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def _generators():
    yield "rrdbnet_x4", image_like_generator(scale=4)
    yield "rrdbnet_x2", image_like_generator(scale=2)
    yield "rrdbnet_x1", image_like_generator(scale=1)
    yield "srvgg_x4", SRVGGNetCompact(num_feat=8, num_conv=2)


@pytest.mark.parametrize("name,generator", list(_generators()), ids=lambda v: v if isinstance(v, str) else "")
def test_dynamic_onnx_matches_keras_in_onnxruntime(name, generator, tmp_path, rng):
    path = tmp_path / f"{name}.onnx"
    info = onnx(generator, path)
    sidecar = json.loads((tmp_path / f"{name}.json").read_text())
    assert sidecar == info and info["opset"] == DEFAULT_OPSET
    assert info["input"]["shape"] == [-1, -1, -1, 3] and info["output"]["shape"] == [-1, -1, -1, 3]
    proto = onnx_lib.load(str(path))
    onnx_lib.checker.check_model(proto)
    assert {o.domain or "ai.onnx": o.version for o in proto.opset_import}["ai.onnx"] == DEFAULT_OPSET
    if generator.unshuffle_factor > 1:
        assert info["operators"]["SpaceToDepth"] == 1
    model = OnnxModel(path, num_threads=2)
    for shape in [(1, 16, 16, 3), (2, 12, 20, 3)]:  # one file, any batch and size
        x = rng.random(shape, dtype=np.float32)
        got, expected = model(x), generator(x).numpy()
        assert got.shape == expected.shape == (shape[0], shape[1] * generator.scale, shape[2] * generator.scale, 3)
        psnr = psnr_float(got, expected)
        print(f"{name} {shape}: {psnr:.1f} dB to Keras fp32")
        assert psnr >= BOUND_DB


def test_export_onnx_script_fixed_shape(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("export_onnx", ROOT / "export" / "export_onnx.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "x1.onnx"
    assert script.main(["--weights", str(FIXTURES / "basicsr_x1.safetensors"), "--out", str(out), "--fixed", "8"]) == 0
    assert "opset 17" in capsys.readouterr().out
    info = json.loads((tmp_path / "x1.json").read_text())
    assert info["input"]["shape"] == [1, 8, 8, 3] and info["output"]["shape"] == [1, 8, 8, 3]
    reference = np.load(FIXTURES / "basicsr_x1.npz")
    x = np.ascontiguousarray(reference["input"][:1, :8, :8])
    from keras_esrgan.weights import load_generator

    expected = load_generator(FIXTURES / "basicsr_x1.safetensors")(x).numpy()
    assert psnr_float(OnnxModel(out)(x), expected) >= BOUND_DB
    # Bad arguments: one line, no traceback.
    assert script.main(["--weights", str(FIXTURES / "basicsr_x1.safetensors"), "--out", str(out), "--fixed", "6"]) == 1
    assert "multiples of 4" in capsys.readouterr().err
