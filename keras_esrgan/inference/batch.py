"""Upscaling many image files: folders (mirrored when recursive), output names and formats,
resumable runs, and decoding/encoding overlapped with the network.

`upscale_files(upscaler, ["photos/"], "out/", recursive=True)` is what `keras-esrgan upscale`
runs. It works in two phases:

1. **Plan** (header reads only): every input is probed (`keras_esrgan.images.probe_image`), its
   output path chosen (`output_path`), and checked against the memory budget
   (`Upscaler.check_memory`). An input whose output already exists is *skipped* (unless
   `overwrite=True`), so a big batch that was interrupted is resumed by running the same command
   again; an output that is one of the inputs, or that two inputs would both write, is an
   error for that input. Nothing is decoded yet.
2. **Run**: a small thread pool decodes the next images while the network runs on the current
   one, and another encodes and writes finished results while the network goes on (Pillow's and
   zlib's codecs and TensorFlow's kernels release the GIL). `depth` bounds what is in flight:
   at most `depth` decoded inputs wait for the network and `depth` results wait to be written.
   Outputs are written atomically (`keras_esrgan.atomic`); on Ctrl-C or SIGTERM the writes under
   way finish (each is a complete file or none), the queued ones are dropped, and the
   interruption goes on up.

One bad input (unreadable, too large, animated) is reported and the others go on;
`BatchSummary` says what was done, skipped and failed, the time and the pixels per second.
"""

import collections
import concurrent.futures
import dataclasses
import os
import sys
import time
from typing import NamedTuple

import tensorflow as tf

from keras_esrgan import images
from keras_esrgan.atomic import remove_stale_temp_files
from keras_esrgan.images import IMAGE_EXTENSIONS, shown

# Output formats `output_path` takes: "same" (or "auto") keeps the input's.
OUTPUT_EXTENSIONS = ("same", "auto", "png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff")
DEFAULT_QUALITY = 95
DEFAULT_DEPTH = 2
# What one input can fail with and still let the others run (TensorFlow's OpError: e.g. out of
# memory). Anything else is a bug and should show.
PER_IMAGE_ERRORS = (OSError, ValueError, TypeError, MemoryError, FloatingPointError, tf.errors.OpError)


class ImageSource(NamedTuple):
    """An input file and the folder its output goes to, relative to the output folder
    (`""` for the output folder itself; a recursive folder's subfolders mirror the input's)."""

    path: str
    relative: str = ""


def _hidden(name):
    return name.startswith(".")


def find_images(inputs, recursive=False, exclude=None):
    """The image files named by `inputs`: files as given, folders by their image files.

    Args:
        inputs: file and folder paths.
        recursive: also list subfolders, whose outputs then go to the same subfolders under the
            output folder (`ImageSource.relative`). Hidden files and folders are skipped.
        exclude: a folder never listed (the output folder, when it is inside an input folder,
            so that a rerun does not upscale earlier outputs).

    Folders are listed sorted, keeping files with an image extension (`IMAGE_EXTENSIONS`). Named
    files are kept whatever their extension (an unreadable one is reported when read). The same
    real path twice is kept once.

    Returns:
        `(sources, problems)`: a list of `ImageSource`, and messages for folders without images.

    Example:
    >>> from keras_esrgan.images import write_image
    >>> os.makedirs("album/2024", exist_ok=True)
    >>> write_image("album/a.png", np.zeros((4, 4, 3), np.uint8))
    >>> write_image("album/2024/b.png", np.zeros((4, 4, 3), np.uint8))
    >>> find_images(["album"], recursive=True)[0]
    [ImageSource(path='album/a.png', relative=''), ImageSource(path='album/2024/b.png', relative='2024')]
    """
    excluded = None if exclude is None else os.path.realpath(exclude)
    sources, problems, seen = [], [], set()
    for item in inputs:
        item = os.fspath(item)
        if os.path.isdir(item):
            found = []
            for folder, dirs, names in os.walk(item):
                dirs[:] = sorted(
                    d for d in dirs
                    if recursive and not _hidden(d)
                    and os.path.realpath(os.path.join(folder, d)) != excluded
                )
                relative = os.path.relpath(folder, item)
                relative = "" if relative == "." else relative
                found += [
                    ImageSource(os.path.join(folder, name), relative)
                    for name in sorted(names)
                    if not _hidden(name) and name.lower().endswith(IMAGE_EXTENSIONS)
                    and os.path.isfile(os.path.join(folder, name))
                ]
            if not found:
                kinds = ", ".join(IMAGE_EXTENSIONS)
                where = "this folder or its subfolders" if recursive else "this folder"
                problems.append(f"{shown(item)}: no image files ({kinds}) in {where}")
        else:
            found = [ImageSource(item, "")]
        for source in found:
            real = os.path.realpath(source.path)
            if real not in seen:
                seen.add(real)
                sources.append(source)
    return sources, problems


