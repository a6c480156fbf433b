import KVDRedis
import Testing

@Suite("RESP reader")
struct RedisReplyReaderTests {
    /// hiredis 0.14 callocs 8 bytes per announced element up front: `*999999999` once cost 8 GB and
    /// seconds of stall. Such a header is now a protocol error, at once.
    @Test func anAbsurdArrayHeaderIsAProtocolErrorAtOnce() throws {
        let reader = RedisReplyReader()
        try reader.feed(Array("*999999999\r\n".utf8))
        let started = ContinuousClock.now
        #expect(throws: RedisError.self) { _ = try reader.nextReply() }
        // A calloc of 8 GB and its release take seconds; a refusal takes microseconds.
        #expect(ContinuousClock.now - started < .seconds(1))
    }

    @Test func ordinaryRepliesStillRead() throws {
        let reader = RedisReplyReader()
        try reader.feed(Array("*2\r\n$1\r\na\r\n:5\r\n+OK\r\n-ERR x\r\n$-1\r\n".utf8))
        #expect(try reader.nextReply() == .array([.bulk(Array("a".utf8)), .integer(5)]))
        #expect(try reader.nextReply() == .status("OK"))
        #expect(try reader.nextReply() == .error("ERR x"))
        #expect(try reader.nextReply() == .null)
        #expect(try reader.nextReply() == nil)
    }

    @Test func aLargeButPlausibleArrayIsRead() throws {
        let reader = RedisReplyReader()
        var bytes = Array("*1000\r\n".utf8)
        for _ in 0..<1000 { bytes += Array(":1\r\n".utf8) }
        try reader.feed(bytes)
        guard case .array(let items) = try reader.nextReply() else { Issue.record("not an array"); return }
        #expect(items.count == 1000)
    }
}
