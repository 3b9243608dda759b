"""Upscaler: tiling against untiled passes, image kinds against the float model, precision, errors.

References are computed independently of `Upscaler`: the Keras generator called eagerly on the
whole (manually padded) image, numpy rounding, and Pillow for resizing.
"""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_esrgan import RRDBNet, pixels, precision, save_generator
from tests.standins import photo_crop
from keras_esrgan.inference import (
    NetworkRunner,
    Upscaler,
    balanced_window,
    blend_weights,
    tile_windows,
    upscale,
)
from keras_esrgan.precision import cpu_supports_bf16, inference_precision

# One RRDB: 17 convs at input resolution plus the HR convs give a receptive field of about
# 18.25 input pixels each side (used to say where tiled and untiled must agree exactly).
SMALL = dict(num_feat=8, num_block=1, num_grow_ch=4)
RADIUS = 19


# The module-scoped fixtures below are built once: keep this file's tests on one xdist
# worker (pyproject: --dist loadgroup); other files' tests are spread one by one.
pytestmark = pytest.mark.xdist_group("inference")


def lively(net, seed=0):
    """Make a tiny random model's output span [0, 1] and depend strongly on its context.

    With PyTorch's default init the output is a near-constant close to 0 (all zeros as uint8)
    and the dense blocks (0.1-scaled init) barely reach past a few pixels; scaled-up dense
    blocks and an output bias of 0.5 make tiling errors and rounding show.
    """
    rng = np.random.default_rng(seed)
    for block in net.body:
        for rdb in block.rdbs:
            for conv in rdb.convs:
                conv.kernel.assign(conv.kernel.numpy() * 6)
    net.conv_last.kernel.assign(rng.normal(0, 0.08, net.conv_last.kernel.shape).astype("float32"))
    net.conv_last.bias.assign(np.full(net.conv_last.bias.shape, 0.5, "float32"))
    return net


@pytest.fixture(scope="module")
def net():
    return lively(RRDBNet(**SMALL))


def photo(h, w, kind="RGB"):
    """An (H, W) uint8 crop of a procedural photo-like image (tests/standins.py)."""
    return photo_crop("monarch", 100, 200, h, w, kind)


def reference(net, x):
    """The generator called eagerly on the whole image (no tiling, no tf.function)."""
    return net(np.asarray(x, np.float32)[None]).numpy()[0]


def quantize(y, peak):
    return np.rint(np.clip(y, 0, 1) * np.float32(peak))


# --- tiling -------------------------------------------------------------------------------------


def test_windows_and_weights_partition_unity():
    cases = [(100, 40, 24, 1), (130, 64, 48, 2), (1000, 364, 300, 4), (50, 64, 32, 1)]
    for length, window, core, unit in cases:
        windows = tile_windows(length, window, core, unit)
        assert windows[0][0] == 0 and windows[-1][1] == length
        assert all(b - a == min(window, length) and a % unit == 0 for a, b in windows)
        # Neighbours overlap by at least window - core (= 2 * tile_pad + blend).
        assert all(a1 <= b0 - (window - core) for (_, b0), (a1, _) in zip(windows, windows[1:]))
        for blend in (0, 8):
            pad = (window - core - blend) // 2
            total = np.zeros(length * 4)
            for (a, b), w in zip(windows, blend_weights(length, windows, 4, pad, blend)):
                assert w.min() >= 0
                total[a * 4 : b * 4] += w
            np.testing.assert_allclose(total, 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="overlap by less than 2 \\* tile_pad"):
        blend_weights(100, tile_windows(100, 40, 24), 4, tile_pad=12, blend=0)


def test_balanced_windows_are_as_few_and_as_small_as_possible(rng):
    for _ in range(300):
        unit = int(rng.choice([1, 2, 4]))
        overlap = int(rng.integers(1, 40)) * unit
        largest = overlap + int(rng.integers(1, 60)) * unit
        length = int(rng.integers(1, 400)) * unit
        window = balanced_window(length, largest, overlap, unit)
        assert window <= min(largest, length) and window % unit == 0 or window == length
        count = len(tile_windows(length, window, window - overlap, unit))
        if largest < length:
            assert count == len(tile_windows(length, largest, largest - overlap, unit))
            smaller = window - unit
            # One unit smaller no longer covers the length in as few windows.
            assert smaller <= overlap or len(tile_windows(length, smaller, smaller - overlap, unit)) > count


