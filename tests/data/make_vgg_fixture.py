"""Regenerate tests/data/fixtures/vgg19_block1_torchvision.{pth,npz} (needs torch; CI does not).

    python tests/data/make_vgg_fixture.py      # in an environment with torch

A truncated torchvision-layout VGG19 state dict (`features.0` and `features.2`, i.e. conv1_1 and
conv1_2, random He-normal weights, plus one classifier tensor that the loader must ignore) saved
by `torch.save`, and the reference computed the way BasicSR's `PerceptualLoss` does it in
PyTorch: ImageNet mean/std on [0, 1] RGB, conv1_2 taken before its ReLU, L1 mean.
"""

import pathlib

import numpy as np
import torch
import torch.nn.functional as F

OUT = pathlib.Path(__file__).resolve().parent / "fixtures"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def features(x_nchw, state):
    x = (x_nchw - MEAN) / STD
    x = F.relu(F.conv2d(x, state["features.0.weight"], state["features.0.bias"], padding=1))
    return F.conv2d(x, state["features.2.weight"], state["features.2.bias"], padding=1)


def main():
    gen = torch.Generator().manual_seed(19)
    state = {}
    for index, (cout, cin) in ((0, (64, 3)), (2, (64, 64))):
        state[f"features.{index}.weight"] = torch.randn(cout, cin, 3, 3, generator=gen) * (2.0 / (cin * 9)) ** 0.5
        state[f"features.{index}.bias"] = torch.randn(cout, generator=gen) * 0.1
    state["classifier.6.bias"] = torch.zeros(1000)
    torch.save(state, OUT / "vgg19_block1_torchvision.pth")

    rng = np.random.default_rng(19)
    pred = rng.random((2, 12, 10, 3), dtype=np.float32)
    target = rng.random((2, 12, 10, 3), dtype=np.float32)
    with torch.no_grad():
        f_pred = features(torch.from_numpy(pred).permute(0, 3, 1, 2), state)
        f_target = features(torch.from_numpy(target).permute(0, 3, 1, 2), state)
        loss = F.l1_loss(f_pred, f_target)
    np.savez_compressed(
        OUT / "vgg19_block1_torchvision.npz", pred=pred, target=target,
        pred_features=f_pred.permute(0, 2, 3, 1).numpy(), loss=loss.numpy(),
    )
    print(f"loss {loss.item():.6f}, negative fraction {(f_pred < 0).float().mean().item():.2f}")


if __name__ == "__main__":
    main()
