"""Requests to a TensorFlow Serving model exported by `keras_esrgan.export.saved_model`.

Building a request and reading a response are plain functions, so they are testable without a
server; `predict_rest` and `predict_grpc` are the only parts that talk to the network.
REST needs nothing beyond the standard library; gRPC needs `tensorflow-serving-api`
(`pip install 'keras-esrgan[export]'`).
"""

import base64
import json
import re
import urllib.error
import urllib.request

import numpy as np

from keras_esrgan.export.savedmodel_export import (
    BYTES_INPUT,
    BYTES_OUTPUT,
    IMAGES_INPUT,
    IMAGES_OUTPUT,
    SERVING_DEFAULT,
    UPSCALE_IMAGE,
)

SIGNATURES = {
    SERVING_DEFAULT: (IMAGES_INPUT, IMAGES_OUTPUT),
    UPSCALE_IMAGE: (BYTES_INPUT, BYTES_OUTPUT),
}
REST_PORT, GRPC_PORT = 8501, 8500
# A 512x512 image upscaled x4 is 12 MB of uint8 (more as a PNG of noise): far over gRPC's default
# 4 MB receive limit. TF Serving itself accepts messages up to 2 GB.
MAX_MESSAGE_BYTES = 1 << 30


def server_message(text):
    """The readable part of a server error: the exported model's own "keras_esrgan: ..."
    assertion message when there is one (TF Serving wraps it in graph-execution details)."""
    match = re.search(r"keras_esrgan: [^\]\n]*", text)
    return match.group(0) if match else text


def _signature_io(signature):
    if signature not in SIGNATURES:
        raise ValueError(f"unknown signature {signature!r}; exported ones: {sorted(SIGNATURES)}")
    return SIGNATURES[signature]


def _uint8_batch(images):
    batch = np.asarray(images)
    if batch.ndim == 3:
        batch = batch[None]
    if batch.dtype != np.uint8 or batch.ndim != 4:
        raise ValueError(
            f"serving_default takes uint8 images (B, H, W, C) or (H, W, C); got {batch.dtype} "
            f"{batch.shape}"
        )
    return batch


def _encoded_list(encoded):
    if isinstance(encoded, (bytes, bytearray)):
        encoded = [encoded]
    encoded = [bytes(e) for e in encoded]
    if not encoded:
        raise ValueError("upscale_image needs at least one encoded image")
    return encoded


def rest_url(host="localhost", port=REST_PORT, model="esrgan", version=None):
    """`http://host:port/v1/models/<model>[/versions/<version>]:predict`."""
    versioned = f"/versions/{int(version)}" if version is not None else ""
    return f"http://{host}:{port}/v1/models/{model}{versioned}:predict"


def rest_request(data, signature=UPSCALE_IMAGE):
    """The JSON body of a REST `:predict` call, in TF Serving's columnar ("inputs") format.

    Args:
        data: for `upscale_image`, encoded PNG/JPEG bytes or a list of them (sent as
            `{"b64": ...}`, TF Serving's encoding of binary strings); for `serving_default`, a
            uint8 array `(B, H, W, C)` or `(H, W, C)` (sent as nested lists of numbers, which is
            about 4 bytes of JSON per channel value: prefer `upscale_image` over REST).
        signature: `"upscale_image"` or `"serving_default"`.

    Returns:
        dict, ready for `json.dumps`.

    Example:
    >>> body = rest_request(open("photo.png", "rb").read())
    >>> body["inputs"]["image_bytes"][0].keys()
    dict_keys(['b64'])
    """
    name, _ = _signature_io(signature)
    if signature == UPSCALE_IMAGE:
        value = [{"b64": base64.b64encode(e).decode("ascii")} for e in _encoded_list(data)]
    else:
        value = _uint8_batch(data).tolist()
    return {"signature_name": signature, "inputs": {name: value}}


def parse_rest_response(body, signature=UPSCALE_IMAGE):
    """The upscaled result from a REST `:predict` response (dict or JSON text).

    Returns:
        list of PNG bytes for `upscale_image`, uint8 array `(B, sH, sW, C)` for
        `serving_default`.

    Raises:
        RuntimeError: the server answered `{"error": ...}` (e.g. the pixel budget message).
    """
    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    if "error" in body:
        raise RuntimeError(f"TF Serving error: {server_message(body['error'])}")
    _, output = _signature_io(signature)
    key = "outputs" if "outputs" in body else "predictions"
    value = body[key]
    # A single named output is sent without its name; keep accepting the named form too.
    if isinstance(value, dict):
        value = value[output]
    if signature == UPSCALE_IMAGE:
        return [base64.b64decode(v["b64"]) for v in value]
    return np.asarray(value, dtype=np.uint8)


def predict_rest(url, body, timeout=600):
    """POST `body` (from `rest_request`) to `url` (from `rest_url`); returns the parsed JSON."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:  # TF Serving puts {"error": ...} in 4xx/5xx bodies
        text = err.read().decode(errors="replace")
        try:
            return json.loads(text)
        except ValueError:
            raise RuntimeError(f"TF Serving HTTP {err.code}: {text[:500]}") from None


def grpc_request(data, signature=UPSCALE_IMAGE, model="esrgan", version=None):
    """A `tensorflow_serving.apis.predict_pb2.PredictRequest` for the exported signatures.

    Args:
        data: as in `rest_request` (encoded bytes for `upscale_image`, uint8 array for
            `serving_default`, sent as raw `tensor_content`).
        signature: `"upscale_image"` or `"serving_default"`.
        model: the model name in `models.config`.
        version: pin a version; None lets the server pick its latest.

    Example:
    >>> request = grpc_request(open("photo.png", "rb").read(), model="esrgan")
    >>> request.inputs["image_bytes"].dtype == tf.string.as_datatype_enum
    True
    """
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    name, output = _signature_io(signature)
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    request.model_spec.signature_name = signature
    if version is not None:
        request.model_spec.version.value = int(version)
    if signature == UPSCALE_IMAGE:
        encoded = _encoded_list(data)
        tensor = tf.make_tensor_proto(encoded, dtype=tf.string, shape=[len(encoded)])
    else:
        tensor = tf.make_tensor_proto(_uint8_batch(data))
    request.inputs[name].CopyFrom(tensor)
    request.output_filter.append(output)
    return request


def parse_grpc_response(response, signature=UPSCALE_IMAGE):
    """The upscaled result from a `PredictResponse`: PNG bytes list or uint8 array."""
    import tensorflow as tf

    _, output = _signature_io(signature)
    if output not in response.outputs:
        raise RuntimeError(f"response has no output {output!r}: {sorted(response.outputs)}")
    value = tf.make_ndarray(response.outputs[output])
    return [bytes(v) for v in value] if signature == UPSCALE_IMAGE else value


def predict_grpc(target, request, timeout=600):
    """Send a `PredictRequest` to `target` ("host:8500"); returns the `PredictResponse`.

    Server errors become `RuntimeError("TF Serving gRPC INVALID_ARGUMENT: ...")`. The channel
    lifts gRPC's 4 MB default receive limit (see `MAX_MESSAGE_BYTES`).
    """
    import grpc
    from tensorflow_serving.apis import prediction_service_pb2_grpc

    options = [
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ]
    with grpc.insecure_channel(target, options=options) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        try:
            return stub.Predict(request, timeout=timeout)
        except grpc.RpcError as err:  # e.g. INVALID_ARGUMENT with the pixel budget message
            raise RuntimeError(
                f"TF Serving gRPC {err.code().name}: {server_message(err.details() or '')}"
            ) from None
