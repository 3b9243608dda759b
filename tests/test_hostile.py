"""Hostile input and faults (issue 18): each case of the corpus fails clearly or comes out right.

The files are written into tmp_path by tests/hostile_files.py; /work/notes/issue18-cases.md maps
every case of the issue to its test here. Memory bounds are asserted with tracemalloc (numpy and
Python allocations), with claims large enough that the unfixed loader would exceed them many
times over but small enough not to hurt the machine if it did.
"""

import hashlib
import os
import tracemalloc

import numpy as np
import pytest

from keras_esrgan import RRDBNet, UnsafeWeightsError, WeightsFileError, load_generator, save_generator
from keras_esrgan.cli import main as cli_main
from keras_esrgan.weights import load_safetensors, load_torch_file, save_safetensors, state_dict
from keras_esrgan.weights.layouts import check_architecture, parameter_count
from tests import hostile_files as H
from tests.conftest import TINY

MiB = 1 << 20


def peak_bytes(fn):
    """Peak traced allocation (bytes) while `fn()` runs; returns `(peak, exception or None)`."""
    tracemalloc.start()
    error = None
    try:
        fn()
    except Exception as err:  # the caller checks which
        error = err
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, error


def listing(folder):
    return sorted(os.listdir(folder))


def digests(folder):
    return {
        p: (hashlib.sha256((folder / p).read_bytes()).hexdigest(), (folder / p).stat().st_mtime_ns)
        for p in listing(folder) if (folder / p).is_file()
    }


@pytest.fixture(scope="module")
def tiny_state():
    net = RRDBNet(**TINY)
    return {k: v for k, v in state_dict(net).items()}


# --- 1. out-of-bounds reads in the .pth loader ------------------------------------------------

OOB_VIEWS = {
    # name: (storage elements, offset, size, stride, expected message)
    "negative_stride_reads_before_the_buffer": (64, 0, (64,), (-1,), "negative values"),
    "negative_stride_backwards_in_bounds": (64, 63, (64,), (-1,), "negative values"),
    "negative_offset": (64, -8, (8,), (1,), "negative values"),
    "negative_size": (64, 0, (-4, 4), (4, 1), "negative values"),
    "last_element_past_the_storage": (64, 10, (8, 8), (8, 1), "needs 74 elements, but storage '0' has 64"),
    "permuted_past_the_storage": (64, 0, (8, 9), (1, 8), "needs 72 elements"),
    "float_stride": (64, 0, (8, 8), (8.0, 1), "not integers"),
    "bool_size": (64, 0, (True, 8), (8, 1), "not integers"),
    "sizes_and_strides_differ_in_length": (64, 0, (8, 8), (8,), "2 sizes and 1 strides"),
}


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize("case", sorted(OOB_VIEWS))
def test_tensor_views_outside_their_storage_are_refused(case, fmt, tmp_path):
    numel, offset, size, stride, message = OOB_VIEWS[case]
    path = H.one_tensor_file(tmp_path / f"{case}.pth", numel, offset, size, stride, fmt=fmt)
    with pytest.raises(WeightsFileError, match=rf"{case}\.pth: .*{message}"):
        load_torch_file(path)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_valid_strided_views_read_the_right_elements(fmt, tmp_path):
    """Contiguous, permuted (a saved `.t()`), offset and gapped (a saved slice) views: the values
    are those torch would give, computed here by index arithmetic."""
    storage = np.arange(40) % 251  # what one_tensor_file stores
    cases = [(0, (5, 8), (8, 1)), (0, (8, 5), (1, 8)), (7, (3, 4), (10, 2)), (39, (), ()), (3, (2, 0, 5), (5, 5, 1))]
    for i, (offset, size, stride) in enumerate(cases):
        path = H.one_tensor_file(tmp_path / f"v{i}.pth", 40, offset, size, stride, fmt=fmt)
        got = load_torch_file(path)["w"]
        want = np.zeros(size, np.float32)
        for index in np.ndindex(*size):
            want[index] = storage[offset + sum(k * s for k, s in zip(index, stride))]
        assert got.dtype == np.float32 and got.shape == size
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
def test_a_model_with_one_tensor_read_backwards_loads_nothing_and_convert_writes_nothing(
    fmt, tiny_state, tmp_path
):
    def backwards(name, t):
        if name != "conv_first.weight":
            return t
        return t._replace(offset=t.numel - 1, stride=tuple(-s for s in t.stride))

    path = H.state_dict_file(tmp_path / "backwards.pth", tiny_state, fmt=fmt, edit=backwards)
    with pytest.raises(WeightsFileError, match=r"backwards\.pth: .*negative values"):
        load_generator(path)
    out = tmp_path / "out"
    for target in ("g.keras", "g.safetensors", "g.weights.h5"):
        assert cli_main(["convert", str(path), str(out / target)]) == 1
    assert not out.exists() or listing(out) == []
    # The same state dict with the tensor as saved loads, so the refusal is the stride's.
    good = H.state_dict_file(tmp_path / "good.pth", tiny_state, fmt=fmt)
    np.testing.assert_array_equal(
        load_generator(good).conv_first.kernel.numpy(),
        tiny_state["conv_first.weight"].transpose(2, 3, 1, 0),
    )


