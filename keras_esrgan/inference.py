"""Upscaling images with an RRDBNet generator: tiling, blending, precision and image kinds.

`Upscaler(generator)(image)` takes a numpy uint8/uint16 image (grey `(H, W)` or `(H, W, 1)`, RGB
`(H, W, 3)`, RGBA `(H, W, 4)`) and returns the same kind, `scale` (or `outscale`) times larger.
`upscale(generator, image, ...)` is the one-call form.

How it works, and why:

- **Tiles on the host.** An image whose padded size is over `max_tile_pixels` never goes
  through the network at once: it is cut into overlapping windows of one common shape (edge
  windows are shifted inwards, not padded, so they see the same image border as an untiled pass
  and there is only one window shape), each window runs alone, and the outputs are blended.
  The windows are as few as the budget allows and, at that count, as small as covering the
  image allows (`balanced_window`), so the least compute goes to overlap. Network memory is
  then set by the window, not by the image.
- **The tail in bands.** Most of a pass's memory is the upsampling tail: 64-channel maps at 16
  times the input's pixels. Called whole, the full x4 model needs about 15 KB per input pixel
  in float32 and 8 KB in bfloat16; `Upscaler` runs the trunk (`RRDBNet.features`) on the whole
  window and the tail on bands of feature rows with the 2 rows of context it needs
  (`RRDBNet.reconstruct_in_bands`), which gives the same output for 2.6 KB and 1.3 KB per
  pixel at 512x512 (`python benchmarks/memory.py pass`; the SavedModel export does the same). On the host, the blended output is accumulated in float32
  in a band one window high that moves down the image (`Upscaler.strips`): each finished band
  is rounded into the uint8/uint16 output at once, so no float copy of the whole output exists
  and peak memory is the output itself plus a constant (`python benchmarks/memory.py images`).
- **Feathered blending.** Neighbouring windows overlap by at least `2 * tile_pad + blend` input
  pixels. Each window's output is weighted by a ramp of the distance to its inner edges (edges on
  the image border do not count): 0 within `tile_pad` (as in Real-ESRGAN, those pixels lack
  context and are never used), rising linearly to 1 at `tile_pad + blend`; the weights are
  normalised to sum to 1 everywhere. Where only one window has weight, the output is that
  window's output unchanged, so it equals an untiled pass wherever the window holds the whole
  receptive field. Across the overlap one window fades into the next, so there is no step for
  the eye to see, and since every pixel used is at least `tile_pad` from an inner edge, the
  error is never worse than pasting windows cut at `tile_pad` (Real-ESRGAN's tiling).
- **One trace per precision.** The generator runs in a `tf.function` with a dynamic
  `(1, None, None, 3)` signature, traced once: on this CPU a per-shape trace was not faster
  (measured on a 2-block model, within run-to-run noise), and a dynamic one never retraces
  for a folder of differently sized images. Never XLA: on CPU it was measured slower than the
  plain graph (2.33 s against 1.63 s for a 128x128 input) and, in bfloat16, 22 dB less accurate.
- **Precision.** `"auto"` is bfloat16 when the CPU has native bf16 arithmetic (`avx512_bf16`
  or `amx_bf16` in /proc/cpuinfo), else float32. The bf16 copy of the generator holds its
  weights in bfloat16 (Keras policy `"bfloat16"`): the same output as `"mixed_bfloat16"`, which
  computes in bfloat16 too, without casting every kernel at every call (4% faster at 128x128).
  Measured here on the full model: 0.42 s against 1.63 s in float32 for a 128x128 input, 50.6 dB
  to the float32 output with real weights (mean error 0.43 of 255 levels;
  `python benchmarks/inference.py`). A window whose bfloat16 output holds NaN/Inf is run again
  in float32, with the float32 weights the `Upscaler` keeps.
"""

import logging
import math
import os
from typing import NamedTuple

import numpy as np

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "fp32", "bf16")
_PRECISION_ALIASES = {"float32": "fp32", "bfloat16": "bf16", "mixed_bfloat16": "bf16"}
_POLICY = {"fp32": "float32", "bf16": "bfloat16"}
ALPHA_MODES = ("model", "resize")

# Peak memory of one `Upscaler` pass of the full x4 model per low-resolution input pixel, with
# the tail in bands (measured 2.6-2.7 KB in fp32 and 1.3-1.7 KB in bf16 at 512x512 and 768x768,
# rounded up; 4.4 and 1.8 KB at 256x256, where the tail's fixed band weighs more, but such images
# are never tiled; see the module docstring),
# and the budget automatic tiling keeps each window within: windows of up to 591^2 pixels in
# fp32 and 724^2 in bf16, which keeps a 2048^2 -> 8192^2 upscale under 3 GiB in all.
BYTES_PER_PIXEL = {"fp32": 3 * 1024, "bf16": 2 * 1024}
DEFAULT_MEMORY_BUDGET = 1024**3
# The share of the machine's memory (RAM, or the cgroup's limit in a container) a whole upscale
# may take by default (`Upscaler(max_memory=None)`): the rest is the OS, the Python process and
# TensorFlow themselves. An image that does not fit is refused before it is decoded (the CLI)
# or before any work (`Upscaler.__call__`), instead of the process being OOM-killed.
DEFAULT_MEMORY_SHARE = 0.8

