"""SRVGGNetCompact and its BasicSR layout: wiring against a numpy reference with PyTorch
semantics, the pixel-shuffle channel order, exact state-dict round trips, architecture
inference, serialisation, precision and TFLite ops."""

import numpy as np
import pytest
import keras
import tensorflow as tf

from keras_esrgan.models import RRDBNet, SRVGGNetCompact
from keras_esrgan.weights import WeightsFileError, state_dict
from keras_esrgan.weights.formats import unwrap_state_dict
from keras_esrgan.weights.srvgg_layout import (
    assign_srvgg_state_dict,
    infer_srvgg_architecture,
    is_srvgg_state_dict,
    srvgg_from_state_dict,
    srvgg_state_dict,
)
from tests.conftest import TINY, assert_keras_round_trip
from tests.reference.numpy_srvgg import nearest_nchw, random_srvgg_state, srvgg_forward

SMALL = dict(num_feat=8, num_conv=2)


def _model(state, **config):
    model = SRVGGNetCompact(**config)
    assign_srvgg_state_dict(model, state)
    return model


@pytest.mark.parametrize("upscale", [2, 3, 4])
@pytest.mark.parametrize("act_type", ["relu", "prelu", "leakyrelu"])
def test_matches_numpy_reference(upscale, act_type, rng):
    state = random_srvgg_state(rng, upscale=upscale, act_type=act_type, **SMALL)
    model = _model(state, upscale=upscale, act_type=act_type, **SMALL)
    x = rng.random((2, 7, 5, 3), dtype=np.float32)
    out = model(x).numpy()
    assert out.shape == (2, 7 * upscale, 5 * upscale, 3) and out.dtype == np.float32
    np.testing.assert_allclose(out, srvgg_forward(state, x, upscale, act_type), atol=1e-5, rtol=0)


def test_upscale_1_and_greyscale_input_broadcast(rng):
    state = random_srvgg_state(rng, num_in_ch=1, num_out_ch=3, upscale=1, **SMALL)
    model = _model(state, num_in_ch=1, num_out_ch=3, upscale=1, **SMALL)
    x = rng.random((1, 6, 4, 1), dtype=np.float32)
    np.testing.assert_allclose(model(x).numpy(), srvgg_forward(state, x, 1), atol=1e-5, rtol=0)


@pytest.mark.parametrize("upscale", [2, 3])
def test_last_conv_channels_follow_pytorch_pixel_shuffle(upscale):
    """With every kernel zero, the output is the last bias shuffled: PyTorch's channel
    c*r*r + i*r + j lands on output channel c at sub-pixel (i, j)."""
    r, c_out = upscale, 3
    state = random_srvgg_state(np.random.default_rng(0), upscale=r, **SMALL)
    state = {k: np.zeros_like(v) for k, v in state.items()}
    state[f"body.{2 * SMALL['num_conv'] + 2}.bias"] = np.arange(c_out * r * r, dtype="float32")
    out = _model(state, upscale=r, **SMALL)(np.zeros((1, 2, 2, 3), "float32")).numpy()[0]
    for c in range(c_out):
        for i in range(r):
            for j in range(r):
                assert out[i, j, c] == c * r * r + i * r + j
                assert out[r + i, r + j, c] == c * r * r + i * r + j  # every LR pixel alike


@pytest.mark.parametrize("act_type", ["prelu", "relu"])
def test_state_dict_round_trip_is_exact(act_type, rng):
    state = random_srvgg_state(rng, upscale=3, act_type=act_type, **SMALL)
    model = srvgg_from_state_dict(state, act_type=None if act_type == "prelu" else act_type)
    back = srvgg_state_dict(model)
    assert sorted(back) == sorted(state)
    for key in state:
        assert back[key].dtype == np.float32
        np.testing.assert_array_equal(back[key], state[key], err_msg=key)


@pytest.mark.parametrize("upscale", [1, 2, 3, 4])
def test_infers_architecture_from_nested_checkpoint(upscale, rng):
    state = random_srvgg_state(rng, num_feat=6, num_conv=3, upscale=upscale)
    checkpoint = {"params": {"body.0.weight": 0}, "params_ema": state}  # EMA preferred
    flat = unwrap_state_dict(checkpoint, "net.pth")
    assert is_srvgg_state_dict(flat)
    assert infer_srvgg_architecture(flat, "net.pth") == dict(
        num_in_ch=3, num_out_ch=3, num_feat=6, num_conv=3, upscale=upscale, act_type="prelu"
    )


