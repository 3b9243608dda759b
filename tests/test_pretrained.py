"""The model zoo (keras_esrgan.pretrained), without network: a local HTTP server serves stand-ins.

Every download goes to 127.0.0.1 (tests/zoo_server.py); the built-in entries' metadata is
checked as data, and one built-in entry is fetched through KERAS_ESRGAN_MIRROR with its digest
replaced by the stand-in's.
"""

import dataclasses
import hashlib
import json
import os
import re
import socket
import time

import numpy as np
import pytest

from keras_esrgan import pretrained
from keras_esrgan.pretrained import (
    MODELS,
    CorruptCacheError,
    DownloadError,
    OfflineError,
    UnknownModelError,
    VerificationError,
)
from keras_esrgan.pretrained import cache as zoo_cache
from keras_esrgan.pretrained import transfer
from tests.conftest import FIXTURES, TINY
from tests.zoo_server import ZooServer

BLOB = np.random.default_rng(13).bytes(300_000)
BLOB_SHA = hashlib.sha256(BLOB).hexdigest()
RRDB_FIXTURE = (FIXTURES / "basicsr_x4_params_ema.pth").read_bytes()  # TINY RRDBNet x4, torch-written
SHA_RE = re.compile(r"^[0-9a-f]{64}$")


@pytest.fixture
def zoo(tmp_path, monkeypatch):
    """An empty cache in KERAS_ESRGAN_HOME, no mirror, and MODELS restored afterwards."""
    saved = dict(MODELS)
    home = tmp_path / "cache"
    monkeypatch.setenv("KERAS_ESRGAN_HOME", str(home))
    monkeypatch.delenv("KERAS_ESRGAN_MIRROR", raising=False)
    yield home
    MODELS.clear()
    MODELS.update(saved)


@pytest.fixture
def server():
    with ZooServer() as srv:
        yield srv


def _serve(server, name, data, path=None, sha256="auto", **fields):
    """Put `data` on the server and register it as model `name`."""
    path = path or f"/files/{name}.pth"
    server.files[path] = data
    sha = hashlib.sha256(data).hexdigest() if sha256 == "auto" else sha256
    fields.setdefault("size", len(data))
    return pretrained.register(name, url=server.url(path), sha256=sha, **fields)


def _cache_listing(home):
    return sorted(os.listdir(home)) if home.exists() else []


def _nothing_kept(home, entry):
    # Bookkeeping files (.lock, manifest.json) may exist; no trace of the model file may.
    return [n for n in _cache_listing(home) if entry.file_name in n] == []


# --- the built-in entries, as data -------------------------------------------------------------

RELEASE = re.compile(r"^https://github\.com/xinntao/Real-ESRGAN/releases/download/v[0-9.]+/(?P<file>[^/]+)$")


def test_builtin_entries_are_pinned_release_files():
    names = {"RealESRGAN_x4plus", "RealESRNet_x4plus", "RealESRGAN_x2plus", "RealESRGAN_x4plus_anime_6B",
             "realesr-animevideov3", "realesr-general-x4v3", "realesr-general-wdn-x4v3",
             "ESRGAN_SRx4_DF2KOST_official", "RealESRGAN_x4plus_netD", "RealESRGAN_x2plus_netD"}
    builtin = {e.name: e for e in pretrained.builtin_entries()}
    assert names <= set(builtin)
    for entry in builtin.values():
        match = RELEASE.match(entry.url)
        assert match and match["file"] == entry.file_name, entry.url
        assert entry.license in ("BSD-3-Clause", "Apache-2.0") and entry.description and entry.paper_or_source
        assert entry.digest_sources, f"{entry.name}: say where the digest comes from"
        if entry.sha256 is None:
            # No digest: the entry must say why, and is checked by layout and a size bound.
            assert "NONE" in entry.digest_sources[0] and entry.verify_layout and entry.max_size
        else:
            assert SHA_RE.match(entry.sha256)
        if any(word in " ".join(entry.digest_sources) for word in ("DISPUTED", "ONE public")):
            assert entry.verify_layout, f"{entry.name}: a weakly sourced digest must be backed by a layout check"
        assert entry.kind == ("discriminator" if entry.arch == "UNetDiscriminatorSN" else "generator")
    assert {e.sha256 for e in builtin.values() if e.sha256} and len({e.sha256 for e in builtin.values()
                                                                     if e.sha256}) == 8  # no copy-paste


