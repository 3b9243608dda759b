"""`SRGenerator`: what every keras_esrgan generator is, so that no caller special-cases a class.

Inference (`keras_esrgan.inference`), export, weights, interpolation and training take any
`SRGenerator` (`RRDBNet`, ...) and use only this surface: `scale`, `num_in_ch`, `num_out_ch`,
`input_multiple`, `config`, `clone` / `with_policy` / `copy_weights_from` for dtype copies,
`lean_call` for the least-memory forward pass, `check_input_shape` and `flops_per_pixel`.
"""

import functools
import inspect

import keras
import tensorflow as tf
from keras_esrgan import _compat


def build_uninitialized(cls, **kwargs):
    """`cls(**kwargs)` built with its variables not yet initialized (no initializer has run).

    For a model whose weights are assigned at once (loading a file, `clone`): running the
    random initializers of the full RRDBNet costs about 5 s of CPU, several times what reading
    and assigning its 67 MB takes. Keras makes the variables of a model built in a
    `StatelessScope` without values; they are taken off Keras' pending list here, so that
    `initialize_variable` (or `finish_initialization`, with the initializers) gives each its
    value exactly once.
    """
    return _compat.build_without_initializers(cls, **kwargs)


def initialize_variable(variable, value):
    """Give `variable` the value `value` (an array or tensor of its shape, cast to its dtype):
    its first value if `build_uninitialized` left it without one (one copy, no assign), else
    an assignment."""
    # convert_to_tensor first: tf.cast returns a tf.Variable of the right dtype as it is, and
    # the new variable would then *be* the source's.
    value = tf.cast(tf.convert_to_tensor(value), variable.dtype)
    if _compat.is_uninitialized(variable):
        _compat.set_first_value(variable, value)
    else:
        variable.assign(value)


def finish_initialization(model):
    """Run the initializer of every variable of `model` still without a value; a no-op for a
    model built the ordinary way."""
    for variable in model.weights:
        if _compat.is_uninitialized(variable):
            _compat.run_initializer(variable)


@functools.cache
def architecture_arguments(cls):
    """The names of `cls.__init__`'s own arguments (not `self`, not `**kwargs`), in order.

    Example:
    >>> architecture_arguments(keras_esrgan.RRDBNet)
    ('num_in_ch', 'num_out_ch', 'scale', 'num_feat', 'num_block', 'num_grow_ch')
    """
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in parameters if p.kind in plain)


