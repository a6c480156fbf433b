import KVDCore

/// Every key of a key set as a JSON string literal, built once, for `kvbench run --batch`: a
/// `POST /mget` body is then a copy of N literals, commas and brackets.
public struct JSONKeyLiterals: Sendable {
    private var bytes: [UInt8] = []
    private var ends: [Int] = []

    /// - Throws: `KeyFileError` naming the first key that is not valid UTF-8 (JSON cannot carry it).
    public init(_ keys: KeySet, name: String) throws {
        bytes.reserveCapacity(keys.count * 16)
        ends.reserveCapacity(keys.count)
        for index in 0..<keys.count {
            guard JSONString.encode(Array(keys.key(index)), into: &bytes) else {
                throw KeyFileError(file: name, line: 0,
                                   reason: "key \(index + 1) is not valid UTF-8: --batch sends keys as JSON strings, which cannot carry it")
            }
            ends.append(bytes.count)
        }
    }

    /// The literal of key `index` (quotes included).
    public func literal(_ index: Int) -> ArraySlice<UInt8> {
        bytes[(index == 0 ? 0 : ends[index - 1])..<ends[index]]
    }
}

/// Reads a `POST /mget` answer: a JSON array whose elements are JSON strings or `null`.
public enum MgetResponseDecoder {
    /// Replaces `values` with the array's elements (nil for `null`), decoded to their bytes.
    /// - Returns: false when `body` is not such an array (with nothing but whitespace around it).
    public static func decode(_ body: ArraySlice<UInt8>, into values: inout [[UInt8]?]) -> Bool {
        values.removeAll(keepingCapacity: true)
        var index = skipWhitespace(body, body.startIndex)
        guard index < body.endIndex, body[index] == UInt8(ascii: "[") else { return false }
        index = skipWhitespace(body, index + 1)
        if index < body.endIndex, body[index] == UInt8(ascii: "]") {
            return skipWhitespace(body, index + 1) == body.endIndex
        }
        var element: [UInt8] = []
        while index < body.endIndex {
            if body[index] == UInt8(ascii: "\"") {
                guard let end = try? JSONString.decode(body, from: index, into: &element, allowControlBytes: false) else { return false }
                values.append(element)
                index = end
            } else if body[index...].starts(with: null) {
                values.append(nil)
                index += null.count
            } else {
                return false
            }
            index = skipWhitespace(body, index)
            guard index < body.endIndex else { return false }
            if body[index] == UInt8(ascii: "]") { return skipWhitespace(body, index + 1) == body.endIndex }
            guard body[index] == UInt8(ascii: ",") else { return false }
            index = skipWhitespace(body, index + 1)
        }
        return false
    }

    private static let null = Array("null".utf8)

    private static func skipWhitespace(_ bytes: ArraySlice<UInt8>, _ start: Int) -> Int {
        var index = start
        while index < bytes.endIndex, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[index]) { index += 1 }
        return index
    }
}
