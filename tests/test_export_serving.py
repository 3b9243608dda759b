"""SavedModel export for TF Serving, and the serving client's requests.

No `tensorflow_model_server` binary can be installed here, so the server's side is played by
`serve_rest` / `serve_grpc` below: they parse the client's bytes the way TF Serving does (JSON
"inputs"/"instances" with {"b64": ...} strings; `PredictRequest` protos through
`tensor_util.MakeNdarray`), call the loaded signature, and encode the response the same way.
"""

import base64
import json
import os
import pathlib
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_esrgan.export import saved_model, serving_functions
from keras_esrgan.export import serving_client as client
from keras_esrgan.export import weight_bytes
from tests.conftest import ROOT
from tests.export_helpers import generated_image, image_like_generator, keras_uint8, real_crop

MAX_PIXELS = 96 * 96


# The module-scoped fixtures below are built once: keep this file's tests on one xdist
# worker (pyproject: --dist loadgroup); other files' tests are spread one by one.
pytestmark = pytest.mark.xdist_group("export_serving")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    generator = image_like_generator(seed=3)
    path = saved_model(generator, tmp_path_factory.mktemp("serving"), max_pixels=MAX_PIXELS)
    return generator, path


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported[1])


def folder_bytes(path):
    return sum(f.stat().st_size for f in pathlib.Path(path).rglob("*") if f.is_file())


def decode(png):
    return tf.io.decode_png(png).numpy()


# --- What TF Serving does with the client's bytes -------------------------------------------


def _unb64(value):
    if isinstance(value, dict):
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_unb64(v) for v in value]
    return value.encode() if isinstance(value, str) else value


def _to_json(value, binary):
    if binary:
        return [_to_json(v, binary) for v in value] if isinstance(value, list) else {
            "b64": base64.b64encode(value).decode()
        }
    return value


def serve_rest(loaded, body_text):
    """TF Serving's REST `:predict`: JSON text in, JSON text out (or {"error": ...})."""
    body = json.loads(body_text)
    signature = loaded.signatures[body.get("signature_name", "serving_default")]
    specs = signature.structured_input_signature[1]
    columnar = "inputs" in body
    named = lambda v: isinstance(v, dict) and set(v) != {"b64"}  # {"b64": ...} is a value
    if columnar:
        data = body["inputs"] if named(body["inputs"]) else {"?": body["inputs"]}
    else:  # row format: a list of per-instance values, or of {name: value} objects
        rows = body["instances"]
        data = {k: [r[k] for r in rows] for k in rows[0]} if named(rows[0]) else {"?": rows}
    if "?" in data:  # a single input may be sent without its name
        (name,) = specs
        data = {name: data["?"]}
    assert set(data) == set(specs), f"inputs {sorted(data)} != signature's {sorted(specs)}"
    tensors = {}
    for name, value in data.items():
        spec = specs[name]
        if spec.dtype == tf.string:
            tensors[name] = tf.constant(_unb64(value), dtype=tf.string)
        else:
            array = np.asarray(value)
            assert np.issubdtype(array.dtype, np.integer) and array.min() >= 0 and array.max() <= 255
            tensors[name] = tf.constant(array.astype(spec.dtype.as_numpy_dtype))
        assert spec.shape.is_compatible_with(tensors[name].shape)
    try:
        outputs = signature(**tensors)
    except tf.errors.InvalidArgumentError as err:
        return json.dumps({"error": err.message})
    encoded = {k: _to_json(v.numpy().tolist(), k.endswith("_bytes")) for k, v in outputs.items()}
    value = next(iter(encoded.values())) if len(encoded) == 1 else encoded
    return json.dumps({"outputs" if columnar else "predictions": value})


