"""RRDBNet: shapes, wiring against a numpy reference, init, serialisation, precision, TFLite ops."""

import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan import RRDBNet
from keras_esrgan.models import NearestUpsample2x, PixelUnshuffle
from keras_esrgan.weights import state_dict
from tests.conftest import TINY, assert_keras_round_trip
from tests.reference.numpy_rrdbnet import nearest_x2, pixel_unshuffle, rrdbnet_forward


def _randomize(model, seed=0, std=0.1):
    """Random weights *and* biases, so every layer shows up in the output."""
    rng = np.random.default_rng(seed)
    for var in model.weights:
        var.assign(rng.normal(0, std, var.shape).astype("float32"))
    return model


@pytest.mark.parametrize("scale,h,w", [(4, 7, 5), (2, 6, 10), (1, 8, 12)])
def test_matches_numpy_reference(scale, h, w, rng):
    model = _randomize(RRDBNet(scale=scale, **TINY))
    x = rng.random((2, h, w, 3), dtype=np.float32)
    expected = rrdbnet_forward(state_dict(model), x, scale=scale)
    out = model(x).numpy()
    assert out.shape == (2, h * scale, w * scale, 3)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, expected, atol=2e-5, rtol=0)


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_shapes_any_size_and_batch(scale):
    model = RRDBNet(scale=scale, num_in_ch=1, num_out_ch=4, **TINY)
    f = {4: 1, 2: 2, 1: 4}[scale]
    for b, h, w in [(1, 4 * f, 4 * f), (3, 3 * f, 5 * f)]:
        assert model(np.zeros((b, h, w, 1), "float32")).shape == (b, h * scale, w * scale, 4)
    assert model.compute_output_shape((None, 8, None, 1)) == (None, 8 * scale, None, 4)


def test_dynamic_shapes_in_one_traced_function(rng):
    model = _randomize(RRDBNet(**TINY))
    fn = tf.function(model, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    for h, w in [(5, 9), (12, 3)]:
        x = rng.random((1, h, w, 3), dtype=np.float32)
        np.testing.assert_allclose(fn(x).numpy(), model(x).numpy(), atol=1e-6)


@pytest.mark.parametrize("scale", [4, 2, 1])
def test_traced_graph_keeps_the_static_sizes_it_knows(scale):
    """Known H/W stay known through unshuffle and both upsamplings (the VGG-style
    discriminator after the generator needs them); unknown ones stay unknown."""
    model = RRDBNet(scale=scale, **TINY)
    for spec, expected in [
        ([None, 32, 24, 3], [None, 32 * scale, 24 * scale, 3]),
        ([2, None, 24, 3], [2, None, 24 * scale, 3]),
        ([None, None, None, 3], [None, None, None, 3]),
    ]:
        fn = tf.function(model, input_signature=[tf.TensorSpec(spec, tf.float32)])
        assert fn.get_concrete_function().structured_outputs.shape.as_list() == expected, spec
    layer = NearestUpsample2x()
    fn = tf.function(layer, input_signature=[tf.TensorSpec([None, 5, None, 2], tf.float32)])
    assert fn.get_concrete_function().structured_outputs.shape.as_list() == [None, 10, None, 2]


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="multiples of 2"):
        RRDBNet(scale=2, **TINY)(np.zeros((1, 5, 6, 3), "float32"))
    with pytest.raises(ValueError, match="multiples of 4"):
        RRDBNet(scale=1, **TINY)(np.zeros((1, 8, 6, 3), "float32"))
    with pytest.raises(ValueError, match="input channels"):
        RRDBNet(**TINY)(np.zeros((1, 8, 8, 4), "float32"))
    with pytest.raises(ValueError, match="4-D"):
        RRDBNet(**TINY)(np.zeros((8, 8, 3), "float32"))
    with pytest.raises(ValueError, match="scale must be 4, 2 or 1"):
        RRDBNet(scale=3)
    with pytest.raises(ValueError, match="num_block"):
        RRDBNet(num_block=0)


def test_nearest_upsample_equals_repeat(rng):
    x = rng.random((2, 3, 5, 4), dtype=np.float32)
    np.testing.assert_array_equal(NearestUpsample2x()(x).numpy(), nearest_x2(x))


@pytest.mark.parametrize("factor", [2, 4])
def test_pixel_unshuffle_uses_pytorch_channel_order(factor, rng):
    x = rng.random((2, 4 * factor, 3 * factor, 3), dtype=np.float32)
    np.testing.assert_array_equal(PixelUnshuffle(factor)(x).numpy(), pixel_unshuffle(x, factor))


def test_full_size_parameter_count_and_flops():
    model = RRDBNet()
    # ESRGAN's RRDB_ESRGAN_x4.pth holds 16,697,987 parameters.
    assert model.count_params() == 16_697_987
    assert model.flops_per_pixel() == pytest.approx(35.85e6, rel=1e-3)


def test_dense_block_init_is_kaiming_scaled_by_0_1():
    model = RRDBNet(num_feat=64, num_block=2, num_grow_ch=32)
    conv = model.body[0].rdbs[0].convs[4]  # fan_in = 9 * (64 + 4 * 32)
    kernel = conv.kernel.numpy()
    expected_std = 0.1 * np.sqrt(2.0 / (9 * 192))
    assert kernel.std() == pytest.approx(expected_std, rel=0.05)
    assert abs(kernel.mean()) < 0.05 * expected_std * 10
    assert not conv.bias.numpy().any()
    # Outside the dense blocks: PyTorch's default U(+-1/sqrt(fan_in)).
    first = model.conv_first.kernel.numpy()
    assert np.abs(first).max() <= 1 / np.sqrt(27) + 1e-7
    assert first.std() == pytest.approx(1 / np.sqrt(3 * 27), rel=0.15)


