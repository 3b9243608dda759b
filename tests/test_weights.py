"""Weight import/export: PyTorch parity fixtures, every format, clear errors, unsafe pickles."""

import io
import os
import pickle
import zipfile

import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan import RRDBNet, UnsafeWeightsError, WeightsFileError, load_generator, save_generator
from keras_esrgan.cli import main as cli_main
from keras_esrgan.weights import (
    detect_layout,
    load_torch_file,
    read_checkpoint,
    read_state_dict,
    save_safetensors,
    state_dict,
    to_canonical,
)
from tests.conftest import FIXTURES, TINY

# name -> (scale, layout) of the committed fixtures (tests/data/make_fixtures.py writes them).
FIXTURE_FILES = {
    "old_esrgan_x4_legacy.pth": (4, "old_esrgan"),
    "esrgan_repo_x4.pth": (4, "esrgan"),
    "basicsr_x4_params_ema.pth": (4, "basicsr"),
    "basicsr_x2_fp16.pth": (2, "basicsr"),
    "basicsr_x1.safetensors": (1, "basicsr"),
    "basicsr_x4_bf16.safetensors": (4, "basicsr"),
}


def _reference(name):
    return np.load(FIXTURES / (name.split(".")[0] + ".npz"))


@pytest.mark.parametrize("name", sorted(FIXTURE_FILES))
def test_pytorch_fixture_parity(name):
    """Outputs equal the independent PyTorch implementation's, computed when the fixture was made."""
    scale, _ = FIXTURE_FILES[name]
    model = load_generator(FIXTURES / name)
    assert model.config == dict(num_in_ch=3, num_out_ch=3, scale=scale, **TINY)
    ref = _reference(name)
    out = model(ref["input"]).numpy()
    assert out.shape == ref["output"].shape
    assert np.abs(out - ref["output"]).max() <= 1e-5


@pytest.mark.parametrize("name", sorted(FIXTURE_FILES))
def test_layout_detection(name):
    from keras_esrgan.weights.formats import unwrap_state_dict

    path = FIXTURES / name
    raw = load_torch_file(path) if name.endswith(".pth") else read_state_dict(path)
    assert detect_layout(unwrap_state_dict(raw)) == FIXTURE_FILES[name][1]


def test_params_ema_is_preferred_over_params():
    raw = load_torch_file(FIXTURES / "basicsr_x4_params_ema.pth")
    ema = to_canonical({k[len("module."):]: v for k, v in raw["params_ema"].items()})
    canonical = read_state_dict(FIXTURES / "basicsr_x4_params_ema.pth")
    np.testing.assert_array_equal(canonical["conv_first.weight"], ema["conv_first.weight"])
    assert not np.array_equal(canonical["conv_first.weight"], raw["params"]["conv_first.weight"])


def test_torch_tensors_keep_values_and_dtypes():
    raw = load_torch_file(FIXTURES / "basicsr_x2_fp16.pth")["params"]
    assert raw["conv_first.weight"].dtype == np.float16
    assert raw["conv_first.weight"].shape == (8, 12, 3, 3)  # x2: 3 channels unshuffled by 2


@pytest.mark.parametrize("suffix", [".keras", ".weights.h5", ".safetensors"])
def test_save_load_round_trip_is_exact(suffix, tmp_path, rng):
    model = load_generator(FIXTURES / "basicsr_x2_fp16.pth")
    path = tmp_path / f"g{suffix}"
    save_generator(model, path)
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary file left behind
    loaded = load_generator(path)
    assert loaded.config == model.config
    for a, b in zip(model.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    x = rng.random((1, 6, 4, 3), dtype=np.float32)
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())


def test_state_dict_export_matches_source_file():
    canonical = read_state_dict(FIXTURES / "esrgan_repo_x4.pth")
    exported = state_dict(load_generator(FIXTURES / "esrgan_repo_x4.pth"))
    assert set(exported) == set(canonical)
    for key, value in canonical.items():
        np.testing.assert_array_equal(exported[key], value)


def test_dtype_override_gives_mixed_precision_model():
    model = load_generator(FIXTURES / "esrgan_repo_x4.pth", dtype="mixed_bfloat16")
    assert model.dtype_policy.name == "mixed_bfloat16"
    ref = _reference("esrgan_repo_x4.pth")
    out = model(ref["input"]).numpy()
    assert np.abs(out - ref["output"]).mean() < 0.02 * np.abs(ref["output"]).mean()


def test_keras_file_with_a_dtype_is_loaded_then_copied_into_it(tmp_path):
    model = RRDBNet(**TINY)
    rng = np.random.default_rng(0)
    for var in model.weights:
        var.assign(rng.normal(0, 0.1, var.shape).astype("float32"))
    save_generator(model, tmp_path / "g.keras")
    half = load_generator(tmp_path / "g.keras", dtype="bfloat16")
    assert half.dtype_policy.name == "bfloat16" and half.config == model.config
    for a, b in zip(half.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, tf.cast(b, tf.bfloat16).numpy())
    assert load_generator(tmp_path / "g.keras", dtype="float32").dtype_policy.name == "float32"


