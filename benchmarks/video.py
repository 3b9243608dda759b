"""Video upscaling speed: `upscale_video` frames/s against the bare `Upscaler` loop on the same frames.

    python benchmarks/video.py                        # tiny model, then full RRDBNet x4 in bf16
    python benchmarks/video.py --models tiny --frames 48
    python benchmarks/video.py --models full --frames 6 --size 180x320

For each model: a clip of `--frames` frames of `--size` (HxW, default 180x320) at 24 fps with
an AAC track is made with PyAV (smooth moving gradients, H.264), its frames are decoded once,
the upscaler is warmed up (trace), then

- bare loop: `for frame in frames: upscaler(frame)` on frames already in memory, the
  compute alone, timed before and after the video run (the machine's load drifts);
- video: `upscale_video(clip, out.mp4, upscaler)` (H.264 CRF 18, decode and encode in their
  threads beside compute, resumable segments, final join with the audio copied), wall clock.

The ratio video/bare is what decoding, colour conversion, encoding and joining cost on top of
the network when they overlap with it (1.0: free). Weights are random: speed does not depend
on them. The tiny model shows the pipeline's own ceiling (the network is nearly free there);
the full model is what a user gets (about 2 TFLOP per 180x320 frame).
"""

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import av  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from keras_esrgan import RRDBNet  # noqa: E402
from keras_esrgan.inference import Upscaler  # noqa: E402
from keras_esrgan.pixels import quantize  # noqa: E402
from keras_esrgan.video import probe_video, upscale_video  # noqa: E402

MODELS = {
    "tiny": (dict(num_feat=8, num_block=1, num_grow_ch=4), "fp32"),
    "full": ({}, "bf16"),  # 23 blocks, 64 features, growth 32
}


def make_clip(path, frames, height, width, fps=24):
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    with av.open(path, "w") as out:
        video = out.add_stream("libx264", rate=fps, width=width, height=height, pix_fmt="yuv420p")
        audio = out.add_stream("aac", rate=48000, layout="stereo")
        samples = np.zeros((2, 48000 * frames // fps), np.float32)
        samples[:] = 0.2 * np.sin(2 * np.pi * 440 * np.arange(samples.shape[1]) / 48000)
        for i in range(0, samples.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(samples[:, i : i + 1024], format="fltp",
                                               layout="stereo")
            frame.sample_rate, frame.pts = 48000, i
            out.mux(audio.encode(frame))
        out.mux(audio.encode())
        for i in range(frames):
            t = i / frames
            rgb = 0.5 + 0.4 * np.sin(2 * np.pi * np.stack([xx + t, yy - t, xx * yy + t], -1))
            frame = av.VideoFrame.from_ndarray(quantize(rgb), format="rgb24")
            frame.pts = i
            out.mux(video.encode(frame))
        out.mux(video.encode())


def decode_all(path):
    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="tiny,full")
    parser.add_argument("--frames", type=int, default=None,
                        help="frames per clip (default: 48 tiny, 6 full)")
    parser.add_argument("--size", default="180x320", help="HxW of the input frames")
    args = parser.parse_args()
    height, width = (int(v) for v in args.size.lower().split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            config, precision = MODELS[name]
            frames = args.frames or (48 if name == "tiny" else 6)
            clip = os.path.join(tmp, f"{name}.mp4")
            make_clip(clip, frames, height, width)
            decoded = decode_all(clip)
            upscaler = Upscaler(RRDBNet(scale=4, **config), precision=precision)
            upscaler(decoded[0])  # trace and warm up, outside both timings

            def bare_loop():
                start = time.perf_counter()
                for frame in decoded:
                    upscaler(frame)
                return len(decoded) / (time.perf_counter() - start)

            # bare, video, bare: on a shared machine the load drifts; the two bare runs show
            # by how much, and the video run is compared with their mean.
            first = bare_loop()
            out = os.path.join(tmp, f"{name}_x4.mp4")
            start = time.perf_counter()
            result = upscale_video(clip, out, upscaler, progress=False)
            piped = result.frames / (time.perf_counter() - start)
            second = bare_loop()
            info = probe_video(out)
            assert (info.width, info.height, result.frames) == (4 * width, 4 * height, frames)
            rows.append((name, upscaler.precision, frames, first, second, piped))
            print(f"{name}: bare {first:.3f} / {second:.3f} frames/s, upscale_video "
                  f"{piped:.3f} frames/s", flush=True)
    print(f"\ninput {height}x{width} -> {4 * height}x{4 * width}, H.264 CRF 18, "
          f"{os.cpu_count()} CPUs")
    print("| model | precision | frames | bare Upscaler loop, before / after (frames/s) "
          "| upscale_video (frames/s) | video / mean bare |")
    print("|---|---|---|---|---|---|")
    for name, precision, frames, first, second, piped in rows:
        bare = (first + second) / 2
        print(f"| {name} | {precision} | {frames} | {first:.3f} / {second:.3f} | {piped:.3f} "
              f"| {piped / bare:.2f} |")


if __name__ == "__main__":
    main()
