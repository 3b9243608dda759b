"""Independent PyTorch RRDBNet implementations, written for the tests (needs torch).

Three module trees whose `state_dict()` keys are the three layouts found in the wild:
`BasicSRRRDBNet` (BasicSR / Real-ESRGAN), `ESRGANRepoRRDBNet` (xinntao/ESRGAN `RRDBNet_arch.py`)
and `OldESRGANRRDBNet` (the old `architecture.py` with `model.N` sequential keys). All compute
the same function; only the module names differ.
"""

import torch
import torch.nn.functional as F
from torch import nn


def _lrelu(x):
    return F.leaky_relu(x, 0.2)


class DenseBlock(nn.Module):
    def __init__(self, nf, gc, conv_names=("conv1", "conv2", "conv3", "conv4", "conv5"), wrap=False):
        super().__init__()
        self.names = conv_names
        for i, n in enumerate(conv_names):
            conv = nn.Conv2d(nf + i * gc, gc if i < 4 else nf, 3, 1, 1)
            # The old architecture wraps each conv in a Sequential (conv, act) -> key `convN.0`.
            setattr(self, n, nn.Sequential(conv) if wrap else conv)

    def forward(self, x):
        feats = [x]
        for i, n in enumerate(self.names):
            out = getattr(self, n)(torch.cat(feats, 1))
            if i < 4:
                feats.append(_lrelu(out))
        return out * 0.2 + x


class Block(nn.Module):
    def __init__(self, nf, gc, rdb_names, wrap=False):
        super().__init__()
        self.rdb_names = rdb_names
        for n in rdb_names:
            setattr(self, n, DenseBlock(nf, gc, wrap=wrap))

    def forward(self, x):
        out = x
        for n in self.rdb_names:
            out = getattr(self, n)(out)
        return out * 0.2 + x


def _up(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


class BasicSRRRDBNet(nn.Module):
    def __init__(self, in_ch=3, out_ch=3, scale=4, nf=64, nb=23, gc=32):
        super().__init__()
        self.scale = scale
        in_ch = in_ch * {4: 1, 2: 4, 1: 16}[scale]
        self.conv_first = nn.Conv2d(in_ch, nf, 3, 1, 1)
        self.body = nn.Sequential(*[Block(nf, gc, ("rdb1", "rdb2", "rdb3")) for _ in range(nb)])
        self.conv_body = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_up2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_hr = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_ch, 3, 1, 1)

    def forward(self, x):
        if self.scale < 4:
            x = F.pixel_unshuffle(x, {2: 2, 1: 4}[self.scale])
        feat = self.conv_first(x)
        feat = feat + self.conv_body(self.body(feat))
        feat = _lrelu(self.conv_up1(_up(feat)))
        feat = _lrelu(self.conv_up2(_up(feat)))
        return self.conv_last(_lrelu(self.conv_hr(feat)))


class ESRGANRepoRRDBNet(nn.Module):
    def __init__(self, in_nc=3, out_nc=3, nf=64, nb=23, gc=32):
        super().__init__()
        self.conv_first = nn.Conv2d(in_nc, nf, 3, 1, 1)
        self.RRDB_trunk = nn.Sequential(*[Block(nf, gc, ("RDB1", "RDB2", "RDB3")) for _ in range(nb)])
        self.trunk_conv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv1 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.upconv2 = nn.Conv2d(nf, nf, 3, 1, 1)
        self.HRconv = nn.Conv2d(nf, nf, 3, 1, 1)
        self.conv_last = nn.Conv2d(nf, out_nc, 3, 1, 1)

    def forward(self, x):
        fea = self.conv_first(x)
        fea = fea + self.trunk_conv(self.RRDB_trunk(fea))
        fea = _lrelu(self.upconv1(_up(fea)))
        fea = _lrelu(self.upconv2(_up(fea)))
        return self.conv_last(_lrelu(self.HRconv(fea)))


class _Shortcut(nn.Module):
    def __init__(self, sub):
        super().__init__()
        self.sub = sub

    def forward(self, x):
        return x + self.sub(x)


class _LReLU(nn.Module):
    def forward(self, x):
        return _lrelu(x)


class _Up(nn.Module):
    def forward(self, x):
        return _up(x)