def output_path(path, image, outdir, suffix="out", ext="same", relative=""):
    """Where the result for `path` goes: `OUTDIR/<relative>/<stem>_<suffix>.<ext>`.

    `image` is the input array, or its `keras_esrgan.images.ImageInfo` (from the header).
    `ext="same"` (or `"auto"`) keeps the input's extension. PNG replaces it when the result could
    not be stored otherwise: 16-bit images (only PNG keeps 16 bits here), RGBA to JPEG, and GIF
    (which would quantize the result to 256 colours). `suffix=""` keeps the input's name.

    Example:
    >>> output_path("in/cat.jpg", np.zeros((4, 4, 3), np.uint8), "out")
    'out/cat_out.jpg'
    >>> output_path("in/2024/cat.png", np.zeros((4, 4, 4), np.uint8), "out", "x4", "jpg", "2024")
    'out/2024/cat_x4.png'
    """
    stem, in_ext = os.path.splitext(os.path.basename(path))
    ext = in_ext.lstrip(".").lower() if ext in ("same", "auto") else ext.lower()
    if hasattr(image, "channels"):
        dtype, channels = image.dtype, image.channels
    else:
        dtype, channels = str(image.dtype), (1 if image.ndim == 2 else image.shape[-1])
    if dtype == "uint16" or (channels == 4 and ext in ("jpg", "jpeg")) or ext == "gif":
        ext = "png"
    name = f"{stem}_{suffix}" if suffix else stem
    return os.path.join(outdir, relative, f"{name}.{ext}")


@dataclasses.dataclass
class BatchSummary:
    """What `upscale_files` did.

    Attributes:
        total: inputs. done: outputs written. skipped: inputs whose output existed (not redone).
        failed: inputs reported as errors (`errors`: one message each, naming the file).
        seconds: wall time. pixels: input pixels upscaled. written: the output paths, in order.
    """

    total: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    pixels: int = 0
    errors: list = dataclasses.field(default_factory=list)
    written: list = dataclasses.field(default_factory=list)

    @property
    def images_per_second(self):
        """Outputs written per second of wall time."""
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def pixels_per_second(self):
        """Input pixels upscaled per second of wall time."""
        return self.pixels / self.seconds if self.seconds > 0 else 0.0

    def line(self, outdir):
        """The one-line summary `keras-esrgan upscale` prints.

        Example:
        >>> BatchSummary(total=5, done=3, skipped=1, failed=1, seconds=2.0, pixels=3_000_000).line("out")
        '3 of 5 image(s) upscaled into out; 1 skipped (output exists: --overwrite redoes it); 1 failed; 2.0 s, 1.50 images/s, 1.50 Mpx/s of input'
        """
        text = f"{self.done} of {self.total} image(s) upscaled into {shown(outdir)}"
        if self.skipped:
            text += f"; {self.skipped} skipped (output exists: --overwrite redoes it)"
        if self.failed:
            text += f"; {self.failed} failed"
        return (f"{text}; {self.seconds:.1f} s, {self.images_per_second:.2f} images/s, "
                f"{self.pixels_per_second / 1e6:.2f} Mpx/s of input")


class _Job(NamedTuple):
    source: str
    output: str
    info: images.ImageInfo


def _message(path, err):
    message = getattr(err, "message", None) or str(err)
    return message if shown(path) in message else f"{shown(path)}: {message}"


