"""TFLite export for LiteRT (Android, edge): fp32, fp16, dynamic-range int8 and full int8.

The converter is fed a SavedModel written to a temporary folder, never
`from_concrete_functions([fn], model)`: with the Keras model passed as trackable that path emits
VAR_HANDLE ops and a model whose output is all NaN, without an error. Conversion allows only
TFLite builtin ops: Select TF (Flex) ops do not run in LiteRT on Android, so a graph that needs
them must fail here, at export, not in the app.
"""

import contextlib
import csv
import datetime
import io
import os
import tempfile
import time

import flatbuffers
import numpy as np
import tensorflow as tf
from tensorflow.lite.python import schema_py_generated as schema
from tensorflow.lite.python.convert import ConverterError

from keras_esrgan._compat import tflite_calibrate_only, tflite_quantize_calibrated
from keras_esrgan.atomic import write_bytes, write_json
from keras_esrgan.export.savedmodel_export import check_generator, variables_module
from keras_esrgan.images import IMAGE_EXTENSIONS, probe_image, read_image
from keras_esrgan.pixels import as_rgb, to_float

QUANTIZATIONS = ("fp32", "fp16", "dynamic_int8", "int8", "mixed_int8", "int16x8")
# Calibration tiles for the int8 modes: how many, and their side (times the model's
# `input_multiple`). Each is one forward pass in the calibrator's unaccelerated kernels, so their
# number and size set the conversion time: the full x4 RRDBNet takes about 30 s for a 128x128
# tile, 2 s for a 32x32 one. Activation ranges of a fully convolutional model do not depend on
# the tile size, so calibration runs on a copy of the graph with a 32x32 input and its ranges are
# copied into the graph of the exported shape (tensor for tensor: the two graphs differ only in
# their shapes).
DEFAULT_CALIBRATION_TILES = 16
DEFAULT_CALIBRATION_TILE = 32
# mixed_int8: the outputs of MIXED_INT8_FLOAT_OPS stay float: RRDBNet's residual chain (the
# 0.2-scaled additions of every dense block and RRDB, and the trunk's skip), which runs
# elementwise, so in float it costs no measurable time, yet carries the features from block to
# block. Then TFLite's quantization debugger runs on the calibration tiles, and a layer whose int8
# output error is above MIXED_INT8_RMSE_PER_SCALE quantization steps (rmse / scale; 0.29 is the
# rounding noise of a perfect int8 layer) stays in float too. On RealESRGAN_x4plus (BUILD.md):
# per-layer errors are all near that floor (0.29 to 1.1 steps), no layer dominates, and keeping
# the worst quarter of the layers in float (the rule this replaces) gained 0.6 dB over int8 at
# several times int8's latency; the residual chain alone gains 1.4 dB at int8's latency.
MIXED_INT8_FLOAT_OPS = ("ADD", "MUL")
MIXED_INT8_RMSE_PER_SCALE = 0.7
TFLITE_INPUT = "image"
TFLITE_OUTPUT = "upscaled"
DEFAULT_TILE_SIZE = 128
# Overlap between neighbouring tiles the app should use. Measured on the full model with real
# weights (pasting without blending, against one untiled pass): 16 px of context 37.5 dB,
# 24 px 46.5 dB, 32 px 52.0 dB; 24 with blending is the usual trade-off on a phone.
DEFAULT_TILE_PAD = 24

_BUILTIN_NAMES = {
    value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")
}
_TYPE_NAMES = {
    value: name.lower() for name, value in vars(schema.TensorType).items() if not name.startswith("_")
}


