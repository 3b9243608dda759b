"""README.md and BUILD.md are executed: every ```python and ```bash block runs.

Each document runs top to bottom in one temporary folder laid out like a checkout (`recipes/`
and `export/` linked in, `../shared/data` beside it), as a user would follow it: python blocks
share one namespace, so a later block may use `net` from an earlier one. Stand-ins exist under
the names the docs use (tests/standins.py): tiny generators saved as `RRDB_ESRGAN_x4.pth` etc.,
a float16 torchvision-layout `vgg19-dcbb9e9d.pth`, procedural images in `photos/`,
`my_hr_images/`, `DIV2K_train_HR/` and `../shared/data/Set5|Set14` (never the real sets).
The Keras cache is empty and every proxy refuses connections: nothing is downloaded.

Bash command lines: `keras-esrgan ...` runs `keras_esrgan.cli.main` (the console script's
entry point) and `python export/*.py ...` runs the script in this process with that argv
(argparse scripts; this saves a TensorFlow start per line); `python recipes/*.py ...` runs in
a subprocess (absl flags are process-global). Any other command fails the test.

Conventions (the docs' authors follow them):
- a block that cannot run here starts with `# not run by the tests: <reason>`; `UNRUN` counts
  them per document, so none is skipped silently;
- sizes shrink only through `SHRINK`: (document, a string found in exactly one block, old, new);
  a substitution that no longer matches fails the test, so a doc edit forces a test edit;
- `CHECKS`: what must hold after some blocks (beyond "it ran without an error").
"""

import json
import os
import re
import runpy
import shlex
import subprocess
import sys
import time
import warnings

import keras
import pytest

import numpy as np

from keras_esrgan.cli import main as cli_main
from keras_esrgan.recipes import WorkDir
from tests import standins
from tests.reference.ncnn_writer import write_srvgg
from tests.reference.numpy_srvgg import random_srvgg_state
from tests.zoo_server import ZooServer, serve_builtin_standins
from tests.conftest import ROOT

MARK = "# not run by the tests:"
UNRUN = {"README.md": 3, "BUILD.md": 5}
TINY_ARCH = "--num_feat=8 --num_block=1 --num_grow_ch=4"
RECIPE_SMALL = (
    f" {TINY_ARCH} --discriminator_feat=4 --batch_size=2 --psnr_steps=2 --gan_steps=2"
    " --val_every=1 --checkpoint_every=1 --log_every=1 --image_every=1 --verbose=0"
)
OFFLINE_SMALL = RECIPE_SMALL + (
    " --patch_size=32 --synthetic_train=2 --synthetic_val=1 --synthetic_train_size=32 --synthetic_val_size=32"
)
REAL_SMALL = RECIPE_SMALL.replace("--num_block=1", "--num_block=2") + " --patch_size=32 --crop_pad_size=48 --val_center_crop=0"
SHRINK = [
    # The offline default preset takes 2 minutes: a smaller model, 2 + 2 steps (appears twice:
    # the second run finds both stages done and only checks the export).
    ("README.md", "python recipes/train_div2k.py   # train the offline default preset",
     "python recipes/train_div2k.py   #", "python recipes/train_div2k.py" + OFFLINE_SMALL + "   #"),
    ("README.md", "# offline preset, into runs/offline",
     "python recipes/train_div2k.py                       #",
     "python recipes/train_div2k.py" + OFFLINE_SMALL + " #"),
    # The paper preset: RRDBNet 23x64 and 1M + 400k steps; 128 px patches and the VGG-style
    # discriminator stay.
    ("README.md", "--preset=paper --data=folder", "--vgg_weights=vgg19-dcbb9e9d.pth",
     "--vgg_weights=vgg19-dcbb9e9d.pth" + RECIPE_SMALL),
    # Training: the full RRDBNet, 5000 x 200 and 5000 x 80 steps of 16 patches.
    ("README.md", "ke.PSNRTrainer(ke.RRDBNet())", "ke.RRDBNet()", "ke.RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)"),
    ("README.md", "ke.PSNRTrainer(ke.RRDBNet())", "batch_size=16", "batch_size=2"),
    ("README.md", "ke.PSNRTrainer(ke.RRDBNet())", "steps_per_epoch=5000, epochs=200", "steps_per_epoch=2, epochs=1"),
    ("README.md", "ke.PSNRTrainer(ke.RRDBNet())", "steps_per_epoch=5000, epochs=80", "steps_per_epoch=2, epochs=1"),
    # Training for real photos: the stand-in start files are RRDBNet 8x2 (grow 4) and a 4-feature
    # U-Net discriminator; 32 px patches from 48 px degraded regions, 2 + 2 steps.
    ("README.md", "--preset=realesrgan --data=folder", "--workdir=runs/realesrgan",
     "--workdir=runs/realesrgan" + REAL_SMALL),
    ("README.md", "--preset=realesrgan --data=folder", "--workdir=runs/finetune", "--workdir=runs/finetune" + REAL_SMALL),
]
# (document, a string of one block) -> check(world) run after that block.


