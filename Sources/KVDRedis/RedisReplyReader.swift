import CHiredis

/// hiredis's RESP reply parser on its own, without a socket: bytes go in with `feed`, complete replies
/// come out of `nextReply`. It is the same parser (`redisReader`) and the same conversion that
/// `RedisConnection` uses for the bytes it reads, so feeding it arbitrary bytes (the fuzz harness
/// in Fuzz/) tests what kvd and kvload do with whatever a Redis server, or an impostor, sends.
public final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>

    public init() {
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reader") }
        self.reader = reader
    }

    deinit { redisReaderFree(reader) }

    /// Appends bytes to the reader's buffer.
    /// - Throws: `.io` when the reader is already in its error state (after a protocol error).
    public func feed(_ bytes: [UInt8]) throws(RedisError) {
        let status = bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { redisReaderFeed(reader, $0.baseAddress, $0.count) }
        }
        if status != REDIS_OK { throw protocolError() }
    }

    /// The next complete reply in the bytes fed so far, or nil when none is complete yet.
    /// - Throws: `.io` on a protocol error (the reader stays in that state).
    public func nextReply() throws(RedisError) -> RedisReply? {
        var raw: UnsafeMutableRawPointer?
        if redisReaderGetReply(reader, &raw) != REDIS_OK { throw protocolError() }
        guard let raw else { return nil }
        defer { freeReplyObject(raw) }
        return RedisConnection.convert(raw.assumingMemoryBound(to: redisReply.self))
    }

    private func protocolError() -> RedisError {
        let message = withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return RedisError(.io, "Redis protocol error: \(message)")
    }
}