def test_vgg19_loader_refuses_the_same_views(tmp_path):
    from keras_esrgan.perceptual import VGG19FeatureExtractor, load_vgg19_weights

    state = {"features.0.weight": np.zeros((64, 3, 3, 3), np.float32), "features.0.bias": np.zeros(64, np.float32)}
    edit = lambda name, t: t._replace(stride=(-27, 9, 3, 1)) if name.endswith("weight") else t  # noqa: E731
    path = H.state_dict_file(tmp_path / "vgg19.pth", state, edit=edit)
    with pytest.raises(WeightsFileError, match=r"vgg19\.pth: .*negative values"):
        load_vgg19_weights(VGG19FeatureExtractor(["block1_conv1"]), path)


# --- 3. tiny files that would take huge memory -----------------------------------------------


def _zero_stride(tmp_path):  # 256 MB of float32 from one element
    return H.one_tensor_file(tmp_path / "broadcast.pth", 1, 0, (8192, 8192), (0, 0))


def _overlapping(tmp_path):  # 16384^2 elements from a storage of 32767
    return H.one_tensor_file(tmp_path / "overlap.pth", 32767, 0, (16384, 16384), (1, 1))


def _member_larger_than_declared(tmp_path):  # 64 MB inflated from 64 KB; pickle wants 16 bytes
    return H.zip_member_bomb(tmp_path / "member.pth", 64 * MiB, 4)


def _member_inflates_as_declared(tmp_path):  # the pickle declares what the member inflates to
    return H.zip_member_bomb(tmp_path / "inflate.pth", 64 * MiB, 16 * MiB)


def _huge_numel(tmp_path):  # 10^12 elements declared over a 16-byte member
    t = H.Tensor("0", "FloatStorage", 10**12, 0, (10**12,), (1,))
    return H.write_torch_zip(tmp_path / "numel.pth", H.TorchPickle().value({"w": t}).bytes(), {"0": bytes(16)})


def _legacy_huge_storage(tmp_path):  # the storage header claims 10^12 elements
    t = H.Tensor("0", "FloatStorage", 10**12, 0, (4,), (1,))
    pickled = H.TorchPickle(legacy=True).value({"w": t}).bytes()
    return H.write_torch_legacy(tmp_path / "legacy.pth", pickled, {"0": (10**12, bytes(16))})


def _billion_laughs_legacy(tmp_path):  # 2^24 paths through 48 objects
    return H.write_torch_legacy(tmp_path / "laughs.pth", H.shared_reference_bomb(24))


def _billion_laughs_zip(tmp_path):
    return H.write_torch_zip(tmp_path / "laughs.pth", H.shared_reference_bomb(24))


def _tuple_key_bomb(tmp_path):  # hashing the key would visit 2^40 paths
    return H.write_torch_zip(tmp_path / "tuplekey.pth", H.tuple_key_bomb(40))


