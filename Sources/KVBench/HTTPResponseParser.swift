/// How the body of a response ends.
public enum BodyFraming: Equatable, Sendable {
    /// After this many bytes (Content-Length, or 0 for 1xx, 204 and 304).
    case length(Int)
    /// Transfer-Encoding: chunked; `ChunkedBody.scan` finds the end.
    case chunked
    /// Neither header: the body runs until the server closes the connection.
    case untilClose
}

/// What the head of an HTTP/1.1 response says about the response.
public struct ResponseHead: Equatable, Sendable {
    /// The status code.
    public let status: Int
    /// Bytes of the status line and headers, the blank line included.
    public let headLength: Int
    public let framing: BodyFraming
    /// Whether the connection cannot carry another request: `Connection: close`, HTTP/1.0 without keep-alive,
    /// or a body delimited by the close.
    public let closesConnection: Bool

    public init(status: Int, headLength: Int, framing: BodyFraming, closesConnection: Bool) {
        self.status = status
        self.headLength = headLength
        self.framing = framing
        self.closesConnection = closesConnection
    }
}

/// The state of a response being received.
public enum ResponseParse: Equatable, Sendable {
    /// The head is not all there yet.
    case incomplete
    /// The bytes are not an HTTP/1.x response kvbench can delimit; the reason names what is wrong.
    case malformed(String)
    /// The head is complete (the body may still be arriving).
    case head(ResponseHead)
}

/// Parses response heads straight from the receive buffer, with no allocation: status line, `Content-Length`,
/// `Transfer-Encoding`, `Connection`. kvd and the seed's server send Content-Length; chunked and close-delimited
/// bodies are understood too, other transfer codings are reported as malformed.
public enum HTTPResponseParser {
    /// Parses the head at the start of `buffer[0..<count]`.
    public static func parseHead(_ buffer: [UInt8], count: Int) -> ResponseParse {
        // Reject a non-HTTP answer (e.g. a Redis error line) from its first bytes, not only once a blank line comes.
        for index in 0..<min(count, statusLinePrefix.count) where buffer[index] != statusLinePrefix[index] {
            return .malformed("no HTTP/1.x status line")
        }
        guard let headEnd = headEnd(buffer, count: count) else { return .incomplete }
        // "HTTP/1.x SSS"
        guard headEnd >= 12,
              buffer[0] == UInt8(ascii: "H"), buffer[1] == UInt8(ascii: "T"), buffer[2] == UInt8(ascii: "T"),
              buffer[3] == UInt8(ascii: "P"), buffer[4] == UInt8(ascii: "/"), buffer[5] == UInt8(ascii: "1"),
              buffer[6] == UInt8(ascii: "."), buffer[8] == UInt8(ascii: " ")
        else { return .malformed("no HTTP/1.x status line") }
        let isHTTP10 = buffer[7] == UInt8(ascii: "0")
        var status = 0
        for index in 9..<12 {
            let digit = buffer[index] &- UInt8(ascii: "0")
            guard digit < 10 else { return .malformed("status code is not three digits") }
            status = status * 10 + Int(digit)
        }
        var contentLength: Int?
        var chunked = false
        var closes = isHTTP10
        var lineStart = lineEnd(buffer, from: 12, limit: headEnd) + 2
        while lineStart < headEnd - 2 {
            let end = lineEnd(buffer, from: lineStart, limit: headEnd)
            var colon = lineStart
            while colon < end, buffer[colon] != UInt8(ascii: ":") { colon += 1 }
            guard colon < end else { return .malformed("header line without a colon") }
            var valueStart = colon + 1
            while valueStart < end, buffer[valueStart] == UInt8(ascii: " ") || buffer[valueStart] == UInt8(ascii: "\t") {
                valueStart += 1
            }
            var valueEnd = end
            while valueEnd > valueStart, buffer[valueEnd - 1] == UInt8(ascii: " ") || buffer[valueEnd - 1] == UInt8(ascii: "\t") {
                valueEnd -= 1
            }
            if nameEquals(buffer, lineStart..<colon, "content-length") {
                guard valueStart < valueEnd, valueEnd - valueStart <= 18 else { return .malformed("bad Content-Length") }
                var length = 0
                for index in valueStart..<valueEnd {
                    let digit = buffer[index] &- UInt8(ascii: "0")
                    guard digit < 10 else { return .malformed("bad Content-Length") }
                    length = length * 10 + Int(digit)
                }
                contentLength = length
            } else if nameEquals(buffer, lineStart..<colon, "connection") {
                if nameEquals(buffer, valueStart..<valueEnd, "close") { closes = true }
                if nameEquals(buffer, valueStart..<valueEnd, "keep-alive") { closes = false }
            } else if nameEquals(buffer, lineStart..<colon, "transfer-encoding") {
                guard nameEquals(buffer, valueStart..<valueEnd, "chunked") else {
                    return .malformed("Transfer-Encoding other than chunked")
                }
                chunked = true
            }
            lineStart = end + 2
        }
        let framing: BodyFraming
        if status == 204 || status == 304 || (100..<200).contains(status) {
            framing = .length(0)
        } else if chunked {
            framing = .chunked
        } else if let contentLength {
            framing = .length(contentLength)
        } else {
            framing = .untilClose
            closes = true
        }
        return .head(ResponseHead(status: status, headLength: headEnd, framing: framing, closesConnection: closes))
    }