def plan_outputs(upscaler, sources, outdir, *, suffix="out", ext="same", overwrite=False,
                 outscale=None):
    """Phase 1 of `upscale_files`: `(jobs, skipped, errors)` from the inputs' headers alone.

    `jobs` are the inputs to upscale, with their output paths; `skipped` the inputs whose output
    exists (with `overwrite=False`); `errors` `(path, message)` of the inputs that cannot be
    done (unreadable header, over the memory budget, an output that is an input or that another
    input also writes).
    """
    jobs, skipped, errors = [], [], []
    inputs = {os.path.realpath(s.path) for s in sources}
    planned = {}  # real output path -> the input it comes from
    for source in sources:
        path = source.path
        try:
            # The header first: what does not fit is refused before it is decoded.
            info = images.probe_image(path)
            out = output_path(path, info, outdir, suffix, ext, source.relative)
            real = os.path.realpath(out)
            if real in planned:
                raise FileExistsError(
                    f"its output {shown(out)} is also the output of {shown(planned[real])} (same "
                    "name); rename one or run them separately"
                )
            if not overwrite:
                if real in inputs:
                    raise FileExistsError(
                        f"its output {shown(out)} is an input (pass --overwrite to replace it)"
                    )
                if os.path.lexists(out):
                    skipped.append(path)
                    continue
            upscaler.check_memory(
                info.height, info.width, info.channels, info.dtype, outscale, name=shown(path)
            )
            planned[real] = path
            jobs.append(_Job(path, out, info))
        except PER_IMAGE_ERRORS as err:
            errors.append((path, _message(path, err)))
    return jobs, skipped, errors


