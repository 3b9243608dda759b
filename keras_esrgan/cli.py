"""The `keras-esrgan` command: thin subcommands over the library.

Each subcommand is a function taking parsed arguments and returning an exit code; errors the user
can fix (bad paths, bad weights) are printed as one line, not a traceback.
"""

import argparse
import os
import sys


def _convert(args):
    from keras_esrgan.weights import load_generator, save_generator

    overrides = {k: v for k, v in (("scale", args.scale), ("num_in_ch", args.num_in_ch)) if v}
    generator = load_generator(args.input, **overrides)
    if os.path.exists(args.output) and not args.overwrite:
        raise FileExistsError(f"{args.output} exists (pass --overwrite to replace it)")
    save_generator(generator, args.output)
    arch = ", ".join(f"{k}={v}" for k, v in generator.config.items())
    print(f"{args.input} -> {args.output}: RRDBNet({arch}), {generator.count_params():,} parameters")
    return 0


def build_parser():
    """The argparse parser of the `keras-esrgan` command (one subparser per subcommand)."""
    parser = argparse.ArgumentParser(
        prog="keras-esrgan", description="ESRGAN super-resolution for Keras 3 / TensorFlow."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    convert = sub.add_parser(
        "convert",
        help="convert generator weights (.pth/.pt/.safetensors/.keras/.weights.h5) to "
        ".keras, .weights.h5 or .safetensors",
    )
    convert.add_argument("input", help="weights file (any RRDBNet layout; read without torch)")
    convert.add_argument("output", help="destination: .keras, .weights.h5 or .safetensors")
    convert.add_argument("--scale", type=int, choices=(1, 2, 4), help="only if ambiguous")
    convert.add_argument("--num-in-ch", type=int, help="only if ambiguous")
    convert.add_argument("--overwrite", action="store_true", help="replace an existing output")
    convert.set_defaults(func=_convert)
    return parser


def main(argv=None):
    """Entry point of the `keras-esrgan` console script; returns the process exit code.

    Example: `keras-esrgan convert RRDB_ESRGAN_x4.pth esrgan_x4.keras`
    """
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (OSError, ValueError) as err:  # WeightsFileError is a ValueError
        print(f"keras-esrgan {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
