"""Get a named model file into the cache, verified: `download`, `resolve`, `is_cached`, `list_models`.

What is checked, and what happens when a check fails:

- A new download streams into `<file_name>.part` in the cache, hashed as it arrives, and is
  renamed to `<file_name>` only once its size and SHA-256 (and, for entries without a pinned
  digest or with disputed ones, its layout) are right. A wrong file raises `VerificationError`
  naming the URL and both digests, and is deleted: nothing is left under the model's name.
- An interrupted download keeps its `.part` file; the next call resumes it with an HTTP Range
  request (If-Range: the ETag it started from), or restarts it when the server ignores Range.
- A cached file is re-hashed only when its size or mtime differs from the manifest's record.
  One that fails raises `CorruptCacheError` and is left in place (it may be a file someone put
  there by hand, and a changed cache is worth a look): delete it, or pass `force=True`.
- Entries without a pinned digest are checked by layout and size bound, and the digest seen the
  first time is recorded and enforced on every later use (with a warning the first time).
"""

import json
import os
import pathlib
import urllib.parse
import warnings

from keras_esrgan.atomic import commit_file, write_json
from keras_esrgan.pretrained import cache, transfer
from keras_esrgan.pretrained.errors import (
    CorruptCacheError,
    DownloadError,
    UnknownModelError,
    VerificationError,
)
from keras_esrgan.pretrained.layout import check_layout
from keras_esrgan.pretrained.registry import MODELS, check_url, get, suggest

MIRROR_ENV = "KERAS_ESRGAN_MIRROR"


def source_url(entry):
    """The URL `entry` is fetched from: `<KERAS_ESRGAN_MIRROR>/<file_name>` if set, else `entry.url`."""
    mirror = os.environ.get(MIRROR_ENV)
    if not mirror:
        return entry.url
    check_url(mirror, what=MIRROR_ENV)
    return mirror.rstrip("/") + "/" + urllib.parse.quote(entry.file_name)


def _by_hand(entry, dest):
    digest = (f"check that `sha256sum` prints {entry.sha256}" if entry.sha256
              else "no SHA-256 is pinned for it; its layout is checked")
    return (
        f"To install it by hand: download {entry.url} where there is network access ({digest}) "
        f"and put it at {dest}; it is verified before use. Or set {MIRROR_ENV}=http://host/path/ "
        f"to a server that has {entry.file_name}."
    )


def _unpinned_warning(entry, digest, where):
    warnings.warn(
        f"{entry.name}: no SHA-256 is pinned for {entry.file_name} ({'; '.join(entry.digest_sources)}). "
        f"Its layout was checked ({entry.arch}); its SHA-256 {digest} from {where} is recorded and "
        "will be enforced from now on. Pin it with register(..., sha256=...) once you trust it.",
        stacklevel=3,
    )


def verify_cached(entry, path, directory):
    """Check a file already in the cache against `entry`; return its SHA-256.

    Cheap when the manifest's record matches the file's size and mtime; otherwise the file is
    re-hashed (and, for an unpinned entry seen for the first time, its layout checked) and
    the record refreshed. Call with the cache lock held.

    Raises:
        CorruptCacheError: size, digest or layout is wrong; the file is left where it is.
    """
    rec = cache.read_manifest(directory).get(entry.file_name)
    size = path.stat().st_size
    fix = (f"It was left in place: delete it (or call download({entry.name!r}, force=True)) to "
           "download it again. If you put it there by hand, it is not the file the entry names.")
    bound = entry.size or entry.max_size
    if (entry.size is not None and size != entry.size) or (entry.size is None and bound and size > bound):
        want = f"{entry.size:,}" if entry.size is not None else f"at most {bound:,}"
        raise CorruptCacheError(f"{path}: {size:,} bytes, but {entry.name} has {want} bytes. {fix}")
    if cache.matches_record(path, rec, entry.sha256 or (rec or {}).get("sha256")):
        return rec["sha256"]
    digest = transfer.hash_file(path).hexdigest()
    expected = entry.sha256 or (rec or {}).get("sha256")
    if expected and digest != expected:
        since = "is pinned" if entry.sha256 else "was recorded at its first download"
        raise CorruptCacheError(
            f"{path}: SHA-256 mismatch for {entry.name}\n  expected {expected} (the digest that "
            f"{since})\n  got      {digest}\nThe file was changed or damaged in the cache. {fix}"
        )
    if not expected:
        try:
            check_layout(path, entry, source=str(path))
        except VerificationError as err:
            raise CorruptCacheError(f"{path}: {err} {fix}") from err
        _unpinned_warning(entry, digest, path)
    cache.record(directory, path, digest, url=(rec or {}).get("url", "placed by hand"))
    return digest


