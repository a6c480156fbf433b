import KVDCore

/// Decodes a JSON string literal (RFC 8259) to the UTF-8 bytes it stands for: every escape, including
/// `\uXXXX` and surrogate pairs, so that a server escaping differently from kvd still verifies.
public enum JSONStringDecoder {
    /// Replaces `output` with the decoded bytes of `literal` (which must be exactly one string literal).
    /// - Returns: false when `literal` is not a well-formed JSON string.
    public static func decode(_ literal: ArraySlice<UInt8>, into output: inout [UInt8]) -> Bool {
        let end = try? JSONString.decode(literal, from: literal.startIndex, into: &output, allowControlBytes: false)
        return end == literal.endIndex
    }
}
