"""TFLite export, checked in LiteRT's interpreter against the Keras model.

Accuracy is PSNR between uint8 outputs (rounded, clipped) of the `.tflite` file and of the Keras
float32 model, on crops of procedural photo-like images (tests/standins.py; calibration uses
other ones than the test images). Bounds,
for the image-like TINY generator of `export_helpers` (measured with `-s`, int8 calibrated on
32x32 tiles: fp32 93-95 dB, fp16 ~62 dB, dynamic-range int8 ~74 dB, full int8 ~40 dB):
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
    GPU_DELEGATE_OPS,
    BuiltinOpsError,
    LiteRTModel,
    check_builtin_ops,
    delegate_fitness,
    describe_tflite,
    representative_tiles,
    sidecar_path,
    tflite,
)
from keras_esrgan.weights import read_state_dict
from tests.conftest import FIXTURES, ROOT
from tests.reference.numpy_rrdbnet import rrdbnet_forward
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
    "SHAPE", "SLICE", "DEQUANTIZE", "QUANTIZE", "SPACE_TO_DEPTH",
}


# The module-scoped fixtures below are built once: keep this file's tests on one xdist
# worker (pyproject: --dist loadgroup); other files' tests are spread one by one.
pytestmark = pytest.mark.xdist_group("export_tflite")


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
            calibration = dict(info["calibration"])
            assert calibration.pop("calibration_seconds") > 0
            # the default calibration tile (32) is smaller than the 48x48 export
            assert calibration == {"tiles": 16, "tile_shape": [32, 32], "seed": 0}
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
    for bad in (0, -16, 2.5):
        with pytest.raises(ValueError, match=rf"calibration_tile_size must be a positive number of pixels, got {bad}"):
            tflite(generator, tmp_path / "m.tflite", "int8", representative_images=[np.zeros((8, 8, 3))],
                   calibration_tile_size=bad)
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
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(calibration_images()[:2]):
        Image.fromarray(image).save(photos / f"{i}.png")
    int8 = ["--weights", str(weights), "--out", str(tmp_path / "m_int8.tflite"), "--quantization", "int8",
            "--tile-size", "32", "--calibration-images", str(photos), "--num-calibration-tiles", "2",
            "--calibration-tile-size", "16"]
    assert script.main(int8) == 0
    calibration = json.loads((tmp_path / "m_int8.json").read_text())["calibration"]
    assert calibration["tile_shape"] == [16, 16] and calibration["tiles"] == 2


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


# --- delegate-ready graphs: no GATHER, the GPU delegate's op set (issue 15) --------------------

UNSHUFFLED = {"basicsr_x2_fp16.pth": 2, "basicsr_x1.safetensors": 1}


@pytest.fixture(scope="module")
def unshuffled_exports(tmp_path_factory):
    """The PyTorch fixtures' x2 and x1 models as fixed-shape fp32 `.tflite` files."""
    from keras_esrgan.weights import load_generator

    folder = tmp_path_factory.mktemp("unshuffled")
    out = {}
    for name in UNSHUFFLED:
        reference = np.load(FIXTURES / (name.split(".")[0] + ".npz"))
        generator = load_generator(FIXTURES / name)
        path = folder / (name.split(".")[0] + ".tflite")
        info = tflite(generator, path, input_shape=(1,) + reference["input"].shape[1:])
        out[name] = generator, path, info, reference
    return out


@pytest.mark.parametrize("name", list(UNSHUFFLED))
def test_unshuffled_exports_are_space_to_depth_without_gather(unshuffled_exports, name):
    """x2/x1: SPACE_TO_DEPTH then CONV_2D, no GATHER, and still PyTorch's output (fixture)."""
    generator, path, info, reference = unshuffled_exports[name]
    ops = describe_tflite(path)["operators"]
    assert "GATHER" not in ops and ops["SPACE_TO_DEPTH"] == 1
    model = LiteRTModel(path, num_threads=2)
    for i in range(len(reference["input"])):  # the file takes one image at a time
        got = model(reference["input"][i : i + 1])
        np.testing.assert_allclose(got[0], reference["output"][i], atol=2e-5)
    # The numpy reference agrees too (independent of both Keras and PyTorch).
    state = {k: v.astype(np.float32) for k, v in read_state_dict(FIXTURES / name).items()}
    expected = rrdbnet_forward(state, reference["input"][:1], UNSHUFFLED[name])
    np.testing.assert_allclose(model(reference["input"][:1]), expected, atol=2e-5)


@pytest.mark.parametrize("name", list(UNSHUFFLED))
def test_fold_is_undone_on_export_bit_exact(name):
    """state_dict gives back the file's PyTorch-order conv_first, bit for bit."""
    from keras_esrgan.weights import load_generator, state_dict

    source = read_state_dict(FIXTURES / name)
    exported = state_dict(load_generator(FIXTURES / name))
    assert set(exported) == set(source)
    for key in source:
        np.testing.assert_array_equal(exported[key], source[key].astype(np.float32), err_msg=key)


