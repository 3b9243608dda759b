"""Atomic file writes: a crash, a kill or a full disk leaves the old file or none, never half.

Everything keras-esrgan writes (images, generators, `.tflite` files, JSON reports) goes to a
hidden temporary name in the destination's folder first (`.NAME.tmp-XXXXXXXXXXXX[.ext]`, see
`TEMP_NAME`) and is moved into place when complete; within one folder that is atomic on POSIX and
Windows. Readers that poll (TF Serving, a training run resuming, a user's image viewer) therefore
only ever see finished files.

- `overwrite=False` puts the finished file in place with `os.link`, which fails if the name
  exists by then, so a file that appeared at the destination while the work ran (another run, the
  user) is never replaced; `overwrite=True` renames over it.
- While a temporary file is being written its writer holds an advisory lock on it (`flock`, where
  the platform has it); a SIGKILL releases the lock with the process. `remove_stale_temp_files`
  deletes temporary files of this pattern that are older than a given time and that no live
  writer holds, so a rerun clears what a killed run left behind without touching a concurrent
  run's work.
"""

import contextlib
import errno
import json
import os
import re
import shutil
import time
import uuid

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; stale files are told by age alone
    fcntl = None

# `.NAME.tmp-` + 12 hex digits (+ the suffix writers choose the format from, or `.old` for a
# folder moved aside): what `atomic_path` names its temporary files and folders.
TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.tmp-[0-9a-f]{12}(?P<suffix>.*)$")
# Errors of os.link on filesystems without hard links (FAT, exFAT, some FUSE/SMB mounts).
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EXDEV, errno.EMLINK, errno.ENOSYS}


def _mode(directory):
    # What a plain open()/mkdir() would give: tempfile's owner-only modes would make an
    # artifact unreadable to a server or app build running as another user.
    umask = os.umask(0)
    os.umask(umask)
    return (0o777 if directory else 0o666) & ~umask


def _lock(path):
    """Open `path` and hold an exclusive advisory lock on it; returns the fd (or None)."""
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _held_by_a_writer(path):
    """True if a live process holds the lock `atomic_path` takes on its temporary files."""
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return True  # cannot tell: leave it alone
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
    return False


def _exists_error(path):
    return FileExistsError(
        errno.EEXIST,
        f"{path} was created by someone else while this one was being written; it was kept "
        "(pass --overwrite / overwrite=True to replace it)",
    )


def _place_without_replacing(tmp, path):
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise _exists_error(path) from None
    except OSError as err:
        if err.errno not in _NO_LINKS:
            raise
        # No hard links here: check, then rename. Not atomic, but the window is a syscall wide.
        if os.path.lexists(path):
            raise _exists_error(path) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(path, suffix=None, directory=False, overwrite=True):
    """Yield a temporary path beside `path`; move it to `path` if the block succeeds.

    Args:
        path: the destination file (or folder with `directory=True`).
        suffix: what the temporary name ends with, for writers that choose the format from it
            (Pillow, Keras: `".weights.h5"`); default: `path`'s extension.
        directory: create the temporary path as an empty folder (for SavedModels and image
            sets); an existing folder at `path` is replaced.
        overwrite: replace a file at `path`. With False, a file that exists when the block
            ends (for instance one created meanwhile) is kept and `FileExistsError` raised.
            Folders are always replaced.

    The temporary file exists (empty, locked by this process) when the block starts; the block
    writes it. On an exception the temporary file or folder is deleted and `path` is left as it
    was.

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
    else:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    lock = None
    try:
        lock = _lock(tmp)
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
        elif directory or overwrite:
            os.replace(tmp, path)
        else:
            _place_without_replacing(tmp, path)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        elif os.path.lexists(tmp):
            os.remove(tmp)
        if lock is not None:
            os.close(lock)


def remove_stale_temp_files(folder, before=None, name=None):
    """Delete what interrupted writes left in `folder`: `atomic_path` temporary files and folders
    last modified before `before` that no live process is writing.

    Args:
        folder: the folder to clean (not recursive); a missing folder is nothing to clean.
        before: a `time.time()` value, typically when the run started; default: now.
        name: only temporary files of this destination name (`.NAME.tmp-...`); default: all.

    Returns:
        The sorted list of removed paths.

    Example:
    >>> os.makedirs("out", exist_ok=True)
    >>> open("out/.cat_out.png.tmp-0f3c9a2b7d41.png", "wb").close()   # as a SIGKILL leaves it
    >>> remove_stale_temp_files("out", before=time.time() + 1)
    ['out/.cat_out.png.tmp-0f3c9a2b7d41.png']
    """
    before = time.time() if before is None else before
    removed = []
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return removed
    for entry in entries:
        match = TEMP_NAME.match(entry.name)
        if not match or (name is not None and match.group("name") != name):
            continue
        try:
            if entry.is_symlink() or entry.stat().st_mtime >= before or _held_by_a_writer(entry.path):
                continue
            if entry.is_dir():
                shutil.rmtree(entry.path)
            else:
                os.remove(entry.path)
        except FileNotFoundError:
            continue  # its writer finished or cleaned up meanwhile
        removed.append(entry.path)
    return sorted(removed)


def write_bytes(path, data, overwrite=True):
    """Write `data` (bytes) to `path` atomically; `overwrite` as for `atomic_path`.

    A full disk or a file-size limit surfaces as the `OSError` of the write (ENOSPC, EFBIG),
    with nothing left behind.

    Example:
    >>> write_bytes("esrgan.bin", b"ESRGAN")
    >>> open("esrgan.bin", "rb").read()
    b'ESRGAN'
    """
    with atomic_path(path, overwrite=overwrite) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)


def write_json(path, obj, indent=2, overwrite=True):
    """Write `obj` as JSON (with a final newline) to `path` atomically.

    Example:
    >>> os.makedirs("runs/offline", exist_ok=True)
    >>> write_json("runs/offline/results.json", {"psnr": 28.9})
    >>> print(open("runs/offline/results.json").read(), end="")
    {
      "psnr": 28.9
    }
    """
    write_bytes(path, (json.dumps(obj, indent=indent) + "\n").encode(), overwrite=overwrite)


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
