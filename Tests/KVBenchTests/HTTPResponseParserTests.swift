import KVBench
import Testing

@Suite("kvbench: HTTP response heads")
struct HTTPResponseParserTests {
    func parse(_ text: String) -> ResponseParse {
        let bytes = Array(text.utf8)
        return HTTPResponseParser.parseHead(bytes, count: bytes.count)
    }

    @Test func kvdResponse() {
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n"
        #expect(parse(head + "\"lpkrp\"") == .head(ResponseHead(status: 200, headLength: head.utf8.count, framing: .length(7), closesConnection: false)))
    }

    @Test func headerNamesAndValuesAreCaseInsensitive() {
        let head = "HTTP/1.1 404 Not Found\r\ncontent-LENGTH:  26 \r\nCONNECTION: Close\r\n\r\n"
        #expect(parse(head) == .head(ResponseHead(status: 404, headLength: head.utf8.count, framing: .length(26), closesConnection: true)))
    }

    @Test func http10ClosesUnlessKeepAlive() {
        let close = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n"
        let keep = "HTTP/1.0 200 OK\r\nContent-Length: 0\r\nConnection: keep-alive\r\n\r\n"
        #expect(parse(close) == .head(ResponseHead(status: 200, headLength: close.utf8.count, framing: .length(0), closesConnection: true)))
        #expect(parse(keep) == .head(ResponseHead(status: 200, headLength: keep.utf8.count, framing: .length(0), closesConnection: false)))
    }

    @Test func incompleteUntilTheBlankLine() {
        let full = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n"
        for length in 0..<full.utf8.count {
            let bytes = Array(full.utf8.prefix(length))
            #expect(HTTPResponseParser.parseHead(bytes, count: bytes.count) == .incomplete, "prefix \(length)")
        }
    }

    @Test func onlyTheReceivedCountIsRead() {
        var buffer = Array("HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n".utf8)
        let received = buffer.count - 2
        buffer += [UInt8](repeating: 0, count: 100)
        #expect(HTTPResponseParser.parseHead(buffer, count: received) == .incomplete)
    }

    @Test func bodylessStatusesNeedNoLength() {
        let head = "HTTP/1.1 204 No Content\r\n\r\n"
        #expect(parse(head) == .head(ResponseHead(status: 204, headLength: head.utf8.count, framing: .length(0), closesConnection: false)))
    }

    @Test func aNonHTTPAnswerIsMalformedFromItsFirstBytes() {
        #expect(parse("-ERR") == .malformed("no HTTP/1.x status line"))
        #expect(parse("HTTP/2") == .malformed("no HTTP/1.x status line"))
        #expect(parse("HTT") == .incomplete)
    }

    @Test func malformedResponses() {
        #expect(parse("SSH-2.0-OpenSSH\r\n\r\n") == .malformed("no HTTP/1.x status line"))
        #expect(parse("HTTP/1.1 2x0 OK\r\n\r\n") == .malformed("status code is not three digits"))
        #expect(parse("HTTP/1.1 200 OK\r\nContent-Length: 1a\r\n\r\n") == .malformed("bad Content-Length"))
        #expect(parse("HTTP/1.1 200 OK\r\nno colon here\r\n\r\n") == .malformed("header line without a colon"))
        #expect(parse("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == .malformed("Transfer-Encoding other than chunked"))
    }

    @Test func chunkedAndCloseDelimitedFraming() {
        let chunked = "HTTP/1.1 200 OK\r\nContent-Length: 99\r\ntransfer-encoding: Chunked\r\n\r\n"
        #expect(parse(chunked) == .head(ResponseHead(status: 200, headLength: chunked.utf8.count, framing: .chunked, closesConnection: false)))
        let untilClose = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
        #expect(parse(untilClose) == .head(ResponseHead(status: 200, headLength: untilClose.utf8.count, framing: .untilClose, closesConnection: true)))
    }

    func scan(_ body: String, received: Int? = nil) -> (ChunkedBody.Scan, String) {
        let bytes = Array(("XX" + body).utf8)
        var output: [UInt8] = []
        let result = ChunkedBody.scan(bytes, from: 2, count: received.map { $0 + 2 } ?? bytes.count, into: &output)
        return (result, String(decoding: output, as: UTF8.self))
    }

    @Test func chunkedBodies() {
        let body = "6\r\n\"lpkrp\r\n1;name=value\r\n\"\r\n0\r\n\r\n"
        #expect(scan(body) == (.complete(end: 2 + body.utf8.count), "\"lpkrp\""))
        #expect(scan("A\r\n0123456789\r\n0\r\nTrailer: x\r\n\r\nNEXT").0 == .complete(end: 2 + 32))
        for received in 0..<body.utf8.count {
            #expect(scan(body, received: received).0 == .incomplete, "received \(received)")
        }
        #expect(scan("x\r\n").0 == .malformed("bad chunk size line"))
        #expect(scan("3\r\nabcd\r\n").0 == .malformed("chunk data not followed by CRLF"))
        #expect(scan("1000000000000000\r\n").0 == .malformed("chunk size too large"))
    }
}