def serve_grpc(loaded, request_bytes):
    """TF Serving's gRPC `Predict`: serialized PredictRequest in, serialized PredictResponse out."""
    from tensorflow.python.framework import tensor_util
    from tensorflow_serving.apis import predict_pb2

    request = predict_pb2.PredictRequest.FromString(request_bytes)
    assert request.model_spec.name == "esrgan"
    signature = loaded.signatures[request.model_spec.signature_name or "serving_default"]
    specs = signature.structured_input_signature[1]
    assert set(request.inputs) == set(specs)
    tensors = {}
    for name, proto in request.inputs.items():
        assert proto.dtype == specs[name].dtype.as_datatype_enum
        tensors[name] = tf.constant(tensor_util.MakeNdarray(proto), dtype=specs[name].dtype)
    outputs = signature(**tensors)
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for key in request.output_filter or outputs:
        response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key].numpy()))
    return response.SerializeToString()


# --- The exported SavedModel ----------------------------------------------------------------

_RELOAD = textwrap.dedent(
    """
    import sys
    import numpy as np
    import tensorflow as tf

    path, inputs, outputs = sys.argv[1:]
    data = np.load(inputs)
    model = tf.saved_model.load(path)
    result = {"signatures": np.array(sorted(model.signatures))}
    result["upscaled"] = model.signatures["serving_default"](
        images=tf.constant(data["batch"]))["upscaled"].numpy()
    pngs = model.signatures["upscale_image"](
        image_bytes=tf.constant([data["png"].tobytes(), data["jpeg"].tobytes()]))["png_bytes"]
    for i, png in enumerate(pngs.numpy()):
        result[f"png{i}"] = np.frombuffer(png, np.uint8)
    assert not any(m.startswith("keras_esrgan") for m in sys.modules)
    np.savez(outputs, **result)
    """
)


