"""Hostile input and faults (issue 18): each case of the corpus fails clearly or comes out right.

The files are written into tmp_path by tests/hostile_files.py; /work/notes/issue18-cases.md maps
every case of the issue to its test here. Memory bounds are asserted with tracemalloc (numpy and
Python allocations), with claims large enough that the unfixed loader would exceed them many
times over but small enough not to hurt the machine if it did.
"""

import hashlib
import os
import struct
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


# The module-scoped fixtures below are built once: keep this file's tests on one xdist
# worker (pyproject: --dist loadgroup); other files' tests are spread one by one.
pytestmark = pytest.mark.xdist_group("hostile")


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


# --- 4, 9, 10. images: bombs, animations, 16 bits, names that are not UTF-8 -------------------

BAD_NAME = os.fsdecode(b"caf\xe9")  # Latin-1 bytes: not valid UTF-8


def _rgb(seed, h=12, w=10, dtype=np.uint8, channels=3):
    rng = np.random.default_rng(seed)
    top = 65536 if dtype == np.uint16 else 256
    return rng.integers(0, top, (h, w, channels) if channels > 1 else (h, w)).astype(dtype)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    net = RRDBNet(num_feat=8, num_block=1, num_grow_ch=4)
    net.conv_last.bias.assign(np.full(3, 0.5, "float32"))  # mid-grey outputs, not all 0
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_generator(net, path)
    return str(path)


def run_cli(capsys, *argv):
    code = cli_main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_image_bombs_are_image_errors_and_pillows_guard_is_never_switched_off(tmp_path):
    import warnings

    from PIL import Image

    from keras_esrgan.images import ImageError, ImageTooLargeError, read_image

    before = Image.MAX_IMAGE_PIXELS
    bomb = tmp_path / "bomb.tif"
    bomb.write_bytes(H.tiff_header_only(15000, 15000))  # 225 Mpx, under max_pixels
    assert bomb.stat().st_size < 200
    with pytest.raises(ImageTooLargeError, match=r"bomb\.tif: refused by Pillow's decompression-bomb limit"):
        read_image(bomb)
    warn = tmp_path / "warn.tif"
    warn.write_bytes(H.tiff_header_only(10000, 10000))  # between Pillow's warning and its error
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        with pytest.raises(ImageTooLargeError, match=r"warn\.tif: refused by Pillow"):
            read_image(warn)
    ztxt = tmp_path / "ztxt.png"
    ztxt.write_bytes(H.ztxt_bomb_png(_rgb(1)))
    with pytest.raises(ImageError, match=r"ztxt\.png: cannot open image \(Decompressed data too large"):
        read_image(ztxt)
    assert Image.MAX_IMAGE_PIXELS == before


def test_png_past_pillows_guard_but_within_max_pixels_is_decoded_without_touching_it(tmp_path, monkeypatch):
    from PIL import Image

    from keras_esrgan.images import read_image

    image = _rgb(2, 30, 20)
    path = tmp_path / "big.png"
    path.write_bytes(H.png_bytes(image))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # as if 600 pixels were a bomb
    np.testing.assert_array_equal(read_image(path), image)
    assert Image.MAX_IMAGE_PIXELS == 100
    with pytest.raises(Exception, match="max_pixels=500"):
        read_image(path, max_pixels=500)


@pytest.mark.parametrize("compression, predictor, big_endian", [(1, 1, False), (1, 1, True), (8, 2, False)])
@pytest.mark.parametrize("channels", [3, 4])
def test_16_bit_colour_tiff_keeps_its_16_bits(compression, predictor, big_endian, channels, tmp_path):
    from keras_esrgan.images import read_image

    image = _rgb(3, 9, 7, np.uint16, channels)
    path = tmp_path / "deep.tif"
    path.write_bytes(H.tiff16(image, compression, predictor, rows_per_strip=4, big_endian=big_endian))
    got = read_image(path)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, image)


def test_16_bit_tiff_that_cannot_be_read_exactly_is_refused(tmp_path):
    from keras_esrgan.images import ImageError, read_image

    path = tmp_path / "lzw.tif"
    data = bytearray(H.tiff16(_rgb(4, 4, 4, np.uint16, 3)))
    tag = struct_find(data, 259)
    data[tag + 8 : tag + 10] = (5).to_bytes(2, "little")  # claim LZW compression
    path.write_bytes(bytes(data))
    with pytest.raises(ImageError, match=r"lzw\.tif: a 16-bit TIFF \(compression 5.*16-bit PNG"):
        read_image(path)