def test_tags_and_architectures_of_builtin_entries():
    tags = {e.name: e.url.split("/")[-2] for e in pretrained.builtin_entries()}
    assert tags == {
        "RealESRGAN_x4plus": "v0.1.0", "RealESRNet_x4plus": "v0.1.1", "RealESRGAN_x2plus": "v0.2.1",
        "RealESRGAN_x4plus_anime_6B": "v0.2.2.4", "realesr-animevideov3": "v0.2.5.0",
        "realesr-general-x4v3": "v0.2.5.0", "realesr-general-wdn-x4v3": "v0.2.5.0",
        "ESRGAN_SRx4_DF2KOST_official": "v0.1.1", "RealESRGAN_x4plus_netD": "v0.2.2.3",
        "RealESRGAN_x2plus_netD": "v0.2.2.3",
    }
    m = MODELS
    assert m["RealESRGAN_x2plus"].scale == 2 and m["RealESRGAN_x4plus_anime_6B"].config["num_block"] == 6
    assert m["realesr-animevideov3"].config["num_conv"] == 16 and m["realesr-general-x4v3"].config["num_conv"] == 32
    assert m["RealESRGAN_x4plus_netD"].config == dict(num_in_ch=3, num_feat=64, skip_connection=True)
    assert m["RealESRGAN_x4plus_netD"].param_key == "params"


def test_df2kost_digest_matches_torch_hub_file_name_prefix():
    """torch.hub names a file <stem>-<first 8 hex digits of its SHA-256>.pth: a partial check."""
    entry = MODELS["ESRGAN_SRx4_DF2KOST_official"]
    assert entry.file_name == "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth"
    assert entry.sha256.startswith(re.search(r"-([0-9a-f]{8})\.pth$", entry.file_name)[1])


def test_interpolable_pairs_are_symmetric_and_share_the_architecture():
    pairs = {e.name: e.pair for e in MODELS.values() if e.pair}
    assert pairs["realesr-general-x4v3"] == "realesr-general-wdn-x4v3"
    assert pairs["RealESRNet_x4plus"] == "RealESRGAN_x4plus"
    for name, other in pairs.items():
        a, b = MODELS[name], MODELS[other]
        assert b.pair == name and (a.arch, a.config, a.scale) == (b.arch, b.config, b.scale)


def test_parameter_counts_match_real_networks():
    """count_params against Keras models built here, and hand sums for SRVGGNetCompact."""
    from keras_esrgan import RRDBNet, UNetDiscriminatorSN
    from keras_esrgan.pretrained.registry import ARCH_DEFAULTS

    for scale in (4, 2):
        net = RRDBNet(scale=scale, **TINY)
        net(np.zeros((1, 8, 8, 3), "float32"))
        assert pretrained.count_params("RRDBNet", {**ARCH_DEFAULTS["RRDBNet"], **TINY}, scale) == net.count_params()
    disc = UNetDiscriminatorSN(num_feat=8)
    trainable = sum(int(np.prod(v.shape)) for v in disc.trainable_weights)  # SN's u vectors excluded
    assert pretrained.count_params("UNetDiscriminatorSN", dict(num_in_ch=3, num_feat=8, skip_connection=True), 1) == trainable
    # SRVGGNetCompact(64 feat, 32 convs, x4): 3->64 conv, 33 PReLUs of 64, 32 64->64 convs, 64->48 conv.
    hand = (3 * 64 * 9 + 64) + 33 * 64 + 32 * (64 * 64 * 9 + 64) + (64 * 48 * 9 + 48)
    assert MODELS["realesr-general-x4v3"].params == hand == 1_213_296
    assert MODELS["realesr-animevideov3"].params == hand - 16 * (64 * 64 * 9 + 64 + 64) == 621_424
    assert MODELS["RealESRGAN_x4plus"].params == 16_697_987  # measured-facts.md
    assert MODELS["RealESRGAN_x4plus_netD"].params == 4_376_897  # torchinfo count published for it


# --- download: the right file ------------------------------------------------------------------

