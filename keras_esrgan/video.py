"""Upscaling videos frame by frame through an `Upscaler`, resumable, with audio and subtitles kept.

`upscale_video("in.mp4", "out.mp4", Upscaler(...))` decodes the first video stream, runs every
frame through the upscaler (so a video gets the same tiling and precision as an image), encodes
the result, and copies the audio and subtitle streams packet for packet (not re-encoded: the
sound is bit-identical). Frames keep their timestamps, so the frame rate, the time base (where
the container can store it: MP4/MOV/NUT can, Matroska always uses milliseconds) and variable
frame rate survive as they were.

**Why PyAV (FFmpeg's libraries in a PyPI wheel) and not the `ffmpeg` program through pipes.**
`pip install keras-esrgan[video]` is the whole install on Linux, macOS and Windows, with no
system package to match. Working on packets and frames in-process is what the job needs: audio
and subtitle packets are copied with their exact timestamps, the video frames' own timestamps go
to the encoder (a pipe of raw frames has none, so variable frame rate would be lost and the time
base re-guessed), finished segments are joined by copying their packets, and errors come as
exceptions that name the file, instead of exit codes and a log to parse. FFmpeg's decoders and
encoders release the GIL, so they run in threads beside the network.

**How it runs.** Three stages overlap: a decoder thread (demux, decode, convert to RGB), the
caller's thread (the upscaler; TensorFlow releases the GIL while it computes), an encoder thread
(RGB to YUV, encode). Bounded queues between them keep a few frames in memory, not the video.

**Resumable.** Frames are encoded in closed segments of `segment_frames` frames (each starts with
a keyframe, so it decodes alone), each written to `workdir` under a temporary name, renamed when
complete and then recorded in `manifest.json` (written atomically). A rerun after a kill or a
crash skips the recorded segments (their frames are decoded, not upscaled: decoding is cheap
beside the network) and redoes at most the one that was in progress. The manifest holds a
fingerprint of the input (size, modification time, a hash of its first and last MiB, the stream
layout), of the upscaler (scale, tiling, precision, generator weights) and of the encoding
settings; a rerun that differs in any of them refuses to mix segments and says what differs.
When every segment is there, their packets are joined with the copied streams into the output,
written under a temporary name and renamed (`keras_esrgan.atomic`): there is never a half file
under the output's name. The workdir is then deleted.

**Refused, with a message that says so:** HDR video (PQ or HLG transfer: the networks are
trained on SDR sRGB images, and a tone-mapping choice is the user's), a missing, corrupt or
non-video input, an output container that cannot hold a stream (say, SubRip subtitles in MP4),
an existing output without `overwrite=True`. **Handled:** 10-bit (and 9 to 16-bit) SDR video
is upscaled in 16 bits (`Upscaler` takes uint16) and written as 10-bit (`yuv420p10le` by
default); rotation (a phone's display matrix) is copied to the output unchanged, so players
turn the upscaled video as they turned the input; the colour matrix, range, primaries and
transfer tags are carried over, and the YUV to RGB conversions use the input's matrix and range.
Dropped, with a warning: data streams (timecodes), attachments and further video streams
(cover art); the alpha channel of video with alpha.
"""

import contextlib
import dataclasses
import fractions
import hashlib
import heapq
import json
import logging
import os
import queue
import shutil
import struct
import threading

import numpy as np

from keras_esrgan.atomic import atomic_path, write_json

logger = logging.getLogger(__name__)

DEFAULT_CODEC = "libx264"
DEFAULT_CRF = 18  # x264/x265: visually lossless for most material
DEFAULT_SEGMENT_FRAMES = 96
MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
_HDR_TRANSFERS = {16: "PQ (SMPTE ST 2084)", 18: "HLG (ARIB STD-B67)"}  # AVColorTransferCharacteristic
_CRF_CODECS = ("libx264", "libx265", "libvpx-vp9", "libaom-av1", "libsvtav1")
_END = object()  # the end of the video
_ABORT = object()  # the caller's thread failed
# swscale's default YUV<->RGB conversion is biased: an RGB -> yuv420p -> RGB round trip of a smooth
# image came out 1.1 to 1.4 levels darker per channel (mean error, PyAV 18 / FFmpeg 8). Exact
# rounding and full chroma interpolation bring that to 0.03 (mean absolute error 1.5 -> 0.35).
_SWS_FLAGS = ("BILINEAR", "ACCURATE_RND", "FULL_CHR_H_INT", "FULL_CHR_H_INP")


