"""HTTP(S) transfer of one file into a `.part` file: resumable, capped, hashed while streaming.

Standard library only (urllib). Safety rules: redirects are followed only to http(s) and never
from https down to http; the body is cut off at the declared size (or a bound when none is
declared); a connection that cannot be made gives `OfflineError` after one short timeout, with
no retries; a body that stops early keeps its `.part` file so the next run resumes with an HTTP
Range request, and a server that ignores Range (or whose file changed, via If-Range) restarts
the transfer from byte 0.
"""

import hashlib
import http.client
import os
import socket
import ssl
import urllib.error
import urllib.parse
import urllib.request

from keras_esrgan.pretrained.errors import DownloadError, OfflineError

CHUNK = 1 << 20
CONNECT_TIMEOUT = 10.0  # seconds, for the connection and for each read
DEFAULT_MAX_BYTES = 2 << 30  # a download with no declared size or bound stops here


class _SafeRedirects(urllib.request.HTTPRedirectHandler):
    """Follow at most 5 redirects, only to http(s), never from https down to http."""

    max_redirections = 5

    def http_error_302(self, req, fp, code, msg, headers):
        # Checked before urllib's own handling, which lets ftp:// through and words a refused
        # file:// redirect as an HTTP error.
        target = headers.get("Location") or headers.get("URI")
        if target:
            newurl = urllib.parse.urljoin(req.full_url, target)
            old = urllib.parse.urlsplit(req.full_url).scheme
            new = urllib.parse.urlsplit(newurl).scheme.lower()
            if new not in ("http", "https") or (old == "https" and new == "http"):
                fp.close()
                raise DownloadError(
                    f"{req.full_url} redirects to {newurl}: refused (only http(s) redirects are "
                    "followed, and never from https to http)"
                )
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


_OPENER = urllib.request.build_opener(_SafeRedirects)


def _user_agent():
    from keras_esrgan import __version__

    return f"keras-esrgan/{__version__} (+urllib)"


def hash_file(path, hasher=None):
    """SHA-256 of a file's bytes, read in chunks (or `hasher` updated with them)."""
    hasher = hasher or hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(CHUNK), b""):
            hasher.update(block)
    return hasher


def _offline(url, reason, how_to_fix):
    host = urllib.parse.urlsplit(url).netloc
    return OfflineError(f"cannot reach {host} ({reason}) to download {url}.\n{how_to_fix}")