class SRGenerator(keras.Model):
    """Base class of the super-resolution generators: the surface every caller relies on.

    A subclass:
    - takes its architecture as constructor arguments (plus Keras' `dtype`, `name`, ...) and
      keeps each one as an attribute of the same name: `config` is read from them, so
      `get_config()` is Keras' base keys plus exactly the constructor's arguments;
    - sets `scale`, `num_in_ch` and `num_out_ch`;
    - builds itself in `__init__` (the generators are fully convolutional: every weight shape
      is known), so a copy can be assigned before any call;
    - sets `unshuffle_factor` if it pixel-unshuffles its input (default 1), and overrides
      `lean_call` if it has a forward pass that needs less memory than `call` (default: `call`).

    Attributes:
        scale: int, output size / input size.
        num_in_ch, num_out_ch: int, input and output channels.
        unshuffle_factor: int, the pixel-unshuffle of the input stage (1: none).

    Example:
    >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    >>> isinstance(net, SRGenerator), net.config["num_feat"], net.input_multiple
    (True, 8, 1)
    >>> half = net.clone(dtype="bfloat16")
    >>> half.dtype_policy.name, half.config == net.config, half.conv_first.kernel.dtype
    ('bfloat16', True, 'bfloat16')
    """

    unshuffle_factor = 1

    @property
    def input_multiple(self):
        """What H and W of an input must be multiples of (`unshuffle_factor`)."""
        return self.unshuffle_factor

    @property
    def config(self):
        """The architecture: the constructor's arguments and their values (no dtype, no name)."""
        return {name: getattr(self, name) for name in architecture_arguments(type(self))}

    def get_config(self):
        config = super().get_config()
        config.update(self.config)
        return config

    def describe(self):
        """`"RRDBNet(num_in_ch=3, ...)"`: the class and its architecture, for messages."""
        args = ", ".join(f"{k}={v}" for k, v in self.config.items())
        return f"{type(self).__name__}({args})"

    # --- copies in other dtype policies ------------------------------------------------------

    def clone(self, dtype=None, name=None):
        """A new model of the same class and architecture, built, with these weights cast to
        its dtype policy.

        The one way a generator is copied into another precision (inference's bf16 copy, the
        float32 copy an export starts from, the EMA generator, `load_generator(dtype=)`).

        Args:
            dtype: a Keras dtype policy (`"float32"`, `"bfloat16"`, `"mixed_bfloat16"`, ...);
                None keeps this model's.
            name: the copy's name; None keeps this model's.

        Example:
        >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> ema = net.clone(name="ema_generator")
        >>> ema.name, ema is net, all(np.array_equal(a, b) for a, b in zip(ema.get_weights(), net.get_weights()))
        ('ema_generator', False, True)
        """
        # Built without running the initializers: every variable's first value is its cast
        # weight (the bf16 copy inference makes on its first call).
        copy = build_uninitialized(
            type(self),
            **self.config,
            dtype=self.dtype_policy if dtype is None else dtype,
            name=self.name if name is None else name,
        )
        if not copy.built:
            raise ValueError(
                f"clone: {type(self).__name__}.__init__ does not build the model, so its weights "
                "cannot be copied; build it in __init__ as RRDBNet does"
            )
        try:
            copy.copy_weights_from(self)
        finally:
            finish_initialization(copy)
        return copy

    def with_policy(self, dtype):
        """This model if its dtype policy is `dtype` already, else `clone(dtype=dtype)`.

        Example:
        >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> net.with_policy("float32") is net, net.with_policy("mixed_bfloat16").dtype_policy.name
        (True, 'mixed_bfloat16')
        """
        return self if self.dtype_policy.name == keras.dtype_policies.get(dtype).name else self.clone(dtype=dtype)

    def copy_weights_from(self, other):
        """Assign `other`'s weights to this model's, cast to this model's variable dtypes.

        `other` must be of the same class and architecture (any dtype policy). Variables are
        assigned in place: functions traced over this model see the new values without
        retracing (the inference runtime's `refresh`).

        Example:
        >>> a, b = (keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4) for _ in range(2))
        >>> b.copy_weights_from(a)
        >>> np.array_equal(a.conv_first.kernel.numpy(), b.conv_first.kernel.numpy())
        True
        """
        if type(other) is not type(self) or other.config != self.config:
            theirs = other.describe() if isinstance(other, SRGenerator) else type(other).__name__
            raise ValueError(f"copy_weights_from: {theirs} is not a {self.describe()}")
        for target, source in zip(self.weights, other.weights):
            initialize_variable(target, getattr(source, "value", source))

    # --- running -----------------------------------------------------------------------------

    def lean_call(self, x):
        """The forward pass with the least memory, for inference: the same output as `call`.

        Inference runtimes and exported signatures call this; the default is the model itself.

        Args:
            x: float32 `(B, H, W, num_in_ch)` in [0, 1], H and W multiples of `input_multiple`.

        Returns:
            float32 `(B, scale*H, scale*W, num_out_ch)`.
        """
        return self(x, training=False)

    def check_input_shape(self, shape):
        """Raise a clear `ValueError` for a static input shape this model cannot take.

        The one input check: every generator's `build` and `call` go through it, so a shape is
        refused with the same words wherever it comes in.

        Example:
        >>> keras_esrgan.RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4).check_input_shape((1, 5, 6, 3))
        Traceback (most recent call last):
        ...
        ValueError: RRDBNet x2 needs H and W to be positive multiples of 2 (it pixel-unshuffles the input by 2); got shape (1, 5, 6, 3). Pad the image, as keras_esrgan.upscale does.
        """
        name = type(self).__name__
        shape = tuple(shape)
        if len(shape) != 4:
            raise ValueError(f"{name} expects a 4-D batch (B, H, W, {self.num_in_ch}), got shape {shape}")
        if shape[-1] is not None and shape[-1] != self.num_in_ch:
            raise ValueError(f"{name} expects {self.num_in_ch} input channels, got shape {shape}")
        m = self.input_multiple
        for dim in shape[1:3]:
            if dim is not None and (dim < 1 or dim % m):
                if m == 1:
                    raise ValueError(f"{name} needs H and W >= 1, got shape {shape}")
                raise ValueError(
                    f"{name} x{self.scale} needs H and W to be positive multiples of {m} (it "
                    f"pixel-unshuffles the input by {self.unshuffle_factor}); got shape {shape}. "
                    "Pad the image, as keras_esrgan.upscale does."
                )

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        s = self.scale
        return (b, None if h is None else h * s, None if w is None else w * s, self.num_out_ch)

    def flops_per_pixel(self):
        """Multiply-adds x 2 per *input* pixel, counted from the convolutions of the traced
        forward pass (their kernel and output shapes), not hard-coded.

        Example: the full x4 RRDBNet (23 blocks, 64 features) is about 35.85 MFLOP per LR pixel.
        >>> round(keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4).flops_per_pixel())
        72432
        """
        side = 4 * self.input_multiple
        spec = tf.TensorSpec([1, side, side, self.num_in_ch], tf.float32)
        graph = tf.function(lambda x: self(x, training=False), autograph=False).get_concrete_function(spec).graph
        flops = 0.0
        for op in graph.get_operations():
            if op.type == "Conv2D":
                kh, kw, cin, _ = op.inputs[1].shape.as_list()
                _, h, w, cout = op.outputs[0].shape.as_list()
                flops += 2.0 * kh * kw * cin * cout * h * w
        return flops / side**2
