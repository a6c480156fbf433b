/// The Redis protocol's request encoding: an array header, then each argument as a bulk string
/// with its length, so any bytes are carried unchanged. Appends to the caller's buffer without
/// allocating. Shared by `RedisCommand` (kvd's lookups) and kvload's batches.
public enum RESP {
    /// `*<count>\r\n`: a command of `count` arguments follows.
    public static func appendArrayHeader(count: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "*"))
        appendDecimal(count, to: &out)
        out.append(contentsOf: [0x0D, 0x0A])
    }

    /// `$<length>\r\n<bytes>\r\n`.
    public static func appendBulk(_ bytes: [UInt8], to out: inout [UInt8]) {
        appendBulkLength(bytes.count, to: &out)
        out.append(contentsOf: bytes)
        out.append(contentsOf: [0x0D, 0x0A])
    }

    /// `$<length>\r\n<UTF-8 of text>\r\n`.
    public static func appendBulk(_ text: String, to out: inout [UInt8]) {
        appendBulkLength(text.utf8.count, to: &out)
        out.append(contentsOf: text.utf8)
        out.append(contentsOf: [0x0D, 0x0A])
    }

    /// One bulk string made of `prefix` followed by `bytes` (a prefixed key), without joining them first.
    public static func appendBulk(prefix: String, _ bytes: [UInt8], to out: inout [UInt8]) {
        appendBulkLength(prefix.utf8.count + bytes.count, to: &out)
        out.append(contentsOf: prefix.utf8)
        out.append(contentsOf: bytes)
        out.append(contentsOf: [0x0D, 0x0A])
    }

    private static func appendBulkLength(_ length: Int, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "$"))
        appendDecimal(length, to: &out)
        out.append(contentsOf: [0x0D, 0x0A])
    }

    /// `value` (≥ 0) in decimal ASCII.
    private static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        repeat {
            out.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        } while divisor > 0
    }
}
