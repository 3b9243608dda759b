"""SRGenerator: the surface every caller uses, on RRDBNet and on a new minimal subclass.

The minimal subclass below sets only what the base asks of a generator (its layers, `scale`,
`num_in_ch`, `num_out_ch`); everything else (config, copies, the plain `lean_call`, input
checks, FLOP count) comes from the base, and the callers (Upscaler, SavedModel export, EMA,
interpolation) take it with no special case.
"""

import inspect

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan import PSNRTrainer, RRDBNet, SRGenerator, SRVGGNetCompact, interpolate, save_generator
from keras_esrgan.export import serving_functions
from keras_esrgan.inference import Upscaler
from keras_esrgan.models import RRDB, ResidualDenseBlock
from tests.conftest import TINY


class NearestConv(SRGenerator):
    """Nearest-neighbour upsampling plus a learned two-conv residual at the output size."""

    def __init__(self, num_feat=4, scale=2, **kwargs):
        super().__init__(**kwargs)
        self.num_feat, self.scale = int(num_feat), int(scale)
        self.num_in_ch = self.num_out_ch = 3
        self.conv1 = keras.layers.Conv2D(num_feat, 3, padding="same", dtype=self.dtype_policy, name="conv1")
        self.conv2 = keras.layers.Conv2D(3, 3, padding="same", dtype=self.dtype_policy, name="conv2")
        self.conv1.build((None, None, None, 3))
        self.conv2.build((None, None, None, num_feat))
        self.built = True

    def call(self, x):
        self.check_input_shape(x.shape)
        up = tf.image.resize(x, self.scale * tf.shape(x)[1:3], method="nearest")
        return tf.cast(up, "float32") + tf.cast(self.conv2(self.conv1(up)), "float32")


def randomized(model, seed=0):
    rng = np.random.default_rng(seed)
    for var in model.weights:
        var.assign(rng.normal(0, 0.1, var.shape).astype("float32"))
    return model


def test_config_is_exactly_the_constructor_arguments():
    base_keys = set(keras.Model(name="m").get_config())
    for model in (RRDBNet(scale=2, num_out_ch=1, **TINY), NearestConv(num_feat=5, scale=3)):
        arguments = [p for p in inspect.signature(type(model).__init__).parameters if p not in ("self", "kwargs")]
        assert list(model.config) == arguments
        assert set(model.get_config()) == base_keys | set(arguments)
        assert type(model).from_config(model.get_config()).config == model.config
    assert NearestConv(num_feat=5, scale=3).config == {"num_feat": 5, "scale": 3}
    for block in (ResidualDenseBlock(16, 8), RRDB(16, 8)):
        config = block.get_config()
        assert {config["num_feat"], config["num_grow_ch"]} == {16, 8}
        assert type(block).from_config(config).get_config() == config
        assert block.compute_output_shape((2, 5, 7, 16)) == (2, 5, 7, 16)


@pytest.mark.parametrize("make", [lambda: randomized(RRDBNet(**TINY)), lambda: randomized(NearestConv())])
def test_clone_casts_every_weight_and_copy_weights_from_refuses_another_architecture(make, rng):
    net = make()
    same = net.clone()
    assert same is not net and same.name == net.name and same.dtype_policy.name == "float32"
    x = rng.random((1, 8, 12, 3), dtype=np.float32)
    np.testing.assert_array_equal(same(x).numpy(), net(x).numpy())
    half = net.clone(dtype="bfloat16", name="half")
    assert half.name == "half" and half.config == net.config
    for a, b in zip(half.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, tf.cast(b, tf.bfloat16).numpy())
    # The mixed policy keeps float32 variables: the same values, computed in bfloat16.
    mixed = net.clone(dtype="mixed_bfloat16")
    assert all(v.dtype == "float32" for v in mixed.weights)
    for a, b in zip(mixed.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert net.with_policy("float32") is net and mixed.with_policy("mixed_bfloat16") is mixed
    # copy_weights_from assigns in place (a traced function over the copy sees the new values).
    fn = tf.function(same, input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)])
    fn(x)
    randomized(net, seed=1)
    same.copy_weights_from(net)
    np.testing.assert_array_equal(fn(x).numpy(), net(x).numpy())
    assert fn.experimental_get_tracing_count() == 1
    other = type(net)(**{**net.config, "num_feat": 6})
    with pytest.raises(ValueError, match=r"copy_weights_from: \w+\(.*num_feat=6.*\) is not a"):
        net.copy_weights_from(other)