def test_relu_and_leakyrelu_need_act_type(rng):
    state = random_srvgg_state(rng, upscale=2, act_type="relu", **SMALL)
    with pytest.raises(WeightsFileError, match=r"net\.pth.*act_type='relu' or act_type='leakyrelu'"):
        infer_srvgg_architecture(state, "net.pth")
    assert infer_srvgg_architecture(state, act_type="leakyrelu")["act_type"] == "leakyrelu"
    with pytest.raises(WeightsFileError, match="without PReLU weights"):
        infer_srvgg_architecture(state, act_type="prelu")
    prelu = random_srvgg_state(rng, upscale=2, **SMALL)
    with pytest.raises(WeightsFileError, match="has PReLU weights"):
        infer_srvgg_architecture(prelu, act_type="relu")


def test_bad_state_dicts_raise_clear_errors(rng):
    good = random_srvgg_state(rng, upscale=4, **SMALL)
    last = 2 * SMALL["num_conv"] + 2

    def broken(**changes):
        state = dict(good)
        for key, value in changes.items():
            key = key.replace("_", ".")
            if value is None:
                del state[key]
            else:
                state[key] = value
        return state

    with pytest.raises(WeightsFileError, match=r"body\.0, body\.2"):
        infer_srvgg_architecture(broken(body_2_bias=None))
    with pytest.raises(WeightsFileError, match="one slope per channel"):
        infer_srvgg_architecture(broken(body_1_weight=np.ones(1, "float32")))
    with pytest.raises(WeightsFileError, match="PReLU weights must be"):
        infer_srvgg_architecture(broken(body_3_weight=None))
    odd = np.zeros((15, 8, 3, 3), "float32")  # 3 x 5: no integer upscale
    with pytest.raises(WeightsFileError, match="15 outputs"):
        infer_srvgg_architecture(broken(**{f"body_{last}_weight": odd}))
    with pytest.raises(WeightsFileError, match="not a 3x3 conv"):
        infer_srvgg_architecture(broken(body_2_weight=np.zeros((8, 8, 1, 1), "float32")))
    with pytest.raises(WeightsFileError, match="8 -> 8"):
        infer_srvgg_architecture(broken(body_2_weight=np.zeros((8, 5, 3, 3), "float32")))
    with pytest.raises(WeightsFileError, match="not part of an SRVGGNetCompact"):
        infer_srvgg_architecture({**good, "conv_first.weight": good["body.0.weight"]})
    rrdb = state_dict(RRDBNet(**TINY))
    assert not is_srvgg_state_dict(rrdb) and is_srvgg_state_dict(good)
    model = SRVGGNetCompact(upscale=2, **SMALL)  # x4 weights into an x2 model
    with pytest.raises(WeightsFileError, match=rf"body\.{last}\.weight.*upscale=2"):
        assign_srvgg_state_dict(model, good, "net.pth")
    with pytest.raises(WeightsFileError, match="does not have"):
        assign_srvgg_state_dict(SRVGGNetCompact(upscale=4, **SMALL), {**good, "body.99.bias": good["body.0.bias"]})


def test_bad_arguments_and_inputs():
    for kwargs, match in [
        (dict(upscale=5), "upscale must be 1, 2, 3 or 4"),
        (dict(act_type="gelu"), "act_type must be one of"),
        (dict(num_in_ch=3, num_out_ch=1), "num_out_ch must equal num_in_ch"),
        (dict(num_feat=0), "num_feat must be a positive integer"),
        (dict(num_conv=-1), "num_conv must be an integer >= 0"),
    ]:
        with pytest.raises(ValueError, match=match):
            SRVGGNetCompact(**kwargs)
    model = SRVGGNetCompact(**SMALL)
    with pytest.raises(ValueError, match="3 input channels"):
        model(np.zeros((1, 4, 4, 4), "float32"))
    with pytest.raises(ValueError, match="4-D batch"):
        model.check_input_shape((4, 4, 3))


def test_public_surface_config_and_flops():
    model = SRVGGNetCompact(num_in_ch=1, num_out_ch=1, num_feat=4, num_conv=1, upscale=3, act_type="leakyrelu")
    assert model.config == dict(
        num_in_ch=1, num_out_ch=1, num_feat=4, num_conv=1, upscale=3, act_type="leakyrelu"
    )
    assert (model.scale, model.num_in_ch, model.num_out_ch, model.unshuffle_factor) == (3, 1, 1, 1)
    assert model.built and len(model.weights) == 6  # built in __init__: 3 convs, no slopes
    # 2 x multiply-adds per LR pixel: 9 * (1*4 + 4*4 + 4*9), all at LR resolution.
    assert model.flops_per_pixel() == 2 * 9 * (4 + 16 + 36)
    assert model.compute_output_shape((None, 5, None, 1)) == (None, 15, None, 1)
    assert model(np.zeros((3, 5, 2, 1), "float32")).shape == (3, 15, 6, 1)