def struct_find(data, tag):
    """Offset of IFD entry `tag` in a little-endian TIFF written by hostile_files.tiff16."""
    count = int.from_bytes(data[8:10], "little")
    for i in range(count):
        at = 10 + 12 * i
        if int.from_bytes(data[at : at + 2], "little") == tag:
            return at
    raise KeyError(tag)


def test_animated_files_are_refused_and_still_gifs_read(tmp_path):
    from keras_esrgan.images import ImageError, probe_image, read_image

    path = tmp_path / "anim.gif"
    path.write_bytes(H.animated_gif(frames=3))
    with pytest.raises(ImageError, match=r"anim\.gif: an animated or multi-page GIF with 3 frames.*ffmpeg"):
        read_image(path)
    with pytest.raises(ImageError, match="animated"):
        probe_image(path)
    still = tmp_path / "still.gif"
    image = np.zeros((6, 8, 3), np.uint8)
    image[:, 4:] = (255, 0, 0)
    still.write_bytes(H.still_gif(image))
    np.testing.assert_array_equal(read_image(still), image)


def _bad_folder(folder):
    """Good images among every kind of bad one; returns {name: array} of the good ones."""
    folder.mkdir()
    good = {"a.png": _rgb(10), f"{BAD_NAME}.png": _rgb(11), f"{BAD_NAME}16.png": _rgb(12, dtype=np.uint16),
            "deep16.tif": _rgb(13, 9, 7, np.uint16), "still.gif": np.full((6, 8, 3), 200, np.uint8)}
    for name, image in good.items():
        if name.endswith(".tif"):
            data = H.tiff16(image)
        elif name.endswith(".gif"):
            data = H.still_gif(image)
        else:
            data = H.png_bytes(image)
        (folder / name).write_bytes(data)
    (folder / "bomb.tif").write_bytes(H.tiff_header_only(15000, 15000))
    (folder / "ztxt.png").write_bytes(H.ztxt_bomb_png(_rgb(14)))
    (folder / "anim.gif").write_bytes(H.animated_gif())
    return good


def test_folder_run_finishes_every_good_image_whatever_the_bad_ones(tmp_path, weights, capsys):
    from PIL import Image

    from keras_esrgan.images import read_image
    from keras_esrgan.inference import Upscaler

    before = Image.MAX_IMAGE_PIXELS
    good = _bad_folder(tmp_path / "in")
    out = tmp_path / "out"
    code, stdout, stderr = run_cli(capsys, "upscale", tmp_path / "in", "-o", out, "--weights", weights,
                                   "--precision", "fp32")
    assert code == 1
    assert "5 of 8 image(s) upscaled" in stdout and "3 failed" in stdout
    assert "bomb.tif: refused by Pillow's decompression-bomb limit" in stderr
    assert "ztxt.png: cannot open image" in stderr
    assert "anim.gif: an animated or multi-page GIF" in stderr
    assert Image.MAX_IMAGE_PIXELS == before
    expected = Upscaler(weights, precision="fp32")
    outputs = {"a.png": "a_out.png", f"{BAD_NAME}.png": f"{BAD_NAME}_out.png",
               f"{BAD_NAME}16.png": f"{BAD_NAME}16_out.png", "deep16.tif": "deep16_out.png",
               "still.gif": "still_out.png"}
    assert listing(out) == sorted(outputs.values())
    for name, image in good.items():
        got = read_image(out / outputs[name])
        assert got.dtype == image.dtype, name  # 16-bit inputs (PNG, TIFF) give 16-bit PNGs
        np.testing.assert_array_equal(got, expected(image), err_msg=name)