# Ops (and the highest version of each) the LiteRT GPU delegate takes, for the ops a generator export can
# contain. From tensorflow/lite/tools/versioning/gpu_compatibility.cc (`CheckGpuDelegateCompatibility`,
# which the delegate's model builder runs) and the GPU delegate's documentation ("by default only version
# 1 of each op; quantized models allow the quantized versions"). Not listed on purpose: GATHER (refused
# for channel gathers by the delegate on devices; RRDBNet's unshuffle folds it into conv_first instead).
GPU_DELEGATE_OPS = {
    "ADD": 2, "CONCATENATION": 2, "CONV_2D": 2, "DEPTH_TO_SPACE": 2, "DEQUANTIZE": 3,
    "LEAKY_RELU": 2, "MUL": 2, "PRELU": 1, "QUANTIZE": 2, "RESIZE_NEAREST_NEIGHBOR": 3,
    "SPACE_TO_DEPTH": 2, "SUB": 2,
}
# Ops XNNPACK (LiteRT's default CPU delegate) runs in float32, fp16-weight and int8 models.
XNNPACK_OPS = {
    "ADD", "CONCATENATION", "CONV_2D", "DEPTH_TO_SPACE", "DEQUANTIZE", "LEAKY_RELU", "MUL", "PRELU",
    "QUANTIZE", "RESIZE_NEAREST_NEIGHBOR", "SPACE_TO_DEPTH", "SUB",
}

SHAPE_ARITHMETIC_OPS = {"SHAPE", "SLICE", "STRIDED_SLICE"}


class BuiltinOpsError(ValueError):
    """A `.tflite` file that needs custom or Select TF (Flex) ops LiteRT on Android lacks."""


def _check_input_shape(generator, input_shape):
    check_generator(generator, "tflite")
    shape = tuple(None if d is None or d == -1 else int(d) for d in input_shape)
    if len(shape) != 4 or shape[-1] != generator.num_in_ch:
        raise ValueError(
            f"tflite: input_shape must be (batch, H, W, {generator.num_in_ch}) with batch, H, W "
            f"ints or None (dynamic); got {tuple(input_shape)}"
        )
    if any(d is not None and d < 1 for d in shape):
        raise ValueError(f"tflite: input_shape dimensions must be positive, got {shape}")
    generator.check_input_shape(shape)
    return shape


def _as_rgb_float(image, channels):
    """An (H, W[, C]) uint8/uint16/float image as float32 (H, W, channels) in [0, 1]."""
    image = np.clip(to_float(image), 0.0, 1.0)
    if image.ndim not in (2, 3):
        raise ValueError(f"representative image must be (H, W[, C]), got shape {image.shape}")
    if channels == 3 and (image.ndim == 2 or image.shape[-1] in (1, 4)):
        image = as_rgb(image)  # grey repeated, alpha dropped: the generator sees colour only
    elif image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] != channels:
        raise ValueError(f"representative image has {image.shape[-1]} channels, model takes {channels}")
    return image


def _image_sources(representative_images):
    """Expand a folder into its image files; keep paths and arrays as they are."""
    if isinstance(representative_images, (str, os.PathLike)):
        representative_images = [representative_images]
    sources = []
    for item in representative_images:
        if isinstance(item, (str, os.PathLike)) and os.path.isdir(item):
            names = sorted(n for n in os.listdir(item) if n.lower().endswith(IMAGE_EXTENSIONS))
            sources += [os.path.join(item, n) for n in names]
        else:
            sources.append(item)
    if not sources:
        raise ValueError("representative_images is empty: full int8 needs real images to calibrate on")
    return sources


