"""RRDBNet: the ESRGAN generator (Wang et al., 2018), layer for layer as in BasicSR.

Sub-layer names follow BasicSR's PyTorch module names (`conv_first`, `body`, `rdb1`, `conv1`,
`conv_body`, `conv_up1`, `conv_up2`, `conv_hr`, `conv_last`), so importing a PyTorch state dict
is a table lookup (see `keras_esrgan.weights`).
"""

import numpy as np
import keras
import tensorflow as tf

from keras_esrgan.models.generator import SRGenerator
from keras_esrgan.models.layers import NearestUpsample2x, pixel_unshuffle_permutation

# ESRGAN section 3.2: residual scaling by 0.2 before adding to the main path (both the dense-block
# and the RRDB level) keeps the very deep trunk stable without batch norm.
RESIDUAL_SCALE = 0.2
# ESRGAN section 3.2 / BasicSR `default_init_weights(..., 0.1)`: Kaiming-normal init scaled by 0.1.
INIT_SCALE = 0.1
LRELU_SLOPE = 0.2

# Real-ESRGAN's x2 and x1 models pixel-unshuffle their input by 2 and 4 to run the x4 body.
UNSHUFFLE_FACTORS = {4: 1, 2: 2, 1: 4}

# Key of the marker the model writes beside its weights (.keras, .weights.h5): conv_first's kernel is
# in tf.nn.space_to_depth channel order. Files saved before the fold lack it; see `load_own_variables`.
SPACE_TO_DEPTH_MARKER = "conv_first_space_to_depth"