def _fetch_into_cache(entry, dest, directory, progress, timeout):
    url = source_url(entry)
    part = dest.with_name(dest.name + ".part")
    meta_path = dest.with_name(f".{dest.name}.part.json")
    origin = dict(url=url, sha256=entry.sha256, size=entry.size)
    meta = {}
    if part.exists():
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            meta = {}
        if {k: meta.get(k) for k in origin} != origin:
            part.unlink()  # from another URL or file version: cannot be continued
            meta = {}
    how_to_fix = _by_hand(entry, dest)

    def discard():
        for leftover in (part, meta_path):
            if leftover.exists():
                leftover.unlink()

    if part.exists() and entry.size is not None and part.stat().st_size == entry.size:
        digest, received = transfer.hash_file(part).hexdigest(), entry.size  # finished earlier
    else:
        def started(validator):
            write_json(meta_path, {**origin, "validator": validator})

        try:
            digest, received, _ = transfer.fetch(
                url, part, size=entry.size, max_bytes=entry.max_size, timeout=timeout,
                progress=progress, desc=entry.file_name, validator=meta.get("validator"),
                how_to_fix=how_to_fix, started=started,
            )
        except DownloadError:
            if not part.exists():
                discard()  # nothing to resume: no bookkeeping either
            raise
    if entry.size is not None and received != entry.size:
        discard()
        raise VerificationError(
            f"{entry.name}: {url} sent {received:,} bytes, but the entry declares {entry.size:,}. "
            f"Nothing was kept in {directory}."
        )
    if entry.sha256 is not None and digest != entry.sha256:
        discard()
        if os.environ.get(MIRROR_ENV):
            advice = f"Check that the mirror ({MIRROR_ENV}) holds the original release file."
        else:
            advice = ("Do not use this file: the published file changed, or the download was "
                      "altered on the way. Try again later; if it persists, report it.")
        raise VerificationError(
            f"{entry.name}: SHA-256 mismatch for {url}\n  expected {entry.sha256}\n  got      "
            f"{digest} ({received:,} bytes)\nThe file was deleted; nothing was kept in "
            f"{directory}. {advice}"
        )
    if entry.verify_layout:
        try:
            check_layout(part, entry, source=url)
        except VerificationError:
            discard()
            raise
    commit_file(part, dest)
    if meta_path.exists():
        meta_path.unlink()
    cache.record(directory, dest, digest, url=url)
    if entry.sha256 is None:
        _unpinned_warning(entry, digest, url)


