"""Run exported `.tflite` files in LiteRT (`ai-edge-litert`) from Python, as an app would."""

import os

import numpy as np


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise ImportError(
            "running .tflite files needs ai-edge-litert: pip install 'keras-esrgan[export]'"
        ) from None
    return Interpreter


class LiteRTModel:
    """A `.tflite` generator in LiteRT's interpreter, callable on float32 batches.

    Models with a dynamic input shape are resized on demand; one interpreter is kept per input
    shape, because the first invoke after a resize re-plans XNNPACK and takes about twice as
    long (the same reason an app keeps one interpreter per tile shape).

    Args:
        path: `.tflite` file from `keras_esrgan.export.tflite`.
        num_threads: CPU threads (None: LiteRT's default).

    Example:
    >>> from keras_esrgan.export import tflite
    >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    >>> _ = tflite(net, "esrgan_fp16.tflite", quantization="fp16", input_shape=(1, None, None, 3))
    >>> model = LiteRTModel("esrgan_fp16.tflite", num_threads=2)
    >>> model(np.zeros((1, 64, 64, 3), "float32")).shape
    (1, 256, 256, 3)
    """

    def __init__(self, path, num_threads=None):
        self.path = os.fspath(path)
        self.num_threads = num_threads
        self._interpreters = {}
        first = self._new_interpreter()
        detail = first.get_input_details()[0]
        self.input_shape = tuple(int(d) for d in detail["shape_signature"])
        self._interpreters[tuple(int(d) for d in detail["shape"])] = first

    def _new_interpreter(self):
        return _interpreter_class()(model_path=self.path, num_threads=self.num_threads)

    def interpreter(self, shape):
        """The allocated interpreter for input `shape` (B, H, W, C), created on first use."""
        shape = tuple(int(d) for d in shape)
        if shape not in self._interpreters:
            if len(shape) != len(self.input_shape) or any(
                fixed not in (-1, size) for fixed, size in zip(self.input_shape, shape)
            ):
                raise ValueError(
                    f"{os.path.basename(self.path)} takes input shape {self.input_shape} "
                    f"(-1 = any); got {shape}"
                )
            interp = self._new_interpreter()
            index = interp.get_input_details()[0]["index"]
            if -1 in self.input_shape:
                interp.resize_tensor_input(index, shape, strict=True)
            self._interpreters[shape] = interp
        interp = self._interpreters[shape]
        interp.allocate_tensors()
        return interp

    def __call__(self, images):
        """float32 `(B, H, W, C)` in [0, 1] -> float32 `(B, sH, sW, C)` (unclipped)."""
        images = np.ascontiguousarray(images, dtype=np.float32)
        interp = self.interpreter(images.shape)
        interp.set_tensor(interp.get_input_details()[0]["index"], images)
        interp.invoke()
        return interp.get_tensor(interp.get_output_details()[0]["index"])
