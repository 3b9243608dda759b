package kerasesrgan.tiles

/**
 * Upscales images of any size with a [TileModel] that takes one fixed-size tile per call.
 *
 * Tiles overlap by at least `2 * pad + blend` input pixels and are placed and weighted as
 * [TileAxis] describes (the scheme of the Python `keras_esrgan.Upscaler`): edge tiles are flush
 * with the image border, output pixels within [pad] input pixels of a tile's inner edge are never
 * used, and beyond them neighbouring tiles cross-fade over [blend] pixels (0: a hard cut). Images
 * smaller than a tile, and sizes that are not a multiple of the unshuffle factor, are padded by
 * replicating the last row and column; that padding's output is cropped.
 *
 * Blending is a running weighted mean, `mean += w / (sum of w so far) * (value - mean)`, per
 * output pixel: the same weighted average as normalising the weights first, but exact wherever
 * the tiles agree (the mean does not move when a value equals it), so a model whose tiles agree
 * reproduces its untiled output bit for bit, and a tile's weight-0 pixels are skipped, never
 * multiplied by 0 (a NaN or garbage there cannot leak into the output).
 *
 * Alpha never goes through the model (it is RGB only): it is upscaled bilinearly (half-pixel
 * centres, edges clamped) beside it, so a constant alpha, e.g. a fully opaque image, stays
 * exactly constant.
 * The RGB under fully transparent pixels is taken as it is: `Bitmap.getPixels` gives black
 * there, which the model can smear into the visible edge; the Python `Upscaler` fills such
 * pixels from their visible neighbours first, this loop does not.
 *
 * Memory besides input and output: the model's two tile buffers and a band of
 * `tileSize * scale` output rows, 16 bytes per output pixel of the band (`16 * 512 * 4096` =
 * 32 MiB for a 1024-pixel-wide image with 128-pixel x4 tiles). Not thread-safe: one
 * instance per thread, as for a LiteRT `Interpreter`.
 *
 * @param model the network; called once per tile with reused arrays.
 * @param pad context pixels per tile side whose output is never used: the sidecar's `tile.pad`
 *   (the default 24 measured 46.5 dB against one untiled pass on the full model with trained
 *   weights, 32 gave 52 dB; BUILD.md has the figures).
 * @param blend cross-fade width in input pixels beyond [pad]; each tile then adds
 *   `tileSize - 2 * pad - blend` new pixels per side, so a wider blend costs more tiles.
 * @param unit the model's pixel-unshuffle factor (the sidecar's `input.multiple_of`: 1 for x4,
 *   2 for x2, 4 for x1 models); [pad] and [blend] are rounded up to multiples of it.
 */
