"""Ship a generator: SavedModel for TensorFlow Serving, `.tflite` for LiteRT (Android, edge).

- `saved_model(generator, export_dir, name, version, max_pixels)`: `export_dir/name/version/`
  with signatures `serving_default` (uint8 pixels) and `upscale_image` (encoded images).
- `tflite(generator, path, quantization, input_shape, representative_images)`: fp32, fp16,
  dynamic-range int8 or full int8, builtin ops only, with a JSON sidecar for app developers.
- `LiteRTModel`: run a `.tflite` file in LiteRT from Python; `describe_tflite` /
  `check_builtin_ops`: read its op set without an interpreter; `delegate_fitness`: whether the
  GPU delegate and XNNPACK can run all of it.
- `onnx(generator, path, dynamic, opset)`: an `.onnx` file through tf2onnx (dynamic batch/H/W by
  default), `OnnxModel` to run it in onnxruntime.
- `keras_esrgan.export.serving_client`: REST and gRPC requests to the served model.

Submodules are named `savedmodel_export`, `tflite_export` and `onnx_export` so that the functions
`keras_esrgan.export.saved_model`, `.tflite` and `.onnx` do not shadow them.
"""

from keras_esrgan.export import serving_client
from keras_esrgan.export.litert import LiteRTModel
from keras_esrgan.export.onnx_export import DEFAULT_OPSET, OnnxModel, onnx
from keras_esrgan.export.savedmodel_export import (
    DEFAULT_MAX_PIXELS,
    saved_model,
    serving_functions,
    weight_bytes,
)
from keras_esrgan.export.tflite_export import (
    GPU_DELEGATE_OPS,
    QUANTIZATIONS,
    XNNPACK_OPS,
    BuiltinOpsError,
    check_builtin_ops,
    delegate_fitness,
    describe_tflite,
    representative_tiles,
    sidecar_path,
    tflite,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_OPSET",
    "GPU_DELEGATE_OPS",
    "QUANTIZATIONS",
    "XNNPACK_OPS",
    "BuiltinOpsError",
    "LiteRTModel",
    "OnnxModel",
    "check_builtin_ops",
    "delegate_fitness",
    "describe_tflite",
    "onnx",
    "representative_tiles",
    "saved_model",
    "serving_client",
    "serving_functions",
    "sidecar_path",
    "tflite",
    "weight_bytes",
]
