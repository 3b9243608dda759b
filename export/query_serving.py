"""Upscale image files with a TensorFlow Serving model exported by export_savedmodel.py.

    python export/query_serving.py in.png out.png                      # REST, localhost:8501
    python export/query_serving.py in.png out.png --protocol grpc      # gRPC, localhost:8500
    python export/query_serving.py a.png b.jpg --out-dir up/ --signature serving_default

`upscale_image` (default) sends the encoded file and receives a PNG; `serving_default` sends
decoded uint8 pixels and receives uint8 pixels (written as PNG here). With `--out-dir`, each
result is `<stem>_x<scale>.png`, the scale read off the result's size. The requests are built
and read by `keras_esrgan.export.serving_client`; files are written through keras_esrgan.atomic.
"""

import argparse
import io
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # run from a checkout

from PIL import Image  # noqa: E402

from keras_esrgan.atomic import write_bytes  # noqa: E402
from keras_esrgan.export import serving_client as client  # noqa: E402
from keras_esrgan.images import read_image, write_image  # noqa: E402


def output_name(src, out_dir, in_size, out_size):
    """`out_dir/<stem>_x<scale>.png`, the scale being the result's size over the input's.

    Args:
        src: the input path; in_size, out_size: `(width, height)` of input and result.
    """
    scale, rest = divmod(out_size[0], in_size[0])
    if rest or out_size[1] != scale * in_size[1]:
        raise ValueError(f"{src}: the server returned {out_size[0]}x{out_size[1]} for a "
                         f"{in_size[0]}x{in_size[1]} input, not a whole-number upscale")
    return os.path.join(out_dir, f"{pathlib.Path(src).stem}_x{scale}.png")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("inputs", nargs="+", help="image files; with one input, optionally OUTPUT")
    parser.add_argument("--out-dir", help="write <stem>_x<scale>.png files here")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--port", type=int, help="default 8501 (REST) or 8500 (gRPC)")
    parser.add_argument("--protocol", choices=("rest", "grpc"), default="rest")
    parser.add_argument("--model", default="esrgan")
    parser.add_argument("--version", type=int)
    parser.add_argument("--signature", choices=("upscale_image", "serving_default"),
                        default="upscale_image")
    parser.add_argument("--timeout", type=float, default=600)
    args = parser.parse_args(argv)

    if args.out_dir is None:
        if len(args.inputs) != 2:
            parser.error("give INPUT OUTPUT, or several inputs with --out-dir")
        pairs = [tuple(args.inputs)]
        if args.signature == "upscale_image" and not pairs[0][1].lower().endswith(".png"):
            parser.error("upscale_image returns PNG files: give OUTPUT a .png name")
    else:
        os.makedirs(args.out_dir, exist_ok=True)
        pairs = [(p, None) for p in args.inputs]  # named once the result's size is known
    try:
        for src, dst in pairs:
            if args.signature == "upscale_image":
                data = pathlib.Path(src).read_bytes()
                with Image.open(io.BytesIO(data)) as im:
                    in_size = im.size
            else:
                data = read_image(src)
                if data.dtype != "uint8" or data.ndim != 3 or data.shape[-1] != 3:
                    raise ValueError(f"{src}: serving_default takes 8-bit RGB; use upscale_image")
                in_size = (data.shape[1], data.shape[0])
            if args.protocol == "rest":
                url = client.rest_url(args.host, args.port or client.REST_PORT, args.model, args.version)
                body = client.predict_rest(url, client.rest_request(data, args.signature), args.timeout)
                result = client.parse_rest_response(body, args.signature)[0]
            else:
                target = f"{args.host}:{args.port or client.GRPC_PORT}"
                request = client.grpc_request(data, args.signature, args.model, args.version)
                response = client.predict_grpc(target, request, args.timeout)
                result = client.parse_grpc_response(response, args.signature)[0]
            if args.signature == "upscale_image":
                with Image.open(io.BytesIO(result)) as im:
                    out_size = im.size
            else:
                out_size = (result.shape[1], result.shape[0])
            dst = dst or output_name(src, args.out_dir, in_size, out_size)
            if args.signature == "upscale_image":
                write_bytes(dst, result)
            else:
                write_image(dst, result)
            print(f"{src} -> {dst}")
    except (OSError, ValueError, RuntimeError) as err:
        print(f"query_serving: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
