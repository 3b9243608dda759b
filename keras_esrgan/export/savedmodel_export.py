"""SavedModel export for TensorFlow Serving: uint8 tensors and encoded images in, upscaled out.

The exported graph holds only the generator's variables and two signatures; it does not embed
the Keras objects. That is why it stores each weight once: Keras' own `model.export` tracks the
layers as well as a flat variable list and writes every variable twice (measured on the full
model: Keras 138.5 MB, this export 71.2 MB of which 66.9 MB variables, for 66.8 MB of weights).
"""

import os

import tensorflow as tf

from keras_esrgan.atomic import atomic_path
from keras_esrgan.models.generator import SRGenerator
from keras_esrgan.pixels import tf_pad_to_multiple, tf_quantize, tf_to_float

SERVING_DEFAULT = "serving_default"
UPSCALE_IMAGE = "upscale_image"
# Signature argument and output names. TF Serving's REST API base64-encodes string outputs whose
# name ends in `_bytes` ({"b64": ...}); any other name would send PNG bytes as broken UTF-8.
IMAGES_INPUT = "images"
IMAGES_OUTPUT = "upscaled"
BYTES_INPUT = "image_bytes"
BYTES_OUTPUT = "png_bytes"

# Low-resolution pixels per request. With the upsampling tail in row chunks the full x4 model needs
# 2.4 KB per input pixel at 512x512 and 3.5 KB at 256x256 (`python benchmarks/memory.py pass`,
# column savedmodel; called whole it would need 15 KB), so 512x512 in (2048x2048 out) takes about
# 0.6 GB over the idle server. Size it to the server.
DEFAULT_MAX_PIXELS = 512 * 512


def weight_bytes(generator):
    """Bytes of the generator's variables as stored (number of elements x dtype size)."""
    return sum(int(v.numpy().nbytes) for v in generator.variables)


def variables_module(generator):
    """A `tf.Module` that tracks the generator's variables and nothing else.

    Functions traced from the generator capture those variables; saving the module writes them
    once, without the Keras layer objects (see the module docstring).
    """
    module = tf.Module()
    module.generator_variables = [getattr(v, "value", v) for v in generator.variables]
    return module


def check_generator(generator, caller="export"):
    """Raise a clear `ValueError` unless `generator` is a keras_esrgan `SRGenerator`."""
    if not isinstance(generator, SRGenerator):
        raise ValueError(
            f"{caller} needs a keras_esrgan generator (an SRGenerator such as RRDBNet), got "
            f"{type(generator).__name__}"
        )


def _check_pixels(shape, max_pixels, what):
    """Assertion ops that reject empty inputs and `shape` (B, H, W[, C]) over the pixel budget.

    The messages reach the client as TF Serving's error text, so they say what to do.
    """
    b, h, w = (tf.cast(shape[i], tf.int64) for i in range(3))
    pixels = b * h * w
    size = (b, h, w, pixels)
    over = tf.strings.format(
        f"keras_esrgan: {what} of {{}} x {{}} x {{}} = {{}} pixels exceeds the pixel budget "
        f"max_pixels={max_pixels:,} (low-resolution pixels per request) set at export; send "
        "smaller tiles or re-export with a larger max_pixels",
        size,
    )
    empty = tf.strings.format(
        f"keras_esrgan: {what} of {{}} x {{}} x {{}} = {{}} pixels is empty (a batch of 0 "
        "images, or an image of zero height or width)",
        size,
    )
    return [
        tf.debugging.Assert(tf.logical_and(b > 0, tf.logical_and(h > 0, w > 0)), [empty], summarize=1),
        tf.debugging.Assert(pixels <= max_pixels, [over], summarize=1),
    ]


def _fail(message):
    """A (height, width) that is never used, after an assertion that always fails."""
    with tf.control_dependencies([tf.debugging.Assert(False, [tf.constant(message)])]):
        return tf.constant([0, 0], tf.int32)