def test_get_config_from_config_and_keras_round_trip(tmp_path, rng):
    state = random_srvgg_state(rng, upscale=3, **SMALL)
    model = _model(state, upscale=3, **SMALL)
    loaded = assert_keras_round_trip(model, tmp_path, rng.random((1, 6, 5, 3), dtype=np.float32))
    for key, value in srvgg_state_dict(loaded).items():
        np.testing.assert_array_equal(value, state[key])


@pytest.mark.parametrize("policy,rtol", [("mixed_bfloat16", 0.02), ("mixed_float16", 0.005)])
def test_mixed_precision(policy, rtol, rng):
    state = random_srvgg_state(rng, upscale=2, **SMALL)
    ref = _model(state, upscale=2, **SMALL)
    model = _model(state, upscale=2, dtype=policy, **SMALL)
    assert all(v.dtype == "float32" for v in model.weights)
    x = rng.random((1, 8, 8, 3), dtype=np.float32)
    out, expected = model(x), ref(x).numpy()
    assert out.dtype == tf.float32
    residual = expected - nearest_nchw(x.transpose(0, 3, 1, 2), 2).transpose(0, 2, 3, 1)
    err = np.abs(out.numpy() - expected).mean() / np.abs(residual).mean()
    assert err < rtol


def test_mixed_bfloat16_keeps_the_upsampled_input_exact(rng):
    """The skip path is added in float32: with a zero body the output is the input, repeated."""
    state = {k: np.zeros_like(v) for k, v in random_srvgg_state(rng, upscale=3, **SMALL).items()}
    model = _model(state, upscale=3, dtype="mixed_bfloat16", **SMALL)
    x = rng.random((1, 4, 5, 3), dtype=np.float32)  # values bfloat16 cannot hold exactly
    np.testing.assert_array_equal(model(x).numpy(), x.repeat(3, axis=1).repeat(3, axis=2))


ALLOWED_OPS = {
    "ADD", "CONV_2D", "DEPTH_TO_SPACE", "LEAKY_RELU", "MUL", "PRELU", "RESIZE_NEAREST_NEIGHBOR",
    "SHAPE", "SLICE",
}


@pytest.mark.parametrize(
    "act_type,upscale,input_shape",
    [("prelu", 3, (1, None, None, 3)), ("prelu", 4, (1, 12, 10, 3)), ("leakyrelu", 2, (1, None, None, 3))],
)
def test_tflite_builtins_only_no_gather(act_type, upscale, input_shape, tmp_path, rng):
    from keras_esrgan.export import LiteRTModel, tflite

    state = random_srvgg_state(rng, upscale=upscale, act_type=act_type, num_feat=4, num_conv=1)
    model = _model(state, upscale=upscale, act_type=act_type, num_feat=4, num_conv=1)
    info = tflite(model, tmp_path / "m.tflite", input_shape=input_shape)
    ops = info["operators"]
    assert set(ops) <= ALLOWED_OPS, ops
    assert ops["DEPTH_TO_SPACE"] == 1 and ops["RESIZE_NEAREST_NEIGHBOR"] == 1 and ops["CONV_2D"] == 3
    assert ops.get("PRELU", 0) == (2 if act_type == "prelu" else 0)
    x = rng.random((1, 12, 10, 3), dtype=np.float32)
    np.testing.assert_allclose(LiteRTModel(tmp_path / "m.tflite")(x), model(x).numpy(), atol=1e-5)


# --- load_generator / save_generator on SRVGGNetCompact files ----------------------------------


@pytest.mark.parametrize("upscale,key,fmt", [(4, "params", "pth"), (3, "params_ema", "pth"), (2, None, "safetensors")])
def test_load_generator_reads_basicsr_files_and_infers_the_architecture(upscale, key, fmt, tmp_path, rng):
    from keras_esrgan import load_generator
    from keras_esrgan.weights import save_safetensors
    from tests.standins import save_torch_zip

    state = random_srvgg_state(rng, upscale=upscale, num_feat=4, num_conv=3)
    path = tmp_path / f"compact.{fmt}"
    if fmt == "pth":
        save_torch_zip(state, path, key=key)
    else:
        save_safetensors(state, path)
    net = load_generator(path)
    assert type(net) is SRVGGNetCompact
    assert net.config == dict(num_in_ch=3, num_out_ch=3, num_feat=4, num_conv=3, upscale=upscale, act_type="prelu")
    x = rng.random((1, 5, 6, 3), dtype=np.float32)
    np.testing.assert_allclose(net(x).numpy(), srvgg_forward(state, x, upscale), atol=1e-5, rtol=0)
    assert load_generator(path, dtype="mixed_bfloat16").dtype_policy.name == "mixed_bfloat16"