def representative_tiles(representative_images, tile_size, num_tiles=16, channels=3, seed=0):
    """Tiles cut from real images, for full-int8 calibration and accuracy checks.

    Memory stays bounded by one decoded image plus the tiles: the sizes come from the files'
    headers, the crop positions are drawn from them, and each image is then read once, in turn,
    and only its crops are converted to float32.

    Args:
        representative_images: image paths (read with `keras_esrgan.images.read_image`),
            folders of images, or arrays `(H, W[, C])` (uint8, uint16 or float in [0, 1]).
            Use images like those the app will upscale: calibration fixes each activation's
            int8 range from them.
        tile_size: int or `(h, w)`: tile shape; images smaller than it are mirror-padded.
        num_tiles: tiles in total, taken round-robin from the images at seeded random places.
        channels: model input channels (greyscale images are repeated to RGB, alpha dropped).
        seed: random seed of the crop positions.

    Returns:
        float32 array `(num_tiles, h, w, channels)` in [0, 1].

    Example:
    >>> from keras_esrgan.data.synthetic import write_synthetic_folder
    >>> representative_tiles([write_synthetic_folder("photos", count=2, size=160)], 128, num_tiles=8).shape
    (8, 128, 128, 3)
    """
    th, tw = (tile_size, tile_size) if np.isscalar(tile_size) else tuple(tile_size)
    rng = np.random.default_rng(seed)
    sources = _image_sources(representative_images)
    used = sources[: min(len(sources), num_tiles)]
    shapes = []
    for source in used:
        if isinstance(source, (str, os.PathLike)):
            info = probe_image(source)
            shapes.append((info.height, info.width))
        else:
            shapes.append(np.shape(source)[:2])
    crops = [[] for _ in used]  # per image: (tile index, y, x), drawn in tile order
    for i in range(num_tiles):
        j = i % len(used)
        height, width = max(shapes[j][0], th), max(shapes[j][1], tw)
        y = rng.integers(0, height - th + 1)
        x = rng.integers(0, width - tw + 1)
        crops[j].append((i, y, x))
    tiles = np.empty((num_tiles, th, tw, channels), np.float32)
    for source, shape, wanted in zip(used, shapes, crops):
        image = read_image(source) if isinstance(source, (str, os.PathLike)) else np.asarray(source)
        if tuple(image.shape[:2]) != tuple(shape):
            raise ValueError(f"representative image {source!r} changed size while being read")
        for i, y, x in wanted:
            crop = image[y : y + th, x : x + tw]
            pad_h, pad_w = th - crop.shape[0], tw - crop.shape[1]
            if pad_h or pad_w:  # an image smaller than the tile: mirror-padded
                pad = ((0, pad_h), (0, pad_w)) + ((0, 0),) * (crop.ndim - 2)
                crop = np.pad(crop, pad, mode="symmetric")
            tiles[i] = _as_rgb_float(crop, channels)
        del image
    return tiles


