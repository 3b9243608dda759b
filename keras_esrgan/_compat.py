"""Every private Keras, TensorFlow and Python API keras_esrgan uses, in one place.

Each shim names the public API it stands in for (when there is none), the versions it was
checked on, and why it is needed; tests/test_compat.py checks each one on the installed
versions, so an upgrade that moves one fails there, by name, instead of deep in a training run.
Nothing else in the package may import `keras.src`, `tensorflow.python`, `tf.__internal__` or
set a private attribute of a Keras/TF object (tests/test_architecture.py enforces it).

Checked on: Keras 3.15.1, TensorFlow 2.21.0, Python 3.11.7 (`CHECKED_ON`).
"""

import pickle

import keras
import tensorflow as tf
from keras.src.backend.common import global_state
from keras.src.legacy.saving import legacy_h5_format
from keras.src.saving import saving_lib

CHECKED_ON = {"keras": "3.15.1", "tensorflow": "2.21.0", "python": "3.11.7"}

# -- Python ------------------------------------------------------------------------------------

# The pure-Python unpickler (`pickle.Unpickler` is the C one). weights.torch_pickle subclasses it
# to restrict its BUILD, SETITEM(S), DICT, ADDITEMS and FROZENSET opcodes through `dispatch`,
# which the C unpickler has no hook for. Present and unchanged since Python 3.0.
PurePythonUnpickler = pickle._Unpickler


# -- Keras saving --------------------------------------------------------------------------------


def save_model_to_buffer(model, buffer):
    """Write `model`'s `.keras` archive into a binary file object.

    `keras.saving.save_model` takes only paths; writing HDF5 straight to a path crashes the
    process (or leaves a partial file) when the disk fills up, so weights.io serialises in memory
    and writes the bytes through keras_esrgan.atomic. `saving_lib.save_model` accepts a file
    object (Keras 3.0 to 3.15.1).
    """
    saving_lib.save_model(model, buffer)


def save_weights_to_buffer(model, buffer):
    """Write `model`'s `.weights.h5` into a binary file object (see `save_model_to_buffer`).

    `model.save_weights` takes only paths; below it, `H5IOStore` over a file object and
    `_save_state` write the same file (Keras 3.4 to 3.15.1: `visited_saveables` is required).
    """
    store = saving_lib.H5IOStore(buffer, mode="w")
    try:
        saving_lib._save_state(
            model, weights_store=store, assets_store=None, inner_path="", visited_saveables=set()
        )
    finally:
        store.close()


# -- Keras training ------------------------------------------------------------------------------

# The hook `Model.fit`/`evaluate`/`train_on_batch` call to build an unbuilt model from one batch
# (keras/src/backend/tensorflow/trainer.py, Keras 3.3 to 3.15.1, arguments `iterator=None,
# data_batch=None`). training.py's trainers override it: their networks are built in __init__
# and under MultiWorkerMirroredStrategy the pull fails (keras-team/keras#20329).
SYMBOLIC_BUILD_HOOK = "_maybe_symbolic_build"


def set_initial_epoch(model, epoch):
    """Make the next `model.fit` start at `epoch` (None: what `fit` was given).

    Keras has no public way for a callback to move the start of the `fit` it runs in;
    `Trainer._initial_epoch` (Keras 3.0 to 3.15.1) overrides `fit(initial_epoch=)`, which
    TrainingCheckpoint uses to resume where a checkpoint left off.
    """
    model._initial_epoch = epoch


def distribute_strategy_of(model):
    """The strategy `model` was created under, or None (the default strategy).

    `model.distribute_strategy` falls back to the current strategy; the attribute below it
    (`Trainer._distribute_strategy`, TF backend, Keras 3.0 to 3.15.1) tells "created in no
    strategy scope" apart.
    """
    return model._distribute_strategy


# -- TensorFlow distribute -------------------------------------------------------------------------


def merge_call(fn, strategy, *args):
    """Run `fn(strategy, *args)` in cross-replica context (directly when already there).

    What Keras' optimizers use to apply updates once per variable under `tf.distribute`: TF has
    no public form of `tf.__internal__.distribute.interim.maybe_merge_call` (TF 2.9 to 2.21).
    """
    return tf.__internal__.distribute.interim.maybe_merge_call(fn, strategy, *args)


