"""Discriminators: ESRGAN's VGG-style one and Real-ESRGAN's U-Net with spectral normalisation.

Both return raw logits (no sigmoid): the relativistic losses in `keras_esrgan.losses` work on
logits with `from_logits` cross-entropy. Names follow BasicSR's module names.
"""

import keras
import tensorflow as tf

LRELU_SLOPE = 0.2


@keras.saving.register_keras_serializable(package="keras_esrgan")
class VGGStyleDiscriminator(keras.Model):
    """ESRGAN/SRGAN VGG-style discriminator (BasicSR `VGGStyleDiscriminator`).

    Five (six for 256 px) stages of [3x3 conv, 4x4 stride-2 conv], each conv followed by batch
    norm (except the first) and LeakyReLU(0.2), halve the input down to 4x4; then dense 100,
    LeakyReLU, dense 1. Batch norm uses PyTorch's momentum (0.1, i.e. Keras 0.9) and epsilon 1e-5.

    Args:
        input_size: int, 128 or 256: the HR patch size it judges (fixed by the dense layer).
        num_in_ch: int, input channels.
        num_feat: int, channels of the first stage (doubling up to 8x).
        dtype: dtype policy; the logits are always float32.

    Input: `(B, input_size, input_size, num_in_ch)` in [0, 1]; another size is refused with a
    clear error, at once when the size is static, when the step runs when it is not (see
    `check_patch_size`). Output: float32 logits `(B, 1)`.

    Example:
    >>> d = VGGStyleDiscriminator(input_size=128, num_feat=8)
    >>> d(np.zeros((2, 128, 128, 3), "float32")).shape
    TensorShape([2, 1])
    """

    def __init__(self, input_size=128, num_in_ch=3, num_feat=64, **kwargs):
        super().__init__(**kwargs)
        if input_size not in (128, 256):
            raise ValueError(f"VGGStyleDiscriminator: input_size must be 128 or 256, got {input_size!r}")
        self.input_size = int(input_size)
        self.num_in_ch = int(num_in_ch)
        self.num_feat = int(num_feat)
        dtype = self.dtype_policy
        # (name, channels, kernel, stride, has batch norm)
        mult = [1, 2, 4, 8, 8] + ([8] if input_size == 256 else [])
        spec = []
        for stage, m in enumerate(mult):
            spec.append((f"conv{stage}_0", num_feat * m, 3, 1, stage > 0))
            spec.append((f"conv{stage}_1", num_feat * m, 4, 2, True))
        self.convs, self.norms = [], []
        for name, filters, kernel, stride, has_bn in spec:
            # PyTorch padding=1 equals "same" here: k=3,s=1 and k=4,s=2 on even sizes pad 1/1.
            self.convs.append(
                keras.layers.Conv2D(
                    filters, kernel, strides=stride, padding="same", use_bias=not has_bn,
                    name=name, dtype=dtype,
                )
            )
            self.norms.append(
                keras.layers.BatchNormalization(
                    momentum=0.9, epsilon=1e-5, name=name.replace("conv", "bn"), dtype=dtype
                )
                if has_bn
                else None
            )
        self.flatten = keras.layers.Flatten(dtype=dtype, name="flatten")
        self.linear1 = keras.layers.Dense(100, name="linear1", dtype=dtype)
        self.linear2 = keras.layers.Dense(1, name="linear2", dtype=dtype)
        self.lrelu = keras.layers.LeakyReLU(LRELU_SLOPE, dtype=dtype, name="lrelu")
        self.build((None, input_size, input_size, num_in_ch))

    def build(self, input_shape=None):
        if self.built:
            return
        size, channels = self.input_size, self.num_in_ch
        shape = (None, size, size, channels)
        for conv, norm in zip(self.convs, self.norms):
            conv.build(shape)
            shape = conv.compute_output_shape(shape)
            if norm is not None:
                norm.build(shape)
        self.linear1.build((None, shape[1] * shape[2] * shape[3]))
        self.linear2.build((None, 100))
        self.built = True

    def check_patch_size(self, x):
        """`x` with its patch size checked: at once where it is static, at run time where not.

        A static H or W other than `input_size` raises `ValueError`; unknown ones (a graph
        traced for any size) get a run-time assertion, which fails the step with
        `InvalidArgumentError` naming the discriminator and the size it takes. Returns `x` with
        H and W set to `input_size` in its static shape.
        """
        size = self.input_size
        message = (
            f"VGGStyleDiscriminator(input_size={size}) takes {size}x{size} patches (its dense "
            f"layer is sized for them); pass VGGStyleDiscriminator(input_size=...) matching the "
            f"HR patch size, or UNetDiscriminatorSN for any size"
        )
        static = tuple(x.shape[1:3])
        if any(dim is not None and dim != size for dim in static):
            raise ValueError(f"{message}; got shape {tuple(x.shape)}")
        if None in static:
            with tf.control_dependencies(
                [tf.debugging.assert_equal(tf.shape(x)[1:3], [size, size], message=message + "; got H, W")]
            ):
                x = tf.identity(x)
            x.set_shape([x.shape[0], size, size, x.shape[3]])
        return x

    def call(self, x, training=None):
        feat = self.check_patch_size(x)
        for conv, norm in zip(self.convs, self.norms):
            feat = conv(feat)
            if norm is not None:
                feat = norm(feat, training=training)
            feat = self.lrelu(feat)
        feat = self.lrelu(self.linear1(self.flatten(feat)))
        return tf.cast(self.linear2(feat), "float32")

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        config = super().get_config()
        config.update(input_size=self.input_size, num_in_ch=self.num_in_ch, num_feat=self.num_feat)
        return config