@pytest.mark.parametrize("cls, kwargs", [(RRDBNet, TINY), (SRVGGNetCompact, dict(num_feat=4, num_conv=1))])
def test_build_checks_the_shape_as_a_call_does(cls, kwargs):
    # Both architectures build in __init__; a build from another shape (Keras' build config)
    # must reject a wrong channel count with the message check_input_shape gives a call.
    net = cls(**kwargs)
    net.built = False
    with pytest.raises(ValueError, match=rf"^{cls.__name__} expects 3 input channels, got shape \(None, None, None, 4\)$"):
        net.build((None, None, None, 4))
    assert not net.built


def test_a_new_generator_subclass_works_everywhere_with_the_defaults(rng):
    net = randomized(NearestConv(num_feat=4, scale=2))
    x = rng.random((1, 6, 5, 3), dtype=np.float32)
    assert net.unshuffle_factor == net.input_multiple == 1
    np.testing.assert_array_equal(net.lean_call(x).numpy(), net(x).numpy())
    assert net.compute_output_shape((None, 6, None, 3)) == (None, 12, None, 3)
    with pytest.raises(ValueError, match="NearestConv needs H and W >= 1"):
        net.check_input_shape((1, 0, 5, 3))
    with pytest.raises(ValueError, match="NearestConv expects 3 input channels"):
        net.check_input_shape((1, 6, 5, 4))
    # Both convs run at the output resolution: scale^2 output pixels per input pixel.
    assert net.flops_per_pixel() == 2 * 9 * (3 * 4 + 4 * 3) * 2**2

    image = rng.integers(0, 256, (6, 5, 3), dtype=np.uint8)
    expected = np.rint(np.clip(net(image[None] / np.float32(255)).numpy()[0], 0, 1) * 255)
    assert np.abs(Upscaler(net, precision="fp32")(image).astype(int) - expected).max() <= 1
    bf16 = Upscaler(net, precision="bf16")
    assert bf16.runner.model().dtype_policy.name == "bfloat16"
    assert np.abs(bf16(image).astype(int) - expected).max() <= 8
    served = serving_functions(net)["serving_default"](tf.constant(image[None]))["upscaled"].numpy()[0]
    assert np.abs(served.astype(int) - expected).max() <= 1

    trainer = PSNRTrainer(net, ema_decay=0.9)
    ema = trainer.ema_generator
    assert type(ema) is NearestConv and ema is not net and ema.name == "ema_generator"
    assert all(np.array_equal(a, b) for a, b in zip(ema.get_weights(), net.get_weights()))
    other = randomized(NearestConv(num_feat=4, scale=2), seed=3)
    mid = interpolate(net, other, 0.5)
    assert type(mid) is NearestConv
    for w, a, b in zip(mid.weights, net.weights, other.weights):
        np.testing.assert_allclose(w.numpy(), (a.numpy() + b.numpy()) / 2, atol=1e-7)
    with pytest.raises(ValueError, match="differ in architecture"):
        interpolate(net, RRDBNet(**TINY), 0.5)


def test_clone_and_load_build_without_initializers_and_own_their_variables(tmp_path):
    from keras.src.backend.common import global_state

    from keras_esrgan.weights import load_generator

    net = randomized(RRDBNet(**TINY))
    for copy in (net.clone(), net.clone(dtype="bfloat16")):
        assert all(v._value is not None for v in copy.weights)
        copy.conv_first.bias.assign(np.full(copy.conv_first.bias.shape, 7.0, "float32"))
        assert not np.any(net.conv_first.bias.numpy() == 7.0)  # the copy's own variables
    save_generator(net, tmp_path / "net.safetensors")
    loaded = load_generator(tmp_path / "net.safetensors")
    for a, b in zip(loaded.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)
    # Nothing left on Keras' pending list for a later StatelessScope to initialize again.
    assert not global_state.get_global_attribute("uninitialized_variables")
    with keras.StatelessScope():
        pass
    np.testing.assert_array_equal(loaded.conv_last.bias.numpy(), net.conv_last.bias.numpy())