def test_no_two_convs_start_with_the_same_weights():
    model = RRDBNet(**TINY)
    kernels = [w.numpy().tobytes() for w in model.weights if w.path.endswith("kernel")]
    assert len(set(kernels)) == len(kernels)


def test_get_config_from_config_and_keras_round_trip(tmp_path, rng):
    model = _randomize(RRDBNet(scale=2, num_out_ch=1, **TINY))
    assert_keras_round_trip(model, tmp_path, rng.random((1, 6, 8, 3), dtype=np.float32))


@pytest.mark.parametrize("policy,rtol", [("mixed_bfloat16", 0.05), ("mixed_float16", 0.01)])
def test_mixed_precision(policy, rtol, rng):
    ref = _randomize(RRDBNet(**TINY), std=0.05)
    model = RRDBNet(dtype=policy, **TINY)
    model.set_weights(ref.get_weights())
    assert all(v.dtype == "float32" for v in model.weights)  # variables stay float32
    x = rng.random((1, 8, 8, 3), dtype=np.float32)
    out, expected = model(x), ref(x).numpy()
    assert out.dtype == tf.float32
    err = np.abs(out.numpy() - expected).mean() / np.abs(expected).mean()
    assert err < rtol


def test_converts_to_tflite_builtins_with_dynamic_size(tmp_path, rng):
    """The x2 (unshuffle + upsample) path converts to builtin ops only, dynamic H and W."""
    from ai_edge_litert.interpreter import Interpreter

    model = _randomize(RRDBNet(scale=2, num_feat=4, num_block=1, num_grow_ch=4))
    model.export(
        str(tmp_path / "sm"), format="tf_saved_model", verbose=False,
        input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)],
    )
    converter = tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "sm"))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # fails on Flex ops
    interpreter = Interpreter(model_content=converter.convert())
    x = rng.random((1, 6, 10, 3), dtype=np.float32)
    inp = interpreter.get_input_details()[0]
    interpreter.resize_tensor_input(inp["index"], x.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(inp["index"], x)
    interpreter.invoke()
    out = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(out, model(x).numpy(), atol=1e-5)


def _traced_lean_call(model):
    fn = tf.function(
        model.lean_call, autograph=False,
        input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)],
    )
    ops = [n.op for n in fn.get_concrete_function().graph.as_graph_def().node]
    return fn, ops


@pytest.mark.parametrize("dtype,atol", [("float32", 2e-6), ("bfloat16", 0.05)])
def test_traced_lean_call_runs_every_block_through_one_shared_function(dtype, atol, rng):
    """Each RRDB is one call of the same graph function (a third of the nodes to trace and
    optimise for the x4 model), and the output is still `call`'s."""
    ref = _randomize(RRDBNet(num_feat=8, num_block=3, num_grow_ch=4), std=0.05)
    model = RRDBNet(num_feat=8, num_block=3, num_grow_ch=4, dtype=dtype)
    model.set_weights(ref.get_weights())
    fn, ops = _traced_lean_call(model)
    assert ops.count("PartitionedCall") + ops.count("StatefulPartitionedCall") == 3
    assert ops.count("Conv2D") == 2  # conv_first, conv_body: no block's 15 convs inlined
    assert ops.count("ReadVariableOp") < 15  # the blocks' 3 x 30 weights are read inside the call
    x = rng.random((1, 9, 7, 3), dtype=np.float32)
    np.testing.assert_allclose(fn(x).numpy(), ref(x).numpy(), atol=atol, rtol=0)


def test_shared_block_function_falls_back_when_blocks_differ(rng):
    """Outside a trace, under a mixed policy (variables cast on read) or with one block frozen,
    the blocks run one by one, and the output is unchanged."""
    def traced_choice(model):
        seen = []
        tf.function(lambda: seen.append(model.shared_block_function()) or tf.constant(0.0))()
        return seen[0]

    plain = RRDBNet(num_feat=8, num_block=2, num_grow_ch=4)
    assert plain.shared_block_function() is None  # eager
    assert traced_choice(plain) is not None
    assert traced_choice(RRDBNet(num_feat=8, num_block=2, num_grow_ch=4, dtype="mixed_bfloat16")) is None

    frozen_one = _randomize(RRDBNet(num_feat=8, num_block=2, num_grow_ch=4))
    frozen_one.body[1].trainable = False
    assert traced_choice(frozen_one) is None
    fn, ops = _traced_lean_call(frozen_one)
    assert "PartitionedCall" not in ops and ops.count("Conv2D") == 2 + 2 * 15
    x = rng.random((1, 6, 5, 3), dtype=np.float32)
    np.testing.assert_allclose(fn(x).numpy(), frozen_one(x).numpy(), atol=2e-6, rtol=0)

    all_frozen = _randomize(RRDBNet(num_feat=8, num_block=2, num_grow_ch=4))
    all_frozen.trainable = False
    assert traced_choice(all_frozen) is not None  # frozen alike: still interchangeable
    fn, _ = _traced_lean_call(all_frozen)
    np.testing.assert_allclose(fn(x).numpy(), all_frozen(x).numpy(), atol=2e-6, rtol=0)
