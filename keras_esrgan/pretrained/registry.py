"""The model registry: what each named pretrained file is, where it comes from, how it is checked.

`MODELS` maps a name to a frozen `ModelEntry`. The built-in entries (see `catalog`) are the
Real-ESRGAN release files; `register` adds a user's own (an internal mirror, a training run).
"""

import dataclasses
import difflib
import os
import re
import types
import urllib.parse

ARCHS = ("RRDBNet", "SRVGGNetCompact", "UNetDiscriminatorSN")
KINDS = ("generator", "discriminator")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")

# Constructor defaults of each architecture (BasicSR's names), for the parameter count and the
# layout check: an entry's `arch_kwargs` only lists what differs.
ARCH_DEFAULTS = {
    "RRDBNet": dict(num_in_ch=3, num_out_ch=3, num_feat=64, num_block=23, num_grow_ch=32),
    "SRVGGNetCompact": dict(
        num_in_ch=3, num_out_ch=3, num_feat=64, num_conv=16, upscale=4, act_type="prelu"
    ),
    "UNetDiscriminatorSN": dict(num_in_ch=3, num_feat=64, skip_connection=True),
}


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One named pretrained file.

    Args:
        name: the registry key (`"RealESRGAN_x4plus"`).
        url: where the file is published (`https://...`); `KERAS_ESRGAN_MIRROR` replaces the host.
        sha256: 64 lowercase hex digits, or None when no digest could be pinned (then the file's
            layout is checked and the digest seen at first download is recorded; see
            `digest_sources`).
        file_name: the name in the cache and on a mirror.
        size: bytes, when known; a download is capped at it and a cached file must have it.
        arch: `"RRDBNet"`, `"SRVGGNetCompact"` or `"UNetDiscriminatorSN"`.
        arch_kwargs: constructor arguments that differ from `ARCH_DEFAULTS[arch]` (read-only).
        scale: output size / input size (1 for a discriminator).
        kind: `"generator"` or `"discriminator"`.
        license: SPDX identifier of the weights' licence as far as it is known.
        description: what the model is for.
        paper_or_source: paper or page the weights come from.
        digest_sources: where the pinned SHA-256 (or the reason for none) comes from.
        pair: the name of an entry of the same architecture it can be interpolated with.
        param_key: the checkpoint key holding the state dict (`"params_ema"`/`"params"`), when known.
        verify_layout: also parse the file after download and check it is `arch`; default: only
            when no SHA-256 is pinned.
        max_size: upper bound in bytes for a download when `size` is unknown.
    """

    name: str
    url: str
    sha256: str | None
    file_name: str
    arch: str
    scale: int
    size: int | None = None
    arch_kwargs: types.MappingProxyType = dataclasses.field(default_factory=dict)
    kind: str = "generator"
    license: str = "unknown"
    description: str = ""
    paper_or_source: str = ""
    digest_sources: tuple = ()
    pair: str | None = None
    param_key: str | None = None
    verify_layout: bool | None = None
    max_size: int | None = None

    def __post_init__(self):
        if not self.name or not isinstance(self.name, str) or os.sep in self.name or "/" in self.name:
            raise ValueError(f"model name must be a non-empty string without '/', got {self.name!r}")
        check_url(self.url, what=f"{self.name}: url")
        if self.sha256 is not None and not _SHA256.fullmatch(self.sha256):
            raise ValueError(
                f"{self.name}: sha256 must be 64 lowercase hex digits or None, got {self.sha256!r}"
            )
        if not _FILE_NAME.fullmatch(self.file_name) or ".." in self.file_name:
            # The name becomes a path in the cache: no folders, no hidden or parent names.
            raise ValueError(f"{self.name}: file_name must be a plain file name, got {self.file_name!r}")
        if self.file_name.endswith((".part", ".json", ".lock")):
            raise ValueError(f"{self.name}: file_name {self.file_name!r} ends like a cache bookkeeping file")
        if self.arch not in ARCHS:
            raise ValueError(f"{self.name}: arch must be one of {ARCHS}, got {self.arch!r}")
        if self.kind not in KINDS:
            raise ValueError(f"{self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        unknown = set(self.arch_kwargs) - set(ARCH_DEFAULTS[self.arch])
        if unknown:
            raise ValueError(f"{self.name}: {self.arch} has no arguments {sorted(unknown)}")
        for field in ("size", "max_size"):
            value = getattr(self, field)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{self.name}: {field} must be a positive int (bytes), got {value!r}")
        if not isinstance(self.scale, int) or self.scale < 1:
            raise ValueError(f"{self.name}: scale must be a positive int, got {self.scale!r}")
        object.__setattr__(self, "arch_kwargs", types.MappingProxyType(dict(self.arch_kwargs)))
        object.__setattr__(self, "digest_sources", tuple(self.digest_sources))
        if self.verify_layout is None:
            object.__setattr__(self, "verify_layout", self.sha256 is None)

    @property
    def config(self):
        """All constructor arguments of `arch` (defaults filled in), as a dict."""
        return {**ARCH_DEFAULTS[self.arch], **self.arch_kwargs}

    @property
    def params(self):
        """Number of parameters of the network the file holds, computed from `config`."""
        return count_params(self.arch, self.config, self.scale)


def check_url(url, what="url"):
    """Raise ValueError unless `url` is an absolute http(s) URL."""
    parts = urllib.parse.urlsplit(url) if isinstance(url, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{what} must be an http:// or https:// URL, got {url!r}")


def _conv(cin, cout, k=3, bias=True):
    return cin * cout * k * k + (cout if bias else 0)


def count_params(arch, config, scale):
    """Parameters of BasicSR's `arch` built with `config` (what PyTorch's `numel` sums to).

    Example:
    >>> count_params("RRDBNet", ARCH_DEFAULTS["RRDBNet"], 4)
    16697987
    """
    c = config
    if arch == "RRDBNet":
        nf, gc = c["num_feat"], c["num_grow_ch"]
        first_in = c["num_in_ch"] * {4: 1, 2: 4, 1: 16}[scale]
        rdb = sum(_conv(nf + i * gc, gc if i < 4 else nf) for i in range(5))
        return (
            _conv(first_in, nf)
            + c["num_block"] * 3 * rdb
            + 4 * _conv(nf, nf)  # conv_body, conv_up1, conv_up2, conv_hr
            + _conv(nf, c["num_out_ch"])
        )
    if arch == "SRVGGNetCompact":
        nf = c["num_feat"]
        act = nf if c["act_type"] == "prelu" else 0  # PReLU has one slope per channel
        return (
            _conv(c["num_in_ch"], nf) + act
            + c["num_conv"] * (_conv(nf, nf) + act)
            + _conv(nf, c["num_out_ch"] * c["upscale"] ** 2)
        )
    if arch == "UNetDiscriminatorSN":
        nf = c["num_feat"]
        widths = [(nf, 2 * nf, 4), (2 * nf, 4 * nf, 4), (4 * nf, 8 * nf, 4), (8 * nf, 4 * nf, 3),
                  (4 * nf, 2 * nf, 3), (2 * nf, nf, 3), (nf, nf, 3), (nf, nf, 3)]
        # conv1..conv8 are spectral-normalised and bias-free; conv0 and conv9 have biases.
        return (
            _conv(c["num_in_ch"], nf)
            + sum(_conv(i, o, k, bias=False) for i, o, k in widths)
            + _conv(nf, 1)
        )
    raise ValueError(f"unknown architecture {arch!r}")


MODELS = {}


def register(name, *, url, sha256, file_name=None, arch="RRDBNet", arch_kwargs=None, scale=4,
             overwrite=False, **fields):
    """Add a pretrained file to `MODELS` so every function taking a model name accepts `name`.

    Args:
        name: the new name.
        url: http(s) URL of the file.
        sha256: its SHA-256 (64 hex digits; compute it with `sha256sum`). None is accepted
            only with a reason in `digest_sources`; the file's layout is then checked instead.
        file_name: its name in the cache; default: the last part of the URL's path.
        arch, arch_kwargs, scale: the network the file holds (see `ModelEntry`).
        overwrite: replace an existing entry of that name (built-in ones included).
        **fields: any other `ModelEntry` field (`size`, `license`, `description`, `pair`, ...).

    Returns:
        The new `ModelEntry`.

    Example:
    >>> entry = register("my-x4", url="https://models.example.com/x4.pth", sha256="0" * 64,
    ...                  arch_kwargs=dict(num_block=6))
    >>> entry.file_name, entry.params
    ('x4.pth', 4467779)
    >>> del MODELS["my-x4"]
    """
    if name in MODELS and not overwrite:
        raise ValueError(f"a model named {name!r} is already registered; pass overwrite=True to replace it")
    if sha256 is None and not fields.get("digest_sources"):
        raise ValueError(
            f"{name}: sha256=None needs a reason in digest_sources=(...); pin the file's SHA-256 "
            "(sha256sum FILE) whenever you can"
        )
    if isinstance(sha256, str):
        sha256 = sha256.lower()
    if file_name is None:
        check_url(url, what=f"{name}: url")
        file_name = urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])
    entry = ModelEntry(
        name=name, url=url, sha256=sha256, file_name=file_name, arch=arch,
        arch_kwargs=dict(arch_kwargs or {}), scale=scale, **fields,
    )
    clash = [e.name for e in MODELS.values() if e.file_name == entry.file_name and e.name != name]
    if clash:
        raise ValueError(f"{name}: file_name {entry.file_name!r} is already used by {clash[0]!r}")
    MODELS[name] = entry
    return entry


def get(name):
    """The `ModelEntry` called `name`; `UnknownModelError` listing close names otherwise."""
    from keras_esrgan.pretrained.errors import UnknownModelError

    entry = MODELS.get(name) if isinstance(name, str) else None
    if entry is None:
        raise UnknownModelError(f"{name!r} is not a registered model name.{suggest(name)}")
    return entry


def suggest(text):
    """' Did you mean ...?' for names (or file names) close to `text`, with the list of names."""
    text = os.path.basename(str(text))
    by_lower = {n.lower(): n for n in MODELS}
    by_file = {e.file_name.lower(): e.name for e in MODELS.values()}
    key = text.lower()
    close = []
    if key in by_file:
        close.append(by_file[key])
    for candidates in (by_lower, by_file):
        close += [candidates[m] for m in difflib.get_close_matches(key, list(candidates), n=3, cutoff=0.6)]
    close = list(dict.fromkeys(close))[:3]
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"{hint} Registered names: {', '.join(sorted(MODELS))}."
