// hiredis's RESP reply reader as kvd and kvload use it (KVDRedis.RedisReplyReader: the same reader and
// conversion as RedisConnection), fed whatever a server might send. The input is fed in up to three
// pieces. Properties: each reply, written back as RESP, reads back to the same reply and nothing more;
// the replies found do not depend on how the bytes were cut.
import FuzzSupport
import KVDRedis

func fuzzRESP(_ input: [UInt8]) {
    var random = InputRandom(input)
    let cuts = [random.next(below: input.count + 1), random.next(below: input.count + 1)].sorted()
    let pieces = [input[..<cuts[0]], input[cuts[0]..<cuts[1]], input[cuts[1]...]].map(Array.init)
    let whole = replies(fed: [input])
    let cut = replies(fed: pieces)
    check(whole.replies == cut.replies && whole.failed == cut.failed,
          "replies depend on the cuts \(cuts): \(whole) against \(cut)")

    for reply in whole.replies {
        var encoded: [UInt8] = []
        append(reply, to: &encoded)
        let again = replies(fed: [encoded])
        check(!again.failed && again.replies == [reply], "\(reply) written as \(describe(encoded)) reads back as \(again)")
    }
}

/// The replies read from `pieces` fed one after the other, and whether the reader stopped on an error.
private func replies(fed pieces: [[UInt8]]) -> (replies: [RedisReply], failed: Bool) {
    let reader = RedisReplyReader()
    var found: [RedisReply] = []
    do {
        for piece in pieces {
            try reader.feed(piece)
            while let reply = try reader.nextReply() { found.append(reply) }
        }
    } catch {
        return (found, true)
    }
    return (found, false)
}

/// `reply` in RESP2, as a server would send it.
private func append(_ reply: RedisReply, to out: inout [UInt8]) {
    switch reply {
    case .status(let text): out += [UInt8(ascii: "+")] + Array(text.utf8) + [13, 10]
    case .error(let text): out += [UInt8(ascii: "-")] + Array(text.utf8) + [13, 10]
    case .integer(let value): out += Array(":\(value)\r\n".utf8)
    case .bulk(let bytes): out += Array("$\(bytes.count)\r\n".utf8) + bytes + [13, 10]
    case .null: out += Array("$-1\r\n".utf8)
    case .array(let elements):
        out += Array("*\(elements.count)\r\n".utf8)
        for element in elements { append(element, to: &out) }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzRESP(fuzzInput(data, size))
    return 0
}