def test_training_epoch_skips_bad_files_and_reads_every_good_one(tmp_path, caplog):
    from PIL import Image

    from keras_esrgan.data import image_folder, training_pipeline

    before = Image.MAX_IMAGE_PIXELS
    folder = tmp_path / "hr"
    folder.mkdir()
    for i, name in enumerate(["a.png", f"{BAD_NAME}.png", "b.png"]):
        (folder / name).write_bytes(H.png_bytes(_rgb(20 + i, 32, 32)))
    (folder / "bomb.tif").write_bytes(H.tiff_header_only(15000, 15000))
    (folder / "anim.gif").write_bytes(H.animated_gif())
    pairs = list(image_folder(folder))
    assert len(pairs) == 3 and all(hr.shape == (32, 32, 3) for _, hr in pairs)
    skipped = " ".join(r.getMessage() for r in caplog.records if "skipped" in r.getMessage())
    assert "bomb.tif: refused by Pillow's" in skipped and "anim.gif: an animated" in skipped
    ds = training_pipeline(image_folder(folder), batch_size=3, patch_size=16, scale=4, repeat=False,
                           cache=False, augment=False)
    assert [tuple(hr.shape) for _, hr in ds] == [(3, 16, 16, 3)]  # one batch of the 3 good images
    trainer = _trainer()
    history = trainer.fit(ds, epochs=1, verbose=0)
    assert len(next(iter(history.history.values()))) == 1 and int(trainer.iterations.numpy()) >= 1
    assert Image.MAX_IMAGE_PIXELS == before


# --- 5. the whole upscale job against a memory budget -----------------------------------------


def test_upscale_over_the_memory_budget_is_refused_before_any_work(weights, monkeypatch):
    from keras_esrgan.images import ImageTooLargeError
    from keras_esrgan.inference import Upscaler, default_max_memory, physical_memory

    assert Upscaler(weights).max_memory == default_max_memory() == int(0.8 * physical_memory())
    up = Upscaler(weights, precision="fp32", max_memory=4 * MiB)
    assert up(_rgb(1, 8, 8)).shape == (32, 32, 3)

    def no_work(*args):
        raise AssertionError("the network ran for an image over the budget")

    monkeypatch.setattr(up, "runner", no_work)
    with pytest.raises(ImageTooLargeError, match=r"upscale: upscaling 64x64 \(3 channel\(s\), uint8\) to x4 "
                       r"needs about [\d.]+ MiB .* more than the memory budget of 4\.0 MiB"):
        up(_rgb(1, 64, 64))


@pytest.mark.parametrize(
    "shape, dtype, outscale, tile",
    [((40, 36), np.uint8, None, None), ((40, 36, 3), np.uint16, None, 16), ((41, 37, 4), np.uint8, None, None),
     ((41, 37, 4), np.uint16, None, 16), ((40, 36, 3), np.uint8, 2.5, 16)],
)
def test_memory_estimate_bounds_what_the_job_allocates(shape, dtype, outscale, tile, weights):
    from keras_esrgan.inference import Upscaler

    up = Upscaler(weights, precision="fp32", tile=tile, tile_pad=4, blend=4)
    image = _rgb(5, *shape[:2], dtype, 1 if len(shape) == 2 else shape[2])
    if image.ndim == 3 and image.shape[2] == 4:
        image[:10, :10, 3] = 0  # some transparency: the fill runs
    up(image, outscale=outscale)  # trace first
    peak, error = peak_bytes(lambda: up(image, outscale=outscale))
    assert error is None
    need = up.memory_needed(shape[0], shape[1], image.shape[2] if image.ndim == 3 else 1, image.dtype.name, outscale)
    host = need["input"] + need["output"] + need["strips"]  # numpy's part (TF's is not traced)
    assert peak <= host and peak > host / 2, (peak, need)


def test_cli_skips_an_image_over_the_budget_before_decoding_it(tmp_path, weights, capsys, monkeypatch):
    from keras_esrgan import images

    src = tmp_path / "in"
    src.mkdir()
    (src / "big.png").write_bytes(H.png_bytes(_rgb(6, 64, 64)))
    (src / "small.png").write_bytes(H.png_bytes(_rgb(7, 8, 8)))
    decoded = []
    read = images.read_image
    monkeypatch.setattr(images, "read_image", lambda path, **kw: decoded.append(os.path.basename(path)) or read(path, **kw))
    code, stdout, stderr = run_cli(capsys, "upscale", src, "-o", tmp_path / "out", "--weights", weights,
                                   "--precision", "fp32", "--max-memory", 4 / 1024)
    assert code == 1 and "1 of 2 image(s) upscaled" in stdout
    assert "big.png: upscaling 64x64" in stderr and "more than the memory budget of 4.0 MiB" in stderr
    assert decoded == ["small.png"] and listing(tmp_path / "out") == ["small_out.png"]


