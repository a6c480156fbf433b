/// Decodes `%XX` escapes in a URL path, byte for byte (so `%00`, `%2F` and UTF-8 all survive).
/// `+` is left as it is: in a path it is not a space (the seed's framework did the same).
public enum PercentDecoding {
    /// - Returns: the decoded bytes, or nil when a `%` is not followed by two hex digits.
    public static func decode(_ encoded: ArraySlice<UInt8>) -> [UInt8]? {
        // Most keys have no escape: one copy, no work per byte.
        guard var escape = encoded.firstIndex(of: UInt8(ascii: "%")) else { return Array(encoded) }
        var output: [UInt8] = []
        output.reserveCapacity(encoded.count)
        var start = encoded.startIndex
        while true {
            output.append(contentsOf: encoded[start..<escape])
            guard escape + 2 < encoded.endIndex,
                  let high = hexValue(encoded[escape + 1]), let low = hexValue(encoded[escape + 2]) else { return nil }
            output.append(high << 4 | low)
            start = escape + 3
            guard let next = encoded[start...].firstIndex(of: UInt8(ascii: "%")) else { break }
            escape = next
        }
        output.append(contentsOf: encoded[start...])
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
