"""ONNX export through tf2onnx, for ncnn, TensorRT, OpenVINO and CoreML pipelines.

The generator is traced as one float32 `tf.function` (`generator(image)`, not `lean_call`: its
row-chunk loop would become an ONNX Loop that few runtimes optimise; downstream tools tile
instead) and converted by `tf2onnx.convert.from_function`, which freezes the variables into
initializers. RRDBNet x2/x1's pixel-unshuffle becomes one ONNX `SpaceToDepth` (tf.nn.space_to_depth's
channel order, which conv_first's folded kernel expects), nearest x2 a `Resize`; with dynamic H/W
a few Shape/Slice/Gather nodes compute the upsampled sizes.
"""

import os
import tempfile
import time

import numpy as np
import tensorflow as tf

from keras_esrgan.atomic import write_bytes, write_json
from keras_esrgan.export.savedmodel_export import check_generator
from keras_esrgan.export.tflite_export import TFLITE_INPUT, TFLITE_OUTPUT

# tf2onnx 1.17's highest tested opset is 18; 17 is what onnxruntime, TensorRT 8.6+, OpenVINO and
# ncnn's pnnx all read, and it has every op these generators need (Conv, Resize, SpaceToDepth,
# DepthToSpace, PRelu, LeakyRelu, Concat).
DEFAULT_OPSET = 17
ONNX_INPUT = TFLITE_INPUT
ONNX_OUTPUT = TFLITE_OUTPUT


def _tf2onnx():
    try:
        import tf2onnx
    except ImportError:
        raise ImportError("ONNX export needs tf2onnx: pip install 'keras-esrgan[onnx]'") from None
    return tf2onnx


def onnx(generator, path, dynamic=True, opset=DEFAULT_OPSET, input_shape=None):
    """Convert `generator` to an `.onnx` file plus a JSON sidecar (`model.onnx` -> `model.json`).

    Args:
        generator: an `SRGenerator` (`RRDBNet`, `SRVGGNetCompact`; any dtype policy, converted
            from a float32 copy).
        path: destination `.onnx` file, written atomically.
        dynamic: True: batch, H and W are dynamic (`[-1, -1, -1, C]`, H and W multiples of
            `generator.input_multiple`); False: a fixed `input_shape`.
        opset: ONNX opset (default `DEFAULT_OPSET`, 17).
        input_shape: `(B, H, W, C)` for `dynamic=False`; default one 128x128 tile.

    Model I/O: input float32 NHWC RGB in [0, 1] named `image`; output float32 NHWC named
    `upscaled`, not clipped (as the `.tflite` files).

    Returns:
        dict: the sidecar's contents (opset, input/output shapes, operators, size).

    Example:
    >>> import onnxruntime
    >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    >>> info = onnx(net, "esrgan.onnx")
    >>> info["opset"], info["input"]["shape"]
    (17, [-1, -1, -1, 3])
    >>> session = onnxruntime.InferenceSession("esrgan.onnx", providers=["CPUExecutionProvider"])
    >>> session.run(None, {"image": np.zeros((1, 20, 12, 3), "float32")})[0].shape
    (1, 80, 48, 3)
    """
    check_generator(generator, "onnx")
    tf2onnx = _tf2onnx()
    channels = generator.num_in_ch
    if dynamic:
        shape = (None, None, None, channels)
    else:
        shape = tuple(input_shape or (1, 128, 128, channels))
        if len(shape) != 4 or shape[-1] != channels or any(d is None or d < 1 for d in shape):
            raise ValueError(f"onnx: input_shape must be (B, H, W, {channels}) of positive ints, got {shape}")
        generator.check_input_shape(shape)
    if int(opset) != opset or not 13 <= opset <= 18:
        raise ValueError(f"onnx: opset must be an int from 13 to 18 (tf2onnx 1.17), got {opset!r}")
    generator = generator.with_policy("float32")

    @tf.function(input_signature=[tf.TensorSpec(shape, tf.float32, name=ONNX_INPUT)], autograph=False)
    def serve(image):
        return {ONNX_OUTPUT: generator(image, training=False)}

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="keras_esrgan_onnx_") as workdir:
        model_proto, _ = tf2onnx.convert.from_function(
            serve, input_signature=serve.input_signature, opset=int(opset),
            output_path=os.path.join(workdir, "model.onnx"),
        )
    seconds = time.perf_counter() - started
    data = model_proto.SerializeToString()
    write_bytes(path, data)

    def io_shape(value):
        dims = value.type.tensor_type.shape.dim
        return [int(d.dim_value) if d.HasField("dim_value") else -1 for d in dims]

    operators = {}
    for node in model_proto.graph.node:
        operators[node.op_type] = operators.get(node.op_type, 0) + 1
    import keras_esrgan

    info = dict(
        format="keras_esrgan.onnx/1",
        model_file=os.path.basename(os.fspath(path)),
        opset=int(opset),
        architecture=dict(generator.config),
        generator=type(generator).__name__,
        scale=generator.scale,
        input=dict(name=ONNX_INPUT, shape=io_shape(model_proto.graph.input[0]), dtype="float32",
                   layout="NHWC", range=[0.0, 1.0], multiple_of=generator.input_multiple),
        output=dict(name=ONNX_OUTPUT, shape=io_shape(model_proto.graph.output[0]), dtype="float32",
                    layout="NHWC", range=[0.0, 1.0], clipped=False),
        operators=dict(sorted(operators.items())),
        size_bytes=len(data),
        conversion_seconds=round(seconds, 2),
        versions=dict(keras_esrgan=keras_esrgan.__version__, tensorflow=tf.__version__,
                      tf2onnx=tf2onnx.__version__),
    )
    write_json(sidecar_path_onnx(path), info)
    return info


def sidecar_path_onnx(path):
    """`model.onnx` -> `model.json`: where `onnx` writes its sidecar."""
    root, ext = os.path.splitext(os.fspath(path))
    return (root if ext == ".onnx" else os.fspath(path)) + ".json"


class OnnxModel:
    """An `.onnx` generator in onnxruntime (CPU), callable on float32 NHWC batches.

    Args:
        path: `.onnx` file from `keras_esrgan.export.onnx`.
        num_threads: intra-op threads (None: onnxruntime's default).
    """

    def __init__(self, path, num_threads=None):
        try:
            import onnxruntime
        except ImportError:
            raise ImportError("running .onnx files needs onnxruntime: pip install 'keras-esrgan[onnx]'") from None
        options = onnxruntime.SessionOptions()
        if num_threads:
            options.intra_op_num_threads = int(num_threads)
        self.session = onnxruntime.InferenceSession(
            os.fspath(path), options, providers=["CPUExecutionProvider"]
        )

    def __call__(self, images):
        """float32 `(B, H, W, C)` in [0, 1] -> float32 `(B, sH, sW, C)` (unclipped)."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        return self.session.run([ONNX_OUTPUT], {ONNX_INPUT: images})[0]