def describe_tflite(path_or_bytes):
    """What a `.tflite` flatbuffer contains, read without an interpreter.

    Returns:
        dict with `operators` (builtin op name -> count; custom ops as `CUSTOM:<code>`, Flex
        ops appear as `CUSTOM:FlexConv2D` etc.), `inputs` and `outputs` (lists of dicts with
        `name`, `shape` (-1 for dynamic), `dtype`, `quantization` {scale, zero_point} or None)
        and `tensor_types` (dtype name -> number of tensors).

    Example (the full model's file has 351 CONV_2D, 276 CONCATENATION, ...):
    >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    >>> _ = tflite(net, "esrgan_fp16.tflite", quantization="fp16")
    >>> describe_tflite("esrgan_fp16.tflite")["operators"]
    {'ADD': 5, 'CONCATENATION': 12, 'CONV_2D': 21, 'DEQUANTIZE': 25, 'LEAKY_RELU': 15, 'MUL': 1, 'RESIZE_NEAREST_NEIGHBOR': 2}
    """
    data = path_or_bytes
    if not isinstance(data, (bytes, bytearray)):
        with open(path_or_bytes, "rb") as fh:
            data = fh.read()
    model = schema.Model.GetRootAs(data, 0)
    codes, versions = [], {}
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            codes.append(f"CUSTOM:{(code.CustomCode() or b'').decode()}")
        else:
            codes.append(_BUILTIN_NAMES.get(builtin, f"UNKNOWN_{builtin}"))
        versions[codes[-1]] = max(versions.get(codes[-1], 0), int(code.Version()))
    operators, tensor_types = {}, {}
    graph = model.Subgraphs(0)
    for i in range(graph.OperatorsLength()):
        name = codes[graph.Operators(i).OpcodeIndex()]
        operators[name] = operators.get(name, 0) + 1
    max_rank, dynamic = 0, False
    for i in range(graph.TensorsLength()):
        t = graph.Tensors(i)
        kind = _TYPE_NAMES[t.Type()]
        tensor_types[kind] = tensor_types.get(kind, 0) + 1
        signature = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()
        if t.Buffer() == 0 or not model.Buffers(t.Buffer()).DataLength():  # activations, not weights
            max_rank = max(max_rank, t.ShapeLength())
            dynamic = dynamic or bool(np.any(np.asarray(signature) < 0))

    def tensor(index):
        t = graph.Tensors(index)
        shape = t.ShapeSignatureAsNumpy() if t.ShapeSignatureLength() else t.ShapeAsNumpy()
        q = t.Quantization()
        quant = None
        if q is not None and q.ScaleLength():
            quant = dict(scale=float(q.Scale(0)), zero_point=int(q.ZeroPoint(0)))
        return dict(
            name=t.Name().decode(), shape=[int(d) for d in shape],
            dtype=_TYPE_NAMES[t.Type()], quantization=quant,
        )

    return dict(
        operators=dict(sorted(operators.items())),
        op_versions={name: versions[name] for name in sorted(operators)},
        inputs=[tensor(graph.Inputs(i)) for i in range(graph.InputsLength())],
        outputs=[tensor(graph.Outputs(i)) for i in range(graph.OutputsLength())],
        tensor_types=dict(sorted(tensor_types.items())),
        max_activation_rank=max_rank,
        dynamic_shapes=dynamic,
    )


def delegate_fitness(path_or_bytes):
    """Which LiteRT delegates can run the whole `.tflite` model, with the reasons when not.

    GPU: every op in `GPU_DELEGATE_OPS` at a version up to the one listed, static shapes (the
    delegate plans its buffers once), activations of at most 4 dimensions, and TensorFlow's own
    offline check (`tf.lite.experimental.Analyzer(gpu_compatibility=True)`, the delegate's
    `CheckGpuDelegateCompatibility`) without warnings. XNNPACK: every op in `XNNPACK_OPS`.

    Args:
        path_or_bytes: a `.tflite` file or its bytes.

    Returns:
        dict `{"gpu": {"fit": bool, "reasons": [...]}, "xnnpack": {...}}`.

    Example:
    >>> net = keras_esrgan.RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4)
    >>> _ = tflite(net, "esrgan_x2.tflite", input_shape=(1, 32, 32, 3))
    >>> delegate_fitness("esrgan_x2.tflite")["gpu"]
    {'fit': True, 'reasons': []}
    """
    data = path_or_bytes
    if not isinstance(data, (bytes, bytearray)):
        with open(path_or_bytes, "rb") as fh:
            data = fh.read()
    info = describe_tflite(data)
    gpu = []
    for op, version in info["op_versions"].items():
        if op not in GPU_DELEGATE_OPS:
            gpu.append(f"{op} is not a GPU delegate op")
        elif version > GPU_DELEGATE_OPS[op]:
            gpu.append(f"{op} version {version} > {GPU_DELEGATE_OPS[op]}")
    if info["dynamic_shapes"]:
        gpu.append("dynamic shapes: the GPU delegate needs a fixed input shape (export with a fixed tile)")
    if info["max_activation_rank"] > 4:
        gpu.append(f"{info['max_activation_rank']}-D tensors (at most 4-D)")
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        tf.lite.experimental.Analyzer.analyze(model_content=bytes(data), gpu_compatibility=True)
    gpu += sorted({line.strip() for line in report.getvalue().splitlines() if "GPU COMPATIBILITY WARNING" in line})
    # XNNPACK takes dynamic shapes (it re-plans after a resize); the SHAPE/SLICE arithmetic of a
    # dynamic export's upsampling sizes stays in LiteRT's own kernels, on a few integers.
    xnnpack = [
        f"{op} is not an XNNPACK op" for op in info["operators"]
        if op not in XNNPACK_OPS and op not in SHAPE_ARITHMETIC_OPS
    ]
    return dict(gpu=dict(fit=not gpu, reasons=gpu), xnnpack=dict(fit=not xnnpack, reasons=xnnpack))