def test_tiled_equals_untiled_when_pad_covers_the_receptive_field(net, rng):
    x = rng.random((150, 131, 3), np.float32)
    # The weight is 0 closer than tile_pad = 20 >= RADIUS to a window's inner edge, so every
    # contributing pixel saw its whole receptive field.
    up = Upscaler(net, tile=24, tile_pad=20, blend=16, precision="fp32")
    assert up.tile_plan(150, 131).num_tiles == 16
    np.testing.assert_allclose(up.predict(x), reference(net, x), atol=2e-6)


def test_tiled_is_exact_away_from_seams_and_bounded_on_them(net):
    x = photo(96, 112).astype(np.float32) / 255
    s = net.scale
    up = Upscaler(net, tile=32, tile_pad=1, blend=6, precision="fp32")
    plan = up.tile_plan(96, 112)
    assert (len(plan.rows), len(plan.cols)) == (3, 4) and plan.window == (40, 40)
    full = reference(net, x)
    tiled = up.predict(x)
    error = np.abs(tiled - full).max(-1)

    # Away from every inner window edge the blended output is one window's, which saw its whole
    # receptive field: equal to the untiled pass up to float noise.
    def far(length, windows):
        c = (np.arange(length * s) + 0.5) / s
        edges = [e for a, b in windows for e in (a, b) if 0 < e < length]
        return np.min(np.abs(c[:, None] - np.array(edges)[None]), axis=1) >= RADIUS + 1

    away = far(96, plan.rows)[:, None] & far(112, plan.cols)[None, :]
    assert away.sum() > 2000
    assert error[away].max() < 2e-6

    # Everywhere, the blend is no worse than the worst window covering the pixel (a convex
    # combination), each window's output taken from an independent eager call on its crop.
    bound = np.zeros_like(error)
    for y0, y1 in plan.rows:
        for x0, x1 in plan.cols:
            out = np.s_[s * y0 : s * y1, s * x0 : s * x1]
            own = np.abs(reference(net, x[y0:y1, x0:x1]) - full[out]).max(-1)
            bound[out] = np.maximum(bound[out], own)
    assert np.all(error <= bound + 1e-6)
    assert error.max() > 5e-4  # the seams are real at tile_pad 1 with this model...
    # ...but small: PSNR over the whole image against the untiled pass.
    assert 10 * np.log10(1 / np.mean((np.clip(tiled, 0, 1) - np.clip(full, 0, 1)) ** 2)) > 55


def test_automatic_tiling_keeps_every_window_in_budget_with_one_trace(net, rng, monkeypatch):
    up = Upscaler(net, tile=None, tile_pad=8, blend=8, precision="fp32", max_tile_pixels=48 * 48)
    shapes = []

    class Recording:
        """The upscaler's runner, recording the shape of every window it is given."""

        def __init__(self, runner):
            self.runner = runner

        def __call__(self, window):
            shapes[-1].append(window.shape)
            return self.runner(window)

        def __getattr__(self, name):
            return getattr(self.runner, name)

    monkeypatch.setattr(up, "runner", Recording(up.runner))
    for h, w in [(100, 90), (30, 150), (47, 47)]:
        shapes.append([])
        x = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        assert up(x).shape == (4 * h, 4 * w, 3)
    assert max(a * b for image in shapes for a, b, _ in image) <= 48 * 48
    # One common window shape, edge windows shifted in; long and thin: the full short side.
    # As many windows as 48x48 ones would need (4 x 3), each only as large as that needs:
    # rows 4 * 43 - 3 * 24 = 100, columns 3 * 46 - 2 * 24 = 90.
    assert shapes[0] == [(43, 46, 3)] * up.tile_plan(100, 90).num_tiles == [(43, 46, 3)] * 12
    assert shapes[1] == [(30, 66, 3)] * up.tile_plan(30, 150).num_tiles == [(30, 66, 3)] * 3
    assert shapes[2] == [(47, 47, 3)]  # fits the budget: one untiled pass
    assert up.runner.function("fp32").experimental_get_tracing_count() == 1


