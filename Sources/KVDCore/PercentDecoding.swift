/// Decodes `%XX` escapes in a URL path, byte for byte (so `%00`, `%2F` and UTF-8 all survive).
/// `+` is left as it is: in a path it is not a space (the seed's framework did the same).
public enum PercentDecoding {
    /// - Returns: the decoded bytes, or nil when a `%` is not followed by two hex digits.
    public static func decode(_ encoded: ArraySlice<UInt8>) -> [UInt8]? {
        var output: [UInt8] = []
        output.reserveCapacity(encoded.count)
        var index = encoded.startIndex
        while index < encoded.endIndex {
            let byte = encoded[index]
            index += 1
            guard byte == UInt8(ascii: "%") else {
                output.append(byte)
                continue
            }
            guard index + 1 < encoded.endIndex,
                  let high = hexValue(encoded[index]), let low = hexValue(encoded[index + 1]) else { return nil }
            index += 2
            output.append(high << 4 | low)
        }
        return output
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
