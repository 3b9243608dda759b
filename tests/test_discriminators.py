"""VGG-style and U-Net (spectral norm) discriminators: structure, shapes, training behaviour."""

import numpy as np
import pytest
import keras

from keras_esrgan import UNetDiscriminatorSN, VGGStyleDiscriminator


def _trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_parameter_counts_match_basicsr():
    # Trainable parameter counts of BasicSR's / Real-ESRGAN's PyTorch modules (num_feat=64),
    # counted with tests/reference/torch_rrdbnet.py.
    assert _trainable_count(VGGStyleDiscriminator(input_size=128)) == 14_499_401
    assert _trainable_count(VGGStyleDiscriminator(input_size=256)) == 21_055_049
    assert _trainable_count(UNetDiscriminatorSN()) == 4_376_897


@pytest.mark.parametrize("size", [128, 256])
def test_vgg_logits_shape_and_bad_sizes(size, rng):
    d = VGGStyleDiscriminator(input_size=size, num_feat=4)
    out = d(rng.random((3, size, size, 3), dtype=np.float32))
    assert out.shape == (3, 1) and out.dtype == "float32"
    with pytest.raises(ValueError, match=f"{size}x{size}"):
        d(np.zeros((1, 64, 64, 3), "float32"))
    with pytest.raises(ValueError, match="128 or 256"):
        VGGStyleDiscriminator(input_size=96)


def test_vgg_patch_size_is_checked_on_dynamic_shapes_too(rng):
    """In a graph traced for any size the check runs when the step runs, with the same words."""
    import tensorflow as tf

    d = VGGStyleDiscriminator(input_size=128, num_feat=4)
    fn = tf.function(d, input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32)])
    x = rng.random((2, 128, 128, 3), dtype=np.float32)
    np.testing.assert_allclose(fn(x).numpy(), d(x).numpy(), atol=1e-6)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input_size=128\) takes 128x128 patches"):
        fn(np.zeros((1, 64, 64, 3), "float32"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="128x128 patches"):
        fn(np.zeros((1, 128, 64, 3), "float32"))
    # Partly static: the known side is checked while tracing.
    partial = tf.function(d, input_signature=[tf.TensorSpec([None, 96, None, 3], tf.float32)])
    with pytest.raises(ValueError, match="128x128 patches"):
        partial.get_concrete_function()


def test_vgg_batch_norm_uses_batch_statistics_only_in_training(rng):
    d = VGGStyleDiscriminator(num_feat=4)
    x = rng.random((4, 128, 128, 3), dtype=np.float32)
    before = [w.numpy() for w in d.non_trainable_weights]
    inference = d(x, training=False).numpy()
    np.testing.assert_array_equal(d(x, training=False).numpy(), inference)
    training = d(x, training=True).numpy()
    assert not np.allclose(training, inference)
    after = [w.numpy() for w in d.non_trainable_weights]
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))  # moving stats moved


def test_unet_per_pixel_logits_and_size_check(rng):
    d = UNetDiscriminatorSN(num_feat=4)
    out = d(rng.random((2, 32, 48, 3), dtype=np.float32))
    assert out.shape == (2, 32, 48, 1) and out.dtype == "float32"
    with pytest.raises(ValueError, match="divisible by 8"):
        d(np.zeros((1, 30, 32, 3), "float32"))


def test_spectral_norm_updates_only_in_training(rng):
    d = UNetDiscriminatorSN(num_feat=8)
    x = rng.random((1, 16, 16, 3), dtype=np.float32)
    kernel = d.conv4.layer.kernel
    k0 = kernel.numpy()
    d(x, training=False)
    np.testing.assert_array_equal(kernel.numpy(), k0)
    for _ in range(30):
        d(x, training=True)
    k1 = kernel.numpy()
    assert not np.allclose(k1, k0)
    sigma = np.linalg.svd(k1.reshape(-1, k1.shape[-1]), compute_uv=False)[0]
    assert sigma == pytest.approx(1.0, rel=0.05)
    # conv0 and conv9 are not normalised.
    assert not isinstance(d.conv0, keras.layers.SpectralNormalization)
    assert not isinstance(d.conv9, keras.layers.SpectralNormalization)


