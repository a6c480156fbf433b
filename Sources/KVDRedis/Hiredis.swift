import CHiredis
import KVDSettings

#if canImport(Glibc)
import Glibc
#endif

/// One non-blocking connection to Redis over hiredis: commands are appended to an output buffer,
/// flushed when the socket can take them, and replies are parsed as they arrive, in order.
///
/// This file is the only Swift code that touches a `redisContext`. The connection never blocks:
/// its owner waits on `fileDescriptor` (see `wantsWrite`) and calls `flush`, `read` and `nextReply`.
/// AUTH and SELECT (and, in Sentinel mode, ROLE) are sent first on every new connection and their
/// replies are consumed here, so callers only ever see replies to their own commands.
public final class RedisConnection {
    private var context: UnsafeMutablePointer<redisContext>?
    private var connected = false
    private var handshakeReplies = 0
    /// ROLE was queued last in the handshake: its reply must say `master` (`RedisSettings.requiresMasterRole`).
    private var confirmsMaster = false
    /// Scratch for the RESP header of the command being appended.
    private var header: [UInt8] = []

    /// The socket, for `poll`; -1 once closed.
    public var fileDescriptor: Int32 { context?.pointee.fd ?? -1 }

    /// Starts connecting to the server named by `settings` and queues AUTH and SELECT.
    /// - Throws: `RedisError` of kind `.connect` when the connection fails at once (refused, no such socket).
    public init(settings: RedisSettings) throws(RedisError) {
        if let socket = settings.socket {
            context = redisConnectUnixNonBlock(socket)
        } else {
            context = redisConnectNonBlock(settings.host, Int32(settings.port))
        }
        guard let context else { throw RedisError(.connect, "cannot allocate a hiredis context") }
        if context.pointee.err != 0 {
            let message = Self.errorString(context)
            redisFree(context)
            self.context = nil
            throw RedisError(.connect, "cannot connect to Redis at \(settings.targetDescription): \(message)")
        }
        if settings.socket == nil { Self.enableKeepAlive(context.pointee.fd, seconds: settings.keepaliveSeconds) }
        context.pointee.reader.pointee.fn = HiredisReplyFunctions.guarded
        target = settings.targetDescription
        if let password = settings.password {
            var auth = RedisCommand(["AUTH"])
            if let user = settings.user { auth.add(user) }
            auth.add(password)
            append(auth)
            handshakeReplies += 1
        }
        if settings.db != 0 {
            append(RedisCommand(["SELECT", String(settings.db)]))
            handshakeReplies += 1
        }
        if settings.requiresMasterRole {
            append(RedisCommand(["ROLE"]))
            handshakeReplies += 1
            confirmsMaster = true
        }
    }

    private let target: String

    deinit { close() }

    /// True once the TCP (or unix) connect has completed.
    public var isConnected: Bool { connected }

    /// True while the connection waits for the connect to finish or has output not yet written.
    public var wantsWrite: Bool {
        guard let context else { return false }
        return !connected || (context.pointee.obuf.map { sdslen($0) > 0 } ?? false)
    }

    /// Checks a connect in progress once the socket is writable.
    /// - Returns: true when connected, false when still in progress.
    /// - Throws: `.connect` when the connect failed.
    @discardableResult
    public func finishConnect() throws(RedisError) -> Bool {
        if connected { return true }
        guard let context else { throw RedisError(.connect, "connection closed") }
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(context.pointee.fd, SOL_SOCKET, SO_ERROR, &code, &length) != 0 {
            code = errno
        }
        if code == EINPROGRESS || code == EALREADY { return false }
        if code != 0 {
            throw RedisError(.connect, "cannot connect to Redis at \(target): \(String(cString: strerror(code)))")
        }
        var probe = pollfd(fd: context.pointee.fd, events: Int16(POLLOUT), revents: 0)
        guard poll(&probe, 1, 0) == 1, probe.revents & Int16(POLLOUT) != 0 else { return false }
        connected = true
        return true
    }

    /// Appends one command to the output buffer (binary-safe: arguments go with their lengths).
    public func append(_ command: RedisCommand) {
        header.removeAll(keepingCapacity: true)
        command.appendHeader(to: &header)
        appendEncoded(header)
        appendEncoded(command.arguments)
    }

    /// Appends bytes that are already RESP-encoded commands (kvload builds its batches itself).
    public func appendEncoded(_ bytes: [UInt8]) {
        guard let context, !bytes.isEmpty else { return }
        bytes.withUnsafeBufferPointer { buffer in
            buffer.withMemoryRebound(to: CChar.self) { chars in
                _ = redisAppendFormattedCommand(context, chars.baseAddress, chars.count)
            }
        }
    }

    /// Writes as much buffered output as the socket takes now.
    /// - Returns: true when the output buffer is empty.
    /// - Throws: `.io` when the write failed.
    @discardableResult
    public func flush() throws(RedisError) -> Bool {
        guard let context else { throw RedisError(.io, "connection closed") }
        if !connected { return false }
        var done: Int32 = 0
        if redisBufferWrite(context, &done) != REDIS_OK {
            throw RedisError(.io, "Redis write failed: \(Self.errorString(context))")
        }
        return done != 0
    }