@keras.saving.register_keras_serializable(package="keras_esrgan")
class UNetDiscriminatorSN(keras.Model):
    """Real-ESRGAN's U-Net discriminator with spectral normalisation (per-pixel logits).

    conv0 -> three 4x4 stride-2 downsampling convs -> three [bilinear x2, 3x3 conv] with skip
    connections -> two 3x3 convs -> conv9 (1 channel). All convs except conv0 and conv9 are
    wrapped in `keras.layers.SpectralNormalization` (one power iteration), which re-normalises the
    kernel only when called with `training=True`.

    Args:
        num_in_ch: int, input channels.
        num_feat: int, base channels.
        skip_connection: bool, add the encoder features to the decoder (Real-ESRGAN: True).
        dtype: dtype policy; the logits are always float32.

    Input: `(B, H, W, num_in_ch)` with H and W multiples of 8. Output: float32 logits
    `(B, H, W, 1)`.

    Example:
    >>> d = UNetDiscriminatorSN(num_feat=8)
    >>> d(np.zeros((1, 32, 48, 3), "float32")).shape
    TensorShape([1, 32, 48, 1])
    """

    def __init__(self, num_in_ch=3, num_feat=64, skip_connection=True, **kwargs):
        super().__init__(**kwargs)
        self.num_in_ch = int(num_in_ch)
        self.num_feat = int(num_feat)
        self.skip_connection = bool(skip_connection)
        dtype = self.dtype_policy

        def conv(filters, kernel, strides, name, sn=True):
            layer = keras.layers.Conv2D(
                filters, kernel, strides=strides, padding="same", use_bias=not sn,
                name=name, dtype=dtype,
            )
            return keras.layers.SpectralNormalization(layer, name=f"{name}_sn", dtype=dtype) if sn else layer

        f = num_feat
        self.conv0 = conv(f, 3, 1, "conv0", sn=False)
        self.conv1 = conv(f * 2, 4, 2, "conv1")
        self.conv2 = conv(f * 4, 4, 2, "conv2")
        self.conv3 = conv(f * 8, 4, 2, "conv3")
        self.conv4 = conv(f * 4, 3, 1, "conv4")
        self.conv5 = conv(f * 2, 3, 1, "conv5")
        self.conv6 = conv(f, 3, 1, "conv6")
        self.conv7 = conv(f, 3, 1, "conv7")
        self.conv8 = conv(f, 3, 1, "conv8")
        self.conv9 = conv(1, 3, 1, "conv9", sn=False)
        self.lrelu = keras.layers.LeakyReLU(LRELU_SLOPE, dtype=dtype, name="lrelu")
        self.build((None, None, None, num_in_ch))

    def build(self, input_shape=None):
        if self.built:
            return
        f = self.num_feat
        ins = [self.num_in_ch, f, f * 2, f * 4, f * 8, f * 4, f * 2, f, f, f]
        for i, channels in enumerate(ins):
            getattr(self, f"conv{i}").build((None, None, None, channels))
        self.built = True

    @staticmethod
    def _upsample(x):
        # Bilinear, half-pixel centres: PyTorch `interpolate(mode="bilinear", align_corners=False)`.
        return tf.cast(tf.image.resize(x, 2 * tf.shape(x)[1:3], method="bilinear"), x.dtype)

    def call(self, x, training=None):
        for dim in x.shape[1:3]:
            if dim is not None and dim % 8:
                raise ValueError(
                    f"UNetDiscriminatorSN needs H and W divisible by 8, got shape {tuple(x.shape)}"
                )
        sn = dict(training=bool(training))
        x0 = self.lrelu(self.conv0(x))
        x1 = self.lrelu(self.conv1(x0, **sn))
        x2 = self.lrelu(self.conv2(x1, **sn))
        x3 = self.lrelu(self.conv3(x2, **sn))
        x4 = self.lrelu(self.conv4(self._upsample(x3), **sn))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = self.lrelu(self.conv5(self._upsample(x4), **sn))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = self.lrelu(self.conv6(self._upsample(x5), **sn))
        if self.skip_connection:
            x6 = x6 + x0
        out = self.lrelu(self.conv7(x6, **sn))
        out = self.lrelu(self.conv8(out, **sn))
        return tf.cast(self.conv9(out), "float32")

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_in_ch=self.num_in_ch, num_feat=self.num_feat, skip_connection=self.skip_connection
        )
        return config