def download(name, cache_dir=None, progress=True, force=False, timeout=transfer.CONNECT_TIMEOUT):
    """The path of model `name`'s file in the cache, downloading and verifying it if needed.

    Args:
        name: a key of `MODELS` (`"RealESRGAN_x4plus"`, ... or one added with `register`).
        cache_dir: folder to use instead of `cache_dir()`.
        progress: show a progress bar while downloading.
        force: delete a cached copy (and its record) first and download again.
        timeout: seconds to wait for the connection and for each read (no retries).

    Returns:
        `pathlib.Path` of the verified file.

    Raises:
        UnknownModelError: `name` is not registered (the message lists close names).
        OfflineError: the host cannot be reached; the message says where to put the file by hand.
        DownloadError: HTTP error or interrupted transfer (the next call resumes it).
        VerificationError: the downloaded file is not the pinned one (nothing is kept).
        CorruptCacheError: the cached file fails verification (it is left in place).

    Example:
    Offline (as here), the error says where to put the file by hand:

    >>> download("realesr-general-x4v3", progress=False)
    Traceback (most recent call last):
    ...
    keras_esrgan.pretrained.errors.OfflineError: ...realesr-general-x4v3.pth...
    """
    entry = get(name)
    directory = cache.resolve_dir(cache_dir)
    dest = directory / entry.file_name
    with cache.locked(directory):
        if force and dest.exists():
            dest.unlink()
            cache.forget(directory, entry.file_name)
        if dest.exists():
            verify_cached(entry, dest, directory)
            return dest
        _fetch_into_cache(entry, dest, directory, progress, timeout)
    return dest


def is_cached(name, cache_dir=None):
    """True when model `name`'s file is in the cache and passes verification (never downloads).

    A file placed by hand is hashed the first time and recorded; a failing file gives False.
    """
    entry = get(name)
    directory = cache.resolve_dir(cache_dir)
    dest = directory / entry.file_name
    if not dest.is_file():
        return False
    with cache.locked(directory):
        try:
            verify_cached(entry, dest, directory)
        except VerificationError:
            return False
    return True


def resolve(name_or_path, cache_dir=None, progress=True):
    """Turn what a user passed as weights into a file path.

    An existing path is returned as it is (it wins over a model of the same name); a
    registered name is downloaded or taken from the cache (see `download`); anything else
    raises `UnknownModelError` (a `FileNotFoundError`) that lists close model names.

    Example:
    >>> resolve("RRDB_ESRGAN_x4.pth")
    PosixPath('RRDB_ESRGAN_x4.pth')
    >>> resolve("RealESRGAN_x4plu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    keras_esrgan.pretrained.errors.UnknownModelError: 'RealESRGAN_x4plu' is neither an existing file nor a registered model name. Did you mean 'RealESRGAN_x4plus', ...
    """
    path = pathlib.Path(os.fspath(name_or_path))
    if path.exists():
        return path
    text = os.fspath(name_or_path)
    if isinstance(text, str) and text in MODELS:
        return download(text, cache_dir=cache_dir, progress=progress)
    raise UnknownModelError(f"{text!r} is neither an existing file nor a registered model name.{suggest(text)}")


def list_models(cache_dir=None):
    """One row (dict) per registered model, for a `keras-esrgan models` table.

    Keys: name, arch, kind, scale, params, size (bytes or None), cached (bool), status
    (`"cached"`, `"unverified"`: present but not yet checked, or `"missing"`), license, pair,
    description. Nothing is hashed: `status` comes from the manifest and the file's stat.

    Example:
    >>> [(r["name"], r["arch"], r["scale"], r["params"]) for r in list_models()][:2]
    [('RealESRGAN_x4plus', 'RRDBNet', 4, 16697987), ('RealESRNet_x4plus', 'RRDBNet', 4, 16697987)]
    """
    directory = cache.resolve_dir(cache_dir)
    records = cache.read_manifest(directory)
    rows = []
    for entry in MODELS.values():
        path = directory / entry.file_name
        rec = records.get(entry.file_name)
        if not path.is_file():
            status = "missing"
        elif cache.matches_record(path, rec, entry.sha256 or (rec or {}).get("sha256")):
            status = "cached"
        else:
            status = "unverified"
        rows.append(dict(
            name=entry.name, arch=entry.arch, kind=entry.kind, scale=entry.scale,
            params=entry.params, size=entry.size or (rec or {}).get("size"),
            cached=status == "cached", status=status, license=entry.license, pair=entry.pair,
            description=entry.description,
        ))
    return rows
