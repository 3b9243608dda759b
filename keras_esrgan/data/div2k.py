"""DIV2K (Agustsson & Timofte, NTIRE 2017) through tensorflow-datasets, failing fast offline.

tensorflow-datasets' `div2k/<degradation>_x<scale>` builders download four zips (train and
validation, HR and LR) from data.vision.ee.ethz.ch, check their SHA-256, and write TFRecords
under `data_dir`. Offline, tfds retries for minutes before failing, so `div2k()` first looks at
what is already there (a prepared dataset, the zips in `manual_dir` or in tfds' download cache)
and asks the server once, with a short timeout, only when something is missing. When the data
cannot be had it raises `DatasetNotFoundError` at once, saying which files to download and where
to put them.

Offline use: download the four zips listed in the error (for `bicubic_x4`: DIV2K_train_HR.zip,
DIV2K_valid_HR.zip, DIV2K_train_LR_bicubic_X4.zip, DIV2K_valid_LR_bicubic_X4.zip), put them
unchanged in one folder and pass it as `manual_dir` (default: `<data_dir>/downloads/manual`).
The first call builds the dataset in `data_dir` (TFRecords about as large as the zips: 4.3 GB
for bicubic_x4); later calls only read it.
"""

import os

import requests

import tensorflow as tf

from keras_esrgan.data.augment import mod_crop

HOST = "data.vision.ee.ethz.ch"
DEGRADATIONS = {
    "bicubic": (2, 3, 4, 8),
    "unknown": (2, 3, 4),
    "realistic_mild": (4,),
    "realistic_difficult": (4,),
    "realistic_wild": (4,),
}
SPLITS = {"train": "train", "validation": "validation", "valid": "validation", "val": "validation"}


class DatasetNotFoundError(FileNotFoundError):
    """A dataset that is neither prepared nor obtainable (offline, or files missing)."""


def _gb(size):
    return f"{int(size) / 1e9:.2f} GB"


def _reachable(url, timeout=5.0):
    """(True, "") if the server answers a HEAD request for `url` within `timeout` s, else (False, why).

    One request, no retries: this is what lets `div2k` fail in seconds rather than minutes.
    Proxies from the environment are honoured, as tfds' own downloads honour them.
    """

    try:
        response = requests.head(url, timeout=timeout, allow_redirects=True)
    except requests.RequestException as err:
        detail = str(err)
        return False, f"{type(err).__name__}: {detail[:200]}{'...' if len(detail) > 200 else ''}"
    if response.status_code >= 400:
        return False, f"HTTP {response.status_code}"
    return True, ""


def _in_download_cache(download_dir, url, url_info):
    """Whether tfds already downloaded `url` into its cache (so it will not download it again)."""
    try:
        from tensorflow_datasets.core.download import resource
    except ImportError:  # tfds internals moved: treat as not cached, the server check decides
        return False
    path = download_dir / resource.get_dl_fname(url, url_info.checksum)
    try:
        return resource.is_locally_cached(path)
    except (AttributeError, OSError):
        return False


def _missing_files(builder, manual_dir):
    """`(url, UrlInfo, problem)` for each zip that is neither in `manual_dir` nor cached."""
    infos = builder.url_infos or {}
    download_dir = builder.data_dir_root / "downloads"
    missing = []
    for url in sorted(set(builder.builder_config.download_urls.values())):
        info = infos.get(url)
        if info is None:  # unknown checksum: tfds must download it
            missing.append((url, None, "no registered checksum"))
            continue
        manual = manual_dir / info.filename
        if manual.exists():
            size = manual.stat().length  # epath: local or cloud paths
            if size == int(info.size):
                continue
            missing.append(
                (url, info, f"{manual} has {size:,} bytes, not {int(info.size):,} (incomplete download?)")
            )
        elif not _in_download_cache(download_dir, url, info):
            missing.append((url, info, "missing"))
    return missing


def _not_found_message(builder, degradation, scale, missing, manual_dir, reason):
    config = f"{degradation}_x{scale}"
    total = sum(int(info.size) for _, info, _ in missing if info is not None)
    lines = [
        f"DIV2K {config!r} is not prepared in {builder.data_path} and {reason}.",
        f"Download these {len(missing)} file(s) ({_gb(total)}) on a machine with network access:",
    ]
    for url, info, problem in missing:
        size = f" ({_gb(info.size)})" if info is not None else ""
        note = "" if problem == "missing" else f"  [{problem}]"
        lines.append(f"  {url}{size}{note}")
    lines.append(
        f"put them, unchanged, in {manual_dir} (or any folder, passed as manual_dir=...) and "
        f"call div2k() again: tensorflow-datasets checks their SHA-256 and builds the dataset "
        f"once under {builder.data_dir_root}."
    )
    if degradation in ("bicubic", "unknown") and scale <= 4:
        lines.append(
            "Already have the extracted PNG folders? Use keras_esrgan.data.image_folder("
            f"'DIV2K_train_HR', 'DIV2K_train_LR_{degradation}/X{scale}', scale={scale}) instead."
        )
    return "\n".join(lines)


