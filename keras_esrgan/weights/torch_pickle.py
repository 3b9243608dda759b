"""Read PyTorch `.pth`/`.pt` files without torch and without running pickled code.

A `.pth` file is a pickle, and unpickling executes whatever callables the file names: `torch.load`
with `weights_only=False` is arbitrary code execution. This reader uses a restricted unpickler that
knows only the handful of globals a state dict needs (tensor and parameter rebuilders, storage
types, `OrderedDict`) and rebuilds every tensor as a numpy array; any other global, including
`os.system` or `builtins.eval`, raises `UnsafeWeightsError` before anything is called.

Both serialisation formats are read: the zip format (PyTorch >= 1.6, `archive/data.pkl` with one
file per storage) and the legacy format (a sequence of pickles followed by raw storages).

A hostile file cannot make the reader touch memory outside the file's own bytes, nor take much
more memory than those bytes:

- Every tensor is checked against its storage before it is built: sizes, strides and offset are
  non-negative ints, a stride of 0 is refused over a dimension longer than 1 (a broadcast view
  would multiply memory), no two elements overlap, and the last element addressed lies inside
  the storage. The tensor is then a numpy view of the storage made with `np.ndarray(buffer=...)`,
  which checks the same bounds again; nothing is copied, so tensors that share a storage in the
  file share memory here, as they do in torch.
- A storage's size must equal the bytes present for it: the zip member's size (read only up to
  what the tensor needs, and a compressed member must not inflate far beyond its stored bytes)
  or what is left of a legacy file.
- The unpickled object is walked once, iteratively, to refuse reference cycles and nesting deeper
  than `MAX_DEPTH`; shared references (a "billion laughs" pickle) are visited once.
- The unpickler's BUILD opcode may only set plain attributes (PyTorch's `_metadata`) on an
  `OrderedDict` the pickle created itself, never on the reader's functions or storage types;
  dict keys and set items must be flat (strings, numbers, tuples of them), since hashing a
  tuple of shared references can take exponential time.
"""

import collections
import math
import os
import pickle
import struct
import zipfile
import zlib

import numpy as np

from keras_esrgan._compat import PurePythonUnpickler
from keras_esrgan.weights.errors import UnsafeWeightsError, WeightsFileError
from keras_esrgan.weights.formats import check_inflation, decode_array, itemsize

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Container nesting a checkpoint object may have: a training checkpoint nests a state dict under
# a key or two (`{"params_ema": {...}}`, optimizer states a few levels more).
MAX_DEPTH = 32
MAX_DIMS = 32
# `data.pkl` of a zip checkpoint holds no tensor data (a 23-block RRDBNet's is 70 KB).
MAX_PICKLE_BYTES = 64 * 1024 * 1024

# Storage type name -> numpy dtype ("bfloat16": see `formats.decode_array`).
STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageType:
    """Stand-in for `torch.<X>Storage`: carries only the element type."""

    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]

    @property
    def itemsize(self):
        """Bytes per element."""
        return itemsize(self.dtype)

    def decode(self, raw, byteorder="little"):
        """The storage's raw bytes as a flat numpy array (bfloat16 widened to float32)."""
        return decode_array(raw, self.dtype, byteorder)


class _Storage:
    """A decoded storage: the flat array every tensor on it is a view of."""

    def __init__(self, array, key):
        self.array, self.key = array, key


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _clip(text, limit=80):
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _short(value, limit=80):
    """`repr(value)` cut to `limit` characters, safe for any object the pickle built (a huge
    or deeply nested one is shown by its type only)."""
    if isinstance(value, (str, bytes, float, bool, type(None))) or (
        _is_int(value) and value.bit_length() < 200
    ):
        return _clip(repr(value), limit)
    return f"<{type(value).__name__}>"


