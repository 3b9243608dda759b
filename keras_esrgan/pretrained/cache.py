"""The local model cache: where files live, the manifest that makes re-verification cheap, the lock.

Layout of the cache folder (`cache_dir()`):

    RealESRGAN_x4plus.pth        verified files, under their entry's `file_name`
    RealESRGAN_x4plus.pth.part   a download in progress or interrupted (resumed by the next run)
    .RealESRGAN_x4plus.pth.part.json   where that .part came from (URL, digest, ETag)
    manifest.json                size, mtime and SHA-256 of each verified file
    .lock                        held while a process downloads or updates the manifest

A file is re-hashed only when its size or mtime differs from the manifest's record (or it has
none: a file put there by hand). The manifest protects against damaged and half-replaced files,
not against someone who can write to the cache (they could rewrite the manifest too).
"""

import contextlib
import json
import os
import pathlib
import time

from keras_esrgan.atomic import write_json

try:
    import fcntl
except ImportError:  # Windows: downloads by concurrent processes are not serialised there
    fcntl = None

MANIFEST = "manifest.json"
_FORMAT = 1


def cache_dir():
    """The folder pretrained models are cached in, as a `pathlib.Path` (not created here).

    `KERAS_ESRGAN_HOME` if set; otherwise `keras_esrgan/models` inside Keras' home folder:
    `KERAS_HOME` if set, else `~/.keras`.

    Example:
    >>> os.environ["KERAS_ESRGAN_HOME"] = "/data/models"
    >>> str(cache_dir())
    '/data/models'
    >>> del os.environ["KERAS_ESRGAN_HOME"]
    """
    home = os.environ.get("KERAS_ESRGAN_HOME")
    if home:
        return pathlib.Path(home).expanduser()
    keras_home = os.environ.get("KERAS_HOME") or os.path.join("~", ".keras")
    return pathlib.Path(keras_home).expanduser() / "keras_esrgan" / "models"


def resolve_dir(directory=None):
    """`directory` as a Path, or `cache_dir()` when None."""
    return pathlib.Path(directory).expanduser() if directory is not None else cache_dir()


@contextlib.contextmanager
def locked(directory):
    """Hold the cache folder's lock (created if needed) for the block."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a+b") as fh:
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def read_manifest(directory):
    """file_name -> record dict of the verified files; {} when absent or unreadable."""
    try:
        data = json.loads((directory / MANIFEST).read_text())
        files = data.get("files", {}) if data.get("format") == _FORMAT else {}
        return files if isinstance(files, dict) else {}
    except (OSError, ValueError, AttributeError):
        return {}  # a damaged manifest only costs a re-hash


def record(directory, path, sha256, url):
    """Record `path` (in `directory`) as verified with `sha256`; call with the lock held."""
    st = path.stat()
    files = read_manifest(directory)
    files[path.name] = dict(
        sha256=sha256, size=st.st_size, mtime_ns=st.st_mtime_ns, url=url,
        verified=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )
    write_json(directory / MANIFEST, {"format": _FORMAT, "files": files})


def forget(directory, file_name):
    """Drop `file_name`'s record from the manifest; call with the lock held."""
    files = read_manifest(directory)
    if files.pop(file_name, None) is not None:
        write_json(directory / MANIFEST, {"format": _FORMAT, "files": files})


def matches_record(path, rec, sha256=None):
    """True when `path`'s size and mtime are those recorded (and the digest is `sha256`)."""
    if not rec:
        return False
    try:
        st = path.stat()
    except OSError:
        return False
    return (
        rec.get("size") == st.st_size
        and rec.get("mtime_ns") == st.st_mtime_ns
        and (sha256 is None or rec.get("sha256") == sha256)
    )
