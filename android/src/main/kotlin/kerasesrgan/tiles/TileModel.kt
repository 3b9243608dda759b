package kerasesrgan.tiles

/**
 * A super-resolution model that upscales one fixed-size RGB tile per call.
 *
 * This is the only thing [TiledUpscaler] needs from the network, so the tile loop runs (and is
 * tested) on any JVM; on Android a LiteRT `Interpreter` over the exported `.tflite` file
 * implements it (`android/glue/kerasesrgan/tiles/LiteRtTileModel.kt`).
 *
 * Layout (as the `.tflite` export and its JSON sidecar describe it): NHWC with batch 1, RGB,
 * row-major, channels interleaved.
 * - [run]'s `input` holds `tileSize * tileSize * 3` floats in [0, 1]:
 *   pixel (x, y) channel c at `(y * tileSize + x) * 3 + c`.
 * - `output` receives `(scale * tileSize)^2 * 3` floats, nominally in [0, 1] and not clipped
 *   (the export does not clip), in the same layout with side `scale * tileSize`.
 */
interface TileModel {
    /** Side in pixels of the square input tile (the sidecar's `tile.size`). */
    val tileSize: Int

    /** Upscaling factor: the output tile's side is `scale * tileSize` (the sidecar's `scale`). */
    val scale: Int

    /** Upscale one tile from [input] into [output]; both arrays are reused between calls. */
    fun run(input: FloatArray, output: FloatArray)
}
