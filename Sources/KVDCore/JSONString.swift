/// Encodes bytes as a JSON string literal exactly as the seed service did (Python's
/// `json.dumps(value, ensure_ascii=False)`): `"` and `\` escaped, `\b \f \n \r \t` in short form,
/// other control characters as `\u00xx`, everything else (non-ASCII included) passed through as UTF-8.
public enum JSONString {
    /// Appends the literal for `value` to `output`.
    /// - Returns: false, leaving `output` as it was, when `value` is not valid UTF-8 (JSON cannot carry it).
    @discardableResult
    public static func encode(_ value: [UInt8], into output: inout [UInt8]) -> Bool {
        let start = output.count
        // Grown geometrically: callers append many values to one buffer (a `POST /mget` answer,
        // kvbench's key literals), and an exact reserve per value would copy the buffer each time.
        let needed = start + value.count + 2
        if output.capacity < needed { output.reserveCapacity(max(needed, output.capacity * 2)) }
        output.append(UInt8(ascii: "\""))
        // Bytes that pass through unchanged are copied a run at a time; only escapes go one by one.
        var index = 0
        var runStart = 0
        while index < value.count {
            let byte = value[index]
            if byte >= 0x80 {
                guard let length = validSequenceLength(value, at: index) else {
                    output.removeSubrange(start...)
                    return false
                }
                index += length
            } else if byte >= 0x20 && byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\") {
                index += 1
            } else {
                if runStart < index { output.append(contentsOf: value[runStart..<index]) }
                appendASCII(byte, to: &output)
                index += 1
                runStart = index
            }
        }
        if runStart < index { output.append(contentsOf: value[runStart..<index]) }
        output.append(UInt8(ascii: "\""))
        return true
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    @inline(__always)
    private static func appendASCII(_ byte: UInt8, to output: inout [UInt8]) {
        switch byte {
        case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
        case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
        case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
        case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
        case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
        case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
        case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
        case 0..<0x20:
            output.append(contentsOf: [0x5C, UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"),
                                       hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0xF)]])
        default: output.append(byte)
        }
    }

    /// The length of the well-formed UTF-8 sequence starting at `index` (Unicode table 3-7:
    /// no overlong forms, no surrogates, nothing above U+10FFFF), or nil.
    private static func validSequenceLength(_ bytes: [UInt8], at index: Int) -> Int? {
        let lead = bytes[index]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default: return nil
        }
        guard index + length <= bytes.count else { return nil }
        for offset in 1..<length {
            let byte = bytes[index + offset]
            guard (offset == 1 ? secondRange : 0x80...0xBF).contains(byte) else { return nil }
        }
        return length
    }
}
