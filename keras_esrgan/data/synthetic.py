"""Procedural training images: a data set the package can always reach, offline, without downloads.

The offline recipe preset needs HR images on a fresh machine with no data and no network. These
are drawn deterministically from a seed with Pillow and numpy: smooth multi-scale colour noise
and gradients (low frequencies), filled shapes with hard, antialiased edges, periodic textures
(gratings, checkerboards, dots) at several frequencies and orientations, thin lines, and rows of
glyph-like strokes at several sizes (the "text" that super-resolution papers like to show). Each
image is rendered at twice its size and downsampled with a Lanczos filter, so edges are
band-limited as in camera images rather than aliased staircases.

They are written as PNG folders, so the offline preset goes through `image_folder` and
`training_pipeline` exactly as DIV2K does. They are no substitute for natural images (a model
trained on them learns edges and textures, not faces or foliage), but a network that has learnt
anything beats bicubic on them, which is what a smoke-scale run needs to show.
"""

import json
import os

import numpy as np
from PIL import Image, ImageDraw

from keras_esrgan.atomic import atomic_path, write_json
from keras_esrgan.images import write_image

# Bump when the drawing code changes, so folders written by an older version are redrawn.
GENERATOR_VERSION = 1
_SUPERSAMPLE = 2
_MANIFEST = "synthetic.json"


def _size_pair(size):
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        height, width = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"synthetic_image: size must be an int or (height, width), got {size!r}") from None
    if height < 8 or width < 8:
        raise ValueError(f"synthetic_image: size must be at least 8x8, got {height}x{width}")
    return height, width


def _smooth_noise(rng, height, width, cells, channels=3):
    """Random values on a `cells`-wide grid, bicubically interpolated to (height, width)."""
    grid_h = max(2, int(round(cells * height / max(height, width))))
    grid_w = max(2, int(round(cells * width / max(height, width))))
    grid = rng.random((grid_h, grid_w, channels), dtype=np.float32)
    planes = [
        np.asarray(Image.fromarray(grid[..., c], mode="F").resize((width, height), Image.Resampling.BICUBIC))
        for c in range(channels)
    ]
    return np.stack(planes, axis=-1)


def _background(rng, height, width):
    """Float (H, W, 3) in [0, 255]: a colour gradient plus noise at several scales."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy) / max(height, width)
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    c0, c1 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    image = c0 + (c1 - c0) * ramp[..., None]
    for cells, amplitude in ((3, 60.0), (8, 30.0), (24, 12.0), (64, 6.0)):
        image += amplitude * (_smooth_noise(rng, height, width, cells) - 0.5)
    return np.clip(image, 0, 255)


def _texture(rng, height, width):
    """Float (H, W, 3) in [0, 255]: a grating, checkerboard, dots or fine noise, two colours."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    period = rng.uniform(3.0, 24.0) * _SUPERSAMPLE  # fine patterns are what SR must recover
    angle = rng.uniform(0, np.pi)
    u = np.cos(angle) * xx + np.sin(angle) * yy
    v = -np.sin(angle) * xx + np.cos(angle) * yy
    kind = rng.integers(4)
    if kind == 0:
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * u / period)
    elif kind == 1:
        pattern = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
    elif kind == 2:
        du = (u % period) / period - 0.5
        dv = (v % period) / period - 0.5
        pattern = (du * du + dv * dv < rng.uniform(0.03, 0.2)).astype(np.float32)
    else:  # irregular fine detail (foliage, gravel): noise with features a few pixels wide
        cells = max(height, width) / period * 2
        pattern = np.clip(2.0 * _smooth_noise(rng, height, width, cells, channels=1)[..., 0] - 0.5, 0, 1)
    a, b = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    return a + (b - a) * pattern[..., None]


def _colour(rng):
    return tuple(int(c) for c in rng.integers(0, 256, 3))


def _random_box(rng, height, width, min_frac, max_frac):
    h = rng.uniform(min_frac, max_frac) * height
    w = rng.uniform(min_frac, max_frac) * width
    top, left = rng.uniform(-0.1 * height, height - 0.5 * h), rng.uniform(-0.1 * width, width - 0.5 * w)
    return [float(left), float(top), float(left + w), float(top + h)]


