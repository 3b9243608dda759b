"""Ship a generator: SavedModel for TensorFlow Serving, `.tflite` for LiteRT (Android, edge)."""

from keras_esrgan.export.saved_model import (
    DEFAULT_MAX_PIXELS,
    saved_model,
    serving_functions,
)
from keras_esrgan.export.litert import LiteRTModel
from keras_esrgan.export.tflite import (
    QUANTIZATIONS,
    BuiltinOpsError,
    check_builtin_ops,
    describe_tflite,
    representative_tiles,
    sidecar_path,
    tflite,
)