def test_reloaded_in_fresh_process_matches_keras(exported, tmp_path):
    generator, path = exported
    batch = np.stack([generated_image(27, 21, seed=s) for s in (1, 2)])
    png_src, jpeg_src = generated_image(19, 23, seed=4), generated_image(16, 12, seed=5)
    png = tf.io.encode_png(png_src).numpy()
    jpeg = tf.io.encode_jpeg(jpeg_src, quality=90).numpy()
    np.savez(tmp_path / "in.npz", batch=batch, png=np.frombuffer(png, np.uint8),
             jpeg=np.frombuffer(jpeg, np.uint8))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run(
        [sys.executable, "-c", _RELOAD, path, tmp_path / "in.npz", tmp_path / "out.npz"],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = np.load(tmp_path / "out.npz")
    assert list(out["signatures"]) == ["serving_default", "upscale_image"]

    expected = keras_uint8(generator, batch)
    assert out["upscaled"].dtype == np.uint8 and out["upscaled"].shape == (2, 108, 84, 3)
    diff = np.abs(out["upscaled"].astype(int) - expected)
    assert diff.max() <= 1 and np.mean(diff > 0) < 1e-3

    # The JPEG is compared after the same decoder TF Serving's graph uses.
    jpeg_pixels = tf.io.decode_jpeg(jpeg).numpy()
    for key, source in (("png0", png_src), ("png1", jpeg_pixels)):
        got = decode(out[key].tobytes())
        want = keras_uint8(generator, source[None])[0]
        assert got.shape == want.shape == (4 * source.shape[0], 4 * source.shape[1], 3)
        assert np.abs(got.astype(int) - want).max() <= 1


def test_versioned_layout_and_weights_stored_once(exported, tmp_path):
    generator, path = exported
    assert pathlib.Path(path).parts[-2:] == ("esrgan", "1")
    assert {"saved_model.pb", "variables"} <= set(os.listdir(path))
    weights = weight_bytes(generator)
    stored = folder_bytes(os.path.join(path, "variables"))
    # Checkpoint index and per-variable headers cost a few percent on this 4,000-parameter
    # model (well under 1% on the full one); a second copy would double it.
    assert weights <= stored < 1.15 * weights
    assert not [n for n in os.listdir(pathlib.Path(path).parent) if n.startswith(".")]
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o777 & ~umask  # not mkdtemp's owner-only 0700

    # The premise: Keras' own export writes each variable twice.
    generator.export(tmp_path / "keras_export", format="tf_saved_model", verbose=False,
                     input_signature=[tf.TensorSpec((None, None, None, 3), tf.float32)])
    assert folder_bytes(tmp_path / "keras_export" / "variables") > 1.9 * weights


def test_pixel_budget_rejects_oversize_inputs_clearly(loaded):
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"input of 1 x 100 x 100 = 10000 "
                       r"pixels exceeds the pixel budget max_pixels=9,216"):
        loaded.signatures["serving_default"](images=tf.zeros((1, 100, 100, 3), tf.uint8))
    # The budget counts the whole batch: 2 x 80 x 80 = 12800.
    with pytest.raises(tf.errors.InvalidArgumentError, match="12800 pixels"):
        loaded.signatures["serving_default"](images=tf.zeros((2, 80, 80, 3), tf.uint8))
    big_png = tf.io.encode_png(generated_image(100, 97)).numpy()
    with pytest.raises(tf.errors.InvalidArgumentError, match="9700 pixels.*max_pixels=9,216"):
        loaded.signatures["upscale_image"](image_bytes=tf.constant([big_png]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="1 x 0 x 5 = 0 pixels is empty"):
        loaded.signatures["serving_default"](images=tf.zeros((1, 0, 5, 3), tf.uint8))
    out = loaded.signatures["serving_default"](images=tf.zeros((1, 96, 96, 3), tf.uint8))
    assert out["upscaled"].shape == (1, 384, 384, 3)


def test_x2_model_pads_sizes_that_are_not_multiples_of_its_unshuffle_factor():
    generator = image_like_generator(scale=2, seed=1)
    fn = serving_functions(generator)["serving_default"]
    image = generated_image(13, 11, seed=7)
    got = fn(tf.constant(image[None]))["upscaled"].numpy()
    assert got.shape == (1, 26, 22, 3)
    padded = np.pad(image, ((0, 1), (0, 1), (0, 0)), mode="edge")  # up to 14 x 12
    want = keras_uint8(generator, padded[None])[:, :26, :22]
    assert np.abs(got.astype(int) - want).max() <= 1


def test_upsampling_tail_runs_in_row_chunks_with_the_same_output(monkeypatch):
    from keras_esrgan import RRDBNet

    generator = image_like_generator(seed=4)
    batch = np.stack([generated_image(21, 16, seed=s) for s in (1, 2)])
    want = keras_uint8(generator, batch)
    # 3 feature rows per chunk for this batch of 2 x 16 columns: 7 chunks, traced into the graph.
    monkeypatch.setattr(RRDBNet, "TAIL_CHUNK_PIXELS", 3 * 2 * 16)
    got = serving_functions(generator)["serving_default"](tf.constant(batch))["upscaled"].numpy()
    assert got.shape == want.shape == (2, 84, 64, 3)
    assert np.abs(got.astype(int) - want).max() <= 1 and np.mean(got == want) > 0.999
    # The chunks really are there: without their halo rows the seams show.
    monkeypatch.setattr(RRDBNet, "TAIL_HALO", 0)
    broken = serving_functions(generator)["serving_default"](tf.constant(batch))["upscaled"].numpy()
    assert np.abs(broken.astype(int) - want).max() > 1


def test_existing_version_needs_overwrite(tmp_path):
    generator = image_like_generator(seed=2)
    first = saved_model(generator, tmp_path, name="m", version=3)
    with pytest.raises(FileExistsError, match="overwrite"):
        saved_model(generator, tmp_path, name="m", version=3)
    assert saved_model(generator, tmp_path, name="m", version=3, overwrite=True) == first
    assert sorted(os.listdir(tmp_path / "m")) == ["3"]
    with pytest.raises(ValueError, match="version"):
        saved_model(generator, tmp_path, version=0)


# --- The client's requests, answered by the signatures --------------------------------------


def test_rest_request_for_a_photo_like_image_is_served(exported, loaded):
    generator, _ = exported
    image = real_crop("butterfly.png", 90, 100, 64, 80)
    png = tf.io.encode_png(image).numpy()
    body = json.dumps(client.rest_request(png, "upscale_image"))
    (result,) = client.parse_rest_response(serve_rest(loaded, body), "upscale_image")
    assert np.abs(decode(result).astype(int) - keras_uint8(generator, image[None])[0]).max() <= 1

    crop = real_crop("bird.png", 120, 60, 40, 48)
    body = json.dumps(client.rest_request(np.stack([crop, crop[::-1]]), "serving_default"))
    result = client.parse_rest_response(serve_rest(loaded, body), "serving_default")
    want = keras_uint8(generator, np.stack([crop, crop[::-1]]))
    assert result.dtype == np.uint8 and np.abs(result.astype(int) - want).max() <= 1


def test_grpc_request_for_a_photo_like_image_is_served(exported, loaded):
    generator, _ = exported
    image = real_crop("head.png", 100, 90, 56, 72)
    jpeg = tf.io.encode_jpeg(image, quality=95).numpy()
    request = client.grpc_request([jpeg], "upscale_image", model="esrgan", version=1)
    assert request.model_spec.version.value == 1
    response = serve_grpc(loaded, request.SerializeToString())
    from tensorflow_serving.apis import predict_pb2

    (result,) = client.parse_grpc_response(predict_pb2.PredictResponse.FromString(response))
    want = keras_uint8(generator, tf.io.decode_jpeg(jpeg).numpy()[None])[0]
    assert np.abs(decode(result).astype(int) - want).max() <= 1

    crop = real_crop("woman.png", 150, 50, 44, 36)
    request = client.grpc_request(crop, "serving_default", model="esrgan")
    assert request.inputs["images"].tensor_content == crop.tobytes()  # raw bytes, not a list
    response = predict_pb2.PredictResponse.FromString(serve_grpc(loaded, request.SerializeToString()))
    result = client.parse_grpc_response(response, "serving_default")
    assert result.shape == (1, 176, 144, 3)
    assert np.abs(result.astype(int) - keras_uint8(generator, crop[None])).max() <= 1


def test_client_requests_on_generated_images(exported, loaded):
    generator, _ = exported
    images = [generated_image(20, 28, seed=s) for s in (8, 9)]
    pngs = [tf.io.encode_png(i).numpy() for i in images]
    body = client.rest_request(pngs, "upscale_image")
    assert body == {
        "signature_name": "upscale_image",
        "inputs": {"image_bytes": [{"b64": base64.b64encode(p).decode()} for p in pngs]},
    }
    results = client.parse_rest_response(serve_rest(loaded, json.dumps(body)), "upscale_image")
    for got, image in zip(results, images):
        assert np.abs(decode(got).astype(int) - keras_uint8(generator, image[None])[0]).max() <= 1
    # The row format ("instances") that other clients send is served the same way.
    rows = json.dumps({"signature_name": "upscale_image", "instances": body["inputs"]["image_bytes"]})
    assert client.parse_rest_response(serve_rest(loaded, rows), "upscale_image") == results


def test_client_reports_server_errors(loaded):
    big = tf.io.encode_png(generated_image(120, 90)).numpy()
    reply = serve_rest(loaded, json.dumps(client.rest_request(big)))
    with pytest.raises(RuntimeError) as raised:
        client.parse_rest_response(reply)
    assert str(raised.value) == (
        "TF Serving error: keras_esrgan: image of 1 x 120 x 90 = 10800 pixels exceeds the pixel "
        "budget max_pixels=9,216 (low-resolution pixels per request) set at export; send smaller "
        "tiles or re-export with a larger max_pixels"
    )
    with pytest.raises(ValueError, match="uint8"):
        client.rest_request(np.zeros((4, 4, 3), np.float32), "serving_default")
    with pytest.raises(ValueError, match="unknown signature"):
        client.grpc_request(b"x", "classify")


def test_rest_url_and_models_config():
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    assert client.rest_url() == "http://localhost:8501/v1/models/esrgan:predict"
    assert client.rest_url("srv", 9000, "sr", 2) == "http://srv:9000/v1/models/sr/versions/2:predict"
    config = text_format.Parse(
        (ROOT / "export" / "models.config").read_text(), model_server_config_pb2.ModelServerConfig()
    )
    (model,) = config.model_config_list.config
    assert (model.name, model.base_path) == ("esrgan", "/models/esrgan")
    assert model.model_platform == "tensorflow"
    assert model.model_version_policy.latest.num_versions == 1


def load_script(name):
    """An `export/` script as a module, so its `main(argv)` runs in this process."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, ROOT / "export" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_export_savedmodel_script(tmp_path, capsys):
    from keras_esrgan import save_generator

    weights = tmp_path / "g.weights.h5"
    save_generator(image_like_generator(seed=4), weights)
    main = load_script("export_savedmodel").main
    assert main(["--weights", str(weights), "--out", str(tmp_path / "out"), "--version", "2"]) == 0
    assert (tmp_path / "out" / "esrgan" / "2" / "saved_model.pb").is_file()
    assert "MB of weights" in capsys.readouterr().out
    assert main(["--weights", str(tmp_path / "missing.pth"), "--out", str(tmp_path / "out")]) == 1
    assert "export_savedmodel: error:" in capsys.readouterr().err


@pytest.fixture
def local_servers(loaded):
    """An HTTP server and a gRPC server on localhost answering with `serve_rest` / `serve_grpc`,
    so the client script runs its real network code (urllib, a gRPC channel) end to end."""
    import http.server
    import threading
    from concurrent import futures

    import grpc
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            assert self.path == "/v1/models/esrgan:predict"
            reply = serve_rest(loaded, self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(400 if '"error"' in reply[:10] else 200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(reply.encode())

        def log_message(self, *args):
            pass

    class Servicer(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request, context):
            try:
                return predict_pb2.PredictResponse.FromString(
                    serve_grpc(loaded, request.SerializeToString()))
            except tf.errors.InvalidArgumentError as err:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, err.message)

    http_server = http.server.ThreadingHTTPServer(("localhost", 0), Handler)
    threading.Thread(target=http_server.serve_forever, daemon=True).start()
    grpc_server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Servicer(), grpc_server)
    grpc_port = grpc_server.add_insecure_port("localhost:0")
    grpc_server.start()
    yield {"rest": http_server.server_address[1], "grpc": grpc_port}
    http_server.shutdown()
    grpc_server.stop(None)


def test_query_serving_script_over_rest_and_grpc(exported, local_servers, tmp_path, capsys):
    from keras_esrgan.images import write_image

    generator, _ = exported
    image = generated_image(30, 26, seed=11)
    write_image(tmp_path / "in.png", image)
    want = keras_uint8(generator, image[None])[0]
    main = load_script("query_serving").main
    for protocol in ("rest", "grpc"):
        for signature in ("upscale_image", "serving_default"):
            out = tmp_path / f"{protocol}_{signature}.png"
            args = [str(tmp_path / "in.png"), str(out), "--protocol", protocol,
                    "--port", str(local_servers[protocol]), "--signature", signature]
            assert main(args) == 0, capsys.readouterr().err
            assert np.abs(decode(out.read_bytes()).astype(int) - want).max() <= 1
    write_image(tmp_path / "big.png", generated_image(100, 100))
    for protocol in ("rest", "grpc"):
        args = [str(tmp_path / "big.png"), str(tmp_path / "big_up.png"), "--protocol", protocol,
                "--port", str(local_servers[protocol])]
        assert main(args) == 1
        err = capsys.readouterr().err
        assert "query_serving: error: TF Serving" in err and "max_pixels=9,216" in err
        assert "node" not in err  # the graph-execution wrapping is stripped
    assert not (tmp_path / "big_up.png").exists()
    # --out-dir names each result <stem>_x<scale>.png, as promised, and leaves no temporary file
    scale = want.shape[0] // image.shape[0]
    for signature in ("upscale_image", "serving_default"):
        out_dir = tmp_path / f"up_{signature}"
        args = [str(tmp_path / "in.png"), "--out-dir", str(out_dir), "--signature", signature,
                "--port", str(local_servers["rest"])]
        assert main(args) == 0, capsys.readouterr().err
        assert sorted(p.name for p in out_dir.iterdir()) == [f"in_x{scale}.png"]
        assert np.abs(decode((out_dir / f"in_x{scale}.png").read_bytes()).astype(int) - want).max() <= 1
