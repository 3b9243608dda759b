"""Every public entry point is called, on its defaults, the way the docs show it.

`JOURNEYS` maps each entry point (every name in `keras_esrgan.__all__`, every `keras-esrgan`
subcommand, `recipes/train_div2k.py` with each preset, every script in export/) to the tests
that call it so, changing only sizes; `test_every_entry_point_has_a_journey` keeps the table
complete and its tests real. Most journeys are the executed README/BUILD blocks
(tests/test_docs.py) and docstring examples (tests/test_doctests.py); this file holds the ones
no doc block shows: the other CLI subcommands as the README's inline commands write them, and
the defaults that cannot run here (DIV2K, ImageNet VGG19), which must fail at once with a clear
error (the same paths then run on stand-ins in the docs test).
"""

import json
import os
import re

import numpy as np
import pytest

import keras_esrgan
from keras_esrgan import DatasetNotFoundError, WeightsFileError, recipes
from keras_esrgan.cli import build_parser, main as cli_main
from tests import standins
from tests.conftest import ROOT

README = "tests/test_docs.py::test_readme_blocks_run"
BUILD = "tests/test_docs.py::test_build_blocks_run"
DOCTEST = "tests/test_doctests.py::test_docstring_examples[{}]"
SNIPPET = "tests/test_training.py::test_issue_snippet_trains_with_the_default_vgg_discriminator"
PRETRAINED = "tests/test_pretrained.py::"
JOURNEYS = {
    # keras_esrgan.__all__
    "BuiltinOpsError": ["tests/test_export_tflite.py::test_check_builtin_ops_rejects_flex_ops"],
    "CorruptCacheError": [PRETRAINED + "test_file_put_in_the_cache_by_hand_is_verified_and_used"],
    "DownloadError": [PRETRAINED + "test_server_announcing_more_than_the_declared_size_is_refused"],
    "ImageError": ["tests/test_hostile.py::test_image_bombs_are_image_errors_and_pillows_guard_is_never_switched_off"],
    "ImageTooLargeError": [
        "tests/test_hostile.py::test_image_bombs_are_image_errors_and_pillows_guard_is_never_switched_off"],
    "OfflineError": [PRETRAINED + "test_offline_error_says_where_to_put_the_file"],
    "PretrainedError": [PRETRAINED + "test_offline_error_says_where_to_put_the_file",
                        PRETRAINED + "test_resolve_path_name_and_typo"],
    "RecipeError": ["tests/test_recipe.py::test_bad_overrides_name_the_field"],
    "SRVGGNetCompact": ["tests/test_srvgg.py::test_matches_numpy_reference",
                        DOCTEST.format("keras_esrgan.models.srvgg")],
    "UnknownModelError": [PRETRAINED + "test_resolve_path_name_and_typo"],
    "VerificationError": [PRETRAINED + "test_wrong_digest_names_url_and_both_digests_and_keeps_nothing"],
    "VideoError": ["tests/test_video.py::test_rerun_with_other_settings_or_input_refuses_to_mix_segments"],
    "DatasetNotFoundError": ["tests/test_journeys.py::test_div2k_defaults_fail_fast_offline"],
    "ESRGAN": [SNIPPET, README, "tests/test_training.py::test_vgg_discriminator_under_mirrored_strategy",
               "tests/test_training.py::test_vgg_discriminator_under_multi_worker_mirrored_strategy",
               "tests/test_training.py::test_default_esrgan_offline_fails_before_building_models"],
    "PSNRTrainer": [README, DOCTEST.format("keras_esrgan.training")],
    "PerceptualLoss": ["tests/test_perceptual.py::test_imagenet_offline_fails_fast_with_instructions",
                       "tests/test_perceptual.py::test_imagenet_reads_the_keras_cache",
                       DOCTEST.format("keras_esrgan.perceptual")],
    "RRDBNet": ["tests/test_rrdbnet.py::test_full_size_parameter_count_and_flops", README],
    "SRGenerator": [DOCTEST.format("keras_esrgan.models.generator"),
                    "tests/test_generator.py::test_a_new_generator_subclass_works_everywhere_with_the_defaults"],
    "SRVGGNetCompact": [README, DOCTEST.format("keras_esrgan.models.srvgg"),
                        "tests/test_srvgg.py::test_upscaler_evaluate_and_interpolate_take_it",
                        "tests/test_srvgg.py::test_both_trainers_fit_it",
                        "tests/test_srvgg.py::test_saved_model_and_tflite_exports",
                        "tests/test_srvgg.py::test_cli_converts_and_upscales_with_it"],
    "TrainingCheckpoint": [README, DOCTEST.format("keras_esrgan.checkpoints")],
    "Upscaler": [README, DOCTEST.format("keras_esrgan.inference.upscaler"),
                 "tests/test_inference.py::test_upscaler_takes_zoo_names_and_blends_strength_once"],
    "UNetDiscriminatorSN": ["tests/test_discriminators.py::test_parameter_counts_match_basicsr",
                            "tests/test_recipe.py::test_smoke_run_trains_both_stages_and_writes_loadable_artifacts"],
    "UnsafeWeightsError": ["tests/test_weights.py::test_malicious_pickle_is_refused_and_never_runs"],
    "VGGStyleDiscriminator": [SNIPPET, "tests/test_discriminators.py::test_parameter_counts_match_basicsr"],
    "WeightsFileError": ["tests/test_weights.py::test_not_a_weights_file",
                         "tests/test_journeys.py::test_paper_preset_defaults_fail_fast_offline"],
    "bicubic_downsample": [DOCTEST.format("keras_esrgan.data.degrade")],
    "div2k": ["tests/test_journeys.py::test_div2k_defaults_fail_fast_offline",
              "tests/test_data.py::test_div2k_pipeline_on_mock_data"],
    "evaluate": [README, "tests/test_journeys.py::test_cli_commands_as_the_docs_show_them"],
    "export": [README, DOCTEST.format("keras_esrgan.export.tflite_export")],
    "export_saved_model": [README],
    "export_tflite": [README],
    "format_table": [README],
    "image_folder": [README],
    "interpolate": [README, DOCTEST.format("keras_esrgan.interpolation"),
                    "tests/test_interpolation.py::test_interpolate_pair_blends_a_zoo_model_with_its_pair"],
    "load_discriminator": ["tests/test_discriminator_weights.py::test_zoo_name_downloads_and_verifies",
                           DOCTEST.format("keras_esrgan.weights.discriminator_layout")],
    "load_generator": [README, "tests/test_pretrained.py::test_load_generator_takes_zoo_names",
                       "tests/test_ncnn.py::test_load_generator_builds_the_graphs_generator",
                       "tests/test_srvgg.py::test_load_generator_reads_basicsr_files_and_infers_the_architecture"],
    "metrics": [DOCTEST.format("keras_esrgan.metrics")],
    "save_generator": [README],
    "training_pipeline": [README],
    "upscale": [DOCTEST.format("keras_esrgan.inference.upscaler"), "tests/test_inference.py::test_one_by_one_and_upscale_function"],
    "validation_pipeline": [README],
    # the keras-esrgan command
    "keras-esrgan upscale": [README, "tests/test_cli.py::test_console_script_end_to_end",
                             "tests/test_cli.py::test_installed_script_is_run_which_exits_with_mains_code_and_gc_frozen",
                             "tests/test_cli.py::test_recursive_folders_formats_metadata_and_resuming",
                             "tests/test_cli.py::test_overlapped_run_writes_what_the_one_by_one_loop_writes"],
    "keras-esrgan video": ["tests/test_video.py::test_video_command_upscales_copies_audio_and_resumes_after_ctrl_c"],
    "keras-esrgan evaluate": ["tests/test_journeys.py::test_cli_commands_as_the_docs_show_them"],
    "keras-esrgan interpolate": ["tests/test_journeys.py::test_cli_commands_as_the_docs_show_them"],
    "keras-esrgan convert": ["tests/test_journeys.py::test_cli_commands_as_the_docs_show_them"],
    "keras-esrgan degrade": ["tests/test_journeys.py::test_degrade_command_as_the_docs_show_it"],
    "keras-esrgan models": [README, "tests/test_cli.py::test_models_command_lists_downloads_and_weights_take_names"],
    # the recipe
    "recipes/train_div2k.py --preset=offline": [README, "tests/test_recipe.py::test_smoke_run_trains_both_stages_and_writes_loadable_artifacts"],
    "recipes/train_div2k.py --preset=paper": [README, "tests/test_journeys.py::test_paper_preset_defaults_fail_fast_offline",
                                              "tests/test_recipe.py::test_user_errors_are_one_line_messages"],
    "recipes/train_div2k.py --preset=realesrgan": [
        "tests/test_recipe_realworld.py::test_realesrgan_preset_trains_both_stages_on_degraded_inputs",
        "tests/test_journeys.py::test_real_esrgan_presets_fail_fast_offline"],
    "recipes/train_div2k.py --preset=finetune": [
        "tests/test_recipe_realworld.py::test_finetune_starts_from_zoo_files_and_resumes_after_sigkill",
        "tests/test_journeys.py::test_real_esrgan_presets_fail_fast_offline"],
    # export/
    "export/export_savedmodel.py": [BUILD, "tests/test_export_serving.py::test_export_savedmodel_script"],
    "export/export_tflite.py": [BUILD, "tests/test_export_tflite.py::test_export_tflite_script"],
    "export/export_onnx.py": [BUILD, "tests/test_export_onnx.py::test_export_onnx_script_fixed_shape"],
    "export/query_serving.py": ["tests/test_export_serving.py::test_query_serving_script_over_rest_and_grpc"],
}