def _check_tensor(name, storage, offset, size, stride):
    """Raise `WeightsFileError` unless the tensor lies inside its storage without overlap.

    Returns `(size, stride)` as tuples of ints.
    """
    if not isinstance(storage, _Storage):
        raise WeightsFileError(f"{name}: a tensor is built on {_short(storage)}, not a storage: corrupt file")
    if not isinstance(size, (tuple, list)) or not isinstance(stride, (tuple, list)):
        raise WeightsFileError(f"{name}: a tensor's size/stride are not tuples: corrupt file")
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or len(size) > MAX_DIMS:
        raise WeightsFileError(f"{name}: a tensor has {len(size)} sizes and {len(stride)} strides: corrupt file")
    if not (_is_int(offset) and all(map(_is_int, size)) and all(map(_is_int, stride))):
        raise WeightsFileError(f"{name}: a tensor's offset, sizes or strides are not integers: corrupt file")
    if offset < 0 or min(size, default=0) < 0 or min(stride, default=0) < 0:
        raise WeightsFileError(
            f"{name}: tensor of size {size}, stride {stride} at offset {offset} in storage "
            f"'{storage.key}': negative values would read outside the storage; corrupt or hostile file"
        )
    if 0 in size:
        if max(size) > 1 << 40:
            raise WeightsFileError(f"{name}: empty tensor of size {size} is absurd: corrupt file")
        return size, stride
    numel = storage.array.size
    dims = sorted((s, n) for n, s in zip(size, stride) if n > 1)
    if any(s == 0 for s, _ in dims):
        raise WeightsFileError(
            f"{name}: tensor of size {size} has stride 0 over a dimension of more than one element "
            f"(a broadcast view, {math.prod(size):,} elements from storage '{storage.key}'): refused"
        )
    span = 1  # elements from the first to the last addressed by the dims seen so far, +1
    for s, n in dims:
        if s < span:
            raise WeightsFileError(
                f"{name}: tensor of size {size}, stride {stride} addresses some elements of storage "
                f"'{storage.key}' more than once: refused (no checkpoint stores overlapping views)"
            )
        span += (n - 1) * s
    if offset + span > numel:
        raise WeightsFileError(
            f"{name}: tensor of size {size}, stride {stride} at offset {offset} needs "
            f"{offset + span:,} elements, but storage '{storage.key}' has {numel:,}: the file is "
            "corrupt or truncated"
        )
    return size, stride


def _tensor_view(storage, offset, size, stride):
    """The checked tensor as a view of the storage; numpy re-checks the buffer bounds."""
    flat = storage.array
    if 0 in size:
        return np.zeros(size, dtype=flat.dtype)
    itemsize = flat.dtype.itemsize
    return np.ndarray(
        shape=size, dtype=flat.dtype, buffer=flat, offset=offset * itemsize,
        strides=tuple(s * itemsize for s in stride),
    )


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *unused):
    return data


_TENSOR_REBUILDERS = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}
_SAFE_GLOBALS = {
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}
# What dict keys and set items may be. Hashing a tuple hashes its items, and a pickle can nest
# shared references so that one small tuple has 2**40 paths: only flat keys are hashed.
_KEY_TYPES = (str, bytes, int, float, bool, type(None))


