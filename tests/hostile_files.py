"""Writers of hostile and broken files for tests/test_hostile.py (nothing binary is committed).

PyTorch files are assembled from pickle opcodes by hand (torch is not installed, and the standard
pickler cannot emit the malformed tensors these cases need): `TorchPickle` writes the same opcode
sequences `torch.save` does (see `pickletools.dis` of tests/data/fixtures/*.pth), and
`write_torch_zip` / `write_torch_legacy` wrap a pickle and its storages in the two on-disk
formats.
"""

import collections
import io
import json
import pickle
import struct
import zipfile
import zlib

import numpy as np

STORAGE_TYPES = {np.dtype("float32"): "FloatStorage", np.dtype("float16"): "HalfStorage",
                 np.dtype("int64"): "LongStorage", np.dtype("uint8"): "ByteStorage"}


class Tensor(collections.namedtuple("Tensor", "key storage_type numel offset size stride")):
    """A tensor reference as `torch.save` pickles it: storage `key` of `numel` elements."""


def tensor_of(key, array):
    """A contiguous `Tensor` on its own storage `key`, and that storage's bytes."""
    array = np.ascontiguousarray(array)
    strides = tuple(s // array.itemsize for s in array.strides)
    spec = Tensor(key, STORAGE_TYPES[array.dtype], array.size, 0, array.shape, strides)
    return spec, array.tobytes()


class TorchPickle:
    """A protocol-2 pickle written opcode by opcode.

    `value(obj)` appends the opcodes that push `obj` (dict/OrderedDict, list, tuple, str, int,
    bool, None, `Tensor`); `raw(b)` appends bytes as they are; `bytes()` ends the pickle.
    """

    def __init__(self, legacy=False):
        self.out = bytearray(b"\x80\x02")
        self.legacy = legacy  # legacy storage ids carry a sixth element (view metadata)

    def raw(self, data):
        self.out += data
        return self

    def glob(self, module, name):
        return self.raw(b"c" + module.encode() + b"\n" + name.encode() + b"\n")

    def put(self, index):
        return self.raw(b"r" + struct.pack("<I", index))

    def get(self, index):
        return self.raw(b"j" + struct.pack("<I", index))

    def value(self, obj):
        if isinstance(obj, Tensor):
            return self.tensor(obj)
        if isinstance(obj, dict):
            self.glob("collections", "OrderedDict").raw(b")R")
            if obj:
                self.raw(b"(")
                for key, value in obj.items():
                    self.value(key).value(value)
                self.raw(b"u")
            return self
        if isinstance(obj, list):
            self.raw(b"]")
            if obj:
                self.raw(b"(")
                for item in obj:
                    self.value(item)
                self.raw(b"e")
            return self
        if isinstance(obj, tuple):
            self.raw(b"(")
            for item in obj:
                self.value(item)
            return self.raw(b"t")
        if isinstance(obj, str):
            data = obj.encode()
            return self.raw(b"X" + struct.pack("<I", len(data)) + data)
        if obj is None:
            return self.raw(b"N")
        if isinstance(obj, bool):
            return self.raw(b"\x88" if obj else b"\x89")
        if isinstance(obj, (int, float)):
            return self.raw(pickle.dumps(obj, protocol=2)[2:-1])
        raise TypeError(f"TorchPickle cannot write {type(obj).__name__}")

    def tensor(self, t):
        self.glob("torch._utils", "_rebuild_tensor_v2").raw(b"(")
        pid = ("storage", None, t.key, "cpu", t.numel) + ((None,) if self.legacy else ())
        self.raw(b"(").value(pid[0]).glob("torch", t.storage_type)
        for item in pid[2:]:
            self.value(item)
        self.raw(b"tQ").value(t.offset).value(tuple(t.size)).value(tuple(t.stride)).value(False)
        return self.glob("collections", "OrderedDict").raw(b")Rt").raw(b"R")

    def bytes(self):
        return bytes(self.out) + b"."


def write_torch_zip(path, pickle_bytes, storages=(), members=(), compress=zipfile.ZIP_STORED):
    """A zip-format `.pth`: `archive/data.pkl`, `archive/data/<key>` for each (key, bytes)."""
    with zipfile.ZipFile(path, "w", compression=compress) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/byteorder", "little")
        for key, data in dict(storages).items():
            archive.writestr(f"archive/data/{key}", data)
        for name, data in dict(members).items():
            archive.writestr(name, data)
        archive.writestr("archive/version", "3\n")
    return path


def write_torch_legacy(path, pickle_bytes, storages=()):
    """A legacy-format `.pth`: magic, protocol, sys info, main pickle, keys, raw storages."""
    buf = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    buf.write(pickle_bytes)
    storages = dict(storages)
    pickle.dump(list(storages), buf, protocol=2)
    for key, (numel, data) in storages.items():
        buf.write(struct.pack("<q", numel) + data)
    path.write_bytes(buf.getvalue())
    return path


def state_dict_file(path, state, fmt="zip", edit=None):
    """A `.pth` of `state` (name -> numpy array), each tensor on its own storage.

    `edit(name, tensor) -> tensor` may change a tensor's reference (offset, sizes, strides)
    while its storage bytes stay those of the real array.
    """
    entries, storages = {}, {}
    for i, (name, array) in enumerate(state.items()):
        spec, data = tensor_of(str(i), array)
        entries[name] = edit(name, spec) if edit else spec
        storages[str(i)] = (array.size, data) if fmt == "legacy" else data
    pickled = TorchPickle(legacy=fmt == "legacy").value(entries).bytes()
    if fmt == "legacy":
        return write_torch_legacy(path, pickled, storages)
    return write_torch_zip(path, pickled, storages)


def one_tensor_file(path, storage_numel, offset, size, stride, fmt="zip", storage_type="FloatStorage"):
    """A `.pth` holding `{"w": tensor}` with the given view on a storage of `storage_numel`."""
    dtype = {v: k for k, v in STORAGE_TYPES.items()}[storage_type]
    data = (np.arange(storage_numel) % 251).astype(dtype).tobytes()
    t = Tensor("0", storage_type, storage_numel, offset, size, stride)
    pickled = TorchPickle(legacy=fmt == "legacy").value({"w": t}).bytes()
    if fmt == "legacy":
        return write_torch_legacy(path, pickled, {"0": (storage_numel, data)})
    return write_torch_zip(path, pickled, {"0": data})


def shared_reference_bomb(levels):
    """A pickle of `{"a": L}` where L nests `levels` lists of two references to the one below:
    2**levels paths through 2 * levels objects ("billion laughs")."""
    p = TorchPickle().glob("collections", "OrderedDict").raw(b")R").value("a")
    p.raw(b"]").value("x").raw(b"a").put(0).raw(b"0")
    for level in range(1, levels + 1):
        p.raw(b"](").get(level - 1).get(level - 1).raw(b"e").put(level).raw(b"0")
    return p.get(levels).raw(b"s").bytes()


def deep_pickle(depth):
    """`[[[...]]]` nested `depth` deep, built without recursion by the unpickler."""
    return TorchPickle().raw(b"]" * depth + b"a" * (depth - 1)).bytes()


def cyclic_pickle():
    """`{"a": L}` where L contains itself."""
    p = TorchPickle().glob("collections", "OrderedDict").raw(b")R").value("a")
    return p.raw(b"]").put(0).get(0).raw(b"a").raw(b"s").bytes()


def build_on_function_pickle(target=("torch._utils", "_rebuild_parameter")):
    """A pickle whose BUILD sets `__defaults__` on one of the loader's own functions."""
    p = TorchPickle().glob(*target)
    p.raw(b"(N").raw(b"}").value("__defaults__").value((1, 2, 3)).raw(b"s").raw(b"t").raw(b"b")
    return p.raw(b"0").value({}).bytes()


def tuple_key_bomb(levels):
    """`{T: "x"}` with T a tuple of two references to the tuple below, `levels` deep: str(T)
    would be 2**levels long."""
    p = TorchPickle().glob("collections", "OrderedDict").raw(b")R")
    p.value(("leaf",)).put(0).raw(b"0")
    for level in range(1, levels + 1):
        p.raw(b"(").get(level - 1).get(level - 1).raw(b"t").put(level).raw(b"0")
    return p.get(levels).value("x").raw(b"s").bytes()


def zip_member_bomb(path, inflated_bytes, declared_numel):
    """A zip `.pth` whose storage member deflates `inflated_bytes` zeros (a few hundred KB on
    disk); the pickle declares a storage of `declared_numel` float32 elements."""
    t = Tensor("0", "FloatStorage", declared_numel, 0, (declared_numel,), (1,))
    pickled = TorchPickle().value({"w": t}).bytes()
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", pickled)
        with archive.open("archive/data/0", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(inflated_bytes >> 20):
                member.write(chunk)
        archive.writestr("archive/version", "3\n")
    return path


# --- safetensors --------------------------------------------------------------------------


def safetensors_file(path, header, body):
    """A `.safetensors` with `header` (dict, or raw bytes used as they are) and data `body`."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + body)
    return path


def f32_entry(start, shape, dtype="F32", size=4):
    n = int(np.prod(shape))
    return {"dtype": dtype, "shape": list(shape), "data_offsets": [start, start + n * size]}


# --- Keras files ----------------------------------------------------------------------------


def keras_with_config(path, source, **config_changes):
    """A copy of the `.keras` archive `source` with its RRDBNet config edited (weights kept)."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "config.json":
                config = json.loads(data)
                config["config"].update(config_changes)
                data = json.dumps(config).encode()
            dst.writestr(info, data)
    return path


def weights_h5_with_declared(path, source, dataset, shape):
    """A copy of the `.weights.h5` `source` where `dataset` declares `shape` (nothing stored)."""
    import h5py
    import shutil

    shutil.copyfile(source, path)
    with h5py.File(path, "a") as f:
        dtype = f[dataset].dtype
        del f[dataset]
        f.create_dataset(dataset, shape=shape, dtype=dtype, chunks=True)
    return path


# --- images -------------------------------------------------------------------------------


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def tiff_header_only(width, height):
    """An 8-bit RGB TIFF (under 200 bytes) whose header claims `width x height` pixels."""
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 2), (273, 4, 1, 0), (277, 3, 1, 3), (278, 4, 1, height),
               (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries))
    data_offset = 8 + 2 + 12 * len(entries) + 4
    for tag, kind, count, value in entries:
        value = data_offset if tag == 273 else value
        ifd += struct.pack("<HHI", tag, kind, count)
        ifd += struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
    return b"II*\x00" + struct.pack("<I", 8) + ifd + struct.pack("<I", 0) + bytes(16)


