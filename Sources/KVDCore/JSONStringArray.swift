/// Why a request body is not a JSON array of strings, and where.
public struct JSONArrayError: Error, Sendable, Equatable {
    public let reason: String
    /// The element the problem is in (0-based), when it is in one.
    public let index: Int?

    public init(_ reason: String, index: Int? = nil) {
        self.reason = reason
        self.index = index
    }

    /// The reason, with the element's index when there is one (for a `{"detail": …}` answer).
    public var message: String {
        index.map { "element \($0): \(reason)" } ?? reason
    }
}

/// Reads a JSON array of strings (RFC 8259: `[ "a", "b\u00e9" ]`), the body of `POST /mget`.
/// Anything else is refused: another value type, a nested array or object, a trailing comma,
/// bytes after the closing bracket. Strings decode through `JSONString.decode` (every escape,
/// surrogate pairs; raw control bytes refused).
public enum JSONStringArray {
    /// The strings' bytes, in order.
    /// - Parameter maxElements: more elements than this throw `.tooMany` (checked as they are read,
    ///   so a huge array costs no more than `maxElements` decoded strings).
    public static func parse(_ body: [UInt8], maxElements: Int = Int.max) throws(JSONArrayParseError) -> [[UInt8]] {
        let bytes = body[...]
        var index = skipWhitespace(bytes, from: bytes.startIndex)
        guard index < bytes.endIndex, bytes[index] == UInt8(ascii: "[") else {
            throw .malformed(JSONArrayError("expected a JSON array of strings"))
        }
        index = skipWhitespace(bytes, from: index + 1)
        var elements: [[UInt8]] = []
        if index < bytes.endIndex, bytes[index] == UInt8(ascii: "]") {
            index += 1
        } else {
            while true {
                let position = elements.count
                guard index < bytes.endIndex else { throw .malformed(JSONArrayError("array is not closed")) }
                guard bytes[index] == UInt8(ascii: "\"") else {
                    throw .malformed(JSONArrayError("expected a string, found \(describe(bytes[index]))", index: position))
                }
                guard position < maxElements else { throw .tooMany(limit: maxElements) }
                var element: [UInt8] = []
                do {
                    index = try JSONString.decode(bytes, from: index, into: &element, allowControlBytes: false)
                } catch {
                    throw .malformed(JSONArrayError(error.reason, index: position))
                }
                elements.append(element)
                index = skipWhitespace(bytes, from: index)
                guard index < bytes.endIndex else { throw .malformed(JSONArrayError("array is not closed")) }
                if bytes[index] == UInt8(ascii: "]") { index += 1; break }
                guard bytes[index] == UInt8(ascii: ",") else {
                    throw .malformed(JSONArrayError("expected ',' or ']' after element \(position)"))
                }
                index = skipWhitespace(bytes, from: index + 1)
            }
        }
        guard skipWhitespace(bytes, from: index) == bytes.endIndex else {
            throw .malformed(JSONArrayError("unexpected bytes after the array"))
        }
        return elements
    }

    /// JSON whitespace: space, tab, line feed, carriage return.
    private static func skipWhitespace(_ bytes: ArraySlice<UInt8>, from start: Int) -> Int {
        var index = start
        while index < bytes.endIndex {
            switch bytes[index] {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return index
            }
        }
        return index
    }

    /// What a value that is not a string starts as, for the error message.
    private static func describe(_ byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "["): "a nested array"
        case UInt8(ascii: "{"): "an object"
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): "a number"
        case UInt8(ascii: "t"), UInt8(ascii: "f"): "a boolean"
        case UInt8(ascii: "n"): "null"
        case UInt8(ascii: "]"): "']' after ','"
        default: "an invalid value"
        }
    }
}

/// Why `JSONStringArray.parse` refused a body.
public enum JSONArrayParseError: Error, Sendable, Equatable {
    /// Not a JSON array of strings (400).
    case malformed(JSONArrayError)
    /// More elements than allowed (413).
    case tooMany(limit: Int)
}