@pytest.mark.parametrize(
    "make,shape",
    [
        (lambda: VGGStyleDiscriminator(input_size=128, num_feat=4), (2, 128, 128, 3)),
        (lambda: UNetDiscriminatorSN(num_feat=4, skip_connection=False), (1, 24, 16, 3)),
    ],
)
def test_keras_round_trip(make, shape, tmp_path, rng):
    d = make()
    x = rng.random(shape, dtype=np.float32)
    d.save(tmp_path / "d.keras")
    loaded = keras.saving.load_model(tmp_path / "d.keras")
    assert type(loaded) is type(d) and loaded.get_config() == d.get_config()
    np.testing.assert_array_equal(loaded(x).numpy(), d(x).numpy())


def test_mixed_precision_logits_are_float32(rng):
    d = UNetDiscriminatorSN(num_feat=4, dtype="mixed_bfloat16")
    assert d(rng.random((1, 16, 16, 3), dtype=np.float32)).dtype == "float32"
    v = VGGStyleDiscriminator(num_feat=4, dtype="mixed_float16")
    assert v(rng.random((1, 128, 128, 3), dtype=np.float32)).dtype == "float32"


def test_parity_with_pytorch(rng):
    """Same weights, same logits as the PyTorch modules (needs the optional torch extra)."""
    torch = pytest.importorskip("torch")
    from tests.reference import torch_rrdbnet as ref

    def conv_to_keras(layer, weight, bias=None):
        layer.kernel.assign(weight.detach().numpy().transpose(2, 3, 1, 0))
        if bias is not None:
            layer.bias.assign(bias.detach().numpy())

    torch.manual_seed(0)
    tv = ref.VGGStyleDiscriminator(num_feat=4).eval()
    for m in tv.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    kv = VGGStyleDiscriminator(num_feat=4)
    for conv, norm in zip(kv.convs, kv.norms):
        tconv = getattr(tv, conv.name)
        conv_to_keras(conv, tconv.weight, tconv.bias)
        if norm is not None:
            tbn = getattr(tv, norm.name)
            norm.set_weights([t.detach().numpy() for t in
                              (tbn.weight, tbn.bias, tbn.running_mean, tbn.running_var)])
    # PyTorch flattens (C, H, W), Keras (H, W, C): permute linear1's input rows.
    w1 = tv.linear1.weight.detach().numpy().reshape(100, -1, 4, 4).transpose(2, 3, 1, 0)
    kv.linear1.set_weights([w1.reshape(-1, 100), tv.linear1.bias.detach().numpy()])
    kv.linear2.set_weights([tv.linear2.weight.detach().numpy().T, tv.linear2.bias.detach().numpy()])
    x = rng.random((2, 128, 128, 3), dtype=np.float32)
    with torch.no_grad():
        expected = tv(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(kv(x, training=False).numpy(), expected, atol=1e-4, rtol=1e-4)

    tu = ref.UNetDiscriminatorSN(num_feat=4)
    with torch.no_grad():
        for _ in range(20):  # converge the power iteration; eval mode then uses the stored u, v
            tu(torch.zeros(1, 3, 16, 16))
    tu.eval()
    ku = UNetDiscriminatorSN(num_feat=4)
    for i in range(10):
        layer = getattr(ku, f"conv{i}")
        tconv = getattr(tu, f"conv{i}")
        target = layer.layer if isinstance(layer, keras.layers.SpectralNormalization) else layer
        conv_to_keras(target, tconv.weight, tconv.bias)
    x = rng.random((1, 24, 32, 3), dtype=np.float32)
    with torch.no_grad():
        expected = tu(torch.from_numpy(x).permute(0, 3, 1, 2)).permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(ku(x, training=False).numpy(), expected, atol=1e-5)
