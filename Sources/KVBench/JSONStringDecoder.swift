/// Decodes a JSON string literal (RFC 8259) to the UTF-8 bytes it stands for: every escape, including
/// `\uXXXX` and surrogate pairs, so that a server escaping differently from kvd still verifies.
public enum JSONStringDecoder {
    /// Replaces `output` with the decoded bytes of `literal` (which must be exactly one string literal).
    /// - Returns: false when `literal` is not a well-formed JSON string.
    public static func decode(_ literal: ArraySlice<UInt8>, into output: inout [UInt8]) -> Bool {
        output.removeAll(keepingCapacity: true)
        guard literal.count >= 2, literal.first == UInt8(ascii: "\""), literal.last == UInt8(ascii: "\"") else { return false }
        var index = literal.startIndex + 1
        let end = literal.endIndex - 1
        while index < end {
            let byte = literal[index]
            if byte == UInt8(ascii: "\\") {
                guard index + 1 < end else { return false }
                let escape = literal[index + 1]
                index += 2
                switch escape {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): output.append(escape)
                case UInt8(ascii: "b"): output.append(0x08)
                case UInt8(ascii: "f"): output.append(0x0C)
                case UInt8(ascii: "n"): output.append(0x0A)
                case UInt8(ascii: "r"): output.append(0x0D)
                case UInt8(ascii: "t"): output.append(0x09)
                case UInt8(ascii: "u"):
                    guard var scalar = hex4(literal, at: index, end: end) else { return false }
                    index += 4
                    if (0xD800...0xDBFF).contains(scalar) {
                        guard index + 6 <= end, literal[index] == UInt8(ascii: "\\"), literal[index + 1] == UInt8(ascii: "u"),
                              let low = hex4(literal, at: index + 2, end: end), (0xDC00...0xDFFF).contains(low)
                        else { return false }
                        index += 6
                        scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    } else if (0xDC00...0xDFFF).contains(scalar) {
                        return false
                    }
                    appendUTF8(scalar, to: &output)
                default: return false
                }
            } else {
                guard byte >= 0x20, byte != UInt8(ascii: "\"") else { return false }
                output.append(byte)
                index += 1
            }
        }
        return true
    }

    private static func hex4(_ bytes: ArraySlice<UInt8>, at index: Int, end: Int) -> UInt32? {
        guard index + 4 <= end else { return nil }
        var value: UInt32 = 0
        for offset in 0..<4 {
            let byte = bytes[index + offset]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: return nil
            }
            value = value << 4 | UInt32(digit)
        }
        return value
    }

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
