"""Tiling on the host: where the windows of an image go, how their outputs blend, the strip driver.

- **Tiles.** An image whose padded size is over the window budget never goes through the
  network at once: it is cut into overlapping windows of one common shape (edge windows are
  shifted inwards, not padded, so they see the same image border as an untiled pass and there
  is only one window shape), each window runs alone, and the outputs are blended. The windows
  are as few as the budget allows and, at that count, as small as covering the image allows
  (`balanced_window`), so the least compute goes to overlap (`plan_tiles`). Network memory is
  then set by the window, not by the image.
- **Feathered blending.** Neighbouring windows overlap by at least `2 * tile_pad + blend` input
  pixels. Each window's output is weighted by a ramp of the distance to its inner edges (edges on
  the image border do not count): 0 within `tile_pad` (as in Real-ESRGAN, those pixels lack
  context and are never used), rising linearly to 1 at `tile_pad + blend`; the weights are
  normalised to sum to 1 everywhere. Where only one window has weight, the output is that
  window's output unchanged, so it equals an untiled pass wherever the window holds the whole
  receptive field. Across the overlap one window fades into the next, so there is no step for
  the eye to see, and since every pixel used is at least `tile_pad` from an inner edge, the
  error is never worse than pasting windows cut at `tile_pad` (Real-ESRGAN's tiling).
- **Output strips.** The blended output is accumulated in float32 in a strip one window high
  that moves down the image (`tiled_strips`): each finished strip is handed over at once (the
  `Upscaler` rounds it into the uint8/uint16 output), so no float copy of the whole output
  exists and peak memory is the output itself plus a constant (`python benchmarks/memory.py
  images`).
"""

import math
from typing import NamedTuple

import numpy as np

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


def plan_tiles(height, width, *, max_tile_pixels, tile=None, tile_pad=DEFAULT_TILE_PAD,
               blend=DEFAULT_BLEND, unit=1):
    """The windows an `(height, width)` input runs as, after padding to multiples of `unit`.

    Args:
        height, width: input size (before padding).
        max_tile_pixels: pixel budget of one window for `tile=None`.
        tile: new pixels each window adds (square): windows of `tile + 2 * tile_pad + blend`;
            None: automatic (one pass when the padded image fits `max_tile_pixels`, else as few
            windows within it as possible, each as small as that count allows); 0: never tile.
        tile_pad, blend: see `feather_ramp`; neighbours overlap by `2 * tile_pad + blend`.
        unit: what window starts and sizes are multiples of (the model's `input_multiple`);
            `tile`, `tile_pad` and `blend` are taken as multiples of it already.

    Returns:
        A `TilePlan`; `num_tiles == 1` means one untiled pass.

    Raises:
        ValueError: a budget too small for the overlap.

    Example:
    >>> plan_tiles(300, 500, max_tile_pixels=10**6, tile=128).num_tiles   # windows of 208
    8
    >>> plan_tiles(300, 500, max_tile_pixels=10**6).num_tiles             # fits: one pass
    1
    """
    f = unit
    hp, wp = -(-height // f) * f, -(-width // f) * f
    overlap = 2 * tile_pad + blend
    if tile == 0 or (tile is None and hp * wp <= max_tile_pixels):
        return TilePlan(hp, wp, [(0, hp)], [(0, wp)])
    if tile is not None:
        wh = ww = tile + overlap
    else:
        budget = max_tile_pixels
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
                    f"an overlap of {overlap} (2 * tile_pad={tile_pad} + "
                    f"blend={blend}); raise max_tile_pixels or lower tile_pad"
                )
        wh, ww = balanced_window(hp, wh, overlap, f), balanced_window(wp, ww, overlap, f)
    rows = tile_windows(hp, min(wh, hp), wh - overlap, f)
    cols = tile_windows(wp, min(ww, wp), ww - overlap, f)
    return TilePlan(hp, wp, rows, cols)


def tiled_strips(run, x, plan, scale, tile_pad=DEFAULT_TILE_PAD, blend=DEFAULT_BLEND):
    """Yield the blended output of `run` over the windows of `plan`, in strips, top to bottom.

    The output is accumulated in a strip one window high: once a row of windows has run, the
    output rows above the next row of windows are final and are yielded, and only the overlap
    is carried on. Host memory is then set by the window and the image width, not the image
    height (12 bytes per output pixel of the strip instead of the whole image).

    Args:
        run: callable float32 window `(h, w, C)` -> float32 `(scale*h, scale*w, C_out)` (a
            `NetworkRunner`).
        x: float32 `(plan.height, plan.width, C)`, the input padded to the plan.
        plan: a `TilePlan` (`plan_tiles`).
        scale: the model's scale.
        tile_pad, blend: the plan's (see `blend_weights`).

    Yields:
        `(row, strip)`: float32 `strip` of shape `(n, scale * plan.width, C_out)` holding output
        rows `row .. row + n`. `strip` is a view of a buffer that the next strip reuses: use it
        (or modify it in place) before asking for the next, or copy it.

    Example:
    >>> plan = plan_tiles(20, 8, max_tile_pixels=100, tile=4, tile_pad=2, blend=0)
    >>> nearest = lambda w: np.repeat(np.repeat(w, 2, 0), 2, 1)      # a "network" of scale 2
    >>> [(row, strip.shape) for row, strip in tiled_strips(nearest, np.ones((20, 8, 1), "float32"), plan, 2, 2, 0)]
    [(0, (8, 16, 1)), (8, (8, 16, 1)), (16, (8, 16, 1)), (24, (16, 16, 1))]
    """
    s = scale
    if plan.num_tiles == 1:
        yield 0, run(x)
        return
    weights_y = blend_weights(plan.height, plan.rows, s, tile_pad, blend)
    weights_x = blend_weights(plan.width, plan.cols, s, tile_pad, blend)
    window_h = plan.window[0]
    strip = None  # output rows s*y0 .. s*(y0 + window_h), allocated at the first window
    for i, ((y0, _), wy) in enumerate(zip(plan.rows, weights_y)):
        for (x0, x1), wx in zip(plan.cols, weights_x):
            tile = run(np.ascontiguousarray(x[y0 : y0 + window_h, x0:x1]))
            if strip is None:
                strip = np.zeros((s * window_h, s * plan.width, tile.shape[-1]), np.float32)
            tile *= wy[:, None, None] * wx[None, :, None]
            strip[:, s * x0 : s * x1] += tile
        last = i + 1 == len(plan.rows)
        done = s * ((plan.rows[i + 1][0] if not last else plan.height) - y0)
        yield s * y0, strip[:done]
        if not last:
            keep = s * window_h - done
            strip[:keep] = strip[done:]  # numpy copies overlapping ranges correctly
            strip[keep:] = 0.0