@pytest.mark.parametrize("act_type", ["prelu", "leakyrelu"])
def test_save_generator_round_trips_are_bit_exact(act_type, tmp_path, rng):
    from keras_esrgan import load_generator, save_generator

    state = random_srvgg_state(rng, upscale=3, num_feat=4, num_conv=10, act_type=act_type)
    net = _model(state, upscale=3, num_feat=4, num_conv=10, act_type=act_type)
    x = rng.random((1, 4, 7, 3), dtype=np.float32)
    for ext in (".keras", ".weights.h5", ".safetensors"):
        save_generator(net, tmp_path / f"net{ext}")
        extra = dict(act_type=act_type) if ext == ".safetensors" and act_type != "prelu" else {}
        back = load_generator(tmp_path / f"net{ext}", **extra)
        assert type(back) is SRVGGNetCompact and back.config == net.config, ext
        np.testing.assert_array_equal(back(x).numpy(), net(x).numpy(), err_msg=ext)
    np.testing.assert_array_equal(state_dict(net)["body.22.weight"], state["body.22.weight"])


def test_load_generator_errors_for_srvgg_files(tmp_path, rng):
    from keras_esrgan import load_generator
    from tests.standins import save_torch_zip

    relu = save_torch_zip(random_srvgg_state(rng, upscale=2, num_feat=4, num_conv=1, act_type="relu"), tmp_path / "r.pth")
    with pytest.raises(WeightsFileError, match="act_type='relu' or act_type='leakyrelu'"):
        load_generator(relu)
    assert load_generator(relu, act_type="relu").act_type == "relu"
    with pytest.raises(WeightsFileError, match=r"r\.pth: holds an SRVGGNetCompact.*\['num_block'\] cannot be set"):
        load_generator(relu, act_type="relu", num_block=3)
    data = (tmp_path / "r.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(WeightsFileError, match="cut.pth"):
        load_generator(tmp_path / "cut.pth")
    edsr = {"head.0.weight": np.zeros((4, 3, 3, 3), "float32"), "body.0.body.0.weight": np.zeros((4, 4, 3, 3), "float32"),
            "tail.0.weight": np.zeros((3, 4, 3, 3), "float32")}
    save_torch_zip(edsr, tmp_path / "edsr.pth")
    with pytest.raises(WeightsFileError, match="EDSR/RCAN-style.*RRDBNet .*SRVGGNetCompact"):
        load_generator(tmp_path / "edsr.pth")
    swin = {"conv_first.weight": np.zeros((4, 3, 3, 3), "float32"),
            "layers.0.residual_group.blocks.0.attn.qkv.weight": np.zeros((12, 4), "float32")}
    save_torch_zip(swin, tmp_path / "swinir.pth")
    with pytest.raises(WeightsFileError, match="SwinIR/HAT"):
        load_generator(tmp_path / "swinir.pth")


# --- everywhere a generator goes ---------------------------------------------------------------


def _lively(upscale=4, seed=0):
    rng = np.random.default_rng(seed)
    state = random_srvgg_state(rng, upscale=upscale, num_feat=4, num_conv=2)
    return _model(state, upscale=upscale, num_feat=4, num_conv=2), state


def test_upscaler_evaluate_and_interpolate_take_it(tmp_path, rng):
    from keras_esrgan import evaluate, interpolate
    from keras_esrgan.inference import Upscaler
    from tests.standins import photo_crop, write_images

    net, state = _lively(upscale=3)
    image = photo_crop("srvgg", 0, 0, 30, 26)
    expected = np.rint(np.clip(srvgg_forward(state, image[None] / 255.0, 3)[0], 0, 1) * 255)
    whole = Upscaler(net, precision="fp32", tile=0)(image)
    assert whole.shape == (90, 78, 3) and np.abs(whole - expected).max() <= 1
    # Four convs see 4 pixels each way: a pad of 8 makes tiles exact up to rounding.
    tiled = Upscaler(net, precision="fp32", tile=8, tile_pad=8, blend=0)
    assert tiled.tile_plan(30, 26).num_tiles == 4
    assert np.abs(tiled(image).astype(int) - whole).max() <= 1
    bf16 = Upscaler(net, precision="bf16")
    assert type(bf16.runner.model()) is SRVGGNetCompact and np.abs(bf16(image).astype(int) - whole).max() <= 8
    grey, rgba = Upscaler(net, precision="fp32")(image[..., 0]), np.dstack([image, np.full((30, 26), 7, np.uint8)])
    assert grey.shape == (90, 78) and Upscaler(net, precision="fp32")(rgba).shape == (90, 78, 4)
    assert Upscaler(net, precision="fp32")(image.astype(np.uint16) * 257).dtype == np.uint16
    assert Upscaler(net, precision="fp32")(image, outscale=2).shape == (60, 52, 3)

    write_images(tmp_path / "Set", [(24, 30)], seed=2)
    scores = evaluate(net, {"Set": tmp_path / "Set"}, scale=3, progress=False)
    assert scores[0].scale == 3 and np.isfinite(scores[0].model.psnr) and np.isfinite(scores[0].model.ssim)

    other, _ = _lively(upscale=3, seed=1)
    mid = interpolate(net, other, 0.5)
    assert type(mid) is SRVGGNetCompact and mid.config == net.config
    for w, a, b in zip(mid.weights, net.weights, other.weights):
        np.testing.assert_allclose(w.numpy(), (a.numpy() + b.numpy()) / 2, atol=1e-7)


def test_both_trainers_fit_it():
    import warnings

    import keras_esrgan
    from keras_esrgan import ESRGAN, PSNRTrainer, UNetDiscriminatorSN

    rng = np.random.default_rng(3)
    hr = rng.random((4, 32, 32, 3), dtype=np.float32)
    lr = hr.reshape(4, 8, 4, 8, 4, 3).mean(axis=(2, 4))
    data = tf.data.Dataset.from_tensor_slices((lr, hr)).batch(2)
    for make in ("psnr", "gan"):
        net, _ = _lively()
        before = [w.numpy().copy() for w in net.weights]
        if make == "psnr":
            model = PSNRTrainer(net, ema_decay=0.9)
            model.compile(optimizer=keras.optimizers.Adam(1e-3))
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                loss = keras_esrgan.PerceptualLoss({"block1_conv2": 1.0}, weights=None)
            model = ESRGAN(net, UNetDiscriminatorSN(num_feat=4), perceptual_loss=loss, ema_decay=0.9)
            model.compile(g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3))
        history = model.fit(data, epochs=1, verbose=0)
        assert all(np.isfinite(v[-1]) for v in history.history.values()), make
        assert all(not np.array_equal(b, w.numpy()) for b, w in zip(before, net.weights)), make
        assert type(model.ema_generator) is SRVGGNetCompact


