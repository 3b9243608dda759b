"""The `keras-esrgan` command: thin subcommands over the library.

    keras-esrgan upscale photos/ extra.png -o out/ --weights RealESRGAN_x4plus.pth
    keras-esrgan evaluate Set5=../shared/data/Set5 Set14=../shared/data/Set14 --weights RRDB_PSNR_x4.pth
    keras-esrgan interpolate RRDB_PSNR_x4.pth RRDB_ESRGAN_x4.pth --alpha 0.8 -o interp.keras
    keras-esrgan convert RRDB_ESRGAN_x4.pth esrgan_x4.keras
    keras-esrgan degrade my_hr_images -o degraded --seed 0 --count 8
    keras-esrgan models                       # the model zoo: name, arch, scale, cached, licence
    keras-esrgan models download realesr-general-x4v3 RealESRGAN_x4plus
    keras-esrgan upscale photos/ -o out/ --weights realesr-general-x4v3 --strength 0.5

`--weights` (and every other weights argument) takes a file or a model-zoo name.
    keras-esrgan video clip.mp4 -o clip_x4.mp4 --weights RealESRGAN_x4plus.pth

Each subcommand is a function taking parsed arguments and returning an exit code; errors the user
can fix (bad paths, bad weights, bad images) are printed as one line, not a traceback.
"""

import argparse
import gc
import inspect
import os
import signal
import sys
import time

from keras_esrgan.data.degraded_samples import write_degraded_samples
from keras_esrgan.data.realworld import CROP_PAD_SIZE
from keras_esrgan.evaluation import evaluate
from keras_esrgan.images import shown
from keras_esrgan.inference.batch import DEFAULT_DEPTH, DEFAULT_QUALITY, OUTPUT_EXTENSIONS, find_images
from keras_esrgan.inference.batch import output_path  # noqa: F401  (keras_esrgan.cli.output_path)
from keras_esrgan.inference import (
    ALPHA_MODES,
    BYTES_PER_PIXEL,
    DEFAULT_BLEND,
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_MEMORY_SHARE,
    DEFAULT_TILE_PAD,
    Upscaler,
)
from keras_esrgan.models.rrdbnet import UNSHUFFLE_FACTORS
from keras_esrgan.precision import INFERENCE_PRECISIONS

_GENERATOR_EXTENSIONS = (".keras", ".weights.h5", ".safetensors")
_SCALES = sorted(UNSHUFFLE_FACTORS)  # RRDBNet's: 1, 2, 4


