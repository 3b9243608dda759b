"""TFLite export, checked in LiteRT's interpreter against the Keras model.

Accuracy is PSNR between uint8 outputs (rounded, clipped) of the `.tflite` file and of the Keras
float32 model, on crops of procedural photo-like images (tests/standins.py; calibration uses
other ones than the test images). Bounds,
for the image-like TINY generator of `export_helpers` (measured: fp32 ~92 dB, fp16 ~63 dB,
dynamic-range int8 ~72 dB, full int8 ~39 dB):
- fp32 and fp16: >= 60 dB (the specification's bound: at most a few percent of values 1 level off);
- dynamic_int8: >= 55 dB;
- int8: >= 33 dB. Full int8 on the residual trunk is lossy; benchmarks/export.py measures it on
  the full model with trained weights, where it is much worse (see BUILD.md).
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan.export import (
    BuiltinOpsError,
    LiteRTModel,
    check_builtin_ops,
    describe_tflite,
    representative_tiles,
    sidecar_path,
    tflite,
)
from tests.conftest import ROOT
from tests.export_helpers import (
    generated_image,
    image_like_generator,
    keras_uint8,
    psnr_uint8,
    real_crop,
)

TILE = 48
FIXED = (1, TILE, TILE, 3)
DYNAMIC = (1, None, None, 3)
VARIANTS = {  # file stem -> (quantization, input_shape)
    "fp32_fixed": ("fp32", FIXED),
    "fp32_dynamic": ("fp32", DYNAMIC),
    "fp16_dynamic": ("fp16", DYNAMIC),
    "dynamic_int8_dynamic": ("dynamic_int8", DYNAMIC),
    "int8_fixed": ("int8", FIXED),
}
BOUNDS = {"fp32": 60.0, "fp16": 60.0, "dynamic_int8": 55.0, "int8": 33.0}
# Every op a converted RRDBNet may contain; all are LiteRT builtins with CPU and GPU kernels.
EXPECTED_OPS = {
    "ADD", "CONCATENATION", "CONV_2D", "LEAKY_RELU", "MUL", "RESIZE_NEAREST_NEIGHBOR",
    "SHAPE", "SLICE", "DEQUANTIZE", "QUANTIZE",
}


def calibration_images():
    return [real_crop(name, 0, 0, 160, 200) for name in ("cal0", "cal1", "cal2", "cal3")]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    generator = image_like_generator(seed=0)
    folder = tmp_path_factory.mktemp("tflite")
    files = {}
    for stem, (quantization, shape) in VARIANTS.items():
        path = folder / f"{stem}.tflite"
        tflite(generator, path, quantization, input_shape=shape,
               representative_images=calibration_images(), num_calibration_tiles=16)
        files[stem] = path
    return generator, files


def to_uint8(x):
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def litert_uint8(path, images_uint8):
    model = LiteRTModel(path, num_threads=2)
    return np.concatenate([to_uint8(model(i[None].astype(np.float32) / 255.0)) for i in images_uint8])


def set5_crops(height, width):
    names = ("baby.png", "bird.png", "butterfly.png", "head.png", "woman.png")
    return np.stack([real_crop(n, 100, 60, height, width) for n in names])


@pytest.mark.parametrize("stem", list(VARIANTS))
def test_litert_output_matches_keras_on_photo_like_images(converted, stem):
    generator, files = converted
    quantization, shape = VARIANTS[stem]
    sizes = [(TILE, TILE)] if shape == FIXED else [(TILE, TILE), (40, 64)]  # dynamic: resized
    for height, width in sizes:
        images = set5_crops(height, width)
        got = litert_uint8(files[stem], images)
        assert got.shape == (5, 4 * height, 4 * width, 3)
        psnr = psnr_uint8(got, keras_uint8(generator, images))
        print(f"{stem} {height}x{width}: {psnr:.1f} dB to Keras fp32")
        assert psnr >= BOUNDS[quantization], f"{stem}: {psnr:.1f} dB < {BOUNDS[quantization]}"


def test_fp32_matches_keras_on_a_generated_image(converted):
    generator, files = converted
    image = generated_image(36, 28, seed=3)
    got = litert_uint8(files["fp32_dynamic"], image[None])
    assert np.abs(got.astype(int) - keras_uint8(generator, image[None])).max() <= 1


def test_builtin_ops_only_and_quantized_tensor_types(converted):
    generator, files = converted
    # The converter quantizes weights only for tensors of >= 1024 elements (TINY has few such
    # kernels; the full model's are all larger).
    kernels = [v for v in generator.weights if v.path.endswith("kernel")]
    big_kernels = sum(1 for v in kernels if np.prod(v.shape) >= 1024)
    assert big_kernels >= 3
    for stem, path in files.items():
        quantization = VARIANTS[stem][0]
        ops = check_builtin_ops(path)
        assert set(ops) <= EXPECTED_OPS, f"{stem}: unexpected ops {set(ops) - EXPECTED_OPS}"
        info = describe_tflite(path)
        assert info["inputs"][0]["dtype"] == info["outputs"][0]["dtype"] == "float32"
        types = info["tensor_types"]
        convs = ops["CONV_2D"]
        if quantization == "fp16":
            assert types.get("float16", 0) >= convs  # every kernel stored in half precision
        elif quantization == "dynamic_int8":
            assert types.get("int8", 0) == big_kernels and "float16" not in types
        elif quantization == "int8":
            # Activations too, not only weights: all but the float I/O ends are integer.
            assert types.get("int8", 0) + types.get("int32", 0) > 3 * convs
            assert ops["QUANTIZE"] == ops["DEQUANTIZE"] == 1
        else:
            assert set(types) <= {"float32", "int32"}


def test_check_builtin_ops_rejects_flex_ops(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec((3, 3), tf.float32)])
    def cumulative_product(x):
        return tf.math.cumprod(x, axis=0)  # no TFLite builtin: runs only with the Flex delegate

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [cumulative_product.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
    model = converter.convert()
    assert describe_tflite(model)["operators"] == {"CUSTOM:FlexCumprod": 1}
    with pytest.raises(BuiltinOpsError, match="FlexCumprod"):
        check_builtin_ops(model)

    from keras_esrgan import RRDBNet

    class NeedsFlex(RRDBNet):
        def call(self, x):
            out = super().call(x)
            return out + 0.0 * tf.math.cumprod(out, axis=1)

    generator = NeedsFlex(**image_like_generator().config)
    flex = r"conversion failed: TF Select ops: Cumprod \(no TFLite builtin"
    with pytest.raises(BuiltinOpsError, match=flex):
        tflite(generator, tmp_path / "flex.tflite", input_shape=(1, 8, 8, 3))
    assert not os.listdir(tmp_path)


def test_sidecar_describes_the_model_file(converted):
    generator, files = converted
    for stem, path in files.items():
        quantization, shape = VARIANTS[stem]
        with open(sidecar_path(path)) as fh:
            info = json.load(fh)
        assert sidecar_path(path) == str(path)[: -len(".tflite")] + ".json"
        assert info["model_file"] == os.path.basename(path)
        assert info["size_bytes"] == os.path.getsize(path)
        umask = os.umask(0)
        os.umask(umask)
        for written in (path, sidecar_path(path)):  # not mkstemp's owner-only 0600
            assert os.stat(written).st_mode & 0o777 == 0o666 & ~umask
        assert info["quantization"] == quantization
        assert info["architecture"] == generator.config and info["scale"] == 4
        assert info["tile"] == {"size": TILE if shape == FIXED else 128, "pad": 24}
        details = LiteRTModel(path).interpreter(
            [1, TILE, TILE, 3]).get_input_details()[0]
        assert info["input"]["name"] == details["name"]
        assert info["input"]["shape"] == [-1 if d is None else d for d in shape]
        assert info["input"]["shape"] == details["shape_signature"].tolist()
        assert info["input"]["range"] == info["output"]["range"] == [0.0, 1.0]
        assert info["input"]["dtype"] == "float32" and info["input"]["multiple_of"] == 1
        out_hw = [4 * TILE, 4 * TILE] if shape == FIXED else [-1, -1]
        assert info["output"]["shape"] == [1, *out_hw, 3]
        assert info["operators"] == describe_tflite(path)["operators"]
        if quantization == "int8":
            assert info["calibration"] == {"tiles": 16, "tile_shape": [TILE, TILE], "seed": 0}
        else:
            assert info["calibration"] is None


def test_invalid_arguments_are_clear(tmp_path):
    generator = image_like_generator(seed=1)
    with pytest.raises(ValueError, match="quantization must be one of"):
        tflite(generator, tmp_path / "m.tflite", "int4")
    with pytest.raises(ValueError, match="needs representative_images"):
        tflite(generator, tmp_path / "m.tflite", "int8")
    with pytest.raises(ValueError, match=r"input_shape must be \(batch, H, W, 3\)"):
        tflite(generator, tmp_path / "m.tflite", input_shape=(1, 32, 32, 4))
    x2 = image_like_generator(scale=2, seed=1)
    with pytest.raises(ValueError, match="multiples of 2"):
        tflite(x2, tmp_path / "m.tflite", input_shape=(1, 33, 32, 3))
    with pytest.raises(ValueError, match="empty"):
        representative_tiles([], 8)
    assert not os.listdir(tmp_path)


def test_representative_tiles_are_crops_of_the_images():
    rows = np.repeat(np.arange(100, dtype=np.uint8)[:, None], 70, axis=1)  # pixel = row index
    tiles = representative_tiles([rows], 16, num_tiles=6, seed=1)
    assert tiles.shape == (6, 16, 16, 3) and tiles.dtype == np.float32
    for tile in tiles:  # consecutive rows, grey repeated to RGB
        start = round(tile[0, 0, 0] * 255)
        np.testing.assert_allclose(tile[:, 0, 0] * 255, np.arange(start, start + 16), atol=1e-4)
        assert np.array_equal(tile[..., 0], tile[..., 2])
    np.testing.assert_array_equal(tiles, representative_tiles([rows], 16, num_tiles=6, seed=1))
    small = np.full((10, 12, 4), 65535, np.uint16)  # 16-bit RGBA smaller than the tile
    tiles = representative_tiles([small], (16, 20), num_tiles=2)
    assert tiles.shape == (2, 16, 20, 3) and np.all(tiles == 1.0)


def test_export_tflite_script(tmp_path, capsys):
    import importlib.util

    from keras_esrgan import save_generator

    weights = tmp_path / "g.safetensors"
    save_generator(image_like_generator(seed=5), weights)
    spec = importlib.util.spec_from_file_location("export_tflite", ROOT / "export" / "export_tflite.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "m_fp16.tflite"
    args = ["--weights", str(weights), "--out", str(out), "--quantization", "fp16", "--tile-size", "32"]
    assert script.main(args) == 0
    assert "fp16, input [1, 32, 32, 3]" in capsys.readouterr().out
    assert json.loads((tmp_path / "m_fp16.json").read_text())["input"]["shape"] == [1, 32, 32, 3]
    assert script.main(args[:4] + ["--quantization", "int8"]) == 1
    assert "needs representative_images" in capsys.readouterr().err


def test_mixed_precision_generator_converts_from_a_float32_copy(tmp_path):
    from keras_esrgan import RRDBNet

    generator = image_like_generator(seed=6)
    bf16 = RRDBNet(**generator.config, dtype="mixed_bfloat16")
    bf16.set_weights(generator.get_weights())
    path = tmp_path / "bf16.tflite"
    tflite(bf16, path, "fp32", input_shape=DYNAMIC)
    assert set(describe_tflite(path)["tensor_types"]) <= {"float32", "int32"}  # no bf16 casts
    image = generated_image(20, 24, seed=6)
    got = litert_uint8(path, image[None])
    assert np.abs(got.astype(int) - keras_uint8(generator, image[None])).max() <= 1
    assert bf16.dtype_policy.name == "mixed_bfloat16"  # the caller's model is left alone
