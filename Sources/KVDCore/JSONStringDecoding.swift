/// Why a JSON string literal could not be decoded.
public struct JSONStringError: Error, Sendable, Equatable {
    public let reason: String
}

extension JSONString {
    /// Decodes the JSON string literal (RFC 8259) that opens at `start` into the UTF-8 bytes it
    /// stands for, every escape included (`\uXXXX` and surrogate pairs), replacing `output`.
    /// Shared by kvbench (checking kvd's answers) and kvload (reading JSON lines).
    /// - Parameters:
    ///   - allowControlBytes: keep raw bytes below 0x20 as they are (RFC 8259 wants them escaped).
    /// - Returns: the index just past the closing quote.
    public static func decode(_ bytes: ArraySlice<UInt8>, from start: Int, into output: inout [UInt8],
                              allowControlBytes: Bool) throws(JSONStringError) -> Int {
        output.removeAll(keepingCapacity: true)
        guard start < bytes.endIndex, bytes[start] == UInt8(ascii: "\"") else {
            throw JSONStringError(reason: "expected a JSON string")
        }
        var index = start + 1
        while index < bytes.endIndex {
            // Bytes that stand for themselves are copied a run at a time.
            var runEnd = index
            while runEnd < bytes.endIndex {
                let byte = bytes[runEnd]
                guard byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") && (byte >= 0x20 || allowControlBytes) else { break }
                runEnd += 1
            }
            if runEnd > index {
                output.append(contentsOf: bytes[index..<runEnd])
                index = runEnd
                continue
            }
            let byte = bytes[index]
            index += 1
            if byte == UInt8(ascii: "\"") { return index }
            if byte != UInt8(ascii: "\\") {
                throw JSONStringError(reason: "unescaped control character in a JSON string")
            }
            guard index < bytes.endIndex else { break }
            let escape = bytes[index]
            index += 1
            switch escape {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
            case UInt8(ascii: "b"): output.append(0x08)
            case UInt8(ascii: "f"): output.append(0x0C)
            case UInt8(ascii: "n"): output.append(0x0A)
            case UInt8(ascii: "r"): output.append(0x0D)
            case UInt8(ascii: "t"): output.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try hex4(bytes, at: &index)
                if (0xD800..<0xDC00).contains(scalar) {
                    guard index + 1 < bytes.endIndex, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                        throw JSONStringError(reason: "unpaired UTF-16 surrogate in a \\u escape")
                    }
                    index += 2
                    let low = try hex4(bytes, at: &index)
                    guard (0xDC00..<0xE000).contains(low) else {
                        throw JSONStringError(reason: "unpaired UTF-16 surrogate in a \\u escape")
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if (0xDC00..<0xE000).contains(scalar) {
                    throw JSONStringError(reason: "unpaired UTF-16 surrogate in a \\u escape")
                }
                appendUTF8(scalar, to: &output)
            default:
                throw JSONStringError(reason: "invalid escape '\\\(String(UnicodeScalar(escape)))' in a JSON string")
            }
        }
        throw JSONStringError(reason: "JSON string is not closed")
    }

    private static func hex4(_ bytes: ArraySlice<UInt8>, at index: inout Int) throws(JSONStringError) -> UInt32 {
        var value: UInt32 = 0
        for _ in 0..<4 {
            guard index < bytes.endIndex else { throw JSONStringError(reason: "short \\u escape") }
            let byte = bytes[index]
            index += 1
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw JSONStringError(reason: "invalid \\u escape")
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

    /// `scalar` (not a surrogate) as UTF-8.
    private static func appendUTF8(_ scalar: UInt32, to output: inout [UInt8]) {
        switch scalar {
        case 0..<0x80: output.append(UInt8(scalar))
        case 0x80..<0x800:
            output.append(UInt8(0xC0 | scalar >> 6))
            output.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            output.append(UInt8(0xE0 | scalar >> 12))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        default:
            output.append(UInt8(0xF0 | scalar >> 18))
            output.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            output.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            output.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
