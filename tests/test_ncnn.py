"""ncnn import without ncnn or network: synthetic `.param`/`.bin` files written by an
independent writer (tests/reference/ncnn_writer.py) are read back into the state dict they were
written from, and every kind of bad file gets a clear error without large allocations."""

import tracemalloc

import numpy as np
import pytest

import keras_esrgan.weights.ncnn as ncnn_module
from keras_esrgan.models import RRDBNet
from keras_esrgan.weights import WeightsFileError, state_dict
from keras_esrgan.weights.ncnn import parse_param, read_ncnn
from tests.conftest import TINY
from tests.reference.ncnn_runner import keras_generator
from tests.reference.ncnn_writer import write_rrdbnet, write_srvgg
from tests.reference.numpy_rrdbnet import rrdbnet_forward
from tests.reference.numpy_srvgg import random_srvgg_state, srvgg_forward


def _random_rrdbnet_state(scale, seed=0, **config):
    model = RRDBNet(scale=scale, **{**TINY, **config})
    rng = np.random.default_rng(seed)
    for var in model.weights:
        var.assign(rng.normal(0, 0.1, var.shape).astype("float32"))
    return state_dict(model)


STORAGE = {"fp16": "float16", "fp32": "float32", "fp32_scaled": "float32", "lut8": "8-bit table"}


def _assert_same_state(found, expected):
    assert sorted(found) == sorted(expected)
    for key, value in expected.items():
        assert found[key].dtype == np.float32, key
        np.testing.assert_array_equal(found[key], value, err_msg=key)


@pytest.mark.parametrize(
    "scale,storage,fused,reorg_mode",
    [(4, "fp16", True, 0), (4, "fp32", False, 0), (2, "fp32_scaled", True, 0), (1, "lut8", True, 1), (2, "fp16", False, 1)],
)
def test_rrdbnet_round_trip(scale, storage, fused, reorg_mode, tmp_path, rng):
    state = _random_rrdbnet_state(scale)
    param, _, stored = write_rrdbnet(tmp_path / "m", state, scale, storage, fused, reorg_mode)
    found = read_ncnn(param)
    assert found.arch == "RRDBNet" and found.output_resize is None and found.scale == scale
    assert found.config == dict(num_in_ch=3, num_out_ch=3, scale=scale, **TINY)
    assert found.storage == {STORAGE[storage]: 6 + 15 * TINY["num_block"]}
    _assert_same_state(found.state_dict, stored)
    if storage in ("fp32", "fp32_scaled"):
        _assert_same_state(found.state_dict, state)  # float32 storage is the weights themselves
    else:  # float16 / 8-bit tables: the stored values are the weights, rounded
        for key, value in state.items():
            np.testing.assert_allclose(found.state_dict[key], value, atol=0.01 if storage == "fp16" else 0.05)
    x = rng.random((1, 8, 8, 3), dtype=np.float32)
    np.testing.assert_allclose(
        keras_generator(found)(x).numpy(), rrdbnet_forward(stored, x, scale=scale), atol=2e-5, rtol=0
    )


@pytest.mark.parametrize(
    "upscale,act_type,storage,fused,shuffle_mode",
    [
        (4, "prelu", "fp16", True, 0), (3, "prelu", "fp32", True, 1), (2, "relu", "fp16", True, 0),
        (2, "leakyrelu", "fp32", False, 1), (3, "leakyrelu", "fp16", True, 0), (1, "relu", "fp32", False, 0),
    ],
)
def test_srvgg_round_trip(upscale, act_type, storage, fused, shuffle_mode, tmp_path, rng):
    state = random_srvgg_state(rng, num_feat=6, num_conv=2, upscale=upscale, act_type=act_type)
    param, _, stored = write_srvgg(tmp_path / "m", state, upscale, act_type, storage, fused, shuffle_mode)
    found = read_ncnn(param)
    assert found.arch == "SRVGGNetCompact" and found.output_resize is None
    assert found.storage == {STORAGE[storage]: 4}
    assert found.config == dict(
        num_in_ch=3, num_out_ch=3, num_feat=6, num_conv=2, upscale=upscale, act_type=act_type
    )
    _assert_same_state(found.state_dict, stored)
    x = rng.random((1, 5, 7, 3), dtype=np.float32)
    np.testing.assert_allclose(
        keras_generator(found)(x).numpy(), srvgg_forward(stored, x, upscale, act_type), atol=1e-5, rtol=0
    )


