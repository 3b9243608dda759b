"""keras_esrgan.video: frames through an upscaler, audio/subtitles copied, timing kept, resumable.

The clips are made here with PyAV (FFmpeg's libraries from the `video` extra, no ffmpeg binary):
random RGB frames in FFV1 (lossless) or smooth frames in H.264, a 440 Hz AAC track, subtitles.
The stand-in upscaler does nearest x2, so every output frame is known exactly; with FFV1 in and
out (RGB, lossless) the comparison is exact, with H.264 it is a PSNR bound.
"""

import fractions
import json
import os
import re
import signal
import subprocess
import sys
import time

import av  # the `video` extra; part of `dev`, so CI has it
import numpy as np
import pytest

from keras_esrgan import video
from tests.conftest import ROOT

FPS = 12
N_FRAMES = 24


class Nearest2:
    """Nearest-neighbour x2 with an exactly known output; counts its calls."""

    scale = 2
    fingerprint = "nearest x2"

    def __init__(self, fail_at=None):
        self.calls = 0
        self.fail_at = fail_at

    def __call__(self, image):
        if self.fail_at is not None and self.calls == self.fail_at:
            raise RuntimeError("stand-in failure")
        self.calls += 1
        return image.repeat(2, axis=0).repeat(2, axis=1)


def nearest2(frame):
    return frame.repeat(2, axis=0).repeat(2, axis=1)