def _header_size(encoded):
    """`[height, width]` of a PNG (IHDR), JPEG (SOF, `tf.image.extract_jpeg_shape`) or BMP from
    its header, without decoding a pixel; an assertion error for anything else.

    GIF is refused: TensorFlow decodes every frame of a GIF before it could keep one, so an
    animation of a thousand frames would cost a thousand images' memory.
    """
    length = tf.strings.length(encoded)
    magic = tf.strings.substr(encoded, 0, 8)
    is_png = tf.logical_and(tf.equal(magic, b"\x89PNG\r\n\x1a\n"), length >= 33)
    is_jpeg = tf.strings.substr(encoded, 0, 3) == b"\xff\xd8\xff"
    is_bmp = tf.logical_and(tf.strings.substr(encoded, 0, 2) == b"BM", length >= 26)
    is_gif = tf.strings.substr(encoded, 0, 4) == b"GIF8"

    def png():
        width_height = tf.io.decode_raw(tf.strings.substr(encoded, 16, 8), tf.int32, little_endian=False)
        return tf.reverse(width_height, [0])

    def jpeg():
        return tf.image.extract_jpeg_shape(encoded)[:2]

    def bmp():
        width_height = tf.io.decode_raw(tf.strings.substr(encoded, 18, 8), tf.int32, little_endian=True)
        return tf.abs(tf.reverse(width_height, [0]))  # negative height: rows stored top-down

    return tf.case(
        [
            (is_png, png),
            (is_jpeg, jpeg),
            (is_bmp, bmp),
            (is_gif, lambda: _fail("keras_esrgan: GIF images are not accepted (an animated GIF "
                                   "would be decoded whole); send PNG or JPEG")),
        ],
        default=lambda: _fail("keras_esrgan: not a PNG, JPEG or BMP image (or truncated)"),
        exclusive=False,
    )


def serving_functions(generator, max_pixels=DEFAULT_MAX_PIXELS):
    """The two serving signatures as `tf.function`s (traced on first use).

    Returns:
        dict signature name -> `tf.function`:
        - `serving_default(images)`: uint8 `(B, H, W, num_in_ch)` -> `{"upscaled": uint8
          (B, scale*H, scale*W, num_out_ch)}`, clipped and rounded half to even (as
          `keras_esrgan.pixels.quantize`). H and W need not be multiples of the model's
          `input_multiple`: the input is edge-padded and the output cropped.
        - `upscale_image(image_bytes)`: string `(N,)` of encoded PNG/JPEG/BMP ->
          `{"png_bytes": string (N,)}` of PNG-encoded upscaled images. Images may differ in
          size; they are run one after another, so the budget applies per image, and it is
          checked on the size in each file's header before any pixel is decoded. Greyscale
          is expanded to RGB, alpha dropped, 16-bit PNGs reduced to 8 bits, an animated PNG
          gives its first frame; GIF is refused (TensorFlow would decode all its frames).
        Both raise `InvalidArgumentError` "keras_esrgan: input of 1 x 900 x 900 = 810000
        pixels exceeds the pixel budget max_pixels=262,144 ..." for inputs with more than
        `max_pixels` pixels (B x H x W), and a "... is empty" one for zero-size images and
        batches of 0.
    """
    check_generator(generator)
    max_pixels = int(max_pixels)
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be a positive integer, got {max_pixels}")
    scale, multiple = generator.scale, generator.input_multiple
    in_ch = generator.num_in_ch

    def upscale_uint8(images):
        h, w = tf.shape(images)[1], tf.shape(images)[2]
        x = tf_pad_to_multiple(tf_to_float(images), multiple)
        # The least-memory forward pass (RRDBNet: the upsampling tail in row chunks, the same
        # output as `generator(x)` for a fifth of the memory). Rounded as `Upscaler` rounds:
        # `pixels.quantize`'s half-to-even rule, in TensorFlow.
        y = generator.lean_call(x)
        return tf_quantize(y[:, : scale * h, : scale * w, :])

    @tf.function(
        input_signature=[tf.TensorSpec([None, None, None, in_ch], tf.uint8, name=IMAGES_INPUT)],
        autograph=False,
    )
    def serving_default(images):
        with tf.control_dependencies(_check_pixels(tf.shape(images), max_pixels, "input")):
            images = tf.identity(images)
        return {IMAGES_OUTPUT: upscale_uint8(images)}

    def upscale_one(encoded):
        # The size from the header first, so that a small request claiming a huge image costs
        # nothing: only what passes the budget is decoded (one frame: APNG gives its first).
        size = _header_size(encoded)
        shape = tf.concat([[1], size], axis=0)
        with tf.control_dependencies(_check_pixels(shape, max_pixels, "image")):
            encoded = tf.identity(encoded)
        image = tf.io.decode_image(encoded, channels=in_ch, dtype=tf.uint8, expand_animations=False)
        decoded = tf.shape(image)[:2]
        same = tf.debugging.Assert(
            tf.reduce_all(tf.equal(decoded, size)),
            [tf.strings.format("keras_esrgan: the image decodes to {} pixels where its header "
                               "says {}: corrupt file", (decoded, size))],
        )
        with tf.control_dependencies([same]):
            image = tf.identity(image)
        return tf.io.encode_png(upscale_uint8(image[None])[0])

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)], autograph=False)
    def upscale_image(image_bytes):
        # One image at a time (parallel_iterations=1): peak memory is one image's, not N's.
        png = tf.map_fn(
            upscale_one, image_bytes, fn_output_signature=tf.string, parallel_iterations=1
        )
        return {BYTES_OUTPUT: png}

    return {SERVING_DEFAULT: serving_default, UPSCALE_IMAGE: upscale_image}