def _paper_run_trained_both_stages(world):
    with open(WorkDir(world / "runs" / "paper").results) as fh:
        result = json.load(fh)
    assert result["preset"]["name"] == "paper" and result["preset"]["discriminator"] == "vgg"
    assert result["preset"]["patch_size"] == 128 and result["steps"] == {"psnr": 2, "gan": 2}
    assert result["perceptual"] == "VGG19 from vgg19-dcbb9e9d.pth"
    assert sorted(result["scores"]) == ["bicubic", "gan", "interp", "psnr"]
    assert os.path.isdir(result["artifacts"]["saved_model"]) and os.path.isfile(result["artifacts"]["tflite"])


def _real_photo_runs_started_from_the_files(world):
    real = json.loads((world / "runs" / "realesrgan" / "results.json").read_text())
    assert real["preset"]["name"] == "realesrgan" and real["preset"]["degradation"] == "realesrgan"
    assert real["steps"] == {"psnr": 2, "gan": 2} and real["preset"]["gan_type"] == "vanilla"
    tuned = json.loads((world / "runs" / "finetune" / "results.json").read_text())
    assert tuned["preset"]["name"] == "finetune" and tuned["steps"] == {"gan": 2}
    init = json.loads((world / "runs" / "finetune" / "gan" / "init.json").read_text())
    assert init["psnr_generator"].endswith("RealESRGAN_x4plus.pth")


CHECKS = {
    ("README.md", "--preset=paper --data=folder"): _paper_run_trained_both_stages,
    ("README.md", "--preset=realesrgan --data=folder"): _real_photo_runs_started_from_the_files,
}


def blocks(text):
    """`(line number, language, source)` of every ```python / ```bash block of a Markdown text."""
    out = []
    for match in re.finditer(r"^```(\w+)\n(.*?)^```", text, re.M | re.S):
        if match.group(1) in ("python", "bash"):
            out.append((text.count("\n", 0, match.start()) + 1, match.group(1), match.group(2)))
    return out


def shrink(doc, numbered):
    """`numbered` with `SHRINK` applied; fails on a substitution that matches nothing."""
    out = []
    used = set()
    for line, lang, source in numbered:
        original = source
        for i, (name, key, old, new) in enumerate(SHRINK):
            if name == doc and key in original:
                assert old in source, f"{doc}:{line}: SHRINK {old!r} no longer matches this block"
                source = source.replace(old, new)
                used.add(i)
        out.append((line, lang, source))
    for i, (name, key, old, _) in enumerate(SHRINK):
        if name == doc:
            owners = [line for line, _, source in numbered if key in source]
            assert i in used and owners, f"{doc}: SHRINK key {key!r} is in no block"
    return out


def commands(source):
    """The command lines of a bash block: continuations joined, comments dropped, `&&` split."""
    joined = source.replace("\\\n", " ")
    out = []
    for line in joined.splitlines():
        words = shlex.split(line, comments=True)
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            out.append(words[:cut])
            words = words[cut + 1 :]
    return [w for w in out if w]


@pytest.fixture
def world(tmp_path, monkeypatch):
    """A folder laid out like a checkout, holding every stand-in the docs name."""
    work = tmp_path / "keras-esrgan"
    work.mkdir()
    for folder in ("recipes", "export"):
        (work / folder).symlink_to(ROOT / folder)
    standins.write_generators(work)
    standins.write_torchvision_vgg19(work / standins.TORCHVISION_VGG19)
    standins.write_images(work, [(24, 32), (20, 28)], seed=1, names=["photo.png", "extra.png"])
    standins.write_images(work / "photos", [(24, 24), (16, 28)], seed=2)
    standins.write_images(work / "my_hr_images", [(160, 160), (136, 144)], seed=3)
    hr = standins.write_images(work / "DIV2K_train_HR", [(160, 160), (144, 136)], seed=4)
    from keras_esrgan.data.degrade import matlab_bicubic_resize
    from keras_esrgan.images import read_image, write_image

    (work / "DIV2K_train_LR_bicubic" / "X4").mkdir(parents=True)
    for path in sorted(hr.glob("*.png")):
        write_image(work / "DIV2K_train_LR_bicubic" / "X4" / f"{path.stem}x4.png",
                    matlab_bicubic_resize(read_image(path), 1 / 4))
    standins.benchmark_folders(tmp_path / "shared" / "data")
    standins.go_offline(monkeypatch, tmp_path / "keras_home")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    monkeypatch.chdir(work)
    # Model-zoo names: stand-ins served on 127.0.0.1 through KERAS_ESRGAN_MIRROR, and an ncnn
    # stand-in of the wheel's realesr-animevideov3-x4 (tests/zoo_server.py).
    write_srvgg(work / "realesr-animevideov3-x4", random_srvgg_state(np.random.default_rng(0), num_feat=4,
                                                                     num_conv=2, upscale=4), 4)
    with ZooServer() as server:
        serve_builtin_standins(server, monkeypatch, tmp_path / "zoo_cache")
        yield work


