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


# -- ARCHITECTURE.md's layers, checked on every import of keras_esrgan/**.py --------------------

import ast  # noqa: E402
import re  # noqa: E402

from keras_esrgan import _compat  # noqa: E402
from tests.conftest import ROOT  # noqa: E402

PACKAGE = ROOT / "keras_esrgan"
ROW = re.compile(r"^\|\s*(\d+)\s*\|\s*`([^`]+)`\s*\|", re.M)


def layer_table():
    """`{"models/": 2, "pixels.py": 0, "__init__.py": 8, ...}` from ARCHITECTURE.md's table."""
    table = {path: int(layer) for layer, path in ROW.findall((ROOT / "ARCHITECTURE.md").read_text())}
    assert len(table) > 20, "ARCHITECTURE.md's layer table was not found"
    return table


def module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources():
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(name, table):
    """The layer of module `name`: its own row, else its top folder's row; None if unlisted."""
    if name == "keras_esrgan":
        return table.get("__init__.py")
    parts = name.split(".")[1:]
    if len(parts) == 1 and f"{parts[0]}.py" in table:
        return table[f"{parts[0]}.py"]
    return table.get(f"{parts[0]}/")


def internal_imports(path, modules):
    """`[(line, target module, names)]` for each keras_esrgan import of a file."""
    tree = ast.parse(path.read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name, None) for a in node.names if a.name.split(".")[0] == "keras_esrgan"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "keras_esrgan":
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                out.append((node.lineno, sub, None) if sub in modules else (node.lineno, node.module, alias.name))
    return out


def test_every_module_is_in_architecture_md():
    table = layer_table()
    unlisted = sorted(name for name in sources() if layer_of(name, table) is None)
    assert not unlisted, f"add a row for {unlisted} to ARCHITECTURE.md's layer table"


def test_imports_follow_the_layers():
    table, modules = layer_table(), sources()
    violations = []
    for name, path in modules.items():
        own = layer_of(name, table)
        root_attributes = {
            node.attr for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "keras_esrgan"
        }
        for line, target, imported in internal_imports(path, modules):
            where = f"{path.relative_to(ROOT)}:{line}"
            if target == "keras_esrgan" and name != "keras_esrgan":
                # the facade: only its version may be read from inside
                used = {imported} if imported else root_attributes
                if used - {"__version__"}:
                    violations.append(f"{where} imports {sorted(used)} from the package root; import the module")
                continue
            if layer_of(target, table) > own:
                violations.append(f"{where}: {name} (layer {own}) imports {target} (layer {layer_of(target, table)})")
            if name in ("keras_esrgan.weights.formats", "keras_esrgan.weights.errors") and target.startswith(
                "keras_esrgan.weights.") and target != "keras_esrgan.weights.errors":
                violations.append(f"{where}: {name} is the bottom of weights/ and imports {target}")
    assert not violations, "\n".join(violations)


def test_state_dict_files_are_read_in_one_place():
    """`weights.reader.read_checkpoint` is the one caller of the two state-dict readers (the
    `weights` facade only re-exports them), so every reader of a `.pth`/`.safetensors` decides
    its format one way."""
    readers = {"keras_esrgan.weights.torch_pickle.load_torch_file", "keras_esrgan.weights.safetensors_io.load_safetensors"}
    allowed = {"keras_esrgan.weights.reader", "keras_esrgan.weights"}
    modules = sources()
    callers = sorted(
        f"{path.relative_to(ROOT)}:{line}"
        for name, path in modules.items() if name not in allowed
        for line, target, imported in internal_imports(path, modules) if f"{target}.{imported}" in readers
    )
    assert not callers, f"read state-dict files with weights.reader.read_checkpoint: {callers}"
    assert all(any(f"{t}.{i}" in readers for _, t, i in internal_imports(modules[name], modules)) for name in allowed)


# The private attributes _compat reads or sets for the package (checked there, in test_compat.py).
PRIVATE_ATTRIBUTES = {"_initial_epoch", "_distribute_strategy"}
PRIVATE_MODULES = ("keras.src", "tensorflow.python")


def test_private_keras_and_tf_apis_only_in_compat():
    violations = []
    for name, path in sources().items():
        if name == "keras_esrgan._compat":
            continue
        tree = ast.parse(path.read_text())
        aliases = {"keras", "tf", "tensorflow", "pickle"}
        for node in ast.walk(tree):
            where = f"{path.relative_to(ROOT)}:{getattr(node, 'lineno', '?')}"
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                for imported in names:
                    if imported.startswith(PRIVATE_MODULES):
                        violations.append(f"{where} imports {imported}")
            elif isinstance(node, ast.Attribute):
                attr = node.attr
                if attr == "__internal__" or attr in PRIVATE_ATTRIBUTES:
                    violations.append(f"{where} uses .{attr}")
                elif attr.startswith("_") and not attr.startswith("__"):
                    base = node.value
                    if isinstance(base, ast.Name) and base.id in aliases:
                        violations.append(f"{where} uses {base.id}.{attr}")
                    if (isinstance(base, ast.Call) and isinstance(base.func, ast.Name) and base.func.id == "super"
                            and attr != _compat.SYMBOLIC_BUILD_HOOK):
                        violations.append(f"{where} calls super().{attr}: a private Keras method?")
    assert not violations, "route these through keras_esrgan._compat:\n" + "\n".join(violations)
