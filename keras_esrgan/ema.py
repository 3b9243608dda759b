"""Exponential moving average of generator weights (BasicSR `model_ema`), tf.distribute-aware.

The EMA generator itself is a copy of the generator: `SRGenerator.clone`.
"""

import keras
import tensorflow as tf

from keras_esrgan._compat import merge_call


def update_ema(averages, variables, decay):
    """`average <- decay * average + (1 - decay) * variable` for each pair, in place.

    Works eagerly, inside `tf.function`, and in a `tf.distribute` replica context (the update
    runs once per variable copy, in cross-replica context, as Keras' optimizers do).

    Args:
        averages: list of Keras variables holding the averages.
        variables: list of Keras variables of the same shapes (the live weights).
        decay: float in [0, 1), e.g. 0.999 (BasicSR's `ema_decay`).

    Example:
    >>> average, value = keras.Variable([1.0, 2.0]), keras.Variable([3.0, 4.0])
    >>> update_ema([average], [value], 0.75)
    >>> average.numpy()                  # 0.75 * average + 0.25 * value
    array([1.5, 2.5], dtype=float32)
    """
    averages = [a.value if isinstance(a, keras.Variable) else a for a in averages]
    variables = [v.value if isinstance(v, keras.Variable) else v for v in variables]
    if len(averages) != len(variables):
        raise ValueError(f"update_ema: {len(averages)} averages for {len(variables)} variables")
    decay = float(decay)

    def _assign(average, value):
        return average.assign(decay * average + (1.0 - decay) * tf.cast(value, average.dtype))

    def _update(strategy, averages, variables):
        for average, variable in zip(averages, variables):
            strategy.extended.update(average, _assign, args=(variable,), group=False)

    merge_call(_update, tf.distribute.get_strategy(), averages, variables)