def test_download_verifies_caches_and_does_not_fetch_twice(zoo, server):
    entry = _serve(server, "standin", BLOB)
    path = pretrained.download("standin", progress=True)
    assert path == zoo / "standin.pth" and path.read_bytes() == BLOB
    record = json.loads((zoo / "manifest.json").read_text())["files"]["standin.pth"]
    assert record["sha256"] == BLOB_SHA and record["size"] == len(BLOB) and record["url"] == entry.url
    assert _cache_listing(zoo) == [".lock", "manifest.json", "standin.pth"]
    requests = len(server.log)
    assert pretrained.download("standin") == path and pretrained.resolve("standin") == path
    assert pretrained.is_cached("standin")
    assert len(server.log) == requests == 1


def test_cached_file_is_not_rehashed_when_size_and_mtime_match(zoo, server, monkeypatch):
    _serve(server, "standin", BLOB)
    pretrained.download("standin", progress=False)

    def no_hashing(*args):
        raise AssertionError("re-hashed a file whose manifest record matches")

    monkeypatch.setattr(transfer, "hash_file", no_hashing)
    assert pretrained.download("standin").read_bytes() == BLOB


def test_cache_dir_argument_and_list_models(zoo, server, tmp_path):
    _serve(server, "standin", BLOB)
    other = tmp_path / "elsewhere"
    assert pretrained.download("standin", cache_dir=other, progress=False) == other / "standin.pth"
    assert not zoo.exists()
    rows = {r["name"]: r for r in pretrained.list_models(cache_dir=other)}
    assert rows["standin"]["status"] == "cached" and rows["standin"]["cached"] is True
    assert rows["RealESRGAN_x4plus"]["status"] == "missing"
    assert rows["RealESRGAN_x4plus"]["params"] == 16_697_987 and rows["RealESRGAN_x4plus"]["size"] == 67_040_989
    assert set(rows["standin"]) == {"name", "arch", "kind", "scale", "params", "size", "cached", "status",
                                    "license", "pair", "description"}
    (other / "RealESRGAN_x4plus.pth").write_bytes(b"dropped")
    assert {r["name"]: r["status"] for r in pretrained.list_models(cache_dir=other)}["RealESRGAN_x4plus"] == "unverified"


# --- download: wrong files ---------------------------------------------------------------------

def test_wrong_digest_names_url_and_both_digests_and_keeps_nothing(zoo, server):
    pinned = hashlib.sha256(b"the real file").hexdigest()
    entry = _serve(server, "standin", BLOB, sha256=pinned)
    with pytest.raises(VerificationError) as err:
        pretrained.download("standin", progress=False)
    text = str(err.value)
    assert entry.url in text and pinned in text and BLOB_SHA in text and "nothing was kept" in text
    assert _nothing_kept(zoo, entry)
    assert not pretrained.is_cached("standin")


def test_mirror_with_wrong_file_says_to_check_the_mirror(zoo, server, monkeypatch):
    server.files["/m/RealESRGAN_x4plus.pth"] = BLOB
    monkeypatch.setenv("KERAS_ESRGAN_MIRROR", server.url("/m/"))
    MODELS["RealESRGAN_x4plus"] = dataclasses.replace(MODELS["RealESRGAN_x4plus"], size=len(BLOB))
    with pytest.raises(VerificationError, match="KERAS_ESRGAN_MIRROR") as err:
        pretrained.download("RealESRGAN_x4plus", progress=False)
    assert "4fa0d38905f75ac06eb49a7951b426670021be3018265fd191d2125df9d682f1" in str(err.value)
    assert _nothing_kept(zoo, MODELS["RealESRGAN_x4plus"])


def test_server_announcing_more_than_the_declared_size_is_refused(zoo, server):
    entry = _serve(server, "standin", BLOB, size=len(BLOB) - 1)
    with pytest.raises(DownloadError, match=r"sends 300,000 bytes but the model entry declares 299,999"):
        pretrained.download("standin", progress=False)
    assert _nothing_kept(zoo, entry)


def test_body_of_unknown_size_is_cut_at_the_bound(zoo, server):
    entry = _serve(server, "standin", BLOB, size=None, max_size=100_000)
    server.faults["/files/standin.pth"] = [("no_length",)]
    with pytest.raises(DownloadError, match=r"goes past the 100,000 bytes"):
        pretrained.download("standin", progress=False)
    assert _nothing_kept(zoo, entry)