def tiff16(array, compression=1, predictor=1, rows_per_strip=None, big_endian=False):
    """An RGB/RGBA or grey 16-bit TIFF of `array` (uint16 (H, W[, C])), strip layout.

    compression 1 (none) or 8 (Deflate, with `predictor` 2 = horizontal differencing), written
    independently of the reader in keras_esrgan/images.py.
    """
    e = ">" if big_endian else "<"
    h, w = array.shape[:2]
    c = 1 if array.ndim == 2 else array.shape[2]
    rows = rows_per_strip or h
    strips = []
    for top in range(0, h, rows):
        block = array[top : top + rows].reshape(-1, w, c).astype(np.int64)
        if predictor == 2:
            block = np.concatenate([block[:, :1], np.diff(block, axis=1)], axis=1) % 65536
        data = block.astype(e + "u2").tobytes()
        strips.append(zlib.compress(data) if compression == 8 else data)
    extra = [(338, 3, 1, 2)] if c in (2, 4) else []
    entries = sorted([
        (256, 4, 1, w), (257, 4, 1, h), (258, 3, c, None), (259, 3, 1, compression),
        (262, 3, 1, 2 if c >= 3 else 1), (273, 4, len(strips), None), (277, 3, 1, c),
        (278, 4, 1, rows), (279, 4, len(strips), None), (284, 3, 1, 1), (317, 3, 1, predictor),
    ] + extra)
    n = len(entries)
    offset = 8 + 2 + 12 * n + 4
    blobs, out_entries = [], []
    strip_start = offset + 2 * c + 8 * len(strips)
    strip_offsets, pos = [], strip_start
    for s in strips:
        strip_offsets.append(pos)
        pos += len(s)
    arrays = {258: struct.pack(e + f"{c}H", *([16] * c)),
              273: struct.pack(e + f"{len(strips)}I", *strip_offsets),
              279: struct.pack(e + f"{len(strips)}I", *map(len, strips))}
    for tag, kind, count, value in entries:
        if tag in arrays:
            data = arrays[tag]
            if len(data) <= 4:
                field = data + bytes(4 - len(data))
            else:
                field = struct.pack(e + "I", offset + sum(len(b) for b in blobs))
                blobs.append(data)
        else:
            field = struct.pack(e + "HH", value, 0) if kind == 3 else struct.pack(e + "I", value)
        out_entries.append(struct.pack(e + "HHI", tag, kind, count) + field)
    head = (b"MM\x00*" if big_endian else b"II*\x00") + struct.pack(e + "I", 8)
    body = head + struct.pack(e + "H", n) + b"".join(out_entries) + struct.pack(e + "I", 0)
    body += b"".join(blobs)
    body += bytes(strip_start - len(body))
    return body + b"".join(strips)


