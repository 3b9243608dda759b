"""Run `recipes/train_div2k.py` in this process after replacing model-zoo entries with local stand-ins.

    python -m tests.recipe_worker ENTRIES.json [--step-delay S] -- RECIPE FLAGS...

ENTRIES.json maps zoo names to `keras_esrgan.pretrained.register` arguments (`url`, `sha256`,
`size`, `arch`, `arch_kwargs`, ...): the built-in `RealESRGAN_x4plus` and
`RealESRGAN_x4plus_netD` become tiny files served by the test's local HTTP server, so the recipe
fetches, verifies and caches them exactly as it would the released ones. `--step-delay` sleeps
after every training step, so that a test can kill the run between two checkpoints.
"""

import json
import os
import runpy
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main(argv):
    split = argv.index("--")
    own, flags = argv[:split], argv[split + 1 :]
    entries_path, delay = own[0], 0.0
    if "--step-delay" in own:
        delay = float(own[own.index("--step-delay") + 1])
    from keras_esrgan import callbacks, pretrained

    with open(entries_path) as fh:
        for name, fields in json.load(fh).items():
            pretrained.register(name, overwrite=True, **fields)
    if delay:
        step_end = callbacks.ScalarSummaries.on_train_batch_end

        def slow_step_end(self, batch, logs=None):
            time.sleep(delay)
            step_end(self, batch, logs)

        callbacks.ScalarSummaries.on_train_batch_end = slow_step_end
    script = os.path.join(ROOT, "recipes", "train_div2k.py")
    sys.argv = [script, *flags]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