def test_http_errors_are_clear(zoo, server):
    entry = _serve(server, "standin", BLOB)
    for code in (404, 500):
        server.faults["/files/standin.pth"] = [("status", code)]
        with pytest.raises(DownloadError, match=rf"HTTP {code} .*{re.escape(entry.url)}"):
            pretrained.download("standin", progress=False)
        assert _nothing_kept(zoo, entry)


def test_redirects_only_to_http(zoo, server):
    entry = _serve(server, "standin", BLOB)
    server.faults["/files/standin.pth"] = [("redirect", server.url("/other/standin.pth"))]
    server.files["/other/standin.pth"] = BLOB
    assert pretrained.download("standin", progress=False).read_bytes() == BLOB
    pretrained.download("standin", force=True, progress=False)
    for target in ("file:///etc/passwd", "ftp://127.0.0.1/standin.pth"):
        server.faults["/files/standin.pth"] = [("redirect", target)]
        with pytest.raises(DownloadError, match="refused"):
            pretrained.download("standin", force=True, progress=False)
        assert _nothing_kept(zoo, entry)


# --- interrupted downloads ---------------------------------------------------------------------

def test_interrupted_download_resumes_with_range(zoo, server):
    entry = _serve(server, "standin", BLOB)
    server.faults["/files/standin.pth"] = [("truncate", 120_000)]
    with pytest.raises(DownloadError, match=r"closed after 120,000 of 300,000 bytes.*run again to resume"):
        pretrained.download("standin", progress=False)
    part = zoo / "standin.pth.part"
    assert part.read_bytes() == BLOB[:120_000] and not (zoo / "standin.pth").exists()
    path = pretrained.download("standin", progress=True)
    assert path.read_bytes() == BLOB and not part.exists()
    assert _cache_listing(zoo) == [".lock", "manifest.json", "standin.pth"]
    resumed = server.log[-1]
    assert resumed["range"] == "bytes=120000-" and resumed["status"] == 206
    assert resumed["if_range"] == '"' + BLOB_SHA[:16] + '"'  # the ETag of the first response
    assert entry.sha256 == BLOB_SHA


def test_server_ignoring_range_restarts_cleanly(zoo, server):
    _serve(server, "standin", BLOB)
    server.faults["/files/standin.pth"] = [("truncate", 50_000), ("ignore_range",)]
    with pytest.raises(DownloadError):
        pretrained.download("standin", progress=False)
    path = pretrained.download("standin", progress=False)
    assert path.read_bytes() == BLOB  # not the 50,000 bytes twice
    assert server.log[-1]["range"] == "bytes=50000-" and server.log[-1]["status"] == 200


def test_changed_file_on_server_restarts_through_if_range(zoo, server):
    pretrained.register("standin", url=server.url("/files/standin.pth"), sha256=BLOB_SHA, size=len(BLOB))
    server.files["/files/standin.pth"] = BLOB[::-1]  # another version of the file
    server.faults["/files/standin.pth"] = [("truncate", 50_000)]
    with pytest.raises(DownloadError):
        pretrained.download("standin", progress=False)
    server.files["/files/standin.pth"] = BLOB  # the server now has the pinned one: new ETag
    assert pretrained.download("standin", progress=False).read_bytes() == BLOB
    assert server.log[-1]["status"] == 200  # If-Range did not match: whole file, not a mix


def test_part_file_of_unknown_origin_is_not_continued(zoo, server):
    _serve(server, "standin", BLOB)
    zoo.mkdir(parents=True)
    (zoo / "standin.pth.part").write_bytes(b"x" * 1000)  # no record of where it came from
    assert pretrained.download("standin", progress=False).read_bytes() == BLOB
    assert server.log[-1]["range"] is None


# --- offline -----------------------------------------------------------------------------------

def _closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_offline_error_says_where_to_put_the_file(zoo):
    url = f"http://127.0.0.1:{_closed_port()}/files/standin.pth"
    entry = pretrained.register("standin", url=url, sha256=BLOB_SHA, size=len(BLOB))
    started = time.monotonic()
    with pytest.raises(OfflineError) as err:
        pretrained.download("standin", progress=False)
    assert time.monotonic() - started < 10  # sanity bound only: refused connections fail at once
    text = str(err.value)
    assert url in text and BLOB_SHA in text and str(zoo / entry.file_name) in text
    assert "KERAS_ESRGAN_MIRROR" in text and "refused" in text.lower()
    assert _nothing_kept(zoo, entry)