class TiledUpscaler(
    val model: TileModel,
    pad: Int,
    blend: Int = 0,
    val unit: Int = 1
) {
    val tileSize: Int = model.tileSize
    val scale: Int = model.scale
    val pad: Int = roundUp(pad, unit)
    val blend: Int = roundUp(blend, unit)

    /** How many [TileModel.run] calls the last `upscale` made. */
    var tilesRun: Int = 0
        private set

    private val input: FloatArray
    private val output: FloatArray
    private val outTile: Int = tileSize * scale

    init {
        require(tileSize >= 1 && scale >= 1) {
            "TiledUpscaler: model tileSize ($tileSize) and scale ($scale) must be positive"
        }
        require(pad >= 0 && blend >= 0) { "TiledUpscaler: pad $pad and blend $blend must be >= 0" }
        require(unit >= 1 && tileSize % unit == 0) {
            "TiledUpscaler: tile size $tileSize is not a multiple of the unshuffle factor $unit"
        }
        val core = tileSize - 2 * this.pad - this.blend
        require(core >= unit) {
            "TiledUpscaler: a $tileSize-pixel tile with pad ${this.pad} and blend ${this.blend} " +
                "leaves $core new pixels per tile; need tileSize - 2 * pad - blend >= $unit"
        }
        input = FloatArray(tileSize * tileSize * 3)
        output = FloatArray(outTile * outTile * 3)
    }

    /**
     * Upscale an interleaved float image: `pixels[(y * width + x) * channels + c]`, RGB in
     * [0, 1] (`channels = 3`) or RGBA with straight alpha (`channels = 4`).
     *
     * @return `(scale * height) * (scale * width) * channels` floats in the same layout: the
     *   model's RGB as it is (not clipped) and, for RGBA, the bilinearly upscaled alpha.
     */
    fun upscale(pixels: FloatArray, width: Int, height: Int, channels: Int = 3): FloatArray {
        require(channels == 3 || channels == 4) {
            "upscale: channels must be 3 (RGB) or 4 (RGBA), got $channels"
        }
        checkSize("pixels", pixels.size, width, height, channels)
        val outW = width * scale
        val result = FloatArray(outW * height * scale * channels)
        val alpha = if (channels == 4) AlphaResampler(width, height, scale) else null
        tiles(
            width, height,
            { x, y, dst, at ->
                val p = (y * width + x) * channels
                dst[at] = pixels[p]
                dst[at + 1] = pixels[p + 1]
                dst[at + 2] = pixels[p + 2]
            },
            { y, rows, first ->
                for (row in 0 until rows) {
                    val base = (y + row) * outW
                    val from = (first + row * outW) * 3
                    for (x in 0 until outW) {
                        val o = (base + x) * channels
                        result[o] = bandRgb[from + x * 3]
                        result[o + 1] = bandRgb[from + x * 3 + 1]
                        result[o + 2] = bandRgb[from + x * 3 + 2]
                    }
                    if (alpha != null) {
                        alpha.row(y + row) { i -> pixels[i * channels + 3] }
                        for (x in 0 until outW) result[(base + x) * channels + 3] = alpha.values[x]
                    }
                }
            }
        )
        return result
    }

    /**
     * Upscale ARGB pixels as `Bitmap.getPixels` gives them (`0xAARRGGBB`, straight alpha, row
     * by row) and hand the result to [sink] a band of rows at a time, top to bottom, so an app
     * can `setPixels` each band into its output Bitmap without a second full-size copy.
     *
     * Colour is converted as the `.tflite` sidecar says: input `byte / 255`, output
     * `round(clamp(value, 0, 1) * 255)`.
     *
     * @param sink called as `sink(firstRow, rowCount, argb)` with `argb[0 until rowCount *
     *   scale * width]` holding output rows `firstRow until firstRow + rowCount`; the array is
     *   reused after the call returns.
     */
    fun upscaleArgb(
        pixels: IntArray,
        width: Int,
        height: Int,
        sink: (firstRow: Int, rowCount: Int, argb: IntArray) -> Unit
    ) {
        checkSize("pixels", pixels.size, width, height, 1)
        val outW = width * scale
        val alpha = AlphaResampler(width, height, scale)
        val opaque = pixels.all { it ushr 24 == 0xFF }
        val rows = IntArray(outTile * outW)
        tiles(
            width, height,
            { x, y, dst, at ->
                val p = pixels[y * width + x]
                dst[at] = (p shr 16 and 0xFF) / 255f
                dst[at + 1] = (p shr 8 and 0xFF) / 255f
                dst[at + 2] = (p and 0xFF) / 255f
            },
            { y, count, first ->
                for (row in 0 until count) {
                    val from = (first + row * outW) * 3
                    if (!opaque) alpha.row(y + row) { i -> (pixels[i] ushr 24).toFloat() }
                    for (x in 0 until outW) {
                        val a = if (opaque) 0xFF else (alpha.values[x] + 0.5f).toInt()
                        rows[row * outW + x] = (a shl 24) or
                            (toByte(bandRgb[from + x * 3]) shl 16) or
                            (toByte(bandRgb[from + x * 3 + 1]) shl 8) or
                            toByte(bandRgb[from + x * 3 + 2])
                    }
                }
                sink(y, count, rows)
            }
        )
    }

    /** [upscaleArgb] into one `(scale * width) * (scale * height)` ARGB array. */
    fun upscaleArgb(pixels: IntArray, width: Int, height: Int): IntArray {
        val outW = width * scale
        val result = IntArray(outW * height * scale)
        upscaleArgb(pixels, width, height) { first, count, argb ->
            System.arraycopy(argb, 0, result, first * outW, count * outW)
        }
        return result
    }

    // Blended RGB (running mean) and the sum of weights so far, for `outTile` output rows kept
    // in a ring: output row Y lives in slot Y % outTile. Reallocated when the width changes.
    private var bandRgb = FloatArray(0)
    private var bandWeight = FloatArray(0)

    /**
     * The tile loop: fill each tile through [read] (clamped to the image: edge replication),
     * run the model, blend its output into the band, and pass finished rows to [emit] as
     * `emit(firstRow, rowCount, firstPixelInBand)` (the rows are consecutive in the band's ring
     * only within one call, so [emit] is called once per contiguous run of slots).
     */
    private inline fun tiles(
        width: Int,
        height: Int,
        read: (x: Int, y: Int, dst: FloatArray, at: Int) -> Unit,
        emit: (firstRow: Int, rowCount: Int, firstPixel: Int) -> Unit
    ) {
        val rows = TileAxis(height, tileSize, pad, blend, scale, unit)
        val cols = TileAxis(width, tileSize, pad, blend, scale, unit)
        val outW = width * scale
        val outH = height * scale
        if (bandRgb.size != outTile * outW * 3) {
            bandRgb = FloatArray(outTile * outW * 3)
            bandWeight = FloatArray(outTile * outW)
        } else {
            bandRgb.fill(0f)
            bandWeight.fill(0f)
        }
        tilesRun = 0
        var flushed = 0 // output rows before this one are final and emitted
        for (r in 0 until rows.count) {
            val y0 = rows.starts[r]
            val rowWeights = rows.weights[r]
            for (c in 0 until cols.count) {
                val x0 = cols.starts[c]
                for (j in 0 until tileSize) {
                    val y = minOf(y0 + j, height - 1)
                    for (i in 0 until tileSize) {
                        read(minOf(x0 + i, width - 1), y, input, (j * tileSize + i) * 3)
                    }
                }
                model.run(input, output)
                tilesRun++
                accumulate(y0 * scale, x0 * scale, rowWeights, cols.weights[c], outW, outH)
            }
            val done = if (r + 1 < rows.count) rows.starts[r + 1] * scale else outH
            while (flushed < done) {
                val slot = flushed % outTile
                val count = minOf(done - flushed, outTile - slot)
                emit(flushed, count, slot * outW)
                bandRgb.fill(0f, slot * outW * 3, (slot + count) * outW * 3)
                bandWeight.fill(0f, slot * outW, (slot + count) * outW)
                flushed += count
            }
        }
    }

    private fun accumulate(
        top: Int,
        left: Int,
        rowWeights: FloatArray,
        colWeights: FloatArray,
        outW: Int,
        outH: Int
    ) {
        val rgb = bandRgb
        val total = bandWeight
        for (j in 0 until minOf(outTile, outH - top)) {
            val wy = rowWeights[j]
            if (wy == 0f) continue
            val rowBase = (top + j) % outTile * outW + left
            for (i in 0 until minOf(outTile, outW - left)) {
                val w = wy * colWeights[i]
                if (w == 0f) continue
                val p = rowBase + i
                val sum = total[p] + w
                total[p] = sum
                val f = w / sum
                val o = (j * outTile + i) * 3
                val a = p * 3
                rgb[a] += f * (output[o] - rgb[a])
                rgb[a + 1] += f * (output[o + 1] - rgb[a + 1])
                rgb[a + 2] += f * (output[o + 2] - rgb[a + 2])
            }
        }
    }

    companion object {
        /**
         * A [TiledUpscaler] set up from the model's JSON sidecar: `tile.pad`, `input.multiple_of`,
         * checking that the model's tile size and scale are the sidecar's.
         */
        fun fromSidecar(model: TileModel, sidecar: TileSidecar, blend: Int = 0): TiledUpscaler {
            require(model.scale == sidecar.scale) {
                "TiledUpscaler: model scale ${model.scale} but the sidecar says ${sidecar.scale}"
            }
            val (height, width) = Pair(sidecar.inputShape[1], sidecar.inputShape[2])
            require((height == -1 || height == model.tileSize) && (width == -1 || width == model.tileSize)) {
                "TiledUpscaler: model tileSize ${model.tileSize} but the sidecar's input shape is " +
                    sidecar.inputShape.joinToString(prefix = "[", postfix = "]")
            }
            return TiledUpscaler(model, sidecar.tilePad, blend, sidecar.multipleOf)
        }

        private fun roundUp(value: Int, unit: Int) =
            if (unit < 1 || value < 0) value else (value + unit - 1) / unit * unit

        private fun toByte(v: Float): Int = (v.coerceIn(0f, 1f) * 255f + 0.5f).toInt()

        private fun checkSize(name: String, size: Int, width: Int, height: Int, channels: Int) {
            require(width >= 1 && height >= 1) {
                "upscale: width and height must be at least 1, got $width x $height"
            }
            require(size.toLong() == width.toLong() * height * channels) {
                "upscale: $name has $size values, expected width * height * channels = " +
                    "$width * $height * $channels"
            }
        }
    }
}