def check_builtin_ops(path_or_bytes):
    """Raise `BuiltinOpsError` if the model uses any custom or Flex (Select TF) op."""
    ops = describe_tflite(path_or_bytes)["operators"]
    custom = sorted(op for op in ops if op.startswith(("CUSTOM", "UNKNOWN")))
    if custom:
        raise BuiltinOpsError(
            f"TFLite model needs non-builtin ops {custom}; LiteRT on Android runs builtins only"
        )
    return ops


def _converter_summary(err):
    """The lines of a converter error that name ops, not the MLIR dump around them."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    named = [line for line in lines if line.lower().startswith(("custom ops:", "tf select ops:"))]
    if named:  # "TF Select ops: Cumprod" means: no TFLite builtin, runs only with Flex
        return "; ".join(dict.fromkeys(named)) + " (no TFLite builtin kernel; Flex is not allowed)"
    return lines[0] if lines else type(err).__name__


def _converter(generator, input_shape, workdir):
    """A TFLiteConverter over a SavedModel of `generator` with one float32 signature."""
    module = variables_module(generator)

    @tf.function(
        input_signature=[tf.TensorSpec(input_shape, tf.float32, name=TFLITE_INPUT)], autograph=False
    )
    def serve(image):
        # `generator(image)`, not `lean_call`: RRDBNet's row-chunk loop needs TensorList ops,
        # which have no TFLite builtin kernel; on a device the app tiles instead (the sidecar's
        # tile size bounds the memory).
        return {TFLITE_OUTPUT: generator(image, training=False)}

    tf.saved_model.save(module, workdir, signatures={"serving_default": serve.get_concrete_function()})
    return tf.lite.TFLiteConverter.from_saved_model(workdir, signature_keys=["serving_default"])


def _calibration_converter(generator, shape, workdir, activations_int16, dataset):
    converter = _converter(generator, shape, workdir)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        if activations_int16 else tf.lite.OpsSet.TFLITE_BUILTINS_INT8
    ]
    converter.representative_dataset = dataset
    return converter


def transplant_ranges(model, calibrated):
    """`model` (a `.tflite` float graph) with the activation ranges (min/max) of `calibrated`,
    the same graph converted for another input size and calibrated on tiles of that size.

    Tensor i of one must be tensor i of the other, with the same name; otherwise ValueError.
    """
    source = schema.Model.GetRootAs(calibrated, 0).Subgraphs(0)
    target = schema.ModelT.InitFromPackedBuf(model, 0)
    tensors = target.subgraphs[0].tensors
    if len(target.subgraphs) != 1 or len(tensors) != source.TensorsLength():
        raise ValueError("tflite: the calibration graph differs from the exported one; "
                         "calibrate at the export size (calibration_tile_size=the tile)")
    for i, tensor in enumerate(tensors):
        other = source.Tensors(i)
        if other.Name() != tensor.name:
            raise ValueError(f"tflite: calibration graph tensor {i} is {other.Name()!r}, not "
                             f"{tensor.name!r}; calibrate at the export size")
        q = other.Quantization()
        if q is not None and q.MinLength():
            if tensor.quantization is None:
                tensor.quantization = schema.QuantizationParametersT()
            tensor.quantization.min = q.MinAsNumpy().copy()
            tensor.quantization.max = q.MaxAsNumpy().copy()
    builder = flatbuffers.Builder(len(model) + (1 << 16))
    builder.Finish(target.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _rank_layers(debugger):
    """Layer (tensor) name -> `(op name, int8 output error in quantization steps: rmse / scale)`,
    from the debugger's per-layer statistics."""
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    errors = {}
    for row in csv.DictReader(io.StringIO(dump.getvalue())):
        scale = float(row.get("scale") or 0)
        if scale > 0:
            errors[row["tensor_name"]] = (
                row["op_name"], float(np.sqrt(float(row["mean_squared_error"])) / scale)
            )
    return errors