def test_keras_files_saved_before_the_fold_load_folded(tmp_path):
    """A .weights.h5 / .keras written before the fold (conv_first in pixel_unshuffle order, no
    marker) loads to the same model: its conv_first is folded as it is read."""
    import h5py
    import zipfile
    from keras_esrgan.weights import load_generator, save_generator, state_dict

    generator = load_generator(FIXTURES / "basicsr_x2_fp16.pth")
    x = np.load(FIXTURES / "basicsr_x2_fp16.npz")["input"]
    expected = generator(x).numpy()
    torch_order = state_dict(generator)["conv_first.weight"].transpose(2, 3, 1, 0)

    def make_old(h5):
        del h5["vars/conv_first_space_to_depth"]
        h5["conv_first/vars/0"][...] = torch_order

    h5_path = tmp_path / "old.weights.h5"
    save_generator(generator, h5_path)
    with h5py.File(h5_path, "r+") as h5:
        make_old(h5)
    keras_path = tmp_path / "old.keras"
    save_generator(generator, keras_path)
    with zipfile.ZipFile(keras_path) as archive:
        members = {n: archive.read(n) for n in archive.namelist()}
    (tmp_path / "w.h5").write_bytes(members["model.weights.h5"])
    with h5py.File(tmp_path / "w.h5", "r+") as h5:
        make_old(h5)
    members["model.weights.h5"] = (tmp_path / "w.h5").read_bytes()
    with zipfile.ZipFile(keras_path, "w") as archive:
        for n, data in members.items():
            archive.writestr(n, data)
    for path in (h5_path, keras_path):
        np.testing.assert_allclose(load_generator(path)(x).numpy(), expected, atol=1e-6, err_msg=path.name)


def test_fixed_shape_exports_fit_the_gpu_delegate(converted, unshuffled_exports, tmp_path):
    """Every op of each fixed-shape export (RRDBNet x4/x2/x1, SRVGGNetCompact) is in the GPU
    delegate's set; dynamic-shape files are not fit for it, and the sidecar says so."""
    from keras_esrgan.models.srvgg import SRVGGNetCompact

    _, files = converted
    srvgg = tflite(SRVGGNetCompact(num_feat=8, num_conv=2), tmp_path / "srvgg.tflite", input_shape=(1, 16, 16, 3))
    sidecars = [json.loads(open(sidecar_path(files["fp32_fixed"])).read()), srvgg]
    sidecars += [info for _, _, info, _ in unshuffled_exports.values()]
    for info in sidecars:
        assert info["delegates"]["gpu"] == {"fit": True, "reasons": []}, info["model_file"]
        assert info["delegates"]["xnnpack"]["fit"], info["model_file"]
        for op, version in info["op_versions"].items():
            assert version <= GPU_DELEGATE_OPS[op]
    dynamic = json.loads(open(sidecar_path(files["fp32_dynamic"])).read())["delegates"]
    assert not dynamic["gpu"]["fit"] and any("dynamic shapes" in r for r in dynamic["gpu"]["reasons"])
    assert dynamic["xnnpack"]["fit"]


def test_a_gather_is_reported_unfit_for_the_gpu_delegate(tmp_path):
    """The check can fail: PixelUnshuffle in PyTorch's order converts to GATHER."""
    from keras_esrgan.models import PixelUnshuffle

    layer = PixelUnshuffle(2)
    fn = tf.function(lambda x: layer(x), input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32)])
    data = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()]).convert()
    report = delegate_fitness(data)
    assert "GATHER" in describe_tflite(data)["operators"]
    assert not report["gpu"]["fit"] and "GATHER is not a GPU delegate op" in report["gpu"]["reasons"]


