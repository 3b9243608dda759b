"""Relativistic average and vanilla GAN, pixel and PSNR losses against hand-written numpy."""

import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan.losses import (
    average_over_global_batch,
    global_mean,
    pixel_loss,
    psnr,
    relativistic_discriminator_loss,
    relativistic_generator_loss,
    vanilla_discriminator_loss,
    vanilla_generator_loss,
)

REAL = np.array([[2.0], [0.5], [-1.0], [3.0]], np.float32)
FAKE = np.array([[-1.5], [0.0], [1.0], [-3.0]], np.float32)


def np_bce(logits, label):
    """-[y log s(z) + (1 - y) log(1 - s(z))], straight from the definition."""
    s = 1.0 / (1.0 + np.exp(-logits.astype(np.float64)))
    return -(label * np.log(s) + (1 - label) * np.log(1 - s))


def np_per_sample(x):
    return x.reshape(x.shape[0], -1).mean(axis=1)


def np_d_loss(real, fake):
    return 0.5 * (np_per_sample(np_bce(real - fake.mean(), 1)) + np_per_sample(np_bce(fake - real.mean(), 0)))


def np_g_loss(real, fake):
    return 0.5 * (np_per_sample(np_bce(real - fake.mean(), 0)) + np_per_sample(np_bce(fake - real.mean(), 1)))


def test_discriminator_loss_matches_numpy():
    got = relativistic_discriminator_loss(REAL, FAKE).numpy()
    assert got.dtype == np.float32 and got.shape == (4,)
    np.testing.assert_allclose(got, np_d_loss(REAL, FAKE), rtol=1e-6)


def test_generator_loss_matches_numpy():
    np.testing.assert_allclose(relativistic_generator_loss(REAL, FAKE).numpy(), np_g_loss(REAL, FAKE), rtol=1e-6)


def test_hand_computed_single_pair():
    # real 2, fake -2: every term is softplus(-4) for D and softplus(4) for G.
    d = relativistic_discriminator_loss(np.array([[2.0]]), np.array([[-2.0]])).numpy()
    g = relativistic_generator_loss(np.array([[2.0]]), np.array([[-2.0]])).numpy()
    np.testing.assert_allclose(d, [np.log1p(np.exp(-4.0))], rtol=1e-6)
    np.testing.assert_allclose(g, [np.log1p(np.exp(4.0))], rtol=1e-6)


