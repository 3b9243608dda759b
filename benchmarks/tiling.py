"""How to tile: seam error against one untiled pass on the full model, and the cost of overlap.

    python benchmarks/tiling.py seams      # real RealESRGAN_x4plus weights (benchmarks/pretrained.py)
    python benchmarks/tiling.py seams --overlaps 32,48,64 --blends 0,16 --images barbara,monarch

`seams`: Set14 HR images are reduced x4 with MATLAB-style bicubic (the standard LR inputs), run
once untiled (float32) and then in windows of `tile + overlap` pixels (`tile` new pixels each,
neighbours overlapping by `overlap`), all float32 so only tiling differs. Each set of window
outputs is blended several ways: `blend` pixels of cross-fade and `tile_pad = (overlap - blend)
/ 2` pixels never used (blend 0 is Real-ESRGAN's hard cut). Printed per (overlap, blend), over
all images: PSNR of the uint8 result to the untiled uint8 result, the largest error in levels,
and the seam line step: the mean absolute step of the error across one row or column boundary
of output pixels, averaged along the whole line, largest over all lines, in levels (a straight
seam adds a step all along its line; averaging along it cancels the texture of the error).
For scale, the bfloat16 untiled output against the float32 one is printed too: a tiling error
well below it is lost in the precision noise of the default path.
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
SHARED = os.environ.get("KERAS_ESRGAN_SHARED_DATA", os.path.join(HERE, "..", "..", "shared", "data"))


def pooled_psnr(pairs):
    """RGB PSNR in dB of uint8 `(output, reference)` pairs taken as one image (the MSE over every
    pixel of every pair): `keras_esrgan.metrics.psnr` of the pairs laid end to end."""
    from keras_esrgan import metrics

    def column(images):  # (N, 1, 3): images of any sizes as one image, same pixels
        return np.concatenate([image.reshape(-1, 1, image.shape[-1]) for image in images])

    return metrics.psnr(column([a for a, _ in pairs]), column([b for _, b in pairs]))


def lr_images(names):
    """Set14 images reduced x4 (MATLAB bicubic, mod-cropped), float32 in [0, 1]."""
    import tensorflow as tf

    from keras_esrgan.data import bicubic_downsample
    from keras_esrgan.evaluation import load_hr

    out = {}
    for name in names:
        hr = load_hr(os.path.join(SHARED, "Set14", f"{name}.png"), 4)  # RGB, mod-cropped
        lr = bicubic_downsample(tf.constant(hr), 4).numpy()  # float32 in [0, 1] (rounded to
        out[name] = np.clip(lr, 0, 1).astype(np.float32)     # uint8 levels, as MATLAB does)
        assert out[name].max() > 0.5, f"{name}: LR image not in [0, 1]"
    return out


def seams(args):
    sys.path.insert(0, HERE)
    import pretrained
    from keras_esrgan import load_generator
    from keras_esrgan.inference import Upscaler, blend_weights, tile_windows
    from keras_esrgan.pixels import quantize

    weights = args.weights or str(pretrained.fetch())
    net = load_generator(weights)
    fp32 = Upscaler(net, precision="fp32", tile=0)
    bf16 = Upscaler(net, precision="bf16", tile=0)
    overlaps = [int(v) for v in args.overlaps.split(",")]
    blends = [int(v) for v in args.blends.split(",")]
    images = lr_images(args.images.split(","))
    s = net.scale
    print(f"weights {os.path.basename(weights)}, tile {args.tile}, images "
          + ", ".join(f"{k} {v.shape[1]}x{v.shape[0]}" for k, v in images.items()))

    stats = {}  # (overlap, blend) -> list of (output, untiled output, max error, max step)
    bf16_stats = []
    for name, x in images.items():
        full = fp32.predict(x)
        full8 = quantize(full)
        low = quantize(bf16.predict(x))
        bf16_stats.append((low, full8, int(np.abs(low.astype(int) - full8).max())))
        h, w = x.shape[:2]
        for overlap in overlaps:
            window = args.tile + overlap
            rows = tile_windows(h, min(window, h), args.tile)
            cols = tile_windows(w, min(window, w), args.tile)
            outputs = {(r, c): fp32.runner(np.ascontiguousarray(x[r[0]:r[1], c[0]:c[1]]))
                       for r in rows for c in cols}
            for blend in blends:
                if blend > overlap:
                    continue
                pad = (overlap - blend) / 2
                wy = blend_weights(h, rows, s, pad, blend)
                wx = blend_weights(w, cols, s, pad, blend)
                out = np.zeros_like(full)
                for r, ry in zip(rows, wy):
                    for c, cx in zip(cols, wx):
                        weight = ry[:, None, None] * cx[None, :, None]
                        out[s * r[0]:s * r[1], s * c[0]:s * c[1]] += outputs[r, c] * weight
                out8 = quantize(out)
                error = (np.clip(out, 0, 1) - np.clip(full, 0, 1)) * 255
                step = max(np.abs(np.diff(error, axis=0)).mean(axis=(1, 2)).max(),
                           np.abs(np.diff(error, axis=1)).mean(axis=(0, 2)).max())
                stats.setdefault((overlap, blend), []).append(
                    (out8, full8, int(np.abs(out8.astype(int) - full8).max()), float(step)))
            print(f"  {name}: overlap {overlap} done ({len(rows) * len(cols)} windows of "
                  f"{min(window, h)}x{min(window, w)})", flush=True)

    worst = max(v[2] for v in bf16_stats)
    print(f"\nbf16 untiled vs fp32 untiled: {pooled_psnr([v[:2] for v in bf16_stats]):.1f} dB, "
          f"max {worst} levels\n")
    header = f"{'overlap':>8}{'tile_pad':>9}{'blend':>6}{'PSNR dB':>9}{'max err':>8}{'line step':>10}"
    print(header)
    print("-" * len(header))
    for (overlap, blend), values in sorted(stats.items()):
        psnr = pooled_psnr([v[:2] for v in values])
        print(f"{overlap:>8}{(overlap - blend) / 2:>9g}{blend:>6}{psnr:>9.1f}"
              f"{max(v[2] for v in values):>8}{max(v[3] for v in values):>10.2f}")
    print("\nCompute spent on overlap with the automatic windows (new pixels / pixels run):")
    from keras_esrgan import RRDBNet
    from keras_esrgan.inference import Upscaler

    net = RRDBNet(num_feat=4, num_block=1, num_grow_ch=4)  # the plan depends only on the scale
    for precision in ("fp32", "bf16"):
        for size in (1024, 2048):
            cells = []
            for o in overlaps:
                # The plan depends only on the overlap 2 * tile_pad + blend.
                plan = Upscaler(net, precision=precision, tile_pad=o // 2, blend=o % 2).tile_plan(size, size)
                run = plan.num_tiles * plan.window[0] * plan.window[1]
                cells.append(f"overlap {o}: {size * size / run:.0%} ({plan.window[0]}^2 x {plan.num_tiles})")
            print(f"  {precision} {size}^2: " + ", ".join(cells))


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("seams", help="seam error vs overlap and blend, real weights")
    p.add_argument("--weights", help="generator weights (default: RealESRGAN_x4plus via pretrained.py)")
    p.add_argument("--images", default="barbara,monarch,zebra", help="Set14 image names")
    p.add_argument("--tile", type=int, default=48, help="new LR pixels per window")
    p.add_argument("--overlaps", default="16,32,48,64,80", help="window overlaps (2 * tile_pad + blend)")
    p.add_argument("--blends", default="0,8,16", help="cross-fade widths to compare at each overlap")
    p.set_defaults(func=seams)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
