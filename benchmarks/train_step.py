"""ESRGAN GAN-stage step time: generator + discriminator + VGG19 perceptual loss, per batch.

    python benchmarks/train_step.py           # the README's table: batch 16, 3 steps after 1
    python benchmarks/train_step.py --configs small --precisions bf16 --strategies none

With torch importable (e.g. a venv made with --system-site-packages and `pip install torch`)
each config also gets the PyTorch reference step (NCHW, fp32 and bf16 autocast) and, in bf16, the
stronger PyTorch channels_last + bf16 autocast step:

    /tmp/venv-torch/bin/python benchmarks/train_step.py --configs full --strategies none

For each config (small: 4 RRDBs; full: 23 RRDBs as ESRGAN), precision (fp32,
mixed_bfloat16) and placement (one device, MirroredStrategy over 2 logical CPUs) it times
`ESRGAN.fit` steps on a fixed batch of 128x128 HR / 32x32 LR patches (VGGStyleDiscriminator(128),
VGG19 up to conv5_4) and prints the median seconds per step, images/s and the ratio to the fp32
single-device run of the same config. With torch importable it also times a BasicSR-style
PyTorch step of the same sizes (tests/reference/torch_rrdbnet.py networks, torch VGG19 convs;
BasicSR runs the discriminator forward 5 times per step, we run it twice) and prints Keras/PyTorch.

The VGG19 weights do not change the cost: without ImageNet weights (offline) it uses random
ones and says so. The first steps trace the graph (10 to 45 s here) and are not timed.
"""

import argparse
import os
import pathlib
import statistics
import sys
import time
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

CONFIGS = {"small": 4, "full": 23}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--configs", default="small,full", help="comma list of small, full")
    p.add_argument("--precisions", default="fp32,bf16", help="comma list of fp32, bf16")
    p.add_argument("--strategies", default="none,mirrored", help="comma list of none, mirrored")
    p.add_argument("--batch", type=int, default=16, help="global batch size")
    p.add_argument("--hr", type=int, default=128, help="HR patch size (the VGG discriminator needs 128)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per run")
    p.add_argument("--warmup", type=int, default=1, help="untimed steps first (tracing)")
    p.add_argument("--vgg-weights", default="imagenet", help='"imagenet", a .h5/.pth path, or "random"')
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    return p.parse_args(argv)


def perceptual_weights(choice):
    """The VGG19 weights to use and a note for the output."""
    from keras_esrgan import WeightsFileError, perceptual

    if choice == "random":
        return None, "random VGG19 weights (as asked)"
    try:
        if choice == "imagenet":
            perceptual.imagenet_weights_path()
        return choice, f"VGG19 weights: {choice}"
    except WeightsFileError:
        return None, "ImageNet VGG19 weights unavailable (offline): random VGG19 weights, same cost"


class StepTimer:
    def __init__(self):
        import keras

        class Timer(keras.callbacks.Callback):
            def on_train_batch_begin(cb, batch, logs=None):
                cb.start = time.perf_counter()

            def on_train_batch_end(cb, batch, logs=None):
                self.times.append(time.perf_counter() - cb.start)

        self.times = []
        self.callback = Timer()