class RestrictedUnpickler(PurePythonUnpickler):
    """Unpickler that resolves only tensor-related globals and loads storages through a callback.

    The pure-Python unpickler, so that its BUILD opcode can be restricted (the C one has no hook);
    the pickles of weights files are small (the tensor data lives outside them).

    Args:
        file: binary file object positioned at a pickle.
        name: file name for error messages.
        load_storage: callable `(storage_type, key, numel) -> _Storage`; None refuses storage
            references (for the legacy format's header pickles).
        rebuild_tensor: callable `(storage, offset, size, stride, ...) -> tensor`; default: the
            checked numpy view.
    """

    dispatch = dict(PurePythonUnpickler.dispatch)

    def __init__(self, file, name, load_storage=None, rebuild_tensor=None):
        super().__init__(file)
        self._name = name
        self._load_storage = load_storage
        self._rebuild_tensor = rebuild_tensor or self._rebuild_view

    def _rebuild_view(self, storage, storage_offset, size, stride, *unused):
        """Numpy version of `torch._utils._rebuild_tensor_v2`, after `_check_tensor`."""
        size, stride = _check_tensor(self._name, storage, storage_offset, size, stride)
        return _tensor_view(storage, storage_offset, size, stride)

    def find_class(self, module, name):
        """Storage types, tensor rebuilders and a few plain containers; anything else refused."""
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _TENSOR_REBUILDERS:
            return self._rebuild_tensor
        if (module, name) == ("collections", "OrderedDict"):
            return self._ordered_dict
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        raise UnsafeWeightsError(
            f"{self._name}: refusing to unpickle the global '{_clip(str(module), 60)}."
            f"{_clip(str(name), 60)}'. A weights file needs only tensors; this one asks to call "
            "other code, which could run arbitrary commands. If you trust the file, re-save its "
            "state dict with `torch.save(model.state_dict(), ...)` or convert it to .safetensors."
        )

    def persistent_load(self, pid):
        """A tensor storage reference (`("storage", type, key, location, numel)`), read as numpy."""
        if self._load_storage is None or not (
            isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
        ):
            raise UnsafeWeightsError(f"{self._name}: unexpected persistent id {_short(pid)}")
        storage_type, key, numel = pid[1], pid[2], pid[4]
        if (
            not isinstance(storage_type, _StorageType)
            or not isinstance(key, (str, int))
            or isinstance(key, bool)
            or not _is_int(numel)
            or numel < 0
        ):
            raise UnsafeWeightsError(f"{self._name}: malformed storage reference {_short(pid)}")
        if len(pid) > 5 and pid[5] is not None:
            raise WeightsFileError(f"{self._name}: storage views (PyTorch < 0.4 files) are not supported")
        return self._load_storage(storage_type, str(key), numel)

    def _ordered_dict(self, *args):
        # PyTorch (and Python's own pickler) pickle an OrderedDict as `OrderedDict()` filled by
        # SETITEMS, which checks each key; built from arguments it would hash them unchecked.
        if args:
            raise UnsafeWeightsError(f"{self._name}: an OrderedDict built from arguments: refused")
        return collections.OrderedDict()

    def _check_key(self, key):
        if isinstance(key, _KEY_TYPES) or (
            type(key) is tuple and len(key) <= MAX_DIMS and all(isinstance(k, _KEY_TYPES) for k in key)
        ):
            return key
        raise WeightsFileError(
            f"{self._name}: a dict key or set item of type {type(key).__name__}; state dicts are "
            "keyed by strings: corrupt or hostile file"
        )

    def _load_setitem(self):
        value, key = self.stack.pop(), self.stack.pop()
        self.stack[-1][self._check_key(key)] = value

    def _load_setitems(self):
        items = self.pop_mark()
        target = self.stack[-1]
        for i in range(0, len(items), 2):
            target[self._check_key(items[i])] = items[i + 1]

    def _load_dict(self):
        items = self.pop_mark()
        self.append({self._check_key(items[i]): items[i + 1] for i in range(0, len(items), 2)})

    def _load_additems(self):
        items = [self._check_key(item) for item in self.pop_mark()]
        self.stack[-1].update(items)

    def _load_frozenset(self):
        self.append(frozenset(self._check_key(item) for item in self.pop_mark()))

    def _load_build(self):
        # BUILD sets state on the object below it on the stack. PyTorch pickles use it only to
        # attach `_metadata` to a state dict's OrderedDict; on anything else (the reader's own
        # functions, storage types) it would change this process's objects.
        target, state = self.stack[-2], self.stack[-1]
        if type(target) is not collections.OrderedDict:
            raise UnsafeWeightsError(
                f"{self._name}: the pickle sets attributes on a {type(target).__name__}; only "
                "OrderedDict state (PyTorch's _metadata) is allowed"
            )
        if not isinstance(state, dict) or not all(
            isinstance(k, str) and not k.startswith("__") for k in state
        ):
            raise UnsafeWeightsError(f"{self._name}: unexpected object state {_short(state)}")
        self.stack.pop()
        target.__dict__.update(state)

    dispatch[pickle.BUILD[0]] = _load_build
    dispatch[pickle.SETITEM[0]] = _load_setitem
    dispatch[pickle.SETITEMS[0]] = _load_setitems
    dispatch[pickle.DICT[0]] = _load_dict
    dispatch[pickle.ADDITEMS[0]] = _load_additems
    dispatch[pickle.FROZENSET[0]] = _load_frozenset


