"""Pre-activation VGG19 features and the perceptual loss: weight sources, preprocessing, values."""

import h5py
import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan import PerceptualLoss, WeightsFileError
from keras_esrgan import perceptual
from keras_esrgan._compat import save_legacy_h5_weights
from keras_esrgan.perceptual import VGG19FeatureExtractor
from keras_esrgan.weights import vgg19
from keras_esrgan.weights.vgg19 import KERAS_VGG19_FILE, TORCHVISION_INDEX

from .conftest import FIXTURES

LAYERS = ("block1_conv1", "block1_conv2", "block2_conv1")
CHANNELS = {"block1_conv1": (3, 64), "block1_conv2": (64, 64), "block2_conv1": (64, 128)}


def random_torch_state(rng, layers=LAYERS):
    """torchvision-layout numpy state dict: features.N.weight (out, in, 3, 3) and bias."""
    state = {}
    for name in layers:
        cin, cout = CHANNELS[name]
        i = TORCHVISION_INDEX[name]
        state[f"features.{i}.weight"] = (rng.standard_normal((cout, cin, 3, 3)) * np.sqrt(2 / (9 * cin))).astype(np.float32)
        state[f"features.{i}.bias"] = (0.1 * rng.standard_normal(cout)).astype(np.float32)
    return state


def np_conv_same(x, kernel, bias):
    """3x3 'same' convolution in float64; kernel HWIO."""
    h, w = x.shape[1:3]
    pad = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    out = np.zeros(x.shape[:3] + (kernel.shape[-1],))
    for dy in range(3):
        for dx in range(3):
            out += pad[:, dy:dy + h, dx:dx + w, :] @ kernel[dy, dx]
    return out + bias


def np_vgg(x, kernels, preprocessing):
    """Reference forward: {layer: pre-ReLU output} for LAYERS (pool after block1)."""
    x = x.astype(np.float64)
    if preprocessing == "torch":
        x = (x - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    else:
        x = x[..., ::-1] * 255.0 - np.array([103.939, 116.779, 123.68])
    out = {}
    for name in LAYERS:
        if name == "block2_conv1":
            b, h, w, c = x.shape
            x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
        out[name] = np_conv_same(x, *kernels[name])
        x = np.maximum(out[name], 0)
    return out


def torch_to_hwio(state):
    return {
        name: (state[f"features.{TORCHVISION_INDEX[name]}.weight"].transpose(2, 3, 1, 0).astype(np.float64),
               state[f"features.{TORCHVISION_INDEX[name]}.bias"].astype(np.float64))
        for name in LAYERS
    }


def write_keras_h5(path, kernels):
    """An h5 in keras.applications' layout, written by Keras' own legacy weights writer."""
    model = keras.Sequential(
        [keras.Input((None, None, 3))]
        + [keras.layers.Conv2D(CHANNELS[n][1], 3, padding="same", name=n) for n in LAYERS]
    )
    for name in LAYERS:
        model.get_layer(name).set_weights([k.astype(np.float32) for k in kernels[name]])
    with h5py.File(path, "w") as f:
        save_legacy_h5_weights(f, model)


def test_state_dict_features_match_numpy_reference(rng):
    state = random_torch_state(rng)
    loss = PerceptualLoss({"block1_conv2": 0.5, "conv2_1": 1.0}, weights=state)
    assert loss.preprocessing == "torch"
    x = rng.random((2, 10, 12, 3)).astype(np.float32)
    got = loss.extractor(x)
    want = np_vgg(x, torch_to_hwio(state), "torch")
    for name in ("block1_conv2", "block2_conv1"):
        np.testing.assert_allclose(got[name].numpy(), want[name], rtol=1e-4, atol=1e-4)


def test_loss_value_matches_numpy(rng):
    state = random_torch_state(rng)
    loss = PerceptualLoss({"block1_conv2": 0.5, "block2_conv1": 2.0}, weights=state)
    pred = rng.random((3, 8, 8, 3)).astype(np.float32)
    target = rng.random((3, 8, 8, 3)).astype(np.float32)
    fp, ft = np_vgg(pred, torch_to_hwio(state), "torch"), np_vgg(target, torch_to_hwio(state), "torch")
    want = sum(w * np.abs(fp[n] - ft[n]).mean(axis=(1, 2, 3)) for n, w in (("block1_conv2", 0.5), ("block2_conv1", 2.0)))
    got = loss(pred, target)
    assert got.dtype == tf.float32 and got.shape == (3,)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-4)
    l2 = PerceptualLoss({"block1_conv2": 1.0}, weights=state, criterion="l2")
    np.testing.assert_allclose(l2(pred, target).numpy(), ((fp["block1_conv2"] - ft["block1_conv2"]) ** 2).mean(axis=(1, 2, 3)), rtol=1e-4)


