/// The keys kvbench requests and, when known, the value each should have: all bytes in one array,
/// with offsets, so that ten million keys cost a few hundred megabytes and no per-key allocation.
public struct KeySet: Sendable {
    /// The bytes the offsets point into (for a key file: the whole file).
    private let storage: [UInt8]
    private let keyStarts: [Int]
    private let keyLengths: [UInt32]
    /// Length of each value; `UInt32.max` when the file gave no value (one key per line).
    private let valueLengths: [UInt32]

    private static let noValue = UInt32.max

    /// How many keys there are.
    public var count: Int { keyStarts.count }

    /// Whether every key came with a value (seed format), so that responses can be verified.
    public let hasAllValues: Bool

    /// The key at `index`.
    @inline(__always)
    public func key(_ index: Int) -> ArraySlice<UInt8> {
        let start = keyStarts[index]
        return storage[start..<(start + Int(keyLengths[index]))]
    }

    /// The value at `index`, or nil when the file gave only the key.
    @inline(__always)
    public func value(_ index: Int) -> ArraySlice<UInt8>? {
        let length = valueLengths[index]
        guard length != Self.noValue else { return nil }
        let start = keyStarts[index] + Int(keyLengths[index]) + 1
        return storage[start..<(start + Int(length))]
    }

    /// Parses a key file: seed format (`KEY VALUE` per line, one space, the value runs to the end of the line)
    /// or one key per line. Empty lines are skipped; a trailing `\r` is not part of the value.
    /// - Parameter name: the file name used in error messages.
    /// - Throws: `KeyFileError` naming `name:line` for a line that starts with a space (no key) or a key or value
    ///   too long to index, and for a file with no key at all.
    public init(parsing bytes: [UInt8], name: String) throws {
        var keyStarts: [Int] = []
        var keyLengths: [UInt32] = []
        var valueLengths: [UInt32] = []
        var allValues = true
        var lineStart = 0
        var lineNumber = 0
        let newline = UInt8(ascii: "\n"), space = UInt8(ascii: " "), carriageReturn = UInt8(ascii: "\r")
        while lineStart < bytes.count {
            lineNumber += 1
            var lineEnd = lineStart
            var firstSpace = -1
            while lineEnd < bytes.count, bytes[lineEnd] != newline {
                if firstSpace < 0, bytes[lineEnd] == space { firstSpace = lineEnd }
                lineEnd += 1
            }
            let next = lineEnd + 1
            var contentEnd = lineEnd
            if contentEnd > lineStart, bytes[contentEnd - 1] == carriageReturn { contentEnd -= 1 }
            defer { lineStart = next }
            if contentEnd == lineStart { continue }
            if firstSpace == lineStart {
                throw KeyFileError(file: name, line: lineNumber, reason: "line starts with a space: no key")
            }
            let keyEnd = firstSpace >= 0 && firstSpace < contentEnd ? firstSpace : contentEnd
            guard keyEnd - lineStart < Int(UInt32.max), contentEnd - keyEnd < Int(UInt32.max) else {
                throw KeyFileError(file: name, line: lineNumber, reason: "line longer than 4 GiB")
            }
            keyStarts.append(lineStart)
            keyLengths.append(UInt32(keyEnd - lineStart))
            if keyEnd < contentEnd {
                valueLengths.append(UInt32(contentEnd - keyEnd - 1))
            } else {
                valueLengths.append(Self.noValue)
                allValues = false
            }
        }
        guard !keyStarts.isEmpty else { throw KeyFileError(file: name, line: 0, reason: "no keys in the file") }
        storage = bytes
        self.keyStarts = keyStarts
        self.keyLengths = keyLengths
        self.valueLengths = valueLengths
        hasAllValues = allValues
    }
}

/// A key file that cannot be used, with the place and the reason.
public struct KeyFileError: Error, CustomStringConvertible, Sendable {
    public let file: String
    public let line: Int
    public let reason: String

    public var description: String { line > 0 ? "\(file):\(line): \(reason)" : "\(file): \(reason)" }
}