def test_per_pixel_logits_use_the_mean_over_all_pixels(rng):
    real = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
    fake = rng.normal(size=(3, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(relativistic_discriminator_loss(real, fake).numpy(), np_d_loss(real, fake), rtol=1e-5)
    np.testing.assert_allclose(relativistic_generator_loss(real, fake).numpy(), np_g_loss(real, fake), rtol=1e-5)


def test_generator_gradient_includes_the_mean_term():
    """d/d fake of the batch-mean G loss, against central finite differences of the numpy loss."""
    fake = tf.Variable(FAKE)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(relativistic_generator_loss(REAL, fake))
    got = tape.gradient(loss, fake).numpy()
    eps = 1e-4
    want = np.zeros_like(FAKE, np.float64)
    for i in range(FAKE.shape[0]):
        up, down = FAKE.astype(np.float64).copy(), FAKE.astype(np.float64).copy()
        up[i] += eps
        down[i] -= eps
        want[i] = (np_g_loss(REAL, up).mean() - np_g_loss(REAL, down).mean()) / (2 * eps)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6)


def test_discriminator_gradient_stops_at_the_other_mean():
    """BasicSR detaches the other kind's mean: d l / d real_i = 0.5 (sigmoid(real_i - mean fake) - 1) / B."""
    real, fake = tf.Variable(REAL), tf.Variable(FAKE)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(relativistic_discriminator_loss(real, fake))
    g_real, g_fake = tape.gradient(loss, [real, fake])
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    n = REAL.shape[0]
    np.testing.assert_allclose(g_real.numpy(), 0.5 * (sig(REAL - FAKE.mean()) - 1) / n, rtol=1e-5)
    np.testing.assert_allclose(g_fake.numpy(), 0.5 * sig(FAKE - REAL.mean()) / n, rtol=1e-5)


def test_vanilla_losses_hand_computed():
    # Logit 0: every BCE term is log 2. Logits 2 / -2: softplus(-2) = log(1 + e^-2) for D's
    # terms, softplus(2) for G's.
    zero = np.zeros((1, 1), np.float32)
    np.testing.assert_allclose(vanilla_discriminator_loss(zero, zero).numpy(), [2 * np.log(2.0)], rtol=1e-6)
    np.testing.assert_allclose(vanilla_generator_loss(zero).numpy(), [np.log(2.0)], rtol=1e-6)
    real, fake = np.array([[2.0]], np.float32), np.array([[-2.0]], np.float32)
    np.testing.assert_allclose(vanilla_discriminator_loss(real, fake).numpy(), [2 * 0.12692801], rtol=1e-6)
    np.testing.assert_allclose(vanilla_generator_loss(fake).numpy(), [2.12692801], rtol=1e-6)
    # Unlike the relativistic loss, a sample's value does not depend on the rest of the batch.
    batch = vanilla_discriminator_loss(REAL, FAKE).numpy()
    np.testing.assert_allclose(batch[1:2], vanilla_discriminator_loss(REAL[1:2], FAKE[1:2]).numpy(), rtol=1e-6)


def test_vanilla_losses_average_per_pixel_as_basicsr(rng):
    """BasicSR's GANLoss("vanilla"): BCEWithLogitsLoss (mean over every logit of the batch), D's
    real and fake terms summed; the batch-averaged per-sample losses must equal that."""
    real = rng.normal(size=(3, 4, 6, 1)).astype(np.float32)  # U-Net: one logit per pixel
    fake = rng.normal(size=(3, 4, 6, 1)).astype(np.float32)
    d = average_over_global_batch(vanilla_discriminator_loss(real, fake)).numpy()
    g = average_over_global_batch(vanilla_generator_loss(fake)).numpy()
    np.testing.assert_allclose(d, np_bce(real, 1).mean() + np_bce(fake, 0).mean(), rtol=1e-5)
    np.testing.assert_allclose(g, np_bce(fake, 1).mean(), rtol=1e-5)
    per_sample = vanilla_discriminator_loss(real, fake).numpy()
    np.testing.assert_allclose(per_sample, np_per_sample(np_bce(real, 1)) + np_per_sample(np_bce(fake, 0)), rtol=1e-5)


def test_vanilla_gradients():
    """d/dz of mean BCE(z, y) over N logits is (sigmoid(z) - y) / N."""
    real, fake = tf.Variable(REAL), tf.Variable(FAKE)
    with tf.GradientTape(persistent=True) as tape:
        d = tf.reduce_mean(vanilla_discriminator_loss(real, fake))
        g = tf.reduce_mean(vanilla_generator_loss(fake))
    sig = lambda z: 1.0 / (1.0 + np.exp(-z.astype(np.float64)))  # noqa: E731
    n = REAL.size
    g_real, g_fake = tape.gradient(d, [real, fake])
    np.testing.assert_allclose(g_real.numpy(), (sig(REAL) - 1) / n, rtol=1e-5)
    np.testing.assert_allclose(g_fake.numpy(), sig(FAKE) / n, rtol=1e-5)
    np.testing.assert_allclose(tape.gradient(g, fake).numpy(), (sig(FAKE) - 1) / n, rtol=1e-5)


def test_logits_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="differ in shape"):
        relativistic_discriminator_loss(np.zeros((4, 1), np.float32), np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError, match="differ in shape"):
        vanilla_discriminator_loss(np.zeros((4, 1), np.float32), np.zeros((2, 1), np.float32))
    with pytest.raises(ValueError, match="batch axis"):
        vanilla_generator_loss(np.float32(1.0))


def test_pixel_losses(rng):
    pred = rng.random((2, 5, 6, 3)).astype(np.float32)
    target = rng.random((2, 5, 6, 3)).astype(np.float32)
    np.testing.assert_allclose(pixel_loss(pred, target).numpy(), np.abs(pred - target).mean(axis=(1, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(
        pixel_loss(pred, target, "l2").numpy(), ((pred - target) ** 2).mean(axis=(1, 2, 3)), rtol=1e-6
    )
    with pytest.raises(ValueError, match="criterion"):
        pixel_loss(pred, target, "l3")


def test_psnr_and_global_averages():
    target = np.full((2, 4, 4, 3), 0.5, np.float32)
    pred = target + np.array([0.1, 0.01], np.float32)[:, None, None, None]
    np.testing.assert_allclose(psnr(pred, target).numpy(), [20.0, 40.0], rtol=1e-4)
    # Without distribution: the plain batch mean.
    np.testing.assert_allclose(average_over_global_batch(np.array([1.0, 2.0, 6.0])).numpy(), 3.0)
    np.testing.assert_allclose(global_mean(np.arange(6, dtype=np.float32).reshape(2, 3)).numpy(), 2.5)