class OldESRGANRRDBNet(nn.Module):
    """`model` = [conv, Shortcut([RRDB]*nb + [conv]), up, conv, act, up, conv, act, conv, act, conv]."""

    def __init__(self, in_nc=3, out_nc=3, nf=64, nb=23, gc=32):
        super().__init__()
        blocks = [Block(nf, gc, ("RDB1", "RDB2", "RDB3"), wrap=True) for _ in range(nb)]
        self.model = nn.Sequential(
            nn.Conv2d(in_nc, nf, 3, 1, 1),
            _Shortcut(nn.Sequential(*blocks, nn.Conv2d(nf, nf, 3, 1, 1))),
            _Up(), nn.Conv2d(nf, nf, 3, 1, 1), _LReLU(),
            _Up(), nn.Conv2d(nf, nf, 3, 1, 1), _LReLU(),
            nn.Conv2d(nf, nf, 3, 1, 1), _LReLU(),
            nn.Conv2d(nf, out_nc, 3, 1, 1),
        )

    def forward(self, x):
        return self.model(x)


def randomize(module, seed, std=0.1):
    """Fill every parameter with N(0, std^2): larger than the default init so all layers matter."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * std)
    return module


def run_nhwc(module, x_nhwc):
    """Run a module on a float32 NHWC numpy batch; returns NHWC numpy."""
    with torch.no_grad():
        y = module(torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).contiguous())
    return y.permute(0, 2, 3, 1).contiguous().numpy()


class VGGStyleDiscriminator(nn.Module):
    """BasicSR's VGG-style discriminator (128 or 256 px input)."""

    def __init__(self, num_in_ch=3, num_feat=64, input_size=128):
        super().__init__()
        mult = [1, 2, 4, 8, 8] + ([8] if input_size == 256 else [])
        self.stages = len(mult)
        prev = num_in_ch
        for s, m in enumerate(mult):
            c = num_feat * m
            setattr(self, f"conv{s}_0", nn.Conv2d(prev, c, 3, 1, 1, bias=s == 0))
            if s > 0:
                setattr(self, f"bn{s}_0", nn.BatchNorm2d(c, affine=True))
            setattr(self, f"conv{s}_1", nn.Conv2d(c, c, 4, 2, 1, bias=False))
            setattr(self, f"bn{s}_1", nn.BatchNorm2d(c, affine=True))
            prev = c
        self.linear1 = nn.Linear(num_feat * 8 * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)

    def forward(self, x):
        feat = x
        for s in range(self.stages):
            feat = getattr(self, f"conv{s}_0")(feat)
            if s > 0:
                feat = getattr(self, f"bn{s}_0")(feat)
            feat = _lrelu(feat)
            feat = _lrelu(getattr(self, f"bn{s}_1")(getattr(self, f"conv{s}_1")(feat)))
        feat = _lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(feat)


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral norm."""

    def __init__(self, num_in_ch=3, num_feat=64, skip_connection=True):
        super().__init__()
        sn = nn.utils.spectral_norm
        f = num_feat
        self.skip = skip_connection
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = sn(nn.Conv2d(f, f * 2, 4, 2, 1, bias=False))
        self.conv2 = sn(nn.Conv2d(f * 2, f * 4, 4, 2, 1, bias=False))
        self.conv3 = sn(nn.Conv2d(f * 4, f * 8, 4, 2, 1, bias=False))
        self.conv4 = sn(nn.Conv2d(f * 8, f * 4, 3, 1, 1, bias=False))
        self.conv5 = sn(nn.Conv2d(f * 4, f * 2, 3, 1, 1, bias=False))
        self.conv6 = sn(nn.Conv2d(f * 2, f, 3, 1, 1, bias=False))
        self.conv7 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = sn(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x):
        up = lambda t: F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)  # noqa: E731
        x0 = _lrelu(self.conv0(x))
        x1 = _lrelu(self.conv1(x0))
        x2 = _lrelu(self.conv2(x1))
        x3 = _lrelu(self.conv3(x2))
        x4 = _lrelu(self.conv4(up(x3)))
        x4 = x4 + x2 if self.skip else x4
        x5 = _lrelu(self.conv5(up(x4)))
        x5 = x5 + x1 if self.skip else x5
        x6 = _lrelu(self.conv6(up(x5)))
        x6 = x6 + x0 if self.skip else x6
        out = _lrelu(self.conv7(x6))
        out = _lrelu(self.conv8(out))
        return self.conv9(out)