def test_saved_model_and_tflite_exports(tmp_path, rng):
    from keras_esrgan import export_saved_model, export_tflite
    from keras_esrgan.export import LiteRTModel

    net, _ = _lively(upscale=2)
    image = rng.integers(0, 256, (1, 9, 11, 3), dtype=np.uint8)
    expected = np.rint(np.clip(net(image / np.float32(255)).numpy(), 0, 1) * 255)
    path = export_saved_model(net, tmp_path / "serving")
    served = tf.saved_model.load(str(path)).signatures["serving_default"](tf.constant(image))
    assert np.abs(list(served.values())[0].numpy().astype(int) - expected).max() <= 1
    info = export_tflite(net, tmp_path / "m.tflite", input_shape=(1, None, None, 3))
    assert "GATHER" not in info["operators"] and info["operators"]["DEPTH_TO_SPACE"] == 1
    x = rng.random((1, 9, 11, 3), dtype=np.float32)
    np.testing.assert_allclose(LiteRTModel(tmp_path / "m.tflite")(x), net(x).numpy(), atol=1e-5)


def test_cli_converts_and_upscales_with_it(tmp_path, capsys):
    from keras_esrgan.cli import main
    from keras_esrgan.images import read_image, write_image
    from keras_esrgan.inference import Upscaler
    from tests.standins import photo_crop, save_torch_zip

    _, state = _lively(upscale=2)
    save_torch_zip(state, tmp_path / "compact.pth", key="params")
    assert main(["convert", str(tmp_path / "compact.pth"), str(tmp_path / "compact.keras")]) == 0
    assert "SRVGGNetCompact(num_in_ch=3" in capsys.readouterr().out
    write_image(tmp_path / "in.png", photo_crop("cli-srvgg", 0, 0, 12, 10))
    assert main(["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "out"), "--weights",
                 str(tmp_path / "compact.keras"), "--precision", "fp32"]) == 0
    want = Upscaler(str(tmp_path / "compact.pth"), precision="fp32")(read_image(tmp_path / "in.png"))
    np.testing.assert_array_equal(read_image(tmp_path / "out" / "in_out.png"), want)
