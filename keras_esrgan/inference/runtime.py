"""The network runtime: a generator on float32 windows, per precision, traced once, with fallback.

- **One trace per precision.** The generator runs in a `tf.function` with a dynamic
  `(1, None, None, C)` signature, traced once: on this CPU a per-shape trace was not faster
  (measured on a 2-block model, within run-to-run noise), and a dynamic one never retraces
  for a folder of differently sized images. Never XLA: on CPU it was measured slower than the
  plain graph (2.33 s against 1.63 s for a 128x128 input) and, in bfloat16, 22 dB less accurate.
- **The least memory.** The traced function calls `SRGenerator.lean_call` (RRDBNet: the trunk
  on the whole window, the upsampling tail in row chunks), so a window costs a constant
  (`BYTES_PER_PIXEL`) instead of the whole tail's 16x-sized maps.
- **Precision** (`keras_esrgan.precision`). The bf16 copy of the generator holds its weights in
  bfloat16 (`SRGenerator.clone`). Measured here on the full model: 0.42 s against 1.63 s in
  float32 for a 128x128 input, 50.6 dB to the float32 output with real weights (mean error 0.43
  of 255 levels; `python benchmarks/inference.py`). A window whose bfloat16 output holds NaN/Inf
  is run again in float32, with the float32 weights (a generator that `Upscaler` loaded from a
  file straight in bfloat16 gets them from the file: `source`).
"""

import logging

import numpy as np
import tensorflow as tf

from keras_esrgan.models.generator import SRGenerator
from keras_esrgan.precision import DEFAULT_INFERENCE_PRECISION, inference_policy, inference_precision

logger = logging.getLogger("keras_esrgan.inference")

# Peak memory of one `NetworkRunner` pass of the full x4 model per low-resolution input pixel,
# with the tail in row chunks (measured 2.6-2.7 KB in fp32 and 1.3-1.7 KB in bf16 at 512x512 and
# 768x768, rounded up; 4.4 and 1.8 KB at 256x256, where the tail's fixed chunk weighs more, but
# such images are never tiled; `python benchmarks/memory.py pass`): what sizes automatic windows.
BYTES_PER_PIXEL = {"fp32": 3 * 1024, "bf16": 2 * 1024}


class NetworkRunner:
    """A generator run on one float32 window at a time, in a precision, with the fp32 fallback.

    Holds the generator's copy in each precision used (the generator itself when its dtype
    policy is that precision's, else a `clone`) and one traced function per precision. After
    the generator's weights change (training), `refresh()` copies them into the copies again:
    variable assignments only, nothing is retraced.

    Args:
        generator: a `keras_esrgan.models.SRGenerator` (`RRDBNet`, ...), any dtype policy.
        precision: `"auto"`, `"fp32"` or `"bf16"` (see `keras_esrgan.precision`).
        source: the weights file (or zoo name) `generator` was loaded from, if any: a copy in
            another precision is then loaded from it (`load_generator(source, dtype=...)`), so
            a generator loaded straight in bf16 still falls back on the file's float32 weights.

    Attributes:
        generator: the source model. precision: `"fp32"` or `"bf16"`, resolved.
        scale: the generator's scale. fp32_fallbacks: windows re-run in float32 because their
        bf16 output held NaN/Inf.

    Example:
    >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    >>> runner = NetworkRunner(net, precision="bf16")
    >>> runner(np.zeros((10, 12, 3), "float32")).shape, runner.model().dtype_policy.name
    ((40, 48, 3), 'bfloat16')
    >>> _ = net.conv_last.bias.assign(np.full(3, 0.5, "float32"))   # the generator is trained...
    >>> runner.refresh()                                         # ...and the copy follows
    >>> float(runner(np.zeros((4, 4, 3), "float32")).min())
    0.5
    """

    def __init__(self, generator, precision=DEFAULT_INFERENCE_PRECISION, source=None):
        if not isinstance(generator, SRGenerator):
            raise TypeError(
                f"NetworkRunner: generator must be a keras_esrgan SRGenerator such as RRDBNet, "
                f"got {type(generator).__name__}"
            )
        self.generator = generator
        self.precision = inference_precision(precision)
        self.scale = generator.scale
        self.fp32_fallbacks = 0
        self.source = source
        self._models = {}
        self._functions = {}

    def model(self, precision=None):
        """The generator in `precision` (default: the runner's), made on first use."""
        precision = inference_precision(precision or self.precision)
        if precision not in self._models:
            policy = inference_policy(precision)
            if self.source is None or self.generator.dtype_policy.name == policy:
                self._models[precision] = self.generator.with_policy(policy)
            else:
                # On use: at import time keras_esrgan.weights and keras_esrgan.pretrained
                # import each other, and this module comes first.
                from keras_esrgan.weights import load_generator

                model = load_generator(self.source, dtype=policy)
                if type(model) is not type(self.generator) or model.config != self.generator.config:
                    # Replaced since it was loaded: its weights would not be this generator's.
                    raise ValueError(
                        f"{self.source}: now holds {model.describe()}, not the "
                        f"{self.generator.describe()} it held when loaded; load it again"
                    )
                self._models[precision] = model
        return self._models[precision]

    def function(self, precision=None):
        """The traced `lean_call` of `model(precision)`: float32 `(1, h, w, C)` -> float32
        `(1, s*h, s*w, C_out)`, one trace for every window size."""
        precision = inference_precision(precision or self.precision)
        if precision not in self._functions:
            model = self.model(precision)
            self._functions[precision] = tf.function(
                model.lean_call,
                input_signature=[tf.TensorSpec([1, None, None, model.num_in_ch], tf.float32)],
                autograph=False,
                jit_compile=False,
            )
        return self._functions[precision]

    def refresh(self):
        """Copy the generator's current weights into every precision copy made so far."""
        for model in self._models.values():
            if model is not self.generator:
                model.copy_weights_from(self.generator)

    def run(self, window, precision=None):
        """float32 `(h, w, C)` window -> float32 `(s*h, s*w, C_out)` in `precision`, no fallback."""
        return self.function(precision)(window[None]).numpy()[0]

    def __call__(self, window):
        """float32 `(h, w, C)` window -> float32 `(s*h, s*w, C_out)`, not clipped.

        A bf16 output with NaN/Inf is run again in float32 (counted in `fp32_fallbacks`,
        logged); a float32 output with NaN/Inf raises `FloatingPointError`.
        """
        out = self.run(window)
        if np.isfinite(out).all():
            return out
        if self.precision != "fp32":
            self.fp32_fallbacks += 1
            logger.warning(
                "bfloat16 output of a %dx%d window has NaN/Inf; running it again in float32",
                window.shape[0], window.shape[1],
            )
            out = self.run(window, "fp32")
            if np.isfinite(out).all():
                return out
        raise FloatingPointError(
            "the generator's float32 output has NaN/Inf: its weights are broken (or the input "
            "is far outside [0, 1])"
        )
