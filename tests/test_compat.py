"""Each private Keras/TF/Python API shim in keras_esrgan._compat works on the installed versions.

A failure here names the shim an upgrade broke; the fix goes in `_compat` alone.
"""

import inspect
import io
import pickle
import sys

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan import _compat


def _tiny_model():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    model.get_layer("dense").set_weights([np.arange(6, dtype="float32").reshape(3, 2), np.float32([1, -1])])
    return model


def test_checked_on_names_the_installed_major_minor():
    """The versions in CHECKED_ON are the ones this suite checks the shims on (major.minor)."""
    installed = {"keras": keras.__version__, "tensorflow": tf.__version__,
                 "python": ".".join(map(str, sys.version_info[:3]))}
    for name, version in _compat.CHECKED_ON.items():
        assert installed[name].split(".")[:2] == version.split(".")[:2], (name, installed[name], version)


def test_pure_python_unpickler_has_a_dispatch_table():
    assert _compat.PurePythonUnpickler is not pickle.Unpickler  # the C one has no dispatch
    assert _compat.PurePythonUnpickler.dispatch[pickle.BUILD[0]].__name__ == "load_build"
    data = pickle.dumps({"a": (1, 2.5)}, protocol=2)
    assert _compat.PurePythonUnpickler(io.BytesIO(data)).load() == {"a": (1, 2.5)}


def test_model_buffer_round_trips_through_keras_public_loader(tmp_path):
    model = _tiny_model()
    buffer = io.BytesIO()
    _compat.save_model_to_buffer(model, buffer)
    path = tmp_path / "m.keras"
    path.write_bytes(buffer.getvalue())
    loaded = keras.saving.load_model(path)
    x = np.float32([[1, 2, 3]])
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_weights_buffer_is_what_save_weights_loads(tmp_path):
    model = _tiny_model()
    buffer = io.BytesIO()
    _compat.save_weights_to_buffer(model, buffer)
    path = tmp_path / "m.weights.h5"
    path.write_bytes(buffer.getvalue())
    other = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="dense")])
    other.load_weights(path)
    for a, b in zip(model.get_weights(), other.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_legacy_h5_weights_have_keras_applications_layout(tmp_path):
    model = _tiny_model()
    with h5py.File(tmp_path / "w.h5", "w") as f:
        _compat.save_legacy_h5_weights(f, model)
    with h5py.File(tmp_path / "w.h5", "r") as f:
        names = [n.decode() if isinstance(n, bytes) else n for n in f["dense"].attrs["weight_names"]]
        kernel = [np.asarray(f["dense"][n]) for n in names if f["dense"][n].ndim == 2][0]
    np.testing.assert_array_equal(kernel, np.arange(6, dtype="float32").reshape(3, 2))


def test_set_initial_epoch_moves_the_start_of_fit():
    model = _tiny_model()
    model.compile(optimizer="sgd", loss="mse")
    seen = []
    callback = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: seen.append(epoch))
    _compat.set_initial_epoch(model, 2)
    x, y = np.zeros((2, 3), "float32"), np.zeros((2, 2), "float32")
    model.fit(x, y, epochs=4, verbose=0, callbacks=[callback])
    assert seen == [2, 3]
    _compat.set_initial_epoch(model, None)
    seen.clear()
    model.fit(x, y, epochs=2, verbose=0, callbacks=[callback])
    assert seen == [0, 1]


def test_distribute_strategy_of_tells_no_scope_apart():
    assert _compat.distribute_strategy_of(_tiny_model()) is None
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        model = _tiny_model()
    assert _compat.distribute_strategy_of(model) is strategy


def test_is_default_strategy():
    assert _compat.is_default_strategy(tf.distribute.get_strategy())
    assert not _compat.is_default_strategy(tf.distribute.MirroredStrategy(["/cpu:0"]))