def test_features_are_pre_activation(rng):
    """Negative values present; equal to the conv applied by hand to the previous ReLU output;
    and Keras' own VGG19 with the same weights (ReLU inside the conv) gives exactly their ReLU."""
    state = random_torch_state(rng, LAYERS[:2])
    extractor = VGG19FeatureExtractor(["block1_conv1", "block1_conv2"])
    vgg19.load_vgg19_weights(extractor, state)
    x = rng.random((1, 16, 16, 3)).astype(np.float32)
    feats = extractor(x)
    pre = feats["block1_conv2"].numpy()
    assert (pre < 0).mean() > 0.2
    conv = extractor.convs[1]
    by_hand = tf.nn.conv2d(tf.nn.relu(feats["block1_conv1"]), conv.kernel, 1, "SAME") + conv.bias
    np.testing.assert_allclose(pre, by_hand.numpy(), rtol=1e-5, atol=1e-5)

    vgg = keras.applications.VGG19(include_top=False, weights=None, input_shape=(None, None, 3))
    for c in extractor.convs:
        vgg.get_layer(c.name).set_weights(c.get_weights())
    post = keras.Model(vgg.input, vgg.get_layer("block1_conv2").output)(extractor.preprocess(x)).numpy()
    assert post.min() >= 0
    np.testing.assert_allclose(post, np.maximum(pre, 0), rtol=1e-5, atol=1e-5)


def test_torchvision_pth_matches_pytorch():
    """Committed truncated torchvision .pth and the features/loss PyTorch computed from it."""
    ref = np.load(FIXTURES / "vgg19_block1_torchvision.npz")
    loss = PerceptualLoss({"block1_conv2": 1.0}, weights=FIXTURES / "vgg19_block1_torchvision.pth")
    assert loss.preprocessing == "torch"
    feats = loss.extractor(ref["pred"])["block1_conv2"].numpy()
    np.testing.assert_allclose(feats, ref["pred_features"], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(loss(ref["pred"], ref["target"]).numpy().mean(), ref["loss"], rtol=1e-5)


def test_keras_h5_path_uses_caffe_preprocessing(tmp_path, rng):
    kernels = torch_to_hwio(random_torch_state(rng))
    path = tmp_path / "vgg.h5"
    write_keras_h5(path, kernels)
    loss = PerceptualLoss({"block2_conv1": 1.0}, weights=str(path))
    assert loss.preprocessing == "caffe"
    x = rng.random((2, 8, 10, 3)).astype(np.float32)
    want = np_vgg(x, kernels, "caffe")["block2_conv1"]
    np.testing.assert_allclose(loss.extractor(x)["block2_conv1"].numpy(), want, rtol=1e-4, atol=1e-3)


def test_imagenet_reads_the_keras_cache(tmp_path, rng, monkeypatch):
    kernels = torch_to_hwio(random_torch_state(rng))
    (tmp_path / "models").mkdir()
    write_keras_h5(tmp_path / "models" / KERAS_VGG19_FILE, kernels)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(vgg19, "_download_keras_vgg19", lambda home: pytest.fail("must not download"))
    loss = PerceptualLoss({"block1_conv1": 1.0}, weights="imagenet")
    np.testing.assert_allclose(loss.extractor.convs[0].kernel.numpy(), kernels["block1_conv1"][0], rtol=1e-6)


def test_imagenet_offline_fails_fast_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(home):
        raise Exception("URL fetch failure on https://storage.googleapis.com/...: None -- [Errno -3]")

    monkeypatch.setattr(vgg19, "_download_keras_vgg19", offline)
    with pytest.raises(WeightsFileError) as err:
        PerceptualLoss(weights="imagenet")
    message = str(err.value)
    for expected in (str(tmp_path / "models" / KERAS_VGG19_FILE), vgg19.KERAS_VGG19_URL,
                     vgg19.TORCHVISION_VGG19_URL, "perceptual_weights=", "URL fetch failure"):
        assert expected in message


def test_bad_sources_are_named(tmp_path, rng):
    kernels = torch_to_hwio(random_torch_state(rng))
    path = tmp_path / "vgg.h5"
    write_keras_h5(path, kernels)
    with pytest.raises(WeightsFileError, match="block2_conv2"):
        PerceptualLoss({"block2_conv2": 1.0}, weights=path)
    with pytest.raises(WeightsFileError, match="features.7.weight"):
        PerceptualLoss({"block2_conv2": 1.0}, weights=random_torch_state(rng))
    bad = random_torch_state(rng, LAYERS[:1])
    bad["features.0.weight"] = bad["features.0.weight"][:, :2]
    with pytest.raises(WeightsFileError, match="block1_conv1.*kernel"):
        PerceptualLoss({"block1_conv1": 1.0}, weights=bad)
    with pytest.raises(WeightsFileError, match="not found"):
        PerceptualLoss(weights=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="unknown VGG19 layer"):
        PerceptualLoss({"relu5_4": 1.0}, weights=None)
    with pytest.raises(ValueError, match="criterion"):
        PerceptualLoss(weights=None, criterion="fro")


def test_random_weights_warn_and_vgg_is_frozen(rng):
    with pytest.warns(UserWarning, match="random weights"):
        loss = PerceptualLoss({"block1_conv2": 1.0}, weights=None)
    assert loss.trainable_weights == [] and len(loss.non_trainable_weights) == 4
    pred = tf.Variable(rng.random((1, 8, 8, 3)).astype(np.float32))
    target = tf.Variable(rng.random((1, 8, 8, 3)).astype(np.float32))
    with tf.GradientTape() as tape:
        value = loss(pred, target)
    g_pred, g_target = tape.gradient(value, [pred, target])
    assert g_target is None and np.abs(g_pred.numpy()).sum() > 0


def test_mixed_precision_features_loss_float32(rng):
    state = random_torch_state(rng, LAYERS[:2])
    loss = PerceptualLoss({"block1_conv2": 1.0}, weights=state, dtype="mixed_bfloat16")
    ref = PerceptualLoss({"block1_conv2": 1.0}, weights=state)
    pred, target = rng.random((2, 8, 8, 3)).astype(np.float32), rng.random((2, 8, 8, 3)).astype(np.float32)
    assert loss.extractor(pred)["block1_conv2"].dtype == tf.bfloat16
    got = loss(pred, target)
    assert got.dtype == tf.float32
    np.testing.assert_allclose(got.numpy(), ref(pred, target).numpy(), rtol=3e-2)


# torchvision's VGG19 `features` (cfg "E"): 64, 64, M, 128, 128, M, 256 x 4, M, 512 x 4, M, 512 x 4.
# Written out independently of keras_esrgan's tables: index of each module, BasicSR's names.
TORCHVISION_VGG19 = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512]