def test_unresponsive_server_times_out(zoo):
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/x.pth"
        pretrained.register("standin", url=url, sha256=BLOB_SHA)
        with pytest.raises(OfflineError, match="timed out"):
            pretrained.download("standin", progress=False, timeout=0.5)


def test_file_put_in_the_cache_by_hand_is_verified_and_used(zoo):
    url = f"http://127.0.0.1:{_closed_port()}/files/standin.pth"  # offline
    pretrained.register("standin", url=url, sha256=BLOB_SHA, size=len(BLOB))
    zoo.mkdir(parents=True)
    (zoo / "standin.pth").write_bytes(BLOB)
    assert pretrained.resolve("standin") == zoo / "standin.pth"
    assert json.loads((zoo / "manifest.json").read_text())["files"]["standin.pth"]["url"] == "placed by hand"
    pretrained.register("other", url=url.replace("standin", "other"), sha256=BLOB_SHA, size=len(BLOB))
    (zoo / "other.pth").write_bytes(BLOB[:-1] + b"!")
    with pytest.raises(CorruptCacheError, match="not the file the entry names"):
        pretrained.download("other")
    assert (zoo / "other.pth").exists()  # never deleted behind the user's back


# --- corrupted cache ---------------------------------------------------------------------------

def test_corrupted_cache_file_is_detected_and_force_redownloads(zoo, server):
    _serve(server, "standin", BLOB)
    path = pretrained.download("standin", progress=False)
    damaged = bytearray(BLOB)
    damaged[1000] ^= 0xFF
    path.write_bytes(bytes(damaged))
    with pytest.raises(CorruptCacheError) as err:
        pretrained.download("standin")
    assert BLOB_SHA in str(err.value) and hashlib.sha256(damaged).hexdigest() in str(err.value)
    assert "force=True" in str(err.value) and path.read_bytes() == bytes(damaged)
    assert not pretrained.is_cached("standin")
    assert pretrained.download("standin", force=True, progress=False).read_bytes() == BLOB
    path.write_bytes(BLOB[:-10])
    with pytest.raises(CorruptCacheError, match=r"299,990 bytes, but standin has 300,000"):
        pretrained.download("standin")


def test_damaged_manifest_only_costs_a_rehash(zoo, server):
    _serve(server, "standin", BLOB)
    pretrained.download("standin", progress=False)
    (zoo / "manifest.json").write_text("{not json")
    assert pretrained.download("standin").read_bytes() == BLOB and len(server.log) == 1


# --- entries without a pinned digest: layout checks --------------------------------------------

def _unpinned(server, name, data, **fields):
    fields.setdefault("digest_sources", ("NONE: a test stand-in",))
    return _serve(server, name, data, sha256=None, size=None, max_size=10_000_000, **fields)


