package kerasesrgan.tiles

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Test

/**
 * The tile arithmetic against a model whose untiled output is exactly known: with nearest x4 as
 * the model, tiling must give nearest x4 of the whole image, bit for bit, whatever the size.
 */
class TiledUpscalerTest {
    private val tile = 16

    // Odd sizes, 1-pixel images and lines, smaller than / equal to / one more than a tile, and
    // several tiles in each direction, none a multiple of the tile.
    private val sizes = listOf(
        1 to 1, 1 to 9, 9 to 1, 5 to 3, 15 to 16, 16 to 16, 17 to 16, 16 to 17,
        31 to 33, 47 to 29, 64 to 40, 100 to 7
    )

    // (pad, blend): no overlap, a hard cut, cross-fades, and the largest overlap the tile allows.
    private val overlaps = listOf(0 to 0, 1 to 0, 3 to 2, 4 to 4, 5 to 5, 7 to 1)

    @Test
    fun floatRgbEqualsNearestOfTheWholeImage() {
        for ((pad, blend) in overlaps) for ((w, h) in sizes) {
            val image = Images.random(w, h, 3, seed = (w * 1000 + h).toLong())
            val upscaler = TiledUpscaler(NearestModel(tile), pad, blend)
            val got = upscaler.upscale(image, w, h)
            val diff = Images.firstDifference(Images.nearest(image, w, h, 3, 4), got)
            assertNull("${w}x$h pad $pad blend $blend: $diff", diff)
        }
    }

    @Test
    fun argbEqualsNearestOfTheWholeImage() {
        for ((pad, blend) in overlaps) for ((w, h) in sizes) {
            val pixels = Images.argb(w, h, seed = (w * 7 + h).toLong())
            val got = TiledUpscaler(NearestModel(tile), pad, blend).upscaleArgb(pixels, w, h)
            val outW = 4 * w
            for (y in 0 until 4 * h) for (x in 0 until outW) {
                val expected = pixels[(y / 4) * w + x / 4]
                if (got[y * outW + x] != expected) {
                    fail("${w}x$h pad $pad blend $blend at ($x, $y): expected " +
                        "${Integer.toHexString(expected)}, got ${Integer.toHexString(got[y * outW + x])}")
                }
            }
        }
    }

    @Test
    fun onePixelImageGivesOneFlatOutputBlock() {
        val model = NearestModel(8)
        val got = TiledUpscaler(model, pad = 2).upscale(floatArrayOf(0.25f, 0.5f, 0.75f), 1, 1)
        assertEquals(16 * 3, got.size)
        for (p in 0 until 16) assertArrayEquals(floatArrayOf(0.25f, 0.5f, 0.75f), got.copyOfRange(3 * p, 3 * p + 3), 0f)
        assertEquals("one tile for a 1x1 image", 1, model.calls)
    }

    @Test
    fun smallImagesArePaddedByReplicatingTheLastRowAndColumn() {
        // The padding's output is cropped, but the model sees it next to real pixels: it must
        // continue the image (replicated edge), not be black or wrapped around.
        for ((w, h) in listOf(1 to 1, 5 to 3, 16 to 9, 9 to 16)) {
            val model = RecordingModel(tile)
            val image = Images.random(w, h, 3, seed = 11)
            TiledUpscaler(model, pad = 3).upscale(image, w, h)
            assertEquals(1, model.inputs.size)
            val input = model.inputs[0]
            for (j in 0 until tile) for (i in 0 until tile) for (c in 0 until 3) {
                val source = image[(minOf(j, h - 1) * w + minOf(i, w - 1)) * 3 + c]
                assertEquals("${w}x$h pixel ($i, $j)", source, input[(j * tile + i) * 3 + c], 0f)
            }
        }
    }

    @Test
    fun tileLargerThanTheImageRunsOnce() {
        val model = NearestModel(64)
        val image = Images.random(13, 7, 3, seed = 3)
        val got = TiledUpscaler(model, pad = 24).upscale(image, 13, 7)
        assertNull(Images.firstDifference(Images.nearest(image, 13, 7, 3, 4), got))
        assertEquals(1, model.calls)
    }

    @Test
    fun otherScalesAndTheSidecarDefaultTile() {
        // 128-pixel tiles with the sidecar's pad 24 on an image spanning 3 x 2 tiles, and x2 / x1.
        for ((scale, tileSize, pad) in listOf(Triple(4, 128, 24), Triple(2, 16, 3), Triple(1, 16, 5))) {
            val w = if (tileSize == 128) 201 else 37
            val h = if (tileSize == 128) 130 else 23
            val image = Images.random(w, h, 3, seed = scale.toLong())
            val got = TiledUpscaler(NearestModel(tileSize, scale), pad).upscale(image, w, h)
            assertNull("x$scale", Images.firstDifference(Images.nearest(image, w, h, 3, scale), got))
        }
    }

    @Test
    fun tilesAreFlushWithTheBorderAndAsFewAsTheOverlapAllows() {
        for ((pad, blend) in overlaps) for ((w, h) in sizes) {
            val model = TileIdModel(tile)
            val upscaler = TiledUpscaler(model, pad, blend)
            upscaler.upscale(Images.coordinates(w, h, seed = 1), w, h)
            val core = tile - 2 * pad - blend
            for ((length, axis) in listOf(w to 0, h to 1)) {
                val starts = model.origins.map { it[axis] }.distinct().sorted()
                assertEquals("first tile at the border", 0, starts.first())
                assertEquals("last tile flush with the far border", maxOf(0, length - tile), starts.last())
                for (k in 1 until starts.size) {
                    val step = starts[k] - starts[k - 1]
                    assertTrue("$length pad $pad blend $blend: step $step > core $core", step in 1..core)
                }
                val fewest = if (length <= tile) 1 else (length - tile + core - 1) / core + 1
                assertEquals("tiles along $length with core $core", fewest, starts.size)
            }
            val cols = model.origins.map { it[0] }.distinct().size
            val rows = model.origins.map { it[1] }.distinct().size
            assertEquals("a full grid, each tile once", cols * rows, model.origins.size)
            assertEquals(model.origins.size, upscaler.tilesRun)
        }
    }

