"""The two-stage ESRGAN training recipe behind `recipes/train_div2k.py`, as library code.

`train(preset, workdir, ...)` runs ESRGAN as the paper and BasicSR do:
1. PSNR-oriented pretraining (`PSNRTrainer`, L1, Adam 2e-4 with cosine restarts);
2. the GAN stage (`ESRGAN`) initialised from the stage-1 EMA generator;
3. network interpolation (`interpolate`, ESRGAN sec. 3.4) at `alpha`;
4. export of the chosen generator as a TF Serving SavedModel and a TFLite file;
5. validation PSNR-Y / SSIM-Y of every model against bicubic, printed and saved.

Everything goes into one work directory (`WorkDir`: its layout, every path named once), and
running the same call again resumes: each stage continues from its last complete
`TrainingCheckpoint`, finished stages are skipped, and every artifact is written atomically (a
kill never leaves a half-written file under its final name). `train` returns a `RunResult`.

Presets (`PRESETS`, `get_preset`): `paper` is ESRGAN/BasicSR (23 RRDBs, 64 features, batch 16
of 128x128 HR patches, 1M PSNR + 400k GAN iterations, DIV2K); `offline` is a small model with a
short schedule on procedural images that trains end to end in a few minutes on two CPU cores
with nothing downloaded.
"""

from keras_esrgan.recipes.environment import describe_strategy, make_strategy, perceptual_loss
from keras_esrgan.recipes.presets import (
    ARCHITECTURE,
    DATA_KINDS,
    DEFAULT_STRATEGY,
    DISCRIMINATORS,
    EXPORT_MODELS,
    PRESETS,
    STAGES,
    STRATEGIES,
    Preset,
    RecipeError,
    get_preset,
    preset_fields,
)
from keras_esrgan.recipes.run import ExportResult, RunResult, StageResult, format_summary, train
from keras_esrgan.recipes.sources import DataSources, RecipeData, prepare_data
from keras_esrgan.recipes.workdir import Artifacts, WorkDir

__all__ = [
    "ARCHITECTURE",
    "Artifacts",
    "DATA_KINDS",
    "DEFAULT_STRATEGY",
    "DISCRIMINATORS",
    "DataSources",
    "EXPORT_MODELS",
    "ExportResult",
    "PRESETS",
    "STAGES",
    "STRATEGIES",
    "Preset",
    "RecipeData",
    "RecipeError",
    "RunResult",
    "StageResult",
    "WorkDir",
    "describe_strategy",
    "format_summary",
    "get_preset",
    "make_strategy",
    "perceptual_loss",
    "prepare_data",
    "preset_fields",
    "train",
]
