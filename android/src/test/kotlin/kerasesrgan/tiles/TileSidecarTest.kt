package kerasesrgan.tiles

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/** Reading the `.tflite` sidecar: the fields the tile loop needs, and clear errors. */
class TileSidecarTest {
    // The shape of a real `keras_esrgan.export.tflite` sidecar (fields abridged; the pytest
    // tests/test_android.py also reads a freshly exported one with PrintSidecar).
    private val sample = """
        {
          "format": "keras_esrgan.tflite/1",
          "model_file": "esrgan_fp16.tflite",
          "quantization": "fp16",
          "architecture": {"num_in_ch": 3, "num_feat": 64, "scale": 4},
          "scale": 4,
          "input": {"name": "serving_default_image:0", "shape": [1, 128, 128, 3], "dtype": "float32",
                    "quantization": null, "layout": "NHWC", "color": "RGB", "range": [0.0, 1.0],
                    "multiple_of": 1, "note": "float32 pixel / 255"},
          "output": {"name": "StatefulPartitionedCall:0", "shape": [1, 512, 512, 3],
                     "range": [0.0, 1.0], "clipped": false,
                     "note": "not clipped: byte = round(clamp(value, 0, 1) * 255)"},
          "tile": {"size": 128, "pad": 24},
          "calibration": null,
          "operators": {"CONV_2D": 351, "DEQUANTIZE": 351},
          "size_bytes": 33800000, "conversion_seconds": 16.02,
          "created": "2026-12-01T10:00:00+00:00",
          "versions": {"keras_esrgan": "0.1.0", "tensorflow": "2.21.0"}
        }
    """.trimIndent()

    private fun errorOf(json: String): String {
        try {
            TileSidecar.parse(json)
        } catch (e: IllegalArgumentException) {
            return e.message ?: ""
        }
        fail("expected IllegalArgumentException for $json")
        throw AssertionError()
    }

    @Test
    fun readsTheTileFields() {
        val sidecar = TileSidecar.parse(sample)
        assertEquals(128, sidecar.tileSize)
        assertEquals(24, sidecar.tilePad)
        assertEquals(4, sidecar.scale)
        assertEquals(1, sidecar.multipleOf)
        assertEquals("serving_default_image:0", sidecar.inputName)
        assertArrayEquals(intArrayOf(1, 128, 128, 3), sidecar.inputShape)
        assertArrayEquals(intArrayOf(1, 512, 512, 3), sidecar.outputShape)
        assertEquals("fp16", sidecar.quantization)
    }

    @Test
    fun upscalerTakesPadAndUnshuffleFactorFromTheSidecar() {
        val x2 = sample.replace("\"scale\": 4,\n", "\"scale\": 2,\n").replace("\"multiple_of\": 1", "\"multiple_of\": 2")
            .replace("\"pad\": 24", "\"pad\": 5").replace("[1, 128, 128, 3]", "[1, 16, 16, 3]")
        val upscaler = TiledUpscaler.fromSidecar(NearestModel(16, 2), TileSidecar.parse(x2))
        assertEquals(6, upscaler.pad) // rounded up to the unshuffle factor
        assertEquals(2, upscaler.unit)
        val image = Images.random(21, 13, 3, seed = 1)
        val got = upscaler.upscale(image, 21, 13)
        assertEquals(null, Images.firstDifference(Images.nearest(image, 21, 13, 3, 2), got))
    }

    @Test
    fun modelAndSidecarMustAgree() {
        val sidecar = TileSidecar.parse(sample)
        try {
            TiledUpscaler.fromSidecar(NearestModel(64), sidecar)
            fail("tile size mismatch accepted")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message, e.message!!.contains("tileSize 64 but the sidecar's input shape is [1, 128, 128, 3]"))
        }
        try {
            TiledUpscaler.fromSidecar(NearestModel(128, 2), sidecar)
            fail("scale mismatch accepted")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message, e.message!!.contains("model scale 2 but the sidecar says 4"))
        }
        try {
            TiledUpscaler.fromSidecar(NearestModel(128), TileSidecar.parse(sample.replace("[1, 128, 128, 3]", "[1, 128, 96, 3]")))
            fail("non-square input accepted")
        } catch (e: IllegalArgumentException) {
            assertTrue(e.message, e.message!!.contains("input shape is [1, 128, 96, 3]"))
        }
        // A dynamic-shape export (-1) takes the model's tile size, whatever it is.
        val dynamic = TileSidecar.parse(sample.replace("[1, 128, 128, 3]", "[1, -1, -1, 3]"))
        assertEquals(24, TiledUpscaler.fromSidecar(NearestModel(64), dynamic).pad)
    }

    @Test
    fun missingOrMistypedFieldsAreNamed() {
        assertEquals("sidecar: missing tile.pad", errorOf(sample.replace(", \"pad\": 24", "")))
        assertEquals("sidecar: missing scale", errorOf(sample.replace("\"scale\": 4,\n", "")))
        assertTrue(errorOf(sample.replace("\"pad\": 24", "\"pad\": 2.5")).contains("tile.pad must be an integer, got 2.5"))
        assertTrue(errorOf(sample.replace("\"tile\": {\"size\": 128, \"pad\": 24}", "\"tile\": 128")).contains("tile is not an object"))
        assertTrue(errorOf(sample.replace("[1, 512, 512, 3]", "[512, 512]")).contains("output.shape must be 4 integers"))
        assertTrue(errorOf(sample.replace("keras_esrgan.tflite/1", "other/2")).contains("format is other/2"))
        assertEquals("sidecar: the JSON is not an object", errorOf("[1, 2]"))
    }

    @Test
    fun invalidJsonSaysWhere() {
        assertTrue(errorOf("{\"a\": 1,}").contains("not valid JSON at character 8"))
        assertTrue(errorOf("{\"a\": 01}").contains("leading zero"))
        assertTrue(errorOf("{\"a\": \"x}").contains("unterminated string"))
        assertTrue(errorOf("{\"a\": tru}").contains("expected true"))
        assertTrue(errorOf("{} x").contains("unexpected text after the JSON value"))
        assertTrue(errorOf("").contains("unexpected end"))
    }

    @Test
    fun jsonValuesAreReadAsRfc8259Says() {
        val value = MiniJson.parse(
            """ {"s": "a\"b\\c\/d\n\t\u00e9\u20AC", "n": [-0, 1.5e3, -2E-2, 10], "b": [true, false, null],
                 "o": {"nested": {"deep": []}}, "e": {}} """
        ) as Map<*, *>
        assertEquals("a\"b\\c/d\n\té€", value["s"])
        assertEquals(listOf(-0.0, 1500.0, -0.02, 10.0), value["n"])
        assertEquals(listOf(true, false, null), value["b"])
        assertEquals(mapOf("nested" to mapOf("deep" to emptyList<Any>())), value["o"])
        assertEquals(emptyMap<String, Any>(), value["e"])
        assertEquals(listOf("s", "n", "b", "o", "e"), value.keys.toList())
    }
}
