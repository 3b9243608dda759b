"""The GAN stage's losses: relativistic average GAN (ESRGAN) and vanilla GAN (Real-ESRGAN), both on
raw logits; pixel L1/L2; global-batch averaging.

Every loss here returns one float32 value per sample, shape `(B,)`. A training step turns them
into the scalar it differentiates with `average_over_global_batch`, which divides by the batch
size summed over all replicas: under `tf.distribute` each replica's gradient is then its share of
the global-batch gradient, and the optimizer's all-reduce (a sum) gives the same update whatever
the replica count.

The relativistic terms compare each logit with the mean logit of the other kind. That mean is
taken over the *global* batch (an all-reduce inside the replica context), so 2 replicas of 8
samples compute exactly what 1 replica of 16 computes.
"""

import tensorflow as tf

PIXEL_CRITERIA = ("l1", "l2")
# "relativistic": ESRGAN's RaGAN (eq. 2-3); "vanilla": the standard GAN with binary
# cross-entropy on the discriminator's logits (Real-ESRGAN, BasicSR's GANLoss(gan_type="vanilla")).
GAN_TYPES = ("relativistic", "vanilla")


def _sync_context():
    """The replica context when more than one replica runs this step, else None."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync <= 1:
        return None
    return ctx


def _global_sum(value):
    """`value` summed over all replicas (differentiable); `value` itself without distribution."""
    ctx = _sync_context()
    return value if ctx is None else ctx.all_reduce(tf.distribute.ReduceOp.SUM, value)


def _global_batch_size(per_sample):
    """The number of samples in this step over all replicas, as a float32 scalar."""
    local = tf.cast(tf.shape(per_sample)[0], tf.float32)
    return tf.stop_gradient(_global_sum(local))


def global_mean(values):
    """Mean of all elements of `values` (any shape) over the global batch, float32.

    Example: under `MirroredStrategy` with 2 replicas holding logits `[1, 2]` and `[3, 4]`,
    both replicas get 2.5.
    """
    values = tf.cast(values, tf.float32)
    total = _global_sum(tf.reduce_sum(values))
    count = tf.stop_gradient(_global_sum(tf.cast(tf.size(values), tf.float32)))
    return total / count


def average_over_global_batch(per_sample):
    """`sum(per_sample) / global batch size`: the replica's share of the batch-mean loss.

    Equivalent to `tf.nn.compute_average_loss`, but exact for a ragged last batch too (the
    global size is all-reduced, not assumed to be `local * num_replicas`).

    Args:
        per_sample: float `(B,)` losses of this replica's samples.

    Returns:
        float32 scalar. Summed over replicas it is the mean over the global batch.

    Example (inside a replica's train_step; here the default strategy's single replica):
    >>> sr, hr = tf.zeros((2, 4, 4, 3)), tf.ones((2, 4, 4, 3))
    >>> float(average_over_global_batch(pixel_loss(sr, hr)))
    1.0
    """
    per_sample = tf.cast(per_sample, tf.float32)
    return tf.reduce_sum(per_sample) / _global_batch_size(per_sample)


def _per_sample_mean(x):
    x = tf.cast(x, tf.float32)
    if x.shape.rank == 1:
        return x
    return tf.reduce_mean(x, axis=list(range(1, x.shape.rank)))


def _bce(logits, label):
    return tf.nn.sigmoid_cross_entropy_with_logits(
        labels=tf.fill(tf.shape(logits), tf.constant(label, tf.float32)), logits=logits
    )


def _check_logits(real_logits, fake_logits, name):
    real_logits = tf.cast(real_logits, tf.float32)
    fake_logits = tf.cast(fake_logits, tf.float32)
    if real_logits.shape.rank is not None and real_logits.shape.rank == 0:
        raise ValueError(f"{name}: logits need a batch axis, got a scalar")
    if not real_logits.shape.is_compatible_with(fake_logits.shape):
        raise ValueError(
            f"{name}: real and fake logits differ in shape: {real_logits.shape} vs "
            f"{fake_logits.shape} (the discriminator must see equal real and fake batches)"
        )
    return real_logits, fake_logits


def relativistic_discriminator_loss(real_logits, fake_logits):
    """Relativistic average GAN discriminator loss (ESRGAN eq. 2, as in the authors' code).

    With C the discriminator's raw output and E_b the mean over the global batch,
    D_Ra(a, b) = sigmoid(C(a) - E_b[C(b)]) and, per sample i,

        l_i = 0.5 * (-log D_Ra(x_r,i, x_f) - log(1 - D_Ra(x_f,i, x_r)))

    computed as from-logits binary cross-entropy (numerically stable). The paper writes the
    sum of the two expectations; ESRGAN's and BasicSR's code average them (the 0.5) and stop
    the gradient through the other kind's mean, as done here, so hyper-parameters tuned there
    carry over. Per-pixel logits (U-Net discriminators) are averaged over their pixels.

    Args:
        real_logits: float `(B, ...)` logits of real (HR) images.
        fake_logits: float `(B, ...)` logits of generated images, same shape.

    Returns:
        float32 `(B,)`; `average_over_global_batch` of it is BasicSR's `l_d_real + l_d_fake`.

    Example:
    >>> relativistic_discriminator_loss(tf.constant([[2.0]]), tf.constant([[-2.0]]))
    <... numpy=array([0.01814993], dtype=float32)>
    """
    real, fake = _check_logits(real_logits, fake_logits, "relativistic_discriminator_loss")
    mean_real = tf.stop_gradient(global_mean(real))
    mean_fake = tf.stop_gradient(global_mean(fake))
    return 0.5 * (_per_sample_mean(_bce(real - mean_fake, 1.0)) + _per_sample_mean(_bce(fake - mean_real, 0.0)))


def relativistic_generator_loss(real_logits, fake_logits):
    """Relativistic average GAN generator loss: the symmetric form of the discriminator's.

        l_i = 0.5 * (-log(1 - D_Ra(x_r,i, x_f)) - log D_Ra(x_f,i, x_r))

    The generator gets gradients from both terms: through the fake logits directly and through
    the mean fake logit that every real logit is compared with (ESRGAN eq. 3; averaged as in
    the authors' code). The real logits are treated as constants.

    Args:
        real_logits: float `(B, ...)` logits of real images (no gradient is taken through them).
        fake_logits: float `(B, ...)` logits of generated images.

    Returns:
        float32 `(B,)` (BasicSR's `l_g_gan` before its loss weight, after global averaging).

    Example:
    >>> relativistic_generator_loss(tf.constant([[2.0]]), tf.constant([[-2.0]]))
    <... numpy=array([4.01815], dtype=float32)>
    """
    real, fake = _check_logits(real_logits, fake_logits, "relativistic_generator_loss")
    real = tf.stop_gradient(real)
    mean_real = global_mean(real)
    mean_fake = global_mean(fake)
    return 0.5 * (_per_sample_mean(_bce(real - mean_fake, 0.0)) + _per_sample_mean(_bce(fake - mean_real, 1.0)))


def vanilla_discriminator_loss(real_logits, fake_logits):
    """Standard GAN discriminator loss: real labelled 1, fake labelled 0 (Real-ESRGAN).

    Per sample i, with BCE the from-logits binary cross-entropy and the mean taken over the
    sample's logits (one per pixel for a U-Net discriminator, one for a VGG-style one):

        l_i = mean(BCE(C(x_r,i), 1)) + mean(BCE(C(x_f,i), 0))

    `average_over_global_batch` of it equals BasicSR's `l_d_real + l_d_fake` with
    `GANLoss(gan_type="vanilla", real_label_val=1.0, fake_label_val=0.0)`: its
    `BCEWithLogitsLoss` averages over every logit of the batch, which is the mean of the
    per-sample means when all samples have the same number of logits (as in a batch). The two
    terms are summed, not averaged (BasicSR backpropagates each separately); no loss weight
    applies to the discriminator.

    Args:
        real_logits: float `(B, ...)` logits of real (HR) images.
        fake_logits: float `(B, ...)` logits of generated images, same shape.

    Returns:
        float32 `(B,)`.

    Example (logits 2 and -2: each term is softplus(-2) = 0.126928):
    >>> vanilla_discriminator_loss(tf.constant([[2.0]]), tf.constant([[-2.0]]))
    <... numpy=array([0.253856], dtype=float32)>
    """
    real, fake = _check_logits(real_logits, fake_logits, "vanilla_discriminator_loss")
    return _per_sample_mean(_bce(real, 1.0)) + _per_sample_mean(_bce(fake, 0.0))


def vanilla_generator_loss(fake_logits):
    """Standard (non-saturating) GAN generator loss: `mean(BCE(C(x_f,i), 1))` per sample.

    BasicSR's `cri_gan(fake_g_pred, True, is_disc=False)` before its loss weight (0.1 in
    Real-ESRGAN): the generated images are labelled real. Per-pixel logits are averaged over
    their pixels.

    Args:
        fake_logits: float `(B, ...)` logits of generated images.

    Returns:
        float32 `(B,)`.

    Example (logit -2: softplus(2) = 2.126928):
    >>> vanilla_generator_loss(tf.constant([[-2.0]]))
    <... numpy=array([2.126928], dtype=float32)>
    """
    fake = tf.cast(fake_logits, tf.float32)
    if fake.shape.rank is not None and fake.shape.rank == 0:
        raise ValueError("vanilla_generator_loss: logits need a batch axis, got a scalar")
    return _per_sample_mean(_bce(fake, 1.0))


def pixel_loss(pred, target, criterion="l1"):
    """Per-sample mean absolute (`"l1"`) or squared (`"l2"`) error over H, W and C.

    Args:
        pred: float `(B, H, W, C)`.
        target: float `(B, H, W, C)`.
        criterion: `"l1"` (ESRGAN) or `"l2"`.

    Returns:
        float32 `(B,)`; its mean over the batch is BasicSR's `L1Loss(reduction="mean")`.

    Example:
    >>> pixel_loss(tf.zeros((1, 2, 2, 3)), tf.ones((1, 2, 2, 3)))
    <... numpy=array([1.], dtype=float32)>
    """
    if criterion not in PIXEL_CRITERIA:
        raise ValueError(f"pixel_loss: criterion must be one of {PIXEL_CRITERIA}, got {criterion!r}")
    diff = tf.cast(pred, tf.float32) - tf.cast(target, tf.float32)
    return _per_sample_mean(tf.abs(diff) if criterion == "l1" else tf.square(diff))


def psnr(pred, target):
    """Per-sample RGB PSNR in dB of `clip(pred, 0, 1)` against `target` (range [0, 1]).

    A training-time monitor on the patches: not the benchmark convention (Y channel, border
    shaved, uint8 rounding) that `keras_esrgan` evaluation uses.

    Example:
    >>> psnr(tf.fill((1, 4, 4, 3), 0.6), tf.fill((1, 4, 4, 3), 0.5)).numpy().round(4)  # MSE 0.01
    array([20.], dtype=float32)
    """
    pred = tf.clip_by_value(tf.cast(pred, tf.float32), 0.0, 1.0)
    return tf.image.psnr(pred, tf.cast(target, tf.float32), max_val=1.0)
