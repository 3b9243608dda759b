"""Parameter-free resampling layers that match PyTorch bit for bit and stay TFLite-builtin.

Both are written with `tf` ops on purpose: Keras 3's `UpSampling2D` lowers to repeat/reshape ops
that need Flex (Select TF) ops in TFLite once H and W are dynamic, which LiteRT on Android refuses;
`tf.image.resize(..., "nearest")` converts to RESIZE_NEAREST_NEIGHBOR and `tf.nn.space_to_depth`
+ `tf.gather` to SPACE_TO_DEPTH + GATHER.
"""

import numpy as np
import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="keras_esrgan")
class NearestUpsample2x(keras.layers.Layer):
    """Nearest-neighbour x2 upsampling, equal to PyTorch `F.interpolate(scale_factor=2)`.

    Shape: `(B, H, W, C)` -> `(B, 2H, 2W, C)`, dtype preserved, H and W may be dynamic. Static
    H and W stay static (2H, 2W) in a traced graph, so a model after the generator that needs
    its patch size (`VGGStyleDiscriminator`) sees it; unknown ones stay unknown (TFLite export
    with resizable inputs).

    Example:
    >>> NearestUpsample2x()(np.arange(4, dtype="float32").reshape(1, 2, 2, 1))[0, :, :, 0].numpy()
    array([[0., 0., 1., 1.],
           [0., 0., 1., 1.],
           [2., 2., 3., 3.],
           [2., 2., 3., 3.]], dtype=float32)
    """

    def call(self, x):
        y = tf.image.resize(x, 2 * tf.shape(x)[1:3], method="nearest")
        # The size is a tensor, so TF's shape inference loses H and W even when they are known;
        # set_shape restores them without adding an op to the graph (or the .tflite file).
        y.set_shape(self.compute_output_shape(tuple(x.shape)))
        return y

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, c)


def pixel_unshuffle_permutation(channels, factor):
    """Channel permutation from `tf.nn.space_to_depth` order to PyTorch `pixel_unshuffle` order.

    space_to_depth puts input channel c of sub-pixel (i, j) at `(i*f + j)*C + c`; PyTorch (and
    BasicSR's `pixel_unshuffle`) at `c*f*f + i*f + j`. Returns `perm` with
    `torch_order = tf.gather(tf_order, perm, axis=-1)`.
    """
    c, i, j = np.meshgrid(np.arange(channels), np.arange(factor), np.arange(factor), indexing="ij")
    return ((i * factor + j) * channels + c).reshape(-1).astype("int32")


@keras.saving.register_keras_serializable(package="keras_esrgan")
class PixelUnshuffle(keras.layers.Layer):
    """Space-to-depth by `factor` in PyTorch's channel order (Real-ESRGAN x2/x1 input stage).

    Args:
        factor: int, spatial reduction (2 or 4 in RRDBNet).

    Shape: `(B, H, W, C)` -> `(B, H/f, W/f, C*f*f)`; H and W must be multiples of `factor`.
    Output channel `c*f*f + i*f + j` holds input channel c at sub-pixel (row i, column j).

    Example:
    >>> PixelUnshuffle(2)(np.zeros((1, 4, 6, 3), "float32")).shape
    TensorShape([1, 2, 3, 12])
    """

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        if int(factor) != factor or factor < 1:
            raise ValueError(f"PixelUnshuffle: factor must be a positive integer, got {factor!r}")
        self.factor = int(factor)

    def call(self, x):
        channels = x.shape[-1]
        x = tf.nn.space_to_depth(x, self.factor)
        return tf.gather(x, pixel_unshuffle_permutation(channels, self.factor), axis=-1)

    def compute_output_shape(self, input_shape):
        b, h, w, c = input_shape
        f = self.factor
        return (b, None if h is None else h // f, None if w is None else w // f, c * f * f)

    def get_config(self):
        config = super().get_config()
        config.update(factor=self.factor)
        return config
