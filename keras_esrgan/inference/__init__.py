"""Upscaling images with a generator: `Upscaler`, `upscale`, and the parts they are made of.

- `keras_esrgan.inference.runtime`: `NetworkRunner`, the generator on float32 windows in each
  precision (the bf16 copy, one traced function per precision, the float32 fallback).
- `keras_esrgan.inference.tiling`: where the windows of an image go (`plan_tiles`, `TilePlan`,
  `tile_windows`, `balanced_window`), how their outputs blend (`feather_ramp`,
  `blend_weights`) and the strip driver (`tiled_strips`).
- `keras_esrgan.inference.upscaler`: `Upscaler` (arguments, image kinds, the memory budget)
  and `upscale`.
"""

from keras_esrgan.inference.runtime import BYTES_PER_PIXEL, NetworkRunner
from keras_esrgan.inference.tiling import (
    DEFAULT_BLEND,
    DEFAULT_TILE_PAD,
    TilePlan,
    balanced_window,
    blend_weights,
    feather_ramp,
    plan_tiles,
    tile_windows,
    tiled_strips,
)
from keras_esrgan.inference.upscaler import (
    ALPHA_MODES,
    DEFAULT_MEMORY_BUDGET,
    DEFAULT_MEMORY_SHARE,
    Upscaler,
    default_max_memory,
    physical_memory,
    upscale,
)

__all__ = [
    "ALPHA_MODES",
    "BYTES_PER_PIXEL",
    "DEFAULT_BLEND",
    "DEFAULT_MEMORY_BUDGET",
    "DEFAULT_MEMORY_SHARE",
    "DEFAULT_TILE_PAD",
    "NetworkRunner",
    "TilePlan",
    "Upscaler",
    "balanced_window",
    "blend_weights",
    "default_max_memory",
    "feather_ramp",
    "physical_memory",
    "plan_tiles",
    "tile_windows",
    "tiled_strips",
    "upscale",
]
