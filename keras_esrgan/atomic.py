"""Atomic file writes: a crash, a kill or a full disk leaves the old file or none, never half.

Everything keras-esrgan writes (images, generators, `.tflite` files, JSON reports) goes to a
hidden temporary name in the destination's folder first and is renamed into place when complete;
`os.replace` within one folder is atomic on POSIX and Windows. Readers that poll (TF Serving, a
training run resuming, a user's image viewer) therefore only ever see finished files.
"""

import contextlib
import json
import os
import shutil
import uuid


def _mode(directory):
    # What a plain open()/mkdir() would give: tempfile's owner-only modes would make an
    # artifact unreadable to a server or app build running as another user.
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


@contextlib.contextmanager
def atomic_path(path, suffix=None, directory=False):
    """Yield a temporary path beside `path`; rename it to `path` if the block succeeds.

    Args:
        path: the destination file (or folder with `directory=True`).
        suffix: what the temporary name ends with, for writers that choose the format from it
            (Pillow, Keras: `".weights.h5"`); default: `path`'s extension.
        directory: create the temporary path as an empty folder (for SavedModels and image
            sets); an existing folder at `path` is replaced.

    On an exception the temporary file or folder is deleted and `path` is left as it was.

    Example:
    >>> model = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    >>> with atomic_path("model.keras") as tmp:
    ...     model.save(tmp)
    >>> os.path.isfile("model.keras"), os.path.exists(tmp)
    (True, False)
    """
    path = os.fspath(path)
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    if suffix is None:
        suffix = "" if directory else os.path.splitext(path)[1]
    tmp = os.path.join(parent, f".{os.path.basename(path)}.tmp-{uuid.uuid4().hex[:12]}{suffix}")
    if directory:
        os.mkdir(tmp)
    try:
        yield tmp
        os.chmod(tmp, _mode(directory))
        if directory and os.path.isdir(path):
            # A folder cannot be renamed over a non-empty one: move the old one aside first,
            # and put it back if the rename fails.
            old = f"{tmp}.old"
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except BaseException:
                os.replace(old, path)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path, data):
    """Write `data` (bytes) to `path` atomically.

    Example:
    >>> write_bytes("esrgan.bin", b"ESRGAN")
    >>> open("esrgan.bin", "rb").read()
    b'ESRGAN'
    """
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def write_json(path, obj, indent=2):
    """Write `obj` as JSON (with a final newline) to `path` atomically.

    Example:
    >>> os.makedirs("runs/offline", exist_ok=True)
    >>> write_json("runs/offline/results.json", {"psnr": 28.9})
    >>> print(open("runs/offline/results.json").read(), end="")
    {
      "psnr": 28.9
    }
    """
    write_bytes(path, (json.dumps(obj, indent=indent) + "\n").encode())


def commit_file(tmp, path):
    """Move a finished temporary file `tmp` (in `path`'s folder) onto `path` atomically.

    For writers that cannot use `atomic_path` because their temporary file must outlive one
    call (a download's `.part` file, kept across runs to resume). The data is flushed to disk
    before the rename, so a crash leaves the old `path` or the complete new one.

    Example:
    >>> with open("model.pth.part", "wb") as fh:
    ...     _ = fh.write(b"downloaded bytes")
    >>> commit_file("model.pth.part", "model.pth")
    >>> os.path.exists("model.pth.part"), open("model.pth", "rb").read()
    (False, b'downloaded bytes')
    """
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    os.chmod(tmp, _mode(False))
    os.replace(tmp, path)