    private static let statusLinePrefix: [UInt8] = Array("HTTP/1.".utf8)

    /// The index just past the blank line ending the head, or nil.
    @inline(__always)
    private static func headEnd(_ buffer: [UInt8], count: Int) -> Int? {
        var index = 3
        while index < count {
            if buffer[index] == UInt8(ascii: "\n") {
                if buffer[index - 1] == UInt8(ascii: "\r"), buffer[index - 2] == UInt8(ascii: "\n"), buffer[index - 3] == UInt8(ascii: "\r") {
                    return index + 1
                }
            }
            index += 1
        }
        return nil
    }

    /// The index of the `\r` ending the line that starts at `from`.
    @inline(__always)
    private static func lineEnd(_ buffer: [UInt8], from: Int, limit: Int) -> Int {
        var index = from
        while index < limit - 1, !(buffer[index] == UInt8(ascii: "\r") && buffer[index + 1] == UInt8(ascii: "\n")) { index += 1 }
        return index
    }

    /// ASCII case-insensitive comparison of `buffer[range]` with a lower-case name.
    @inline(__always)
    private static func nameEquals(_ buffer: [UInt8], _ range: Range<Int>, _ lowercaseName: StaticString) -> Bool {
        guard range.count == lowercaseName.utf8CodeUnitCount else { return false }
        return lowercaseName.withUTF8Buffer { name in
            for offset in 0..<name.count where buffer[range.lowerBound + offset] | 0x20 != name[offset] { return false }
            return true
        }
    }
}

/// Chunked bodies (RFC 9112 section 7.1): where they end, and the data they carry.
public enum ChunkedBody {
    /// The state of a chunked body being received.
    public enum Scan: Equatable, Sendable {
        case incomplete
        case malformed(String)
        /// The body (last chunk and trailers included) ends just before `end`.
        case complete(end: Int)
    }

    /// Scans the chunked body starting at `buffer[start]` (up to `count`), replacing `output` with its data.
    public static func scan(_ buffer: [UInt8], from start: Int, count: Int, into output: inout [UInt8]) -> Scan {
        output.removeAll(keepingCapacity: true)
        var index = start
        while true {
            guard let sizeLineEnd = lineEnd(buffer, from: index, count: count) else { return .incomplete }
            var size = 0, digits = 0
            while index < sizeLineEnd, let digit = hexValue(buffer[index]) {
                size = size << 4 | digit
                digits += 1
                index += 1
                guard digits <= 15 else { return .malformed("chunk size too large") }
            }
            guard digits > 0, index == sizeLineEnd || [UInt8(ascii: ";"), UInt8(ascii: " "), UInt8(ascii: "\t")].contains(buffer[index]) else {
                return .malformed("bad chunk size line")
            }
            index = sizeLineEnd + 2
            if size == 0 {
                // Trailer lines, then the empty line.
                while true {
                    guard let trailerEnd = lineEnd(buffer, from: index, count: count) else { return .incomplete }
                    if trailerEnd == index { return .complete(end: index + 2) }
                    index = trailerEnd + 2
                }
            }
            guard index + size + 2 <= count else { return .incomplete }
            guard buffer[index + size] == UInt8(ascii: "\r"), buffer[index + size + 1] == UInt8(ascii: "\n") else {
                return .malformed("chunk data not followed by CRLF")
            }
            output.append(contentsOf: buffer[index..<(index + size)])
            index += size + 2
        }
    }

    /// The index of the CR of the first CRLF at or after `from`, or nil.
    private static func lineEnd(_ buffer: [UInt8], from: Int, count: Int) -> Int? {
        var index = from
        while index + 1 < count {
            if buffer[index] == UInt8(ascii: "\r"), buffer[index + 1] == UInt8(ascii: "\n") { return index }
            index += 1
        }
        return nil
    }

    private static func hexValue(_ byte: UInt8) -> Int? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): Int(byte - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): Int(byte - UInt8(ascii: "a")) + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): Int(byte - UInt8(ascii: "A")) + 10
        default: nil
        }
    }
}
