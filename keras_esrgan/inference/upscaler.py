"""`Upscaler`: upscale uint8/uint16 images of every kind with a generator; `upscale` in one call.

`Upscaler(generator)(image)` takes a numpy uint8/uint16 image (grey `(H, W)` or `(H, W, 1)`, RGB
`(H, W, 3)`, RGBA `(H, W, 4)`) and returns the same kind, `scale` (or `outscale`) times larger.
It checks its arguments and the image, turns the image into float32 RGB (`keras_esrgan.pixels`),
runs it through the network in tiles (`keras_esrgan.inference.tiling`, with the generator in
`keras_esrgan.inference.runtime.NetworkRunner`) and rounds the output strips back into the
image's dtype as they come. A whole job that would not fit the memory budget (`max_memory`,
`memory_needed`) is refused before any work.
"""

import math
import os

import numpy as np
import tensorflow as tf

from keras_esrgan.images import ImageTooLargeError
from keras_esrgan.inference.runtime import BYTES_PER_PIXEL, NetworkRunner
from keras_esrgan.inference.tiling import DEFAULT_BLEND, DEFAULT_TILE_PAD, plan_tiles, tiled_strips
from keras_esrgan.interpolation import interpolate_pair
from keras_esrgan.models.generator import SRGenerator
from keras_esrgan.pixels import IMAGE_DTYPES, as_rgb, luma, pad_to_multiple, quantize, to_float
from keras_esrgan.precision import DEFAULT_INFERENCE_PRECISION, inference_policy
from keras_esrgan.weights import load_generator

ALPHA_MODES = ("model", "resize")
DEFAULT_ALPHA_MODE = "model"  # Real-ESRGAN's: alpha through the network too
# The 8 symmetries of the square that test-time augmentation runs (BasicSR's self-ensemble):
# (forward on the input, inverse on the output), for (H, W, C) arrays. k quarter turns
# anticlockwise, after a left-right flip for the last four.
TTA_TRANSFORMS = tuple(
    (
        (lambda a, k=k, f=flip: np.rot90(a[:, ::-1] if f else a, k)),
        (lambda a, k=k, f=flip: (lambda b: b[:, ::-1] if f else b)(np.rot90(a, -k))),
    )
    for flip in (False, True)
    for k in range(4)
)
# The pixel budget automatic tiling keeps each window within (with `BYTES_PER_PIXEL`): windows
# of up to 591^2 pixels in fp32 and 724^2 in bf16, which keeps a 2048^2 -> 8192^2 upscale under
# 3 GiB in all.
DEFAULT_MEMORY_BUDGET = 1024**3
# The share of the machine's memory (RAM, or the cgroup's limit in a container) a whole upscale
# may take by default (`Upscaler(max_memory=None)`): the rest is the OS, the Python process and
# TensorFlow themselves. An image that does not fit is refused before it is decoded (the CLI)
# or before any work (`Upscaler.__call__`), instead of the process being OOM-killed.
DEFAULT_MEMORY_SHARE = 0.8


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
            "range is not a guess. Convert [0, 1] floats with keras_esrgan.pixels.quantize(x) "
            "(x.astype(np.uint8) would truncate them), or use Upscaler.predict for float32 RGB "
            "in [0, 1]"
        )
    if image.dtype not in IMAGE_DTYPES:
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