def saved_model(
    generator,
    export_dir,
    name="esrgan",
    version=1,
    max_pixels=DEFAULT_MAX_PIXELS,
    overwrite=False,
):
    """Export `generator` as a SavedModel for TensorFlow Serving, at `export_dir/name/version/`.

    Args:
        generator: an `SRGenerator` such as `RRDBNet` (any scale, any dtype policy: a
            `mixed_bfloat16` generator serves in bfloat16).
        export_dir: the folder TF Serving's `base_path` points above: the model goes to
            `export_dir/name/version/` (`saved_model.pb`, `variables/`), the layout
            `tensorflow_model_server --model_base_path=export_dir/name` expects.
        name: model name (the `name` in `models.config` and in request URLs).
        version: positive integer version folder; Serving serves the highest by default.
        max_pixels: largest request accepted, in low-resolution pixels (batch x H x W for
            `serving_default`, H x W per image for `upscale_image`); bigger inputs fail with
            a clear `InvalidArgumentError` instead of exhausting the server's memory.
        overwrite: replace an existing version folder.

    Signatures (see `serving_functions`): `serving_default` uint8 `images` (B, H, W, C) ->
    uint8 `upscaled` (B, sH, sW, C); `upscale_image` string `image_bytes` (N,) of PNG/JPEG/BMP ->
    string `png_bytes` (N,) of PNG.

    Returns:
        The version folder's path.

    Example:
    >>> generator = keras_esrgan.load_generator("RRDB_ESRGAN_x4.pth")
    >>> path = saved_model(generator, "serving", name="esrgan")   # serving/esrgan/1
    >>> sig = tf.saved_model.load(path).signatures["serving_default"]
    >>> sig(images=tf.zeros((1, 32, 32, 3), tf.uint8))["upscaled"].shape
    TensorShape([1, 128, 128, 3])
    """
    if not name or os.sep in name or name in (".", ".."):
        raise ValueError(f"saved_model: name must be a plain folder name, got {name!r}")
    if int(version) != version or version < 1:
        raise ValueError(f"saved_model: version must be a positive integer, got {version!r}")
    target = os.path.join(os.fspath(export_dir), name, str(int(version)))
    if os.path.exists(target):
        if not overwrite:
            raise FileExistsError(f"{target} exists (pass overwrite=True to replace it)")
    functions = serving_functions(generator, max_pixels=max_pixels)
    module = variables_module(generator)
    signatures = {key: fn.get_concrete_function() for key, fn in functions.items()}
    # TF Serving polls the model's base folder and loads any new numeric version folder it sees;
    # renaming a complete folder into place means it never picks up a half-written version.
    with atomic_path(target, directory=True) as tmp:
        tf.saved_model.save(module, tmp, signatures=signatures)
    return target