def is_default_strategy(strategy):
    """True for TF's default (no `tf.distribute` scope) strategy.

    Its class, `_DefaultDistributionStrategy`, is private (TF 2.0 to 2.21); outside any scope
    `tf.distribute.get_strategy()` returns it.
    """
    return type(strategy).__name__ == "_DefaultDistributionStrategy"


def save_legacy_h5_weights(h5group, model):
    """Write `model`'s weights into an open h5py group in Keras 2's layout (keras.applications').

    For tests that build a file like Keras' own VGG19 download (`layer/weight_names` attributes);
    Keras 3 writes this layout only from `keras.src.legacy` (Keras 3.0 to 3.15.1; Keras imports
    it anyway).
    """
    legacy_h5_format.save_weights_to_hdf5_group(h5group, model)


# -- Keras variables -----------------------------------------------------------------------------

# Keras' global list of the variables made in a `StatelessScope` and still to be initialized
# (keras/src/backend/common/variables.py, Keras 3.0 to 3.15.1).
_UNINITIALIZED = "uninitialized_variables"


def build_without_initializers(cls, **kwargs):
    """`cls(**kwargs)` with its variables made but no initializer run, and not left on Keras'
    pending list (so nothing initializes them behind the caller's back).

    There is no public way to skip the initializers of a model whose every weight is assigned
    at once (loading a file, `SRGenerator.clone`); for the full RRDBNet they cost about 5 s of
    CPU, several times reading and assigning its 67 MB. `StatelessScope(initialize_variables=
    False)` is public; the pending list it fills is not (Keras 3.0 to 3.15.1).
    """
    pending = list(global_state.get_global_attribute(_UNINITIALIZED, [], set_to_default=True))
    with keras.StatelessScope(initialize_variables=False):
        model = cls(**kwargs)
    global_state.set_global_attribute(_UNINITIALIZED, pending)
    return model


def is_uninitialized(variable):
    """True for a Keras variable made by `build_without_initializers` that has no value yet
    (`_value is None`, Keras 3.0 to 3.15.1)."""
    return getattr(variable, "_value", True) is None


def set_first_value(variable, value):
    """Give an uninitialized variable its first value (a tensor of its dtype): one copy, no
    initializer, no assign (Keras 3.0 to 3.15.1: `_initialize`, `_initializer`)."""
    variable._initialize(value)
    variable._initializer = None


def run_initializer(variable):
    """Run the initializer of an uninitialized variable (Keras 3.0 to 3.15.1:
    `_deferred_initialize`)."""
    variable._deferred_initialize()


# -- TFLite quantization -------------------------------------------------------------------------


def tflite_calibrate_only(converter):
    """A float `.tflite` model with each activation's calibrated min/max in its quantization
    parameters, not yet quantized (`converter._experimental_calibrate_only`, TF 2.4 to 2.21;
    `QuantizationDebugger` sets the same flag). A `representative_dataset` that yields nothing
    gives the graph without ranges, which `tflite_quantize_calibrated` refuses."""
    converter._experimental_calibrate_only = True
    try:
        return converter.convert()
    finally:
        converter._experimental_calibrate_only = False


def tflite_quantize_calibrated(model, activations_int16=False, denylisted_nodes=None):
    """Quantize a model calibrated by `tflite_calibrate_only` from the ranges it carries, as
    `TFLiteConverter.convert` would after its own calibration (TF 2.21, lite.py): int8 through
    the MLIR quantizer (`convert.mlir_quantize`, also what `QuantizationDebugger` calls, with
    `denylisted_nodes` kept in float); int16 activations (16x8) through the older quantizer
    (`optimize.calibrator.Calibrator.calibrate_and_quantize`), which the converter itself uses for
    16x8 because the MLIR one rejects the int8 constant of a MUL by a scalar. Fed no samples,
    that quantizer keeps the ranges already in the model. float32 input and output. 16x8 leaves
    the ops it has no 16x8 kernel for (PRELU, DEPTH_TO_SPACE in TF 2.21) in float, as the
    converter does when `TFLITE_BUILTINS` is among its supported ops (`allow_float`)."""
    from tensorflow.lite.python import convert
    from tensorflow.lite.python.optimize import calibrator

    if activations_int16:
        if denylisted_nodes:
            raise ValueError("16x8 quantization has no denylisted_nodes")
        return calibrator.Calibrator(model).calibrate_and_quantize(
            lambda: iter(()), tf.float32, tf.float32, True, tf.int16, tf.int64
        )
    return convert.mlir_quantize(model, denylisted_nodes=list(denylisted_nodes or []) or None)