/**
 * Bilinear upscaling by an integer factor, one output row at a time: half-pixel centres
 * (output pixel X samples source `(X + 0.5) / scale - 0.5`), edges clamped. Written as
 * `a + f * (b - a)`, so equal neighbours give exactly their value.
 */
internal class AlphaResampler(private val width: Int, private val height: Int, private val scale: Int) {
    /** The last output row computed by [row], `scale * width` values. */
    val values = FloatArray(width * scale)
    private val x0 = IntArray(width * scale)
    private val x1 = IntArray(width * scale)
    private val fx = FloatArray(width * scale)
    private val column = FloatArray(width)

    init {
        for (x in 0 until width * scale) {
            val s = (x + 0.5f) / scale - 0.5f
            val left = Math.floor(s.toDouble()).toInt()
            x0[x] = left.coerceIn(0, width - 1)
            x1[x] = (left + 1).coerceIn(0, width - 1)
            fx[x] = s - left
        }
    }

    /** Fill [values] with output row [y]; [source] gives the source value at `y * width + x`. */
    fun row(y: Int, source: (index: Int) -> Float) {
        val s = (y + 0.5f) / scale - 0.5f
        val up = Math.floor(s.toDouble()).toInt()
        val fy = s - up
        val r0 = up.coerceIn(0, height - 1) * width
        val r1 = (up + 1).coerceIn(0, height - 1) * width
        for (x in 0 until width) {
            val a = source(r0 + x)
            column[x] = a + fy * (source(r1 + x) - a)
        }
        for (x in values.indices) {
            val a = column[x0[x]]
            values[x] = a + fx[x] * (column[x1[x]] - a)
        }
    }
}
