"""A local HTTP file server for the model-zoo tests: Range requests, ETags and injected faults.

It listens on 127.0.0.1 at a random port, in a thread. `files` maps URL paths to bytes;
`faults` maps a path to a list of faults applied to its next requests, one per request:

    ("status", 404)          answer with that HTTP status
    ("truncate", n)          announce the full length, send n bytes, close the connection
    ("ignore_range",)        answer 200 with the whole file even to a Range request
    ("no_length",)           send the body without Content-Length (ends when the connection closes)
    ("redirect", url)        302 to url

`log` records each request's path, Range and If-Range headers and the status sent.
"""

import hashlib
import http.server
import threading


class _Handler(http.server.BaseHTTPRequestHandler):
    # HTTP/1.0: one request per connection, so a closed connection ends a body.
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):
        pass

    def _send(self, status, headers, body=b""):
        self.server.log[-1]["status"] = status
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(body)

    def do_GET(self):
        srv = self.server
        srv.log.append(dict(path=self.path, range=self.headers.get("Range"),
                            if_range=self.headers.get("If-Range")))
        queue = srv.faults.get(self.path) or []
        fault = queue.pop(0) if queue else ("ok",)
        data = srv.files.get(self.path)
        if fault[0] == "status":
            return self._send(fault[1], {"Content-Length": "0"})
        if fault[0] == "redirect":
            return self._send(302, {"Location": fault[1], "Content-Length": "0"})
        if data is None:
            return self._send(404, {"Content-Length": "0"})
        etag = '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
        start = 0
        wanted = self.headers.get("Range")
        if_range = self.headers.get("If-Range")
        if wanted and fault[0] != "ignore_range" and (if_range is None or if_range == etag):
            start = int(wanted.split("=", 1)[1].split("-", 1)[0])
            if start >= len(data):
                return self._send(416, {"Content-Range": f"bytes */{len(data)}", "Content-Length": "0"})
        body = data[start:]
        headers = {"ETag": etag, "Accept-Ranges": "bytes"}
        if fault[0] != "no_length":
            headers["Content-Length"] = str(len(body))
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        if fault[0] == "truncate":
            return self._send(206 if start else 200, headers, body[: fault[1]])
        self._send(206 if start else 200, headers, body)


class ZooServer:
    """`with ZooServer() as server:` serves `server.files` at `server.url(path)`."""

    def __init__(self):
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files, self.httpd.faults, self.httpd.log = {}, {}, []
        self.files, self.faults, self.log = self.httpd.files, self.httpd.faults, self.httpd.log
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs=dict(poll_interval=0.05),
                                       daemon=True)

    def url(self, path):
        """Absolute URL of `path` (starting with /) on this server."""
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def serve(server, name, data, path=None, **fields):
    """Put `data` on `server` and register it as model `name` (its real SHA-256 and size)."""
    from keras_esrgan import pretrained

    path = path or f"/files/{name}.pth"
    server.files[path] = data
    fields.setdefault("size", len(data))
    return pretrained.register(name, url=server.url(path), sha256=hashlib.sha256(data).hexdigest(), **fields)


class LocalZoo:
    """An empty zoo cache (KERAS_ESRGAN_HOME), a ZooServer, and MODELS restored on exit."""

    def __init__(self, monkeypatch, cache):
        self.monkeypatch, self.cache = monkeypatch, cache

    def __enter__(self):
        from keras_esrgan.pretrained import MODELS

        self.saved = dict(MODELS)
        self.monkeypatch.setenv("KERAS_ESRGAN_HOME", str(self.cache))
        self.monkeypatch.delenv("KERAS_ESRGAN_MIRROR", raising=False)
        self.server = ZooServer().__enter__()
        return self.server

    def __exit__(self, *exc):
        from keras_esrgan.pretrained import MODELS

        self.server.__exit__(*exc)
        MODELS.clear()
        MODELS.update(self.saved)


def serve_rrdbnet_pair(server):
    """Two tiny RRDBNets of one architecture (the committed fixtures) as zoo models `tiny-gan`
    and `tiny-psnr`, declared an interpolable pair; returns their file paths."""
    from tests.conftest import FIXTURES

    files = {"tiny-gan": FIXTURES / "esrgan_repo_x4.pth", "tiny-psnr": FIXTURES / "old_esrgan_x4_legacy.pth"}
    kw = dict(arch_kwargs=dict(num_feat=8, num_block=2, num_grow_ch=4))
    serve(server, "tiny-gan", files["tiny-gan"].read_bytes(), pair="tiny-psnr", **kw)
    serve(server, "tiny-psnr", files["tiny-psnr"].read_bytes(), pair="tiny-gan", **kw)
    return files


STANDIN_COMPACT = dict(num_feat=4, num_conv=2, upscale=4)


def serve_builtin_standins(server, monkeypatch, cache):
    """The built-in zoo names the docs use, served by `server` through KERAS_ESRGAN_MIRROR: tiny
    stand-ins (RRDBNet fixtures; SRVGGNetCompact with 4 features, 2 convs) under the release file
    names, their entries' digests, sizes and arguments replaced by the stand-ins' (MODELS is
    restored by monkeypatch). Nothing leaves 127.0.0.1."""
    import dataclasses

    import numpy as np

    from keras_esrgan.pretrained import MODELS
    from tests.conftest import FIXTURES
    from tests.reference.numpy_srvgg import random_srvgg_state
    from tests.standins import save_torch_zip

    blobs = {}
    for seed, name in enumerate(("realesr-general-x4v3", "realesr-general-wdn-x4v3", "realesr-animevideov3")):
        state = random_srvgg_state(np.random.default_rng(seed), **STANDIN_COMPACT)
        path = save_torch_zip(state, cache.parent / f"standin-{name}.pth", key="params")
        blobs[name] = (path.read_bytes(), dict(STANDIN_COMPACT))
    tiny_rrdb = dict(num_feat=8, num_block=2, num_grow_ch=4)
    blobs["RealESRGAN_x4plus"] = ((FIXTURES / "basicsr_x4_params_ema.pth").read_bytes(), tiny_rrdb)
    blobs["RealESRNet_x4plus"] = ((FIXTURES / "esrgan_repo_x4.pth").read_bytes(), tiny_rrdb)
    for name, (data, arch_kwargs) in blobs.items():
        entry = MODELS[name]
        server.files[f"/mirror/{entry.file_name}"] = data
        replaced = dataclasses.replace(entry, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                                       arch_kwargs=arch_kwargs, param_key=None if name == "RealESRNet_x4plus" else entry.param_key)
        monkeypatch.setitem(MODELS, name, replaced)
    monkeypatch.setenv("KERAS_ESRGAN_MIRROR", server.url("/mirror/"))
    monkeypatch.setenv("KERAS_ESRGAN_HOME", str(cache))
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