def _check_structure(obj, name):
    """Refuse reference cycles and nesting deeper than `MAX_DEPTH`; each container seen once."""
    containers = (dict, list, tuple, set, frozenset)
    if not isinstance(obj, containers):
        return

    def children(node):
        return iter(list(node.keys()) + list(node.values())) if isinstance(node, dict) else iter(node)

    state = {id(obj): 1}  # 1: on the current path, 2: done
    stack = [(obj, children(obj))]
    while stack:
        node, items = stack[-1]
        for child in items:
            if not isinstance(child, containers):
                continue
            seen = state.get(id(child))
            if seen == 1:
                raise WeightsFileError(f"{name}: the pickle holds a reference cycle; a state dict never does")
            if seen is None:
                if len(stack) >= MAX_DEPTH:
                    raise WeightsFileError(
                        f"{name}: containers nested more than {MAX_DEPTH} deep; a state dict is a "
                        "few levels deep: corrupt or hostile file"
                    )
                state[id(child)] = 1
                stack.append((child, children(child)))
                break
        else:
            state[id(node)] = 2
            stack.pop()


def _read_member(archive, info, need, name, what):
    """Exactly `need` bytes of a zip member whose declared size must be `need`."""
    if info.file_size != need:
        raise WeightsFileError(
            f"{name}: {what} holds {info.file_size:,} bytes where its tensors declare {need:,}: "
            "corrupt or hostile file"
        )
    check_inflation(info, need, name, what)
    with archive.open(info) as fh:
        raw = fh.read(need)
    if len(raw) != need:
        raise WeightsFileError(f"{name}: {what} is short ({len(raw):,} of {need:,} bytes): truncated")
    return raw