def test_strips_rebuild_the_tiled_output_and_every_kind_rounds_it(net, rng):
    # 5 rows x 2 columns of windows, and an x2 model whose unshuffle padding is cropped.
    up = Upscaler(net, tile=24, tile_pad=4, blend=4, precision="fp32")
    x = rng.random((110, 41, 3), np.float32)
    assert len(up.tile_plan(110, 41).rows) == 5
    strips = [(row, strip.copy()) for row, strip in up.strips(x)]  # each strip reuses the buffer
    assert len(strips) == 5
    rows = [row for row, _ in strips]
    assert rows[0] == 0 and all(r + b.shape[0] == n for (r, b), n in zip(strips, rows[1:] + [440]))
    full = up.predict(x)
    np.testing.assert_array_equal(np.concatenate([b for _, b in strips]), full)
    # Against an independent blend: every window from an eager call, weighted, summed at once.
    expected = np.zeros_like(full)
    plan = up.tile_plan(110, 41)
    wys = blend_weights(110, plan.rows, 4, 4, 4)
    wxs = blend_weights(41, plan.cols, 4, 4, 4)
    for (y0, y1), wy in zip(plan.rows, wys):
        for (x0, x1), wx in zip(plan.cols, wxs):
            tile = reference(net, x[y0:y1, x0:x1]) * wy[:, None, None] * wx[None, :, None]
            expected[4 * y0 : 4 * y1, 4 * x0 : 4 * x1] += tile
    np.testing.assert_allclose(full, expected, atol=2e-6)

    # uint8/uint16 outputs are rounded strip by strip: the same as rounding the float output.
    image = (x * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(up(image), quantize(up.predict(image / np.float32(255)), 255))
    image16 = (x * 65535).round().astype(np.uint16)
    np.testing.assert_array_equal(up(image16), quantize(up.predict(image16 / np.float32(65535)), 65535))
    grey = image[..., 0]
    luma = up.predict(np.repeat(grey[..., None] / np.float32(255), 3, -1)) @ pixels.LUMA
    np.testing.assert_array_equal(up(grey), quantize(luma, 255))
    rgba = np.dstack([image, np.where(image[..., 1] > 128, 255, 40).astype(np.uint8)])
    alpha = up.predict(np.repeat(rgba[..., 3:] / np.float32(255), 3, -1)) @ pixels.LUMA
    np.testing.assert_array_equal(up(rgba)[..., 3], quantize(alpha, 255))
    np.testing.assert_array_equal(up(rgba)[..., :3], up(image))  # no transparent pixels

    x2 = Upscaler(lively(RRDBNet(scale=2, **SMALL)), tile=16, tile_pad=4, blend=4, precision="fp32")
    odd = rng.random((61, 23, 3), np.float32)
    assert x2.tile_plan(61, 23).height == 62
    out = x2.predict(odd)
    assert out.shape == (122, 46, 3)
    np.testing.assert_array_equal(np.concatenate([b.copy() for _, b in x2.strips(odd)]), out)


@pytest.mark.parametrize("scale", [4, 2])
def test_tail_in_row_chunks_equals_one_pass(scale, rng, monkeypatch):
    net = lively(RRDBNet(scale=scale, **SMALL))
    x = rng.random((2, 52, 36, 3), np.float32)
    expected = net(x).numpy()
    feat = net.features(x)
    rows, cols = feat.shape[1:3]
    # Chunks of 1, 3 and 5 feature rows (plus 2 rows of halo each side), and one for all.
    for chunk_rows in (1, 3, 5, rows):
        out = net.reconstruct_in_chunks(feat, chunk_pixels=chunk_rows * 2 * cols).numpy()
        np.testing.assert_allclose(out, expected, atol=2e-6)
    np.testing.assert_allclose(net.lean_call(x).numpy(), expected, atol=2e-6)
    # Without the halo the chunk edges would be wrong: the halo is needed, and enough.
    monkeypatch.setattr(RRDBNet, "TAIL_HALO", 0)
    assert np.abs(net.reconstruct_in_chunks(feat, chunk_pixels=3 * 2 * cols).numpy() - expected).max() > 1e-3
    monkeypatch.undo()
    # Upscaler traces it with the default chunk: a 3-row chunk here, and the same output.
    monkeypatch.setattr(RRDBNet, "TAIL_CHUNK_PIXELS", 3 * cols)
    up = Upscaler(net, tile=0, precision="fp32")
    np.testing.assert_allclose(up.predict(x[0]), expected[0], atol=2e-6)
    monkeypatch.setattr(RRDBNet, "TAIL_HALO", 0)  # read when traced: too late to matter now
    np.testing.assert_allclose(up.predict(x[0]), expected[0], atol=2e-6)
    assert np.abs(Upscaler(net, tile=0, precision="fp32").predict(x[0]) - expected[0]).max() > 1e-3


def test_tiled_host_memory_is_a_strip_not_the_whole_output(net, rng):
    """numpy allocations of a tiled uint8 pass: the output plus a strip, never a float output."""
    import tracemalloc

    up = Upscaler(net, tile=16, tile_pad=4, blend=4, precision="fp32")
    image = rng.integers(0, 256, (2048, 48, 3), dtype=np.uint8)
    up(image[:40])  # trace the network outside the measurement
    out_bytes = 4 * 2048 * 4 * 48 * 3
    tracemalloc.start()
    try:
        out = up(image)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out.shape == (8192, 192, 3) and out.nbytes == out_bytes
    # A float32 copy of the whole output alone would be 4 * out_bytes. What is allowed: the
    # uint8 output, the float input (12 bytes per input pixel) and a few float strips of 112
    # rows (the strip, its successor, window outputs and their weights).
    strip = 4 * 28 * 4 * 48 * 3 * 4
    assert peak < out_bytes + image.size * 4 + 6 * strip < 2 * out_bytes


def test_tile_zero_never_tiles_and_bad_budget_is_explained(net, rng):
    assert Upscaler(net, tile=0, max_tile_pixels=16).tile_plan(500, 400).num_tiles == 1
    with pytest.raises(ValueError, match=r"too small for an overlap of 80 \(2 \* tile_pad=32"):
        Upscaler(net, max_tile_pixels=50 * 50).tile_plan(100, 100)


@pytest.mark.parametrize("scale, size", [(2, (13, 17)), (1, (10, 7))])
def test_unshuffle_padding_matches_manual_pad_and_crop(scale, size, rng):
    net = lively(RRDBNet(scale=scale, **SMALL))
    h, w = size
    f = net.unshuffle_factor
    x = rng.random((h, w, 3), np.float32)
    padded = np.pad(x, ((0, -h % f), (0, -w % f), (0, 0)), mode="edge")
    expected = reference(net, padded)[: scale * h, : scale * w]
    np.testing.assert_allclose(Upscaler(net, tile=0, precision="fp32").predict(x), expected, atol=2e-6)
    # Tiled x2/x1: windows start on unshuffle blocks, so with tile_pad beyond the receptive
    # field (f times wider in input pixels) tiled equals untiled.
    pad = (RADIUS + 2) * f
    big = rng.random((2 * pad + 60, 2 * pad + 52, 3), np.float32)
    tiled = Upscaler(net, tile=32, tile_pad=pad, blend=0, precision="fp32")
    assert tiled.tile_plan(*big.shape[:2]).num_tiles == 4
    np.testing.assert_allclose(tiled.predict(big), reference(net, big), atol=2e-6)


# --- image kinds --------------------------------------------------------------------------------


def test_uint8_rgb_is_the_float_model_rounded(net):
    image = photo(21, 18)
    out = Upscaler(net, precision="fp32")(image)
    assert out.dtype == np.uint8 and out.shape == (84, 72, 3)
    expected = quantize(reference(net, image / np.float32(255)), 255)
    assert np.abs(out.astype(int) - expected).max() <= 1  # float noise may flip a rounding
    assert np.mean(out == expected) > 0.999


def test_uint16_stays_16_bit_and_exact(net, rng):
    image = rng.integers(0, 65536, (16, 20, 3), dtype=np.uint16)
    out = Upscaler(net, precision="fp32")(image)
    assert out.dtype == np.uint16
    expected = quantize(reference(net, image.astype(np.float32) / np.float32(65535)), 65535)
    assert np.abs(out.astype(np.int64) - expected).max() <= 1
    assert np.mean(out == expected) > 0.999
    # Decided by dtype, not by the values: a uint16 image with values below 256 is still 16-bit.
    dim = (image // 256).astype(np.uint16)
    expected = quantize(reference(net, dim.astype(np.float32) / np.float32(65535)), 65535)
    assert np.abs(Upscaler(net, precision="fp32")(dim).astype(np.int64) - expected).max() <= 1


def test_grey_runs_as_rgb_and_comes_back_grey(net):
    grey = photo(20, 24, "L")
    up = Upscaler(net, precision="fp32")
    out = up(grey)
    assert out.dtype == np.uint8 and out.shape == (80, 96)
    rgb = reference(net, np.repeat(grey[..., None], 3, -1) / np.float32(255))
    luma = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(out.astype(int) - quantize(luma, 255)).max() <= 1
    # (H, W, 1) keeps its layout and values; the RGB run of the same grey agrees in luma.
    np.testing.assert_array_equal(up(grey[..., None])[..., 0], out)
    rgb_run = up(np.repeat(grey[..., None], 3, -1)).astype(np.float32)
    assert np.abs(rgb_run @ np.array([0.299, 0.587, 0.114]) - out).max() <= 1.0


def _rgba():
    rgb = photo(24, 28)
    yy, xx = np.mgrid[:24, :28]
    alpha = np.where((yy - 12) ** 2 + (xx - 14) ** 2 < 64, 255, 0).astype(np.uint8)
    alpha[(yy - 12) ** 2 + (xx - 14) ** 2 == 64] = 128
    return np.dstack([rgb, alpha])


def test_alpha_modes_against_references(net):
    rgba = _rgba()
    a = rgba[..., 3].astype(np.float32) / 255
    model = Upscaler(net, alpha_mode="model", precision="fp32")(rgba)
    resize = Upscaler(net, alpha_mode="resize", precision="fp32")(rgba)
    assert model.shape == resize.shape == (96, 112, 4) and model.dtype == np.uint8
    np.testing.assert_array_equal(model[..., :3], resize[..., :3])
    grey = reference(net, np.repeat(a[..., None], 3, -1)) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(model[..., 3].astype(int) - quantize(grey, 255)).max() <= 1
    # Bicubic (a = -0.5, half-pixel centres) from Pillow, away from the border where the two
    # libraries extend the image differently.
    pil = np.asarray(Image.fromarray(a).resize((112, 96), Image.BICUBIC))
    inner = np.s_[8:-8, 8:-8]
    assert np.abs(resize[..., 3][inner].astype(int) - quantize(pil, 255)[inner]).max() <= 1


def test_hidden_colours_do_not_leak_and_opaque_alpha_is_plain_rgb(net, rng):
    rgba = _rgba()
    other = rgba.copy()
    hidden = rgba[..., 3] == 0
    other[hidden, :3] = rng.integers(0, 256, (hidden.sum(), 3))
    up = Upscaler(net, precision="fp32")
    np.testing.assert_array_equal(up(rgba), up(other))
    # Visible pixels all one colour: the fill makes the whole RGB that colour.
    flat = rgba.copy()
    flat[~hidden, :3] = (200, 40, 90)
    uniform = np.broadcast_to(np.array((200, 40, 90), np.uint8), rgba.shape[:2] + (3,)).copy()
    np.testing.assert_array_equal(up(flat)[..., :3], up(uniform))
    # Fully opaque: RGB as without alpha, alpha stays 255.
    opaque = rgba.copy()
    opaque[..., 3] = 255
    out = up(opaque)
    np.testing.assert_array_equal(out[..., :3], up(np.ascontiguousarray(opaque[..., :3])))
    assert (out[..., 3] == 255).all()


def test_outscale_resizes_after_the_network(net):
    image = photo(20, 26)
    up = Upscaler(net, precision="fp32")
    full = up(image)
    np.testing.assert_array_equal(up(image, outscale=4), full)
    assert up(image, outscale=3.3).shape == (66, 86, 3)  # round(3.3 * 20), round(3.3 * 26)
    assert up(image, outscale=0.01).shape == (1, 1, 3)
    half = up(image, outscale=2)
    assert half.shape == (40, 52, 3)
    # Antialiased bicubic down by 2 of the float x4 output, by Pillow, per channel.
    y = np.clip(reference(net, image / np.float32(255)), 0, 1)
    pil = np.dstack(
        [np.asarray(Image.fromarray(y[..., c]).resize((52, 40), Image.BICUBIC)) for c in range(3)]
    )
    inner = np.s_[3:-3, 3:-3]
    assert np.abs(half[inner].astype(int) - quantize(pil, 255)[inner]).max() <= 2
    with pytest.raises(ValueError, match="outscale must be a positive number"):
        up(image, outscale=-1)


def test_one_by_one_and_upscale_function(net, tmp_path):
    one = np.array([[[10, 200, 30]]], np.uint8)
    out = upscale(net, one, precision="fp32")
    assert out.shape == (4, 4, 3)
    expected = quantize(reference(net, one / np.float32(255)), 255)
    assert np.abs(out.astype(int) - expected).max() <= 1
    # A weights path works like the model.
    save_generator(net, tmp_path / "tiny.safetensors")
    from_path = upscale(str(tmp_path / "tiny.safetensors"), one, precision="fp32")
    np.testing.assert_array_equal(from_path, out)


def test_upscale_reuses_one_upscaler_per_generator_and_settings():
    import gc
    import weakref

    from keras_esrgan.inference.upscaler import _UPSCALE_CACHE

    net = lively(RRDBNet(**SMALL), seed=3)
    n_weights = len(net.weights)
    image = (np.arange(6 * 7 * 3) * 37 % 256).astype(np.uint8).reshape(6, 7, 3)
    first = upscale(net, image, precision="bf16")
    cache = net.__dict__[_UPSCALE_CACHE]
    (upscaler, _), = cache.values()
    again = upscale(net, image, precision="bf16")
    assert list(cache.values())[0][0] is upscaler and len(cache) == 1  # reused, not rebuilt
    np.testing.assert_array_equal(again, first)
    np.testing.assert_array_equal(first, Upscaler(net, precision="bf16")(image))
    upscale(net, image, precision="fp32")  # other settings: a second Upscaler
    assert len(cache) == 2
    # The cache is not part of the model: same weights, config and saved state.
    assert len(net.weights) == n_weights and _UPSCALE_CACHE not in net.get_config()

    # Weights changed in place (as training does): the cached bf16 copy follows.
    for v in net.weights:
        v.assign(v.numpy() * np.float32(0.5))
    changed = upscale(net, image, precision="bf16")
    assert not np.array_equal(changed, first)
    np.testing.assert_array_equal(changed, Upscaler(net, precision="bf16")(image))

    # Dropped with the generator.
    ref_net, ref_upscaler = weakref.ref(net), weakref.ref(upscaler)
    del net, cache, upscaler
    gc.collect()
    assert ref_net() is None and ref_upscaler() is None


# --- precision ----------------------------------------------------------------------------------


def test_bf16_detection_from_cpu_flags(tmp_path, monkeypatch):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert cpu_supports_bf16(str(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f amx_bf16\n")
    assert cpu_supports_bf16(str(info))
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n")
    assert not cpu_supports_bf16(str(info))
    assert not cpu_supports_bf16(str(tmp_path / "missing"))
    for flag, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(precision, "cpu_supports_bf16", lambda flag=flag: flag)
        monkeypatch.setattr(precision, "has_gpu", lambda: False)
        assert inference_precision("auto") == expected
    monkeypatch.setattr(precision, "has_gpu", lambda: True)  # GPUs: always float32
    assert inference_precision("auto") == "fp32"
    assert inference_precision("float32") == "fp32" and inference_precision("bfloat16") == "bf16"
    with pytest.raises(ValueError, match="precision must be one of"):
        inference_precision("fp16")


def test_bf16_copy_is_close_and_nan_falls_back_to_fp32(net, caplog):
    image = photo(24, 24)
    fp32 = Upscaler(net, precision="fp32")
    bf16 = Upscaler(net, precision="bf16")
    assert bf16.precision == "bf16"
    copy = bf16.runner.model("bf16")
    assert copy is not net and copy.dtype_policy.name == "bfloat16"
    for a, b in zip(copy.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, tf.cast(b, tf.bfloat16).numpy())
    # Weights held in bf16 give what the mixed policy (fp32 weights cast at each call) gives.
    mixed = RRDBNet(**SMALL, dtype="mixed_bfloat16")
    mixed.set_weights(net.get_weights())
    x = image[None].astype(np.float32) / 255
    np.testing.assert_array_equal(copy(x).numpy(), mixed(x).numpy())
    error = bf16(image).astype(float) - fp32(image)
    assert 10 * np.log10(255**2 / np.mean(error**2)) > 35
    # A window whose bf16 output is not finite runs again in float32 (with the float32 weights).
    copy.conv_last.bias.assign(np.full(3, np.nan, "float32"))
    assert np.isnan(bf16.runner.run(x[0], "bf16")).all()
    np.testing.assert_array_equal(bf16(image), fp32(image))
    assert bf16.fp32_fallbacks == 1 and "running it again in float32" in caplog.text


def test_weights_path_loads_straight_in_bf16_and_falls_back_on_the_files_fp32_weights(net, tmp_path):
    """From a path, one model is built, in the precision that runs (no float32 model then its
    copy), with what the copy would hold; the fp32 fallback loads the file's float32 weights."""
    path = tmp_path / "net.safetensors"
    save_generator(net, path)
    image = photo(24, 24)
    from_path = Upscaler(path, precision="bf16")
    assert from_path.generator.dtype_policy.name == "bfloat16"
    assert from_path.runner.model("bf16") is from_path.generator
    copied = Upscaler(net, precision="bf16")
    for a, b in zip(from_path.generator.get_weights(), copied.runner.model("bf16").get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(from_path(image), copied(image))
    fp32 = from_path.runner.model("fp32")
    assert fp32.dtype_policy.name == "float32"
    for a, b in zip(fp32.get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)  # the file's weights, not the bf16 ones widened
    from_path.generator.conv_last.bias.assign(np.full(3, np.nan, "float32"))
    np.testing.assert_array_equal(from_path(image), Upscaler(net, precision="fp32")(image))
    assert from_path.fp32_fallbacks == 1
    assert Upscaler(path, precision="fp32").generator.dtype_policy.name == "float32"
    # The file replaced by another architecture before the fallback needs it: refused, not mixed in.
    later = Upscaler(path, precision="bf16")
    save_generator(lively(RRDBNet(num_feat=8, num_block=2, num_grow_ch=4)), path)
    with pytest.raises(ValueError, match="now holds .* load it again"):
        later.runner.model("fp32")


def test_runner_refresh_follows_the_generator_without_retracing(rng):
    net = lively(RRDBNet(**SMALL))
    runner = NetworkRunner(net, precision="bf16")
    x = rng.random((12, 10, 3), np.float32)
    before = runner(x)
    for var in net.weights:  # a training step: every weight of the generator moves
        var.assign(var.numpy() * 0.5 + 0.01)
    np.testing.assert_array_equal(runner(x), before)  # the bf16 copy has not seen it yet
    runner.refresh()
    for a, b in zip(runner.model("bf16").get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, tf.cast(b, tf.bfloat16).numpy())
    after = runner(x)
    assert np.abs(after - before).max() > 1e-2
    np.testing.assert_array_equal(after, NetworkRunner(net, precision="bf16")(x))  # as if new
    assert runner.function("bf16").experimental_get_tracing_count() == 1
    # A float32 generator is its own fp32 model: nothing to copy, nothing to refresh.
    assert NetworkRunner(net, precision="fp32").model() is net


def test_broken_weights_give_a_clear_error(rng):
    broken = RRDBNet(**SMALL)
    broken.conv_last.bias.assign(np.full(3, np.nan, "float32"))
    with pytest.raises(FloatingPointError, match="weights are broken"):
        Upscaler(broken, precision="fp32")(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image, error, match",
    [
        (np.zeros((8, 8, 3), np.float32), TypeError, r"float32 array.*uint8 or uint16.*astype"),
        (np.zeros((8, 8, 3), bool), TypeError, "must be uint8 or uint16"),
        (np.zeros((8, 8, 3), np.int32), TypeError, "must be uint8 or uint16"),
        (np.zeros((8, 8, 2), np.uint8), ValueError, "2 channels.*grey \\+ alpha"),
        (np.zeros((8, 8, 5), np.uint8), ValueError, "5 channels"),
        (np.zeros((0, 8, 3), np.uint8), ValueError, "zero-size"),
        (np.zeros((2, 8, 8, 3), np.uint8), ValueError, "one image at a time"),
        (np.zeros(8, np.uint8), ValueError, "expected \\(H, W\\)"),
        ([[1, 2], [3, 4]], TypeError, "expected a numpy array, got list"),
        (Image.new("RGB", (4, 4)), TypeError, "np.asarray"),
    ],
)
def test_bad_images_are_refused_clearly(net, image, error, match):
    with pytest.raises(error, match=match):
        Upscaler(net, precision="fp32")(image)


def test_bad_arguments_are_refused_clearly(net, tmp_path):
    with pytest.raises(ValueError, match="alpha_mode"):
        Upscaler(net, alpha_mode="premultiply")
    with pytest.raises(ValueError, match="tile must be a non-negative integer"):
        Upscaler(net, tile=-1)
    with pytest.raises(ValueError, match="blend must be a non-negative integer"):
        Upscaler(net, blend=-2)
    with pytest.raises(TypeError, match="RRDBNet or a weights path"):
        Upscaler(object())
    with pytest.raises(TypeError, match="SRGenerator"):
        NetworkRunner(object())
    with pytest.raises(ValueError, match="RGB generator"):
        Upscaler(RRDBNet(num_in_ch=1, num_out_ch=1, **SMALL))
    with pytest.raises(FileNotFoundError):
        Upscaler(str(tmp_path / "missing.pth"))


# --- the constructor: names and strength -------------------------------------------------------

def test_upscaler_takes_zoo_names_and_blends_strength_once(tmp_path, monkeypatch, rng):
    import keras_esrgan.inference.upscaler as upscaler_module
    from keras_esrgan import interpolate, load_generator
    from keras_esrgan.interpolation import interpolate_pair
    from tests.zoo_server import LocalZoo, serve_rrdbnet_pair

    image = rng.integers(0, 256, (10, 12, 3), dtype=np.uint8)
    with LocalZoo(monkeypatch, tmp_path / "cache") as server:
        files = serve_rrdbnet_pair(server)
        named = Upscaler("tiny-gan", precision="fp32")
        np.testing.assert_array_equal(named(image), Upscaler(load_generator(files["tiny-gan"]), precision="fp32")(image))
        calls = []
        monkeypatch.setattr(upscaler_module, "interpolate_pair", lambda *a: calls.append(a) or interpolate_pair(*a))
        up = Upscaler("tiny-gan", precision="fp32", strength=0.25)
        first, second = up(image), up(image[:8])
        assert calls == [("tiny-gan", 0.25)]  # blended once, not per image
        want = Upscaler(interpolate(files["tiny-psnr"], files["tiny-gan"], 0.25), precision="fp32")
        np.testing.assert_array_equal(first, want(image))
        np.testing.assert_array_equal(second, want(image[:8]))
        with pytest.raises(ValueError, match="strength: 'RealESRGAN_x2plus' has no interpolable pair"):
            Upscaler("RealESRGAN_x2plus", strength=0.5)
        with pytest.raises(ValueError, match="is not a model-zoo name with an interpolable pair"):
            Upscaler(load_generator(files["tiny-gan"]), strength=0.5)
        assert len(server.log) == 2  # each file fetched once
# --- test-time augmentation ---------------------------------------------------------------------


def hand_ensemble(net, x):
    """BasicSR's self-ensemble written out: the 8 flips/rotations, eager whole-image passes,
    each output turned back by hand, averaged."""
    outs = []
    for flip in (False, True):
        for k in range(4):
            t = x[:, ::-1] if flip else x
            y = reference(net, np.rot90(t, k).copy())
            y = np.rot90(y, -k)
            outs.append(y[:, ::-1] if flip else y)
    return np.mean(outs, axis=0)


def test_tta_is_the_hand_made_ensemble_tiled_grey_and_alpha(net):
    image = photo(20, 26)
    x = image / np.float32(255)
    want = hand_ensemble(net, x)
    assert np.abs(want - reference(net, x)).mean() > 1e-3  # the ensemble is not one pass
    whole = Upscaler(net, precision="fp32", tta=True, tile=0)
    assert np.abs(whole.predict(x) - want).max() < 1e-4
    out = whole(image)
    assert np.abs(out.astype(int) - quantize(want, 255)).max() <= 1
    # Tiled: each of the 8 passes tiled as its own (rotated) shape, i.e. the ensemble of the
    # plain tiled upscaler's passes, and close to the untiled ensemble.
    settings = dict(precision="fp32", tile=8, tile_pad=4, blend=4)
    tiled, plain = Upscaler(net, tta=True, **settings), Upscaler(net, **settings)
    assert tiled.tile_plan(26, 20).num_tiles > 1 and tiled.tile_plan(20, 26).num_tiles > 1
    passes = []
    for flip in (False, True):
        for k in range(4):
            y = np.rot90(plain.predict(np.rot90(x[:, ::-1] if flip else x, k).copy()), -k)
            passes.append(y[:, ::-1] if flip else y)
    np.testing.assert_allclose(tiled.predict(x), np.mean(passes, axis=0), atol=1e-5)
    assert np.abs(tiled.predict(x) - want).mean() < 0.02
    # Grey: the ensemble of the grey-as-RGB image, luma back.
    grey = photo(20, 26, "L")
    g = np.repeat(grey[..., None], 3, -1) / np.float32(255)
    luma = hand_ensemble(net, g) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(whole(grey).astype(int) - quantize(luma, 255)).max() <= 1
    # RGBA with alpha through the model: both colour and alpha are ensembles; fully opaque alpha
    # stays exactly opaque.
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    got = whole(rgba)
    np.testing.assert_array_equal(got[..., :3], out)
    assert (got[..., 3] == 255).all()
    rgba[:6, :6, 3] = 40
    a = rgba[..., 3] / np.float32(255)
    alpha_want = hand_ensemble(net, np.repeat(a[..., None], 3, -1)) @ np.array([0.299, 0.587, 0.114], np.float32)
    assert np.abs(whole(rgba)[..., 3].astype(int) - quantize(alpha_want, 255)).max() <= 1
    with pytest.raises(TypeError, match="tta must be True or False"):
        Upscaler(net, tta="yes")


def test_tta_memory_estimate_counts_the_whole_float_output(net):
    plain, tta = Upscaler(net, tile=16), Upscaler(net, tile=16, tta=True)
    whole_float = 16 * 400 * 400 * 3 * 4  # one float32 x4 output
    assert plain.memory_needed(400, 400)["strips"] < whole_float
    assert tta.memory_needed(400, 400)["strips"] > 2 * whole_float  # the sum and one pass
