"""Export generator weights as a SavedModel for TensorFlow Serving.

    python export/export_savedmodel.py --weights RRDB_ESRGAN_x4.pth --out serving
    # -> serving/esrgan/1/{saved_model.pb,variables/}; serve with export/models.config

Signatures: `serving_default` (uint8 images -> uint8 upscaled) and `upscale_image` (encoded
PNG/JPEG strings -> PNG strings). See BUILD.md.
"""

import argparse
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # run from a checkout


def folder_bytes(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help=".pth/.pt/.safetensors/.keras/.weights.h5")
    parser.add_argument("--out", required=True, help="base folder; the model goes to OUT/NAME/VERSION")
    parser.add_argument("--name", default="esrgan", help="model name in models.config and URLs")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--max-pixels", type=int, default=None,
                        help="largest request in low-resolution pixels (default 512*512)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing version")
    args = parser.parse_args(argv)

    from keras_esrgan.export import DEFAULT_MAX_PIXELS, saved_model, weight_bytes
    from keras_esrgan.weights import load_generator

    try:
        generator = load_generator(args.weights)
        path = saved_model(
            generator, args.out, name=args.name, version=args.version,
            max_pixels=args.max_pixels or DEFAULT_MAX_PIXELS, overwrite=args.overwrite,
        )
    except (OSError, ValueError) as err:
        print(f"export_savedmodel: error: {err}", file=sys.stderr)
        return 1
    variables = folder_bytes(os.path.join(path, "variables"))
    print(
        f"{args.weights} -> {path}: {generator.count_params():,} parameters, variables "
        f"{variables / 1e6:.1f} MB for {weight_bytes(generator) / 1e6:.1f} MB of weights, "
        f"total {folder_bytes(path) / 1e6:.1f} MB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
