"""Data pipelines and degradations for training and evaluation.

Sources give `(lr, hr)` full-image pairs: `image_folder` (HR-only or paired folders) and `div2k`
(tensorflow-datasets). `training_pipeline` turns them into cached, shuffled, augmented float32
patch batches; `validation_pipeline` into full images for PSNR. `bicubic_downsample` is the
MATLAB-compatible degradation; `extract_subimages` pre-cuts large images as BasicSR does.
`realworld_pipeline` makes Real-ESRGAN's degraded LR images from HR images (`hr_images`) inside
`tf.data`, configured by a `DegradationConfig`; `write_degraded_samples` writes some to look at.
"""

from keras_esrgan.data.augment import mod_crop, random_crop, random_flip_rotate
from keras_esrgan.data.degraded_samples import write_degraded_samples
from keras_esrgan.data.degrade import bicubic_downsample, imresize
from keras_esrgan.data.div2k import DatasetNotFoundError, div2k, prepare_div2k
from keras_esrgan.data.folders import image_folder, list_image_pairs
from keras_esrgan.data.hr_images import hr_images
from keras_esrgan.data.pipeline import training_pipeline, validation_pipeline
from keras_esrgan.data.realworld import DegradationConfig, realworld_pipeline
from keras_esrgan.data.subimages import extract_subimages
from keras_esrgan.data.synthetic import synthetic_folders, synthetic_image, write_synthetic_folder

__all__ = [
    "DatasetNotFoundError",
    "DegradationConfig",
    "bicubic_downsample",
    "div2k",
    "extract_subimages",
    "hr_images",
    "image_folder",
    "imresize",
    "list_image_pairs",
    "mod_crop",
    "prepare_div2k",
    "random_crop",
    "random_flip_rotate",
    "realworld_pipeline",
    "synthetic_folders",
    "synthetic_image",
    "training_pipeline",
    "validation_pipeline",
    "write_degraded_samples",
    "write_synthetic_folder",
]