def test_mixed_int8_and_int16x8_record_their_choices_and_stay_accurate(tmp_path):
    """mixed_int8 keeps the residual chain (ADD, MUL) and the debugger's worst layers in float
    (named in the sidecar, with the debugger's time); int16x8 activations beat full int8
    (measured 51 vs 41 dB on this model)."""
    generator = image_like_generator(seed=0)
    images = set5_crops(TILE, TILE)[:2]
    reference = keras_uint8(generator, images)
    psnr = {}
    for quantization in ("mixed_int8", "int16x8"):
        path = tmp_path / f"{quantization}.tflite"
        info = tflite(generator, path, quantization, input_shape=FIXED,
                      representative_images=calibration_images(), num_calibration_tiles=4)
        psnr[quantization] = psnr_uint8(litert_uint8(path, images), reference)
        assert set(check_builtin_ops(path)) <= EXPECTED_OPS
    assert info["calibration"]["tiles"] == 4
    mixed = json.loads(open(sidecar_path(tmp_path / "mixed_int8.tflite")).read())["calibration"]
    assert mixed["float_layers"] and all(isinstance(n, str) for n in mixed["float_layers"])
    assert mixed["debug_seconds"] > 0
    # The residual chain (every ADD and MUL: 5 and 1 in one RRDB plus the trunk skip) stays
    # float; the convolutions stay int8 unless the debugger found them bad.
    from tensorflow.lite.python import schema_py_generated as schema

    data = (tmp_path / "mixed_int8.tflite").read_bytes()
    model = schema.Model.GetRootAs(data, 0)
    graph = model.Subgraphs(0)
    codes = [max(model.OperatorCodes(i).BuiltinCode(), model.OperatorCodes(i).DeprecatedBuiltinCode())
             for i in range(model.OperatorCodesLength())]
    outputs = {}
    for i in range(graph.OperatorsLength()):
        op = graph.Operators(i)
        outputs.setdefault(codes[op.OpcodeIndex()], []).append(graph.Tensors(op.Outputs(0)).Type())
    float32, int8 = schema.TensorType.FLOAT32, schema.TensorType.INT8
    # (more than 5 and 1 when a float convolution keeps its bias add or its 0.2 scale apart)
    assert len(outputs[schema.BuiltinOperator.ADD]) >= 5 and len(outputs[schema.BuiltinOperator.MUL]) >= 1
    assert set(outputs[schema.BuiltinOperator.ADD] + outputs[schema.BuiltinOperator.MUL]) == {float32}
    assert outputs[schema.BuiltinOperator.CONV_2D].count(int8) >= len(outputs[schema.BuiltinOperator.CONV_2D]) // 2
    assert len(mixed["float_layers"]) >= 6
    print(psnr)
    assert psnr["int16x8"] >= BOUNDS["int8"] + 5
    assert psnr["mixed_int8"] >= BOUNDS["int8"]


def test_calibration_on_small_tiles_moves_its_ranges_into_the_exported_graph(tmp_path):
    """int8 calibrated on 16x16 tiles for a 48x48 export: the calibration graph's ranges land
    tensor for tensor in the exported graph, and the file is as accurate as int8 calibrated at
    the export size (measured 40.9 vs 40.8 dB)."""
    from tensorflow.lite.python import schema_py_generated as schema

    from keras_esrgan import RRDBNet
    from keras_esrgan._compat import tflite_calibrate_only
    from keras_esrgan.export.tflite_export import _calibration_converter, transplant_ranges

    generator = image_like_generator(seed=0)
    tiles = representative_tiles(calibration_images(), 16, num_tiles=4)

    def dataset():
        for tile in tiles:
            yield [tile[None]]

    small = tflite_calibrate_only(
        _calibration_converter(generator, (1, 16, 16, 3), str(tmp_path / "s"), False, dataset)
    )
    bare = tflite_calibrate_only(
        _calibration_converter(generator, FIXED, str(tmp_path / "b"), False, lambda: iter(()))
    )

    def ranges(model):
        graph = schema.Model.GetRootAs(model, 0).Subgraphs(0)
        out = {}
        for i in range(graph.TensorsLength()):
            q = graph.Tensors(i).Quantization()
            if q is not None and q.MinLength():
                out[graph.Tensors(i).Name().decode()] = (q.MinAsNumpy().tolist(), q.MaxAsNumpy().tolist())
        return out

    assert ranges(small) and not ranges(bare)
    moved = transplant_ranges(bare, small)
    assert ranges(moved) == ranges(small)
    assert describe_tflite(moved)["inputs"][0]["shape"] == list(FIXED)
    other = tflite_calibrate_only(_calibration_converter(
        RRDBNet(num_feat=8, num_block=2, num_grow_ch=4), FIXED, str(tmp_path / "o"), False, lambda: iter(())
    ))
    with pytest.raises(ValueError, match="calibrat"):
        transplant_ranges(other, small)

    images = set5_crops(TILE, TILE)[:2]
    reference = keras_uint8(generator, images)
    psnr = {}
    for side in (16, TILE):
        path = tmp_path / f"int8_{side}.tflite"
        info = tflite(generator, path, "int8", input_shape=FIXED, representative_images=calibration_images(),
                      num_calibration_tiles=4, calibration_tile_size=side)
        assert info["calibration"]["tile_shape"] == [side, side]
        assert info["calibration"]["calibration_seconds"] > 0
        psnr[side] = psnr_uint8(litert_uint8(path, images), reference)
    assert psnr[16] >= BOUNDS["int8"] and psnr[16] >= psnr[TILE] - 1.5, psnr