def test_unpinned_entry_is_checked_by_layout_then_pinned_by_first_download(zoo, server):
    _unpinned(server, "tiny", RRDB_FIXTURE, arch_kwargs=TINY, param_key="params_ema")
    with pytest.warns(UserWarning, match=hashlib.sha256(RRDB_FIXTURE).hexdigest()):
        path = pretrained.download("tiny", progress=False)
    assert path.read_bytes() == RRDB_FIXTURE
    from keras_esrgan import load_generator

    assert load_generator(path).config == dict(num_in_ch=3, num_out_ch=3, scale=4, **TINY)
    changed = bytearray(RRDB_FIXTURE)
    changed[len(changed) // 2] ^= 0xFF  # after the first download
    path.write_bytes(bytes(changed))
    with pytest.raises(CorruptCacheError, match="recorded at its first download"):
        pretrained.download("tiny")


@pytest.mark.parametrize("fields, message", [
    (dict(arch_kwargs=dict(TINY, num_block=3)), r"num_block=2 \(entry: 3\)"),
    (dict(arch_kwargs=TINY, scale=2), r"scale=4 \(entry: 2\)"),
    (dict(arch_kwargs=TINY, param_key="net_g"), r"no 'net_g' state dict"),
    (dict(arch="SRVGGNetCompact"), r"not an SRVGGNetCompact state dict"),
])
def test_unpinned_file_of_another_architecture_is_not_kept(zoo, server, fields, message):
    entry = _unpinned(server, "tiny", RRDB_FIXTURE, **fields)
    with pytest.raises(VerificationError, match=message):
        pretrained.download("tiny", progress=False)
    assert _nothing_kept(zoo, entry)


def test_unpinned_pickle_that_runs_code_is_refused(zoo, server, tmp_path):
    from tests.test_weights import _malicious_zip

    marker = tmp_path / "pwned"
    _malicious_zip(tmp_path / "evil.pth", f"touch {marker}")
    entry = _unpinned(server, "evil", (tmp_path / "evil.pth").read_bytes())
    with pytest.raises(VerificationError, match="refusing to unpickle"):
        pretrained.download("evil", progress=False)
    assert not marker.exists() and _nothing_kept(zoo, entry)


def _srvgg_state(num_feat=4, num_conv=2, upscale=2, rng=np.random.default_rng(0)):
    state, index = {}, 0
    widths = [(3, num_feat)] + [(num_feat, num_feat)] * num_conv + [(num_feat, 3 * upscale ** 2)]
    for i, (cin, cout) in enumerate(widths):
        state[f"body.{index}.weight"] = rng.standard_normal((cout, cin, 3, 3)).astype("float32")
        state[f"body.{index}.bias"] = rng.standard_normal(cout).astype("float32")
        if i < len(widths) - 1:
            state[f"body.{index + 1}.weight"] = np.full(num_feat, 0.25, "float32")  # PReLU slopes
        index += 2
    return state


def _unet_state(num_feat=4, rng=np.random.default_rng(0)):
    f = num_feat
    shapes = {"conv0": (f, 3, 3), "conv1": (2 * f, f, 4), "conv2": (4 * f, 2 * f, 4), "conv3": (8 * f, 4 * f, 4),
              "conv4": (4 * f, 8 * f, 3), "conv5": (2 * f, 4 * f, 3), "conv6": (f, 2 * f, 3),
              "conv7": (f, f, 3), "conv8": (f, f, 3), "conv9": (1, f, 3)}
    state = {}
    for name, (cout, cin, k) in shapes.items():
        w = rng.standard_normal((cout, cin, k, k)).astype("float32")
        if name in ("conv0", "conv9"):
            state[f"{name}.weight"], state[f"{name}.bias"] = w, np.zeros(cout, "float32")
        else:  # torch.nn.utils.spectral_norm's parametrisation
            state[f"{name}.weight_orig"] = w
            state[f"{name}.weight_u"] = np.ones(cout, "float32")
            state[f"{name}.weight_v"] = np.ones(cin * k * k, "float32")
    return state


def _safetensors_bytes(state, tmp_path):
    from keras_esrgan.weights import save_safetensors

    save_safetensors(state, tmp_path / "x.safetensors")
    return (tmp_path / "x.safetensors").read_bytes()


def test_compact_and_discriminator_layouts(zoo, server, tmp_path):
    compact = _safetensors_bytes(_srvgg_state(), tmp_path)
    kw = dict(num_feat=4, num_conv=2, upscale=2)
    _unpinned(server, "compact", compact, path="/f/compact.safetensors", arch="SRVGGNetCompact", arch_kwargs=kw, scale=2)
    with pytest.warns(UserWarning, match="no SHA-256 is pinned"):
        assert pretrained.download("compact", progress=False).read_bytes() == compact
    _unpinned(server, "compact3", compact, path="/f/compact3.safetensors", arch="SRVGGNetCompact",
              arch_kwargs=dict(kw, num_conv=3), scale=2)
    with pytest.raises(VerificationError, match=r"num_conv=2 \(entry: 3\)"):
        pretrained.download("compact3", progress=False)

    unet = _safetensors_bytes(_unet_state(), tmp_path)
    _unpinned(server, "disc", unet, path="/f/disc.safetensors", arch="UNetDiscriminatorSN",
              arch_kwargs=dict(num_feat=4), scale=1, kind="discriminator")
    with pytest.warns(UserWarning):
        assert pretrained.download("disc", progress=False).read_bytes() == unet
    _unpinned(server, "disc8", unet, path="/f/disc8.safetensors", arch="UNetDiscriminatorSN",
              arch_kwargs=dict(num_feat=8), scale=1, kind="discriminator")
    with pytest.raises(VerificationError, match=r"num_feat=4 \(entry: 8\)"):
        pretrained.download("disc8", progress=False)
    _unpinned(server, "notdisc", compact, path="/f/notdisc.safetensors", arch="UNetDiscriminatorSN", scale=1,
              kind="discriminator")
    with pytest.raises(VerificationError, match="not a UNetDiscriminatorSN"):
        pretrained.download("notdisc", progress=False)


# --- built-in entry through the mirror ---------------------------------------------------------

def test_builtin_entry_through_mirror(zoo, server, monkeypatch):
    monkeypatch.setenv("KERAS_ESRGAN_MIRROR", server.url("/mirror"))
    server.files["/mirror/realesr-general-x4v3.pth"] = BLOB
    MODELS["realesr-general-x4v3"] = dataclasses.replace(MODELS["realesr-general-x4v3"], sha256=BLOB_SHA,
                                                          size=len(BLOB))
    assert pretrained.source_url(MODELS["realesr-general-x4v3"]) == server.url("/mirror/realesr-general-x4v3.pth")
    path = pretrained.resolve("realesr-general-x4v3")
    assert path == zoo / "realesr-general-x4v3.pth" and path.read_bytes() == BLOB
    assert [r["path"] for r in server.log] == ["/mirror/realesr-general-x4v3.pth"]
    monkeypatch.setenv("KERAS_ESRGAN_MIRROR", "file:///srv/models/")
    with pytest.raises(ValueError, match="KERAS_ESRGAN_MIRROR must be an http"):
        pretrained.download("RealESRGAN_x4plus")


# --- cache location, resolve, register ---------------------------------------------------------

def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("KERAS_ESRGAN_HOME", "KERAS_HOME"):
        monkeypatch.delenv(var, raising=False)
    assert pretrained.cache_dir() == tmp_path / "home" / ".keras" / "keras_esrgan" / "models"
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "kh"))
    assert pretrained.cache_dir() == tmp_path / "kh" / "keras_esrgan" / "models"
    monkeypatch.setenv("KERAS_ESRGAN_HOME", str(tmp_path / "zoo"))
    assert pretrained.cache_dir() == tmp_path / "zoo"
    monkeypatch.setenv("KERAS_ESRGAN_HOME", "")  # empty means unset
    assert pretrained.cache_dir() == tmp_path / "kh" / "keras_esrgan" / "models"