    /// Reads what the socket has now into the reply parser (up to `defaultReadLimit` bytes).
    /// - Throws: `.io` when Redis closed the connection (and nothing came before the end) or the read failed.
    public func read() throws(RedisError) {
        let (bytes, closed) = try read(upTo: Self.defaultReadLimit)
        if closed && bytes == 0 { throw RedisError(.io, "Redis closed the connection") }
    }

    /// What one `read()` takes at most: enough for any burst of small replies, small enough that
    /// a big value is read over several loop turns and its worker serves other connections meanwhile.
    public static let defaultReadLimit = 1 << 20

    /// Reads what the socket has, until it has no more or `limit` bytes were read, into the
    /// reply parser. A read that leaves the buffer part-filled ends it: the socket is drained, and
    /// the usual small reply costs one system call, not two.
    /// - Returns: the bytes read, and whether Redis closed the connection after them (the replies
    ///   they complete are still there for `nextReply`).
    /// - Throws: `.io` when the read failed, or the bytes are not RESP.
    public func read(upTo limit: Int) throws(RedisError) -> (bytes: Int, closed: Bool) {
        guard let context, let reader = context.pointee.reader else { throw RedisError(.io, "connection closed") }
        if peerClosed { return (0, true) }
        if readBuffer.isEmpty { readBuffer = [UInt8](repeating: 0, count: Self.readChunk) }
        var total = 0
        while total < limit {
            let count = readBuffer.withUnsafeMutableBytes { recv(context.pointee.fd, $0.baseAddress, $0.count, 0) }
            if count > 0 {
                let fed = readBuffer.withUnsafeBytes { redisReaderFeed(reader, $0.baseAddress?.assumingMemoryBound(to: CChar.self), count) }
                if fed != REDIS_OK { throw RedisError(.io, "Redis protocol error: \(Self.errorString(context))") }
                total += count
                if count < readBuffer.count { break }
            } else if count == 0 {
                peerClosed = true
                return (total, true)
            } else if errno == EINTR {
                continue
            } else if errno == EAGAIN || errno == EWOULDBLOCK {
                break
            } else {
                throw RedisError(.io, "Redis read failed: \(String(cString: strerror(errno)))")
            }
        }
        return (total, false)
    }

    /// The size of one `recv`: 64 KiB (hiredis reads 16 KiB, which made a 10 MB value 640 loop turns).
    private static let readChunk = 64 * 1024
    private var readBuffer: [UInt8] = []
    /// Redis closed its end; the replies read before that may still be parsed.
    private var peerClosed = false
    /// Replies parsed so far on this connection, handshake included.
    private var repliesParsed = 0

    /// The next complete reply already read, or nil when none is complete yet.
    /// - Throws: `.io` on a protocol error, `.handshake` when AUTH or SELECT was refused, or ROLE
    ///   (Sentinel mode) did not answer `master`.
    public func nextReply() throws(RedisError) -> RedisReply? {
        guard let context else { throw RedisError(.io, "connection closed") }
        while true {
            var raw: UnsafeMutableRawPointer?
            if redisGetReplyFromReader(context, &raw) != REDIS_OK {
                throw RedisError(.io, "Redis protocol error: \(Self.errorString(context))")
            }
            guard let raw else {
                releaseIdleReaderBuffer(context)
                return nil
            }
            let reply = Self.convert(raw.assumingMemoryBound(to: redisReply.self))
            freeReplyObject(raw)
            repliesParsed += 1
            if repliesParsed == 1, case .error(let message) = reply, RedisReply.refusesNewConnections(message) {
                // Redis answers a connection it will not serve (maxclients) with one error, then closes it.
                throw RedisError(.connect, "Redis refused the connection: \(message)")
            }
            if handshakeReplies > 0 {
                handshakeReplies -= 1
                if handshakeReplies == 0 && confirmsMaster {
                    try RedisReply.confirmMasterRole(reply, target: target)
                    continue
                }
                if case .error(let message) = reply {
                    throw RedisError(.handshake, "Redis refused the connection set-up (AUTH/SELECT): \(message)")
                }
                continue
            }
            return reply
        }
    }

    /// hiredis keeps its reader's buffer as large as the largest reply until the next read:
    /// after a big value, an idle connection would hold that much. Frees it once it is empty.
    private func releaseIdleReaderBuffer(_ context: UnsafeMutablePointer<redisContext>) {
        guard let reader = context.pointee.reader, reader.pointee.len == 0, let buffer = reader.pointee.buf,
              sdsavail(buffer) > Self.readChunk else { return }
        sdsfree(buffer)
        reader.pointee.buf = sdsempty()
        reader.pointee.pos = 0
    }