def _defaults(function):
    """The keyword defaults of a library function or class: an option that stands for one of
    its arguments takes its default from there, so that it is written once."""
    return {
        name: p.default for name, p in inspect.signature(function).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


_UPSCALER = _defaults(Upscaler)
_EVALUATE = _defaults(evaluate)
_DEGRADE = _defaults(write_degraded_samples)


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _positive_int(text):
    value = _non_negative_int(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be >= 1, got 0")
    return value


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread like Ctrl-C so that every temporary file is removed."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _clean_stale_temp_files(folder, started, name=None):
    """Remove what an interrupted earlier run left in `folder` (see keras_esrgan.atomic)."""
    from keras_esrgan.atomic import remove_stale_temp_files

    removed = remove_stale_temp_files(folder or ".", before=started, name=name)
    if removed:
        print(
            f"keras-esrgan: removed {len(removed)} temporary file(s) an interrupted run left in "
            f"{shown(folder or '.')}", file=sys.stderr,
        )


def _exists(path):
    return FileExistsError(f"{shown(path)} exists (pass --overwrite to replace it)")


def _convert(args):
    from keras_esrgan.weights import load_generator, save_generator

    started = time.time()
    overrides = {k: v for k, v in (("scale", args.scale), ("num_in_ch", args.num_in_ch)) if v}
    if os.path.exists(args.output) and not args.overwrite:
        raise _exists(args.output)
    generator = load_generator(args.input, **overrides)
    _clean_stale_temp_files(os.path.dirname(args.output), started, os.path.basename(args.output))
    save_generator(generator, args.output, overwrite=args.overwrite)
    print(f"{shown(args.input)} -> {shown(args.output)}: {generator.describe()}, {generator.count_params():,} parameters")
    return 0


def _interpolate(args):
    if not args.output.lower().endswith(_GENERATOR_EXTENSIONS):
        allowed = ", ".join(_GENERATOR_EXTENSIONS)
        raise ValueError(f"{shown(args.output)}: the output must end in {allowed}")
    if os.path.exists(args.output) and not args.overwrite:
        raise _exists(args.output)
    if not 0.0 <= args.alpha <= 1.0:
        raise ValueError(f"--alpha must be in [0, 1], got {args.alpha}")
    from keras_esrgan.interpolation import interpolate
    from keras_esrgan.weights import save_generator

    started = time.time()
    generator = interpolate(args.psnr, args.gan, args.alpha)
    _clean_stale_temp_files(os.path.dirname(args.output), started, os.path.basename(args.output))
    save_generator(generator, args.output, overwrite=args.overwrite)  # atomic, never over a newcomer
    print(f"(1 - {args.alpha:g}) x {shown(args.psnr)} + {args.alpha:g} x {shown(args.gan)} -> {shown(args.output)}")
    return 0


def _named_sets(items):
    """`NAME=FOLDER` or `FOLDER` arguments as the dict `evaluate` takes (names from folders)."""
    sets = {}
    for item in items:
        name, sep, folder = item.partition("=")
        if not sep or os.path.isdir(item):  # a folder whose name holds "=" stays a folder
            name, folder = os.path.basename(os.path.normpath(item)), item
        if name in sets:
            raise ValueError(f"two sets are named {name!r}; name them: NAME=FOLDER")
        sets[name] = folder
    return sets


def _evaluate(args):
    from keras_esrgan.atomic import write_json
    from keras_esrgan.evaluation import format_table

    if args.json and os.path.exists(args.json) and not args.overwrite:
        raise _exists(args.json)
    generator = _generator(args)
    result = evaluate(
        generator,
        _named_sets(args.sets),
        scale=generator.scale,
        crop_border=args.crop_border,
        niqe=args.niqe,
        tile=args.tile,
        precision=args.precision,
        progress=not args.no_progress,
    )
    print(format_table(result, args.name or _weights_label(args)))
    if args.json:
        write_json(args.json, [s.as_dict() for s in result], overwrite=args.overwrite)
    return 0


def collect_images(inputs):
    """The image files named by `inputs` (folders one level deep), as a list of paths, and
    messages for folders without images: `keras_esrgan.inference.batch.find_images` without
    the output folders."""
    sources, problems = find_images(inputs)
    return [s.path for s in sources], problems


def _upscaler_options(args):
    """The `Upscaler` keyword arguments of the upscale/video options (zoo blend strength,
    tiling, precision, memory, TTA)."""
    return dict(
        strength=args.strength,
        tile=args.tile,
        tile_pad=args.tile_pad,
        blend=args.blend,
        precision=args.precision,
        alpha_mode=getattr(args, "alpha_mode", _UPSCALER["alpha_mode"]),
        max_tile_pixels=args.max_tile_pixels,
        max_memory=None if args.max_memory is None else args.max_memory * 2**30,
        tta=args.tta,
    )


def _upscale(args):
    from keras_esrgan.inference.batch import upscale_files

    started = time.time()
    sources, problems = find_images(args.inputs, recursive=args.recursive, exclude=args.output)
    for message in problems:
        print(f"keras-esrgan upscale: error: {message}", file=sys.stderr)
    if not sources:
        print("keras-esrgan upscale: error: no input images", file=sys.stderr)
        return 1
    # Bad weights or options stop the run before any image is read.
    upscaler = Upscaler(args.weights, **_upscaler_options(args))  # loads in the precision that runs
    os.makedirs(args.output, exist_ok=True)
    _clean_stale_temp_files(args.output, started)

    def report(message):
        from tqdm import tqdm

        tqdm.write(f"keras-esrgan upscale: error: {message}", file=sys.stderr)

    summary = upscale_files(
        upscaler, sources, args.output, suffix=args.suffix, ext=args.ext, quality=args.quality,
        lossless=args.lossless, overwrite=args.overwrite, strip_metadata=args.strip_metadata,
        outscale=args.outscale, depth=args.workers, report=report, started=started,
    )
    summary.total += len(problems)
    summary.failed += len(problems)
    line = summary.line(args.output)
    if upscaler.fp32_fallbacks:
        line += f" ({upscaler.fp32_fallbacks} tile(s) re-run in float32 after bf16 NaN/Inf)"
    print(line)
    return 1 if summary.failed else 0


def _video(args):
    from keras_esrgan.video import probe_video, upscale_video

    if os.path.exists(args.output) and not args.overwrite:
        raise _exists(args.output)
    probe_video(args.input)  # a missing or broken input is refused before the weights load
    upscaler = Upscaler(args.weights, **_upscaler_options(args))  # loads in the precision that runs
    options = dict(item.partition("=")[::2] for item in args.encoder_option)
    result = upscale_video(
        args.input, args.output, upscaler, codec=args.codec, crf=args.crf, pix_fmt=args.pix_fmt,
        encoder_options=options or None, segment_frames=args.segment_frames,
        workdir=args.workdir, overwrite=args.overwrite, progress=not args.no_progress,
    )
    resumed = result.frames - result.upscaled
    print(
        f"{shown(args.input)} -> {shown(result.output)}: {result.frames} frame(s) in "
        f"{result.segments} segment(s), {result.upscaled} upscaled in {result.seconds:.1f} s "
        f"({result.fps:.2f} frames/s)" + (f", {resumed} from an earlier run" if resumed else "")
    )
    return 0


def _add_video(sub):
    from keras_esrgan.video import DEFAULT_CODEC, DEFAULT_CRF, DEFAULT_SEGMENT_FRAMES

    p = sub.add_parser(
        "video",
        help="upscale a video frame by frame (audio and subtitles copied, resumable)",
        description="Decode the first video stream of IN, upscale every frame through the same "
        "Upscaler as images (tiling, precision, TTA), encode it into OUT (the container follows "
        "its extension: .mp4, .mkv, .mov, .webm) with the frames' own timestamps (frame rate, "
        "variable frame rate kept), and copy the audio and subtitle streams packet for packet. "
        "Decoding and encoding run in threads beside the network (PyAV: FFmpeg's libraries). A "
        "progress bar shows frames/s and the time left. Resumable: frames are encoded in "
        "segments kept in WORKDIR (default OUT.parts); a rerun after a kill or Ctrl-C redoes at "
        "most the segment that was in progress, and refuses segments of another input or other "
        "settings. 10-bit SDR video is upscaled in 16 bits; HDR (PQ/HLG) is refused. Needs "
        "pip install 'keras-esrgan[video]'.",
    )
    p.add_argument("input", metavar="IN", help="the video file")
    p.add_argument("-o", "--output", required=True, metavar="OUT", help="the video to write")
    _add_network_options(p)
    p.add_argument(
        "--codec", default=DEFAULT_CODEC,
        help=f"FFmpeg video encoder (default {DEFAULT_CODEC}; libx265, libvpx-vp9, ffv1 for "
        "lossless, ...)",
    )
    p.add_argument(
        "--crf", type=_non_negative_int, default=DEFAULT_CRF, metavar="N",
        help=f"constant quality of x264/x265/VP9/AV1, lower is better (default {DEFAULT_CRF})",
    )
    p.add_argument(
        "--pix-fmt", default=None, metavar="FMT",
        help="output pixel format (default yuv420p, yuv420p10le for >8-bit input)",
    )
    p.add_argument(
        "--encoder-option", action="append", default=[], metavar="KEY=VALUE",
        help="more encoder options, e.g. preset=slow (repeatable)",
    )
    p.add_argument(
        "--segment-frames", type=_positive_int, default=DEFAULT_SEGMENT_FRAMES, metavar="N",
        help=f"frames per resumable segment (default {DEFAULT_SEGMENT_FRAMES})",
    )
    p.add_argument(
        "--workdir", default=None, metavar="DIR",
        help="folder of the segments and their manifest (default OUT.parts; deleted when done)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT")
    p.set_defaults(func=_video)


def _degrade(args):
    files, problems = collect_images(args.inputs)
    if problems:
        raise ValueError("; ".join(problems))
    if not files:
        raise ValueError("no input images")
    written = write_degraded_samples(
        files, args.output, seed=args.seed, count=args.count, scale=args.scale,
        crop_pad_size=args.crop_pad_size, overwrite=args.overwrite,
    )
    print(
        f"{len(written)} sample(s) of {len(files)} image(s) in {shown(args.output)}: LR (enlarged x{args.scale}) "
        f"| HR target side by side; {shown(os.path.join(args.output, 'degradations.json'))} lists what "
        "was drawn for each"
    )
    return 0


def _add_degrade(sub):
    p = sub.add_parser(
        "degrade",
        help="write Real-ESRGAN-degraded samples of HR images, to see what training on them means",
        description="Run Real-ESRGAN's high-order degradation (the realesrgan and finetune recipe "
        "presets' training inputs: blur, resize, noise, JPEG, twice, then the final sinc filter and "
        "JPEG) on HR images and write, per sample, one PNG with the LR image (enlarged by pixel "
        "repetition) beside its HR training target, and degradations.json (kernels, resize factors, "
        "noise, JPEG qualities drawn). Sample i uses image i modulo the number of images and the "
        "draw realworld_pipeline(seed=SEED) makes for the i-th element of its stream; the same seed "
        "writes the same files.",
    )
    p.add_argument("inputs", nargs="+", metavar="IN", help="HR image files, or folders of them (not recursive)")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)")
    p.add_argument(
        "--seed", type=int, default=_DEGRADE["seed"], metavar="N", help=f"random seed (default {_DEGRADE['seed']})"
    )
    p.add_argument(
        "--count", type=_positive_int, default=_DEGRADE["count"], metavar="N",
        help=f"number of samples (default {_DEGRADE['count']})",
    )
    p.add_argument(
        "--scale", type=int, choices=_SCALES, default=_DEGRADE["scale"],
        help=f"LR/HR factor (default {_DEGRADE['scale']})",
    )
    p.add_argument(
        "--crop-pad-size", type=_positive_int, default=_DEGRADE["crop_pad_size"], metavar="PIXELS",
        help="side of the HR region degraded, reflect-padded when the image is smaller (Real-ESRGAN: "
        f"{CROP_PAD_SIZE})",
    )
    p.add_argument("--overwrite", action="store_true", help="replace existing sample files")
    p.set_defaults(func=_degrade)


def _add_network_options(p, tile_help="new low-resolution pixels per tile"):
    """The options `upscale` and `video` share: weights, tiling, memory, precision, TTA."""
    _add_weights_arguments(p)
    p.add_argument(
        "--tile", type=_non_negative_int, default=None, metavar="N",
        help=f"{tile_help} (each tile runs with N + 2P + B pixels a side); "
        f"default: automatic from a {DEFAULT_MEMORY_BUDGET / 2**30:g} GiB memory budget, the "
        "whole image when it fits; 0: never tile",
    )
    p.add_argument(
        "--tile-pad", type=_non_negative_int, default=DEFAULT_TILE_PAD, metavar="P",
        help=f"context pixels on each side of a tile that are never used "
        f"(default {DEFAULT_TILE_PAD})",
    )
    p.add_argument(
        "--blend", type=_non_negative_int, default=DEFAULT_BLEND, metavar="B",
        help=f"cross-fade between neighbouring tiles beyond the pad; they overlap by 2P + B "
        f"(default {DEFAULT_BLEND}; 0 = hard cut)",
    )
    fp32_px, bf16_px = (DEFAULT_MEMORY_BUDGET // BYTES_PER_PIXEL[p] for p in ("fp32", "bf16"))
    p.add_argument(
        "--max-tile-pixels", type=_non_negative_int, default=None, metavar="PIXELS",
        help=f"pixel budget of one tile for automatic tiling (default: {fp32_px} in fp32, "
        f"{bf16_px} in bf16)",
    )
    p.add_argument(
        "--max-memory", type=_positive_float, default=None, metavar="GIB",
        help="memory budget of one image's whole job (input, output, network), in GiB; an "
        "image that needs more is reported and skipped before it is decoded (default: "
        f"{DEFAULT_MEMORY_SHARE * 100:.0f}%% of the machine's memory)",
    )
    p.add_argument(
        "--precision", choices=INFERENCE_PRECISIONS, default=_UPSCALER["precision"],
        help="auto: bf16 on CPUs with native bf16 (AVX512-BF16/AMX), else fp32",
    )
    p.add_argument(
        "--tta", action="store_true",
        help="test-time augmentation: average the outputs of the 8 flips/rotations of each "
        "image (BasicSR's self-ensemble); 8 times slower, a little sharper and cleaner",
    )


def _add_upscale(sub):
    p = sub.add_parser(
        "upscale",
        help="upscale image files and folders",
        description="Upscale images with an RRDBNet (or SRVGG) generator. EXIF orientation is "
        "applied on read (the output is upright); the ICC colour profile, EXIF (orientation 1, "
        "the new size, no thumbnail) and PNG text chunks are carried to each output as far as "
        "its format holds them, unless --strip-metadata; 16-bit and alpha are kept. "
        "An input whose output exists is skipped (so rerunning an interrupted batch resumes it) "
        "unless --overwrite is given. One unreadable input (or one too large for the memory "
        "budget, or animated) is reported on stderr and skipped; the exit code is 1 if any "
        "input failed. The next images are decoded and finished ones written in threads beside "
        "the network (--workers). Outputs are written atomically and never replace an existing "
        "file (even one created during the run) unless --overwrite is given. SIGTERM is handled "
        "like Ctrl-C (exit code 143, no temporary files left), and a run first removes the "
        "temporary files a killed run left in the output folder. The last line sums up: done, "
        "skipped, failed, time, images/s and input pixels/s.",
    )
    p.add_argument(
        "inputs", nargs="+", metavar="IN",
        help="image files, or folders of images (their subfolders too with --recursive)",
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="OUTDIR", help="output folder (created if missing)"
    )
    _add_network_options(p)
    p.add_argument(
        "--outscale", type=_positive_float, default=None, metavar="X",
        help="final scale factor; the output is resized to round(X * size) (default: the model's)",
    )
    p.add_argument(
        "--alpha-mode", choices=ALPHA_MODES, default=_UPSCALER["alpha_mode"],
        help="upscale alpha with the network (default) or by bicubic resizing",
    )
    p.add_argument(
        "--recursive", "-r", action="store_true",
        help="also upscale the images in subfolders of IN folders, mirroring the folder tree "
        "under OUTDIR (hidden folders and OUTDIR itself are skipped)",
    )
    p.add_argument(
        "--suffix", default="out",
        help="output name is <name>_<suffix>.<ext> (default: out; '' for <name>.<ext>)",
    )
    p.add_argument(
        "--ext", choices=OUTPUT_EXTENSIONS, default="auto",
        help="output format: same (or auto, the default) keeps the input's; png, jpg, webp, "
        "bmp, tif. 16-bit and RGBA-to-JPEG results are always PNG, GIF inputs give PNG",
    )
    p.add_argument(
        "--quality", type=int, choices=range(0, 101), default=DEFAULT_QUALITY, metavar="Q",
        help=f"JPEG/WebP quality 0..100 (default {DEFAULT_QUALITY}; with --lossless: WebP's "
        "compression effort)",
    )
    p.add_argument("--lossless", action="store_true", help="lossless WebP (for --ext webp)")
    p.add_argument(
        "--strip-metadata", action="store_true",
        help="write no ICC profile, EXIF or PNG text (orientation is still applied)",
    )
    p.add_argument(
        "--workers", type=_non_negative_int, default=DEFAULT_DEPTH, metavar="N",
        help=f"images decoded ahead and results written in threads beside the network, at "
        f"most N each (default {DEFAULT_DEPTH}; 0: one image after the other)",
    )
    p.add_argument(
        "--overwrite", action="store_true",
        help="redo images whose output exists, replacing it (even an input); without it they "
        "are skipped",
    )
    p.set_defaults(func=_upscale)


def _add_evaluate(sub):
    p = sub.add_parser(
        "evaluate",
        help="PSNR-Y / SSIM-Y (and NIQE) on benchmark folders, against bicubic",
        description="The benchmark protocol of the SR papers and BasicSR: HR images mod-cropped "
        "to the scale, LR made with MATLAB's bicubic, metrics on the BT.601 Y channel with "
        "`scale` pixels cropped at the border. Prints a Markdown table with a bicubic row.",
    )
    p.add_argument(
        "sets", nargs="+", metavar="SET",
        help="folders of HR images, or NAME=FOLDER (e.g. Set5=../shared/data/Set5)",
    )
    _add_weights_arguments(p)
    p.add_argument(
        "--crop-border", type=_non_negative_int, default=None, metavar="N",
        help="pixels removed from each edge before the metrics (default: the scale)",
    )
    p.add_argument("--niqe", action="store_true", help="also compute NIQE (no-reference)")
    p.add_argument(
        "--tile", type=_non_negative_int, default=None, metavar="N",
        help="as for upscale (default: automatic; evaluation images usually fit whole)",
    )
    p.add_argument(
        "--precision", choices=INFERENCE_PRECISIONS, default=_EVALUATE["precision"],
        help="fp32 (default, the numbers to publish), bf16 or auto",
    )
    p.add_argument("--name", metavar="LABEL", help="label of the model rows (default: file name)")
    p.add_argument("--json", metavar="PATH", help="also write per-image scores as JSON")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --json file")
    p.set_defaults(func=_evaluate)


def _add_interpolate(sub):
    p = sub.add_parser(
        "interpolate",
        help="blend a PSNR-oriented and a GAN generator (ESRGAN network interpolation)",
        description="Write a generator with weights (1 - alpha) * PSNR + alpha * GAN "
        "(ESRGAN section 3.4).",
    )
    p.add_argument("psnr", metavar="PSNR", help="weights (file or model-zoo name) of the PSNR-oriented (L1) generator")
    p.add_argument("gan", metavar="GAN", help="weights (file or model-zoo name) of the GAN generator fine-tuned from it")
    p.add_argument(
        "--alpha", type=float, required=True, metavar="A", help="0 = PSNR model, 1 = GAN model"
    )
    p.add_argument(
        "-o", "--output", required=True, metavar="OUT",
        help="destination: .keras, .weights.h5 or .safetensors",
    )
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.set_defaults(func=_interpolate)


def _add_convert(sub):
    convert = sub.add_parser(
        "convert",
        help="convert generator weights (.pth/.pt/.safetensors/.keras/.weights.h5) to "
        ".keras, .weights.h5 or .safetensors",
    )
    convert.add_argument("input", help="weights file (RRDBNet or SRVGGNetCompact, .pth/.safetensors/.keras/"
                         ".weights.h5/ncnn .param; read without torch) or model-zoo name")
    convert.add_argument("output", help="destination: .keras, .weights.h5 or .safetensors")
    convert.add_argument("--scale", type=int, choices=_SCALES, help="only if ambiguous")
    convert.add_argument("--num-in-ch", type=int, help="only if ambiguous")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    convert.set_defaults(func=_convert)


# --- weights by name, the model zoo -------------------------------------------------------------


def _strength(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def _add_weights_arguments(p):
    """`--weights NAME|PATH` and `--strength S`, for every subcommand that runs a generator."""
    p.add_argument(
        "--weights", required=True, metavar="W",
        help="generator weights: a file (.pth, .safetensors, .keras, .weights.h5, ncnn .param) or "
        "a model-zoo name (keras-esrgan models), downloaded and verified on first use",
    )
    p.add_argument(
        "--strength", type=_strength, default=None, metavar="S",
        help="blend a zoo model with its interpolable pair: S x W + (1 - S) x pair (Real-ESRGAN's "
        "denoise strength on realesr-general-x4v3; GAN vs PSNR on RealESRGAN_x4plus)",
    )


def _generator(args):
    """The generator `--weights` (and `--strength`) name: a file, a zoo name, or a zoo pair's blend."""
    from keras_esrgan.interpolation import interpolate_pair
    from keras_esrgan.weights import load_generator

    if getattr(args, "strength", None) is not None:
        return interpolate_pair(args.weights, args.strength)
    return load_generator(args.weights)


def _weights_label(args):
    label = os.path.basename(args.weights)
    return label if getattr(args, "strength", None) is None else f"{label} strength {args.strength:g}"


def _human(n, unit=""):
    if n is None:
        return "?"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= factor:
            return f"{n / factor:.1f}{suffix}{unit}"
    return f"{n}{unit}"


def models_table(rows, directory):
    """The `keras-esrgan models` table (plain text) of `pretrained.list_models()` rows."""
    header = ("name", "arch", "scale", "params", "size", "cached", "licence")
    lines = [header] + [
        (r["name"], r["arch"], f"x{r['scale']}" if r["kind"] == "generator" else "netD",
         _human(r["params"]), _human(r["size"], "B"),
         {"cached": "yes", "missing": "no"}.get(r["status"], r["status"]), r["license"])
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    text = ["  ".join(str(v).ljust(w) for v, w in zip(line, widths)).rstrip() for line in lines]
    pairs = sorted({tuple(sorted((r["name"], r["pair"]))) for r in rows if r["pair"]})
    text.append("")
    text.append(f"cache: {shown(str(directory))} (KERAS_ESRGAN_HOME); get files with: keras-esrgan models download NAME")
    if pairs:
        text.append("--strength pairs: " + ", ".join(f"{a} <-> {b}" for a, b in pairs))
    return "\n".join(text)


def _models(args):
    from keras_esrgan import pretrained

    if args.models_command != "download":
        print(models_table(pretrained.list_models(), pretrained.cache_dir()))
        return 0
    failed = 0
    for name in args.names:
        try:
            path = pretrained.download(name, force=args.force)
        except (OSError, ValueError) as err:  # the zoo's errors say what to do
            failed += 1
            print(f"keras-esrgan models download: error: {err}", file=sys.stderr)
            continue
        print(f"{name}: {shown(str(path))}")
    return 1 if failed else 0


def _add_models(sub):
    p = sub.add_parser(
        "models",
        help="list the model zoo (name, arch, scale, params, size, cached, licence) or download models",
        description="Without a subcommand: list the registered pretrained models and whether each is "
        "in the cache. `models download NAME...` fetches files into the cache and verifies their "
        "SHA-256 (KERAS_ESRGAN_MIRROR=http://host/path/ fetches <mirror>/<file name> instead).",
    )
    p.set_defaults(func=_models, models_command=None)
    actions = p.add_subparsers(dest="models_command", required=False)
    actions.add_parser("list", help="list the models (the default)")
    download = actions.add_parser("download", help="download and verify models into the cache")
    download.add_argument("names", nargs="+", metavar="NAME", help="model-zoo names (keras-esrgan models)")
    download.add_argument("--force", action="store_true", help="download again even when cached")


def build_parser():
    """The argparse parser of the `keras-esrgan` command (one subparser per subcommand)."""
    parser = argparse.ArgumentParser(
        prog="keras-esrgan", description="ESRGAN super-resolution for Keras 3 / TensorFlow."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_upscale(sub)
    _add_evaluate(sub)
    _add_interpolate(sub)
    _add_convert(sub)
    _add_degrade(sub)
    _add_models(sub)
    _add_video(sub)
    return parser


def main(argv=None):
    """Entry point of the `keras-esrgan` console script; returns the process exit code.

    0: everything succeeded; 1: an error, or (upscale) at least one input failed; 2: bad
    command-line usage (argparse); 130: interrupted (Ctrl-C, SIGINT); 143: terminated
    (SIGTERM, handled like Ctrl-C: the image being written is abandoned and its temporary file
    removed).

    Example: `keras-esrgan upscale photos/ -o out/ --weights RealESRGAN_x4plus.pth --outscale 2`
    """
    args = build_parser().parse_args(argv)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        pass
    try:
        return args.func(args)
    except (OSError, ValueError, TypeError, ImportError) as err:  # WeightsFileError, ImageError: ValueError
        print(f"keras-esrgan {args.command}: error: {shown(str(err))}", file=sys.stderr)
        return 1
    except Terminated:
        print(f"keras-esrgan {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"keras-esrgan {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run():
    """The installed `keras-esrgan` script: `main()` on `sys.argv`, then an exit that skips the
    interpreter's last garbage collection; returns the exit code.

    A traced model leaves several hundred thousand Python objects behind; collecting them one by
    one at exit cost ~1 s of the 128 px `upscale` here (1.2 s against 0.2 s frozen, timed whole
    process) and returns nothing the OS would not reclaim. `gc.freeze()` moves them out of the
    collector's reach; `atexit` handlers and stream flushes still run. Only here, not in `main`,
    which runs inside other programs (and the tests) that go on collecting.
    """
    code = main()
    gc.disable()
    gc.freeze()
    return code


if __name__ == "__main__":
    sys.exit(run())
