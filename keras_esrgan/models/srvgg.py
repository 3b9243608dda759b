"""SRVGGNetCompact: Real-ESRGAN's compact generator (BasicSR `srvgg_arch.py`), NHWC.

A plain stack of 3x3 convs at the input resolution, a pixel shuffle to the output size and the
nearest-upsampled input added back, so the convs only learn the residual. About 0.6 M
parameters for the released x4 models (`realesr-animevideov3`: 16 convs, `realesr-general-x4v3`:
32) against RRDBNet's 16.7 M; no conv runs at the output resolution.

Layer names follow BasicSR's module list with `_` for `.` (`body_0` conv, `body_1` activation,
..., `body_{2 num_conv + 2}` the last conv), so `keras_esrgan.weights.srvgg_layout` maps a
state dict by index.
"""

import numpy as np
import keras
import tensorflow as tf

from keras_esrgan.models.generator import SRGenerator
from keras_esrgan.models.rrdbnet import _conv, torch_default_initializer

ACT_TYPES = ("relu", "prelu", "leakyrelu")
# BasicSR: nn.LeakyReLU(negative_slope=0.1) for act_type="leakyrelu".
LEAKY_SLOPE = 0.1
# BasicSR: nn.PReLU(num_parameters=num_feat) starts every slope at PyTorch's default 0.25.
PRELU_INIT = 0.25


def _activation(act_type, name, dtype):
    if act_type == "relu":
        return keras.layers.ReLU(name=name, dtype=dtype)
    if act_type == "leakyrelu":
        return keras.layers.LeakyReLU(LEAKY_SLOPE, name=name, dtype=dtype)
    # One slope per channel, shared over H and W: alpha has shape (1, 1, num_feat).
    return keras.layers.PReLU(
        alpha_initializer=keras.initializers.Constant(PRELU_INIT), shared_axes=[1, 2],
        name=name, dtype=dtype,
    )