    /// TCP keep-alive as `[redis] keepalive_s` asks: the first probe after `seconds` of silence,
    /// the next ones a third of that apart (at least 1 s), the connection dropped after 3
    /// unanswered (hiredis's own `redisEnableKeepAlive` fixes 15 s, so ~30 s to notice).
    static func enableKeepAlive(_ fd: Int32, seconds: Int) {
        func set(_ level: Int32, _ option: Int32, _ value: Int) {
            var value = Int32(clamping: value)
            _ = setsockopt(fd, level, option, &value, socklen_t(MemoryLayout<Int32>.size))
        }
        set(SOL_SOCKET, SO_KEEPALIVE, 1)
        set(Int32(IPPROTO_TCP), TCP_KEEPIDLE, seconds)
        set(Int32(IPPROTO_TCP), TCP_KEEPINTVL, max(1, seconds / 3))
        set(Int32(IPPROTO_TCP), TCP_KEEPCNT, 3)
    }

    /// Blocks until the socket is readable or, with `write`, writable, or until `timeoutMs` passes.
    /// For callers that own a thread for this connection (kvload); kvd's workers poll instead.
    /// - Returns: which of the two it is (both false at the timeout; readable also on a hang-up or error).
    public func waitEvents(write: Bool, timeoutMs: Int) -> (readable: Bool, writable: Bool) {
        guard let context else { return (false, false) }
        let events = Int16(POLLIN) | (write ? Int16(POLLOUT) : 0)
        var descriptor = pollfd(fd: context.pointee.fd, events: events, revents: 0)
        while true {
            let n = poll(&descriptor, 1, Int32(clamping: timeoutMs))
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return (false, false) }
            let failed = descriptor.revents & Int16(POLLERR | POLLHUP) != 0
            return (descriptor.revents & Int16(POLLIN) != 0 || failed, descriptor.revents & Int16(POLLOUT) != 0)
        }
    }

    /// Closes the socket and frees the context. Safe to call more than once.
    public func close() {
        if let context { redisFree(context) }
        context = nil
        connected = false
    }

    /// Shared with `RedisReplyReader`.
    static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RedisReply {
        let r = reply.pointee
        switch r.type {
        case REDIS_REPLY_STRING:
            return .bulk(r.str.map { Array(UnsafeRawBufferPointer(start: $0, count: r.len)) } ?? [])
        case REDIS_REPLY_STATUS:
            return .status(r.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: r.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_ERROR:
            return .error(r.str.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: r.len), as: UTF8.self) } ?? "")
        case REDIS_REPLY_INTEGER:
            return .integer(r.integer)
        case REDIS_REPLY_ARRAY:
            return .array((0..<r.elements).map { convert(r.element[$0]!) })
        default:
            return .null
        }
    }

    private static func errorString(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { raw in
            let bytes = raw.prefix { $0 != 0 }
            return String(decoding: bytes, as: UTF8.self)
        }
    }
}

/// hiredis 0.14's reply functions, with one guard: its reader callocs 8 bytes for every element an
/// array header announces before any element arrives (and walks them all when freed), so a server,
/// or an impostor, that sends `*999999999` made kvd allocate 8 GB and stall for seconds (found by
/// the fuzz-resp harness). Arrays announcing more than `maxArrayElements` are refused: hiredis then
/// reports a protocol error and the connection is dropped, as for any malformed reply.
enum HiredisReplyFunctions {
    /// Far above any reply kvd or kvload asks for (an HGETALL of the descriptor, CLUSTER SLOTS).
    static let maxArrayElements: Int32 = 1 << 20

    /// hiredis's own table (static in hiredis.c), copied from a reader it creates.
    private static let defaults: redisReplyObjectFunctions = {
        guard let reader = redisReaderCreate() else { fatalError("hiredis could not allocate a reader") }
        defer { redisReaderFree(reader) }
        return reader.pointee.fn.pointee
    }()

    /// The guarded table, allocated once and never freed (readers keep a pointer to it).
    nonisolated(unsafe) static let guarded: UnsafeMutablePointer<redisReplyObjectFunctions> = {
        let table = UnsafeMutablePointer<redisReplyObjectFunctions>.allocate(capacity: 1)
        table.initialize(to: defaults)
        table.pointee.createArray = { task, elements in
            guard elements <= HiredisReplyFunctions.maxArrayElements else { return nil }
            return HiredisReplyFunctions.defaults.createArray?(task, elements)
        }
        return table
    }()
}

/// hiredis's RESP reply parser on its own, without a socket: bytes go in with `feed`, complete replies
/// come out of `nextReply`. It is the same parser (`redisReader`) and the same conversion that
/// `RedisConnection` uses for the bytes it reads, so feeding it arbitrary bytes (the fuzz harness
/// in Fuzz/) tests what kvd and kvload do with whatever a Redis server, or an impostor, sends.
public final class RedisReplyReader {
    private let reader: UnsafeMutablePointer<redisReader>

    public init() {
        guard let reader = redisReaderCreateWithFunctions(HiredisReplyFunctions.guarded) else {
            fatalError("hiredis could not allocate a reader")
        }
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