def _shape_mask(rng, height, width):
    """An 'L' mask with one random ellipse, rectangle or polygon."""
    mask = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(mask)
    box = _random_box(rng, height, width, 0.15, 0.6)
    kind = rng.integers(3)
    if kind == 0:
        draw.ellipse(box, fill=255)
    elif kind == 1:
        draw.rectangle(box, fill=255)
    else:
        cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        radius = (box[2] - box[0] + box[3] - box[1]) / 4
        corners = int(rng.integers(3, 8))
        angles = np.sort(rng.uniform(0, 2 * np.pi, corners))
        radii = radius * rng.uniform(0.5, 1.0, corners)
        draw.polygon(
            [(float(cx + r * np.cos(a)), float(cy + r * np.sin(a))) for a, r in zip(angles, radii)],
            fill=255,
        )
    return mask


def _glyph_row(draw, rng, left, top, glyph_height, count, colour):
    """`count` glyph-like marks of `glyph_height` pixels, left to right: strokes, arcs, dots."""
    width = max(1, int(round(glyph_height / 7)))
    x = left
    for _ in range(count):
        glyph_width = glyph_height * rng.uniform(0.4, 0.8)
        for _ in range(int(rng.integers(2, 5))):
            kind = rng.integers(3)
            x0, x1 = sorted(x + rng.uniform(0, glyph_width, 2))
            y0, y1 = sorted(top + rng.uniform(0, glyph_height, 2))
            if kind == 0:  # a straight stroke
                if rng.random() < 0.5:
                    x0, x1 = x1, x0
                draw.line([(float(x0), float(y0)), (float(x1), float(y1))], fill=colour, width=width)
            elif kind == 1:  # a bowl
                start = float(rng.uniform(0, 360))
                draw.arc(
                    [float(x), float(y0), float(x + glyph_width), float(max(y1, y0 + 2))],
                    start,
                    start + float(rng.uniform(120, 330)),
                    fill=colour,
                    width=width,
                )
            else:  # a stem
                draw.line(
                    [(float(x0), float(top)), (float(x0), float(top + glyph_height))],
                    fill=colour,
                    width=width,
                )
        x += glyph_width * 1.35
        if rng.random() < 0.15:  # a word gap
            x += glyph_width


def synthetic_image(size, seed=0):
    """One deterministic procedural RGB image (edges, textures, gradients, text-like strokes).

    Args:
        size: int (square) or `(height, width)`, at least 8.
        seed: int or sequence of ints (a `numpy.random.SeedSequence` entropy): the same seed
            gives the same image, bit for bit, with the same Pillow and numpy.

    Returns:
        uint8 numpy array `(height, width, 3)`.

    Example:
    >>> img = synthetic_image(128, seed=3)
    >>> img.shape, img.dtype
    ((128, 128, 3), dtype('uint8'))
    """
    height, width = _size_pair(size)
    rng = np.random.default_rng(np.random.SeedSequence(seed))
    big_h, big_w = height * _SUPERSAMPLE, width * _SUPERSAMPLE
    canvas = Image.fromarray(_background(rng, big_h, big_w).astype(np.uint8))

    # Textured and flat shapes, pasted through antialiased masks (drawn at 2x, see below).
    for _ in range(int(rng.integers(3, 7))):
        mask = _shape_mask(rng, big_h, big_w)
        if rng.random() < 0.5:
            fill = Image.fromarray(_texture(rng, big_h, big_w).astype(np.uint8))
        else:
            fill = Image.new("RGB", (big_w, big_h), _colour(rng))
        if rng.random() < 0.3:  # translucent, so edges are not all full-contrast
            mask = mask.point(lambda v, a=float(rng.uniform(0.3, 0.8)): int(v * a))
        canvas.paste(fill, (0, 0), mask)

    draw = ImageDraw.Draw(canvas)
    for _ in range(int(rng.integers(2, 8))):  # lines of all widths and angles
        points = [(float(rng.uniform(0, big_w)), float(rng.uniform(0, big_h))) for _ in range(2)]
        draw.line(points, fill=_colour(rng), width=int(rng.integers(1, 4 * _SUPERSAMPLE)))
    for _ in range(int(rng.integers(1, 4))):  # outlines
        box = _random_box(rng, big_h, big_w, 0.1, 0.4)
        draw.rectangle(box, outline=_colour(rng), width=int(rng.integers(1, 3 * _SUPERSAMPLE)))

    # "Text": rows of glyphs at several sizes, from barely resolvable at x4 to large.
    for _ in range(int(rng.integers(1, 4))):
        glyph_height = float(rng.choice([5, 8, 12, 18, 28])) * _SUPERSAMPLE
        count = int(rng.integers(4, 16))
        left = float(rng.uniform(0, big_w * 0.6))
        top = float(rng.uniform(0, max(1.0, big_h - glyph_height)))
        _glyph_row(draw, rng, left, top, glyph_height, count, _colour(rng))

    image = canvas.resize((width, height), Image.Resampling.LANCZOS)
    return np.asarray(image, dtype=np.uint8)


