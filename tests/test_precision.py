"""keras_esrgan.precision: one vocabulary for inference and training, and what "auto" means."""

import pytest

from keras_esrgan import precision


def test_inference_names_aliases_and_auto(monkeypatch):
    assert precision.INFERENCE_PRECISIONS == ("auto", "fp32", "bf16")
    for name, expected in (("fp32", "fp32"), ("FLOAT32", "fp32"), ("bf16", "bf16"), ("bfloat16", "bf16"),
                           ("mixed_bfloat16", "bf16")):
        assert precision.inference_precision(name) == expected
    assert [precision.inference_policy(p) for p in ("fp32", "bf16")] == ["float32", "bfloat16"]
    for gpu, bf16_cpu, expected in ((False, True, "bf16"), (False, False, "fp32"), (True, True, "fp32")):
        monkeypatch.setattr(precision, "has_gpu", lambda gpu=gpu: gpu)
        monkeypatch.setattr(precision, "cpu_supports_bf16", lambda bf16_cpu=bf16_cpu: bf16_cpu)
        assert precision.inference_precision("auto") == expected
        assert precision.inference_policy("auto") == {"fp32": "float32", "bf16": "bfloat16"}[expected]
    with pytest.raises(ValueError, match=r"precision must be one of \('auto', 'fp32', 'bf16'\).*'int8'"):
        precision.inference_precision("int8")


def test_training_names_aliases_and_auto(monkeypatch):
    assert precision.TRAINING_PRECISIONS == ("off", "auto", "mixed_bfloat16", "mixed_float16")
    table = {
        False: "off", None: "off", "off": "off", "false": "off", "0": "off", "float32": "off", " FP32 ": "off",
        True: "auto", "auto": "auto", "on": "auto", "true": "auto", "1": "auto",
        "mixed_bfloat16": "mixed_bfloat16", "bf16": "mixed_bfloat16",
        "mixed_float16": "mixed_float16", "fp16": "mixed_float16",
    }
    for value, expected in table.items():
        assert precision.training_precision(value) == expected, value
    for gpu, auto in ((False, "mixed_bfloat16"), (True, "mixed_float16")):
        monkeypatch.setattr(precision, "has_gpu", lambda gpu=gpu: gpu)
        assert [precision.training_policy(v) for v in (False, True, "bf16", "mixed_float16")] == [
            "float32", auto, "mixed_bfloat16", "mixed_float16"]
    with pytest.raises(ValueError, match="mixed_precision must be one of off, auto, mixed_bfloat16, mixed_float16"):
        precision.training_policy("fp8")
    monkeypatch.undo()
    assert precision.has_gpu() is precision.has_gpu()  # asked once: the same bool
