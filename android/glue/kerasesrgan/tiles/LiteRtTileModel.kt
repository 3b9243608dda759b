// Android glue for kerasesrgan.tiles. NOT compiled by the tests: it needs the Android SDK
// (android.graphics.Bitmap, android.content.Context) and LiteRT's AAR
// (com.google.ai.edge.litert:litert), which the build machine has neither of. It is kept to the
// two conversions the tile loop cannot do itself; the loop (TiledUpscaler) is compiled and tested
// on the JVM (tests/test_android.py). Copy this file and android/src/main/kotlin into an app
// module. BUILD.md, "Android (LiteRT)", shows the wiring.
package kerasesrgan.tiles

import android.content.Context
import android.graphics.Bitmap
import org.tensorflow.lite.Interpreter
import java.io.FileInputStream
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel

/**
 * A LiteRT `Interpreter` over an exported keras-esrgan `.tflite` file, as a [TileModel].
 *
 * A fixed-shape export (`[1, 128, 128, 3]`) must match [tileSize]; a `--dynamic` one
 * (`[1, -1, -1, 3]`) is resized to it once, here, so XNNPACK plans a single shape.
 * The interpreter is the caller's: close it when done; one per thread.
 */
class LiteRtTileModel(
    private val interpreter: Interpreter,
    override val tileSize: Int,
    override val scale: Int
) : TileModel {
    private val inputBuffer =
        ByteBuffer.allocateDirect(4 * tileSize * tileSize * 3).order(ByteOrder.nativeOrder())
    private val outputBuffer =
        ByteBuffer.allocateDirect(4 * tileSize * tileSize * 3 * scale * scale).order(ByteOrder.nativeOrder())

    init {
        val tile = intArrayOf(1, tileSize, tileSize, 3)
        val signature = interpreter.getInputTensor(0).shapeSignature()
        if (signature[1] == -1 || signature[2] == -1) {
            interpreter.resizeInput(0, tile)
            interpreter.allocateTensors()
        }
        val input = interpreter.getInputTensor(0).shape()
        val output = interpreter.getOutputTensor(0).shape()
        val expected = intArrayOf(1, scale * tileSize, scale * tileSize, 3)
        require(input.contentEquals(tile) && output.contentEquals(expected)) {
            "LiteRtTileModel: model takes ${input.toList()} -> ${output.toList()}, " +
                "expected ${tile.toList()} -> ${expected.toList()} (tile $tileSize, scale $scale)"
        }
    }

    override fun run(input: FloatArray, output: FloatArray) {
        inputBuffer.rewind()
        inputBuffer.asFloatBuffer().put(input)
        outputBuffer.rewind()
        interpreter.run(inputBuffer, outputBuffer)
        outputBuffer.rewind()
        outputBuffer.asFloatBuffer().get(output)
    }

    companion object {
        /**
         * The model `<name>.tflite` and its sidecar `<name>.json` from the app's assets (the
         * `.tflite` stored uncompressed, `noCompress += "tflite"`, so it can be memory-mapped).
         */
        fun fromAssets(context: Context, name: String, threads: Int = 2): Pair<LiteRtTileModel, TileSidecar> {
            val sidecar = TileSidecar.parse(context.assets.open("$name.json").bufferedReader().use { it.readText() })
            val fd = context.assets.openFd("$name.tflite")
            val mapped = FileInputStream(fd.fileDescriptor).channel
                .map(FileChannel.MapMode.READ_ONLY, fd.startOffset, fd.declaredLength)
            val interpreter = Interpreter(mapped, Interpreter.Options().setNumThreads(threads))
            return Pair(LiteRtTileModel(interpreter, sidecar.tileSize, sidecar.scale), sidecar)
        }
    }
}

/**
 * Upscale a Bitmap: pixels out with `getPixels`, through the tile loop, into an ARGB_8888 Bitmap
 * `scale` times larger, one band of rows at a time (no second full-size pixel array).
 * Alpha is upscaled bilinearly beside the model (see [TiledUpscaler]).
 */
fun TiledUpscaler.upscale(source: Bitmap): Bitmap {
    // HARDWARE bitmaps (the ImageDecoder default) do not allow getPixels.
    val src = if (source.config == Bitmap.Config.HARDWARE) source.copy(Bitmap.Config.ARGB_8888, false) else source
    val w = src.width
    val h = src.height
    val pixels = IntArray(w * h)
    src.getPixels(pixels, 0, w, 0, 0, w, h)
    val dst = Bitmap.createBitmap(w * scale, h * scale, Bitmap.Config.ARGB_8888)
    upscaleArgb(pixels, w, h) { firstRow, rowCount, argb ->
        dst.setPixels(argb, 0, w * scale, 0, firstRow, w * scale, rowCount)
    }
    return dst
}