    @Test
    fun unshuffleFactorAlignsTilesAndPadsOddSizes() {
        // An x2 model (unshuffle factor 2): tile starts stay even, odd sizes are edge-padded and
        // cropped, and pad/blend are rounded up to even.
        for ((w, h) in listOf(1 to 1, 17 to 9, 37 to 41, 16 to 15)) {
            val ids = TileIdModel(16, 2)
            val upscaler = TiledUpscaler(ids, pad = 3, blend = 1, unit = 2)
            assertEquals(4, upscaler.pad)
            assertEquals(2, upscaler.blend)
            upscaler.upscale(Images.coordinates(w, h, seed = 2), w, h)
            for (origin in ids.origins) assertTrue("odd tile start ${origin.toList()}", origin.all { it % 2 == 0 })
            val image = Images.random(w, h, 3, seed = 5)
            val got = TiledUpscaler(NearestModel(16, 2), pad = 3, blend = 1, unit = 2).upscale(image, w, h)
            assertNull("${w}x$h", Images.firstDifference(Images.nearest(image, w, h, 3, 2), got))
        }
    }

    @Test
    fun oneUpscalerServesImagesOfDifferentSizes() {
        val upscaler = TiledUpscaler(NearestModel(tile), pad = 3, blend = 2)
        for ((w, h) in listOf(40 to 30, 7 to 50, 40 to 30, 1 to 1, 33 to 17)) {
            val image = Images.random(w, h, 3, seed = (w + h).toLong())
            assertNull("${w}x$h", Images.firstDifference(Images.nearest(image, w, h, 3, 4), upscaler.upscale(image, w, h)))
        }
    }

    @Test
    fun argbRowsArriveInOrderOnceEachInBands() {
        val w = 45
        val h = 38
        val pixels = Images.argb(w, h, seed = 9)
        val upscaler = TiledUpscaler(NearestModel(tile), pad = 3, blend = 2)
        val whole = upscaler.upscaleArgb(pixels, w, h)
        var next = 0
        val streamed = IntArray(whole.size)
        upscaler.upscaleArgb(pixels, w, h) { first, count, argb ->
            assertEquals("bands in order, none skipped or repeated", next, first)
            assertTrue("band of $count rows", count in 1..tile * 4)
            System.arraycopy(argb, 0, streamed, first * 4 * w, count * 4 * w)
            next = first + count
        }
        assertEquals(4 * h, next)
        assertArrayEquals(whole, streamed)
    }

    @Test
    fun outputBytesAreRoundedAndClampedAsTheSidecarSays() {
        // byte = round(clamp(v, 0, 1) * 255) of the model's v = 1.5 * (b / 255) - 0.25.
        val w = 23
        val h = 19
        val pixels = Images.argb(w, h, seed = 4)
        val got = TiledUpscaler(ContrastModel(tile), pad = 2).upscaleArgb(pixels, w, h)
        fun expect(b: Int): Int {
            val v = 1.5 * (b / 255.0) - 0.25
            return Math.round(v.coerceIn(0.0, 1.0) * 255.0).toInt()
        }
        var clamped = 0
        for (y in 0 until 4 * h) for (x in 0 until 4 * w) {
            val p = pixels[(y / 4) * w + x / 4]
            val q = got[y * 4 * w + x]
            for (shift in intArrayOf(16, 8, 0)) {
                val b = p shr shift and 0xFF
                if (b < 43 || b > 212) clamped++
                assertEquals("channel byte $b at ($x, $y)", expect(b), q shr shift and 0xFF)
            }
        }
        assertTrue("some values were clamped", clamped > 0)
    }

    @Test
    fun badArgumentsAreRefusedWithClearMessages() {
        fun message(block: () -> Unit): String {
            try {
                block()
            } catch (e: IllegalArgumentException) {
                return e.message ?: ""
            }
            fail("expected IllegalArgumentException")
            throw AssertionError()
        }
        val model = NearestModel(tile)
        assertTrue(message { TiledUpscaler(model, pad = 6, blend = 4) }.contains("tileSize - 2 * pad - blend >= 1"))
        assertTrue(message { TiledUpscaler(model, pad = -1) }.contains("must be >= 0"))
        assertTrue(message { TiledUpscaler(NearestModel(15, 2), pad = 2, unit = 2) }.contains("not a multiple of the unshuffle factor 2"))
        val upscaler = TiledUpscaler(model, pad = 2)
        assertTrue(message { upscaler.upscale(FloatArray(11), 2, 2) }.contains("pixels has 11 values, expected width * height * channels = 2 * 2 * 3"))
        assertTrue(message { upscaler.upscale(FloatArray(8), 2, 2, channels = 2) }.contains("channels must be 3 (RGB) or 4 (RGBA)"))
        assertTrue(message { upscaler.upscaleArgb(IntArray(0), 0, 5) }.contains("at least 1, got 0 x 5"))
    }
}
