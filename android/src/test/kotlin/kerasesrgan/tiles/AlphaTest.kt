package kerasesrgan.tiles

import org.junit.Assert.assertEquals
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Test

/** Alpha bypasses the model: bilinear beside it, constant alpha exactly kept, RGB unaffected. */
class AlphaTest {
    private val tile = 16

    @Test
    fun argbAlphaIsBilinearAndRgbIgnoresIt() {
        for ((w, h) in listOf(1 to 1, 2 to 3, 29 to 31, 47 to 20)) {
            val pixels = Images.argb(w, h, seed = (w + 31 * h).toLong(), alpha = null)
            val got = TiledUpscaler(NearestModel(tile), pad = 3, blend = 2).upscaleArgb(pixels, w, h)
            val alpha = DoubleArray(w * h) { (pixels[it] ushr 24).toDouble() }
            val expected = Images.bilinear(alpha, w, h, 4)
            var exact = 0
            for (i in got.indices) {
                val x = i % (4 * w)
                val y = i / (4 * w)
                val source = pixels[(y / 4) * w + x / 4]
                assertEquals("RGB at ($x, $y)", source and 0xFFFFFF, got[i] and 0xFFFFFF)
                val a = got[i] ushr 24
                // Float against double arithmetic may round an exact .5 either way: 1 level.
                assertTrue("alpha at ($x, $y): $a vs ${expected[i]}", Math.abs(a - expected[i]) <= 0.5 + 1e-3)
                if (a.toLong() == Math.round(expected[i])) exact++
            }
            assertTrue("${w}x$h: nearly all alpha rounds as the reference", exact >= got.size * 0.99)
        }
    }

    @Test
    fun constantAlphaStaysExactlyConstant() {
        for (a in intArrayOf(0x00, 0x01, 0x80, 0xFE, 0xFF)) {
            val pixels = Images.argb(21, 18, seed = a.toLong(), alpha = a)
            val got = TiledUpscaler(NearestModel(tile), pad = 2).upscaleArgb(pixels, 21, 18)
            for (i in got.indices) assertEquals("pixel $i", a, got[i] ushr 24)
        }
    }

    @Test
    fun floatRgbaAlphaIsBilinearAndRgbIsTheModels() {
        for ((w, h) in listOf(1 to 1, 3 to 1, 33 to 19)) {
            val image = Images.random(w, h, 4, seed = (w * h).toLong())
            val got = TiledUpscaler(NearestModel(tile), pad = 4, blend = 4).upscale(image, w, h, channels = 4)
            val expectedRgb = Images.nearest(image, w, h, 4, 4)
            val alpha = Images.bilinear(DoubleArray(w * h) { image[it * 4 + 3].toDouble() }, w, h, 4)
            for (p in alpha.indices) {
                for (c in 0 until 3) assertEquals("rgb $p", expectedRgb[p * 4 + c], got[p * 4 + c], 0f)
                assertEquals("alpha $p", alpha[p], got[p * 4 + 3].toDouble(), 1e-6)
            }
        }
    }

    @Test
    fun modelSeesTheSameRgbWithOrWithoutAlpha() {
        val w = 40
        val h = 25
        val rgba = Images.random(w, h, 4, seed = 12)
        val rgb = FloatArray(w * h * 3) { rgba[(it / 3) * 4 + it % 3] }
        val upscaler = TiledUpscaler(ContrastModel(tile), pad = 3, blend = 2)
        val withAlpha = upscaler.upscale(rgba, w, h, channels = 4)
        val without = upscaler.upscale(rgb, w, h, channels = 3)
        val stripped = FloatArray(without.size) { withAlpha[(it / 3) * 4 + it % 3] }
        assertNull(Images.firstDifference(without, stripped))
    }
}