def prepare_div2k(scale=4, degradation="bicubic", *, data_dir=None, manual_dir=None, download=True):
    """Make sure DIV2K `<degradation>_x<scale>` is prepared in `data_dir`; fail fast if it cannot be.

    Args: as `div2k`.

    Returns:
        the prepared tfds `DatasetBuilder`.

    Raises:
        DatasetNotFoundError: not prepared, files missing, and no download possible: in seconds,
            with the list of files to download and where to put them.
    """
    # tensorflow_datasets takes seconds to import and only DIV2K needs it: imported here.
    import tensorflow_datasets as tfds
    from etils import epath

    if degradation not in DEGRADATIONS or scale not in DEGRADATIONS[degradation]:
        options = ", ".join(f"{d} x{s}" for d, scales in DEGRADATIONS.items() for s in scales)
        raise ValueError(f"div2k: no DIV2K {degradation!r} x{scale} track; there are: {options}")
    config = f"{degradation}_x{scale}"
    builder = tfds.builder(f"div2k/{config}", data_dir=None if data_dir is None else os.fspath(data_dir))
    if builder.is_prepared():
        return builder
    manual = builder.data_dir_root / "downloads" / "manual"  # where tfds itself looks by default
    if manual_dir:
        manual = epath.Path(manual_dir).expanduser()
    missing = _missing_files(builder, manual)
    if missing:
        if not download:
            reason = "download=False"
        else:
            ok, why = _reachable(missing[0][0])
            reason = "" if ok else f"{HOST} cannot be reached ({why})"
        if reason:
            raise DatasetNotFoundError(
                _not_found_message(builder, degradation, scale, missing, manual, reason)
            )
    download_config = tfds.download.DownloadConfig(manual_dir=os.fspath(manual), try_download_gcs=False)
    builder.download_and_prepare(download_config=download_config)
    return builder


def div2k(
    split="train",
    scale=4,
    degradation="bicubic",
    *,
    data_dir=None,
    manual_dir=None,
    download=True,
    shuffle_files=False,
    seed=None,
):
    """DIV2K `(lr, hr)` full-image pairs from tensorflow-datasets.

    Args:
        split: `"train"` (800 images) or `"validation"` (100, also `"valid"`), with tfds
            slicing (`"train[:10]"`).
        scale: 2, 3, 4 or 8 (bicubic), 2-4 (unknown), 4 (realistic_*).
        degradation: `"bicubic"` (MATLAB imresize: the ESRGAN paper's data), `"unknown"`, or
            `"realistic_mild"` / `"realistic_difficult"` / `"realistic_wild"`.
        data_dir: where tfds keeps prepared datasets (default `~/tensorflow_datasets` or
            `$TFDS_DATA_DIR`).
        manual_dir: folder holding the downloaded DIV2K zips, used instead of downloading
            (default `<data_dir>/downloads/manual`).
        download: allow downloading what is missing (about 4.3 GB for bicubic_x4).
        shuffle_files: shuffle the TFRecord shards' order each epoch.
        seed: int seed for `shuffle_files`.

    Returns:
        `tf.data.Dataset` of `(lr, hr)` uint8 pairs, `(h, w, 3)` and `(scale * h, scale * w, 3)`
        (HR mod-cropped if needed), for `training_pipeline` / `validation_pipeline`.

    Raises:
        DatasetNotFoundError: (a FileNotFoundError) offline or files missing, within seconds.

    Example (`training_pipeline(div2k("train", scale=4, manual_dir="~/Downloads/div2k"),
    batch_size=16, patch_size=128)` once the zips are there; without them, at once):
    >>> train = div2k("train", scale=4, data_dir="tfds", manual_dir="div2k_zips", download=False)
    Traceback (most recent call last):
    ...
    keras_esrgan.data.div2k.DatasetNotFoundError: DIV2K 'bicubic_x4' is not prepared in ... and download=False...
    """
    import tensorflow_datasets as tfds  # seconds to import, only for DIV2K (see prepare_div2k)

    base, bracket, rest = split.partition("[")
    if base not in SPLITS:
        raise ValueError(f"div2k: split must be 'train' or 'validation' (tfds slicing allowed), got {split!r}")
    split = SPLITS[base] + bracket + rest
    builder = prepare_div2k(scale, degradation, data_dir=data_dir, manual_dir=manual_dir, download=download)
    ds = builder.as_dataset(
        split=split,
        as_supervised=True,
        shuffle_files=shuffle_files,
        read_config=tfds.ReadConfig(shuffle_seed=seed),
    )

    def align(lr, hr):
        hr = mod_crop(hr, scale)[: tf.shape(lr)[0] * scale, : tf.shape(lr)[1] * scale]
        lr.set_shape((None, None, 3))
        hr.set_shape((None, None, 3))
        return lr, hr

    return ds.map(align, num_parallel_calls=tf.data.AUTOTUNE)