BOMBS = {
    "zero_stride": (_zero_stride, r"stride 0 over a dimension"),
    "overlapping_strides": (_overlapping, "more than once"),
    "zip_member_larger_than_declared": (_member_larger_than_declared, "holds 67,108,864 bytes where its tensors declare 16"),
    "zip_member_inflation": (_member_inflates_as_declared, "zip bomb"),
    "huge_numel": (_huge_numel, "holds 16 bytes where its tensors declare 4,000,000,000,000"),
    "legacy_huge_storage": (_legacy_huge_storage, "1,000,000,000,000 elements"),
    "billion_laughs_legacy": (_billion_laughs_legacy, "no tensors found"),
    "billion_laughs_zip": (_billion_laughs_zip, "no tensors found"),
    "tuple_key_bomb": (_tuple_key_bomb, "dict key or set item of type tuple"),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_tiny_files_cannot_take_much_memory(case, tmp_path):
    writer, message = BOMBS[case]
    path = writer(tmp_path)
    peak, error = peak_bytes(lambda: load_generator(path))
    assert isinstance(error, WeightsFileError), repr(error)
    assert path.name in str(error) and message in str(error)
    assert peak < 8 * MiB, f"{peak / MiB:.1f} MiB for a {path.stat().st_size:,}-byte file"


@pytest.mark.parametrize("fmt", ["zip", "legacy"])
@pytest.mark.parametrize(
    "case, message",
    [
        ("deep", "nested more than 32 deep"),
        ("cycle", "reference cycle"),
        ("nested_params", "nested more than 32 deep"),
    ],
)
def test_deep_and_cyclic_pickles_get_a_clear_error(case, message, fmt, tmp_path):
    if case == "deep":
        pickled = H.deep_pickle(100_000)
    elif case == "cycle":
        pickled = H.cyclic_pickle()
    else:
        nested = {"w": 1}
        for _ in range(40):
            nested = {"params": nested}
        pickled = H.TorchPickle().value(nested).bytes()
    path = tmp_path / f"{case}.pth"
    if fmt == "zip":
        H.write_torch_zip(path, pickled)
    else:
        H.write_torch_legacy(path, pickled)
    with pytest.raises(WeightsFileError, match=rf"{case}\.pth: .*{message}"):
        load_generator(path)


@pytest.mark.parametrize("target", [("torch._utils", "_rebuild_parameter"), ("torch", "FloatStorage"),
                                    ("torch._utils", "_rebuild_tensor_v2")])
def test_build_opcode_cannot_touch_the_loaders_own_objects(target, tmp_path):
    from keras_esrgan.weights import torch_pickle

    before = torch_pickle._rebuild_parameter.__defaults__
    path = H.write_torch_zip(tmp_path / "build.pth", H.build_on_function_pickle(target))
    with pytest.raises(UnsafeWeightsError, match=r"build\.pth: the pickle sets attributes on a"):
        load_torch_file(path)
    assert torch_pickle._rebuild_parameter.__defaults__ == before
    assert torch_pickle.RestrictedUnpickler._rebuild_view.__defaults__ is None


# --- safetensors headers ----------------------------------------------------------------------

_A = H.f32_entry(0, (2, 3))  # bytes 0..24
_B = H.f32_entry(24, (4,))   # bytes 24..40
SAFETENSORS = {
    "overlapping_offsets": ({"a": _A, "b": H.f32_entry(8, (4,))}, 40, "overlaps the previous tensor"),
    "gap_between_tensors": ({"a": _A, "b": H.f32_entry(28, (4,))}, 44, "leaves a gap before it"),
    "bytes_after_the_last_tensor": ({"a": _A, "b": _B}, 48, "8 bytes after the last tensor"),
    "length_not_a_multiple_of_the_dtype": (
        {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 7]}}, 7, "needs 8 bytes"),
    "float_offsets": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0.0, 8.0]}}, 8, "data_offsets"),
    "string_offsets": ({"a": {"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}}, 8, "data_offsets"),
    "negative_shape": ({"a": {"dtype": "F32", "shape": [-2, -1], "data_offsets": [0, 8]}}, 8, "non-negative"),
    "string_shape": ({"a": {"dtype": "F32", "shape": "22", "data_offsets": [0, 8]}}, 8, "non-negative"),
    "bool_shape": ({"a": {"dtype": "F32", "shape": [True, 2], "data_offsets": [0, 8]}}, 8, "non-negative"),
    "unhashable_dtype": ({"a": {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}}, 8, "has dtype"),
    "entry_not_an_object": ({"a": [1, 2]}, 8, "entry of type list"),
    "past_the_end": ({"a": H.f32_entry(0, (4,))}, 8, "run past the end"),
    "reversed_offsets": ({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, 8, "data_offsets"),
    "deep_json": (b"[" * 100_000 + b"]" * 100_000, 0, "nested too deeply"),
    "duplicate_key": (b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, '
                      b'"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', 4, "names 'a' twice"),
    "nan_in_header": (b'{"a": {"dtype": "F32", "shape": [NaN], "data_offsets": [0, 4]}}', 4, "NaN"),
    "header_not_an_object": (b"[1, 2, 3]", 0, "not a JSON object"),
    "metadata_not_an_object": ({"__metadata__": [1]}, 0, "__metadata__"),
}


@pytest.mark.parametrize("case", sorted(SAFETENSORS))
def test_malformed_safetensors_headers_get_a_clear_error(case, tmp_path):
    header, body_len, message = SAFETENSORS[case]
    path = H.safetensors_file(tmp_path / f"{case}.safetensors", header, bytes(body_len))
    with pytest.raises(WeightsFileError, match=rf"{case}\.safetensors: .*{message}"):
        load_safetensors(path)


def test_safetensors_in_any_header_order_load_exactly(tmp_path):
    values = np.arange(10, dtype=np.float32)
    header = {"b": _B, "__metadata__": {"k": "v"}, "a": _A, "z": H.f32_entry(40, (0,))}
    path = H.safetensors_file(tmp_path / "ok.safetensors", header, values.tobytes())
    got = load_safetensors(path)
    np.testing.assert_array_equal(got["a"], values[:6].reshape(2, 3))
    np.testing.assert_array_equal(got["b"], values[6:])
    assert got["z"].shape == (0,)


# --- 3. architecture checked before anything is built -----------------------------------------


@pytest.fixture(scope="module")
def tiny_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    net = RRDBNet(**TINY)
    save_generator(net, folder / "g.keras")
    save_generator(net, folder / "g.weights.h5")
    return folder


@pytest.fixture
def no_building(monkeypatch):
    """Fail the test if anything builds a model or asks Keras to load one."""
    import keras

    from keras_esrgan.weights import io as weights_io

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built before the architecture was checked")

    monkeypatch.setattr(weights_io, "RRDBNet", refuse)
    monkeypatch.setattr(keras.saving, "load_model", refuse)


def _state_with(arch, blocks):
    """A state dict with zero-size tensors whose shapes say `arch` (nothing to read)."""
    nf, gc = arch["num_feat"], arch["num_grow_ch"]
    state = {f"{top}.weight": np.zeros((nf, nf, 0, 3), np.float32) for top in
             ("conv_body", "conv_up1", "conv_up2", "conv_hr")}
    state["conv_first.weight"] = np.zeros((nf, 3, 0, 3), np.float32)
    state["conv_last.weight"] = np.zeros((3, nf, 0, 3), np.float32)
    for i in range(blocks):
        state[f"body.{i}.rdb1.conv1.weight"] = np.zeros((gc, nf, 0, 3), np.float32)
    return state


@pytest.mark.parametrize(
    "arch, message",
    [
        (dict(num_feat=12000, num_grow_ch=32, blocks=2), "num_feat=12,000, over the limit of 1024"),
        (dict(num_feat=8, num_grow_ch=4, blocks=300), "num_block=300, over the limit of 100"),
        (dict(num_feat=1024, num_grow_ch=512, blocks=100), "parameters, over the limit of 268,435,456"),
    ],
)
def test_state_dicts_of_giant_architectures_are_refused_before_building(arch, message, tmp_path, no_building):
    path = tmp_path / "giant.safetensors"
    save_safetensors(_state_with(arch, arch.pop("blocks")), path)
    with pytest.raises(WeightsFileError, match=rf"giant\.safetensors: .*{message}"):
        load_generator(path)


def test_keras_files_of_giant_or_foreign_models_are_refused_before_building(tiny_files, tmp_path, no_building):
    big = H.keras_with_config(tmp_path / "big.keras", tiny_files / "g.keras", num_feat=12000)
    with pytest.raises(WeightsFileError, match=r"big\.keras: .*num_feat=12,000"):
        load_generator(big)
    deep = H.keras_with_config(tmp_path / "deep.keras", tiny_files / "g.keras", num_block=300)
    with pytest.raises(WeightsFileError, match=r"deep\.keras: .*num_block=300"):
        load_generator(deep)
    text = H.keras_with_config(tmp_path / "text.keras", tiny_files / "g.keras", num_feat="64")
    with pytest.raises(WeightsFileError, match=r"text\.keras: num_feat='64' is not a positive integer"):
        load_generator(text)


def test_weights_h5_with_giant_declared_shapes_is_refused_before_building(tiny_files, tmp_path, no_building):
    first = H.weights_h5_with_declared(tmp_path / "first.weights.h5", tiny_files / "g.weights.h5",
                                       "conv_first/vars/0", (3, 3, 3, 12000))
    with pytest.raises(WeightsFileError, match=r"first\.weights\.h5: .*num_feat=12,000"):
        load_generator(first)
    import h5py

    with h5py.File(tiny_files / "g.weights.h5", "r") as f:
        names = []
        f["body"].visit(lambda n: names.append(n) if n.endswith("vars/0") else None)
    body = H.weights_h5_with_declared(tmp_path / "body.weights.h5", tiny_files / "g.weights.h5",
                                      f"body/{names[3]}", (10**9, 4))
    assert body.stat().st_size < MiB  # declaring 16 GB
    with pytest.raises(WeightsFileError, match=r"body\.weights\.h5: its datasets declare 4,000,0\d\d,\d+ values where the model it describes has 25,387"):
        load_generator(body)


def test_keras_archive_with_giant_declared_weights_is_refused(tiny_files, tmp_path):
    import zipfile

    inner = H.weights_h5_with_declared(tmp_path / "inner.h5", tiny_files / "g.weights.h5",
                                       "conv_last/vars/0", (10**9, 3))
    path = tmp_path / "sneaky.keras"
    with zipfile.ZipFile(tiny_files / "g.keras") as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, inner.read_bytes() if info.filename == "model.weights.h5" else src.read(info))
    peak, error = peak_bytes(lambda: load_generator(path))
    assert isinstance(error, WeightsFileError) and "declare 3,000,0" in str(error), repr(error)
    assert peak < 16 * MiB


def test_limits_admit_every_real_architecture():
    real = {
        "ESRGAN / RealESRGAN_x4plus": dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=23, num_grow_ch=32),
        "RealESRGAN_x2plus": dict(num_in_ch=3, num_out_ch=3, scale=2, num_feat=64, num_block=23, num_grow_ch=32),
        "RealESRGAN_x4plus_anime_6B": dict(num_in_ch=3, num_out_ch=3, scale=4, num_feat=64, num_block=6, num_grow_ch=32),
        "x1 denoiser": dict(num_in_ch=3, num_out_ch=3, scale=1, num_feat=64, num_block=23, num_grow_ch=32),
    }
    assert check_architecture(real["ESRGAN / RealESRGAN_x4plus"]) == 16_697_987
    for arch in real.values():
        check_architecture(arch)
    # The count is the built model's, for a few shapes.
    for arch in (dict(num_in_ch=1, num_out_ch=4, scale=2, num_feat=6, num_block=2, num_grow_ch=3),
                 dict(num_in_ch=12, num_out_ch=3, scale=1, num_feat=5, num_block=1, num_grow_ch=2)):
        assert parameter_count(arch) == RRDBNet(**arch).count_params()


# --- 2. training checkpoints: never lose progress, never write over a checkpoint ---------------


def _trainer(num_feat=4):
    import keras

    from keras_esrgan import PSNRTrainer

    keras.utils.set_random_seed(0)
    trainer = PSNRTrainer(RRDBNet(num_feat=num_feat, num_block=1, num_grow_ch=2), ema_decay=0.5)
    trainer.compile(optimizer=keras.optimizers.Adam(1e-3))
    return trainer


def _train(folder, epochs, num_feat=4, verbose=0):
    import tensorflow as tf

    from keras_esrgan import TrainingCheckpoint

    rng = np.random.default_rng(0)
    hr = rng.random((2, 16, 16, 3), dtype=np.float32)
    lr = hr.reshape(2, 4, 4, 4, 4, 3).mean(axis=(2, 4))
    ds = tf.data.Dataset.from_tensor_slices((lr, hr)).batch(2).repeat()
    trainer = _trainer(num_feat)
    history = trainer.fit(ds, epochs=epochs, steps_per_epoch=2, verbose=0, shuffle=False,
                          callbacks=[TrainingCheckpoint(folder, verbose=verbose)])
    return trainer, history


def _checkpoint_files(folder):
    return {k: v for k, v in digests(folder).items() if k.startswith("ckpt-")}


def test_unreadable_state_file_resumes_from_the_checkpoints_on_disk(tmp_path, capsys):
    """A garbage, empty or missing `checkpoint` state file: training resumes at the last saved
    step, and no existing ckpt-N file is rewritten (contents and mtimes unchanged)."""
    import tensorflow as tf

    _train(tmp_path, epochs=2)  # ckpt-2, ckpt-4
    epochs = 2
    for damage in ("garbage {{{ not a proto", "", None):
        state = tmp_path / "checkpoint"
        if damage is None:
            state.unlink()
        else:
            state.write_text(damage)
        before = _checkpoint_files(tmp_path)
        epochs += 1
        trainer, history = _train(tmp_path, epochs=epochs, verbose=1)
        out = capsys.readouterr().out
        assert f"at step {2 * (epochs - 1)}" in out, out
        assert len(next(iter(history.history.values()))) == 1 and int(trainer.iterations.numpy()) == 2 * epochs
        after = _checkpoint_files(tmp_path)
        assert {k: after[k] for k in before} == before
        assert tf.train.get_checkpoint_state(str(tmp_path)).model_checkpoint_path.endswith(f"ckpt-{2 * epochs}")
    kept = sorted(p for p in listing(tmp_path) if p.startswith("checkpoint.unreadable-"))
    assert len(kept) >= 1 and (tmp_path / kept[0]).read_text() == "garbage {{{ not a proto"


def test_resuming_from_an_older_checkpoint_never_writes_over_a_newer_one(tmp_path, capsys):
    _train(tmp_path, epochs=2)  # ckpt-2, ckpt-4
    for data in tmp_path.glob("ckpt-4.data-*"):
        data.write_bytes(b"\0" * 16)  # unreadable: the run falls back to ckpt-2
    damaged = {k: v for k, v in _checkpoint_files(tmp_path).items() if k.startswith("ckpt-4.")}
    trainer, _ = _train(tmp_path, epochs=3, verbose=1)
    out = capsys.readouterr().out
    assert "resumed from" in out and "at step 2" in out, out
    assert int(trainer.iterations.numpy()) == 6
    after = _checkpoint_files(tmp_path)
    assert {k: after[k] for k in damaged} == damaged  # the damaged ckpt-4 is kept as it was
    # (ckpt-2 goes by the usual rotation, max_to_keep=3: ckpt-4, 5 and 6 remain)
    assert sorted(k.split(".")[0] for k in after if k.endswith(".index")) == ["ckpt-4", "ckpt-5", "ckpt-6"]
    import tensorflow as tf

    steps = {}
    for number in (5, 6):  # step 4 saved as ckpt-5 (4 is taken), step 6 as ckpt-6
        reader = tf.train.load_checkpoint(str(tmp_path / f"ckpt-{number}"))
        steps[number] = int(reader.get_tensor("iterations/.ATTRIBUTES/VARIABLE_VALUE"))
    assert steps == {5: 4, 6: 6}
    assert "ckpt-5 (step 4; ckpt-4 is on disk already)" in out


def test_checkpoint_of_another_architecture_says_which(tmp_path):
    _train(tmp_path, epochs=1, num_feat=4)
    with pytest.raises(ValueError, match=r"ckpt-2 is of another architecture: its generator is "
                       r"RRDBNet\(num_feat=4, num_block=1, num_grow_ch=2, 3 input channels to "
                       r"conv_first, num_out_ch=3\), this model's is RRDBNet\(num_in_ch=3, "
                       r"num_out_ch=3, scale=4, num_feat=8, num_block=1, num_grow_ch=2\)"):
        _train(tmp_path, epochs=2, num_feat=8)
