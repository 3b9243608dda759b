package kerasesrgan.tiles

/**
 * What the tile loop needs from the JSON sidecar `keras_esrgan.export.tflite` writes beside each
 * `.tflite` file (`esrgan_fp16.json` beside `esrgan_fp16.tflite`, format `keras_esrgan.tflite/1`).
 *
 * @property tileSize `tile.size`: the tile side the model was exported (or is meant to run) at.
 * @property tilePad `tile.pad`: context pixels per tile side whose output is not used.
 * @property scale `scale`: output pixels per input pixel along each side.
 * @property multipleOf `input.multiple_of`: the pixel-unshuffle factor (1 for x4 models).
 * @property inputName `input.name`, the input tensor's name.
 * @property inputShape `input.shape`, NHWC; -1 marks a dynamic dimension.
 * @property outputName `output.name`.
 * @property outputShape `output.shape`, NHWC; -1 marks a dynamic dimension.
 * @property quantization `quantization`: fp32, fp16, dynamic_int8 or int8.
 */
class TileSidecar(
    val tileSize: Int,
    val tilePad: Int,
    val scale: Int,
    val multipleOf: Int,
    val inputName: String,
    val inputShape: IntArray,
    val outputName: String,
    val outputShape: IntArray,
    val quantization: String
) {
    companion object {
        /** The format this reader understands (the sidecar's `format` field). */
        const val FORMAT = "keras_esrgan.tflite/1"

        /**
         * Read a sidecar's JSON text.
         *
         * @throws IllegalArgumentException naming the field, for text that is not JSON, another
         *   format, or a missing or mistyped field.
         */
        fun parse(json: String): TileSidecar {
            val root = MiniJson.parse(json) as? Map<*, *>
                ?: throw IllegalArgumentException("sidecar: the JSON is not an object")
            val format = root["format"]
            require(format == FORMAT) { "sidecar: format is $format, this reader reads $FORMAT" }
            return TileSidecar(
                tileSize = int(root, "tile", "size"),
                tilePad = int(root, "tile", "pad"),
                scale = int(root, "scale"),
                multipleOf = int(root, "input", "multiple_of"),
                inputName = string(root, "input", "name"),
                inputShape = shape(root, "input"),
                outputName = string(root, "output", "name"),
                outputShape = shape(root, "output"),
                quantization = string(root, "quantization")
            )
        }

        private fun field(root: Map<*, *>, path: Array<out String>): Any? {
            var node: Any? = root
            for ((depth, key) in path.withIndex()) {
                val map = node as? Map<*, *> ?: throw IllegalArgumentException(
                    "sidecar: ${path.take(depth).joinToString(".")} is not an object"
                )
                require(map.containsKey(key)) { "sidecar: missing ${path.joinToString(".")}" }
                node = map[key]
            }
            return node
        }

        private fun int(root: Map<*, *>, vararg path: String): Int {
            val value = field(root, path)
            require(value is Double && value == Math.rint(value) && Math.abs(value) < 1e9) {
                "sidecar: ${path.joinToString(".")} must be an integer, got $value"
            }
            return value.toInt()
        }

        private fun string(root: Map<*, *>, vararg path: String): String =
            field(root, path) as? String
                ?: throw IllegalArgumentException("sidecar: ${path.joinToString(".")} must be a string")

        private fun shape(root: Map<*, *>, tensor: String): IntArray {
            val list = field(root, arrayOf(tensor, "shape")) as? List<*>
            require(list != null && list.size == 4 && list.all { it is Double && it == Math.rint(it) }) {
                "sidecar: $tensor.shape must be 4 integers (NHWC), got $list"
            }
            return IntArray(4) { (list[it] as Double).toInt() }
        }
    }
}

/**
 * A small JSON reader (RFC 8259) for the sidecar, since the JVM has none built in and Android's
 * `org.json` is not on a plain JVM: objects become `Map<String, Any?>` (insertion order),
 * arrays `List<Any?>`, numbers `Double`, plus `String`, `Boolean` and `null`.
 */
internal class MiniJson private constructor(private val text: String) {
    private var at = 0

