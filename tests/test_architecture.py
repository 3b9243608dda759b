"""The package's shape: what it exports, and (ARCHITECTURE.md) what each module may import."""

import importlib
import inspect
import pkgutil

import keras_esrgan


def package_modules():
    """Every module of keras_esrgan, imported (names sorted)."""
    names = ["keras_esrgan"] + [
        info.name for info in pkgutil.walk_packages(keras_esrgan.__path__, prefix="keras_esrgan.")
    ]
    return {name: importlib.import_module(name) for name in sorted(names)}


def test_every_public_exception_is_exported_at_the_top():
    """A user catching what the package raises imports it from `keras_esrgan`, whichever module
    defines it; private control-flow exceptions (`_Name`) and signals (cli.Terminated, a KeyboardInterrupt)
    are not raised to users."""
    defined = {}
    for name, module in package_modules().items():
        for attr, value in vars(module).items():
            if (inspect.isclass(value) and issubclass(value, Exception)
                    and value.__module__ == name and not attr.startswith("_")):
                defined[attr] = value
    assert len(defined) >= 14, sorted(defined)  # the walk found the package's exceptions
    missing = sorted(n for n, cls in defined.items() if getattr(keras_esrgan, n, None) is not cls)
    assert not missing, f"define-and-export: add {missing} to keras_esrgan/__init__.py"
    unlisted = sorted(set(defined) - set(keras_esrgan.__all__))
    assert not unlisted, f"add {unlisted} to keras_esrgan.__all__"