def test_resolve_path_name_and_typo(zoo, server, tmp_path, monkeypatch):
    local = tmp_path / "RealESRGAN_x4plus"  # a file wins over a model of the same name
    local.write_bytes(b"mine")
    monkeypatch.chdir(tmp_path)
    assert pretrained.resolve("RealESRGAN_x4plus") == local.relative_to(tmp_path)
    assert pretrained.resolve(local) == local and server.log == []
    _serve(server, "standin", BLOB)
    assert pretrained.resolve("standin") == zoo / "standin.pth"
    with pytest.raises(UnknownModelError, match=r"Did you mean 'realesr-general-x4v3'") as err:
        pretrained.resolve("realesr-general-x4")
    assert isinstance(err.value, FileNotFoundError)
    with pytest.raises(FileNotFoundError, match=r"'RealESRNet_x4plus.pth' is neither.*Did you mean 'RealESRNet_x4plus'"):
        pretrained.resolve("RealESRNet_x4plus.pth")  # the file name of a model, not in this folder
    with pytest.raises(UnknownModelError, match="Registered names: .*RealESRGAN_x4plus"):
        pretrained.download("nothing-like-it")


def test_register_validates_its_arguments(zoo):
    good = dict(url="https://models.example.com/a.pth", sha256="a" * 64)
    for bad, message in [
        (dict(file_name="../a.pth"), "plain file name"),
        (dict(file_name=".hidden.pth"), "plain file name"),
        (dict(url="ftp://models.example.com/a.pth"), "http:// or https://"),
        (dict(sha256="abc"), "64 lowercase hex"),
        (dict(sha256=None), "needs a reason in digest_sources"),
        (dict(arch="ResNet"), "arch must be one of"),
        (dict(arch_kwargs=dict(num_blocks=3)), r"has no arguments \['num_blocks'\]"),
        (dict(size=-1), "size must be a positive int"),
    ]:
        with pytest.raises(ValueError, match=message):
            pretrained.register("mine", **{**good, **bad})
    entry = pretrained.register("mine", url=good["url"], sha256="A" * 64)
    assert entry.file_name == "a.pth" and entry.sha256 == "a" * 64 and entry.verify_layout is False
    with pytest.raises(ValueError, match="already registered"):
        pretrained.register("mine", **good)
    with pytest.raises(ValueError, match="already used by 'mine'"):
        pretrained.register("mine2", **good)
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.sha256 = "b" * 64
    with pytest.raises(TypeError):
        entry.arch_kwargs["num_block"] = 1
    assert pretrained.register("RealESRGAN_x4plus", url=good["url"].replace("a.pth", "x.pth"), sha256="b" * 64,
                               overwrite=True).file_name == "x.pth"