def fold_unshuffle(kernel, factor):
    """A conv_first kernel for PyTorch's `pixel_unshuffle` input, reordered for `tf.nn.space_to_depth`'s.

    Real-ESRGAN's x2/x1 models read `pixel_unshuffle(x)` (channel `c*f*f + i*f + j`);
    `tf.nn.space_to_depth` puts the same value at `(i*f + j)*C + c`. Permuting conv_first's input
    channels once, when the weights come in, gives the same convolution without a channel gather
    in the graph (a GATHER in TFLite, which the GPU delegate refuses).

    Args:
        kernel: Keras-layout kernel `[kh, kw, C*f*f, out]`, input channels in PyTorch order.
        factor: the unshuffle factor f (1 returns the kernel unchanged).

    Returns:
        The kernel with its input channels in space_to_depth order; `unfold_unshuffle` inverts it.

    Example:
    >>> k = np.arange(12, dtype="float32").reshape(1, 1, 12, 1)
    >>> bool(np.array_equal(unfold_unshuffle(fold_unshuffle(k, 2), 2), k))
    True
    """
    if factor == 1:
        return kernel
    perm = pixel_unshuffle_permutation(kernel.shape[2] // factor**2, factor)
    return np.asarray(kernel)[:, :, np.argsort(perm)]


def unfold_unshuffle(kernel, factor):
    """Inverse of `fold_unshuffle`: space_to_depth-order input channels back to PyTorch's order."""
    if factor == 1:
        return kernel
    perm = pixel_unshuffle_permutation(kernel.shape[2] // factor**2, factor)
    return np.asarray(kernel)[:, :, perm]


def dense_block_initializer(seed=None):
    """Kaiming-normal (fan-in, gain sqrt(2)) scaled by 0.1, as BasicSR's `default_init_weights`.

    std = 0.1 * sqrt(2 / fan_in), i.e. variance 0.02 / fan_in.
    """
    return keras.initializers.VarianceScaling(
        scale=2.0 * INIT_SCALE**2, mode="fan_in", distribution="untruncated_normal", seed=seed
    )


def torch_default_initializer(seed=None):
    """PyTorch's default Conv2d kernel init (`kaiming_uniform_(a=sqrt(5))`): U(+-1/sqrt(fan_in))."""
    return keras.initializers.VarianceScaling(
        scale=1.0 / 3.0, mode="fan_in", distribution="uniform", seed=seed
    )


def _conv(filters, name, dtype, make_initializer, kernel_size=3):
    # A fresh initializer per conv: an unseeded Keras 3 initializer instance repeats its values,
    # so sharing one would start same-shaped convs with identical weights.
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        padding="same",
        kernel_initializer=make_initializer(),
        bias_initializer="zeros",
        name=name,
        dtype=dtype,
    )


class FeatureBlock(keras.layers.Layer):
    """What `ResidualDenseBlock` and `RRDB` share: `num_feat` channels in and out at the same
    size, `num_grow_ch` dense-block growth channels, and a config of exactly those two.

    Args:
        num_feat: int, channels in and out (C).
        num_grow_ch: int, growth channels of the dense blocks.

    Shape: `(B, H, W, C)` -> `(B, H, W, C)`.
    """

    def __init__(self, num_feat=64, num_grow_ch=32, **kwargs):
        super().__init__(**kwargs)
        self.num_feat = int(num_feat)
        self.num_grow_ch = int(num_grow_ch)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(num_feat=self.num_feat, num_grow_ch=self.num_grow_ch)
        return config


@keras.saving.register_keras_serializable(package="keras_esrgan")
class ResidualDenseBlock(FeatureBlock):
    """Five densely connected 3x3 convs with a scaled residual (ESRGAN Fig. 4).

    conv_k sees the concatenation of the input and all earlier outputs; LeakyReLU(0.2) follows
    conv1..conv4; the block returns `x + 0.2 * conv5(...)`.

    Args:
        num_feat: int, channels in and out (C).
        num_grow_ch: int, growth channels produced by conv1..conv4.
        dtype: dtype policy.

    Shape: `(B, H, W, C)` -> `(B, H, W, C)`.

    Example:
    >>> block = ResidualDenseBlock(num_feat=16, num_grow_ch=8)
    >>> block(np.zeros((1, 8, 8, 16), "float32")).shape
    TensorShape([1, 8, 8, 16])
    """

    def __init__(self, num_feat=64, num_grow_ch=32, **kwargs):
        super().__init__(num_feat, num_grow_ch, **kwargs)
        init = dense_block_initializer
        self.convs = [
            _conv(num_grow_ch, f"conv{i}", self.dtype_policy, init) for i in range(1, 5)
        ] + [_conv(num_feat, "conv5", self.dtype_policy, init)]
        self.lrelu = keras.layers.LeakyReLU(LRELU_SLOPE, dtype=self.dtype_policy, name="lrelu")

    def build(self, input_shape):
        for i, conv in enumerate(self.convs):
            conv.build(tuple(input_shape[:-1]) + (self.num_feat + i * self.num_grow_ch,))
        self.built = True

    def call(self, x):
        features = [x]
        for conv in self.convs[:-1]:
            features.append(self.lrelu(conv(tf.concat(features, axis=-1))))
        return x + RESIDUAL_SCALE * self.convs[-1](tf.concat(features, axis=-1))


@keras.saving.register_keras_serializable(package="keras_esrgan")
class RRDB(FeatureBlock):
    """Residual-in-Residual Dense Block: three `ResidualDenseBlock`s and a scaled residual.

    Args:
        num_feat: int, channels in and out.
        num_grow_ch: int, growth channels of the dense blocks.

    Shape: `(B, H, W, C)` -> `(B, H, W, C)`.

    Example:
    >>> RRDB(num_feat=16, num_grow_ch=8)(np.zeros((2, 5, 7, 16), "float32")).shape
    TensorShape([2, 5, 7, 16])
    """

    def __init__(self, num_feat=64, num_grow_ch=32, **kwargs):
        super().__init__(num_feat, num_grow_ch, **kwargs)
        self.rdbs = [
            ResidualDenseBlock(num_feat, num_grow_ch, name=f"rdb{i}", dtype=self.dtype_policy)
            for i in (1, 2, 3)
        ]

    def build(self, input_shape):
        for rdb in self.rdbs:
            rdb.build(input_shape)
        self.built = True

    def call(self, x):
        out = x
        for rdb in self.rdbs:
            out = rdb(out)
        return x + RESIDUAL_SCALE * out


def _block_variables(block):
    """A block's variables in `stateless_call`'s order: trainable, then non-trainable."""
    return block.trainable_variables + block.non_trainable_variables


@keras.saving.register_keras_serializable(package="keras_esrgan")
class RRDBNet(SRGenerator):
    """The ESRGAN generator (BasicSR `RRDBNet`), NHWC.

    conv_first -> `num_block` x RRDB -> conv_body (+ trunk skip) -> [nearest x2 -> conv_up
    -> LeakyReLU] x 2 -> conv_hr -> LeakyReLU -> conv_last. For `scale` 2 and 1 the input is first
    pixel-unshuffled by 2 or 4 (Real-ESRGAN), so every scale runs the same x4 body. The unshuffle
    is a plain `tf.nn.space_to_depth`: conv_first's kernel keeps its input channels in that order
    (`fold_unshuffle`, applied when PyTorch weights are assigned and undone when they are exported),
    so the graph has no channel gather.

    Args:
        num_in_ch: int, input channels (3 for RGB).
        num_out_ch: int, output channels.
        scale: int, 4, 2 or 1: output size / input size.
        num_feat: int, trunk channels (64 in ESRGAN).
        num_block: int, number of RRDBs (23 in ESRGAN).
        num_grow_ch: int, dense-block growth channels (32 in ESRGAN).
        dtype: dtype policy, e.g. `"mixed_bfloat16"`. The output is always float32.

    Input: float `(B, H, W, num_in_ch)` RGB in [0, 1]; H and W any size for x4, multiples of
    2 (x2) or 4 (x1) otherwise (`input_multiple`). Output: float32 `(B, scale*H, scale*W,
    num_out_ch)`, nominally in [0, 1] but not clipped (as in the reference implementation).

    `lean_call` runs the trunk (`features`; traced, its RRDBs through one shared graph function,
    `shared_block_function`) and then the upsampling tail in row chunks
    (`reconstruct_in_chunks`): the same output for a fraction of the memory and of the trace.

    Example:
    >>> net = RRDBNet(num_feat=16, num_block=2, num_grow_ch=8)
    >>> net(np.zeros((1, 12, 10, 3), "float32")).shape
    TensorShape([1, 48, 40, 3])
    """

    # Feature pixels of context `reconstruct` needs on each side: conv_up1 at 2x (1 px = 1/2
    # feature px) and conv_up2, conv_hr, conv_last at 4x (1/4 each) reach 1.25 feature pixels.
    TAIL_HALO = 2
    # Feature pixels per row chunk of `reconstruct_in_chunks` (batch included): about 256 MB of
    # tail activations in float32 and 128 MB in bfloat16 for 64 channels at 16 times this size.
    TAIL_CHUNK_PIXELS = 16384

    def __init__(
        self,
        num_in_ch=3,
        num_out_ch=3,
        scale=4,
        num_feat=64,
        num_block=23,
        num_grow_ch=32,
        **kwargs,
    ):
        super().__init__(**kwargs)
        for arg, value in dict(
            num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat,
            num_block=num_block, num_grow_ch=num_grow_ch,
        ).items():
            if int(value) != value or value < 1:
                raise ValueError(f"RRDBNet: {arg} must be a positive integer, got {value!r}")
        if scale not in UNSHUFFLE_FACTORS:
            raise ValueError(f"RRDBNet: scale must be 4, 2 or 1, got {scale!r}")
        self.num_in_ch = int(num_in_ch)
        self.num_out_ch = int(num_out_ch)
        self.scale = int(scale)
        self.num_feat = int(num_feat)
        self.num_block = int(num_block)
        self.num_grow_ch = int(num_grow_ch)
        self.unshuffle_factor = UNSHUFFLE_FACTORS[self.scale]

        dtype = self.dtype_policy
        init = torch_default_initializer
        self.conv_first = _conv(num_feat, "conv_first", dtype, init)
        self.body = [
            RRDB(num_feat, num_grow_ch, name=f"body_{i}", dtype=dtype) for i in range(num_block)
        ]
        self.conv_body = _conv(num_feat, "conv_body", dtype, init)
        self.upsample = NearestUpsample2x(name="upsample", dtype=dtype)
        self.conv_up1 = _conv(num_feat, "conv_up1", dtype, init)
        self.conv_up2 = _conv(num_feat, "conv_up2", dtype, init)
        self.conv_hr = _conv(num_feat, "conv_hr", dtype, init)
        self.conv_last = _conv(num_out_ch, "conv_last", dtype, init)
        self.lrelu = keras.layers.LeakyReLU(LRELU_SLOPE, dtype=dtype, name="lrelu")
        # Fully convolutional: every weight shape is known now, so build at once (weights can be
        # assigned, counted and saved before the first call).
        self.build((None, None, None, self.num_in_ch))

    def build(self, input_shape=None):
        if self.built:
            return
        self.check_input_shape(input_shape or (None, None, None, self.num_in_ch))
        feat_shape = (None, None, None, self.num_feat)
        self.conv_first.build((None, None, None, self.num_in_ch * self.unshuffle_factor**2))
        for block in self.body:
            block.build(feat_shape)
        for conv in (self.conv_body, self.conv_up1, self.conv_up2, self.conv_hr, self.conv_last):
            conv.build(feat_shape)
        self.built = True

    def call(self, x):
        return self.reconstruct(self.features(x))

    # --- the space_to_depth marker beside the weights ----------------------------------------

    def save_own_variables(self, store):
        super().save_own_variables(store)
        store[SPACE_TO_DEPTH_MARKER] = np.asarray(self.unshuffle_factor, "int32")

    def load_own_variables(self, store):
        # Keras loads a model's own entry before its layers'. A file saved before the fold (no
        # marker) holds conv_first in PyTorch's pixel_unshuffle order: fold it as it loads.
        keys = set(store.keys())
        keys.discard(SPACE_TO_DEPTH_MARKER)
        if keys:
            raise ValueError(f"{self.describe()}: unexpected weights {sorted(keys)[:4]} at the model level")
        if SPACE_TO_DEPTH_MARKER in store.keys() or self.unshuffle_factor == 1:
            return
        conv, factor = self.conv_first, self.unshuffle_factor

        def load_and_fold(conv_store):
            del conv.load_own_variables  # back to Conv2D's own method
            conv.load_own_variables(conv_store)
            conv.kernel.assign(fold_unshuffle(conv.kernel.numpy(), factor))

        conv.load_own_variables = load_and_fold

    def lean_call(self, x):
        """`call(x)` for inference: the upsampling tail in row chunks, one graph for every RRDB.

        The same output (to float rounding) for a fraction of the memory: the tail's activations
        cost one row chunk instead of the whole 16x map (figures: README, "Memory"). Traced in a
        `tf.function`, the trunk runs all `num_block` RRDBs through one graph function
        (`shared_block_function`), so the graph to trace and optimise is about a third as big.

        Example:
        >>> net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> x = np.random.default_rng(0).random((1, 12, 10, 3), "float32")
        >>> bool(np.allclose(net.lean_call(x), net(x), atol=1e-6))
        True
        """
        return self.reconstruct_in_chunks(self._trunk(x, self.shared_block_function()))

    def features(self, x):
        """The trunk: input -> low-resolution features (conv_first, RRDBs, conv_body + skip).

        Shape: `(B, H, W, num_in_ch)` -> `(B, H/f, W/f, num_feat)` in the compute dtype, f the
        unshuffle factor (1 for x4). `call(x) == reconstruct(features(x))`.
        """
        return self._trunk(x, None)

    def _trunk(self, x, block_function):
        self.check_input_shape(x.shape)
        f = self.unshuffle_factor
        feat = tf.nn.space_to_depth(x, f) if f > 1 else x  # conv_first's kernel is folded to match
        feat = self.conv_first(feat)
        body = feat
        for block in self.body:
            if block_function is None:
                body = block(body)
            else:
                body = block_function(body, *[v.value for v in _block_variables(block)])
        return feat + self.conv_body(body)

    def shared_block_function(self):
        """One graph function that runs any of the RRDBs, given its weights; None if not usable.

        Inlined, 23 RRDBs are 23 copies of the same 15 convs: most of the ~4400 nodes that TF
        traces and grappler optimises before the first image (1.7-1.9 s of tracing and ~1.25 s
        of grappler for the x4 model here). This `tf.function` (marked `_noinline`) is traced
        once from the first block's own `call` (`stateless_call`, so no second forward pass is
        written) and called once per block with that block's variables as arguments: the outer
        graph drops to under 800 nodes, the trace to 0.4-0.9 s and grappler's passes to about
        0.3 s (`python benchmarks/first_image.py`; the steady pass is unchanged).

        Returns None (run the blocks one by one) outside a `tf.function`, and when the blocks
        are not interchangeable (different weight shapes or dtypes, one block frozen and not the
        others) or a mixed policy casts the weights on read.

        Returns:
            a `tf.function` `(h, *variables) -> h` over `(B, h, w, num_feat)` features in the
            compute dtype (`variables`: a block's trainable then non-trainable variables), or
            None.
        """
        template = self.body[0]
        n_trainable = len(template.trainable_variables)

        def layout(block):
            return len(block.trainable_variables), [(tuple(v.shape), v.dtype) for v in _block_variables(block)]

        signature = layout(template)
        if not tf.inside_function() or not signature[1]:
            return None
        if any(layout(block) != signature for block in self.body):
            return None
        if any(dtype != template.compute_dtype for _, dtype in signature[1]):
            return None  # a mixed policy casts variables on read: keep Keras's own path

        def run_block(h, *weights):
            weights = list(weights)
            return template.stateless_call(weights[:n_trainable], weights[n_trainable:], h)[0]

        # No input_signature: the variables go in as variables (traced by shape and dtype, so
        # one trace serves all blocks) and are read inside the function, which keeps ~700
        # reads out of the outer graph (its trace 0.39 s against 0.77 warm, measured here).
        return tf.function(run_block, autograph=False, experimental_attributes={"_noinline": True})

    def reconstruct(self, feat):
        """The upsampling tail: features -> float32 image, 4 times their size.

        Four 3x3 convs after the upsamplings see `TAIL_HALO` feature pixels around each output
        pixel, so the tail can run on overlapping chunks of feature rows and give the same
        output (the upsampled maps are 16 times larger than the features: this is where an
        untiled pass spends its memory; `reconstruct_in_chunks` does that).

        Shape: `(B, h, w, num_feat)` -> float32 `(B, 4h, 4w, num_out_ch)`.
        """
        feat = self.lrelu(self.conv_up1(self.upsample(feat)))
        feat = self.lrelu(self.conv_up2(self.upsample(feat)))
        out = self.conv_last(self.lrelu(self.conv_hr(feat)))
        return tf.cast(out, "float32")

    def reconstruct_in_chunks(self, feat, chunk_pixels=None):
        """`reconstruct(feat)` computed on row chunks of the features, one after another.

        Each chunk of `chunk_pixels // (B * w)` feature rows (at least 1) runs with `TAIL_HALO`
        rows of context on each side, and only its own rows are kept, so the result equals
        `reconstruct(feat)` (to float rounding) while the tail's activations cost one chunk
        instead of the whole map (figures: README, "Memory"; `python benchmarks/memory.py
        pass`). A `tf.while_loop` with
        `parallel_iterations=1`, so it keeps that bound in a graph (SavedModel, `tf.function`)
        and works eagerly too.

        Args:
            feat: `(B, h, w, num_feat)` features, from `features`.
            chunk_pixels: feature pixels per chunk; default `TAIL_CHUNK_PIXELS`.

        Returns:
            float32 `(B, 4h, 4w, num_out_ch)`.

        Example:
        >>> net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> feat = net.features(np.zeros((1, 20, 12, 3), "float32"))
        >>> net.reconstruct_in_chunks(feat, chunk_pixels=3 * 12).shape   # 7 chunks of 3 rows
        TensorShape([1, 80, 48, 3])
        """
        chunk_pixels = self.TAIL_CHUNK_PIXELS if chunk_pixels is None else int(chunk_pixels)
        shape = tf.shape(feat)
        rows = shape[1]
        chunk = tf.maximum(1, chunk_pixels // (shape[0] * shape[2]))
        count = (rows + chunk - 1) // chunk
        halo = self.TAIL_HALO

        def body(i, chunks):
            r0 = i * chunk
            r1 = tf.minimum(rows, r0 + chunk)
            a, b = tf.maximum(0, r0 - halo), tf.minimum(rows, r1 + halo)
            y = self.reconstruct(feat[:, a:b])[:, 4 * (r0 - a) : 4 * (r1 - a)]
            # Rows first, so the chunks concatenate along the TensorArray's axis 0.
            return i + 1, chunks.write(i, tf.transpose(y, [1, 0, 2, 3]))

        chunks = tf.TensorArray(
            tf.float32, size=count, infer_shape=False,
            element_shape=tf.TensorShape([None, None, None, self.num_out_ch]),
        )
        _, chunks = tf.while_loop(
            lambda i, _: i < count, body, [tf.constant(0), chunks], parallel_iterations=1
        )
        return tf.transpose(chunks.concat(), [1, 0, 2, 3])