@pytest.mark.parametrize("factor,scale", [(0.5, 2.0), (0.75, 3.0)])
def test_srvgg_x4_with_output_resize_like_animevideov3_x2_x3(factor, scale, tmp_path, rng):
    """Real-ESRGAN's ncnn x2/x3 anime video models are the x4 net and a bicubic downscale."""
    state = random_srvgg_state(rng, num_feat=4, num_conv=1, upscale=4)
    param, _, stored = write_srvgg(tmp_path / "m", state, 4, output_resize=factor, line_end="\r\n")
    found = read_ncnn(param)
    assert found.config["upscale"] == 4 and found.scale == scale
    assert found.output_resize == {"mode": "bicubic", "factor": factor}
    _assert_same_state(found.state_dict, stored)


def test_bin_path_and_missing_files(tmp_path, rng):
    state = random_srvgg_state(rng, num_feat=4, num_conv=1, upscale=2)
    param, weights, _ = write_srvgg(tmp_path / "m", state, 2)
    moved = tmp_path / "weights.data"
    (tmp_path / "m.bin").rename(moved)
    with pytest.raises(FileNotFoundError, match=r"m\.bin"):
        read_ncnn(param)
    assert read_ncnn(param, moved).arch == "SRVGGNetCompact"
    with pytest.raises(FileNotFoundError, match="nothing.param"):
        read_ncnn(tmp_path / "nothing.param")


def _files(tmp_path, rng, arch="srvgg"):
    if arch == "srvgg":
        state = random_srvgg_state(rng, num_feat=4, num_conv=1, upscale=2)
        return write_srvgg(tmp_path / "m", state, 2, storage="fp32")[:2]
    return write_rrdbnet(tmp_path / "m", _random_rrdbnet_state(4, num_block=1), storage="fp16")[:2]


@pytest.mark.parametrize("keep", [2, 5, 4 + 4 * 108 + 7, 4 + 4 * 108 + 16, -4])
def test_truncated_bin_names_file_and_layer(keep, tmp_path, rng):
    """Cut in a flag, in conv weights, in a bias, in a PReLU slope blob, at the very end."""
    param, weights = _files(tmp_path, rng)
    data = open(weights, "rb").read()
    open(weights, "wb").write(data[:keep])
    with pytest.raises(WeightsFileError, match=r"m\.bin: truncated: layer '\w+' \((Convolution|PReLU)"):
        read_ncnn(param)


def test_trailing_bytes_and_swapped_bin(tmp_path, rng):
    param, weights = _files(tmp_path, rng)
    with open(weights, "ab") as fh:
        fh.write(bytes(8))
    with pytest.raises(WeightsFileError, match="8 bytes left after the last weight blob"):
        read_ncnn(param)
    (tmp_path / "other").mkdir()
    _, other_bin = _files(tmp_path / "other", rng, arch="rrdbnet")
    with pytest.raises(WeightsFileError, match=r"m\.bin"):
        read_ncnn(param, other_bin)


def _param_text(tmp_path, rng, arch="srvgg"):
    param, weights = _files(tmp_path, rng, arch)
    return open(param).read(), param, weights


def _rewrite(path, text):
    with open(path, "w") as fh:
        fh.write(text)


def test_wrong_magic_binary_param_and_bad_header(tmp_path, rng):
    text, param, _ = _param_text(tmp_path, rng)
    _rewrite(param, text.replace("7767517", "7767518", 1))
    with pytest.raises(WeightsFileError, match=r"m\.param: not an ncnn text \.param file"):
        read_ncnn(param)
    with open(param, "wb") as fh:
        fh.write((7767517).to_bytes(4, "little") + bytes(16))
    with pytest.raises(WeightsFileError, match=r"binary ncnn \.param"):
        read_ncnn(param)
    lines = text.splitlines()
    _rewrite(param, "\n".join(lines[:1] + ["1000000000 5"] + lines[2:]))
    with pytest.raises(WeightsFileError, match="announces 1000000000 layers"):
        read_ncnn(param)
    count, blobs = lines[1].split()
    _rewrite(param, "\n".join(lines[:1] + [f"{count} {int(blobs) + 1}"] + lines[2:]))
    with pytest.raises(WeightsFileError, match="blobs"):
        read_ncnn(param)