def png_bytes(array):
    """A PNG of a uint8/uint16 (H, W[, C]) array, written with zlib here (not the reader's libs)."""
    array = np.asarray(array)
    h, w = array.shape[:2]
    c = 1 if array.ndim == 2 else array.shape[2]
    depth = 16 if array.dtype == np.uint16 else 8
    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    rows = array.reshape(h, w * c).astype(">u2" if depth == 16 else "u1")
    raw = b"".join(b"\0" + row.tobytes() for row in rows)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def big_blank_png(side):
    """A real greyscale PNG of side x side zeros (16384: 268 Mpx in about 270 KB), streamed."""
    deflate = zlib.compressobj(9)
    row = bytes(side + 1)
    body = b"".join(deflate.compress(row) for _ in range(side)) + deflate.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", body)
            + png_chunk(b"IEND", b""))


def ztxt_bomb_png(array):
    """A valid PNG whose zTXt chunk inflates 2 KB into 4 MB of text (past Pillow's MAX_TEXT_CHUNK)."""
    data = png_bytes(array)
    text = png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(bytes(4 << 20), 9))
    return data[:33] + text + data[33:]


def animated_gif(frames=3, size=(12, 10)):
    """An animated GIF (Pillow writes it; frames differ so none is dropped)."""
    from PIL import Image

    images = [Image.new("RGB", size, (40 * i, 255 - 40 * i, 7)) for i in range(frames)]
    buf = io.BytesIO()
    images[0].save(buf, "GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    return buf.getvalue()


def still_gif(array):
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "GIF")
    return buf.getvalue()
