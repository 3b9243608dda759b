"""keras_esrgan.pixels: peaks, float conversion, the one rounding (numpy and TF alike), RGB, padding.

References are written here independently: Python's own `round` (half to even on floats),
integer arithmetic, and `np.pad`.
"""

import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan import pixels


def exact_halves(peak):
    """float32 values x in [0, 1] whose float32 product `x * peak` is exactly n + 0.5."""
    candidates = ((np.arange(int(peak)) + 0.5) / peak).astype(np.float32)
    return candidates[candidates * np.float32(peak) == np.arange(int(peak)) + 0.5]


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_quantize_rounds_half_to_even_and_tf_quantize_gives_the_same_bytes(dtype, rng):
    peak = pixels.peak(dtype)
    halves = exact_halves(peak)
    assert len(halves) > 100  # .5 cases really are tested
    others = np.concatenate([
        rng.random(5000, dtype=np.float32),
        np.arange(int(peak) + 1, dtype=np.float32) / np.float32(peak),
        np.array([-0.5, -1e-8, 1.0 + 1e-7, 7.0], np.float32),
    ])
    for x in (halves, others):
        scaled = np.clip(x, 0, 1) * np.float32(peak)  # float32, as quantize computes it
        expected = np.array([round(float(v)) for v in scaled]).astype(dtype)
        got = pixels.quantize(x, dtype)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, expected)
        np.testing.assert_array_equal(pixels.tf_quantize(tf.constant(x), tf.as_dtype(dtype)).numpy(), got)
    # Half to even, not half up: the two neighbours of every .5 are chosen by parity.
    assert np.all(pixels.quantize(halves, dtype) % 2 == 0)
    # in_place gives the same bytes and leaves the scaled values in the array it was given.
    scratch = others.copy()
    np.testing.assert_array_equal(pixels.quantize(scratch, dtype, in_place=True), pixels.quantize(others, dtype))
    assert scratch.max() <= peak and not np.array_equal(scratch, others)


def test_to_float_and_to_dtype_are_the_same_scale(rng):
    for dtype, peak in ((np.uint8, 255), (np.uint16, 65535)):
        values = np.arange(peak + 1).astype(dtype)
        np.testing.assert_array_equal(pixels.to_float(values), values.astype(np.float32) / np.float32(peak))
        np.testing.assert_array_equal(pixels.quantize(pixels.to_float(values), dtype), values)
        np.testing.assert_array_equal(pixels.tf_to_float(tf.constant(values)).numpy(), pixels.to_float(values))
    floats = rng.random((3, 4), dtype=np.float32)
    assert pixels.to_float(floats) is floats  # float images are [0, 1] already
    # 16 -> 8 bits in integers, for every uint16 value: round(x / 257), never a tie.
    every16 = np.arange(65536).astype(np.uint16)
    down = pixels.to_dtype(every16, np.uint8)
    np.testing.assert_array_equal(down, [round(v / 257) for v in range(65536)])
    np.testing.assert_array_equal(down, pixels.quantize(pixels.to_float(every16), np.uint8))
    every8 = np.arange(256).astype(np.uint8)
    np.testing.assert_array_equal(pixels.to_dtype(every8, "uint16"), np.arange(256) * 257)
    np.testing.assert_array_equal(pixels.to_dtype(every8, "uint16"), pixels.quantize(pixels.to_float(every8), np.uint16))
    for bad in (np.int32, np.bool_):
        with pytest.raises(ValueError, match="not an image dtype"):
            pixels.peak(bad)
    with pytest.raises(ValueError, match="uint8 or uint16"):
        pixels.quantize([0.5], np.float32)


def test_rgb_luma_and_padding(rng):
    grey = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    rgb = pixels.as_rgb(grey)
    assert rgb.shape == (5, 7, 3) and all(np.array_equal(rgb[..., c], grey) for c in range(3))
    np.testing.assert_array_equal(pixels.as_rgb(grey[..., None]), rgb)
    rgba = rng.integers(0, 256, (5, 7, 4), dtype=np.uint16)
    np.testing.assert_array_equal(pixels.as_rgb(rgba), rgba[..., :3])
    assert pixels.as_rgb(rgba, alpha=True) is rgba
    with pytest.raises(ValueError, match="as_rgb"):
        pixels.as_rgb(np.zeros((5, 7, 2)))
    colour = rng.random((4, 3), dtype=np.float32)
    np.testing.assert_allclose(
        pixels.luma(colour), 0.299 * colour[:, 0] + 0.587 * colour[:, 1] + 0.114 * colour[:, 2], rtol=1e-6
    )
    image = rng.random((5, 7, 3), dtype=np.float32)
    for multiple in (1, 2, 4):
        padded = pixels.pad_to_multiple(image, multiple)
        h, w = -(-5 // multiple) * multiple, -(-7 // multiple) * multiple
        np.testing.assert_array_equal(padded, np.pad(image, ((0, h - 5), (0, w - 7), (0, 0)), mode="edge"))
        batch = pixels.tf_pad_to_multiple(tf.constant(np.stack([image, image[::-1]])), multiple).numpy()
        np.testing.assert_array_equal(batch[0], padded)
        np.testing.assert_array_equal(batch[1], pixels.pad_to_multiple(image[::-1], multiple))
    assert pixels.pad_to_multiple(image, 1) is image
