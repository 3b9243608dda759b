package kerasesrgan.tiles

/**
 * Where the tiles go along one image axis, and how much each of their output pixels counts.
 *
 * The same scheme as the Python `Upscaler` (`keras_esrgan.inference.tile_windows` and
 * `blend_weights`), for a model with one fixed tile size:
 * - The axis is first padded up to a multiple of [unit] (the model's pixel-unshuffle factor, 1
 *   for x4 models) and, when shorter than a tile, up to one tile: the padding replicates the
 *   last row/column and its output is cropped away.
 * - Tiles are evenly spaced, the first flush with the start and the last flush with the end of
 *   the axis, so a tile never reaches past the image when the image is at least a tile long: edge
 *   tiles see the real image border, as one untiled pass would. Starts are multiples of [unit],
 *   so every tile's pixel-unshuffle blocks line up with those of an untiled pass.
 * - Neighbours overlap by at least `2 * pad + blend` input pixels. An output pixel whose centre is
 *   within `pad` input pixels of a tile's inner edge (an edge that is not the image border) gets
 *   weight 0 in that tile: it lacks context there and is never used. The weight rises linearly to
 *   1 at `pad + blend` (`blend = 0`: a hard cut). Every output pixel has weight in some tile.
 *
 * @property length the image length along this axis, in input pixels.
 * @property starts first input pixel of each tile (tiles are `tile` pixels long).
 * @property weights per tile, the blend weight of each of its `tile * scale` output pixels
 *   (before normalisation: [TiledUpscaler] divides by the sum over the tiles).
 */
class TileAxis(
    val length: Int,
    val tile: Int,
    val pad: Int,
    val blend: Int,
    val scale: Int,
    val unit: Int = 1
) {
    /** The axis length after padding to a multiple of [unit]; tiles cover `[0, padded)`. */
    val padded: Int = (length + unit - 1) / unit * unit

    val starts: IntArray

    val weights: Array<FloatArray>

    init {
        require(length >= 1) { "TileAxis: length must be at least 1, got $length" }
        require(unit >= 1 && tile >= unit && tile % unit == 0) {
            "TileAxis: tile $tile must be a positive multiple of the unshuffle factor $unit"
        }
        require(pad >= 0 && blend >= 0) { "TileAxis: pad $pad and blend $blend must be >= 0" }
        val core = tile - 2 * pad - blend
        require(core >= unit && core % unit == 0) {
            "TileAxis: a $tile-pixel tile with pad $pad and blend $blend adds $core new pixels " +
                "per tile; it must be a positive multiple of $unit (use a smaller pad or blend)"
        }
        starts = tileStarts(padded, tile, core, unit)
        weights = Array(starts.size) { k -> rampWeights(starts[k]) }
        checkCovered()
    }

    /** Number of tiles along this axis. */
    val count: Int
        get() = starts.size

    private fun rampWeights(start: Int): FloatArray {
        val stop = start + tile
        return FloatArray(tile * scale) { k ->
            // Output pixel k's centre, in input pixels from the tile's start.
            val centre = (k + 0.5) / scale
            var distance = Double.POSITIVE_INFINITY
            if (start > 0) distance = centre
            if (stop < padded) distance = minOf(distance, tile - centre)
            ramp(distance).toFloat()
        }
    }

    private fun ramp(distance: Double): Double =
        if (blend == 0) {
            if (distance > pad) 1.0 else 0.0
        } else {
            ((distance - pad) / blend).coerceIn(0.0, 1.0)
        }

    private fun checkCovered() {
        val total = DoubleArray(padded * scale)
        for (k in starts.indices) {
            val offset = starts[k] * scale
            for (i in weights[k].indices) {
                if (offset + i < total.size) total[offset + i] += weights[k][i].toDouble()
            }
        }
        val gap = total.indexOfFirst { it <= 0.0 }
        check(gap < 0) { "TileAxis: output pixel $gap of $length x $scale gets no weight" }
    }

    companion object {
        /**
         * Starts of evenly spaced tiles of [tile] pixels covering `[0, length)` (a multiple of
         * [unit]), successive starts at most [core] apart; one tile at 0 if it covers all.
         *
         * The same positions as `keras_esrgan.inference.tile_windows(length, tile, core, unit)`:
         * `count = max(2, ceil((length - tile) / core) + 1)` tiles, start k at
         * `round(k * (length - tile) / (count - 1))` in whole units, rounding halves up.
         */
        fun tileStarts(length: Int, tile: Int, core: Int, unit: Int = 1): IntArray {
            if (tile >= length) return intArrayOf(0)
            val count = maxOf(2, (length - tile + core - 1) / core + 1)
            val span = (length - tile) / unit
            val gaps = count - 1
            // Long: k * span can exceed Int for very long axes with a unit of 1.
            return IntArray(count) { k -> ((2L * k * span + gaps) / (2L * gaps)).toInt() * unit }
        }
    }
}