def _manifest(count, size, seed):
    height, width = _size_pair(size)
    return dict(version=GENERATOR_VERSION, count=int(count), height=height, width=width, seed=int(seed))


def write_synthetic_folder(directory, count, size, seed=0):
    """Write `count` synthetic PNGs (`0000.png`, ...) to `directory`, unless already there.

    Image `i` is `synthetic_image(size, seed=(seed, i))`. The folder is written under a
    temporary name and renamed into place, with a small `synthetic.json` manifest; a later call
    with the same arguments only checks the manifest, and one with other arguments (or a folder
    from an older version of the drawing code) replaces the folder.

    Args:
        directory: destination folder (created; its parent too).
        count: number of images, >= 1.
        size: int or `(height, width)` of every image.
        seed: int; folders with different seeds share no image.

    Returns:
        `directory` as a string.

    Example:
    >>> write_synthetic_folder("data/synthetic/train", count=3, size=64)
    'data/synthetic/train'
    >>> sorted(os.listdir("data/synthetic/train"))     # the manifest makes a second call free
    ['0000.png', '0001.png', '0002.png', 'synthetic.json']
    """
    directory = os.fspath(directory)
    if int(count) != count or count < 1:
        raise ValueError(f"write_synthetic_folder: count must be a positive integer, got {count!r}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"write_synthetic_folder: seed must be a non-negative integer, got {seed!r}")
    want = _manifest(count, size, seed)
    manifest_path = os.path.join(directory, _MANIFEST)
    if os.path.isfile(manifest_path):
        try:
            with open(manifest_path) as fh:
                if json.load(fh) == want:
                    return directory
        except (OSError, ValueError):
            pass  # unreadable manifest: redraw
    with atomic_path(directory, directory=True) as tmp:
        for i in range(int(count)):
            write_image(os.path.join(tmp, f"{i:04d}.png"), synthetic_image(size, seed=(int(seed), i)))
        write_json(os.path.join(tmp, _MANIFEST), want)
    return directory


def synthetic_folders(root, num_train=32, num_val=4, train_size=192, val_size=128, seed=0):
    """A train folder and a held-out validation folder of synthetic images under `root`.

    The validation images come from other seeds than the training ones (folder seeds
    `2 * seed` and `2 * seed + 1`, so no two roots' seeds collide either), so validation PSNR
    measures generalisation to unseen images of the same kind.

    Args:
        root: folder for `train/` and `val/`.
        num_train, num_val: image counts.
        train_size, val_size: int or `(height, width)`: HR image sizes (make them multiples of
            the scale; the validation ones small enough for a full-image forward pass).
        seed: int.

    Returns:
        `(train_dir, val_dir)` strings, for `image_folder`.

    Example:
    >>> from keras_esrgan.data import image_folder
    >>> train_dir, val_dir = synthetic_folders("runs/offline/data", num_train=2, num_val=1, train_size=64, val_size=32)
    >>> train_dir, val_dir
    ('runs/offline/data/train', 'runs/offline/data/val')
    >>> [tuple(t.shape) for t in next(iter(image_folder(train_dir, scale=4)))]   # LR: MATLAB bicubic
    [(16, 16, 3), (64, 64, 3)]
    """
    root = os.fspath(root)
    train = write_synthetic_folder(os.path.join(root, "train"), num_train, train_size, seed=2 * int(seed))
    val = write_synthetic_folder(os.path.join(root, "val"), num_val, val_size, seed=2 * int(seed) + 1)
    return train, val