def _load_zip(path, name):
    with zipfile.ZipFile(path) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        pickles = [n for n in infos if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise WeightsFileError(f"{name}: a zip file, but not a PyTorch checkpoint (no data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in infos:
            with archive.open(infos[prefix + "byteorder"]) as fh:
                byteorder = fh.read(16).decode("ascii", "replace").strip()
            if byteorder not in ("little", "big"):
                raise WeightsFileError(f"{name}: unknown byte order {byteorder!r}")
        storages = {}

        def load_storage(storage_type, key, numel):
            if key in storages:
                storage, known = storages[key]
                if known != storage_type.name or storage.array.size != numel:
                    raise WeightsFileError(
                        f"{name}: storage '{key}' is referenced as {known} of "
                        f"{storage.array.size:,} and as {storage_type.name} of {numel:,} elements"
                    )
                return storage
            member = f"{prefix}data/{key}"
            if member not in infos:
                raise WeightsFileError(f"{name}: storage '{key}' is missing: file truncated?")
            raw = _read_member(
                archive, infos[member], numel * storage_type.itemsize, name, f"storage '{key}'"
            )
            storage = _Storage(storage_type.decode(raw, byteorder), key)
            storages[key] = (storage, storage_type.name)
            return storage

        info = infos[pickles[0]]
        if info.file_size > MAX_PICKLE_BYTES:
            raise WeightsFileError(f"{name}: data.pkl of {info.file_size:,} bytes is not a state dict's")
        with archive.open(info) as fh:
            return RestrictedUnpickler(fh, name, load_storage).load()


def _load_legacy(path, name):
    size = os.path.getsize(path)
    with open(path, "rb") as stream:
        if RestrictedUnpickler(stream, name).load() != LEGACY_MAGIC:
            raise WeightsFileError(f"{name}: a pickle, but not a PyTorch checkpoint (no magic number)")
        if RestrictedUnpickler(stream, name).load() != LEGACY_PROTOCOL:
            raise WeightsFileError(f"{name}: unsupported legacy PyTorch protocol version")
        sys_info = RestrictedUnpickler(stream, name).load()
        if not isinstance(sys_info, dict):
            raise WeightsFileError(f"{name}: malformed legacy header {_short(sys_info)}")
        byteorder = "little" if sys_info.get("little_endian", True) else "big"

        # The storages' bytes come after the main pickle: a first pass learns which storages it
        # references, the storages are read, and a second pass over the same pickle builds the
        # tensors on them.
        start = stream.tell()
        referenced = {}

        def reference(storage_type, key, numel):
            known = referenced.setdefault(key, (storage_type, numel))
            if known[0].name != storage_type.name or known[1] != numel:
                raise WeightsFileError(f"{name}: storage '{key}' is referenced with two types or sizes")
            return _Storage(np.zeros(0, np.uint8), key)

        RestrictedUnpickler(stream, name, reference, rebuild_tensor=lambda *args: None).load()
        keys = RestrictedUnpickler(stream, name).load()
        if not isinstance(keys, (list, tuple)) or len(keys) != len(referenced):
            raise WeightsFileError(f"{name}: the storage list does not match the tensors: corrupt file")
        storages = {}
        for key in keys:
            key = str(key) if _is_int(key) or isinstance(key, str) else None
            if key not in referenced or key in storages:
                raise WeightsFileError(f"{name}: storage {key!r} was never referenced: corrupt file")
            storage_type, declared = referenced[key]
            head = stream.read(8)
            if len(head) < 8:
                raise WeightsFileError(f"{name}: file ends before storage '{key}': truncated")
            (numel,) = struct.unpack("<q" if byteorder == "little" else ">q", head)
            need = numel * storage_type.itemsize
            if numel != declared or need > size - stream.tell():
                raise WeightsFileError(
                    f"{name}: storage '{key}' has {numel:,} elements where its tensors declare "
                    f"{declared:,} and {max(0, size - stream.tell()):,} bytes are left: truncated or corrupt"
                )
            storages[key] = _Storage(storage_type.decode(stream.read(need), byteorder), key)
        stream.seek(start)
        return RestrictedUnpickler(stream, name, lambda t, key, n: storages[key]).load()


def load_torch_file(path):
    """Load a PyTorch checkpoint as nested dicts of numpy arrays, without torch.

    Args:
        path: str or PathLike, a `.pth`/`.pt` in the zip (PyTorch >= 1.6) or legacy format.

    Returns:
        The unpickled object with every tensor (and `nn.Parameter`) as a numpy array; float16
        and bfloat16 tensors come back as float16 and float32 arrays. Tensors are views of
        their storage, so tensors that share one in the file share memory, as in torch.

    Raises:
        UnsafeWeightsError: the pickle names a global other than tensor rebuilders, or sets
            attributes on anything but a state dict; nothing it asks for is ever called.
        WeightsFileError: not a PyTorch file, truncated, corrupt, or a tensor that would read
            outside its storage (see the module docstring).

    Example (ESRGAN's file holds the ESRGAN repository's key names):
    >>> state = load_torch_file("RRDB_ESRGAN_x4.pth")
    >>> [k for k in state if k.endswith(".weight") and not k.startswith("RRDB_trunk.")]
    ['conv_first.weight', 'trunk_conv.weight', 'upconv1.weight', 'upconv2.weight', 'HRconv.weight', 'conv_last.weight']
    >>> type(state["conv_first.weight"]), state["conv_first.weight"].dtype
    (<class 'numpy.ndarray'>, dtype('float32'))
    """
    path = os.fspath(path)
    name = os.path.basename(path)
    try:
        if zipfile.is_zipfile(path):
            result = _load_zip(path, name)
        else:
            result = _load_legacy(path, name)
        _check_structure(result, name)
        return result
    except (UnsafeWeightsError, WeightsFileError):
        raise
    except RecursionError:
        raise WeightsFileError(f"{name}: nested too deeply to be a state dict: corrupt or hostile file") from None
    except MemoryError:
        raise WeightsFileError(f"{name}: asks for more memory than there is: corrupt or hostile file") from None
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, zlib.error, struct.error,
            ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError,
            UnicodeDecodeError, NotImplementedError) as err:
        raise WeightsFileError(
            f"{name}: not a readable PyTorch checkpoint ({type(err).__name__}: "
            f"{_clip(str(err), 200)}); the file may be truncated or of another format"
        ) from err