def mixed_int8_float_layers(errors, float_ops=MIXED_INT8_FLOAT_OPS, rmse_per_scale=MIXED_INT8_RMSE_PER_SCALE):
    """The layers mixed_int8 keeps in float: the outputs of `float_ops`, then every layer whose
    int8 error is above `rmse_per_scale` quantization steps, each group worst first.

    Args:
        errors: layer (tensor) name -> `(op name, rmse / scale)`, as TFLite's quantization
            debugger measures them (`layer_statistics_dump`).
        float_ops: op names (`"ADD"`, `"MUL"`, ...) whose outputs all stay float.
        rmse_per_scale: error threshold in quantization steps.

    Example:
    >>> mixed_int8_float_layers({"conv1": ("CONV_2D", 0.4), "add": ("ADD", 0.3), "conv5": ("CONV_2D", 0.9)})
    ['add', 'conv5']
    """
    ranked = sorted(errors, key=lambda name: errors[name][1], reverse=True)
    by_op = [name for name in ranked if errors[name][0] in float_ops]
    worst = [name for name in ranked if errors[name][1] > rmse_per_scale and name not in by_op]
    return by_op + worst


def _calibrated_quantization(generator, input_shape, workdir, quantization, tiles, batch):
    """Calibrate on `tiles` (smaller than the exported input, or the same size) and quantize the
    graph of `input_shape`; returns `(model bytes, calibration facts for the sidecar)`.

    The calibrator and the debugger run on a copy of the graph whose input is the tiles' size;
    its ranges are then moved into the exported graph (`transplant_ranges`), which is converted
    with a representative dataset that yields nothing, so no forward pass runs at export size.
    """
    int16 = quantization == "int16x8"

    def dataset():  # `tiles` holds a whole number of batches
        for i in range(0, len(tiles), batch):
            yield [tiles[i : i + batch]]

    small_shape = (input_shape[0], tiles.shape[1], tiles.shape[2], input_shape[3])
    same = all(d is None for d in input_shape[1:3]) or tuple(input_shape[1:3]) == tuple(tiles.shape[1:3])
    calibration_shape = input_shape if same else small_shape
    started = time.perf_counter()
    converter = _calibration_converter(
        generator, calibration_shape, os.path.join(workdir, "calibration"), int16, dataset
    )
    facts = {}
    if quantization == "mixed_int8":
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=dataset)
        calibrated = debugger.calibrated_model
        debug_started = time.perf_counter()
        debugger.run()
        errors = _rank_layers(debugger)
        facts["float_layers"] = mixed_int8_float_layers(errors)
        facts["debug_seconds"] = round(time.perf_counter() - debug_started, 2)
        del debugger
    else:
        calibrated = tflite_calibrate_only(converter)
    facts["calibration_seconds"] = round(time.perf_counter() - started, 2)
    if not same:
        template = tflite_calibrate_only(_calibration_converter(
            generator, input_shape, os.path.join(workdir, "export"), int16, lambda: iter(())
        ))
        calibrated = transplant_ranges(template, calibrated)
    model = tflite_quantize_calibrated(
        calibrated, activations_int16=int16, denylisted_nodes=facts.get("float_layers")
    )
    return model, facts


def sidecar_path(path):
    """`model.tflite` -> `model.json`: where `tflite` writes the app-developer metadata."""
    root, ext = os.path.splitext(os.fspath(path))
    return (root if ext == ".tflite" else os.fspath(path)) + ".json"