def test_param_too_large_is_not_read(tmp_path, rng, monkeypatch):
    _, param, _ = _param_text(tmp_path, rng)
    monkeypatch.setattr(ncnn_module, "MAX_PARAM_BYTES", 100)
    with pytest.raises(WeightsFileError, match="too large for an ncnn text .param"):
        read_ncnn(param)


def test_absurd_counts_fail_before_allocating(tmp_path, rng):
    """A .param claiming 10^9 output channels next to a tiny .bin: an error, not 4 GB of RAM."""
    text, param, weights = _param_text(tmp_path, rng)
    huge = "0=1000000000 1=3 4=1 5=1 6=27000000000"
    first_conv = next(line for line in text.splitlines() if line.startswith("Convolution"))
    _rewrite(param, text.replace(first_conv, " ".join(first_conv.split()[:6] + [huge])))
    tracemalloc.start()
    try:
        with pytest.raises(WeightsFileError, match="truncated: layer 'convolution_2'.*108000000000 bytes"):
            read_ncnn(param)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000, peak
    for bad, match in [
        ("-23310=1000000000,2.0e-01", "announces 1000000000 values and has 1"),
        ("6=-5", r"weight_data_size \(param 6\) must be a positive integer"),
        ("40=1", "parameter id 40"),
        ("6=1e999x", "not a number"),
    ]:
        _rewrite(param, text.replace(first_conv, first_conv + " " + bad))
        with pytest.raises(WeightsFileError, match=match):
            read_ncnn(param)


def test_other_architectures_and_variants_are_named(tmp_path, rng):
    text, param, _ = _param_text(tmp_path, rng, arch="rrdbnet")
    _rewrite(param, text.replace("Interp ", "Deconvolution ", 1))
    with pytest.raises(WeightsFileError, match=r"not an RRDBNet or SRVGGNetCompact graph: has layer types \[.*'Deconvolution'"):
        read_ncnn(param)
    _rewrite(param, text.replace("-23301=2,2.000000e-01", "-23301=2,1.000000e-01", 1))
    with pytest.raises(WeightsFileError, match=r"read as RRDBNet: expected .* x \+ 0\.2 \* branch"):
        read_ncnn(param)
    _rewrite(param, text.replace("0=1 1=2.000000e+00 2=2.000000e+00", "0=2 1=2.000000e+00 2=2.000000e+00", 1))
    with pytest.raises(WeightsFileError, match="nearest x2 before conv_up1, found resize"):
        read_ncnn(param)
    _rewrite(param, text.replace("4=1 5=1", "4=0 5=1", 1))
    with pytest.raises(WeightsFileError, match="3x3, stride 1, padding 1"):
        read_ncnn(param)


def test_same_padding_spelled_minus_233(tmp_path, rng):
    text, param, _ = _param_text(tmp_path, rng)
    _rewrite(param, text.replace("4=1 5=1", "4=-233 5=1"))
    assert read_ncnn(param).config["upscale"] == 2
    _rewrite(param, text.replace("4=1 5=1", "4=1 14=0 5=1", 1))
    with pytest.raises(WeightsFileError, match=r"'pad': \(0, 1, 1, 0\)"):
        read_ncnn(param)


def test_params_of_the_wrong_kind(tmp_path, rng):
    text, param, _ = _param_text(tmp_path, rng, arch="rrdbnet")
    for old, new, match in [
        ("-23310=1,2.000000e-01", "10=2.000000e-01", "param 10 must be an array"),
        ("-23301=2,2.000000e-01,1.000000e+00", "1=2.000000e-01", "param 1 must be an array"),
        ("1=2.000000e+00 2=2.000000e+00", "-23301=1,2.0 2=2.000000e+00", "param 1 must be a number"),
    ]:
        _rewrite(param, text.replace(old, new, 1))
        with pytest.raises(WeightsFileError, match=match):
            read_ncnn(param)


def test_int8_weights_are_refused(tmp_path, rng):
    state = random_srvgg_state(rng, num_feat=4, num_conv=1, upscale=2)
    param, _, _ = write_srvgg(tmp_path / "m", state, 2, storage="int8")
    with pytest.raises(WeightsFileError, match=r"m\.bin: layer '\w+' holds int8-quantized weights"):
        read_ncnn(param)
    param, _, _ = write_srvgg(tmp_path / "q", state, 2, storage="fp32")
    text = open(param).read()
    _rewrite(param, text.replace("6=108", "6=108 8=2", 1))
    with pytest.raises(WeightsFileError, match="int8-quantized \\(int8_scale_term\\)"):
        read_ncnn(param)