def entry_points():
    """Every public entry point, as `JOURNEYS` names them."""
    commands = build_parser()._subparsers._group_actions[0].choices
    return (
        set(keras_esrgan.__all__)
        | {f"keras-esrgan {name}" for name in commands}
        | {f"recipes/train_div2k.py --preset={name}" for name in recipes.PRESETS}
        | {f"export/{path.name}" for path in (ROOT / "export").glob("*.py")}
    )


def test_every_entry_point_has_a_journey():
    assert set(JOURNEYS) == entry_points()
    for name, tests in JOURNEYS.items():
        assert tests, name
        for node in tests:
            path, _, test = node.partition("::")
            function = test.partition("[")[0]
            source = (ROOT / path).read_text()
            assert re.search(rf"^def {function}\(", source, re.M), f"{name}: no test {node}"
            if "[" in test:  # a doctest module: it must have examples
                module = ROOT / test[test.index("[") + 1 : -1].replace(".", "/")
                module = module / "__init__.py" if module.is_dir() else module.with_suffix(".py")
                assert ">>>" in module.read_text(), node


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """An empty Keras cache and proxies that refuse every connection: nothing can download."""
    standins.go_offline(monkeypatch, tmp_path / "keras_home")
    return tmp_path


def test_cli_commands_as_the_docs_show_them(offline, monkeypatch, capsys):
    """`keras-esrgan convert | evaluate | interpolate` as the README and the CLI's docstring write
    them, on stand-in weights and ../shared/data stand-ins big enough for NIQE."""
    work = offline / "keras-esrgan"
    work.mkdir()
    standins.write_generators(work)
    sizes = [(104, 200), (200, 104)]  # after a 4-pixel crop: two 96x96 NIQE blocks
    standins.write_images(offline / "shared" / "data" / "Set5", sizes, seed=5)
    standins.write_images(offline / "shared" / "data" / "Set14", sizes[:1], seed=14)
    monkeypatch.chdir(work)

    def run(line):
        code = cli_main(line.split()[1:])
        out, err = capsys.readouterr()
        assert code == 0, f"{line}: {err}"
        return out

    # README: `keras-esrgan convert RRDB_ESRGAN_x4.pth esrgan_x4.keras`
    out = run("keras-esrgan convert RRDB_ESRGAN_x4.pth esrgan_x4.keras")
    assert "RRDBNet(num_in_ch=3" in out
    x = np.random.default_rng(0).random((1, 6, 5, 3), dtype=np.float32)
    source, converted = (keras_esrgan.load_generator(p) for p in ("RRDB_ESRGAN_x4.pth", "esrgan_x4.keras"))
    np.testing.assert_array_equal(converted(x).numpy(), source(x).numpy())

    # README: `keras-esrgan evaluate Set5=... Set14=... --weights W [--niqe] [--json scores.json]`
    out = run("keras-esrgan evaluate Set5=../shared/data/Set5 Set14=../shared/data/Set14 "
              "--weights RealESRGAN_x4plus.pth --niqe --json scores.json")
    expected = keras_esrgan.evaluate(
        keras_esrgan.load_generator("RealESRGAN_x4plus.pth"),
        {"Set5": "../shared/data/Set5", "Set14": "../shared/data/Set14"}, niqe=True, progress=False,
    )
    assert keras_esrgan.format_table(expected, "RealESRGAN_x4plus.pth") in out
    scores = json.loads((work / "scores.json").read_text())
    assert [s["name"] for s in scores] == ["Set5", "Set14"]
    assert scores[0]["model"]["niqe"] == pytest.approx(expected[0].model.niqe, abs=1e-9)

    # keras_esrgan/cli.py: `keras-esrgan interpolate PSNR GAN --alpha 0.8 -o interp.keras`
    run("keras-esrgan interpolate RRDB_PSNR_x4.pth RRDB_ESRGAN_x4.pth --alpha 0.8 -o interp.keras")
    want = keras_esrgan.interpolate("RRDB_PSNR_x4.pth", "RRDB_ESRGAN_x4.pth", 0.8)
    np.testing.assert_array_equal(keras_esrgan.load_generator("interp.keras")(x).numpy(), want(x).numpy())