def test_upscale_help_documents_the_budget_and_signals():
    from keras_esrgan.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    text = " ".join(sub.choices["upscale"].format_help().split())
    assert "--max-memory GIB" in text and "default: 80% of the machine's memory" in text
    assert "SIGTERM is handled like Ctrl-C (exit code 143" in text


# --- 9. arguments: inf, nan and friends --------------------------------------------------------


def test_size_arguments_that_are_not_sizes_get_a_clear_error(weights):
    from keras_esrgan.inference import Upscaler, upscale

    for name in ("tile", "tile_pad", "blend", "max_tile_pixels"):
        for value in (float("inf"), float("nan"), -1, 2.5, "8", True):
            with pytest.raises(ValueError, match=rf"{name} must be a non-negative integer or None, got"):
                Upscaler(weights, **{name: value})
    with pytest.raises(ValueError, match="tile must be a non-negative integer or None, got inf"):
        upscale(weights, _rgb(1), tile=float("inf"))
    for value in (float("nan"), 0, -5, "1G"):
        with pytest.raises(ValueError, match="max_memory must be a positive number of bytes"):
            Upscaler(weights, max_memory=value)
    assert Upscaler(weights, tile=64.0, precision="fp32").tile == 64  # an integral float is a size


# --- 6. SavedModel upscale_image: size from the header, one frame, no empty batch ---------------


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    import tensorflow as tf

    from keras_esrgan.export import saved_model
    from tests.export_helpers import image_like_generator

    path = saved_model(image_like_generator(seed=3), tmp_path_factory.mktemp("serving"), max_pixels=96 * 96)
    return tf.saved_model.load(path).signatures


def _served_error(signature, **inputs):
    import tensorflow as tf

    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        signature(**inputs)
    return info.value.message


def test_savedmodel_refuses_from_the_header_before_decoding(served):
    import tensorflow as tf

    # The header claims 30000 x 30000; its image data is garbage. Decoding first would fail on
    # the data (or, with real data, take 2.7 GB); the budget is checked first.
    header_only = H.png_chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0))
    fake = b"\x89PNG\r\n\x1a\n" + header_only + H.png_chunk(b"IDAT", b"garbage") + H.png_chunk(b"IEND", b"")
    message = _served_error(served["upscale_image"], image_bytes=tf.constant([fake]))
    assert "image of 1 x 30000 x 30000 = 900000000 pixels exceeds the pixel budget max_pixels=9,216" in message
    message = _served_error(served["upscale_image"], image_bytes=tf.constant([H.animated_gif(50)]))
    assert "GIF images are not accepted" in message
    message = _served_error(served["upscale_image"], image_bytes=tf.constant([b"not an image"]))
    assert "not a PNG, JPEG or BMP image" in message
    message = _served_error(served["serving_default"], images=tf.zeros((0, 8, 8, 3), tf.uint8))
    assert "input of 0 x 8 x 8 = 0 pixels is empty (a batch of 0 images" in message


def test_savedmodel_serves_png_jpeg_and_bmp_with_the_header_size(served):
    import io

    import tensorflow as tf
    from PIL import Image

    from tests.export_helpers import generated_image

    image = generated_image(20, 30)
    bmp = io.BytesIO()
    Image.fromarray(image).save(bmp, "BMP")
    files = [H.png_bytes(image), tf.io.encode_jpeg(image).numpy(), bmp.getvalue()]
    pngs = served["upscale_image"](image_bytes=tf.constant(files))["png_bytes"].numpy()
    direct = served["serving_default"](images=tf.constant(image[None]))["upscaled"].numpy()[0]
    for kind, png in zip(("png", "jpeg", "bmp"), pngs):
        out = tf.io.decode_png(png).numpy()
        assert out.shape == (80, 120, 3), kind
        if kind != "jpeg":  # lossless inputs: exactly the uint8 signature's output
            np.testing.assert_array_equal(out, direct, err_msg=kind)


# --- 7. a file that appears at the output path while the work runs ----------------------------