def test_srvgg_mismatches(tmp_path, rng):
    text, param, _ = _param_text(tmp_path, rng)
    add = next(line for line in text.splitlines() if line.startswith("BinaryOp"))
    eltwise = " ".join(["Eltwise"] + add.split()[1:-1] + ["0=1", "-23301=2,1.0,0.5"])
    _rewrite(param, text.replace(add, eltwise))
    with pytest.raises(WeightsFileError, match=r"read as SRVGGNetCompact: .*found coefficients \(1\.0, 0\.5\)"):
        read_ncnn(param)
    _rewrite(param, text.replace("0=1 1=2.000000e+00 2=2.000000e+00", "0=1 1=3.000000e+00 2=3.000000e+00"))
    with pytest.raises(WeightsFileError, match="nearest x2 of the input"):
        read_ncnn(param)


def test_parse_param_values_and_line_errors():
    layers = parse_param("7767517\r\n1 1\r\n\r\nInput data 0 1 x 0=3 1=2.5 2=1e-3 -23303=2,1,2.0\r\n")
    assert layers[0].params == {0: 3, 1: 2.5, 2: 0.001, 3: (1, 2.0)}
    assert layers[0].outputs == ("x",) and layers[0].line == 4
    with pytest.raises(WeightsFileError, match=r"g\.param line 3: 2 inputs and 1 outputs announced"):
        parse_param("7767517\n1 1\nConcat c 2 1 a\n", "g.param")
    with pytest.raises(WeightsFileError, match=r"line 3: 'k=1' is not an id=value parameter"):
        parse_param("7767517\n1 1\nInput d 0 1 x k=1\n")
    with pytest.raises(WeightsFileError, match="layer_count blob_count"):
        parse_param("7767517\nten 1\n")


# --- load_generator on ncnn files --------------------------------------------------------------


@pytest.mark.parametrize("arch", ["srvgg", "rrdbnet"])
def test_load_generator_builds_the_graphs_generator(arch, tmp_path, rng):
    from keras_esrgan import load_generator

    param, weights = _files(tmp_path, rng, arch)
    net = load_generator(param)
    reference = keras_generator(read_ncnn(param))
    assert type(net) is type(reference) and net.config == reference.config
    x = rng.random((1, 6, 5, 3), dtype=np.float32)
    np.testing.assert_array_equal(net(x).numpy(), reference(x).numpy())
    assert load_generator(param, dtype="mixed_bfloat16").dtype_policy.name == "mixed_bfloat16"
    with pytest.raises(WeightsFileError, match=r"m\.bin: the weights of the ncnn model m\.param: pass the \.param"):
        load_generator(weights)
    open(weights, "wb").write(open(weights, "rb").read()[:-4])
    with pytest.raises(WeightsFileError, match=r"m\.bin: truncated"):
        load_generator(param)


def test_load_generator_refuses_an_output_resize_unless_dropped(tmp_path, rng):
    """animevideov3-x2 is the x4 net + bicubic x0.5: refused with what to do, or the x4 net."""
    from keras_esrgan import Upscaler, load_generator

    state = random_srvgg_state(rng, num_feat=4, num_conv=1, upscale=4)
    param, _, stored = write_srvgg(tmp_path / "anime-x2", state, 4, output_resize=0.5)
    message = (r"anime-x2\.param: this ncnn graph is the x4 SRVGGNetCompact followed by a fixed bicubic "
               r"resize of its output by 0\.5 \(x2 in all\).*drop_output_resize=True.*outscale=2")
    with pytest.raises(WeightsFileError, match=message):
        load_generator(param)
    with pytest.raises(WeightsFileError, match=message):
        Upscaler(param)
    net = load_generator(param, drop_output_resize=True)
    assert net.scale == 4
    x = rng.random((1, 5, 4, 3), dtype=np.float32)
    np.testing.assert_allclose(net(x).numpy(), srvgg_forward(stored, x, 4), atol=1e-5, rtol=0)
    with pytest.raises(WeightsFileError, match=r"is SRVGGNetCompact\(.*upscale=4.*not \{'upscale': 2\}"):
        load_generator(param, drop_output_resize=True, upscale=2)
