package kerasesrgan.tiles

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test

/**
 * Cropping and blending arithmetic: no output pixel is ever taken from a tile's context band,
 * and where tiles overlap the output is the weighted mean the scheme defines.
 */
class BlendingTest {
    private val tile = 16
    private val sizes = listOf(1 to 1, 5 to 3, 17 to 16, 31 to 33, 47 to 29, 64 to 40)
    private val overlaps = listOf(1 to 0, 3 to 2, 4 to 4, 5 to 5, 7 to 1)

    @Test
    fun noPixelIsTakenFromThePaddedContext() {
        var poisoned = 0L
        for ((pad, blend) in overlaps) for ((w, h) in sizes) {
            val model = ContextPoisonModel(tile, 4, pad, w, h)
            val image = Images.coordinates(w, h, seed = (w * h).toLong())
            val got = TiledUpscaler(model, pad, blend).upscale(image, w, h)
            val diff = Images.firstDifference(Images.nearest(image, w, h, 3, 4), got)
            assertNull("${w}x$h pad $pad blend $blend: $diff", diff)
            poisoned += model.poisoned
        }
        assertTrue("the stand-in poisoned context pixels", poisoned > 0)
    }

    @Test
    fun contextPoisonAlsoNeverReachesArgbOutput() {
        // Bytes go through the same band; poisoned context would turn into byte 0. Red and green
        // carry x and y (the image is under 256 pixels wide and high), blue is random.
        val w = 50
        val h = 37
        val rng = java.util.Random(8)
        val pixels = IntArray(w * h) { (0xFF shl 24) or (it % w shl 16) or (it / w shl 8) or rng.nextInt(256) }
        val model = ContextPoisonModel(tile, 4, 3, w, h) { Math.round(it * 255f).toFloat() }
        val got = TiledUpscaler(model, pad = 3, blend = 2).upscaleArgb(pixels, w, h)
        for (y in 0 until 4 * h) for (x in 0 until 4 * w) {
            assertEquals("($x, $y)", pixels[(y / 4) * w + x / 4], got[y * 4 * w + x])
        }
        assertTrue("the stand-in poisoned context pixels", model.poisoned > 0)
    }

    @Test
    fun overlapsAreTheWeightedMeanOfTheScheme() {
        for ((pad, blend) in overlaps) for ((w, h) in sizes) {
            val model = TileIdModel(tile)
            val got = TiledUpscaler(model, pad, blend).upscale(Images.coordinates(w, h, seed = 3), w, h)
            val expected = referenceBlend(model.origins, w, h, pad, blend, 4)
            var mixed = 0
            for (i in expected.indices) {
                val e = expected[i]
                for (c in 0 until 3) {
                    val g = got[i * 3 + c].toDouble()
                    assertEquals("${w}x$h pad $pad blend $blend pixel $i", e, g, 1e-4 * e)
                }
                if (e % 10.0 != 0.0) mixed++
            }
            val tiles = model.origins.size
            if (blend > 0 && tiles > 1) assertTrue("${w}x$h: cross-fades happen", mixed > 0)
            if (tiles == 1) assertEquals(0, mixed)
        }
    }

    @Test
    fun hardCutWithExactOverlapGivesEachPixelToOneTile() {
        // 2 tiles of 16 over 26 pixels overlap by 6 = 2 * pad: every output pixel is one tile's.
        val model = TileIdModel(tile)
        val got = TiledUpscaler(model, pad = 3).upscale(Images.coordinates(26, 1, seed = 0), 26, 1)
        assertEquals(listOf(0, 10), model.origins.map { it[0] })
        for (x in 0 until 4 * 26) {
            val expected = if (x < 4 * 13) 10f else 20f // cut in the middle of the overlap
            assertEquals("output column $x", expected, got[x * 3], 0f)
        }
    }

    @Test
    fun crossFadeIsLinearOverTheBlendWidth() {
        // Tiles at 0 and 8 over 24 pixels, pad 2, blend 4: the second tile's weight is 0 up to
        // input x = 10, rises linearly to 1 at 14, while the first's falls from 1 at 10 to 0
        // at 14; the mean moves linearly from 10 to 20 in between.
        val model = TileIdModel(tile)
        val got = TiledUpscaler(model, pad = 2, blend = 4).upscale(Images.coordinates(24, 1, seed = 0), 24, 1)
        assertEquals(listOf(0, 8), model.origins.map { it[0] })
        for (x in 0 until 4 * 24) {
            val centre = (x + 0.5) / 4
            val second = ((centre - 10) / 4).coerceIn(0.0, 1.0)
            val first = ((14 - centre) / 4).coerceIn(0.0, 1.0)
            val expected = (10 * first + 20 * second) / (first + second)
            assertEquals("output column $x", expected, got[x * 3].toDouble(), 1e-5)
        }
    }

    /**
     * The blended value at every output pixel, from the scheme's definition: tile k at (x0, y0)
     * contributes `10 * (k + 1)` with weight `ramp(dx) * ramp(dy)`, d being the distance of the
     * pixel centre to the tile's inner edges (edges on the image border do not count), ramp 0
     * up to `pad`, then linear to 1 at `pad + blend` (a step after `pad` when blend is 0).
     */
    private fun referenceBlend(
        origins: List<IntArray>, w: Int, h: Int, pad: Int, blend: Int, scale: Int
    ): DoubleArray {
        fun ramp(d: Double) =
            if (blend == 0) (if (d > pad) 1.0 else 0.0) else ((d - pad) / blend).coerceIn(0.0, 1.0)
        fun weight(centre: Double, start: Int, length: Int): Double {
            if (centre < start || centre >= start + tile) return 0.0
            var d = Double.POSITIVE_INFINITY
            if (start > 0) d = centre - start
            if (start + tile < length) d = minOf(d, start + tile - centre)
            return ramp(d)
        }
        val out = DoubleArray(w * scale * h * scale)
        for (y in 0 until h * scale) for (x in 0 until w * scale) {
            var sum = 0.0
            var total = 0.0
            for ((k, origin) in origins.withIndex()) {
                val weight = weight((x + 0.5) / scale, origin[0], w) * weight((y + 0.5) / scale, origin[1], h)
                sum += weight * 10.0 * (k + 1)
                total += weight
            }
            assertTrue("output ($x, $y) has weight", total > 0)
            out[y * w * scale + x] = sum / total
        }
        return out
    }
}