def test_output_created_during_the_upscale_is_kept_and_reported(tmp_path, weights, capsys, monkeypatch):
    from keras_esrgan.inference import Upscaler

    src = tmp_path / "in"
    src.mkdir()
    (src / "cat.png").write_bytes(H.png_bytes(_rgb(8)))
    out = tmp_path / "out"
    call = Upscaler.__call__

    def someone_writes_meanwhile(self, image, outscale=None):
        (out / "cat_out.png").write_bytes(b"someone else's file")
        return call(self, image, outscale=outscale)

    monkeypatch.setattr(Upscaler, "__call__", someone_writes_meanwhile)
    code, stdout, stderr = run_cli(capsys, "upscale", src, "-o", out, "--weights", weights)
    assert code == 1 and "0 of 1 image(s) upscaled" in stdout
    assert "cat_out.png was created by someone else while this one was being written; it was kept" in stderr
    assert (out / "cat_out.png").read_bytes() == b"someone else's file"
    assert listing(out) == ["cat_out.png"]  # no temporary file left
    code, _, _ = run_cli(capsys, "upscale", src, "-o", out, "--weights", weights, "--overwrite")
    assert code == 0 and (out / "cat_out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_atomic_placement_without_overwrite_never_replaces(tmp_path):
    from keras_esrgan.atomic import atomic_path, write_bytes

    target = tmp_path / "x.bin"
    with pytest.raises(FileExistsError, match="was created by someone else"):
        with atomic_path(target, overwrite=False) as tmp:
            with open(tmp, "wb") as fh:
                fh.write(b"mine")
            target.write_bytes(b"theirs")
    assert target.read_bytes() == b"theirs" and listing(tmp_path) == ["x.bin"]
    write_bytes(target, b"mine", overwrite=True)
    assert target.read_bytes() == b"mine"
    write_bytes(tmp_path / "new.bin", b"new", overwrite=False)
    assert (tmp_path / "new.bin").read_bytes() == b"new" and listing(tmp_path) == ["new.bin", "x.bin"]


# --- 8. disk full (a file-size limit) while saving; 6. the decode budget in memory ------------

_FAULTS = """
import json, os, resource, signal, sys
import numpy as np
import tensorflow as tf
out, src, big = sys.argv[1:]
from keras_esrgan import RRDBNet, load_generator, save_generator
from keras_esrgan.cli import main
from keras_esrgan.export import serving_functions
result = {}
fn = serving_functions(load_generator(src), max_pixels=96 * 96)["upscale_image"]
fn(tf.constant([tf.io.encode_png(np.zeros((8, 8, 3), np.uint8)).numpy()]))  # traced
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    fn(tf.constant([open(big, "rb").read()]))
    result["big"] = "accepted"
except tf.errors.InvalidArgumentError as err:
    result["big"] = err.message
result["rss_growth_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
net = RRDBNet(num_feat=16, num_block=2, num_grow_ch=8)   # 400 KB of weights
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)             # write() then fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
for name in ("g.keras", "g.weights.h5", "g.safetensors"):
    try:
        save_generator(net, os.path.join(out, name))
        result[name] = "saved"
    except OSError as err:
        result[name] = [err.errno, str(err)]
result["convert"] = main(["convert", src, os.path.join(out, "c.keras")])
result["listing"] = sorted(os.listdir(out))
print("RESULT " + json.dumps(result))
"""


def test_disk_full_while_saving_and_a_decode_bomb_request_in_a_subprocess(tmp_path, weights):
    import errno
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    out = tmp_path / "out"
    out.mkdir()
    big = tmp_path / "big.png"
    big.write_bytes(H.big_blank_png(16384))  # 268 Mpx: 805 MB decoded as RGB
    assert big.stat().st_size < 1024 * 1024
    proc = subprocess.run(
        [sys.executable, "-c", _FAULTS, str(out), weights, str(big)], cwd=ROOT, capture_output=True,
        text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]  # no segfault
    result = json.loads(proc.stdout.split("RESULT ", 1)[1])
    assert "16384 x 16384 = 268435456 pixels exceeds the pixel budget" in result["big"]
    assert result["rss_growth_mib"] < 200, result
    for name in ("g.keras", "g.weights.h5", "g.safetensors"):
        assert result[name][0] == errno.EFBIG and "File too large" in result[name][1], (name, result)
    assert result["convert"] == 1 and "File too large" in proc.stderr
    assert result["listing"] == []  # no partial or temporary file


# --- 11. signals, and what killed runs leave behind ---------------------------------------------


def test_stale_temporary_files_are_removed_but_live_ones_kept(tmp_path):
    import fcntl
    import time

    from keras_esrgan.atomic import remove_stale_temp_files

    stale = tmp_path / ".a_out.png.tmp-0123456789ab.png"
    live = tmp_path / ".b_out.png.tmp-abcdef012345.png"
    recent = tmp_path / ".c_out.png.tmp-a1b2c3d4e5f6.png"
    folder = tmp_path / ".m.tmp-00112233aabb"
    other = tmp_path / ".hidden-file.png"
    for path in (stale, live, recent, other):
        path.write_bytes(b"x")
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"x")
    start = time.time()
    for path in (stale, live, folder, other):
        os.utime(path, (start - 60, start - 60))
    recent.touch()
    with open(live, "rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # a writer in another run is still at it
        removed = remove_stale_temp_files(tmp_path, before=start - 1)
    assert removed == sorted([str(stale), str(folder)])
    assert listing(tmp_path) == sorted([live.name, recent.name, other.name])


@pytest.mark.slow
def test_sigterm_and_sigkill_mid_folder_then_a_clean_rerun(tmp_path, weights):
    import signal
    import subprocess
    import sys
    import time

    from keras_esrgan.images import read_image
    from tests.conftest import ROOT

    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(24):
        (src / f"img{i:02d}.png").write_bytes(H.png_bytes(_rgb(100 + i, 32, 32)))
    command = [sys.executable, "-m", "keras_esrgan.cli", "upscale", str(src), "-o", str(out), "--weights",
               weights, "--tile", "8", "--tile-pad", "2", "--blend", "2", "--precision", "fp32", "--overwrite"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}

    def run_until_outputs_then(sig, count=3):
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if out.is_dir() and sum(n.endswith("_out.png") for n in os.listdir(out)) >= count:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before it could be interrupted"
        proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=60)
        return proc.returncode, stderr

    code, stderr = run_until_outputs_then(signal.SIGTERM)
    assert code == 143 and "terminated" in stderr, stderr[-2000:]
    assert not [n for n in listing(out) if n.startswith(".")]  # the handler removed its temp file
    for name in listing(out):
        assert read_image(out / name).shape == (128, 128, 3)  # every output is complete
    code, _ = run_until_outputs_then(signal.SIGKILL, count=len(listing(out)) + 2)
    assert code == -signal.SIGKILL
    stale = out / ".img23_out.png.tmp-0123456789ab.png"  # as a kill mid-write leaves it
    stale.write_bytes(b"\x89PNG partial")
    os.utime(stale, (time.time() - 5, time.time() - 5))
    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "24 of 24 image(s) upscaled" in rerun.stdout
    assert "temporary file(s) an interrupted run left" in rerun.stderr
    assert listing(out) == [f"img{i:02d}_out.png" for i in range(24)]


# --- 12. calibration tiles in bounded memory ----------------------------------------------------


def test_representative_tiles_crop_before_converting(tmp_path):
    from keras_esrgan.export import representative_tiles

    for i in range(6):
        (tmp_path / f"photo{i}.png").write_bytes(H.png_bytes(_rgb(30 + i, 600, 500)))
    peak, error = peak_bytes(lambda: representative_tiles(tmp_path, 32, num_tiles=12))
    assert error is None
    one_image = 600 * 500 * 3  # uint8; the whole set as float32 would be 24 times that
    assert peak < 4 * one_image, f"{peak / MiB:.1f} MiB"  # one image, its file's bytes, the tiles
    tiles = representative_tiles(tmp_path, 32, num_tiles=12)
    images = [_rgb(30 + i, 600, 500).astype(np.float32) / 255 for i in range(6)]
    for k, tile in enumerate(tiles):  # each tile is a crop of image k % 6
        image = images[k % 6]
        starts = np.argwhere(np.all(image[:-31, :-31] == tile[0, 0], axis=-1))
        assert any(np.array_equal(tile, image[y : y + 32, x : x + 32]) for y, x in starts), k