def run_command(words, where):
    """One bash command line; raises AssertionError with its output when it fails."""
    if words[0] == "keras-esrgan":
        code = cli_main(words[1:])
        assert code == 0, f"{where}: {shlex.join(words)} exited {code}"
        return
    assert words[0] == "python" and len(words) > 1, f"{where}: the docs test cannot run {shlex.join(words)}"
    script = words[1]
    if script.startswith("export/"):
        argv = sys.argv
        sys.argv = words[1:]
        try:
            runpy.run_path(script, run_name="__main__")
            code = 0
        except SystemExit as exit_:
            code = exit_.code or 0
        finally:
            sys.argv = argv
        assert code == 0, f"{where}: {shlex.join(words)} exited {code}"
        return
    assert script.startswith("recipes/"), f"{where}: the docs test cannot run {shlex.join(words)}"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, *words[1:]], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, f"{where}: {shlex.join(words)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"


def run_document(doc, world):
    numbered = blocks((ROOT / doc).read_text())
    unrun = [(line, source) for line, _, source in numbered if source.startswith(MARK)]
    for line, source in unrun:
        reason = source.splitlines()[0][len(MARK):].strip()
        assert reason, f"{doc}:{line}: '{MARK}' needs a reason"
    assert len(unrun) == UNRUN[doc], (
        f"{doc} has {len(unrun)} blocks marked '{MARK}' (lines {[l for l, _ in unrun]}), the test "
        f"expects {UNRUN[doc]}: update UNRUN if that is intended"
    )
    namespace = {"__name__": "__docs__"}
    ran = 0
    for line, lang, source in shrink(doc, numbered):
        if source.startswith(MARK):
            continue
        where = f"{doc}:{line}"
        started = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if lang == "python":
                exec(compile(source, where, "exec"), namespace)
            else:
                for words in commands(source):
                    run_command(words, where)
        keras.config.set_dtype_policy("float32")
        ran += 1
        print(f"{where}: {lang} block ran in {time.time() - started:.1f} s")
        for (name, key), check in CHECKS.items():
            if name == doc and key in source:  # keys are not changed by SHRINK
                check(world)
    return ran


def test_readme_blocks_run(world):
    assert run_document("README.md", world) >= 9


def test_build_blocks_run(world):
    assert run_document("BUILD.md", world) >= 1
    assert (world / "serving" / "esrgan" / "1" / "saved_model.pb").is_file()
    for name in ("esrgan_fp16", "esrgan_fp32", "esrgan_dyn8", "esrgan_int8", "esrgan_dynamic"):
        info = json.loads((world / f"{name}.json").read_text())
        assert (world / f"{name}.tflite").is_file(), name
    assert info["input"]["shape"] == [1, -1, -1, 3]


def test_block_parsing_and_shrinking_catch_doc_edits():
    text = "```bash\n# not run by the tests: x\nls\n```\n```python\nprint(1)\n```\n```kotlin\nfun\n```\n"
    assert [(lang, src) for _, lang, src in blocks(text)] == [
        ("bash", "# not run by the tests: x\nls\n"), ("python", "print(1)\n")]
    assert commands("a b \\\n  c  # comment\nd && e 'f g'\n") == [["a", "b", "c"], ["d"], ["e", "f g"]]
    readme = blocks((ROOT / "README.md").read_text())
    edited = [(n, lang, src.replace("epochs=200", "epochs=300")) for n, lang, src in readme]
    with pytest.raises(AssertionError, match="steps_per_epoch=5000, epochs=200.* no longer matches"):
        shrink("README.md", edited)
    with pytest.raises(AssertionError, match="is in no block"):
        shrink("README.md", [(n, lang, src.replace("--preset=paper --data=folder", "--preset=paper")) for n, lang, src in readme])
