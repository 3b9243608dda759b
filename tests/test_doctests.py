"""Every `>>>` example in keras_esrgan's docstrings runs, and prints what the docstring says.

One test per module. Each runs in a fresh folder holding the stand-in files the examples name
(tests/standins.py: `RRDB_ESRGAN_x4.pth`, `vgg19-dcbb9e9d.pth`, `photo.png`, ...), with an empty
Keras cache, proxies that refuse every connection (so nothing is downloaded), and `np`, `tf`, `keras` and `keras_esrgan` imported; everything else an example
uses it defines itself. No example may be skipped (`+SKIP` is refused), and every module whose
source holds `>>>` is tested.
"""

import doctest
import importlib
import io
import pkgutil
import re
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_esrgan
from tests import standins
from tests.conftest import ROOT


def _modules_with_examples():
    names = []
    for info in pkgutil.walk_packages(keras_esrgan.__path__, prefix="keras_esrgan."):
        path = ROOT / (info.name.replace(".", "/") + ("/__init__.py" if info.ispkg else ".py"))
        if ">>>" in path.read_text():
            names.append(info.name)
    return sorted(names)


MODULES = _modules_with_examples()
FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE


@pytest.fixture(scope="session")
def example_files(tmp_path_factory):
    """The files the docstring examples name, made once per session."""
    root = tmp_path_factory.mktemp("doctest_files")
    standins.write_generators(root)
    standins.write_torchvision_vgg19(root / standins.TORCHVISION_VGG19)
    standins.write_images(root, [(24, 32)], seed=1, names=["photo.png"])
    return root


def _examples(module):
    finder = doctest.DocTestFinder(exclude_empty=True)
    return [t for t in finder.find(module, module.__name__) if t.examples]


def test_no_example_is_skipped():
    sources = sorted((ROOT / "keras_esrgan").rglob("*.py"))
    assert len(sources) > 30
    skipped = [str(p) for p in sources if re.search(r"doctest:\s*\+SKIP", p.read_text())]
    assert not skipped, f"doctest +SKIP in {skipped}: make the example run (tests/standins.py)"


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, example_files, tmp_path, monkeypatch):
    tests = _examples(importlib.import_module(name))
    assert tests, f"{name} has '>>>' in its source but no docstring example was found"
    for item in example_files.iterdir():
        (tmp_path / item.name).symlink_to(item)
    standins.go_offline(monkeypatch, tmp_path / ".keras_home")
    monkeypatch.chdir(tmp_path)
    namespace = dict(np=np, tf=tf, keras=keras, keras_esrgan=keras_esrgan)
    out = io.StringIO()
    runner = doctest.DocTestRunner(optionflags=FLAGS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. PerceptualLoss(weights=None) warns by design
        for test in tests:
            test.globs.update(namespace)
            runner.run(test, out=out.write)
            keras.config.set_dtype_policy("float32")
    results = runner.summarize(verbose=False)
    assert results.failed == 0, out.getvalue()[-8000:]
    assert results.attempted > 0