def test_merge_call_runs_once_per_variable_in_cross_replica_context():
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        total, step = tf.Variable(1.0), tf.Variable(2.0)

    def update(strategy, targets, values):  # as ema.update_ema and Keras' optimizers do
        for target, value in zip(targets, values):
            strategy.extended.update(target, lambda t, v: t.assign_add(v), args=(value,), group=False)

    def values():
        return [float(v.numpy()) for v in strategy.experimental_local_results(total)]

    strategy.run(lambda: _compat.merge_call(update, tf.distribute.get_strategy(), [total], [step]))
    assert values() == [3.0]
    plain, one = tf.Variable(1.0), tf.Variable(0.5)  # no strategy: fn runs directly
    _compat.merge_call(update, tf.distribute.get_strategy(), [plain], [one])
    assert float(plain.numpy()) == 1.5


def test_symbolic_build_hook_is_called_with_iterator_or_batch():
    hook = getattr(keras.Model, _compat.SYMBOLIC_BUILD_HOOK)
    assert list(inspect.signature(hook).parameters) == ["self", "iterator", "data_batch"]
    calls = []

    class Probe(keras.Sequential):
        def _maybe_symbolic_build(self, iterator=None, data_batch=None):
            calls.append((iterator is not None, data_batch is not None))
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    model = Probe([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((2, 3), "float32"), np.zeros((2, 2), "float32"), verbose=0)
    model.train_on_batch(np.zeros((2, 3), "float32"), np.zeros((2, 2), "float32"))
    assert calls == [(True, False), (False, True)]


def test_tflite_calibrate_only_then_quantize_from_the_ranges_in_the_model():
    """Calibrated: a float model with min/max on its activations; quantized from those ranges
    alone (int8 and 16x8), as the converter's own calibrate-and-quantize would."""
    from tensorflow.lite.python import schema_py_generated as schema

    rng = np.random.default_rng(0)
    kernel = tf.constant(rng.normal(0, 0.3, (3, 3, 3, 4)).astype(np.float32))  # constants: no variables

    @tf.function(input_signature=[tf.TensorSpec((1, 8, 8, 3), tf.float32)])
    def serve(x):
        return tf.nn.leaky_relu(tf.nn.conv2d(x, kernel, 1, "SAME") + 0.1, 0.2)

    samples = [rng.random((1, 8, 8, 3), dtype=np.float32) for _ in range(3)]

    def converter(int16, data):
        c = tf.lite.TFLiteConverter.from_concrete_functions([serve.get_concrete_function()])
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8 if int16
            else tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        c.representative_dataset = lambda: ([s] for s in data)
        return c

    for int16 in (False, True):
        calibrated = _compat.tflite_calibrate_only(converter(int16, samples))
        graph = schema.Model.GetRootAs(calibrated, 0).Subgraphs(0)
        input_q = graph.Tensors(graph.Inputs(0)).Quantization()
        assert input_q.MinAsNumpy()[0] >= 0 and 0.9 < input_q.MaxAsNumpy()[0] <= 1  # the samples' range
        quantized = _compat.tflite_quantize_calibrated(calibrated, activations_int16=int16)
        types = {t for t in (schema.Model.GetRootAs(quantized, 0).Subgraphs(0).Tensors(i).Type()
                             for i in range(schema.Model.GetRootAs(quantized, 0).Subgraphs(0).TensorsLength()))}
        assert (schema.TensorType.INT16 if int16 else schema.TensorType.INT8) in types
        interpreter = tf.lite.Interpreter(model_content=quantized)
        interpreter.allocate_tensors()
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], samples[0])
        interpreter.invoke()
        got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
        want = serve(samples[0]).numpy()
        assert np.abs(got - want).max() < (0.01 if int16 else 0.05) * np.abs(want).max()
    bare = _compat.tflite_calibrate_only(converter(False, []))
    with pytest.raises(RuntimeError, match="min/max"):
        _compat.tflite_quantize_calibrated(bare, activations_int16=True)  # no ranges, nothing to quantize from