def np_vgg19_pre_relu(x, state):
    """BasicSR's VGGFeatureExtractor (use_input_norm, range_norm off) in float64 numpy: every conv's
    output cloned before its (in-place) ReLU, by BasicSR name conv{block}_{index}."""
    x = (x.astype(np.float64) - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    out, index, block, conv = {}, 0, 1, 1
    for item in TORCHVISION_VGG19:
        if item == "M":
            b, h, w, c = x.shape
            x = x.reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
            index, block, conv = index + 1, block + 1, 1
            continue
        kernel = state[f"features.{index}.weight"].astype(np.float64).transpose(2, 3, 1, 0)
        x = np_conv_same(x, kernel, state[f"features.{index}.bias"].astype(np.float64))
        out[f"conv{block}_{conv}"] = x
        x = np.maximum(x, 0)
        index, conv = index + 2, conv + 1  # conv, ReLU
    return out


def test_real_esrgan_five_layer_loss_is_pre_activation_at_every_layer(rng):
    """Real-ESRGAN's perceptual loss (conv1_2 0.1, conv2_2 0.1, conv3_4, conv4_4, conv5_4 1, "before
    relu") against an independent float64 VGG19: features of every tapped layer, and the loss."""
    from tests.standins import torchvision_vgg19_state

    state = torchvision_vgg19_state(seed=3, dtype="float32")
    for key in state:  # non-zero biases, so that a post-ReLU tap cannot pass by luck
        if key.endswith(".bias"):
            state[key] = (0.05 * rng.standard_normal(state[key].shape)).astype(np.float32)
    weights = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}
    loss = PerceptualLoss(weights, weights=state)
    assert loss.layer_weights == perceptual.REAL_ESRGAN_LAYER_WEIGHTS
    pred = rng.random((2, 16, 16, 3)).astype(np.float32)  # conv5_4 sees 1x1
    target = rng.random((2, 16, 16, 3)).astype(np.float32)
    got = loss.extractor(pred)
    ref_pred, ref_target = np_vgg19_pre_relu(pred, state), np_vgg19_pre_relu(target, state)
    for basicsr_name in weights:
        feature = got[perceptual.canonical_layer_name(basicsr_name)].numpy()
        want = ref_pred[basicsr_name]
        assert (want < 0).mean() > 0.2, basicsr_name  # pre-activation features are partly negative
        scale = np.abs(want).max()
        np.testing.assert_allclose(feature / scale, want / scale, atol=2e-5, err_msg=basicsr_name)
    expected = sum(w * np.abs(ref_pred[n] - ref_target[n]).mean(axis=(1, 2, 3)) for n, w in weights.items())
    np.testing.assert_allclose(loss(pred, target).numpy(), expected, rtol=1e-4)


def test_a_file_that_is_not_what_its_name_says_is_named(tmp_path):
    """Format sniffing is weights.formats': a .h5 that is no HDF5 file and a .keras archive."""
    fake = tmp_path / "vgg.h5"
    fake.write_bytes(b"not hdf5 at all")
    with pytest.raises(WeightsFileError, match=r"vgg\.h5: not a readable HDF5 file"):
        PerceptualLoss({"block1_conv1": 1.0}, weights=fake)
    model = tmp_path / "model.keras"
    keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)]).save(model)
    with pytest.raises(WeightsFileError, match=r"model\.keras: a \.keras model archive"):
        PerceptualLoss({"block1_conv1": 1.0}, weights=model)
