package kerasesrgan.tiles

import java.util.Random

/**
 * Stand-in models whose output is exactly known, and independent references for the tests.
 * Nothing here uses the classes under test.
 */

/** Nearest-neighbour upscaling of the tile: output pixel (X, Y) = input pixel (X / s, Y / s). */
open class NearestModel(override val tileSize: Int, override val scale: Int = 4) : TileModel {
    var calls = 0

    override fun run(input: FloatArray, output: FloatArray) {
        calls++
        val side = tileSize * scale
        for (y in 0 until side) for (x in 0 until side) {
            val src = ((y / scale) * tileSize + x / scale) * 3
            val dst = (y * side + x) * 3
            for (c in 0 until 3) output[dst + c] = input[src + c]
        }
    }
}

/**
 * Nearest x[scale], except that every output pixel that lacks context is NaN: those whose centre
 * is within [pad] input pixels of an inner tile edge. Which edges are inner the model reads from
 * its input, whose red and green channels hold each pixel's x and y in the image ([coordinate]
 * decodes a channel value; padding replicates the last row and column, so a tile edge on the
 * image border shows 0 or the last index). A tiled pass that ever gives weight to such a pixel
 * has NaN in its output (or, converted to bytes, 0).
 */
class ContextPoisonModel(
    tileSize: Int,
    scale: Int,
    private val pad: Int,
    private val width: Int,
    private val height: Int,
    private val coordinate: (Float) -> Float = { it }
) : NearestModel(tileSize, scale) {
    var poisoned = 0L

    override fun run(input: FloatArray, output: FloatArray) {
        super.run(input, output)
        val t = tileSize
        val leftInner = coordinate(input[0]) != 0f
        val rightInner = coordinate(input[(t - 1) * 3]) != (width - 1).toFloat()
        val topInner = coordinate(input[1]) != 0f
        val bottomInner = coordinate(input[((t - 1) * t) * 3 + 1]) != (height - 1).toFloat()
        val side = t * scale
        for (y in 0 until side) for (x in 0 until side) {
            val cx = (x + 0.5) / scale
            val cy = (y + 0.5) / scale
            val noContext = (leftInner && cx <= pad) || (rightInner && t - cx <= pad) ||
                (topInner && cy <= pad) || (bottomInner && t - cy <= pad)
            if (noContext) {
                poisoned++
                for (c in 0 until 3) output[(y * side + x) * 3 + c] = Float.NaN
            }
        }
    }
}

/**
 * Writes one constant per call, `10 * call number`, to the whole output tile, and records where
 * each tile came from (its first pixel's x and y, read from coordinate-carrying input).
 */
class TileIdModel(override val tileSize: Int, override val scale: Int = 4) : TileModel {
    val origins = ArrayList<IntArray>()

    override fun run(input: FloatArray, output: FloatArray) {
        origins.add(intArrayOf(input[0].toInt(), input[1].toInt()))
        output.fill(10f * origins.size)
    }
}

/** Nearest x[scale] that also keeps a copy of every input tile it was given. */
class RecordingModel(tileSize: Int, scale: Int = 4) : NearestModel(tileSize, scale) {
    val inputs = ArrayList<FloatArray>()

    override fun run(input: FloatArray, output: FloatArray) {
        inputs.add(input.copyOf())
        super.run(input, output)
    }
}

/**
 * An affine colour change, `1.5 * v - 0.25`, so outputs leave [0, 1] and must be clamped (for
 * bytes b, `255 * v` is never a tie: it ends in .25 or .75).
 */
class ContrastModel(tileSize: Int, scale: Int = 4) : NearestModel(tileSize, scale) {
    override fun run(input: FloatArray, output: FloatArray) {
        super.run(input, output)
        for (i in output.indices) output[i] = 1.5f * output[i] - 0.25f
    }
}

object Images {
    /** Random floats in [0, 1), `width * height * channels`. */
    fun random(width: Int, height: Int, channels: Int, seed: Long): FloatArray {
        val rng = Random(seed)
        return FloatArray(width * height * channels) { rng.nextFloat() }
    }

    /** Red = x, green = y, blue random: each pixel says where it is. */
    fun coordinates(width: Int, height: Int, seed: Long): FloatArray {
        val rng = Random(seed)
        val image = FloatArray(width * height * 3)
        for (y in 0 until height) for (x in 0 until width) {
            val p = (y * width + x) * 3
            image[p] = x.toFloat()
            image[p + 1] = y.toFloat()
            image[p + 2] = rng.nextFloat()
        }
        return image
    }

    /** Random ARGB pixels; `alpha` null for random alpha, else that alpha everywhere. */
    fun argb(width: Int, height: Int, seed: Long, alpha: Int? = 0xFF): IntArray {
        val rng = Random(seed)
        return IntArray(width * height) {
            val a = alpha ?: rng.nextInt(256)
            (a shl 24) or (rng.nextInt(1 shl 24))
        }
    }

    /** Nearest x[scale] of the first three channels of an interleaved image (others zero). */
    fun nearest(image: FloatArray, width: Int, height: Int, channels: Int, scale: Int): FloatArray {
        val outW = width * scale
        val out = FloatArray(outW * height * scale * channels)
        for (y in 0 until height * scale) for (x in 0 until outW) {
            for (c in 0 until 3) {
                out[(y * outW + x) * channels + c] = image[((y / scale) * width + x / scale) * channels + c]
            }
        }
        return out
    }

    /**
     * Bilinear x[scale] of a `width * height` plane, half-pixel centres, coordinates clamped to
     * the image (computed in double).
     */
    fun bilinear(plane: DoubleArray, width: Int, height: Int, scale: Int): DoubleArray {
        val outW = width * scale
        val out = DoubleArray(outW * height * scale)
        for (y in 0 until height * scale) for (x in 0 until outW) {
            val sx = ((x + 0.5) / scale - 0.5).coerceIn(0.0, width - 1.0)
            val sy = ((y + 0.5) / scale - 0.5).coerceIn(0.0, height - 1.0)
            val x0 = Math.floor(sx).toInt()
            val y0 = Math.floor(sy).toInt()
            val x1 = minOf(x0 + 1, width - 1)
            val y1 = minOf(y0 + 1, height - 1)
            val fx = sx - x0
            val fy = sy - y0
            fun at(px: Int, py: Int) = plane[py * width + px]
            out[y * outW + x] = (1 - fy) * ((1 - fx) * at(x0, y0) + fx * at(x1, y0)) +
                fy * ((1 - fx) * at(x0, y1) + fx * at(x1, y1))
        }
        return out
    }

    /** Index and values of the first difference between two float arrays, or null if equal. */
    fun firstDifference(expected: FloatArray, actual: FloatArray): String? {
        if (expected.size != actual.size) return "sizes ${expected.size} and ${actual.size}"
        for (i in expected.indices) {
            // Bit equality: also catches NaN and -0.0 / 0.0 differences.
            if (expected[i].toRawBits() != actual[i].toRawBits()) {
                return "index $i: expected ${expected[i]}, got ${actual[i]}"
            }
        }
        return null
    }
}