def test_div2k_defaults_fail_fast_offline(offline):
    """`div2k("train")` (the README's DIV2K source) with nothing downloaded: a
    DatasetNotFoundError naming the four zips, without waiting on tfds' retries."""
    import time

    started = time.time()
    with pytest.raises(DatasetNotFoundError) as info:
        keras_esrgan.div2k("train", data_dir=offline / "tfds")
    message = str(info.value)
    assert time.time() - started < 30
    for name in ("DIV2K_train_HR.zip", "DIV2K_valid_HR.zip", "DIV2K_train_LR_bicubic_X4.zip",
                 "DIV2K_valid_LR_bicubic_X4.zip"):
        assert name in message
    assert "cannot be reached" in message and "manual_dir" in message
    assert not os.path.exists(offline / "tfds" / "div2k" / "bicubic_x4")  # nothing half-prepared


def test_paper_preset_defaults_fail_fast_offline(offline):
    """`--preset=paper` on its defaults needs ImageNet VGG19 and DIV2K: each missing one stops
    the run at once with what to do, before any model is built (the README's paper command
    with a VGG19 file and image folders runs in tests/test_docs.py)."""
    with pytest.raises(WeightsFileError, match="(?s)could not be downloaded.*--vgg_weights=/path/to/file"):
        recipes.train("paper", offline / "run")
    vgg = standins.write_torchvision_vgg19(offline / standins.TORCHVISION_VGG19)
    with pytest.raises(DatasetNotFoundError, match="(?s)DIV2K 'bicubic_x4' is not prepared.*DIV2K_train_HR.zip"):
        recipes.train("paper", offline / "run", vgg_weights=str(vgg), data_dir=str(offline / "tfds"))
    assert not os.path.exists(offline / "run" / "psnr")


