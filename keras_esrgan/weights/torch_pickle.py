"""Read PyTorch `.pth`/`.pt` files without torch and without running pickled code.

A `.pth` file is a pickle, and unpickling executes whatever callables the file names: `torch.load`
with `weights_only=False` is arbitrary code execution. This reader uses a restricted unpickler that
knows only the handful of globals a state dict needs (tensor and parameter rebuilders, storage
types, `OrderedDict`) and rebuilds every tensor as a numpy array; any other global, including
`os.system` or `builtins.eval`, raises `UnsafeWeightsError` before anything is called.

Both serialisation formats are read: the zip format (PyTorch >= 1.6, `archive/data.pkl` with one
file per storage) and the legacy format (a sequence of pickles followed by raw storages).
"""

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

from keras_esrgan.weights.errors import UnsafeWeightsError, WeightsFileError

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# Storage type name -> numpy dtype ("bfloat16" is decoded by hand: numpy has no bf16).
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
        return 2 if self.dtype == "bfloat16" else np.dtype(self.dtype).itemsize

    def decode(self, raw, byteorder="little"):
        """The storage's raw bytes as a flat numpy array (bfloat16 widened to float32)."""
        order = ">" if byteorder == "big" else "<"
        if self.dtype == "bfloat16":
            # bfloat16 is the top half of a float32.
            bits = np.frombuffer(raw, dtype=np.dtype("uint16").newbyteorder(order))
            return (bits.astype(np.uint32) << 16).view(np.float32)
        dtype = np.dtype(self.dtype)
        return np.frombuffer(raw, dtype=dtype.newbyteorder(order)).astype(dtype)


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """Numpy version of `torch._utils._rebuild_tensor_v2`: a strided view, copied."""
    size, stride = tuple(size), tuple(stride)
    if not size:
        return np.array(storage[storage_offset], copy=True)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride) if n > 0)
    if any(n == 0 for n in size):
        return np.zeros(size, dtype=storage.dtype)
    if storage_offset < 0 or last >= storage.size:
        raise WeightsFileError(
            f"tensor of size {size} at offset {storage_offset} runs past its storage "
            f"({storage.size} elements): the file is corrupt or truncated"
        )
    base = storage[storage_offset:]
    strides = tuple(s * storage.itemsize for s in stride)
    return np.lib.stride_tricks.as_strided(base, shape=size, strides=strides).copy()


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *unused):
    return data


