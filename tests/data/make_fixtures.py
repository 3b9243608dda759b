"""Regenerate the PyTorch weight fixtures under tests/data/fixtures (needs torch; CI does not).

    python tests/data/make_fixtures.py

Each fixture is a tiny random-weight RRDBNet (8 features, 2 blocks, growth 4) saved by torch in
one of the layouts and formats found in the wild, plus `<name>.npz` with a fixed input and the
reference output of the independent PyTorch implementation in tests/reference.
"""

import os
import pathlib
import sys

import numpy as np
import torch
from safetensors.torch import save_file

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))
from tests.reference.torch_rrdbnet import (  # noqa: E402
    BasicSRRRDBNet,
    ESRGANRepoRRDBNet,
    OldESRGANRRDBNet,
    randomize,
    run_nhwc,
)

OUT = HERE / "fixtures"
ARCH = dict(nf=8, nb=2, gc=4)


def _input(seed, h, w):
    return np.random.default_rng(seed).random((2, h, w, 3), dtype=np.float32)


def _save(name, model, state, x, writer):
    writer(state, OUT / name)
    np.savez_compressed(OUT / (name.split(".")[0] + ".npz"), input=x, output=run_nhwc(model, x))
    print(f"{name}: {os.path.getsize(OUT / name)} bytes")


def main():
    OUT.mkdir(exist_ok=True)
    torch_zip = lambda sd, p: torch.save(sd, p)  # noqa: E731
    torch_legacy = lambda sd, p: torch.save(sd, p, _use_new_zipfile_serialization=False)  # noqa: E731
    safetensors = lambda sd, p: save_file({k: v.contiguous() for k, v in sd.items()}, p)  # noqa: E731

    # Old ESRGAN layout, legacy (pre-1.6) pickle format, odd input size.
    m = randomize(OldESRGANRRDBNet(**ARCH), 1)
    _save("old_esrgan_x4_legacy.pth", m, m.state_dict(), _input(11, 11, 13), torch_legacy)

    # ESRGAN repo layout, zip format.
    m = randomize(ESRGANRepoRRDBNet(**ARCH), 2)
    _save("esrgan_repo_x4.pth", m, m.state_dict(), _input(12, 9, 7), torch_zip)

    # BasicSR x4 checkpoint as saved by training: params and params_ema, DataParallel prefix.
    ema = randomize(BasicSRRRDBNet(scale=4, **ARCH), 3)
    other = randomize(BasicSRRRDBNet(scale=4, **ARCH), 4)
    ckpt = {
        "params": other.state_dict(),
        "params_ema": {f"module.{k}": v for k, v in ema.state_dict().items()},
    }
    _save("basicsr_x4_params_ema.pth", ema, ckpt, _input(13, 8, 10), torch_zip)

    # BasicSR x2 (pixel-unshuffle by 2) stored in float16: the reference uses the rounded weights.
    m = randomize(BasicSRRRDBNet(scale=2, **ARCH), 5).half().float()
    sd = {k: v.half() for k, v in m.state_dict().items()}
    _save("basicsr_x2_fp16.pth", m, {"params": sd}, _input(14, 10, 14), torch_zip)

    # BasicSR x1 (pixel-unshuffle by 4), safetensors.
    m = randomize(BasicSRRRDBNet(scale=1, **ARCH), 6)
    _save("basicsr_x1.safetensors", m, m.state_dict(), _input(15, 12, 16), safetensors)

    # BasicSR x4 in bfloat16 safetensors.
    m = randomize(BasicSRRRDBNet(scale=4, **ARCH), 7).bfloat16().float()
    sd = {k: v.bfloat16() for k, v in m.state_dict().items()}
    _save("basicsr_x4_bf16.safetensors", m, sd, _input(16, 6, 9), safetensors)


if __name__ == "__main__":
    main()
