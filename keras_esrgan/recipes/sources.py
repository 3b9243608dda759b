"""The training and validation images of a recipe run: synthetic, DIV2K or folders."""

import dataclasses

import tensorflow as tf

from keras_esrgan.recipes.presets import DATA_KINDS, RecipeError
from keras_esrgan.recipes.workdir import WorkDir


def _source(help_text):
    return dataclasses.field(default=None, metadata=dict(help=help_text))


@dataclasses.dataclass(frozen=True)
class DataSources:
    """Where a run's images come from: the one list of the recipe's data arguments.

    `train(preset, workdir, hr_dir=...)` takes them by these names, and
    `recipes/train_div2k.py` has one flag per field (same name, default and help). Every field
    left `None` is the preset's choice.

    Example:
    >>> DataSources(data="folder", hr_dir="my_hr_images", val_dir="Set5").lr_dir is None
    True
    """

    data: str = _source("training data; default: the preset's (offline: synthetic, paper: div2k)")
    hr_dir: str = _source("--data=folder: HR training images")
    lr_dir: str = _source("--data=folder: matching LR images (default: MATLAB bicubic of the HR ones)")
    val_dir: str = _source("HR validation images (default: synthetic validation set / DIV2K validation)")
    val_lr_dir: str = _source("matching LR validation images (default: bicubic of --val_dir)")
    data_dir: str = _source("tensorflow-datasets data_dir for DIV2K")
    manual_dir: str = _source("folder holding the downloaded DIV2K zips")

    @classmethod
    def from_arguments(cls, caller, arguments):
        """`DataSources(**arguments)`, or the `TypeError` Python gives `caller` for a name that is
        not a field."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(arguments) - set(names))
        if unknown:
            raise TypeError(
                f"{caller}() got an unexpected keyword argument {unknown[0]!r} (its data arguments: "
                f"{', '.join(names)})"
            )
        return cls(**arguments)


@dataclasses.dataclass
class RecipeData:
    """Where a run's images come from: sources of `(lr, hr)` pairs and a description."""

    train: tf.data.Dataset
    val: tf.data.Dataset
    description: str
    val_description: str


def prepare_data(preset, workdir, sources=None, *, synthetic_dir=None, hr_only=False):
    """The training and validation sources of a run.

    Args:
        preset: a `Preset` (scale, synthetic sizes, DIV2K validation size).
        workdir: the run's folder (synthetic images go to its `WorkDir.synthetic`).
        sources: `DataSources` (default: all the preset's). `data`: `"synthetic"`, `"div2k"`
            or `"folder"`; `hr_dir`, `lr_dir`: training folders for `"folder"` (`lr_dir`
            optional: bicubic from HR); `val_dir`, `val_lr_dir`: validation folders (HR,
            optional LR), required for `"folder"`, optional otherwise (default: the synthetic
            validation images / DIV2K validation); `data_dir`, `manual_dir`:
            tensorflow-datasets folders for DIV2K (see `div2k`).
        synthetic_dir: where to write synthetic images instead.
        hr_only: the training source yields HR images only (for the real-world degradation,
            which makes its own LR images): no bicubic LR is computed. Needs no `lr_dir`.

    Returns:
        `RecipeData`.

    Raises:
        RecipeError: inconsistent arguments. DatasetNotFoundError: DIV2K not available
            (offline, within seconds). FileNotFoundError / ValueError: bad folders.
    """
    from keras_esrgan.data import div2k, hr_images, image_folder
    from keras_esrgan.data.synthetic import synthetic_folders

    def training_folder(folder, lr_folder=None):
        return hr_images(folder) if hr_only else image_folder(folder, lr_folder, scale=scale)

    sources = sources or DataSources()
    data = sources.data or preset.data
    hr_dir, lr_dir, val_dir, val_lr_dir = sources.hr_dir, sources.lr_dir, sources.val_dir, sources.val_lr_dir
    data_dir, manual_dir = sources.data_dir, sources.manual_dir
    scale = preset.scale
    if data not in DATA_KINDS:
        raise RecipeError(f"data must be one of {', '.join(DATA_KINDS)}, got {data!r}")
    if data != "folder" and (hr_dir or lr_dir):
        raise RecipeError(f"--hr_dir/--lr_dir are for --data=folder, not --data={data}")
    if val_lr_dir and not val_dir:
        raise RecipeError("--val_lr_dir needs --val_dir (the matching HR images)")
    val = val_desc = None
    if val_dir:
        val = image_folder(val_dir, val_lr_dir, scale=scale)
        val_desc = f"{val_dir}" + (f" with LR images from {val_lr_dir}" if val_lr_dir else " (bicubic LR)")
    if data == "synthetic":
        root = synthetic_dir or WorkDir(workdir).synthetic
        seed = max(preset.seed, 0)
        train_dir, synthetic_val = synthetic_folders(
            root,
            preset.synthetic_train,
            preset.synthetic_val,
            preset.synthetic_train_size,
            preset.synthetic_val_size,
            seed=seed,
        )
        train = training_folder(train_dir)
        description = (
            f"synthetic: {preset.synthetic_train} procedural {preset.synthetic_train_size}px images "
            f"in {train_dir}"
        )
        if val is None:
            val = image_folder(synthetic_val, scale=scale)
            val_desc = (
                f"{preset.synthetic_val} held-out procedural {preset.synthetic_val_size}px images "
                f"in {synthetic_val}"
            )
    elif data == "folder":
        if not hr_dir:
            raise RecipeError("--data=folder needs --hr_dir (a folder of HR training images)")
        if not val_dir:
            raise RecipeError(
                "--data=folder needs --val_dir (a folder of held-out HR images, e.g. ../shared/data/Set5)"
            )
        train = training_folder(hr_dir, lr_dir)
        description = f"folder: {hr_dir}" + (f" with LR images from {lr_dir}" if lr_dir else "")
        description += "" if lr_dir or hr_only else " (bicubic LR)"
    else:
        train = div2k("train", scale=scale, data_dir=data_dir, manual_dir=manual_dir)
        if hr_only:
            train = train.map(lambda lr, hr: hr)
            description = "DIV2K train HR images (tensorflow-datasets)"
        else:
            description = f"DIV2K train (bicubic x{scale}, tensorflow-datasets)"
        if val is None:
            val = div2k(
                f"validation[:{preset.val_images}]", scale=scale, data_dir=data_dir, manual_dir=manual_dir
            )
            val_desc = f"DIV2K validation, first {preset.val_images} images"
    if hr_only:
        if lr_dir:
            raise RecipeError("hr_only: the LR images are made from the HR ones; --lr_dir does not apply")
        description += f", LR made by Real-ESRGAN's degradation ({preset.crop_pad_size}px regions)"
    if preset.val_center_crop:
        val_desc += f", central {preset.val_center_crop}px HR crops"
    return RecipeData(train=train, val=val, description=description, val_description=val_desc)
