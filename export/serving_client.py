"""Upscale image files with a TensorFlow Serving model exported by export_savedmodel.py.

    python export/serving_client.py in.png out.png                      # REST, localhost:8501
    python export/serving_client.py in.png out.png --protocol grpc      # gRPC, localhost:8500
    python export/serving_client.py a.png b.jpg --out-dir up/ --signature serving_default

`upscale_image` (default) sends the encoded file and receives a PNG; `serving_default` sends
decoded uint8 pixels and receives uint8 pixels (written as PNG here).
"""

import argparse
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))  # run from a checkout


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

    from keras_esrgan.export import serving_client as client
    from keras_esrgan.images import read_image, write_image

    if args.out_dir is None:
        if len(args.inputs) != 2:
            parser.error("give INPUT OUTPUT, or several inputs with --out-dir")
        pairs = [tuple(args.inputs)]
    else:
        os.makedirs(args.out_dir, exist_ok=True)
        pairs = [(p, os.path.join(args.out_dir, pathlib.Path(p).stem + "_up.png")) for p in args.inputs]

    if args.signature == "upscale_image" and any(not d.lower().endswith(".png") for _, d in pairs):
        parser.error("upscale_image returns PNG files: give OUTPUT a .png name")
    try:
        for src, dst in pairs:
            if args.signature == "upscale_image":
                data = pathlib.Path(src).read_bytes()
            else:
                data = read_image(src)
                if data.dtype != "uint8" or data.ndim != 3 or data.shape[-1] != 3:
                    raise ValueError(f"{src}: serving_default takes 8-bit RGB; use upscale_image")
            if args.protocol == "rest":
                url = client.rest_url(args.host, args.port or client.REST_PORT, args.model, args.version)
                body = client.predict_rest(url, client.rest_request(data, args.signature), args.timeout)
                result = client.parse_rest_response(body, args.signature)
            else:
                target = f"{args.host}:{args.port or client.GRPC_PORT}"
                request = client.grpc_request(data, args.signature, args.model, args.version)
                response = client.predict_grpc(target, request, args.timeout)
                result = client.parse_grpc_response(response, args.signature)
            if args.signature == "upscale_image":
                tmp = dst + ".tmp"
                pathlib.Path(tmp).write_bytes(result[0])
                os.replace(tmp, dst)
            else:
                write_image(dst, result[0])
            print(f"{src} -> {dst}")
    except (OSError, ValueError, RuntimeError) as err:
        print(f"serving_client: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