class VideoError(ValueError):
    """A video that cannot be upscaled as asked (missing, corrupt, unsupported, or a workdir
    holding another run's segments)."""


def _av():
    # PyAV is the optional `video` extra: import it only here, with the install line if absent.
    try:
        import av
    except ImportError:
        raise ImportError(
            "video upscaling needs PyAV: pip install 'keras-esrgan[video]' (or pip install av)"
        ) from None
    return av


@dataclasses.dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` found in a video file.

    Attributes:
        path: the file.
        container: FFmpeg's container (demuxer) name, e.g. `"mov,mp4,m4a,3gp,3g2,mj2"`.
        width, height: frame size in pixels (as stored, before any display rotation).
        codec: the video codec's name, e.g. `"h264"`.
        pix_fmt: the decoded pixel format, e.g. `"yuv420p"`.
        bit_depth: bits per sample of the video (8, 10, ...).
        frames: frame count as the container states it, or None when it does not.
        fps: average frame rate as a `Fraction` (None if unknown).
        time_base: the video stream's time base as a `Fraction`.
        duration: seconds, or None.
        rotation: display rotation in degrees anticlockwise (0 when none).
        display_matrix: the 9 integers of the display matrix, or None.
        audio, subtitles: one short description per stream (`"aac 44100 Hz"`, `"mov_text"`).
        color: `(colorspace, color_range, color_primaries, color_trc)` as FFmpeg's numbers.
    """

    path: str
    container: str
    width: int
    height: int
    codec: str
    pix_fmt: str
    bit_depth: int
    frames: int | None
    fps: fractions.Fraction | None
    time_base: fractions.Fraction
    duration: float | None
    rotation: int = 0
    display_matrix: tuple | None = None
    audio: tuple = ()
    subtitles: tuple = ()
    color: tuple = (0, 0, 0, 0)


def _open_input(path):
    av = _av()
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such video file: {path}")
    if os.path.getsize(path) == 0:
        raise VideoError(f"{path}: empty file")
    try:
        return av.open(path)
    except av.error.FFmpegError as err:
        raise VideoError(f"{path}: not a video file FFmpeg can read ({_reason(err)})") from None


def _reason(err):
    return getattr(err, "strerror", None) or str(err)


def _first_frame(container, stream, path):
    av = _av()
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as err:
        raise VideoError(f"{path}: corrupt video, cannot decode its first frame ({_reason(err)})") from None
    raise VideoError(f"{path}: the video stream holds no frame that decodes")


def _display_matrix(frame):
    for data in frame.side_data:  # (its .values() fails in PyAV 18)
        if str(data.type).endswith("DISPLAYMATRIX") and len(bytes(data)) == 36:
            return struct.unpack("<9i", bytes(data))
    return None


def probe_video(path):
    """Read a video's layout and check that its first frame decodes.

    Args:
        path: str or PathLike to a video file (any container/codec FFmpeg reads).

    Returns:
        `VideoInfo` of the first video stream.

    Raises:
        FileNotFoundError: no such file.
        VideoError: not a media file, no video stream, or the first frame does not decode.

    Example:
    >>> import av
    >>> with av.open("clip.mp4", "w") as out:
    ...     s = out.add_stream("libx264", rate=12, width=64, height=48, pix_fmt="yuv420p")
    ...     for i in range(3):
    ...         frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
    ...         out.mux(s.encode(frame))
    ...     out.mux(s.encode())
    >>> info = probe_video("clip.mp4")
    >>> info.width, info.height, info.frames, info.fps, info.codec
    (64, 48, 3, Fraction(12, 1), 'h264')
    """
    path = os.fspath(path)
    with _open_input(path) as container:
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no streams"]
            raise VideoError(f"{path}: no video stream (it holds {', '.join(kinds)})")
        stream = container.streams.video[0]
        frame = _first_frame(container, stream, path)
        fmt = frame.format
        depth = max(c.bits for c in fmt.components) if fmt.components else 8
        matrix = _display_matrix(frame)
        rate = stream.average_rate or stream.guessed_rate
        audio = tuple(
            f"{s.codec_context.name} {s.codec_context.sample_rate} Hz" for s in container.streams.audio
        )
        subtitles = tuple(s.codec_context.name for s in container.streams.subtitles)
        duration = None
        if stream.duration is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        return VideoInfo(
            path=path,
            container=container.format.name,
            width=stream.codec_context.width,
            height=stream.codec_context.height,
            codec=stream.codec_context.name,
            pix_fmt=fmt.name,
            bit_depth=depth,
            frames=stream.frames or None,
            fps=fractions.Fraction(rate) if rate else None,
            time_base=fractions.Fraction(stream.time_base),
            duration=duration,
            rotation=int(round(frame.rotation)) if matrix else 0,
            display_matrix=matrix,
            audio=audio,
            subtitles=subtitles,
            color=(
                int(frame.colorspace), int(frame.color_range), int(frame.color_primaries),
                int(frame.color_trc),
            ),
        )


# --- fingerprints --------------------------------------------------------------------------


def _file_fingerprint(path):
    """Size, mtime and a hash of the first and last MiB: the same file, without reading it all."""
    stat = os.stat(path)
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(1 << 20))
        if stat.st_size > 2 << 20:
            fh.seek(-(1 << 20), os.SEEK_END)
            digest.update(fh.read())
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256_ends": digest.hexdigest()}


def upscaler_fingerprint(upscaler):
    """What identifies an upscaler's output, for telling runs apart.

    An object with a `fingerprint` attribute (a string, or a method returning one) gives that.
    Otherwise: its class, `scale` and the tiling/precision settings an `Upscaler` has, plus the
    generator's architecture and a SHA-256 of its weights (about 0.1 s for the full model).

    Example:
    >>> class Nearest2:
    ...     scale, fingerprint = 2, "nearest x2"
    >>> upscaler_fingerprint(Nearest2())
    {'scale': 2, 'fingerprint': 'nearest x2'}
    """
    own = getattr(upscaler, "fingerprint", None)
    if own is not None:  # the object's own word for what it computes, whatever its class
        return {"scale": int(upscaler.scale), "fingerprint": str(own() if callable(own) else own)}
    out = {"class": type(upscaler).__name__, "scale": int(upscaler.scale)}
    for name in ("precision", "tile", "tile_pad", "blend", "max_tile_pixels", "alpha_mode", "tta"):
        if hasattr(upscaler, name):
            out[name] = getattr(upscaler, name)
    generator = getattr(upscaler, "generator", None)
    if generator is not None and hasattr(generator, "get_weights"):
        digest = hashlib.sha256()
        for weight in generator.get_weights():
            digest.update(np.ascontiguousarray(weight).tobytes())
        out["generator"] = type(generator).__name__
        out["config"] = getattr(generator, "config", None) or generator.get_config()
        out["weights_sha256"] = digest.hexdigest()
    return json.loads(json.dumps(out, default=str))


# --- the run -------------------------------------------------------------------------------


@dataclasses.dataclass
class VideoResult:
    """What `upscale_video` did.

    Attributes:
        output: the file written. frames: frames in it. upscaled: frames upscaled by this call
        (the others came from segments of an earlier, interrupted run). segments: how many.
        seconds: wall time of the call. fps: upscaled frames per second of this call.
    """

    output: str
    frames: int
    upscaled: int
    segments: int
    seconds: float
    fps: float


class _Pipeline:
    """The three threads and the queues between them; the first error stops all of them."""

    def __init__(self, depth):
        self.decoded = queue.Queue(depth)
        self.upscaled = queue.Queue(depth)
        self.stop = threading.Event()
        self.errors = []

    def put(self, q, item):
        while not self.stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(self, q):
        while not self.stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def run(self, target, *args):
        def guarded():
            try:
                target(*args)
            except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
                self.errors.append(err)
                self.stop.set()

        thread = threading.Thread(target=guarded, daemon=True)
        thread.start()
        return thread


def _segment_name(index):
    return f"segment_{index:06d}.packets"


def _settings(info, upscaler, codec, crf, pix_fmt, options, segment_frames):
    return {
        "version": MANIFEST_VERSION,
        "input": _file_fingerprint(info.path),
        "stream": [info.width, info.height, info.pix_fmt, str(info.time_base), str(info.fps)],
        "upscaler": upscaler_fingerprint(upscaler),
        "encoding": {
            "codec": codec, "crf": crf, "pix_fmt": pix_fmt, "options": dict(sorted(options.items())),
            "segment_frames": segment_frames,
        },
    }


def _load_manifest(workdir, settings):
    """Finished segments `{index: frames}` recorded in `workdir` by a run with `settings`."""
    path = os.path.join(workdir, MANIFEST)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            manifest = json.load(fh)
        recorded, segments = manifest["settings"], manifest["segments"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise VideoError(f"{path}: unreadable manifest ({err}); delete {workdir} to start again") from None
    if recorded != settings:
        differ = sorted(k for k in set(settings) | set(recorded) if settings.get(k) != recorded.get(k))
        raise VideoError(
            f"{workdir} holds segments of another run (it differs in: {', '.join(differ)}); "
            "they cannot be mixed with this one. Delete that folder, or pass another workdir"
        )
    done = {}
    for key, entry in segments.items():
        file = os.path.join(workdir, _segment_name(int(key)))
        # A segment whose file is gone or changed is redone, not trusted.
        if os.path.isfile(file) and os.path.getsize(file) == entry["bytes"]:
            done[int(key)] = entry
    return done


def _output_options(codec, crf, options):
    opts = {str(k): str(v) for k, v in (options or {}).items()}
    if crf is not None and codec in _CRF_CODECS:
        opts.setdefault("crf", str(crf))
        if codec == "libvpx-vp9":
            opts.setdefault("b", "0")  # constant quality, as the CRF means
    return opts


def _default_pix_fmt(codec, bit_depth):
    av = _av()
    formats = [f.name for f in (av.codec.Codec(codec, "w").video_formats or ())]
    for name in (("yuv420p10le",) if bit_depth > 8 else ()) + ("yuv420p",):
        if name in formats:
            return name
    if formats:
        return formats[0]
    raise VideoError(f"codec {codec!r} lists no pixel format")


def _configure(ctx, info, size, pix_fmt, options):
    """The encoder settings, one place for the segments' encoders and the output's stream."""
    ctx.width, ctx.height = size
    ctx.pix_fmt = pix_fmt
    # The encoder counts in the input's time base, so each frame keeps its timestamp exactly.
    ctx.time_base = info.time_base
    ctx.framerate = info.fps or fractions.Fraction(25)
    ctx.options = dict(options)
    ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc = info.color


def _add_video_stream(container, codec, info, size, pix_fmt, options):
    stream = container.add_stream(codec, rate=info.fps or 25)
    stream.time_base = info.time_base
    _configure(stream.codec_context, info, size, pix_fmt, options)
    return stream


def upscale_video(
    input_path,
    output_path,
    upscaler,
    *,
    codec=DEFAULT_CODEC,
    crf=DEFAULT_CRF,
    pix_fmt=None,
    encoder_options=None,
    segment_frames=DEFAULT_SEGMENT_FRAMES,
    workdir=None,
    overwrite=False,
    progress=True,
    queue_size=4,
):
    """Upscale every frame of a video, keep its audio, subtitles and timing; resumable.

    Args:
        input_path: the video (any container and codec FFmpeg reads).
        output_path: the file to write; the container follows its extension (.mp4, .mkv,
            .mov, .webm, ...).
        upscaler: an `Upscaler` (or any object with `scale` and `__call__(uint8 (H, W, 3)) ->
            (scale*H, scale*W, 3)`, uint16 too for 10-bit video).
        codec: FFmpeg video encoder name: `"libx264"` (default), `"libx265"`, `"libvpx-vp9"`,
            `"ffv1"` (lossless), ...
        crf: constant-quality level for the x264/x265/VP9/AV1 encoders (lower is better;
            None: the encoder's default). Ignored by other codecs.
        pix_fmt: output pixel format; default `yuv420p`, or `yuv420p10le` for >8-bit input.
        encoder_options: more FFmpeg encoder options, e.g. `{"preset": "slow"}`.
        segment_frames: frames per resumable segment (each starts with a keyframe).
        workdir: folder for segments and the manifest; default `<output>.parts` beside the
            output. Deleted when the output is complete.
        overwrite: replace an existing output (otherwise FileExistsError).
        progress: show a tqdm bar with frames/s and the time left.
        queue_size: frames buffered between decoder, upscaler and encoder.

    Returns:
        `VideoResult` (frames written, frames upscaled by this call, frames/s, ...).

    Raises:
        FileNotFoundError: no input. FileExistsError: the output exists and not `overwrite`.
        VideoError: corrupt or non-video input, HDR input, an output container that cannot
            hold a stream, a workdir with another run's segments, an upscaler of wrong output.

    Example:
    >>> class Nearest2:  # stands for Upscaler(generator)
    ...     scale = 2
    ...     def __call__(self, image):
    ...         return image.repeat(2, axis=0).repeat(2, axis=1)
    >>> probe_video("clip.mp4").frames  # made in probe_video's example
    3
    >>> result = upscale_video("clip.mp4", "clip_x2.mp4", Nearest2(), progress=False)
    >>> result.frames, probe_video("clip_x2.mp4").width
    (3, 128)
    """
    import time

    av = _av()
    start = time.perf_counter()
    input_path, output_path = os.fspath(input_path), os.fspath(output_path)
    info = probe_video(input_path)
    if os.path.exists(output_path) and not overwrite:
        raise FileExistsError(f"{output_path} exists; pass overwrite=True to replace it")
    if os.path.abspath(output_path) == os.path.abspath(input_path):
        raise VideoError(f"{output_path}: the output cannot be the input")
    if info.color[3] in _HDR_TRANSFERS:
        raise VideoError(
            f"{input_path}: HDR video ({_HDR_TRANSFERS[info.color[3]]} transfer) is not supported: "
            "the models are trained on SDR images. Tone-map it to SDR first (for example "
            "ffmpeg -vf zscale=t=linear,tonemap=hable,zscale=t=bt709:m=bt709:p=bt709)"
        )
    if int(segment_frames) < 1:
        raise ValueError(f"segment_frames must be at least 1, got {segment_frames!r}")
    segment_frames = int(segment_frames)
    scale = int(upscaler.scale)
    size = (info.width * scale, info.height * scale)
    wide = info.bit_depth > 8
    rgb = "rgb48le" if wide else "rgb24"
    try:
        pix_fmt = pix_fmt or _default_pix_fmt(codec, info.bit_depth)
    except av.error.FFmpegError as err:  # unknown encoder name
        raise VideoError(f"unknown video codec {codec!r} ({_reason(err)})") from None
    options = _output_options(codec, crf, encoder_options)
    workdir = os.fspath(workdir) if workdir else f"{output_path}.parts"
    settings = _settings(info, upscaler, codec, crf, pix_fmt, options, segment_frames)
    done = _load_manifest(workdir, settings)
    fresh = not os.path.isdir(workdir)
    try:
        copied, global_header = _check_output(
            output_path, workdir, info, codec, size, pix_fmt, options
        )
    except BaseException:
        if fresh:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    os.makedirs(workdir, exist_ok=True)
    manifest = {"settings": settings, "segments": {str(k): v for k, v in sorted(done.items())}}
    write_json(os.path.join(workdir, MANIFEST), manifest)

    total = info.frames
    if total is None and info.duration and info.fps:  # Matroska: no count in the header
        total = round(info.duration * info.fps)  # an estimate (the duration may be audio's)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        skipped = sum(v["frames"] for v in done.values())
        bar = tqdm(total=total, initial=skipped, unit="frame", desc=os.path.basename(input_path))
    pipe = _Pipeline(max(1, int(queue_size)))
    count = {"frames": 0, "upscaled": 0, "segments": 0}
    decoder = pipe.run(_decode, pipe, input_path, info, segment_frames, done, rgb, count)
    encoder = pipe.run(
        _encode, pipe, workdir, manifest, info, codec, size, pix_fmt, options, rgb, count,
        global_header,
    )
    try:
        while True:
            item = pipe.get(pipe.decoded)
            if item is _END:
                break
            index, pts, image = item
            out = upscaler(image)
            if not (isinstance(out, np.ndarray) and out.shape == (size[1], size[0], 3)
                    and out.dtype == image.dtype):
                got = getattr(out, "shape", type(out).__name__), getattr(out, "dtype", "")
                raise VideoError(
                    f"the upscaler returned {got[0]} {got[1]} for a {image.shape} {image.dtype} "
                    f"frame; expected ({size[1]}, {size[0]}, 3) {image.dtype}"
                )
            count["upscaled"] += 1
            if not pipe.put(pipe.upscaled, (index, pts, out)):
                break
            if bar is not None:
                bar.update(1)
        pipe.put(pipe.upscaled, _END)
        decoder.join()
        encoder.join()
    except BaseException:
        # Let the encoder finish the segments whose frames it has, then stop everything.
        pipe.put(pipe.upscaled, _ABORT)
        encoder.join()
        pipe.stop.set()
        decoder.join()
        raise
    finally:
        if bar is not None:
            if not pipe.errors and bar.total != count["frames"]:
                bar.total = count["frames"]  # the estimate from the duration was off
                bar.refresh()
            bar.close()
    if pipe.errors:
        raise pipe.errors[0]
    frames = count["frames"]
    if frames == 0:
        raise VideoError(f"{input_path}: no video frame decoded")
    segments = -(-frames // segment_frames)
    _join(output_path, workdir, segments, info, codec, size, pix_fmt, options, copied)
    shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.perf_counter() - start
    return VideoResult(
        output=output_path, frames=frames, upscaled=count["upscaled"], segments=segments,
        seconds=seconds, fps=count["upscaled"] / seconds if seconds > 0 else 0.0,
    )


def _copied_streams(container, path):
    """Audio and subtitle streams to copy; the others are dropped with a warning."""
    keep, video = [], container.streams.video[0]
    for stream in container.streams:
        if stream is video:
            continue
        if stream.type in ("audio", "subtitle"):
            keep.append(stream)
        else:
            logger.warning("%s: stream #%d (%s %s) is not copied", path, stream.index, stream.type,
                           getattr(stream.codec_context, "name", "?") if stream.codec_context else "?")
    return keep


def _check_output(output_path, workdir, info, codec, size, pix_fmt, options):
    """Open the output's container with every stream before any frame is upscaled, so a codec,
    option or stream the container cannot take fails now, not after hours of compute. Returns
    the indices of the input streams to copy."""
    av = _av()
    os.makedirs(workdir, exist_ok=True)
    probe = os.path.join(workdir, "probe" + os.path.splitext(output_path)[1])
    with _open_input(info.path) as source:
        streams = _copied_streams(source, info.path)
        try:
            out = av.open(probe, "w")
        except (av.error.FFmpegError, ValueError) as err:
            raise VideoError(
                f"{output_path}: no container for the extension "
                f"{os.path.splitext(output_path)[1] or '(none)'!r} ({_reason(err)})"
            ) from None
        what = f"the video encoder {codec!r} ({pix_fmt}, {size[0]}x{size[1]}, {options})"
        try:
            video = _add_video_stream(out, codec, info, size, pix_fmt, options)
            for stream in streams:
                what = f"stream #{stream.index} ({stream.type} {stream.codec_context.name})"
                out.add_stream_from_template(stream)
            what = "these streams together"
            out.start_encoding()
            frame = av.VideoFrame(size[0], size[1], pix_fmt)
            frame.pts = 0
            video.encode(frame)  # opens the encoder with the real options
        except (av.error.FFmpegError, ValueError, TypeError) as err:
            raise VideoError(
                f"{output_path}: the {out.format.name} container or encoder cannot take {what} "
                f"({_reason(err)}); choose another output extension (.mkv holds nearly "
                "everything), codec or option"
            ) from None
        finally:
            with contextlib.suppress(Exception):
                out.close()
            with contextlib.suppress(OSError):
                os.remove(probe)
        global_header = bool(out.format.flags & av.format.Flags.global_header.value)
        return [s.index for s in streams], global_header


def _interpolation():
    from av.video.reformatter import Interpolation

    flags = Interpolation[_SWS_FLAGS[0]]
    for name in _SWS_FLAGS[1:]:
        flags |= Interpolation[name]
    return flags


def _decode(pipe, path, info, segment_frames, done, rgb, count):
    av = _av()
    interpolation = _interpolation()
    with _open_input(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        period = (1 / info.fps / info.time_base) if info.fps else 1
        index = -1
        try:
            for frame in container.decode(stream):
                if pipe.stop.is_set():
                    return
                index += 1
                count["frames"] = index + 1
                if index // segment_frames in done:
                    continue  # a finished segment: decoded to keep count, not upscaled
                pts = frame.pts if frame.pts is not None else int(round(index * period))
                image = frame.to_ndarray(
                    format=rgb, src_color_range=frame.color_range or None,
                    interpolation=interpolation,
                )
                if not pipe.put(pipe.decoded, (index, pts, image)):
                    return
        except av.error.FFmpegError as err:
            raise VideoError(
                f"{path}: corrupt video, decoding stopped after frame {index + 1} ({_reason(err)})"
            ) from None
    pipe.put(pipe.decoded, _END)


_SEGMENT_MAGIC = b"KERAS-ESRGAN-SEGMENT-1\n"
_PACKET = struct.Struct("<qqqBI")  # pts, dts, duration, keyframe, size
_NONE = -(1 << 63)


class _SegmentWriter:
    """One segment's encoded packets, in a file of their own (a temporary name until complete).

    Not a media container: NUT loses the decode timestamps of B-frame streams, Matroska rounds
    timestamps to milliseconds, MP4 shifts them with edit lists. This keeps each packet's
    pts/dts/duration/keyframe flag and bytes exactly as the encoder gave them, with the
    encoder's global headers (extradata), so joining is a plain copy."""

    def __init__(self, workdir, index, info, codec, size, pix_fmt, options, global_header):
        av = _av()
        self.index = index
        self.final = os.path.join(workdir, _segment_name(index))
        self.tmp = self.final + ".tmp"
        self.encoder = av.CodecContext.create(codec, "w")
        _configure(self.encoder, info, size, pix_fmt, options)
        if global_header:
            self.encoder.flags |= av.codec.context.Flags.global_header.value
        self.file = open(self.tmp, "wb")
        self.file.write(_SEGMENT_MAGIC)
        self.frames = 0

    def _write(self, packets):
        for packet in packets:
            data = bytes(packet)
            self.file.write(_PACKET.pack(
                _NONE if packet.pts is None else packet.pts,
                _NONE if packet.dts is None else packet.dts,
                packet.duration or 0, int(packet.is_keyframe), len(data),
            ))
            self.file.write(data)

    def write(self, frame):
        self._write(self.encoder.encode(frame))
        self.frames += 1

    def finish(self):
        self._write(self.encoder.encode(None))
        trailer = json.dumps({
            "frames": self.frames, "time_base": str(self.encoder.time_base),
            "extradata": (self.encoder.extradata or b"").hex(),
        }).encode()
        self.file.write(_PACKET.pack(_NONE, _NONE, 0, 0, 0xFFFFFFFF) + trailer)
        self.file.write(len(trailer).to_bytes(4, "little"))
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        os.replace(self.tmp, self.final)
        return {"frames": self.frames, "bytes": os.path.getsize(self.final)}

    def abandon(self):
        with contextlib.suppress(Exception):
            self.file.close()
        with contextlib.suppress(OSError):
            os.remove(self.tmp)


def _segment_header(path):
    """The JSON trailer of a finished segment file (frames, time base, extradata)."""
    with open(path, "rb") as fh:
        if fh.read(len(_SEGMENT_MAGIC)) != _SEGMENT_MAGIC:
            raise VideoError(f"{path}: not a segment file; delete its folder and run again")
        fh.seek(-4, os.SEEK_END)
        length = int.from_bytes(fh.read(4), "little")
        fh.seek(-4 - length, os.SEEK_END)
        return json.loads(fh.read(length))


def _segment_packets(path):
    """Yield `(pts, dts, duration, keyframe, data)` of a segment file (None: no timestamp)."""
    with open(path, "rb") as fh:
        fh.seek(len(_SEGMENT_MAGIC))
        while True:
            head = fh.read(_PACKET.size)
            if len(head) < _PACKET.size:
                raise VideoError(f"{path}: truncated segment; delete it and run again")
            pts, dts, duration, key, size = _PACKET.unpack(head)
            if size == 0xFFFFFFFF:
                return
            yield (
                None if pts == _NONE else pts, None if dts == _NONE else dts, duration, key,
                fh.read(size),
            )


def _encode(pipe, workdir, manifest, info, codec, size, pix_fmt, options, rgb, count,
            global_header):
    av = _av()
    segment_frames = manifest["settings"]["encoding"]["segment_frames"]
    colorspace, color_range = info.color[0], info.color[1]
    interpolation = _interpolation()
    writer = None
    try:
        while True:
            item = pipe.get(pipe.upscaled)
            if item is _END or item is _ABORT:
                break
            index, pts, image = item
            segment = index // segment_frames
            if writer is None:
                writer = _SegmentWriter(
                    workdir, segment, info, codec, size, pix_fmt, options, global_header
                )
            frame = av.VideoFrame.from_ndarray(image, format=rgb)
            frame = frame.reformat(
                format=pix_fmt, dst_colorspace=colorspace or None,
                dst_color_range=color_range or None, interpolation=interpolation,
            )
            frame.pts, frame.time_base = pts, info.time_base
            writer.write(frame)
            if writer.frames == segment_frames:
                # Complete: finished now, not when the next frame comes, so that a failure
                # or a kill after its last frame does not cost it.
                _record(workdir, manifest, writer.index, writer.finish())
                writer = None
        # The last, shorter segment only at the true end of the video: after a failure, a
        # segment with fewer frames than it should have is never recorded as finished.
        if item is _END and writer is not None and not pipe.stop.is_set():
            _record(workdir, manifest, writer.index, writer.finish())
            writer = None
    finally:
        if writer is not None:
            writer.abandon()


def _record(workdir, manifest, index, entry):
    manifest["segments"][str(index)] = entry
    write_json(os.path.join(workdir, MANIFEST), manifest)


def _packets(container, streams):
    """Demuxed packets of `streams`, each with its decode time in seconds for merging."""
    if not streams:
        return  # (demux([]) would demux every stream)
    for packet in container.demux(streams):
        if packet.size == 0 and packet.dts is None:
            continue  # the demuxer's end-of-stream marker
        ts = packet.dts if packet.dts is not None else packet.pts
        yield (float(ts * packet.time_base) if ts is not None else 0.0), packet


def _continuous_dts(packets, previous, last, path):
    """A segment's packets with decode times that continue the segment before.

    An encoder that reorders frames (B-frames) starts each segment's decode times `d` frames
    before its first presentation time (`d`: the reorder delay). Joined as they are, those can
    fall before the previous segment's last decode time (with variable frame rate they do).
    The rule a single encode follows: packet `i` in decode order gets the presentation time of
    the frame `d` places earlier in presentation order, which for the first `d` packets of a
    segment is among the previous segment's last frames. Checked: strictly increasing, and never
    after the packet's own presentation time.
    """
    times = sorted(p[0] for p in packets if p[0] is not None)
    if not previous or not times or any(p[0] is None or p[1] is None for p in packets):
        return packets  # the first segment keeps the encoder's own decode times
    delay = sum(1 for p in packets if p[1] < times[0])
    if delay > len(previous):
        raise VideoError(f"{path}: reorder delay {delay} is longer than the segment before")
    start = previous[len(previous) - delay :]
    fixed = []
    for i, (pts, _, duration, key, data) in enumerate(packets):
        dts = start[i] if i < delay else times[i - delay]
        if dts > pts or (last is not None and dts <= last):
            raise VideoError(
                f"{path}: cannot give this segment decode times that continue the one before "
                f"(packet {i}: pts {pts}, dts {dts}); use encoder_options={{'bf': '0'}}"
            )
        last = dts
        fixed.append((pts, dts, duration, key, data))
    return fixed


def _join(output_path, workdir, segments, info, codec, size, pix_fmt, options, copied):
    """Join the segments' packets and the copied streams' packets into the output, atomically."""
    av = _av()
    with atomic_path(output_path) as tmp, _open_input(info.path) as source:
        with av.open(tmp, "w") as out:
            # The same encoder settings as the segments': opening it gives the global headers
            # (SPS/PPS...) the packets were encoded with; it never encodes a frame here.
            video = _add_video_stream(out, codec, info, size, pix_fmt, options)
            if info.display_matrix is not None:
                video.set_display_matrix(list(info.display_matrix))
            targets, sources = {}, []
            for index in copied:
                stream = source.streams[index]
                targets[index] = out.add_stream_from_template(stream)
                for key, value in stream.metadata.items():
                    targets[index].metadata[key] = value
                sources.append(stream)
            out.start_encoding()
            extradata = video.codec_context.extradata or b""

            def video_packets():
                previous = []  # presentation times of the segment before, in order
                last = None  # its last decode time
                for number in range(segments):
                    path = os.path.join(workdir, _segment_name(number))
                    header = _segment_header(path)
                    if bytes.fromhex(header["extradata"]) != extradata:
                        raise VideoError(
                            f"{path}: encoded with other codec headers than the output's, so "
                            f"it cannot be joined; delete {workdir} and run again"
                        )
                    time_base = fractions.Fraction(header["time_base"])
                    packets = _continuous_dts(list(_segment_packets(path)), previous, last, path)
                    for pts, dts, duration, key, data in packets:
                        packet = av.Packet(data)
                        packet.pts, packet.dts, packet.duration = pts, dts, duration
                        packet.time_base = time_base
                        packet.is_keyframe = bool(key)
                        ts = dts if dts is not None else pts
                        yield float(ts * time_base) if ts is not None else 0.0, packet
                    previous = sorted(p[0] for p in packets if p[0] is not None)
                    last = packets[-1][1] if packets else last

            merged = heapq.merge(
                ((t, 0, n, p) for n, (t, p) in enumerate(video_packets())),
                ((t, 1, n, p) for n, (t, p) in enumerate(_packets(source, sources))),
                key=lambda item: item[:3],
            )
            for _, kind, _, packet in merged:
                if kind == 0:
                    packet.stream = video
                else:
                    packet.stream = targets[packet.stream.index]
                out.mux(packet)
