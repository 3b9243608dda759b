"""Shared fixtures: quiet TensorFlow, paths to committed fixtures and to ../shared/data."""

import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "data" / "fixtures"
# The benchmark images live beside the checkout, never inside it.
SHARED_DATA = pathlib.Path(os.environ.get("KERAS_ESRGAN_SHARED_DATA", ROOT.parent / "shared" / "data"))

TINY = dict(num_feat=8, num_block=2, num_grow_ch=4)

# The files holding the minutes-long tests (training and recipe subprocesses, the executed
# docs) are collected first, so the xdist workers start on them and share out the short tests
# at the end instead of one worker finishing a long test alone. Sorting whole files keeps each
# file's tests together, so module-scoped fixtures are still built once.
LONG_FIRST = ("test_training.py", "test_recipe.py", "test_recipe_realworld.py", "test_docs.py",
              "test_doctests.py", "test_hostile.py", "test_export_tflite.py", "test_callbacks.py")


def pytest_collection_modifyitems(items):
    """Run the files of `LONG_FIRST` first, in that order; the rest keep their order."""
    rank = {name: i for i, name in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(LONG_FIRST)))


@pytest.fixture(autouse=True)
def _keras_state():
    """Each test starts with float32 policy and a fresh Keras name scope."""
    import keras

    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    keras.backend.clear_session()


@pytest.fixture
def shared_data():
    """`../shared/data` with Set5/Set14 HR images; skips the test when it is not there."""
    if not (SHARED_DATA / "Set5").is_dir():
        pytest.skip(f"benchmark images not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def assert_keras_round_trip(model, tmp_path, x):
    """The serialization checks every generator's test runs (as keras-hub's test_case does):
    `from_config(get_config())` has the same config, and a `.keras` file loads back as the
    same class with the same config, weights and output on `x`. Returns the loaded model."""
    import keras

    cls = type(model)
    assert cls.from_config(model.get_config()).config == model.config
    path = tmp_path / "g.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, cls) and loaded.config == model.config
    for a, b in zip(model.weights, loaded.weights, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    return loaded