class Upscaler:
    """Upscale uint8/uint16 images with a generator, tiled, blended and in bf16 if fast.

    Build one per generator and reuse it: its `runner` holds the traced functions (one per
    precision) and the bfloat16 copy of the weights.

    Args:
        generator: a `keras_esrgan.models.SRGenerator` such as `RRDBNet` or `SRVGGNetCompact`
            (3 channels in and out, any scale, any dtype policy), the path of a weights file
            (anything `load_generator` reads), or a model-zoo name (`"realesr-general-x4v3"`,
            `"RealESRGAN_x4plus"`, ...: downloaded, verified and cached on first use).
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
            `tile`, `tile_pad` and `blend` are rounded up to multiples of `input_multiple`.
        precision: `"auto"` (bf16 on CPUs with native bf16, else fp32), `"fp32"` or `"bf16"`
            (`keras_esrgan.precision`).
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
        strength: with a model-zoo name whose entry declares an interpolable `pair`, blend
            the two: `strength * name + (1 - strength) * pair` (`interpolate_pair`), computed
            once here. Real-ESRGAN's denoise strength on `"realesr-general-x4v3"` (1: full
            denoising, 0: its weak-denoise pair); GAN vs PSNR on `"RealESRGAN_x4plus"`. None
            (default): the model alone.
        tta: test-time augmentation (ESRGAN/BasicSR's self-ensemble): the image runs through
            the network in its 8 flips and rotations (`TTA_TRANSFORMS`), each output is turned
            back and the 8 are averaged. 8 times the compute; the whole float output is held
            (see `memory_needed`). Grey, RGBA (alpha in `"model"` mode too) and tiling work as
            without it: each of the 8 passes is tiled as its (possibly rotated) shape needs.

    Attributes:
        runner: the `NetworkRunner` that runs the windows (`runner.refresh()` after the
            generator's weights change).
        generator: the generator (from a weights path: loaded in the precision that runs, so
            bfloat16 on bf16 CPUs). precision: what `precision` resolved to, `"fp32"` or `"bf16"`.
        scale: the model's scale. input_multiple: what padded sizes are multiples of.
        fp32_fallbacks: windows re-run in float32 because bf16 gave NaN/Inf.

    Image kinds (`__call__`): grey runs as RGB with three equal channels and comes back grey
    (BT.601 luma of the output); 16-bit stays 16-bit (decided by the dtype: x / 65535 in, output
    x 65535 rounded out); RGBA: the RGB of fully transparent pixels is replaced by the average
    colour of the visible pixels around them before upscaling (pull-push fill), because the
    network's context is tens of pixels wide and would otherwise drag hidden colours (often
    black) into visible edges; so the output RGB under fully transparent pixels is not the
    stored one. Sizes that are not multiples of `input_multiple` (RRDBNet x2: 2, x1: 4) are
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
        precision=DEFAULT_INFERENCE_PRECISION,
        alpha_mode=DEFAULT_ALPHA_MODE,
        max_tile_pixels=None,
        blend=DEFAULT_BLEND,
        max_memory=None,
        strength=None,
        *,
        tta=False,
    ):
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

        source = None
        if strength is not None:
            # Once per Upscaler: the blended weights are what the runner traces and copies.
            generator = interpolate_pair(generator, strength)
        elif isinstance(generator, (str, os.PathLike)):
            # Straight in the precision that runs: one model built, not a float32 model and
            # then its bf16 copy (~1 s of the first image for the x4 model). The fp32
            # fallback, if ever needed, loads the file again (`NetworkRunner(source=)`).
            source = generator
            generator = load_generator(source, dtype=inference_policy(precision))
        if not isinstance(generator, SRGenerator):
            raise TypeError(
                f"Upscaler: generator must be a keras_esrgan SRGenerator such as RRDBNet or a "
                f"weights path, got {type(generator).__name__}"
            )
        if generator.num_in_ch != 3 or generator.num_out_ch != 3:
            raise ValueError(
                f"Upscaler: needs an RGB generator (3 channels in and out), got "
                f"num_in_ch={generator.num_in_ch}, num_out_ch={generator.num_out_ch}"
            )
        self.runner = NetworkRunner(generator, precision, source=source)
        self.precision = self.runner.precision
        self.generator = generator
        self.scale = generator.scale
        self.input_multiple = f = generator.input_multiple
        self.tile = None if tile is None else -(-int(tile) // f) * f
        self.tile_pad = -(-int(tile_pad) // f) * f
        self.blend = -(-int(blend) // f) * f
        self.max_tile_pixels = int(
            max_tile_pixels
            if max_tile_pixels is not None
            else DEFAULT_MEMORY_BUDGET // BYTES_PER_PIXEL[self.precision]
        )
        self.max_memory = default_max_memory() if max_memory is None else max_memory
        if not isinstance(tta, (bool, np.bool_)):
            raise TypeError(f"tta must be True or False, got {tta!r}")
        self.tta = bool(tta)

    @property
    def fp32_fallbacks(self):
        """Windows re-run in float32 because their bf16 output held NaN/Inf."""
        return self.runner.fp32_fallbacks

    def tile_plan(self, height, width):
        """The windows an `(height, width)` input runs as (`plan_tiles` with these settings).

        Returns a `TilePlan`; `num_tiles == 1` means one untiled pass.

        Example:
        >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> Upscaler(net, tile=128, tile_pad=32, blend=16).tile_plan(300, 500).num_tiles
        8
        """
        return plan_tiles(
            height, width, max_tile_pixels=self.max_tile_pixels, tile=self.tile,
            tile_pad=self.tile_pad, blend=self.blend, unit=self.input_multiple,
        )

    def memory_needed(self, height, width, channels=3, dtype="uint8", outscale=None):
        """Estimated peak host memory, in bytes, of upscaling one `(height, width)` image.

        The sum of what exists at once at the peak: the input and its float32 copy (and the
        RGB copies grey and RGBA images run as), the output array, the float strip or whole float
        output the network's results are rounded from, the network's activations for one window
        (`BYTES_PER_PIXEL`) and the weights. A `__call__` on an image whose estimate exceeds
        `max_memory` is refused before any work. The process itself (Python, TensorFlow: about
        0.5 GB) comes on top.

        Args:
            height, width: input size; channels: 1, 3 or 4; dtype: `"uint8"`/`"uint16"`;
            outscale: as for `__call__`.

        Returns:
            dict of bytes: `input` (the image and its float copies), `output` (the result),
            `strips` (float results before rounding), `network` (activations of one window),
            `weights`, and their `total`.

        Example:
        >>> up = Upscaler(keras_esrgan.RRDBNet(), precision="fp32")   # the full x4 model
        >>> round(up.memory_needed(2048, 2048)["total"] / 2**30, 2)   # GiB, 16 windows of 572^2
        1.62
        """
        item = np.dtype(dtype).itemsize
        s = self.scale
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
            strip = s * s * hp * wp
            strips = strip * 3 * (4 + item)  # the float output and its rounded copy
        else:
            strip = s * wh * s * wp
            strips = strip * 3 * 4 + s * wh * s * ww * (2 * 3 + 1) * 4  # strip, window, weights
        if self.tta:
            # the ensemble's float sum and one pass's whole output (turned back), both full size
            strip = s * s * hp * wp
            strips = 2 * strip * 3 * 4 + strip * 3 * item + s * wh * s * ww * (2 * 3 + 1) * 4
        if channels != 3:
            strips += strip * 4  # the luma of a grey run
        strips += (inputs + output + strips) // 20 + 65536  # the small arrays between, rounded up
        network = wh * ww * BYTES_PER_PIXEL[self.precision]
        weights = self.generator.count_params() * (4 if self.precision == "fp32" else 6)
        total = inputs + output + strips + network + weights
        return dict(input=inputs, output=output, strips=strips, network=network, weights=weights, total=total)

    def check_memory(self, height, width, channels=3, dtype="uint8", outscale=None, name="image"):
        """Raise `ImageTooLargeError` if upscaling such an image would exceed `max_memory`.

        `name` (e.g. the file) starts the message. The CLI calls this with the size read from
        the file's header (`keras_esrgan.images.probe_image`), before decoding it.
        """
        if self.max_memory is None:
            return
        need = self.memory_needed(height, width, channels, dtype, outscale)
        if need["total"] > self.max_memory:
            raise ImageTooLargeError(
                f"{name}: upscaling {width}x{height} ({channels} channel(s), {dtype}) to "
                f"x{self.scale if outscale is None else outscale} needs about {_gib(need['total'])} "
                f"(input {_gib(need['input'])}, output {_gib(need['output'])}, network "
                f"{_gib(need['network'] + need['strips'])}), more than the memory budget of "
                f"{_gib(self.max_memory)}; cut the image into parts, or raise the budget "
                "(max_memory=, --max-memory) if the machine has the memory"
            )

    def strips(self, x):
        """Yield the network's output on float32 RGB in finished strips of rows, top to bottom.

        The blended output of a tiled pass is accumulated in a strip one window high
        (`tiled_strips`): host memory is set by the window and the image width, not the image
        height. `predict` joins the strips; `__call__` rounds each strip into the integer
        output as it comes.

        Args:
            x: float32 `(H, W, 3)` in [0, 1], any H and W >= 1.

        Yields:
            `(row, strip)`: float32 `strip` of shape `(n, scale*W, 3)` holding output rows
            `row .. row + n`, not clipped. `strip` is a view of a buffer that the next strip
            reuses: use it (or modify it in place) before asking for the next, or copy it.

        Example:
        >>> net = keras_esrgan.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
        >>> strips = Upscaler(net, tile=64).strips(np.zeros((200, 100, 3), "float32"))
        >>> [(row, strip.shape) for row, strip in strips]
        [(0, (224, 400, 3)), (224, (576, 400, 3))]
        """
        x = np.asarray(x, np.float32)
        if x.ndim != 3 or x.shape[-1] != 3 or x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"predict: expected float (H, W, 3), got shape {x.shape}")
        if self.tta:
            yield 0, self._ensemble(x)
            return
        yield from self._strips(x)

    def _strips(self, x):
        """`strips` of one pass (no test-time augmentation)."""
        h, w = x.shape[:2]
        s = self.scale
        plan = self.tile_plan(h, w)
        # Edge-replicate bottom/right, as the SavedModel export does for x2/x1; cropped back.
        x = pad_to_multiple(x, self.input_multiple)
        for row, strip in tiled_strips(self.runner, x, plan, s, self.tile_pad, self.blend):
            rows = min(strip.shape[0], s * h - row)
            if rows > 0:
                yield row, strip[:rows, : s * w]

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
        strips = self.strips(x)
        row, strip = next(strips)
        if strip.shape[0] == self.scale * np.shape(x)[0]:
            return strip  # one untiled pass: no copy
        out = np.empty((self.scale * np.shape(x)[0],) + strip.shape[1:], np.float32)
        out[row : row + strip.shape[0]] = strip
        for row, strip in strips:
            out[row : row + strip.shape[0]] = strip
        return out

    def _ensemble(self, x):
        """The mean of the 8 `TTA_TRANSFORMS` passes over `x`, each turned back: (sH, sW, 3)."""
        total = None
        for forward, backward in TTA_TRANSFORMS:
            xt = np.ascontiguousarray(forward(x))
            out = np.empty((self.scale * xt.shape[0], self.scale * xt.shape[1], 3), np.float32)
            for row, strip in self._strips(xt):
                out[row : row + strip.shape[0]] = strip
            out = backward(out)
            if total is None:
                total = np.ascontiguousarray(out)
            else:
                total += out
        total *= 1 / len(TTA_TRANSFORMS)
        return total

    # --- images ------------------------------------------------------------------------------

    def _grey_strips(self, channel):
        """Strips of a single channel (H, W) run through the network as grey RGB, luma back."""
        for row, strip in self.strips(as_rgb(channel)):
            yield row, luma(strip)

    def _alpha_strips(self, alpha):
        s = self.scale
        h, w = alpha.shape
        if alpha.min() == alpha.max():
            yield 0, np.full((s * h, s * w), alpha.flat[0], np.float32)
        elif self.alpha_mode == "model":
            yield from self._grey_strips(alpha)
        else:
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
        h, w = image.shape[:2]
        s = self.scale
        channels = 1 if image.ndim == 2 else image.shape[2]
        self.check_memory(h, w, channels, image.dtype.name, outscale, name="upscale")
        x = to_float(image.reshape(h, w, -1))
        channels = x.shape[-1]
        size = (s * h, s * w) if outscale is None else _out_size(h, w, outscale)
        resize = size != (s * h, s * w)
        # Without a final resize each strip is rounded into the integer output as it comes, so
        # no float copy of the whole output ever exists (see `strips`).
        out = np.empty((s * h, s * w, channels), np.float32 if resize else image.dtype)

        def write(channel, strips):
            for row, strip in strips:
                strip = strip.reshape(strip.shape[0], s * w, -1)
                rows = slice(row, row + strip.shape[0])
                out[rows, :, channel] = strip if resize else quantize(strip, image.dtype, in_place=True)

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
            resized = tf.image.resize(out, size, method="bicubic", antialias=True).numpy()
            out = quantize(resized, image.dtype, in_place=True)
        return out[..., 0] if image.ndim == 2 else out


# `upscale`'s cache attribute on a generator: {settings: Upscaler}. Kept on the generator (not
# in a module-level dict, where the Upscaler's own reference to the generator would keep both
# alive forever) so the Upscaler, its bf16 copy and its traced functions go with the generator.
_UPSCALE_CACHE = "_keras_esrgan_upscalers"


def _fingerprint(generator):
    """Copies of the generator's first and last variables (conv_first's kernel and conv_last's
    bias for RRDBNet: 1,731 values, read in well under a millisecond)."""
    return tuple(np.array(v.numpy()) for v in (generator.weights[0], generator.weights[-1]))


def _cached_upscaler(generator, **settings):
    """The `Upscaler(generator, **settings)` that `upscale` reuses, made on first use.

    A weights path is not cached (a new generator is loaded each call). A reused Upscaler's
    weight copies (the bf16 copy) are refreshed from the generator (`NetworkRunner.refresh`)
    when its first or last variable changed since the last call: training, `load_weights`,
    `copy_weights_from` or network interpolation change those. Copying every weight at every
    call was measured at 0.1-0.2 s for the full model here, a quarter of a 128x128 call.
    """
    if not isinstance(generator, SRGenerator):
        return Upscaler(generator, **settings)
    # Set past Keras' attribute tracking, so the cache never becomes part of the model's
    # weights, config or saved files.
    cache = generator.__dict__.get(_UPSCALE_CACHE)
    if cache is None:
        cache = {}
        object.__setattr__(generator, _UPSCALE_CACHE, cache)
    key = tuple(sorted(settings.items()))
    fingerprint = _fingerprint(generator)
    entry = cache.get(key)
    if entry is None:
        entry = cache[key] = [Upscaler(generator, **settings), fingerprint]
    elif not all(np.array_equal(a, b) for a, b in zip(entry[1], fingerprint)):
        entry[0].runner.refresh()
        entry[1] = fingerprint
    return entry[0]


def upscale(
    generator,
    image,
    tile=None,
    tile_pad=DEFAULT_TILE_PAD,
    outscale=None,
    precision=DEFAULT_INFERENCE_PRECISION,
    alpha_mode=DEFAULT_ALPHA_MODE,
    blend=DEFAULT_BLEND,
    max_memory=None,
):
    """Upscale one image: `Upscaler(generator, ...)(image, outscale)` in one call.

    Arguments and the image kinds are `Upscaler`'s. The `Upscaler` (its bfloat16 copy of the
    weights and its traced function) is cached on the generator object, one per combination
    of settings, so `upscale(net, image)` in a loop costs what a reused `Upscaler` costs after
    the first call. The cache lives on the generator: `del net` (and the garbage collector,
    the two refer to each other) frees it. Weights changed between calls by training,
    `load_weights`, `copy_weights_from` or interpolation are seen: the cached bf16 copy is
    refreshed when the generator's first or last variable changed (an edit of only some inner
    variable is not detected: make a new `Upscaler` then, or call its `runner.refresh()`).
    A weights *path* is loaded anew each call: load it once with `load_generator` for a loop.

    Args:
        generator: an `SRGenerator` (`RRDBNet`, ...) or a weights path.
        image: numpy uint8/uint16 `(H, W)`, `(H, W, 1)`, `(H, W, 3)` or `(H, W, 4)`.

    Returns:
        The same dtype and channel layout, upscaled by the model's scale or `outscale`.

    Example:
    >>> from keras_esrgan.images import read_image
    >>> sr = upscale("RealESRGAN_x4plus.pth", read_image("photo.png"), outscale=2)
    >>> sr.shape, sr.dtype                                  # photo.png: 24 x 32 RGB
    ((48, 64, 3), dtype('uint8'))
    """
    upscaler = _cached_upscaler(
        generator, tile=tile, tile_pad=tile_pad, precision=precision, alpha_mode=alpha_mode,
        blend=blend, max_memory=max_memory,
    )
    return upscaler(image, outscale=outscale)