def upscale_files(
    upscaler,
    inputs,
    outdir,
    *,
    recursive=False,
    suffix="out",
    ext="same",
    quality=DEFAULT_QUALITY,
    lossless=False,
    overwrite=False,
    strip_metadata=False,
    outscale=None,
    depth=DEFAULT_DEPTH,
    progress=True,
    report=None,
    started=None,
):
    """Upscale image files and folders into `outdir`, decoding and encoding beside the network.

    Args:
        upscaler: an `Upscaler` (or anything with its `__call__(image, outscale=)` and
            `check_memory`).
        inputs: files and folders (see `find_images`), or a list of `ImageSource`.
        outdir: the output folder (created, with the mirrored subfolders).
        recursive: list subfolders too and mirror them under `outdir`.
        suffix, ext: output names `<stem>_<suffix>.<ext>` (`output_path`; `ext` one of
            `OUTPUT_EXTENSIONS`).
        quality: JPEG/WebP quality (lossless WebP: compression effort).
        lossless: lossless WebP.
        overwrite: redo inputs whose output exists (and allow replacing inputs). Without it they
            are skipped, which makes an interrupted run resumable.
        strip_metadata: write no metadata. Otherwise the ICC profile, EXIF (orientation 1, new
            size) and PNG text of each input go to its output (`keras_esrgan.metadata`); EXIF
            orientation is applied on read either way.
        outscale: as for `Upscaler.__call__`.
        depth: images decoded ahead, and results waiting to be written, at most (each); 0 runs
            one image after the other in this thread. The memory budget checks one image's job:
            up to `2 * depth` more inputs/outputs are held beside it.
        progress: a tqdm bar on stderr (when it is a terminal).
        report: called with each error message (default: printed to stderr).
        started: `time.time()` when the run began (for removing temporary files a killed earlier
            run left; default: now).

    Returns:
        `BatchSummary`.

    Example:
    >>> from keras_esrgan.images import write_image
    >>> class Nearest2:  # stands for Upscaler(generator)
    ...     def check_memory(self, *args, **kwargs):
    ...         pass
    ...     def __call__(self, image, outscale=None):
    ...         return image.repeat(2, axis=0).repeat(2, axis=1)
    >>> os.makedirs("shots/day1", exist_ok=True)
    >>> write_image("shots/day1/a.jpg", np.zeros((4, 6, 3), np.uint8))
    >>> summary = upscale_files(Nearest2(), ["shots"], "big", recursive=True, ext="webp",
    ...                         lossless=True, progress=False)
    >>> summary.done, summary.written
    (1, ['big/day1/a_out.webp'])
    >>> upscale_files(Nearest2(), ["shots"], "big", recursive=True, ext="webp", progress=False).skipped
    1
    """
    from tqdm import tqdm

    start = time.perf_counter()
    started = time.time() if started is None else started
    if ext not in OUTPUT_EXTENSIONS:
        raise ValueError(f"ext must be one of {OUTPUT_EXTENSIONS}, got {ext!r}")
    if report is None:
        def report(message):
            tqdm.write(message, file=sys.stderr)  # above the progress bar
    if inputs and all(isinstance(s, ImageSource) for s in inputs):
        sources, problems = list(inputs), []
    else:
        sources, problems = find_images(inputs, recursive=recursive, exclude=outdir)
    summary = BatchSummary(total=len(sources))
    for message in problems:
        summary.failed += 1
        summary.errors.append(message)
        report(message)
    if not sources:
        return summary
    jobs, skipped, errors = plan_outputs(
        upscaler, sources, outdir, suffix=suffix, ext=ext, overwrite=overwrite, outscale=outscale
    )
    summary.skipped = len(skipped)
    bar = tqdm(total=len(jobs), unit="image", desc="upscale", disable=None if progress else True,
               file=sys.stderr)

    def fail(message):
        summary.failed += 1
        summary.errors.append(message)
        report(message)

    for _, message in errors:
        fail(message)
    for folder in sorted({os.path.dirname(job.output) for job in jobs}):
        os.makedirs(folder, exist_ok=True)
        removed = remove_stale_temp_files(folder, before=started)
        if removed:
            report(f"removed {len(removed)} temporary file(s) an interrupted run left in {shown(folder)}")

    def read(job):
        if strip_metadata:
            return images.read_image(job.source), None
        return images.read_image_with_metadata(job.source)

    def write(job, result, metadata):
        # Without overwrite the result never replaces a file that appeared meanwhile.
        images.write_image(job.output, result, quality=quality, overwrite=overwrite,
                           metadata=metadata, lossless=lossless)

    def finished(job, pixels):
        summary.done += 1
        summary.pixels += pixels
        summary.written.append(job.output)
        bar.update(1)

    if depth <= 0:  # one after the other, in this thread
        for job in jobs:
            bar.set_postfix_str(shown(os.path.basename(job.source)), refresh=False)
            try:
                pixels, metadata = read(job)
                write(job, upscaler(pixels, outscale=outscale), metadata)
                finished(job, job.info.width * job.info.height)
            except PER_IMAGE_ERRORS as err:
                fail(_message(job.source, err))
        bar.close()
        summary.seconds = time.perf_counter() - start
        return summary

    readers = concurrent.futures.ThreadPoolExecutor(depth, thread_name_prefix="decode")
    writers = concurrent.futures.ThreadPoolExecutor(depth, thread_name_prefix="encode")
    reads = collections.deque(readers.submit(read, job) for job in jobs[:depth])
    writes = collections.deque()

    def drain(wait):
        while writes and (wait or writes[0][1].done() or len(writes) > depth):
            job, future, pixels = writes.popleft()
            try:
                future.result()
                finished(job, pixels)
            except PER_IMAGE_ERRORS as err:
                fail(_message(job.source, err))

    try:
        for i, job in enumerate(jobs):
            future = reads.popleft()
            if i + depth < len(jobs):
                reads.append(readers.submit(read, jobs[i + depth]))
            bar.set_postfix_str(shown(os.path.basename(job.source)), refresh=False)
            try:
                pixels, metadata = future.result()
                result = upscaler(pixels, outscale=outscale)
            except PER_IMAGE_ERRORS as err:
                fail(_message(job.source, err))
                continue
            del pixels, future
            writes.append((job, writers.submit(write, job, result, metadata),
                           job.info.width * job.info.height))
            del result
            drain(wait=False)
        drain(wait=True)
    finally:
        # Interrupted or done: writes under way finish (complete files), queued ones are
        # dropped; the same for reads.
        for pool in (readers, writers):
            pool.shutdown(wait=True, cancel_futures=True)
        bar.close()
    summary.seconds = time.perf_counter() - start
    return summary