def test_ambiguous_scale_override(tmp_path):
    """A 12-channel x4 model (e.g. 4 frames) is read as x2 RGB unless told otherwise."""
    model = RRDBNet(num_in_ch=12, num_out_ch=3, scale=4, **TINY)
    save_generator(model, tmp_path / "g.safetensors")
    assert load_generator(tmp_path / "g.safetensors").config["scale"] == 2
    assert load_generator(tmp_path / "g.safetensors", scale=4).config == model.config
    with pytest.raises(WeightsFileError, match="num_in_ch=5"):
        load_generator(tmp_path / "g.safetensors", num_in_ch=5)


# --- errors -------------------------------------------------------------------------------


def test_missing_file():
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_generator("nope.pth")


def test_not_a_weights_file(tmp_path):
    path = tmp_path / "notes.pth"
    path.write_text("hello, these are not weights")
    with pytest.raises(WeightsFileError, match="notes.pth"):
        load_generator(path)
    other = tmp_path / "readme"
    other.write_text("plain text")
    with pytest.raises(WeightsFileError, match="not a weights file"):
        load_generator(other)


def test_read_checkpoint_takes_the_format_from_the_files_own_name(tmp_path):
    # A download's `.part` file, as the model zoo's layout check reads it: the entry's name decides.
    part = tmp_path / "x.safetensors.part"
    part.write_bytes((FIXTURES / "basicsr_x1.safetensors").read_bytes())
    expected = read_checkpoint(FIXTURES / "basicsr_x1.safetensors")
    got = read_checkpoint(part, name="x.safetensors")
    assert sorted(got) == sorted(expected) and all(np.array_equal(got[k], expected[k]) for k in got)
    with pytest.raises(WeightsFileError, match=r"^x\.keras: a Keras file, not a PyTorch/safetensors state dict"):
        read_checkpoint(part, name="x.keras")


@pytest.mark.parametrize("name", ["esrgan_repo_x4.pth", "old_esrgan_x4_legacy.pth", "basicsr_x1.safetensors"])
@pytest.mark.parametrize("fraction", [0.05, 0.5, 0.97])
def test_truncated_files(name, fraction, tmp_path):
    data = (FIXTURES / name).read_bytes()
    path = tmp_path / name
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(WeightsFileError, match=name.replace(".", r"\.")):
        load_generator(path)


def test_unknown_layout(tmp_path):
    save_safetensors({"encoder.weight": np.zeros((4, 3, 3, 3), "float32")}, tmp_path / "x.safetensors")
    with pytest.raises(WeightsFileError, match="unknown state-dict layout"):
        load_generator(tmp_path / "x.safetensors")


def test_variant_with_extra_modules_is_refused(tmp_path):
    sd = state_dict(RRDBNet(**TINY))
    sd["conv_extra.weight"] = np.zeros((8, 8, 3, 3), "float32")
    save_safetensors(sd, tmp_path / "plus.safetensors")
    with pytest.raises(WeightsFileError, match="conv_extra"):
        load_generator(tmp_path / "plus.safetensors")


def test_shape_mismatch_names_key_and_architecture(tmp_path):
    sd = state_dict(RRDBNet(**TINY))
    sd["body.1.rdb2.conv3.weight"] = np.zeros((4, 15, 3, 3), "float32")
    save_safetensors(sd, tmp_path / "bad.safetensors")
    with pytest.raises(WeightsFileError, match=r"body\.1\.rdb2\.conv3\.weight.*RRDBNet\("):
        load_generator(tmp_path / "bad.safetensors")
    with pytest.raises(WeightsFileError, match="missing 'body.2"):
        load_generator(FIXTURES / "esrgan_repo_x4.pth", num_block=3)


def test_discriminator_weights_given_as_generator(tmp_path):
    vgg = {"conv0_0.weight": np.zeros((4, 3, 3, 3), "float32"), "linear1.weight": np.zeros((100, 8))}
    save_safetensors(vgg, tmp_path / "net_d.safetensors")
    with pytest.raises(WeightsFileError, match="discriminator.*VGGStyleDiscriminator"):
        load_generator(tmp_path / "net_d.safetensors")
    unet = {f"conv{i}.weight": np.zeros((1, 1, 3, 3), "float32") for i in range(10)}
    save_safetensors(unet, tmp_path / "unet.safetensors")
    with pytest.raises(WeightsFileError, match="UNetDiscriminatorSN"):
        load_generator(tmp_path / "unet.safetensors")


def test_keras_file_of_another_model(tmp_path):
    from keras_esrgan import UNetDiscriminatorSN

    UNetDiscriminatorSN(num_feat=4).save(tmp_path / "d.keras")
    with pytest.raises(WeightsFileError, match="not an RRDBNet"):
        load_generator(tmp_path / "d.keras")


