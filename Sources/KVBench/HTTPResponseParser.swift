/// What the head of an HTTP/1.1 response says about the response.
public struct ResponseHead: Equatable, Sendable {
    /// The status code.
    public let status: Int
    /// Bytes of the status line and headers, the blank line included.
    public let headLength: Int
    /// Bytes of the body (from Content-Length).
    public let bodyLength: Int
    /// Whether the server said `Connection: close` (or answered HTTP/1.0 without keep-alive).
    public let closesConnection: Bool

    /// Head plus body.
    public var totalLength: Int { headLength + bodyLength }

    public init(status: Int, headLength: Int, bodyLength: Int, closesConnection: Bool) {
        self.status = status
        self.headLength = headLength
        self.bodyLength = bodyLength
        self.closesConnection = closesConnection
    }
}

/// The state of a response being received.
public enum ResponseParse: Equatable, Sendable {
    /// The head is not all there yet.
    case incomplete
    /// The bytes are not an HTTP/1.x response kvbench can delimit; the reason names what is wrong.
    case malformed(String)
    /// The head is complete (the body may still be arriving: compare `totalLength` with the bytes received).
    case head(ResponseHead)
}

/// Parses response heads straight from the receive buffer, with no allocation: status line, `Content-Length`,
/// `Connection`. Bodies must be delimited by Content-Length (kvd and the seed's server both send it); a chunked
/// or close-delimited body is reported as malformed.
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
                return .malformed("Transfer-Encoding is not supported")
            }
            lineStart = end + 2
        }
        let bodyless = status == 204 || status == 304 || (100..<200).contains(status)
        guard let bodyLength = contentLength ?? (bodyless ? 0 : nil) else { return .malformed("no Content-Length") }
        return .head(ResponseHead(status: status, headLength: headEnd, bodyLength: bodyLength, closesConnection: closes))
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