@keras.saving.register_keras_serializable(package="keras_esrgan")
class SRVGGNetCompact(SRGenerator):
    """Real-ESRGAN's compact VGG-style generator (BasicSR `SRVGGNetCompact`), NHWC.

    conv(num_in_ch -> num_feat) + act, `num_conv` x [conv(num_feat -> num_feat) + act],
    conv(num_feat -> num_out_ch * upscale**2), pixel shuffle by `upscale`, plus the input
    upsampled by `upscale` (nearest). Every conv runs at the input resolution.

    The pixel shuffle is `tf.nn.depth_to_space` (TFLite DEPTH_TO_SPACE, no GATHER), whose
    channel order differs from PyTorch's `PixelShuffle`: output channel c at sub-pixel (i, j)
    comes from conv_last's channel `(i*r + j)*num_out_ch + c` here and `c*r*r + i*r + j` in
    PyTorch. The last conv's kernel and bias are therefore stored in depth_to_space order, and
    `keras_esrgan.weights.srvgg_layout` permutes them on import and export.

    Args:
        num_in_ch: int, input channels (3 for RGB).
        num_out_ch: int, output channels; equal to `num_in_ch` (or `num_in_ch` = 1, then the
            upsampled input is broadcast), as BasicSR's residual addition requires.
        num_feat: int, channels of every hidden conv (64 in the released models).
        num_conv: int, hidden convs between the first and the last (16 or 32 released).
        upscale: int, 1 to 4: output size / input size.
        act_type: `"prelu"` (per-channel learned slope, the released models), `"relu"`, or
            `"leakyrelu"` (slope 0.1).
        dtype: dtype policy, e.g. `"mixed_bfloat16"`. The input is taken as float32 and the
            output is float32: the nearest-upsampled input is added in float32, so the
            residual path is exact whatever the compute precision.

    Input: float `(B, H, W, num_in_ch)` RGB in [0, 1], any H and W. Output: float32
    `(B, upscale*H, upscale*W, num_out_ch)`, not clipped (as in the reference).

    Example:
    >>> net = SRVGGNetCompact(num_feat=8, num_conv=2, upscale=3)
    >>> net(np.zeros((1, 5, 7, 3), "float32")).shape
    TensorShape([1, 15, 21, 3])
    >>> SRVGGNetCompact().count_params()                  # realesr-animevideov3
    621424
    >>> SRVGGNetCompact(num_conv=32).count_params()       # realesr-general-x4v3
    1213296
    """

    def __init__(
        self,
        num_in_ch=3,
        num_out_ch=3,
        num_feat=64,
        num_conv=16,
        upscale=4,
        act_type="prelu",
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in dict(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat).items():
            if int(value) != value or value < 1:
                raise ValueError(f"SRVGGNetCompact: {arg} must be a positive integer, got {value!r}")
        if int(num_conv) != num_conv or num_conv < 0:
            raise ValueError(f"SRVGGNetCompact: num_conv must be an integer >= 0, got {num_conv!r}")
        if upscale not in (1, 2, 3, 4):
            raise ValueError(f"SRVGGNetCompact: upscale must be 1, 2, 3 or 4, got {upscale!r}")
        if act_type not in ACT_TYPES:
            raise ValueError(f"SRVGGNetCompact: act_type must be one of {ACT_TYPES}, got {act_type!r}")
        if num_in_ch != num_out_ch and num_in_ch != 1:
            raise ValueError(
                "SRVGGNetCompact adds the upsampled input to the output, so num_out_ch must "
                f"equal num_in_ch (or num_in_ch be 1); got num_in_ch={num_in_ch}, "
                f"num_out_ch={num_out_ch}"
            )
        self.num_in_ch = int(num_in_ch)
        self.num_out_ch = int(num_out_ch)
        self.num_feat = int(num_feat)
        self.num_conv = int(num_conv)
        self.upscale = int(upscale)
        self.act_type = act_type
        self.scale = self.upscale

        dtype = self.dtype_policy
        init = torch_default_initializer
        # BasicSR's nn.ModuleList, index for index: even = conv, odd = activation.
        self.body = [_conv(num_feat, "body_0", dtype, init), _activation(act_type, "body_1", dtype)]
        for i in range(num_conv):
            self.body.append(_conv(num_feat, f"body_{2 * i + 2}", dtype, init))
            self.body.append(_activation(act_type, f"body_{2 * i + 3}", dtype))
        self.body.append(
            _conv(num_out_ch * self.upscale**2, f"body_{2 * num_conv + 2}", dtype, init)
        )
        # Fully convolutional: build now, so weights can be assigned before the first call.
        self.build((None, None, None, self.num_in_ch))

    @property
    def input_dtype(self):
        # Keras casts inputs to this dtype before `call`. Keeping float32 lets the residual
        # path (the upsampled input) stay exact under a bfloat16/float16 compute policy; the
        # convs get a cast copy.
        return "float32"

    @property
    def convs(self):
        """The Conv2D layers in order: `body_0`, `body_2`, ..., the last conv."""
        return self.body[0::2]

    @property
    def activations(self):
        """The activation layers in order: `body_1`, `body_3`, ..."""
        return self.body[1::2]

    def build(self, input_shape=None):
        if self.built:
            return
        self.check_input_shape(input_shape or (None, None, None, self.num_in_ch))
        feat_shape = (None, None, None, self.num_feat)
        self.body[0].build((None, None, None, self.num_in_ch))
        for layer in self.body[1:]:
            layer.build(feat_shape)
        self.built = True

    def call(self, x):
        self.check_input_shape(x.shape)
        x = tf.cast(x, "float32")
        out = tf.cast(x, self.compute_dtype)
        for layer in self.body:
            out = layer(out)
        out = tf.cast(out, "float32")
        if self.upscale == 1:
            return out + x
        out = tf.nn.depth_to_space(out, self.upscale)
        # tf.image.resize "nearest" lowers to TFLite RESIZE_NEAREST_NEIGHBOR with dynamic H, W
        # and, for an integer factor, picks source pixel floor(dst / upscale) like PyTorch's
        # F.interpolate(mode="nearest") (see layers.NearestUpsample2x and measured-facts.md).
        base = tf.image.resize(x, self.upscale * tf.shape(x)[1:3], method="nearest")
        return out + base