def test_old_layout_with_other_upsampling_is_refused(tmp_path):
    sd = {f"model.{k}.weight": np.zeros((8, 8, 3, 3), "float32") for k in (0, 3, 5, 7)}
    sd["model.1.sub.0.RDB1.conv1.0.weight"] = np.zeros((4, 8, 3, 3), "float32")
    save_safetensors(sd, tmp_path / "x2old.safetensors")
    with pytest.raises(WeightsFileError, match=r"only the x4 arrangement"):
        load_generator(tmp_path / "x2old.safetensors")


# --- unsafe pickles -----------------------------------------------------------------------


class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _malicious_zip(path, command):
    payload = pickle.dumps({"conv_first.weight": _RunsCommand(command)}, protocol=2)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")


def _malicious_legacy(path, command):
    buf = io.BytesIO()
    for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
        pickle.dump(header, buf, protocol=2)
    pickle.dump({"conv_first.weight": _RunsCommand(command)}, buf, protocol=2)
    path.write_bytes(buf.getvalue())


@pytest.mark.parametrize("writer", [_malicious_zip, _malicious_legacy])
def test_malicious_pickle_is_refused_and_never_runs(writer, tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    writer(path, f"touch {marker}")
    with pytest.raises(UnsafeWeightsError, match=r"refusing to unpickle the global '(posix|os|nt)\.system'"):
        load_generator(path)
    assert not marker.exists()
    # The CLI reports it as an error, still without running it.
    assert cli_main(["convert", str(path), str(tmp_path / "out.keras")]) == 1
    assert not marker.exists() and not (tmp_path / "out.keras").exists()


def test_plain_pickle_with_eval_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (eval, ("__import__('os').getpid()",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(UnsafeWeightsError, match=r"(builtins|__builtin__)\.eval"):
        load_generator(path)


# --- command line ---------------------------------------------------------------------------


def test_cli_convert(tmp_path, capsys):
    out = tmp_path / "g.keras"
    assert cli_main(["convert", str(FIXTURES / "old_esrgan_x4_legacy.pth"), str(out)]) == 0
    assert "num_block=2" in capsys.readouterr().out
    ref = _reference("old_esrgan_x4_legacy.pth")
    assert np.abs(load_generator(out)(ref["input"]).numpy() - ref["output"]).max() <= 1e-5
    # An existing output is not replaced unless asked.
    assert cli_main(["convert", str(FIXTURES / "esrgan_repo_x4.pth"), str(out)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert cli_main(["convert", str(FIXTURES / "esrgan_repo_x4.pth"), str(out), "--overwrite"]) == 0


def test_formats_decode_bfloat16_and_byte_orders():
    """bfloat16 is the top half of a float32: against values packed by hand with struct."""
    import struct

    from keras_esrgan.weights.formats import decode_array, itemsize

    values = [1.0, -2.5, 3.140625, 0.0]  # exactly representable in bfloat16
    top_halves = [struct.pack(">f", v)[:2] for v in values]
    big = b"".join(top_halves)
    little = b"".join(h[::-1] for h in top_halves)
    np.testing.assert_array_equal(decode_array(little, "bfloat16"), np.float32(values))
    np.testing.assert_array_equal(decode_array(big, "bfloat16", "big"), np.float32(values))
    got = decode_array(struct.pack(">3i", 1, -2, 70000), np.int32, "big")
    assert got.dtype == np.int32 and got.dtype.isnative and got.tolist() == [1, -2, 70000]
    assert decode_array(b"\x00\x02\x01", np.bool_).tolist() == [False, True, True]
    assert (itemsize("bfloat16"), itemsize(np.float16), itemsize(np.int64)) == (2, 2, 8)


def test_formats_sniff_by_signature(tmp_path):
    """Without a known extension, the first bytes decide; every reader shares this one rule."""
    from keras_esrgan.weights.formats import sniff_format

    net = RRDBNet(**TINY)
    for ext, kind in ((".keras", "keras"), (".weights.h5", "h5"), (".safetensors", "safetensors")):
        save_generator(net, tmp_path / f"g{ext}")
        (tmp_path / f"g{ext}").rename(tmp_path / f"no_extension_{kind}")
        assert sniff_format(tmp_path / f"no_extension_{kind}") == kind
    (tmp_path / "legacy").write_bytes((FIXTURES / "old_esrgan_x4_legacy.pth").read_bytes())
    assert sniff_format(tmp_path / "legacy") == "torch"


def test_unwrap_state_dict_prefers_ema_and_strips_module():
    from keras_esrgan.weights.formats import unwrap_state_dict

    ema, raw = np.ones(2, np.float32), np.zeros(2, np.float32)
    got = unwrap_state_dict({"params": {"conv.weight": raw}, "params_ema": {"module.module.conv.weight": ema}})
    assert list(got) == ["conv.weight"] and got["conv.weight"] is ema
    with pytest.raises(WeightsFileError, match="ckpt: holds a list, not a state dict"):
        unwrap_state_dict([raw], "ckpt")
    with pytest.raises(WeightsFileError, match="ckpt: no tensors found"):
        unwrap_state_dict({"iter": 3, "params": {}}, "ckpt")