# Context pixels per window side that are never used, and the cross-fade beyond them, so
# neighbours overlap by 80. Measured with the real RealESRGAN_x4plus weights on Set14 LR images
# (barbara, monarch, zebra; windows of 48 new pixels), float32, uint8 results against one untiled
# pass (`python benchmarks/tiling.py seams`):
#   overlap 16 (Real-ESRGAN's pad 8):  38.3 dB, max error 85 levels
#   overlap 32:                         42.7 dB, 55 levels
#   overlap 48:                         48.5 dB, 30 levels
#   overlap 64 (pad 32, hard cut):      55.7 dB, 11 levels
#   overlap 80 (pad 32 + blend 16):     62.2 dB,  4 levels; mean step along a seam line 0.29
# For scale, bfloat16 against float32 (both untiled) is 50.3 dB, max 21 levels: from overlap 64 on
# tiling is not the largest error of the default path, and at 80 it is 12 dB below it. The
# overlap decides the error; at a given overlap, cross-fading instead of cutting changed it by
# under 1 dB (the GAN model's tiling error is texture, not an offset) but lowers the step along
# the seam line by 5-15%, and with blend beyond the pad, never uses a pixel closer to a window
# edge than a hard cut would. Cost: a 2048x2048 image in bf16 runs as 4 x 4 balanced windows of
# 572^2, of which 80% is new pixels; images that fit the budget are not tiled at all.
DEFAULT_TILE_PAD = 32
DEFAULT_BLEND = 16

# ITU-R BT.601 luma, as OpenCV's RGB2GRAY (what Real-ESRGAN uses to bring grey and alpha back).
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_PEAK = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


class TilePlan(NamedTuple):
    """Where the windows of a tiled pass go, in padded low-resolution pixels.

    Attributes:
        height, width: the image size after padding to the unshuffle factor.
        rows: list of `(start, stop)` window row ranges, top to bottom.
        cols: list of `(start, stop)` window column ranges, left to right.
    The windows are every `rows[i] x cols[j]`; all have the same shape.
    """

    height: int
    width: int
    rows: list
    cols: list

    @property
    def num_tiles(self):
        """How many windows the pass runs (1: untiled)."""
        return len(self.rows) * len(self.cols)

    @property
    def window(self):
        """`(h, w)` of every window."""
        return self.rows[0][1] - self.rows[0][0], self.cols[0][1] - self.cols[0][0]


def physical_memory():
    """Bytes of memory this process may use: physical RAM (`os.sysconf`), or the cgroup's limit
    when that is lower (containers); None if neither can be read.

    Example:
    >>> physical_memory() > 2**30
    True
    """
    total = None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        pass
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(limit_file) as fh:
                text = fh.read().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < (total or float("inf")):
            total = int(text)
    return total


def default_max_memory():
    """The default whole-job memory budget of `Upscaler`: `DEFAULT_MEMORY_SHARE` of
    `physical_memory()` (None, no budget, where that is unknown)."""
    total = physical_memory()
    return None if total is None else int(total * DEFAULT_MEMORY_SHARE)