def time_keras(blocks, precision, strategy, args, vgg):
    import keras

    import keras_esrgan
    from keras_esrgan.precision import training_policy

    keras.config.set_dtype_policy(training_policy(precision))  # fp32: float32, bf16: mixed_bfloat16
    try:
        with strategy.scope(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = keras_esrgan.ESRGAN(
                keras_esrgan.RRDBNet(num_block=blocks),
                keras_esrgan.VGGStyleDiscriminator(input_size=args.hr),
                perceptual_weights=vgg,
            )
            model.compile()
        rng = np.random.default_rng(0)
        hr = rng.random((args.batch, args.hr, args.hr, 3), dtype=np.float32)
        lr = hr.reshape(args.batch, args.hr // 4, 4, args.hr // 4, 4, 3).mean(axis=(2, 4))
        ds = tf.data.Dataset.from_tensors((lr, hr)).repeat()
        timer = StepTimer()
        history = model.fit(
            ds, steps_per_epoch=args.warmup + args.steps, epochs=1, verbose=0, shuffle=False,
            callbacks=[timer.callback],
        )
        assert all(np.isfinite(v[-1]) for v in history.history.values()), history.history
        return statistics.median(timer.times[args.warmup:])
    finally:
        keras.config.set_dtype_policy("float32")
        keras.backend.clear_session()


def time_torch(blocks, precision, args, channels_last=False):
    """BasicSR's ESRGANModel.optimize_parameters on the reference networks.

    `channels_last`: networks and batch in torch.channels_last (NHWC in memory, oneDNN's
    layout), the stronger CPU baseline with bf16 autocast.
    """
    import torch
    import torch.nn.functional as F
    from torch import nn

    from tests.reference.torch_rrdbnet import BasicSRRRDBNet, VGGStyleDiscriminator

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    layers, cin = [], 3
    for block, (n, ch) in enumerate(((2, 64), (2, 128), (4, 256), (4, 512), (4, 512))):
        for i in range(n):
            layers.append(nn.Conv2d(cin, ch, 3, 1, 1))
            cin = ch
            if block == 4 and i == n - 1:
                break  # conv5_4, before its ReLU
            layers.append(nn.ReLU(inplace=True))
        else:
            layers.append(nn.MaxPool2d(2, 2))
    vgg = nn.Sequential(*layers).eval()
    for p in vgg.parameters():
        p.requires_grad = False
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def percep(x, gt):
        return F.l1_loss(vgg((x - mean) / std), vgg((gt.detach() - mean) / std))

    net_g = BasicSRRRDBNet(nb=blocks)
    net_d = VGGStyleDiscriminator(input_size=args.hr)
    opt_g = torch.optim.Adam(net_g.parameters(), 1e-4, betas=(0.9, 0.99))
    opt_d = torch.optim.Adam(net_d.parameters(), 1e-4, betas=(0.9, 0.99))
    bce = nn.BCEWithLogitsLoss()
    gt = torch.rand(args.batch, 3, args.hr, args.hr)
    lq = F.avg_pool2d(gt, 4)
    if channels_last:
        for module in (net_g, net_d, vgg):
            module.to(memory_format=torch.channels_last)
        gt, lq = (t.contiguous(memory_format=torch.channels_last) for t in (gt, lq))
    autocast = dict(device_type="cpu", dtype=torch.bfloat16, enabled=precision == "bf16")

    def step():
        for p in net_d.parameters():
            p.requires_grad = False
        opt_g.zero_grad()
        with torch.autocast(**autocast):
            output = net_g(lq)
            l_pix = F.l1_loss(output, gt)
            l_percep = percep(output, gt)
            real_d_pred = net_d(gt).detach()
            fake_g_pred = net_d(output)
        real_d_pred, fake_g_pred = real_d_pred.float(), fake_g_pred.float()
        l_g_real = bce(real_d_pred - fake_g_pred.mean(), torch.zeros_like(real_d_pred))
        l_g_fake = bce(fake_g_pred - real_d_pred.mean(), torch.ones_like(fake_g_pred))
        (l_percep + 5e-3 * (l_g_real + l_g_fake) / 2 + 1e-2 * l_pix).backward()
        opt_g.step()
        for p in net_d.parameters():
            p.requires_grad = True
        opt_d.zero_grad()
        with torch.autocast(**autocast):
            fake_d_pred = net_d(output).detach().float()
            real_d_pred = net_d(gt).float()
        (bce(real_d_pred - fake_d_pred.mean(), torch.ones_like(real_d_pred)) * 0.5).backward()
        with torch.autocast(**autocast):
            fake_d_pred = net_d(output.detach()).float()
        (bce(fake_d_pred - real_d_pred.detach().mean(), torch.zeros_like(fake_d_pred)) * 0.5).backward()
        opt_d.step()

    times = []
    for i in range(args.warmup + args.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[args.warmup:])


def main(argv=None):
    args = parse_args(argv)
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    # One MirroredStrategy for every run: a second one over the same devices in the same process
    # restarts the collective instance keys, and its all-reduces then collide with the first
    # one's ("Shape mismatch in the collective instance", tensorflow/tensorflow#62790).
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    strategies = {"none": tf.distribute.get_strategy, "mirrored": lambda: mirrored}
    vgg, note = perceptual_weights(args.vgg_weights)
    try:
        import torch  # noqa: F401

        has_torch = not args.no_torch
    except ImportError:
        has_torch = False

    print(f"ESRGAN GAN step: batch {args.batch} of {args.hr}x{args.hr} HR, median of {args.steps} steps "
          f"after {args.warmup} untimed; {os.cpu_count()} CPUs; TF {tf.__version__}")
    print(note)
    rows = []
    for config in args.configs.split(","):
        blocks = CONFIGS[config]
        base = None
        for precision in args.precisions.split(","):
            for placement in args.strategies.split(","):
                seconds = time_keras(blocks, precision, strategies[placement](), args, vgg)
                if precision == "fp32" and placement == "none":
                    base = seconds
                rows.append((config, blocks, "keras", precision, placement, seconds, base))
                print(f"  measured {config} keras {precision} {placement}: {seconds:.3f} s", flush=True)
            if has_torch:
                seconds = time_torch(blocks, precision, args)
                rows.append((config, blocks, "torch", precision, "none", seconds, base))
                print(f"  measured {config} torch {precision}: {seconds:.3f} s", flush=True)
                if precision == "bf16":  # the stronger baseline: channels_last + bf16 autocast
                    seconds = time_torch(blocks, precision, args, channels_last=True)
                    rows.append((config, blocks, "torch channels_last", precision, "none", seconds, base))
                    print(f"  measured {config} torch channels_last {precision}: {seconds:.3f} s", flush=True)

    print()
    print("| config | blocks | framework | precision | strategy | s/step | images/s | vs keras fp32 1-device "
          "| keras/torch | keras/torch channels_last |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    torch_time = {(r[0], r[3]): r[5] for r in rows if r[2] == "torch"}
    torch_cl = {(r[0], r[3]): r[5] for r in rows if r[2] == "torch channels_last"}
    for config, blocks, framework, precision, placement, seconds, base in rows:
        vs_base = f"{base / seconds:.2f}x" if base else "-"
        vs_torch = "-"
        if framework == "keras" and (config, precision) in torch_time:
            vs_torch = f"{seconds / torch_time[(config, precision)]:.2f}"
        vs_cl = "-"
        if framework == "keras" and (config, precision) in torch_cl:
            vs_cl = f"{seconds / torch_cl[(config, precision)]:.2f}"
        strategy = {"none": "1 device", "mirrored": "Mirrored 2 logical CPUs"}[placement]
        print(f"| {config} | {blocks} | {framework} | {precision} | {strategy} | {seconds:.3f} | "
              f"{args.batch / seconds:.2f} | {vs_base} | {vs_torch} | {vs_cl} |")
    print("\n'vs keras fp32 1-device' > 1 means faster; 'keras/torch' < 1 means Keras is faster.")
    if has_torch:
        print("PyTorch step = BasicSR's (discriminator forward 5 times per step; ours 2).")


if __name__ == "__main__":
    main()
