"""Convert generator weights to an `.onnx` file (tf2onnx), for ncnn, TensorRT, OpenVINO, CoreML.

    python export/export_onnx.py --weights W.pth --out esrgan.onnx           # dynamic B, H, W
    python export/export_onnx.py --weights W.pth --out esrgan.onnx --fixed 128 --opset 17

Writes the model and a JSON sidecar (`esrgan.json`) with the opset, input/output names and
shapes and the op list. Needs `pip install 'keras-esrgan[onnx]'`.
"""

import argparse
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # run from a checkout

from keras_esrgan.export.onnx_export import DEFAULT_OPSET  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", required=True, help=".pth/.pt/.safetensors/.keras/.weights.h5")
    parser.add_argument("--out", required=True, help="destination .onnx file")
    parser.add_argument("--fixed", type=int, default=None, metavar="SIZE",
                        help="fixed input H = W = SIZE, batch 1 (default: dynamic batch, H and W)")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (default {DEFAULT_OPSET})")
    args = parser.parse_args(argv)

    from keras_esrgan.export import onnx
    from keras_esrgan.weights import load_generator

    try:
        generator = load_generator(args.weights)
        shape = None if args.fixed is None else (1, args.fixed, args.fixed, generator.num_in_ch)
        info = onnx(generator, args.out, dynamic=args.fixed is None, opset=args.opset, input_shape=shape)
    except (OSError, ValueError, ImportError) as err:
        print(f"export_onnx: error: {err}", file=sys.stderr)
        return 1
    print(
        f"{args.weights} -> {args.out} (opset {info['opset']}, input {info['input']['shape']}): "
        f"{info['size_bytes'] / 1e6:.1f} MB in {info['conversion_seconds']:.0f} s; "
        f"ops {', '.join(info['operators'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