    companion object {
        /** Parse [text]; IllegalArgumentException with the character offset on bad input. */
        fun parse(text: String): Any? {
            val reader = MiniJson(text)
            val value = reader.value()
            reader.skipSpace()
            if (reader.at != text.length) reader.fail("unexpected text after the JSON value")
            return value
        }
    }

    private fun fail(message: String): Nothing =
        throw IllegalArgumentException("sidecar: not valid JSON at character $at: $message")

    private fun skipSpace() {
        while (at < text.length && text[at] in " \t\r\n") at++
    }

    private fun value(): Any? {
        skipSpace()
        if (at >= text.length) fail("unexpected end")
        return when (text[at]) {
            '{' -> obj()
            '[' -> array()
            '"' -> string()
            't' -> literal("true", true)
            'f' -> literal("false", false)
            'n' -> literal("null", null)
            else -> number()
        }
    }

    private fun literal(word: String, value: Any?): Any? {
        if (!text.startsWith(word, at)) fail("expected $word")
        at += word.length
        return value
    }

    private fun obj(): Map<String, Any?> {
        val map = LinkedHashMap<String, Any?>()
        at++
        skipSpace()
        if (at < text.length && text[at] == '}') {
            at++
            return map
        }
        while (true) {
            skipSpace()
            if (at >= text.length || text[at] != '"') fail("expected a string key")
            val key = string()
            skipSpace()
            if (at >= text.length || text[at] != ':') fail("expected ':'")
            at++
            map[key] = value()
            skipSpace()
            if (at >= text.length) fail("unexpected end in an object")
            // (no `continue` inside `when`: Kotlin 1.3 does not allow it)
            val separator = text[at++]
            if (separator == '}') return map
            if (separator != ',') {
                at--
                fail("expected ',' or '}'")
            }
        }
    }

    private fun array(): List<Any?> {
        val list = ArrayList<Any?>()
        at++
        skipSpace()
        if (at < text.length && text[at] == ']') {
            at++
            return list
        }
        while (true) {
            list.add(value())
            skipSpace()
            if (at >= text.length) fail("unexpected end in an array")
            // (no `continue` inside `when`: Kotlin 1.3 does not allow it)
            val separator = text[at++]
            if (separator == ']') return list
            if (separator != ',') {
                at--
                fail("expected ',' or ']'")
            }
        }
    }

    private fun string(): String {
        val out = StringBuilder()
        at++ // opening quote
        while (true) {
            if (at >= text.length) fail("unterminated string")
            val ch = text[at++]
            when {
                ch == '"' -> return out.toString()
                ch == '\\' -> {
                    if (at >= text.length) fail("unterminated escape")
                    when (val e = text[at++]) {
                        '"', '\\', '/' -> out.append(e)
                        'b' -> out.append('\b')
                        'f' -> out.append('\u000C')
                        'n' -> out.append('\n')
                        'r' -> out.append('\r')
                        't' -> out.append('\t')
                        'u' -> {
                            if (at + 4 > text.length) fail("short \\u escape")
                            val code = text.substring(at, at + 4).toIntOrNull(16) ?: fail("bad \\u escape")
                            out.append(code.toChar())
                            at += 4
                        }
                        else -> { at--; fail("bad escape \\$e") }
                    }
                }
                ch < ' ' -> { at--; fail("control character in a string") }
                else -> out.append(ch)
            }
        }
    }

    private fun number(): Double {
        val start = at
        if (at < text.length && text[at] == '-') at++
        val digits = at
        while (at < text.length && text[at] in '0'..'9') at++
        if (at == digits) {
            at = start
            fail("expected a value")
        }
        if (text[digits] == '0' && at - digits > 1) fail("leading zero in a number")
        if (at < text.length && text[at] == '.') {
            at++
            val fraction = at
            while (at < text.length && text[at] in '0'..'9') at++
            if (at == fraction) fail("digits expected after '.'")
        }
        if (at < text.length && (text[at] == 'e' || text[at] == 'E')) {
            at++
            if (at < text.length && (text[at] == '+' || text[at] == '-')) at++
            val exponent = at
            while (at < text.length && text[at] in '0'..'9') at++
            if (at == exponent) fail("digits expected in the exponent")
        }
        return text.substring(start, at).toDouble()
    }
}
