"""keras-esrgan: ESRGAN (Wang et al., 2018) for Keras 3 on TensorFlow.

The public API. Models: `SRGenerator` (what every generator is), `RRDBNet`, `SRVGGNetCompact`
(Real-ESRGAN's compact generator), `VGGStyleDiscriminator`, `UNetDiscriminatorSN`.
Weights: `load_generator` (files or model-zoo names: `keras_esrgan.pretrained`), `save_generator`,
`interpolate`.
Data: `image_folder`, `div2k`, `training_pipeline`, `validation_pipeline`, `bicubic_downsample`.
Training: `PSNRTrainer`, `ESRGAN`, `PerceptualLoss`, `TrainingCheckpoint` (losses in
`keras_esrgan.losses`).
Inference: `Upscaler`, `upscale` (tiling, alpha, greyscale, 16-bit, bf16; the parts in
`keras_esrgan.inference`). Pixel values and rounding: `keras_esrgan.pixels`; precision names:
`keras_esrgan.precision`.
Evaluation: `evaluate`, `format_table`; metrics (`psnr`, `ssim`, `niqe`) in `keras_esrgan.metrics`.
Export: `export_saved_model` (TF Serving), `export_tflite` (LiteRT); more in `keras_esrgan.export`.
Errors: every exception the package raises for bad input is exported here (`ImageError`,
`WeightsFileError`, `RecipeError`, `BuiltinOpsError`, `PretrainedError` and its kinds, ...).
The layout and what each module may import: ARCHITECTURE.md.
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402

if keras.backend.backend() != "tensorflow":
    raise ImportError(
        "keras_esrgan needs Keras' TensorFlow backend (its layers use tf.image and tf.nn ops "
        f"for TFLite-clean export); this Keras runs on {keras.backend.backend()!r}. "
        "Set KERAS_BACKEND=tensorflow."
    )

from keras_esrgan.data import (  # noqa: E402
    DatasetNotFoundError,
    bicubic_downsample,
    div2k,
    image_folder,
    training_pipeline,
    validation_pipeline,
)
from keras_esrgan.checkpoints import TrainingCheckpoint  # noqa: E402
from keras_esrgan import export, metrics  # noqa: E402
from keras_esrgan.evaluation import evaluate, format_table  # noqa: E402
from keras_esrgan.export import saved_model as export_saved_model  # noqa: E402
from keras_esrgan.export import tflite as export_tflite  # noqa: E402
from keras_esrgan.export.tflite_export import BuiltinOpsError  # noqa: E402
from keras_esrgan.images import ImageError, ImageTooLargeError  # noqa: E402
from keras_esrgan.inference import Upscaler, upscale  # noqa: E402
from keras_esrgan.interpolation import interpolate  # noqa: E402
from keras_esrgan.models import (  # noqa: E402
    RRDBNet,
    SRGenerator,
    SRVGGNetCompact,
    UNetDiscriminatorSN,
    VGGStyleDiscriminator,
)
from keras_esrgan.perceptual import PerceptualLoss  # noqa: E402
from keras_esrgan.pretrained.errors import (  # noqa: E402
    CorruptCacheError,
    DownloadError,
    OfflineError,
    PretrainedError,
    UnknownModelError,
    VerificationError,
)
from keras_esrgan.recipes.presets import RecipeError  # noqa: E402
from keras_esrgan.training import ESRGAN, PSNRTrainer  # noqa: E402
from keras_esrgan.weights import (  # noqa: E402
    UnsafeWeightsError,
    WeightsFileError,
    load_discriminator,
    load_generator,
    save_generator,
)
from keras_esrgan.video import VideoError  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "BuiltinOpsError",
    "CorruptCacheError",
    "DatasetNotFoundError",
    "DownloadError",
    "ESRGAN",
    "ImageError",
    "ImageTooLargeError",
    "OfflineError",
    "PSNRTrainer",
    "PerceptualLoss",
    "PretrainedError",
    "RRDBNet",
    "RecipeError",
    "SRGenerator",
    "SRVGGNetCompact",
    "TrainingCheckpoint",
    "UnknownModelError",
    "Upscaler",
    "UNetDiscriminatorSN",
    "UnsafeWeightsError",
    "VGGStyleDiscriminator",
    "VerificationError",
    "VideoError",
    "WeightsFileError",
    "bicubic_downsample",
    "div2k",
    "evaluate",
    "image_folder",
    "export",
    "export_saved_model",
    "export_tflite",
    "format_table",
    "interpolate",
    "load_discriminator",
    "load_generator",
    "metrics",
    "save_generator",
    "training_pipeline",
    "upscale",
    "validation_pipeline",
]