def _open(url, offset, validator, timeout, how_to_fix):
    headers = {"User-Agent": _user_agent(), "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if validator:
            # The server sends the whole file (200) instead of the rest if it has changed.
            headers["If-Range"] = validator
    request = urllib.request.Request(url, headers=headers)
    try:
        return _OPENER.open(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and offset:
            return None  # the .part is not a prefix the server can continue: restart
        raise DownloadError(
            f"HTTP {err.code} {err.reason} for {err.url or url}: the server does not serve this "
            f"file.\n{how_to_fix}"
        ) from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, ssl.SSLError):
            # Reached, but the TLS handshake failed (certificate, proxy interception): not offline.
            raise DownloadError(f"{url}: TLS error ({err.reason}).\n{how_to_fix}") from None
        raise _offline(url, err.reason, how_to_fix) from None
    except (TimeoutError, socket.timeout, ConnectionError) as err:
        raise _offline(url, err or "timed out", how_to_fix) from None
    except http.client.HTTPException as err:
        raise DownloadError(f"{url}: bad HTTP response ({err!r})") from None


def _content_range(response):
    # "bytes START-END/TOTAL" -> (START, TOTAL or None)
    value = response.headers.get("Content-Range", "")
    try:
        unit, rest = value.split(" ", 1)
        span, total = rest.split("/", 1)
        start = int(span.split("-", 1)[0])
        return (start, None if total.strip() == "*" else int(total)) if unit == "bytes" else (None, None)
    except ValueError:
        return None, None


def fetch(url, part, *, size=None, max_bytes=None, timeout=CONNECT_TIMEOUT, progress=True,
          desc=None, validator=None, how_to_fix="", started=None, _restarted=False):
    """Download `url` into the file `part`, continuing what `part` already holds.

    Args:
        url: http(s) URL.
        part: path of the partial file; created if absent, resumed if present.
        size: the file's declared size in bytes, or None.
        max_bytes: bound on the size when `size` is None (default 2 GiB).
        timeout: seconds for the connection and for each read.
        progress: show a tqdm progress bar on stderr.
        desc: label of the progress bar.
        validator: the ETag or Last-Modified of the response `part` was started from.
        how_to_fix: text appended to error messages (where to get the file otherwise).
        started: called with the response's validator once its body is accepted (to store it
            beside `part` for If-Range on a later resume).

    Returns:
        `(sha256 hex digest, byte count, validator)` of the complete file in `part`.

    Raises:
        OfflineError: no connection could be made (refused, DNS, timeout).
        DownloadError: HTTP error, oversize or interrupted body (`part` is kept to resume).
    """
    from tqdm.auto import tqdm

    offset = os.path.getsize(part) if os.path.exists(part) else 0
    limit = size if size is not None else (max_bytes or DEFAULT_MAX_BYTES)
    if offset > limit:
        offset = 0  # longer than the file can be: not a prefix of it
    response = _open(url, offset, validator, timeout, how_to_fix)
    if response is None:
        if _restarted:
            raise DownloadError(f"{url}: the server refuses a download from byte 0 (HTTP 416)")
        os.remove(part)
        return fetch(url, part, size=size, max_bytes=max_bytes, timeout=timeout, progress=progress,
                     desc=desc, how_to_fix=how_to_fix, started=started, _restarted=True)
    with response:
        status = response.status
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if offset and status == 206:
            start, total = _content_range(response)
            if start != offset or (size is not None and total not in (None, size)):
                offset = None  # an answer for another range or another file: restart below
        elif offset:
            # 200: the server ignored Range (or If-Range saw a changed file) and sends the whole
            # file: start again from byte 0 with this response.
            offset = 0
        if offset is None:
            response.close()
            if _restarted:
                raise DownloadError(f"{url}: the server's answers to a restarted download are inconsistent")
            os.remove(part)
            return fetch(url, part, size=size, max_bytes=max_bytes, timeout=timeout,
                         progress=progress, desc=desc, how_to_fix=how_to_fix, started=started,
                         _restarted=True)
        expected = offset + length if length is not None else size
        if expected is not None and expected > limit:
            what = f"declares {size:,} bytes" if size is not None else f"allows at most {limit:,} bytes"
            raise DownloadError(
                f"{url}: the server sends {expected:,} bytes but the model entry {what}: "
                f"not the expected file.\n{how_to_fix}"
            )
        new_validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
        if started is not None:
            started(new_validator or (validator if offset else None))
        hasher = hash_file(part) if offset else hashlib.sha256()
        received = offset
        bar = tqdm(total=expected, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
                   desc=desc, disable=not progress, leave=False)
        try:
            with open(part, "ab" if offset else "wb") as fh:
                while True:
                    try:
                        chunk = response.read(CHUNK)
                    except (OSError, http.client.HTTPException) as err:
                        raise DownloadError(
                            f"{url}: the transfer broke after {received:,} of "
                            f"{expected or '?'} bytes ({err!r}); the partial file {part} is kept, "
                            "run again to resume"
                        ) from None
                    if not chunk:
                        break
                    received += len(chunk)
                    if received > limit:
                        fh.close()
                        os.remove(part)
                        raise DownloadError(
                            f"{url}: the body goes past the {limit:,} bytes the entry allows: not "
                            f"the expected file; nothing was kept.\n{how_to_fix}"
                        )
                    fh.write(chunk)
                    hasher.update(chunk)
                    bar.update(len(chunk))
        finally:
            bar.close()
    if expected is not None and received < expected:
        raise DownloadError(
            f"{url}: the connection closed after {received:,} of {expected:,} bytes; the partial "
            f"file {part} is kept, run again to resume"
        )
    return hasher.hexdigest(), received, new_validator or validator
