package kerasesrgan.tiles

import java.io.File

/**
 * Command-line entry points for tests/test_android.py, which checks the Kotlin side against the
 * Python package: `PrintSidecar <file.json>` prints the fields [TileSidecar] read from a real
 * export, `PrintTileStarts length,tile,core,unit ...` prints [TileAxis.tileStarts] per case.
 */
object PrintSidecar {
    @JvmStatic
    fun main(args: Array<String>) {
        val s = TileSidecar.parse(File(args[0]).readText())
        println("tile.size=${s.tileSize}")
        println("tile.pad=${s.tilePad}")
        println("scale=${s.scale}")
        println("input.multiple_of=${s.multipleOf}")
        println("input.name=${s.inputName}")
        println("input.shape=${s.inputShape.joinToString(",")}")
        println("output.name=${s.outputName}")
        println("output.shape=${s.outputShape.joinToString(",")}")
        println("quantization=${s.quantization}")
    }
}

object PrintTileStarts {
    @JvmStatic
    fun main(args: Array<String>) {
        for (case in args) {
            val (length, tile, core, unit) = case.split(",").map { it.toInt() }
            println("$case:" + TileAxis.tileStarts(length, tile, core, unit).joinToString(","))
        }
    }
}
