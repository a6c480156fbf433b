// kvbench's HTTP response parser (KVBench.HTTPResponseParser and ChunkedBody). Properties: a head is
// found only once all of it has arrived, and the same head whatever follows it; a shorter prefix is
// never a head; a complete chunked body is never malformed while it is still arriving, and its data,
// written back as one chunk, scans to the same data.
import FuzzSupport
import KVBench

func fuzzHTTPResponse(_ input: [UInt8]) {
    var random = InputRandom(input)
    let full = HTTPResponseParser.parseHead(input, count: input.count)
    // Some prefixes, and the buffer padded past `count` with bytes the parser must not look at.
    for _ in 0..<6 {
        let count = random.next(below: input.count + 1)
        let prefix = HTTPResponseParser.parseHead(input + [0x0D, 0x0A, 0x0D, 0x0A], count: count)
        switch (full, prefix) {
        case (.head(let head), .head(let early)):
            check(count >= head.headLength && early == head, "prefix of \(count) bytes gave \(early), the whole \(head)")
        case (.head(let head), _):
            check(count < head.headLength, "prefix of \(count) bytes past the head (\(head.headLength)) gave \(prefix)")
        case (.incomplete, let result):
            check(result == .incomplete, "prefix of \(count) bytes gave \(result) where the whole is incomplete")
        case (.malformed, .head):
            check(false, "prefix of \(count) bytes gave a head where the whole is malformed")
        case (.malformed, _):
            break
        }
    }
    guard case .head(let head) = full else { return }
    check(head.headLength <= input.count && (0...999).contains(head.status), "head \(head) of \(input.count) bytes")
    guard head.framing == .chunked else { return }

    var body: [UInt8] = []
    guard case .complete(let end) = ChunkedBody.scan(input, from: head.headLength, count: input.count, into: &body) else { return }
    check(end <= input.count, "chunked body ends at \(end) past \(input.count)")
    for _ in 0..<6 {
        let count = head.headLength + random.next(below: end - head.headLength)
        var partial: [UInt8] = []
        let scan = ChunkedBody.scan(input, from: head.headLength, count: count, into: &partial)
        check(scan == .incomplete, "chunked body cut at \(count) of \(end) gave \(scan)")
    }
    var rewritten = Array(String(body.count, radix: 16).utf8) + [0x0D, 0x0A] + body + Array("\r\n0\r\n\r\n".utf8)
    if body.isEmpty { rewritten = Array("0\r\n\r\n".utf8) }
    var again: [UInt8] = []
    let scan = ChunkedBody.scan(rewritten, from: 0, count: rewritten.count, into: &again)
    check(scan == .complete(end: rewritten.count) && again == body, "body \(describe(body)) rewritten scans as \(scan), \(describe(again))")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzHTTPResponse(fuzzInput(data, size))
    return 0
}
