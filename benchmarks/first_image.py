"""Time to first image: the whole `keras-esrgan upscale one.png` process against a PyTorch script.

What a user feels the first time: a fresh process that imports, loads a 67 MB `.pth`, upscales
one image and writes it. Both sides run as fresh processes, alternated (A B A B ...) in the same
run so the machine's load hits both alike; the ratio is of their medians. Then each side's
parts, timed inside one fresh process: import, load, first call, later calls (keras-esrgan:
`import keras_esrgan`, `Upscaler(weights)` as the command makes it (the `.pth` read straight
into a bf16 model), the first call (its trace, timed alone first, then the first run: graph
optimisation, oneDNN primitives, the pass), later calls; PyTorch: `import torch`, building
RRDBNet and `load_state_dict`, first and later forward passes).

The PyTorch reference (`--torch-reference`, run with a Python that has torch) is the script a
PyTorch user would write: import torch and Pillow, build BasicSR's RRDBNet
(tests/reference/torch_rrdbnet.py), load the `.pth`, run one float32 forward pass in
channels_last (the fastest float32 layout on this CPU, measured 1.7 s against 2.8 s for NCHW
at 128 px) under `torch.inference_mode`, round and save a PNG.

    python benchmarks/first_image.py --weights RealESRGAN_x4plus.pth \\
        --torch-python /tmp/venv-torch/bin/python --sizes 128 512 --rounds 3

Images: the top-left 128x128 of Set14 baboon, and baboon resized to 512x512 (../shared/data),
or a procedural image of that size when the data is absent.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile
import time

from timing import load_average  # benchmarks/timing.py

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data" / "Set14" / "baboon.png"


# --- the PyTorch reference script ------------------------------------------------------------


def torch_reference(weights, image_path, out_path, later=0):
    """The PyTorch user's script; returns its own parts' times (s)."""
    t0 = time.perf_counter()
    import numpy as np
    import torch
    from PIL import Image

    sys.path.insert(0, str(ROOT))
    from tests.reference.torch_rrdbnet import BasicSRRRDBNet

    t_import = time.perf_counter()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = state.get("params_ema", state.get("params", state))
    net = BasicSRRRDBNet().eval().to(memory_format=torch.channels_last)
    net.load_state_dict(state)
    t_load = time.perf_counter()
    image = np.asarray(Image.open(image_path).convert("RGB"))
    x = torch.from_numpy(image).permute(2, 0, 1)[None].float().div(255)
    x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        y = net(x)
    out = (y[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    t_first = time.perf_counter()
    Image.fromarray(out).save(out_path)
    t_saved = time.perf_counter()
    laters = []
    for _ in range(later):
        t = time.perf_counter()
        with torch.inference_mode():
            net(x)
        laters.append(time.perf_counter() - t)
    return dict(
        import_=t_import - t0, load=t_load - t_import, first=t_first - t_load,
        save=t_saved - t_first, later=statistics.median(laters) if laters else None,
    )


# --- keras-esrgan's parts, in one fresh process ----------------------------------------------


def keras_parts(weights, image_path, out_path, later=0):
    t0 = time.perf_counter()
    import keras_esrgan
    from keras_esrgan.images import read_image, write_image

    t_import = time.perf_counter()
    upscaler = keras_esrgan.Upscaler(weights)  # as the command: loaded in the precision that runs
    t_load = time.perf_counter()
    upscaler.runner.function().get_concrete_function()  # the trace the first call would make
    t_trace = time.perf_counter()
    image = read_image(image_path)
    out = upscaler(image)
    t_first = time.perf_counter()
    write_image(out_path, out, overwrite=True)
    t_saved = time.perf_counter()
    laters = []
    for _ in range(later):
        t = time.perf_counter()
        upscaler(image)
        laters.append(time.perf_counter() - t)
    return dict(
        import_=t_import - t0, load=t_load - t_import, first=t_first - t_load,
        trace=t_trace - t_load, save=t_saved - t_first,
        later=statistics.median(laters) if laters else None,
    )


# --- the driver -------------------------------------------------------------------------------


def make_image(size, path):
    import numpy as np
    from PIL import Image

    if DATA.exists():
        im = Image.open(DATA).convert("RGB")
        im = im.crop((0, 0, 128, 128)) if size == 128 else im.resize((size, size), Image.BICUBIC)
    else:
        yy, xx = np.mgrid[0:size, 0:size] / size
        rgb = np.stack([np.sin(9 * xx + 3 * yy), np.cos(7 * yy * xx * 5), np.sin(13 * (xx - yy))], -1)
        im = Image.fromarray(((rgb + 1) * 127.5).astype(np.uint8))
    im.save(path)


def timed(cmd, env):
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if done.returncode:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stderr[-3000:]}")
    return elapsed, done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", help="a BasicSR RRDBNet .pth (RealESRGAN_x4plus)")
    parser.add_argument("--torch-python", default=None, help="a Python with torch (default: skip PyTorch)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--rounds", type=int, default=3, help="ABAB rounds of whole processes")
    parser.add_argument("--later", type=int, default=2, help="later calls timed in the breakdown")
    parser.add_argument("--torch-reference", nargs=3, metavar=("WEIGHTS", "IN", "OUT"), help=argparse.SUPPRESS)
    parser.add_argument("--keras-parts", nargs=3, metavar=("WEIGHTS", "IN", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.torch_reference:
        print(json.dumps(torch_reference(*args.torch_reference, later=args.later)))
        return
    if args.keras_parts:
        print(json.dumps(keras_parts(*args.keras_parts, later=args.later)))
        return
    if not args.weights:
        parser.error("--weights is required")

    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    print(f"load average at start: {load_average()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        for size in args.sizes:
            image = tmp / f"one_{size}px.png"
            make_image(size, image)
            # The console script's code, run by this Python (no launcher shim in the timing).
            cli = [sys.executable, "-c", "import sys; from keras_esrgan.cli import run; sys.exit(run())",
                   "upscale", str(image), "-o", str(tmp / "out"), "--weights", args.weights, "--overwrite"]
            ref = None
            if args.torch_python:
                ref = [args.torch_python, __file__, "--later", "0", "--torch-reference",
                       args.weights, str(image), str(tmp / f"torch_{size}.png")]
            ours, theirs = [], []
            for _ in range(args.rounds):
                ours.append(timed(cli, env)[0])
                if ref:
                    theirs.append(timed(ref, env)[0])
            line = f"{size}px whole process: keras-esrgan upscale {statistics.median(ours):.2f} s"
            line += f" (runs {', '.join(f'{t:.2f}' for t in ours)})"
            if theirs:
                ratio = statistics.median(ours) / statistics.median(theirs)
                goal = {128: " (goal 1: at most 1.3x)", 512: " (goal 1: at most 0.6x)"}.get(size, "")
                line += (f" | PyTorch script {statistics.median(theirs):.2f} s (runs "
                         f"{', '.join(f'{t:.2f}' for t in theirs)}) | ratio {ratio:.2f}x{goal}")
            print(line, f"[load {load_average()}]", flush=True)

            parts = [("keras-esrgan", [sys.executable, __file__, "--later", str(args.later),
                                       "--keras-parts", args.weights, str(image), str(tmp / "k.png")])]
            if args.torch_python:
                parts.append(("PyTorch", [args.torch_python, __file__, "--later", str(args.later),
                                          "--torch-reference", args.weights, str(image), str(tmp / "t.png")]))
            for label, cmd in parts:
                p = json.loads(timed(cmd, env)[1].strip().splitlines()[-1])
                later = "-" if p["later"] is None else f"{p['later']:.2f}"
                trace = f" (trace {p['trace']:.2f})" if "trace" in p else ""
                print(f"  {size}px {label:12s} import {p['import_']:.2f} / load {p['load']:.2f} / "
                      f"first call {p['first']:.2f}{trace} / save {p['save']:.2f} / later calls {later} s; "
                      f"first - later {p['first'] - (p['later'] or 0):.2f} s"
                      + (" (goal 1: load at most 0.5 s, first - later at most 1 s)" if label == "keras-esrgan" else "")
                      + f" [load {load_average()}]", flush=True)
    print(f"load average at end: {load_average()}")


if __name__ == "__main__":
    main()