def make_clip(path, codec="ffv1", pix_fmt="bgr0", subtitles="subrip", smooth=False,
              rotation=None, n=N_FRAMES, size=(64, 48), color_trc=None, rgb="rgb24", audio=True,
              pts=None):
    """Write a clip of `n` frames at 12 fps with a mono AAC sine and two subtitles; return the
    RGB frames that went in."""
    w, h = size
    rng = np.random.default_rng(0)
    dtype = np.uint16 if rgb == "rgb48le" else np.uint8
    peak = np.iinfo(dtype).max
    if smooth:
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        frames = [
            (peak * (0.5 + 0.4 * np.sin(2 * np.pi * np.stack(
                [xx + i / n, yy, xx * yy + 0.2 * i / n], -1)))).astype(dtype)
            for i in range(n)
        ]
    else:
        frames = [rng.integers(0, peak + 1, (h, w, 3), dtype=np.int64).astype(dtype)
                  for _ in range(n)]
    with av.open(str(path), "w") as out:
        v = out.add_stream(codec, rate=FPS, width=w, height=h, pix_fmt=pix_fmt)
        if rotation:
            v.set_display_rotation(rotation)
        if color_trc is not None:
            v.codec_context.color_trc = color_trc
        a = out.add_stream("aac", rate=16000, layout="mono") if audio else None
        s = out.add_mux_stream(subtitles) if subtitles else None
        if s is not None:
            s.time_base = fractions.Fraction(1, 1000)
        t = np.arange(16000 * n // FPS if audio else 0) / 16000
        samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
        for i in range(0, len(samples), 1024):
            f = av.AudioFrame.from_ndarray(samples[None, i:i + 1024], format="fltp", layout="mono")
            f.sample_rate, f.pts = 16000, i
            out.mux(a.encode(f))
        if a is not None:
            out.mux(a.encode())
        for i, frame in enumerate(frames):
            f = av.VideoFrame.from_ndarray(frame, format=rgb).reformat(
                format=pix_fmt, interpolation=ACCURATE)
            f.pts = i if pts is None else pts[i]
            out.mux(v.encode(f))
        out.mux(v.encode())
        for k, text in enumerate(["hello", "world"] if s is not None else []):
            data = text.encode()
            if subtitles == "mov_text":
                data = len(data).to_bytes(2, "big") + data
            packet = av.Packet(data)
            packet.stream, packet.time_base = s, fractions.Fraction(1, 1000)
            packet.pts = packet.dts = 1000 * k
            packet.duration = 900
            out.mux(packet)
    return frames


# Exact rounding and full chroma interpolation: swscale's default conversion is biased by about
# a level, which would hide (or fake) a colour shift in the code under test.
ACCURATE = (av.video.reformatter.Interpolation.BILINEAR
            | av.video.reformatter.Interpolation.ACCURATE_RND
            | av.video.reformatter.Interpolation.FULL_CHR_H_INT
            | av.video.reformatter.Interpolation.FULL_CHR_H_INP)


def decoded(path, rgb="rgb24"):
    """[(pts, frame)] of the first video stream, and the stream's (time_base, average_rate)."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [(f.pts, f.to_ndarray(format=rgb, interpolation=ACCURATE)) for f in c.decode(stream)]
        return frames, (stream.time_base, stream.average_rate)


def packets(path, kind):
    """(bytes, pts, dts) of every non-empty packet of the first `kind` stream."""
    with av.open(str(path)) as c:
        streams = getattr(c.streams, kind)
        if not streams:
            return None
        return [(bytes(p), p.pts, p.dts) for p in c.demux(streams[0]) if p.size]


def test_lossless_journey_frames_timing_audio_subtitles(tmp_path, capsys):
    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    frames = make_clip(src)
    upscaler = Nearest2()
    result = video.upscale_video(src, out, upscaler, codec="ffv1", pix_fmt="bgr0",
                                 segment_frames=10, progress=True)
    assert (result.frames, result.upscaled, result.segments) == (N_FRAMES, N_FRAMES, 3)
    assert upscaler.calls == N_FRAMES
    bar = capsys.readouterr().err  # tqdm: done/total [elapsed<left, rate]
    assert re.search(r"24/24 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+frame/s\]", bar), bar

    got, (time_base, rate) = decoded(out)
    src_frames, (src_time_base, src_rate) = decoded(src)
    assert len(got) == N_FRAMES
    assert (time_base, rate) == (src_time_base, src_rate) == (fractions.Fraction(1, 1000), FPS)
    assert [p for p, _ in got] == [p for p, _ in src_frames]  # Matroska's rounded ms, as in
    for (_, frame), original in zip(got, frames):
        np.testing.assert_array_equal(frame, nearest2(original))  # exact: FFV1 RGB both ways
    assert packets(out, "audio") == packets(src, "audio")  # copied, bit for bit
    assert packets(out, "subtitles") == packets(src, "subtitles")
    assert not os.path.exists(f"{out}.parts")  # the workdir is gone
    assert sorted(os.listdir(tmp_path)) == ["in.mkv", "out.mkv"]  # no temporary left


def test_h264_mp4_keeps_time_base_rotation_and_audio(tmp_path):
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    make_clip(src, codec="libx264", pix_fmt="yuv420p", subtitles="mov_text", smooth=True,
              rotation=90)
    info = video.probe_video(src)
    assert (info.rotation, info.fps, info.frames) == (90, FPS, N_FRAMES)
    video.upscale_video(src, out, Nearest2(), segment_frames=10, progress=False)  # defaults

    got, (time_base, rate) = decoded(out)
    src_frames, (src_time_base, _) = decoded(src)
    assert time_base == src_time_base == fractions.Fraction(1, 12288) and rate == FPS
    assert [p for p, _ in got] == [p for p, _ in src_frames]
    for (_, frame), (_, original) in zip(got, src_frames):
        err = frame.astype(np.float64) - nearest2(original)
        assert 10 * np.log10(255**2 / np.mean(err**2)) > 34  # x264 CRF 18, 4:2:0 chroma
        assert np.abs(err.mean(axis=(0, 1))).max() < 1  # no colour shift (matrix, range)
    assert packets(out, "audio") == packets(src, "audio")
    # MP4 stores subtitle gaps as empty samples and its muxer adds its own: compare the texts.
    texts = lambda path: [p[:2] for p in packets(path, "subtitles") if len(p[0]) > 2]  # noqa: E731
    assert texts(out) == texts(src) and len(texts(src)) == 2
    out_info = video.probe_video(out)
    assert (out_info.width, out_info.height, out_info.rotation) == (128, 96, 90)
    assert out_info.display_matrix == info.display_matrix


KILLED_RUN = """
import sys, time
from keras_esrgan import video

class Slow:
    scale, fingerprint = 2, "nearest x2"
    def __call__(self, image):
        with open(sys.argv[3], "a") as fh:
            fh.write("call\\n")
        time.sleep(0.15)
        return image.repeat(2, axis=0).repeat(2, axis=1)

video.upscale_video(sys.argv[1], sys.argv[2], Slow(), codec="ffv1", pix_fmt="bgr0",
                    segment_frames=4, progress=False)
"""


def _segments_recorded(workdir):
    try:
        with open(os.path.join(workdir, video.MANIFEST)) as fh:
            return json.load(fh)["segments"]
    except (OSError, ValueError):
        return {}


@pytest.mark.slow  # a subprocess (TensorFlow import) killed mid-run: about 10 s
def test_killed_run_resumes_without_redoing_finished_segments(tmp_path):
    src, out, calls = tmp_path / "in.mkv", tmp_path / "out.mkv", tmp_path / "calls.txt"
    make_clip(src)
    workdir = f"{out}.parts"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(src), str(out), str(calls)],
                            env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(_segments_recorded(workdir)) < 2 and proc.poll() is None:
        assert time.monotonic() < deadline, "the run recorded no segment in 60 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    _, stderr = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, stderr.decode()[-2000:]
    assert not out.exists()  # never a half file under the output's name
    done = _segments_recorded(workdir)
    assert 2 <= len(done) < N_FRAMES // 4
    called_before = len(calls.read_text().splitlines())
    assert called_before < N_FRAMES

    upscaler = Nearest2()
    result = video.upscale_video(src, out, upscaler, codec="ffv1", pix_fmt="bgr0",
                                 segment_frames=4, progress=False)
    assert upscaler.calls == N_FRAMES - 4 * len(done) == result.upscaled  # finished ones skipped
    reference = tmp_path / "reference.mkv"
    video.upscale_video(src, reference, Nearest2(), codec="ffv1", pix_fmt="bgr0",
                        segment_frames=4, progress=False)
    assert packets(out, "video") == packets(reference, "video")  # the same bytes
    assert packets(out, "audio") == packets(reference, "audio") == packets(src, "audio")


def test_rerun_with_other_settings_or_input_refuses_to_mix_segments(tmp_path):
    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_clip(src)
    kwargs = dict(codec="ffv1", pix_fmt="bgr0", segment_frames=4, progress=False)
    with pytest.raises(RuntimeError, match="stand-in failure"):  # the upscaler's own error
        video.upscale_video(src, out, Nearest2(fail_at=9), **kwargs)
    assert not out.exists()
    assert len(_segments_recorded(f"{out}.parts")) == 2

    with pytest.raises(video.VideoError, match=r"another run \(it differs in: encoding\)"):
        video.upscale_video(src, out, Nearest2(), **dict(kwargs, segment_frames=6))
    other = Nearest2()
    other.fingerprint = "nearest x2, other weights"
    with pytest.raises(video.VideoError, match=r"differs in: upscaler"):
        video.upscale_video(src, out, other, **kwargs)
    os.utime(src, ns=(time.time_ns(), time.time_ns() + 10**9))  # the input changed
    with pytest.raises(video.VideoError, match=r"differs in: input"):
        video.upscale_video(src, out, Nearest2(), **kwargs)
    os.remove(os.path.join(f"{out}.parts", video.MANIFEST))  # start again
    upscaler = Nearest2()
    video.upscale_video(src, out, upscaler, **kwargs)
    assert upscaler.calls == N_FRAMES


def test_bad_inputs_and_outputs_get_clear_errors(tmp_path):
    src = tmp_path / "in.mkv"
    make_clip(src, n=6)
    with pytest.raises(FileNotFoundError, match="no such video file"):
        video.upscale_video(tmp_path / "missing.mp4", tmp_path / "o.mp4", Nearest2())
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n" * 20)
    with pytest.raises(video.VideoError, match="notes.mp4: not a video file FFmpeg can read"):
        video.upscale_video(text, tmp_path / "o.mp4", Nearest2())
    cut = tmp_path / "cut.mp4"
    make_clip(cut, codec="libx264", pix_fmt="yuv420p", subtitles=None, n=6)
    cut.write_bytes(cut.read_bytes()[:600])
    with pytest.raises(video.VideoError, match="cut.mp4: "):
        video.upscale_video(cut, tmp_path / "o.mp4", Nearest2())
    sound = tmp_path / "sound.m4a"
    with av.open(str(sound), "w") as c:
        a = c.add_stream("aac", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp",
                                           layout="mono")
        frame.sample_rate = 16000
        c.mux(a.encode(frame))
        c.mux(a.encode())
    with pytest.raises(video.VideoError, match=r"sound.m4a: no video stream \(it holds audio\)"):
        video.upscale_video(sound, tmp_path / "o.mp4", Nearest2())

    existing = tmp_path / "exists.mkv"
    existing.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        video.upscale_video(src, existing, Nearest2())
    assert existing.read_bytes() == b"keep me"
    # SubRip subtitles cannot go into MP4: refused before any frame is upscaled.
    upscaler = Nearest2()
    with pytest.raises(video.VideoError, match=r"cannot take stream #2 \(subtitle srt\)"):
        video.upscale_video(src, tmp_path / "o.mp4", upscaler, progress=False)
    assert upscaler.calls == 0 and not (tmp_path / "o.mp4").exists()
    assert not (tmp_path / "o.mp4.parts").exists()  # nothing left behind

    class Wrong:
        scale = 2
        def __call__(self, image):
            return image
    with pytest.raises(video.VideoError, match=r"upscaler returned \(48, 64, 3\) uint8"):
        video.upscale_video(src, tmp_path / "o.mkv", Wrong(), codec="ffv1", pix_fmt="bgr0",
                            progress=False)
    assert not (tmp_path / "o.mkv").exists()


def test_hdr_is_refused_and_ten_bit_is_upscaled_in_sixteen_bits(tmp_path):
    hdr = tmp_path / "hdr.mkv"
    make_clip(hdr, n=2, subtitles=None, color_trc=16)
    with pytest.raises(video.VideoError, match=r"HDR video \(PQ"):
        video.upscale_video(hdr, tmp_path / "o.mkv", Nearest2())

    src, out = tmp_path / "ten.mkv", tmp_path / "ten_x2.mkv"
    frames = make_clip(src, pix_fmt="gbrp10le", rgb="rgb48le", subtitles=None, n=4)
    info = video.probe_video(src)
    assert info.bit_depth == 10
    seen = []

    class Sixteen(Nearest2):
        def __call__(self, image):
            seen.append(image.dtype)
            return super().__call__(image)

    video.upscale_video(src, out, Sixteen(), codec="ffv1", pix_fmt="gbrp10le", progress=False)
    assert seen == [np.uint16] * 4
    got, _ = decoded(out, rgb="rgb48le")
    src_frames, _ = decoded(src, rgb="rgb48le")
    assert video.probe_video(out).bit_depth == 10
    for (_, frame), (_, original), made in zip(got, src_frames, frames):
        assert np.abs(original.astype(int) - made).max() <= 64  # 10 of 16 bits in the file
        np.testing.assert_array_equal(frame, nearest2(original))


def test_tiny_rrdbnet_upscaler_journey(tmp_path):
    from keras_esrgan import RRDBNet, Upscaler

    src, out = tmp_path / "in.mkv", tmp_path / "out.mkv"
    make_clip(src, n=3, size=(24, 16), subtitles=None, audio=False)  # video only
    upscaler = Upscaler(RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4),
                        precision="fp32", tile=8, tile_pad=4, blend=4)
    video.upscale_video(src, out, upscaler, codec="ffv1", pix_fmt="bgr0", progress=False)
    got, _ = decoded(out)
    assert len(got) == 3 and packets(out, "audio") is None
    for (_, frame), (_, original) in zip(got, decoded(src)[0]):
        np.testing.assert_array_equal(frame, upscaler(original))  # same tiling and precision
    fingerprint = video.upscaler_fingerprint(upscaler)
    assert fingerprint["tile"] == 8 and len(fingerprint["weights_sha256"]) == 64


def test_variable_frame_rate_timestamps_are_kept(tmp_path):
    src, out = tmp_path / "vfr.mp4", tmp_path / "vfr_x2.mp4"
    pts = [0, 1, 2, 4, 5, 9, 10, 11, 15, 16]  # in 1/12 s: frames 1 to 4 ticks apart
    make_clip(src, codec="libx264", pix_fmt="yuv420p", subtitles=None, smooth=True, n=10,
              pts=pts)
    video.upscale_video(src, out, Nearest2(), segment_frames=4, progress=False)
    got, (time_base, _) = decoded(out)
    src_frames, (src_time_base, _) = decoded(src)
    assert time_base == src_time_base
    assert [p for p, _ in got] == [p for p, _ in src_frames]
    steps = np.diff([p for p, _ in got])
    assert len(set(steps.tolist())) == 3  # three different frame durations survive


def test_video_command_upscales_copies_audio_and_resumes_after_ctrl_c(tmp_path, capsys, monkeypatch):
    """`keras-esrgan video IN -o OUT --weights W` as the README writes it (lossless codec so the
    frames compare exactly): frames are the Upscaler's, audio and subtitles copied, the progress
    bar shows frames/s and the time left; Ctrl-C mid-run, then the same command finishes
    without redoing the segments already done."""
    from keras_esrgan import RRDBNet, Upscaler, save_generator
    from keras_esrgan.cli import main

    net = RRDBNet(scale=2, num_feat=8, num_block=1, num_grow_ch=4)
    net.conv_last.bias.assign(np.full(3, 0.5, "float32"))
    weights = str(tmp_path / "tiny_x2.safetensors")
    save_generator(net, weights)
    src, out = tmp_path / "clip.mkv", tmp_path / "clip_x2.mkv"
    make_clip(src, n=12, size=(24, 16))
    line = ["video", str(src), "-o", str(out), "--weights", weights, "--precision", "fp32",
            "--codec", "ffv1", "--pix-fmt", "bgr0", "--segment-frames", "4"]

    calls = []
    call = Upscaler.__call__

    def interrupted_at_frame_7(self, image, outscale=None):
        calls.append(1)
        if len(calls) == 7:
            raise KeyboardInterrupt
        return call(self, image, outscale=outscale)

    monkeypatch.setattr(Upscaler, "__call__", interrupted_at_frame_7)
    assert main(line) == 130
    assert "interrupted" in capsys.readouterr().err and not out.exists()
    monkeypatch.setattr(Upscaler, "__call__", call)
    assert main(line) == 0
    stdout, stderr = capsys.readouterr()
    assert "12 frame(s) in 3 segment(s), 8 upscaled" in stdout and "4 from an earlier run" in stdout
    assert re.search(r"\d+/12 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+frame/s\]", stderr), stderr
    expected = Upscaler(weights, precision="fp32")
    got = decoded(out)[0]
    assert len(got) == 12
    for (_, frame), (_, original) in zip(got, decoded(src)[0]):
        np.testing.assert_array_equal(frame, expected(original))
    assert packets(out, "audio") == packets(src, "audio")
    assert packets(out, "subtitles") == packets(src, "subtitles")
    assert not os.path.exists(f"{out}.parts")
    # An existing output without --overwrite, a missing input: one-line errors.
    assert main(line) == 1 and "clip_x2.mkv exists (pass --overwrite" in capsys.readouterr().err
    assert main(["video", str(tmp_path / "none.mp4"), "-o", str(tmp_path / "x.mp4"), "--weights", weights]) == 1
    err = capsys.readouterr().err
    assert "no such video file" in err and "Traceback" not in err