def test_degrade_command_as_the_docs_show_it(offline, monkeypatch, capsys):
    """`keras-esrgan degrade my_hr_images -o degraded_samples --seed 0 --count 4` (the README's
    "Training for real photos"): the files `write_degraded_samples` writes, never over existing
    ones without --overwrite, one-line errors."""
    from keras_esrgan.data import write_degraded_samples

    standins.write_images(offline / "my_hr_images", [(160, 160), (136, 144)], seed=3)
    monkeypatch.chdir(offline)
    line = "keras-esrgan degrade my_hr_images -o degraded_samples --seed 0 --count 4"
    assert cli_main(line.split()[1:]) == 0
    out = capsys.readouterr().out
    assert "4 sample(s) of 2 image(s) in degraded_samples" in out
    names = sorted(os.listdir(offline / "degraded_samples"))
    assert names == ["000_0000.png", "001_0001.png", "002_0000.png", "003_0001.png", "degradations.json"]
    direct = write_degraded_samples("my_hr_images", offline / "direct", seed=0, count=4)
    for path in direct:
        name = os.path.basename(path)
        assert (offline / "degraded_samples" / name).read_bytes() == (offline / "direct" / name).read_bytes()
    manifest = json.loads((offline / "degraded_samples" / "degradations.json").read_text())
    assert manifest["seed"] == 0 and manifest["crop_pad_size"] == 400 and len(manifest["samples"]) == 4

    before = {n: (offline / "degraded_samples" / n).stat().st_mtime_ns for n in names}
    assert cli_main(line.split()[1:]) == 1
    err = capsys.readouterr().err
    assert "keras-esrgan degrade: error:" in err and "000_0000.png exists" in err and "Traceback" not in err
    assert {n: (offline / "degraded_samples" / n).stat().st_mtime_ns for n in names} == before
    assert cli_main([*line.split()[1:], "--overwrite", "--seed", "1"]) == 0
    assert json.loads((offline / "degraded_samples" / "degradations.json").read_text())["seed"] == 1
    assert cli_main(["degrade", "missing_folder", "-o", "x"]) == 1
    assert "missing_folder" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        cli_main(["degrade", "my_hr_images", "-o", "x", "--count", "0"])
    assert usage.value.code == 2


def test_real_esrgan_presets_fail_fast_offline(offline):
    """`--preset=realesrgan` starts RealESRNet from ESRGAN_SRx4_DF2KOST_official and
    `--preset=finetune` from RealESRGAN_x4plus: offline, each stops at once saying where to put
    the file by hand, before any data is read or model built (their runs on local zoo stand-ins
    are in tests/test_recipe_realworld.py)."""
    import time

    from keras_esrgan.pretrained import OfflineError

    for preset, file_name in (("realesrgan", "ESRGAN_SRx4_DF2KOST_official-ff704c30.pth"),
                              ("finetune", "RealESRGAN_x4plus.pth")):
        started = time.time()
        with pytest.raises(OfflineError, match=f"(?s){file_name}.*To install it by hand"):
            recipes.train(preset, offline / preset, hr_dir=str(offline), val_dir=str(offline))
        assert time.time() - started < 30
        assert not os.path.exists(offline / preset / "psnr") and not os.path.exists(offline / preset / "gan")
