"""The layout of a recipe run's work directory, named once: `WorkDir` and its `Artifacts`.

    config.json                          the architecture, checked when resuming
    data/synthetic/{train,val}/          procedural images (synthetic data only)
    psnr/ckpt/, gan/ckpt/                resumable training state (`TrainingCheckpoint`)
    psnr/done.json, gan/done.json        a finished stage: its step and last validation scores
    gan/init.json                        which generator the GAN stage started from
    tensorboard/{psnr,gan}/{train,validation}/   scalars, LR | SR | HR image grids
    artifacts/psnr_ema.keras, gan_ema.keras, interp_alpha0.8.keras (+ interp.json)
    artifacts/saved_model/esrgan/1/, esrgan_fp16.tflite (+ esrgan_fp16.json, export.json)
    results.json                         the final validation table and artifact paths

Everything the recipe, its script and its tests read or write there is a path of this module.
"""

import os

# The exported model's name and version in the SavedModel folder (TF Serving's
# <model_base_path>/<name>/<version> layout).
SERVING_NAME = "esrgan"
SERVING_VERSION = 1


class Artifacts:
    """The files of a run's `artifacts/` folder (or of a worker's private copy of it).

    Example:
    >>> Artifacts("runs/offline/artifacts").generator("gan")
    'runs/offline/artifacts/gan_ema.keras'
    """

    def __init__(self, folder):
        self.folder = os.fspath(folder)

    def _path(self, name):
        return os.path.join(self.folder, name)

    def generator(self, stage):
        """A stage's EMA generator (float32 `.keras`): `psnr_ema.keras`, `gan_ema.keras`."""
        return self._path(f"{stage}_ema.keras")

    def interpolated(self, alpha):
        """The interpolated generator at `alpha`: `interp_alpha0.8.keras`."""
        return self._path(f"interp_alpha{alpha:g}.keras")

    @property
    def interpolation_stamp(self):
        """What the interpolated generator was made from (`interp.json`)."""
        return self._path("interp.json")

    @property
    def saved_model(self):
        """The SavedModel base folder (`saved_model/`, the TF Serving model base path)."""
        return self._path("saved_model")

    @property
    def serving(self):
        """The SavedModel itself: `saved_model/esrgan/1`."""
        return os.path.join(self.saved_model, SERVING_NAME, str(SERVING_VERSION))

    def tflite(self, quantization):
        """The TFLite file: `esrgan_fp16.tflite` (its JSON sidecar beside it)."""
        return self._path(f"{SERVING_NAME}_{quantization}.tflite")

    @property
    def export_stamp(self):
        """What the exports were made from (`export.json`)."""
        return self._path("export.json")


class WorkDir:
    """Every path of a recipe run's folder (see the module docstring for the layout).

    Example:
    >>> work = WorkDir("runs/offline")
    >>> work.checkpoints("psnr"), work.board("gan", "train"), work.artifacts.tflite("fp16")
    ('runs/offline/psnr/ckpt', 'runs/offline/tensorboard/gan/train', 'runs/offline/artifacts/esrgan_fp16.tflite')
    """

    def __init__(self, root):
        self.root = os.fspath(root)
        self.artifacts = Artifacts(os.path.join(self.root, "artifacts"))

    def _path(self, *parts):
        return os.path.join(self.root, *parts)

    @property
    def config(self):
        """`config.json`: the architecture (and preset) the folder was made for."""
        return self._path("config.json")

    @property
    def results(self):
        """`results.json`: what `train` returned, for the chief's run."""
        return self._path("results.json")

    @property
    def synthetic(self):
        """`data/synthetic`: the procedural images of `--data=synthetic`."""
        return self._path("data", "synthetic")

    @property
    def tensorboard(self):
        """`tensorboard`: the folder to point TensorBoard at."""
        return self._path("tensorboard")

    def board(self, stage, kind):
        """A stage's TensorBoard folder: `kind` is `"train"` or `"validation"`."""
        return os.path.join(self.tensorboard, stage, kind)

    def stage(self, stage):
        """A stage's own folder: `psnr`, `gan` (its checkpoints and records)."""
        return self._path(stage)

    def checkpoints(self, stage):
        """A stage's `TrainingCheckpoint` folder: `psnr/ckpt`, `gan/ckpt`."""
        return os.path.join(self.stage(stage), "ckpt")

    def done_record(self, stage):
        """A stage's `done.json`: written when it finished (step, last validation)."""
        return os.path.join(self.stage(stage), "done.json")

    @property
    def gan_init_record(self):
        """`gan/init.json`: the generator the GAN stage started from, and its PSNR step."""
        return os.path.join(self.stage("gan"), "init.json")