def tflite(
    generator,
    path,
    quantization="fp32",
    input_shape=(1, DEFAULT_TILE_SIZE, DEFAULT_TILE_SIZE, 3),
    representative_images=None,
    num_calibration_tiles=DEFAULT_CALIBRATION_TILES,
    tile_size=None,
    calibration_tile_size=None,
    tile_pad=DEFAULT_TILE_PAD,
    seed=0,
):
    """Convert `generator` to a builtin-ops-only `.tflite` file plus a JSON sidecar.

    Args:
        generator: an `SRGenerator` such as `RRDBNet` (any dtype policy; converted from a
            float32 copy, `generator.with_policy("float32")`).
        path: destination `.tflite` file, written atomically; the sidecar goes next to it
            (`sidecar_path(path)`: `model.tflite` -> `model.json`).
        quantization: one of
            - `"fp32"`: float32 weights and math (reference accuracy).
            - `"fp16"`: float16 weights (half the size), dequantized to float32 on CPU; GPU
              delegates run them in fp16.
            - `"dynamic_int8"`: int8 weights (a quarter of the size), activations quantized
              on the fly per inference; no calibration.
            - `"int8"`: full integer: int8 weights and activations calibrated on
              `representative_images`; float32 input/output with QUANTIZE/DEQUANTIZE at the
              ends. Fastest on NPUs/DSPs, least accurate on the residual trunk.
            - `"mixed_int8"`: full int8, except the residual chain (the outputs of
              `MIXED_INT8_FLOAT_OPS`: ADD, MUL) and the layers TFLite's quantization debugger
              finds worst on the calibration tiles (rmse / scale above
              `MIXED_INT8_RMSE_PER_SCALE`), which stay float (`denylisted_nodes`); the sidecar
              names them (`calibration.float_layers`). See `mixed_int8_float_layers`.
            - `"int16x8"`: int8 weights, int16 activations (TFLite's 16x8 mode; reference
              kernels on most CPUs, so slow, but far more accurate than int8). Ops without a
              16x8 kernel (SRVGGNetCompact's PRELU and DEPTH_TO_SPACE) stay float.
        input_shape: `(batch, H, W, C)`; `None` for a dynamic dimension (the app then calls
            `resizeInput` / `resize_tensor_input`). Default: one 128x128 tile.
        representative_images: image paths, folders or arrays (see `representative_tiles`);
            required for `"int8"`, `"mixed_int8"` and `"int16x8"`, ignored otherwise.
        num_calibration_tiles: tiles for int8 calibration (int8, mixed_int8, int16x8).
        tile_size: tile side recorded in the sidecar; default the fixed H of `input_shape`,
            else 128.
        calibration_tile_size: side of the calibration tiles; default
            `DEFAULT_CALIBRATION_TILE` times the model's `input_multiple` (at most the tile).
            Each tile is one forward pass in the calibrator's unaccelerated kernels, so this
            and `num_calibration_tiles` set the conversion time; the ranges found on a copy of
            the graph at this size are moved into the exported graph (`transplant_ranges`).
        tile_pad: overlap the sidecar recommends between tiles (context pixels per side).
        seed: random seed of the calibration crops.

    Model I/O: input float32 `(B, H, W, C)` RGB in [0, 1] (named `image`), output float32
    `(B, sH, sW, C)` nominally in [0, 1], not clipped (named `upscaled`): the app clips and
    scales to bytes.

    Returns:
        dict: the sidecar's contents (also written to `sidecar_path(path)`), including
        `conversion_seconds` and `size_bytes`.

    Raises:
        ValueError: bad quantization/input_shape, int8 without representative images.
        BuiltinOpsError: the conversion failed, e.g. because the graph would need custom or
            Flex (Select TF) ops.

    Example:
    >>> generator = keras_esrgan.load_generator("RRDB_ESRGAN_x4.pth")
    >>> info = tflite(generator, "esrgan_fp16.tflite", quantization="fp16",
    ...               input_shape=(1, None, None, 3))
    >>> info["input"]["shape"], info["output"]["range"]
    ([1, -1, -1, 3], [0.0, 1.0])
    """
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"tflite: quantization must be one of {QUANTIZATIONS}, got {quantization!r}")
    if quantization in ("int8", "mixed_int8", "int16x8") and representative_images is None:
        raise ValueError(
            f"tflite: quantization={quantization!r} calibrates activation ranges and needs "
            "representative_images (paths, a folder or arrays of real images)"
        )
    input_shape = _check_input_shape(generator, input_shape)
    if calibration_tile_size is not None and (
        isinstance(calibration_tile_size, bool) or not isinstance(calibration_tile_size, int)
        or calibration_tile_size < 1
    ):
        raise ValueError(f"tflite: calibration_tile_size must be a positive number of pixels, "
                         f"got {calibration_tile_size!r}")
    if tile_size is None:
        tile_size = input_shape[1] if input_shape[1] is not None else DEFAULT_TILE_SIZE
    # Export formats that quantize on their own (fp16/int8) start from a float32 graph; a
    # mixed_bfloat16 generator would otherwise bake bfloat16 casts into it.
    generator = generator.with_policy("float32")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keras_esrgan_tflite_") as workdir:
        calibration = None
        try:
            if quantization in ("int8", "mixed_int8", "int16x8"):
                side = calibration_tile_size or min(
                    DEFAULT_CALIBRATION_TILE * generator.input_multiple, tile_size
                )
                tile_shape = (min(side, input_shape[1] or side), min(side, input_shape[2] or side))
                generator.check_input_shape((1, *tile_shape, generator.num_in_ch))
                tiles = representative_tiles(
                    representative_images, tile_shape, num_calibration_tiles,
                    channels=generator.num_in_ch, seed=seed,
                )
                batch = input_shape[0] or 1
                usable = len(tiles) // batch * batch
                if usable == 0:
                    raise ValueError(f"tflite: need at least {batch} calibration tiles for batch {batch}")
                model, facts = _calibrated_quantization(
                    generator, input_shape, workdir, quantization, tiles[:usable], batch
                )
                calibration = dict(tiles=int(usable), tile_shape=list(tile_shape), seed=seed, **facts)
            else:
                converter = _converter(generator, input_shape, workdir)
                converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
                if quantization != "fp32":
                    converter.optimizations = [tf.lite.Optimize.DEFAULT]
                if quantization == "fp16":
                    converter.target_spec.supported_types = [tf.float16]
                model = converter.convert()
        except ConverterError as err:
            raise BuiltinOpsError(f"tflite: conversion failed: {_converter_summary(err)}") from err
    seconds = time.perf_counter() - started
    description = describe_tflite(model)
    check_builtin_ops(model)
    write_bytes(path, model)

    import keras_esrgan

    (inp,), (out,) = description["inputs"], description["outputs"]
    info = dict(
        format="keras_esrgan.tflite/1",
        model_file=os.path.basename(path),
        quantization=quantization,
        architecture=dict(generator.config),
        scale=generator.scale,
        input=dict(
            inp, layout="NHWC", color="RGB" if generator.num_in_ch == 3 else "grey",
            range=[0.0, 1.0], multiple_of=generator.input_multiple,
            note="float32 pixel / 255",
        ),
        output=dict(
            out, layout="NHWC", range=[0.0, 1.0], clipped=False,
            note="not clipped: byte = round(clamp(value, 0, 1) * 255)",
        ),
        tile=dict(size=int(tile_size), pad=int(tile_pad)),
        calibration=calibration,
        operators=description["operators"],
        op_versions=description["op_versions"],
        delegates=delegate_fitness(model),
        size_bytes=len(model),
        conversion_seconds=round(seconds, 2),
        created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        versions=dict(keras_esrgan=keras_esrgan.__version__, tensorflow=tf.__version__),
    )
    write_json(sidecar_path(path), info)
    return info
