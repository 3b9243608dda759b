"""Pretrained models by name: a registry of Real-ESRGAN's release files, downloaded and verified.

`MODELS` maps names (`"RealESRGAN_x4plus"`, `"realesr-general-x4v3"`, ...) to frozen
`ModelEntry`s: URL, SHA-256, size, architecture and its arguments, scale, licence, and where the
digest comes from. `download(name)` fetches a file into the cache (`cache_dir()`:
`KERAS_ESRGAN_HOME`, default `~/.keras/keras_esrgan/models`) and checks it before use;
`resolve(name_or_path)` is what entry points taking weights call; `register` adds a user's own
files; `list_models` gives the rows of a model table.

Environment: `KERAS_ESRGAN_HOME` (cache folder), `KERAS_HOME` (Keras' home, when the former is
unset), `KERAS_ESRGAN_MIRROR=http://host/path/` (fetch `<mirror>/<file_name>` instead of the
release hosts, for air-gapped sites). Offline, a download fails within the connect timeout
(10 s) with the URL, the digest and where to put the file by hand.

Example:
>>> MODELS["realesr-general-x4v3"].arch, MODELS["realesr-general-x4v3"].params
('SRVGGNetCompact', 1213296)
>>> MODELS["realesr-general-x4v3"].pair
'realesr-general-wdn-x4v3'
"""

from keras_esrgan.pretrained.cache import cache_dir
from keras_esrgan.pretrained.catalog import builtin_entries
from keras_esrgan.pretrained.download import download, is_cached, list_models, resolve, source_url
from keras_esrgan.pretrained.errors import (
    CorruptCacheError,
    DownloadError,
    OfflineError,
    PretrainedError,
    UnknownModelError,
    VerificationError,
)
from keras_esrgan.pretrained.registry import MODELS, ModelEntry, count_params, get, register

for _entry in builtin_entries():
    MODELS[_entry.name] = _entry
del _entry

__all__ = [
    "CorruptCacheError",
    "DownloadError",
    "MODELS",
    "ModelEntry",
    "OfflineError",
    "PretrainedError",
    "UnknownModelError",
    "VerificationError",
    "cache_dir",
    "count_params",
    "download",
    "get",
    "is_cached",
    "list_models",
    "register",
    "resolve",
    "source_url",
]