def _gib(n):
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def _size_arg(name, value):
    """A non-negative integer argument (ints or integral floats), or None; clear errors for
    inf, nan, strings and negatives instead of OverflowError/ValueError from int()."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float, np.integer, np.floating))
        or not math.isfinite(value)
        or value < 0
        or int(value) != value
    ):
        raise ValueError(f"{name} must be a non-negative integer or None, got {value!r}")
    return int(value)


def cpu_supports_bf16(cpuinfo="/proc/cpuinfo"):
    """True if the CPU has native bfloat16 arithmetic (AVX512-BF16 or AMX-BF16).

    Reads the `flags` line of /proc/cpuinfo (Linux). Elsewhere, or if it cannot be read,
    returns False: bfloat16 emulated without these instructions is slower than float32.

    Example:
    >>> with open("cpuinfo", "w") as fh:   # a Sapphire Rapids / Zen 4 flags line, shortened
    ...     _ = fh.write("flags : fpu sse2 avx512f avx512_bf16 amx_bf16")
    >>> cpu_supports_bf16("cpuinfo")
    True
    """
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[-1].split())
                    return bool(flags & {"avx512_bf16", "amx_bf16"})
    except OSError:
        pass
    return False


def resolve_precision(precision="auto"):
    """The compute precision `precision` means on this machine: `"fp32"` or `"bf16"`.

    Args:
        precision: `"auto"`, `"fp32"`/`"float32"` or `"bf16"`/`"bfloat16"`. `"auto"` is
            `"bf16"` when `cpu_supports_bf16()` and no GPU is visible, else `"fp32"`.

    Example:
    >>> resolve_precision("float32"), resolve_precision("bfloat16")
    ('fp32', 'bf16')
    >>> resolve_precision("auto") == ("bf16" if cpu_supports_bf16() and not tf.config.list_logical_devices("GPU") else "fp32")
    True
    """
    name = _PRECISION_ALIASES.get(str(precision).lower(), str(precision).lower())
    if name not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {PRECISIONS} (or float32/bfloat16), got {precision!r}"
        )
    if name != "auto":
        return name
    import tensorflow as tf

    # GPUs differ too much in bf16 support to guess; float32 is always right there.
    if tf.config.list_physical_devices("GPU"):
        return "fp32"
    return "bf16" if cpu_supports_bf16() else "fp32"


def tile_windows(length, window, core, unit=1):
    """Evenly spaced `(start, stop)` windows of size `window` covering `[0, length)`.

    Neighbours overlap by at least `window - core` (= `2 * tile_pad + blend`): every position
    lies at least `(window - core) / 2` from the inner edges of some window. Starts are multiples
    of `unit` (the model's unshuffle factor), so every window's pixel-unshuffle blocks line up
    with those of an untiled pass.

    Args:
        length: int, padded image length (a multiple of `unit`).
        window: int, window length (a multiple of `unit`); `>= length` gives one window.
        core: int, at most the new pixels each window adds (`window - 2 * tile_pad - blend`,
            at least `unit`).

    Example:
    >>> tile_windows(100, 40, 24)
    [(0, 40), (20, 60), (40, 80), (60, 100)]
    """
    if length % unit or (window < length and window % unit):
        raise ValueError(
            f"tile_windows: length {length} and window {window} must be multiples of {unit}"
        )
    if window >= length:
        return [(0, length)]
    if core < unit:
        raise ValueError(f"tile core {core} must be at least {unit} pixel(s)")
    count = max(2, -(-(length - window) // core) + 1)
    n_u, w_u = length // unit, window // unit
    span, gaps = n_u - w_u, count - 1
    # floor(k * span / gaps + 1/2) in integers: successive starts differ by at most ceil of the
    # mean gap, which is <= core, so the overlap guarantee holds after rounding.
    starts = [(2 * k * span + gaps) // (2 * gaps) * unit for k in range(count)]
    return [(s, s + window) for s in starts]


def balanced_window(length, largest, overlap, unit=1):
    """The smallest window that covers `length` in as few windows as `largest` would.

    `n = ceil((length - overlap) / (largest - overlap))` windows are needed either way; windows
    of `ceil((length + (n - 1) * overlap) / n)` (rounded up to `unit`) cover the same length
    with the least overlap, so less of each window is spent on context. A 1024-pixel side with
    windows of up to 836 and an overlap of 80 needs 2 either way: windows of 552 run 2.3 times
    fewer pixels than windows of 836.

    Example:
    >>> balanced_window(1024, 836, 80), balanced_window(300, 512, 80)
    (552, 300)
    """
    if largest >= length:
        return length
    count = -(-(length - overlap) // (largest - overlap))
    window = -(-(length + (count - 1) * overlap) // count)
    return min(largest, -(-window // unit) * unit)


def feather_ramp(distance, tile_pad, blend=DEFAULT_BLEND):
    """Blend weight (before normalisation) at `distance` input pixels from a window's inner edge.

    0 up to `tile_pad`, linear to 1 at `tile_pad + blend`. `blend=0` is a hard cut in the
    middle of a `2 * tile_pad` overlap (Real-ESRGAN's tiling).

    Example:
    >>> feather_ramp(np.array([0.0, 16, 32, 40, 48, 64]), 32, 16)
    array([0. , 0. , 0. , 0.5, 1. , 1. ])
    """
    distance = np.asarray(distance, np.float64)
    if blend <= 0:
        return (distance > tile_pad).astype(np.float64)
    return np.clip((distance - tile_pad) / blend, 0.0, 1.0)


def blend_weights(length, windows, scale, tile_pad, blend=DEFAULT_BLEND):
    """Per-window 1-D weights at output resolution, summing to 1 at every output position.

    Args:
        length: padded input length; windows: from `tile_windows`; scale: model scale.

    Returns:
        list of float32 arrays, one per window, of length `(stop - start) * scale`. A 2-D
        window's weight is the outer product of its row and column weights, and those also sum
        to 1 everywhere because the windows form a grid.

    Example:
    >>> [w.shape for w in blend_weights(100, tile_windows(100, 40, 24), 4, tile_pad=4, blend=8)]
    [(160,), (160,), (160,), (160,)]
    """
    centres = (np.arange(length * scale) + 0.5) / scale  # output pixel centres, input units
    raw = []
    for start, stop in windows:
        c = centres[start * scale : stop * scale]
        distance = np.full(c.shape, np.inf)
        if start > 0:
            distance = np.minimum(distance, c - start)
        if stop < length:
            distance = np.minimum(distance, stop - c)
        raw.append(feather_ramp(distance, tile_pad, blend))
    total = np.zeros(length * scale)
    for (start, stop), w in zip(windows, raw):
        total[start * scale : stop * scale] += w
    if not np.all(total > 0):
        raise ValueError(
            f"blend_weights: the windows overlap by less than 2 * tile_pad = {2 * tile_pad}, "
            "so some output pixels would get no weight"
        )
    return [
        (w / total[start * scale : stop * scale]).astype(np.float32)
        for (start, stop), w in zip(windows, raw)
    ]


def _check_image(image):
    """Raise a clear error for anything `Upscaler` cannot take; return the array."""
    if not isinstance(image, np.ndarray):
        hint = ""
        if type(image).__module__.startswith("PIL"):
            hint = " (for a PIL image use np.asarray(image))"
        elif hasattr(image, "numpy"):
            hint = " (for a tensor use .numpy())"
        raise TypeError(f"upscale: expected a numpy array, got {type(image).__name__}{hint}")
    if image.dtype.kind == "f":
        raise TypeError(
            f"upscale: got a {image.dtype} array; images must be uint8 or uint16 so the value "
            "range is not a guess. Convert with (np.clip(x, 0, 1) * 255).round().astype(np.uint8) "
            "for [0, 1] floats, or use Upscaler.predict for float32 RGB in [0, 1]"
        )
    if image.dtype not in _PEAK:
        raise TypeError(
            f"upscale: got a {image.dtype} array; images must be uint8 or uint16 (e.g. "
            "image.astype(np.uint8) if the values are 0..255)"
        )
    if image.ndim not in (2, 3):
        extra = " (one image at a time: loop over the batch)" if image.ndim == 4 else ""
        raise ValueError(
            f"upscale: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape "
            f"{image.shape}{extra}"
        )
    if image.ndim == 3 and image.shape[-1] not in (1, 3, 4):
        hint = " (grey + alpha? expand it to RGBA)" if image.shape[-1] == 2 else ""
        raise ValueError(
            f"upscale: {image.shape[-1]} channels is not grey (1), RGB (3) or RGBA (4); shape "
            f"{image.shape}{hint}"
        )
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"upscale: zero-size image, shape {image.shape}")
    return image


def _fill_transparent(rgb, visible):
    """RGB with every invisible pixel replaced by the colour of the visible ones around it.

    Pull-push: average the visible colours down a 2x2 pyramid until every cell has some, then
    fill each invisible pixel from the finest level that has colour there. Linear in the pixels,
    and it fills holes of any size.
    """
    colour = rgb * visible[..., None]
    weight = visible.astype(np.float32)
    levels = []
    while colour.shape[0] > 1 or colour.shape[1] > 1:
        levels.append((colour, weight))
        h, w = colour.shape[:2]
        ph, pw = h % 2, w % 2
        colour = np.pad(colour, ((0, ph), (0, pw), (0, 0)))
        weight = np.pad(weight, ((0, ph), (0, pw)))
        colour = colour.reshape(colour.shape[0] // 2, 2, colour.shape[1] // 2, 2, 3).sum((1, 3))
        weight = weight.reshape(weight.shape[0] // 2, 2, weight.shape[1] // 2, 2).sum((1, 3))
    filled = colour / np.maximum(weight, 1e-12)[..., None]
    for colour, weight in reversed(levels):
        h, w = weight.shape
        coarse = np.repeat(np.repeat(filled, 2, axis=0), 2, axis=1)[:h, :w]
        own = colour / np.maximum(weight, 1e-12)[..., None]
        filled = np.where(weight[..., None] > 0, own, coarse)
    return np.where(visible[..., None], rgb, filled).astype(np.float32)


def _out_size(height, width, outscale):
    outscale = float(outscale)
    if not math.isfinite(outscale) or outscale <= 0:
        raise ValueError(f"upscale: outscale must be a positive number, got {outscale}")
    return (max(1, math.floor(outscale * height + 0.5)), max(1, math.floor(outscale * width + 0.5)))


def _quantize(x, peak, dtype):
    """float in [0, 1] (clipped, in place) -> integer `dtype` with `peak` levels, rounded."""
    np.clip(x, 0.0, 1.0, out=x)
    x *= np.float32(peak)
    return np.rint(x, out=x).astype(dtype)


class Upscaler:
    """Upscale uint8/uint16 images with an RRDBNet generator, tiled, blended and in bf16 if fast.

    Build one per generator and reuse it: it holds the traced functions (one per precision) and
    the bfloat16 copy of the weights.

    Args:
        generator: a `keras_esrgan.RRDBNet` (3 channels in and out, any scale, any dtype policy)
            or the path of a weights file (anything `load_generator` reads).
        tile: low-resolution pixels each window adds (square), as Real-ESRGAN's `--tile`: the
            network sees `(tile + 2 * tile_pad + blend)^2` windows. `None` (default): automatic,
            the whole image in one pass when its padded size is at most `max_tile_pixels`, else
            as few windows within it as possible, each as small as that count allows
            (`balanced_window`). `0`: never tile (the whole image at once, whatever
            its size).
        tile_pad: context pixels on each side of a window whose output is never used (as
            Real-ESRGAN's `--tile_pad`). Default 32: with `blend` 16, 62 dB to an untiled pass
            and at most 4 levels off, measured with real weights (see `DEFAULT_TILE_PAD`).
        blend: width in input pixels of the cross-fade between neighbouring windows, beyond
            `tile_pad`; neighbours overlap by `2 * tile_pad + blend`. 0 = hard cut (Real-ESRGAN).
            `tile`, `tile_pad` and `blend` are rounded up to multiples of the unshuffle factor.
        precision: `"auto"` (bf16 on CPUs with native bf16, else fp32), `"fp32"` or `"bf16"`.
        alpha_mode: how RGBA alpha is upscaled: `"model"` (run through the network as a grey
            image, Real-ESRGAN's default) or `"resize"` (bicubic, clipped; faster and never
            invents detail). A constant alpha (e.g. fully opaque) stays constant either way.
        max_tile_pixels: pixel budget of one window for `tile=None`. Default:
            `DEFAULT_MEMORY_BUDGET` (1 GiB) / `BYTES_PER_PIXEL` of the precision, i.e. 349,525
            pixels (591^2) in fp32 and 524,288 (724^2) in bf16.
        max_memory: bytes the whole job of one image (input copies, output, network, weights:
            `memory_needed`) may take; an image over it is refused with `ImageTooLargeError`
            before any work. Default: `DEFAULT_MEMORY_SHARE` (80%) of the machine's memory
            (`physical_memory`, the cgroup limit in a container).

    Attributes:
        precision: what `precision` resolved to on this machine, `"fp32"` or `"bf16"`.
        scale: the model's scale (4, 2 or 1).
        fp32_fallbacks: windows re-run in float32 because bf16 gave NaN/Inf.

    Image kinds (`__call__`): grey runs as RGB with three equal channels and comes back grey
    (BT.601 luma of the output); 16-bit stays 16-bit (decided by the dtype: x / 65535 in, output
    x 65535 rounded out); RGBA: the RGB of fully transparent pixels is replaced by the average
    colour of the visible pixels around them before upscaling (pull-push fill), because the
    network's context is tens of pixels wide and would otherwise drag hidden colours (often
    black) into visible edges; so the output RGB under fully transparent pixels is not the
    stored one. Sizes that are not multiples of the unshuffle factor (x2: 2, x1: 4) are
    edge-padded and cropped back.

    Example:
    >>> from keras_esrgan.images import read_image
    >>> up = Upscaler(keras_esrgan.load_generator("RealESRGAN_x4plus.pth"), precision="fp32")
    >>> up.precision, up.scale
    ('fp32', 4)
    >>> photo = read_image("photo.png")
    >>> photo.shape, up(photo).shape, up(photo).dtype      # uint8 (H, W, 3) -> (4H, 4W, 3)
    ((24, 32, 3), (96, 128, 3), dtype('uint8'))
    >>> image16 = np.zeros((10, 12, 4), np.uint16)         # 16-bit RGBA
    >>> up(image16, outscale=2).shape, up(image16, outscale=2).dtype
    ((20, 24, 4), dtype('uint16'))
    """

    def __init__(
        self,
        generator,
        tile=None,
        tile_pad=DEFAULT_TILE_PAD,
        precision="auto",
        alpha_mode="model",
        max_tile_pixels=None,
        blend=DEFAULT_BLEND,
        max_memory=None,
    ):
        self.precision = resolve_precision(precision)
        if alpha_mode not in ALPHA_MODES:
            raise ValueError(f"alpha_mode must be one of {ALPHA_MODES}, got {alpha_mode!r}")
        self.alpha_mode = alpha_mode
        tile, tile_pad, blend, max_tile_pixels = (
            _size_arg(name, value) for name, value in
            (("tile", tile), ("tile_pad", tile_pad), ("blend", blend), ("max_tile_pixels", max_tile_pixels))
        )
        if max_memory is not None and not (
            isinstance(max_memory, (int, float, np.integer, np.floating))
            and not isinstance(max_memory, bool) and max_memory > 0 and not math.isnan(max_memory)
        ):
            raise ValueError(f"max_memory must be a positive number of bytes or None, got {max_memory!r}")
        if tile_pad is None or blend is None:
            raise ValueError("tile_pad and blend must be non-negative integers, not None")
        if max_tile_pixels is not None and max_tile_pixels < 1:
            raise ValueError(f"max_tile_pixels must be at least 1, got {max_tile_pixels}")

        from keras_esrgan.models.rrdbnet import RRDBNet

        if isinstance(generator, (str, os.PathLike)):
            from keras_esrgan.weights import load_generator

            # float32 weights: the bf16 copy is made from them, and the fp32 fallback uses them.
            generator = load_generator(generator)
        if not isinstance(generator, RRDBNet):
            raise TypeError(
                f"Upscaler: generator must be a keras_esrgan RRDBNet or a weights path, got "
                f"{type(generator).__name__}"
            )
        if generator.num_in_ch != 3 or generator.num_out_ch != 3:
            raise ValueError(
                f"Upscaler: needs an RGB generator (3 channels in and out), got "
                f"num_in_ch={generator.num_in_ch}, num_out_ch={generator.num_out_ch}"
            )
        self.generator = generator
        self.scale = generator.scale
        self.unshuffle_factor = f = generator.unshuffle_factor
        self.tile = None if tile is None else -(-int(tile) // f) * f
        self.tile_pad = -(-int(tile_pad) // f) * f
        self.blend = -(-int(blend) // f) * f
        self.max_tile_pixels = int(
            max_tile_pixels
            if max_tile_pixels is not None
            else DEFAULT_MEMORY_BUDGET // BYTES_PER_PIXEL[self.precision]
        )
        self.max_memory = default_max_memory() if max_memory is None else max_memory
        self.fp32_fallbacks = 0
        self._models = {}
        self._functions = {}

    # --- the network -------------------------------------------------------------------------

    def _model(self, precision):
        if precision not in self._models:
            policy = _POLICY[precision]
            if self.generator.dtype_policy.name == policy:
                model = self.generator
            else:
                model = type(self.generator)(**self.generator.config, dtype=policy)
                model.set_weights(self.generator.get_weights())
            self._models[precision] = model
        return self._models[precision]

    def _function(self, precision):
        """The generator in `precision`, traced once with dynamic shapes: the trunk on the
        whole window, then the upsampling tail in bands of feature rows
        (`RRDBNet.reconstruct_in_bands`), whose maps are 16 times the size of the features and
        most of a pass's memory: in bands they cost a constant instead of growing with the
        window, for the same output."""
        if precision not in self._functions:
            import tensorflow as tf

            model = self._model(precision)
            self._functions[precision] = tf.function(
                lambda x: model.reconstruct_in_bands(model.features(x)),
                input_signature=[tf.TensorSpec([1, None, None, model.num_in_ch], tf.float32)],
                autograph=False,
                jit_compile=False,
            )
        return self._functions[precision]

    def _run(self, precision, window):
        """float32 `(h, w, 3)` window -> float32 `(s*h, s*w, 3)` in `precision`."""
        return self._function(precision)(window[None]).numpy()[0]

    def _forward(self, window):
        """float32 `(h, w, 3)` window -> float32 `(s*h, s*w, 3)`, with the fp32 fallback."""
        out = self._run(self.precision, window)
        if np.isfinite(out).all():
            return out
        if self.precision != "fp32":
            self.fp32_fallbacks += 1
            logger.warning(
                "bfloat16 output of a %dx%d window has NaN/Inf; running it again in float32",
                window.shape[0], window.shape[1],
            )
            out = self._run("fp32", window)
            if np.isfinite(out).all():
                return out
        raise FloatingPointError(
            "the generator's float32 output has NaN/Inf: its weights are broken (or the input "
            "is far outside [0, 1])"
        )

    # --- tiling ------------------------------------------------------------------------------

    def tile_plan(self, height, width):
        """The windows an `(height, width)` input runs as (after padding to the unshuffle factor).

        Returns a `TilePlan`; `num_tiles == 1` means one untiled pass.

        Example:
        >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> Upscaler(net, tile=128, tile_pad=32, blend=16).tile_plan(300, 500).num_tiles
        8
        """
        f = self.unshuffle_factor
        hp, wp = -(-height // f) * f, -(-width // f) * f
        overlap = 2 * self.tile_pad + self.blend
        if self.tile == 0 or (self.tile is None and hp * wp <= self.max_tile_pixels):
            return TilePlan(hp, wp, [(0, hp)], [(0, wp)])
        if self.tile is not None:
            wh = ww = self.tile + overlap
        else:
            budget = self.max_tile_pixels
            side = math.isqrt(budget)
            # A long thin image gets windows of its full short side, longer in the other.
            if hp <= side:
                wh, ww = hp, budget // hp
            elif wp <= side:
                wh, ww = budget // wp, wp
            else:
                wh = ww = side
            wh, ww = max(f, wh // f * f), max(f, ww // f * f)
            for window, length in ((wh, hp), (ww, wp)):
                if window < length and window - overlap < f:
                    raise ValueError(
                        f"max_tile_pixels={budget} gives windows of {wh}x{ww}, too small for "
                        f"an overlap of {overlap} (2 * tile_pad={self.tile_pad} + "
                        f"blend={self.blend}); raise max_tile_pixels or lower tile_pad"
                    )
            wh, ww = balanced_window(hp, wh, overlap, f), balanced_window(wp, ww, overlap, f)
        rows = tile_windows(hp, min(wh, hp), wh - overlap, f)
        cols = tile_windows(wp, min(ww, wp), ww - overlap, f)
        return TilePlan(hp, wp, rows, cols)

    def memory_needed(self, height, width, channels=3, dtype="uint8", outscale=None):
        """Estimated peak host memory, in bytes, of upscaling one `(height, width)` image.

        The sum of what exists at once at the peak: the input and its float32 copy (and the
        RGB copies grey and RGBA images run as), the output array, the float band or whole float
        output the network's results are rounded from, the network's activations for one window
        (`BYTES_PER_PIXEL`) and the weights. A `__call__` on an image whose estimate exceeds
        `max_memory` is refused before any work. The process itself (Python, TensorFlow: about
        0.5 GB) comes on top.

        Args:
            height, width: input size; channels: 1, 3 or 4; dtype: `"uint8"`/`"uint16"`;
            outscale: as for `__call__`.

        Returns:
            dict of bytes: `input` (the image and its float copies), `output` (the result),
            `bands` (float results before rounding), `network` (activations of one window),
            `weights`, and their `total`.

        Example:
        >>> up = Upscaler(keras_esrgan.RRDBNet(), precision="fp32")   # the full x4 model
        >>> round(up.memory_needed(2048, 2048)["total"] / 2**30, 2)   # GiB, 16 windows of 572^2
        1.62
        """
        item = np.dtype(dtype).itemsize
        s, f = self.scale, self.unshuffle_factor
        plan = self.tile_plan(height, width)
        hp, wp = plan.height, plan.width
        pixels = height * width
        inputs = pixels * channels * (item + 4)  # the image and its float32 copy
        if channels != 3:
            inputs += pixels * 3 * 4  # the RGB copy a grey image (or alpha) runs as
        if channels == 4:
            inputs += 4 * pixels * 3 * 4  # the pull-push fill of transparent pixels
        if (hp, wp) != (height, width):
            inputs += hp * wp * 3 * 4  # the padded copy
        out_h, out_w = (s * height, s * width) if outscale is None else _out_size(height, width, outscale)
        resize = (out_h, out_w) != (s * height, s * width)
        output = s * s * pixels * channels * (4 if resize else item)
        if resize:
            output += out_h * out_w * channels * (4 + item)  # resized float32, then rounded
        wh, ww = plan.window
        if plan.num_tiles == 1:
            band = s * s * hp * wp
            bands = band * 3 * (4 + item)  # the float output and its rounded copy
        else:
            band = s * wh * s * wp
            bands = band * 3 * 4 + s * wh * s * ww * (2 * 3 + 1) * 4  # band, window, weights
        if channels != 3:
            bands += band * 4  # the luma of a grey run
        bands += (inputs + output + bands) // 20 + 65536  # the small arrays between, rounded up
        network = wh * ww * BYTES_PER_PIXEL[self.precision]
        weights = self.generator.count_params() * (4 if self.precision == "fp32" else 6)
        total = inputs + output + bands + network + weights
        return dict(input=inputs, output=output, bands=bands, network=network, weights=weights, total=total)

    def check_memory(self, height, width, channels=3, dtype="uint8", outscale=None, name="image"):
        """Raise `ImageTooLargeError` if upscaling such an image would exceed `max_memory`.

        `name` (e.g. the file) starts the message. The CLI calls this with the size read from
        the file's header (`keras_esrgan.images.probe_image`), before decoding it.
        """
        if self.max_memory is None:
            return
        need = self.memory_needed(height, width, channels, dtype, outscale)
        if need["total"] > self.max_memory:
            from keras_esrgan.images import ImageTooLargeError

            raise ImageTooLargeError(
                f"{name}: upscaling {width}x{height} ({channels} channel(s), {dtype}) to "
                f"x{self.scale if outscale is None else outscale} needs about {_gib(need['total'])} "
                f"(input {_gib(need['input'])}, output {_gib(need['output'])}, network "
                f"{_gib(need['network'] + need['bands'])}), more than the memory budget of "
                f"{_gib(self.max_memory)}; cut the image into parts, or raise the budget "
                "(max_memory=, --max-memory) if the machine has the memory"
            )

    def strips(self, x):
        """Yield the network's output on float32 RGB in finished bands of rows, top to bottom.

        The blended output of a tiled pass is accumulated in a band one window high: once a row
        of windows has run, the output rows above the next row of windows are final and are
        yielded, and only the overlap is carried on. Host memory is then set by the window and
        the image width, not the image height (12 bytes per output pixel of the band instead of
        the whole image). `predict` joins the bands; `__call__` rounds each band into the
        integer output as it comes.

        Args:
            x: float32 `(H, W, 3)` in [0, 1], any H and W >= 1.

        Yields:
            `(row, band)`: float32 `band` of shape `(n, scale*W, 3)` holding output rows
            `row .. row + n`, not clipped. `band` is a view of a buffer that the next band
            reuses: use it (or modify it in place) before asking for the next, or copy it.

        Example:
        >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> strips = Upscaler(net, tile=64).strips(np.zeros((200, 100, 3), "float32"))
        >>> [(row, band.shape) for row, band in strips]
        [(0, (224, 400, 3)), (224, (576, 400, 3))]
        """
        x = np.asarray(x, np.float32)
        if x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"predict: expected float (H, W, 3), got shape {x.shape}")
        h, w = x.shape[:2]
        s = self.scale
        plan = self.tile_plan(h, w)
        if (plan.height, plan.width) != (h, w):
            # Edge-replicate bottom/right, as the SavedModel export does for x2/x1.
            x = np.pad(x, ((0, plan.height - h), (0, plan.width - w), (0, 0)), mode="edge")
        if plan.num_tiles == 1:
            yield 0, self._forward(x)[: s * h, : s * w]
            return
        weights_y = blend_weights(plan.height, plan.rows, s, self.tile_pad, self.blend)
        weights_x = blend_weights(plan.width, plan.cols, s, self.tile_pad, self.blend)
        window_h = plan.window[0]
        band = np.zeros((s * window_h, s * plan.width, 3), np.float32)  # rows s*y0 .. s*y1
        for i, ((y0, _), wy) in enumerate(zip(plan.rows, weights_y)):
            for (x0, x1), wx in zip(plan.cols, weights_x):
                tile = self._forward(np.ascontiguousarray(x[y0 : y0 + window_h, x0:x1]))
                tile *= wy[:, None, None] * wx[None, :, None]
                band[:, s * x0 : s * x1] += tile
            last = i + 1 == len(plan.rows)
            done = s * ((plan.rows[i + 1][0] if not last else plan.height) - y0)
            rows = min(done, s * h - s * y0)  # crop the unshuffle padding at the bottom
            if rows > 0:
                yield s * y0, band[:rows, : s * w]
            if not last:
                keep = s * window_h - done
                band[:keep] = band[done:]  # numpy copies overlapping ranges correctly
                band[keep:] = 0.0

    def predict(self, x):
        """The network on float32 RGB, tiled and blended as `__call__` does, output not clipped.

        Args:
            x: float32 `(H, W, 3)` in [0, 1], any H and W >= 1.

        Returns:
            float32 `(scale*H, scale*W, 3)`, nominally in [0, 1].

        Example:
        >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> Upscaler(net, precision="fp32").predict(np.zeros((10, 12, 3), "float32")).shape
        (40, 48, 3)
        """
        bands = self.strips(x)
        row, band = next(bands)
        if band.shape[0] == self.scale * np.shape(x)[0]:
            return band  # one untiled pass: no copy
        out = np.empty((self.scale * np.shape(x)[0],) + band.shape[1:], np.float32)
        out[row : row + band.shape[0]] = band
        for row, band in bands:
            out[row : row + band.shape[0]] = band
        return out

    # --- images ------------------------------------------------------------------------------

    def _grey_strips(self, channel):
        """Bands of a single channel (H, W) run through the network as grey RGB, luma back."""
        for row, band in self.strips(np.repeat(channel[..., None], 3, axis=-1)):
            yield row, band @ _LUMA

    def _alpha_strips(self, alpha):
        s = self.scale
        h, w = alpha.shape
        if alpha.min() == alpha.max():
            yield 0, np.full((s * h, s * w), alpha.flat[0], np.float32)
        elif self.alpha_mode == "model":
            yield from self._grey_strips(alpha)
        else:
            import tensorflow as tf

            resized = tf.image.resize(alpha[..., None], (s * h, s * w), method="bicubic")
            yield 0, resized.numpy()[..., 0]

    def __call__(self, image, outscale=None):
        """Upscale one image.

        Args:
            image: numpy uint8 or uint16, `(H, W)` / `(H, W, 1)` grey, `(H, W, 3)` RGB or
                `(H, W, 4)` RGBA (straight alpha, as PNG stores it).
            outscale: final scale factor (any positive number); the output is resized (bicubic,
                antialiased when shrinking) from the network's `scale` to
                `round(outscale * H) x round(outscale * W)`. `None`: the model's scale.

        Returns:
            An array of the same dtype and channel layout, `(s*H, s*W[, C])`.

        Raises:
            TypeError: not a numpy array, or a dtype other than uint8/uint16 (float included).
            ValueError: a shape that is not an image (2 or 5 channels, zero size, 4-D).
            ImageTooLargeError (an ImageError, a ValueError): the whole job would need more
                than `max_memory` (see `memory_needed`).

        Example:
        >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> Upscaler(net)(np.zeros((32, 48, 4), np.uint16), outscale=3.5).shape
        (112, 168, 4)
        """
        image = _check_image(image)
        peak = _PEAK[image.dtype]
        h, w = image.shape[:2]
        s = self.scale
        channels = 1 if image.ndim == 2 else image.shape[2]
        self.check_memory(h, w, channels, image.dtype.name, outscale, name="upscale")
        x = image.reshape(h, w, -1).astype(np.float32)
        x /= np.float32(peak)
        channels = x.shape[-1]
        size = (s * h, s * w) if outscale is None else _out_size(h, w, outscale)
        resize = size != (s * h, s * w)
        # Without a final resize each band is rounded into the integer output as it comes, so
        # no float copy of the whole output ever exists (see `strips`).
        out = np.empty((s * h, s * w, channels), np.float32 if resize else image.dtype)

        def write(channel, bands):
            for row, band in bands:
                band = band.reshape(band.shape[0], s * w, -1)
                rows = slice(row, row + band.shape[0])
                out[rows, :, channel] = band if resize else _quantize(band, peak, image.dtype)

        if channels == 1:
            write(slice(0, 1), self._grey_strips(x[..., 0]))
        elif channels == 3:
            write(slice(0, 3), self.strips(x))
        else:
            rgb, alpha = x[..., :3], x[..., 3]
            visible = alpha > 0
            if not visible.all() and visible.any():
                rgb = _fill_transparent(rgb, visible)
            write(slice(0, 3), self.strips(rgb))
            write(slice(3, 4), self._alpha_strips(alpha))
        if resize:
            import tensorflow as tf

            resized = tf.image.resize(out, size, method="bicubic", antialias=True).numpy()
            out = _quantize(resized, peak, image.dtype)
        return out[..., 0] if image.ndim == 2 else out


def upscale(
    generator,
    image,
    tile=None,
    tile_pad=DEFAULT_TILE_PAD,
    outscale=None,
    precision="auto",
    alpha_mode="model",
    blend=DEFAULT_BLEND,
    max_memory=None,
):
    """Upscale one image: `Upscaler(generator, ...)(image, outscale)` in one call.

    Builds (and traces) a new `Upscaler` each call; for more than one image, make an
    `Upscaler` once and call it. Arguments and the image kinds are `Upscaler`'s.

    Args:
        generator: an `RRDBNet` or a weights path.
        image: numpy uint8/uint16 `(H, W)`, `(H, W, 1)`, `(H, W, 3)` or `(H, W, 4)`.

    Returns:
        The same dtype and channel layout, upscaled by the model's scale or `outscale`.

    Example:
    >>> from keras_esrgan.images import read_image
    >>> sr = upscale("RealESRGAN_x4plus.pth", read_image("photo.png"), outscale=2)
    >>> sr.shape, sr.dtype                                  # photo.png: 24 x 32 RGB
    ((48, 64, 3), dtype('uint8'))
    """
    upscaler = Upscaler(
        generator, tile=tile, tile_pad=tile_pad, precision=precision, alpha_mode=alpha_mode,
        blend=blend, max_memory=max_memory,
    )
    return upscaler(image, outscale=outscale)