def test_manifest_records_are_only_trusted_for_their_pinned_digest(zoo, server):
    """A re-registered entry with another digest re-hashes the cached file (and refuses it)."""
    _serve(server, "standin", BLOB)
    pretrained.download("standin", progress=False)
    pretrained.register("standin", url=server.url("/files/standin.pth"), sha256="0" * 64, size=len(BLOB),
                        overwrite=True)
    with pytest.raises(CorruptCacheError, match="0{64}"):
        pretrained.download("standin")
    assert zoo_cache.read_manifest(zoo)["standin.pth"]["sha256"] == BLOB_SHA


def test_concurrent_downloads_fetch_once(zoo, server):
    """The cache lock serialises downloaders: the second waits, then finds the verified file."""
    import threading

    _serve(server, "standin", BLOB)
    results, errors = [], []

    def worker():
        try:
            results.append(pretrained.download("standin", progress=False).read_bytes())
        except Exception as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == [] and results == [BLOB] * 3
    assert len(server.log) == 1


# --- names in load_generator -------------------------------------------------------------------

def test_load_generator_takes_zoo_names(zoo, server, tmp_path):
    from keras_esrgan import load_generator
    from keras_esrgan.weights import WeightsFileError

    _serve(server, "tiny-x4", RRDB_FIXTURE, arch_kwargs=dict(num_feat=8, num_block=2, num_grow_ch=4))
    net = load_generator("tiny-x4")
    x = np.random.default_rng(0).random((1, 5, 6, 3), dtype=np.float32)
    want = load_generator(FIXTURES / "basicsr_x4_params_ema.pth")
    np.testing.assert_array_equal(net(x).numpy(), want(x).numpy())  # the same file, bit for bit
    assert load_generator("tiny-x4").config == want.config
    assert [r["path"] for r in server.log] == ["/files/tiny-x4.pth"]  # fetched once, then cached

    compact = _safetensors_bytes(_srvgg_state(upscale=3), tmp_path)
    _serve(server, "tiny-compact", compact, path="/f/tiny-compact.safetensors", arch="SRVGGNetCompact",
           arch_kwargs=dict(num_feat=4, num_conv=2, upscale=3), scale=3)
    assert load_generator("tiny-compact").config["upscale"] == 3
    _serve(server, "liar", compact, path="/f/liar.safetensors", scale=4)  # says RRDBNet x4
    with pytest.raises(WeightsFileError, match=r"liar: the registry says RRDBNet x4, but .*liar\.safetensors holds SRVGGNetCompact"):
        load_generator("liar")
    with pytest.raises(WeightsFileError, match=r"a UNetDiscriminatorSN discriminator.*load_discriminator\('RealESRGAN_x4plus_netD'\)"):
        load_generator("RealESRGAN_x4plus_netD")
    with pytest.raises(UnknownModelError, match="Did you mean 'tiny-x4'"):
        load_generator("tiny-x5")
    assert len(server.log) == 3  # no request for the discriminator or the typo


def test_readme_table_lists_every_model_as_the_registry_has_it():
    from tests.conftest import ROOT

    lines = ["| name | arch | scale | params | licence | what it is for |", "|---|---|---|---|---|---|"]
    for e in MODELS.values():
        scale = f"x{e.scale}" if e.kind == "generator" else "discriminator"
        lines.append(f"| `{e.name}` | {e.arch} | {scale} | {e.params:,} | {e.license} | {e.description} |")
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Pretrained models"):readme.index("### Weights files")]
    assert "\n".join(lines) in section
