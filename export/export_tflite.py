"""Convert generator weights to a builtin-ops-only `.tflite` file for LiteRT (Android, edge).

    python export/export_tflite.py --weights W.pth --out esrgan_fp16.tflite --quantization fp16
    python export/export_tflite.py --weights W.pth --out esrgan_int8.tflite --quantization int8 \\
        --calibration-images photos/            # full int8 needs real images
    python export/export_tflite.py ... --dynamic  # H and W resizable at run time

Writes the model and a JSON sidecar (`esrgan_fp16.json`) with input/output names, shapes,
ranges, tile size and quantization for the app.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # run from a checkout

from keras_esrgan.export.tflite_export import (  # noqa: E402  (the defaults live in the library)
    DEFAULT_CALIBRATION_TILES,
    DEFAULT_TILE_PAD,
    DEFAULT_TILE_SIZE,
    QUANTIZATIONS,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help=".pth/.pt/.safetensors/.keras/.weights.h5")
    parser.add_argument("--out", required=True, help="destination .tflite file")
    parser.add_argument("--quantization", default=QUANTIZATIONS[0], choices=QUANTIZATIONS)
    parser.add_argument("--tile-size", type=int, default=DEFAULT_TILE_SIZE,
                        help=f"input H = W of the fixed-shape model (default {DEFAULT_TILE_SIZE})")
    parser.add_argument("--dynamic", action="store_true",
                        help="dynamic H and W instead of a fixed tile (the app resizes the input)")
    parser.add_argument("--tile-pad", type=int, default=DEFAULT_TILE_PAD,
                        help="overlap between tiles recorded in the sidecar")
    parser.add_argument("--calibration-images", nargs="+", default=None,
                        help="image files or folders for int8 calibration")
    parser.add_argument("--num-calibration-tiles", type=int, default=DEFAULT_CALIBRATION_TILES,
                        help="more tiles: steadier ranges, slower conversion")
    parser.add_argument("--calibration-tile-size", type=int, default=None,
                        help="side of the calibration tiles (default 32 x the model's input multiple; "
                             "each tile is one slow forward pass)")
    args = parser.parse_args(argv)

    from keras_esrgan.export import sidecar_path, tflite
    from keras_esrgan.weights import load_generator

    size = None if args.dynamic else args.tile_size
    try:
        generator = load_generator(args.weights)
        info = tflite(
            generator, args.out, quantization=args.quantization,
            input_shape=(1, size, size, generator.num_in_ch),
            representative_images=args.calibration_images,
            num_calibration_tiles=args.num_calibration_tiles,
            calibration_tile_size=args.calibration_tile_size,
            tile_size=args.tile_size, tile_pad=args.tile_pad,
        )
    except (OSError, ValueError) as err:
        print(f"export_tflite: error: {err}", file=sys.stderr)
        return 1
    print(
        f"{args.weights} -> {args.out} ({info['quantization']}, input {info['input']['shape']}): "
        f"{info['size_bytes'] / 1e6:.1f} MB in {info['conversion_seconds']:.0f} s; "
        f"ops {', '.join(info['operators'])}; sidecar {sidecar_path(args.out)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