_TENSOR_REBUILDERS = {("torch._utils", "_rebuild_tensor_v2"), ("torch._utils", "_rebuild_tensor")}
_SAFE_GLOBALS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only tensor-related globals and loads storages through a callback.

    Args:
        file: binary file object positioned at a pickle.
        name: file name for error messages.
        load_storage: callable `(storage_type, key, numel, persistent_id) -> storage`; None
            refuses storage references (for the legacy format's header pickles).
        rebuild_tensor: callable `(storage, offset, size, stride, ...) -> tensor`.
    """

    def __init__(self, file, name, load_storage=None, rebuild_tensor=_rebuild_tensor):
        super().__init__(file)
        self._name = name
        self._load_storage = load_storage
        self._rebuild_tensor = rebuild_tensor

    def find_class(self, module, name):
        """Storage types, tensor rebuilders and a few plain containers; anything else refused."""
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        if (module, name) in _TENSOR_REBUILDERS:
            return self._rebuild_tensor
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        raise UnsafeWeightsError(
            f"{self._name}: refusing to unpickle the global '{module}.{name}'. A weights file "
            "needs only tensors; this one asks to call other code, which could run arbitrary "
            "commands. If you trust the file, re-save its state dict with "
            "`torch.save(model.state_dict(), ...)` or convert it to .safetensors."
        )

    def persistent_load(self, pid):
        """A tensor storage reference (`("storage", type, key, location, numel)`), read as numpy."""
        if self._load_storage is None or not (
            isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"
        ):
            raise UnsafeWeightsError(f"{self._name}: unexpected persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int):
            raise UnsafeWeightsError(f"{self._name}: malformed storage reference {pid!r}")
        return self._load_storage(storage_type, key, numel, pid)


def _load_zip(path, name):
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            raise WeightsFileError(f"{name}: a zip file, but not a PyTorch checkpoint (no data.pkl)")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = "little"
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode().strip()
        storages = {}

        def load_storage(storage_type, key, numel, pid):
            if key not in storages:
                member = f"{prefix}data/{key}"
                try:
                    raw = archive.read(member)
                except KeyError:
                    raise WeightsFileError(f"{name}: storage '{key}' is missing: file truncated?")
                need = numel * storage_type.itemsize
                if len(raw) < need:
                    raise WeightsFileError(
                        f"{name}: storage '{key}' has {len(raw)} bytes, {need} expected: truncated"
                    )
                storages[key] = storage_type.decode(raw[:need], byteorder)
            return storages[key]

        with archive.open(pickles[0]) as fh:
            return RestrictedUnpickler(io.BytesIO(fh.read()), name, load_storage).load()


class _LegacyStorage:
    """A storage referenced by the legacy main pickle; its bytes follow the pickle."""

    def __init__(self, storage_type, numel):
        self.type, self.numel, self.array = storage_type, numel, None


class _PendingTensor:
    """A tensor whose storage has not been read yet (legacy format)."""

    def __init__(self, args):
        self.args = args

    def rebuild(self, name):
        """The numpy tensor, once the storages that follow the pickle have been read."""
        storage = self.args[0]
        if storage.array is None:
            raise WeightsFileError(f"{name}: a tensor's storage is missing: file truncated")
        return _rebuild_tensor(storage.array, *self.args[1:])


def _load_legacy(path, name):
    with open(path, "rb") as fh:
        stream = io.BytesIO(fh.read())
    if RestrictedUnpickler(stream, name).load() != LEGACY_MAGIC:
        raise WeightsFileError(f"{name}: a pickle, but not a PyTorch checkpoint (no magic number)")
    if RestrictedUnpickler(stream, name).load() != LEGACY_PROTOCOL:
        raise WeightsFileError(f"{name}: unsupported legacy PyTorch protocol version")
    sys_info = RestrictedUnpickler(stream, name).load()
    byteorder = "little" if sys_info.get("little_endian", True) else "big"

    storages = {}

    def reference(storage_type, key, numel, pid):
        if len(pid) > 5 and pid[5] is not None:
            raise WeightsFileError(f"{name}: storage views (PyTorch < 0.4 files) are not supported")
        return storages.setdefault(key, _LegacyStorage(storage_type, numel))

    # The storages' bytes come after the main pickle, so tensors are rebuilt afterwards.
    result = RestrictedUnpickler(
        stream, name, reference, rebuild_tensor=lambda *args: _PendingTensor(args)
    ).load()
    for key in RestrictedUnpickler(stream, name).load():
        storage = storages.get(str(key))
        if storage is None:
            raise WeightsFileError(f"{name}: storage '{key}' was never referenced: corrupt file")
        head = stream.read(8)
        if len(head) < 8:
            raise WeightsFileError(f"{name}: file ends before storage '{key}': truncated")
        (numel,) = struct.unpack("<q" if byteorder == "little" else ">q", head)
        raw = stream.read(numel * storage.type.itemsize)
        if numel < storage.numel or len(raw) < numel * storage.type.itemsize:
            raise WeightsFileError(f"{name}: storage '{key}' is short: file truncated")
        storage.array = storage.type.decode(raw, byteorder)
    return _map_nested(result, lambda t: t.rebuild(name) if isinstance(t, _PendingTensor) else t)


def _map_nested(obj, fn):
    if isinstance(obj, dict):
        return type(obj)((k, _map_nested(v, fn)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_map_nested(v, fn) for v in obj)
    return fn(obj)


def load_torch_file(path):
    """Load a PyTorch checkpoint as nested dicts of numpy arrays, without torch.

    Args:
        path: str or PathLike, a `.pth`/`.pt` in the zip (PyTorch >= 1.6) or legacy format.

    Returns:
        The unpickled object with every tensor (and `nn.Parameter`) as a numpy array; float16
        and bfloat16 tensors come back as float16 and float32 arrays.

    Raises:
        UnsafeWeightsError: the pickle names a global other than tensor rebuilders; nothing it
            asks for is ever called.
        WeightsFileError: not a PyTorch file, truncated or corrupt.

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
            return _load_zip(path, name)
        return _load_legacy(path, name)
    except (UnsafeWeightsError, WeightsFileError):
        raise
    except (pickle.UnpicklingError, EOFError, zipfile.BadZipFile, struct.error, ValueError,
            TypeError, KeyError, AttributeError, IndexError, UnicodeDecodeError) as err:
        raise WeightsFileError(
            f"{name}: not a readable PyTorch checkpoint ({type(err).__name__}: {err}); the file "
            "may be truncated or of another format"
        ) from err
