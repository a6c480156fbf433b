import KVDConfig
import KVDRedis

/// How a load talks to Redis: one server (`LoadConnection`) or a Redis Cluster
/// (`ClusterLoadConnection`, every command sent to the node that serves its key's slot).
/// Batches are pipelined and resent until acknowledged; single commands name the key they act
/// on, so that a cluster can route them.
protocol LoadChannel: AnyObject {
    /// Whether batches must be slotted (`CommandBatch(slotted:)`) and multi-key commands kept to one slot.
    var isCluster: Bool { get }
    /// The first connection (or the cluster's slot map): a failure means Redis is unavailable (69).
    func connectFirstTime() throws(LoadFailure)
    /// Sends a sealed batch, first waiting until the batches in flight leave room for it.
    func send(_ batch: CommandBatch, origin: String) throws(LoadFailure)
    /// Waits until every batch sent is acknowledged.
    func drain() throws(LoadFailure)
    /// After `drain`: checks that what Redis acknowledged is still there to be trusted (a cluster
    /// waits for a replica of each master, `WAIT`, and fails when a master that acknowledged rows
    /// restarted); nothing to do on one server (its restarts are caught on reconnect).
    func confirm() throws(LoadFailure)
    /// One command acting on `key` (nil: a command about the server, sent to any master), resent
    /// after a reconnect or a redirection; Redis's error replies are returned, not thrown.
    func call(_ command: RedisCommand, key: [UInt8]?) throws(LoadFailure) -> RedisReply
    /// Several commands at once, each acting on its key (pipelined), replies in order.
    func callAll(_ commands: [(command: RedisCommand, key: [UInt8]?)]) throws(LoadFailure) -> [RedisReply]
    /// `keys` cut into groups that one multi-key command may name: at most `limit` keys each, and on
    /// a cluster all of one slot.
    func keyGroups(_ keys: [[UInt8]], limit: Int) -> [[[UInt8]]]
    /// Every key matching the glob `pattern`, on every master (SCAN), a page at a time.
    func scanEach(matching pattern: String, _ page: ([[UInt8]]) throws(LoadFailure) -> Void) throws(LoadFailure)
    /// Gives up the batches in flight: afterwards none of them can still write (each connection
    /// answered a PING sent after them).
    func abandonInFlight() throws(LoadFailure)
    /// The line that ends a failure: rows confirmed and rows still in flight.
    var confirmedLine: String { get }
    /// Prints a line on standard error, clearing the progress bar first.
    func note(_ message: String)
    func close()
}

/// A `ClusterLoadConnection` for `cluster = yes`, else a `LoadConnection`.
func makeLoadChannel(settings: RedisSettings, options: LoadOptions, tally: LoadTally, countsNewKeys: Bool) throws(LoadFailure) -> any LoadChannel {
    if settings.cluster { return try ClusterLoadConnection(settings: settings, options: options, tally: tally, countsNewKeys: countsNewKeys) }
    return LoadConnection(settings: settings, options: options, tally: tally, countsNewKeys: countsNewKeys)
}

extension LoadChannel {
    /// `call` for a command named by its string arguments, the second one being its key.
    func call(_ arguments: [String]) throws(LoadFailure) -> RedisReply {
        try call(RedisCommand(arguments), key: arguments.count > 1 ? Array(arguments[1].utf8) : nil)
    }
}

extension LoadConnection: LoadChannel {
    var isCluster: Bool { false }

    func confirm() throws(LoadFailure) {}

    func call(_ command: RedisCommand, key: [UInt8]?) throws(LoadFailure) -> RedisReply {
        try roundTripReconnecting(command)
    }

    func callAll(_ commands: [(command: RedisCommand, key: [UInt8]?)]) throws(LoadFailure) -> [RedisReply] {
        var replies: [RedisReply] = []
        for (command, _) in commands { replies.append(try roundTripReconnecting(command)) }
        return replies
    }

    func keyGroups(_ keys: [[UInt8]], limit: Int) -> [[[UInt8]]] {
        stride(from: 0, to: keys.count, by: limit).map { Array(keys[$0..<min($0 + limit, keys.count)]) }
    }

    func scanEach(matching pattern: String, _ page: ([[UInt8]]) throws(LoadFailure) -> Void) throws(LoadFailure) {
        try scanPages(matching: pattern, send: { (command: RedisCommand) throws(LoadFailure) in try roundTripReconnecting(command) }, page)
    }

    func abandonInFlight() throws(LoadFailure) {
        let reply: RedisReply
        do {
            reply = try abandonInFlight(sending: RedisCommand(["PING"]))
        } catch {
            throw LoadFailure(.unavailable, error.message)
        }
        try expectSuccess(reply, doing: "PING")
    }
}

/// Walks `SCAN 0 MATCH pattern COUNT 1000` to the end on one server, `send` sending each step,
/// handing each page of keys to `page`.
func scanPages(matching pattern: String, send: (RedisCommand) throws(LoadFailure) -> RedisReply,
               _ page: ([[UInt8]]) throws(LoadFailure) -> Void) throws(LoadFailure) {
    var cursor = "0"
    repeat {
        let reply = try send(RedisCommand(["SCAN", cursor, "MATCH", pattern, "COUNT", "1000"]))
        try expectSuccess(reply, doing: "SCAN")
        guard case .array(let parts) = reply, parts.count == 2, case .bulk(let next) = parts[0], case .array(let found) = parts[1] else {
            throw LoadFailure(.protocolError, "kvload: SCAN gave an unexpected reply")
        }
        var keys: [[UInt8]] = []
        for case .bulk(let key) in found { keys.append(key) }
        if !keys.isEmpty { try page(keys) }
        cursor = String(decoding: next, as: UTF8.self)
    } while cursor != "0"
}

/// Opens a connection to the server `settings` name and waits (up to `connectTimeoutMs`) for the connect.
func openRedisConnection(_ settings: RedisSettings) throws(RedisError) -> RedisConnection {
    let fresh = try RedisConnection(settings: settings)
    let deadline = ContinuousClock.now + .milliseconds(settings.connectTimeoutMs)
    while try !fresh.finishConnect() {
        if ContinuousClock.now >= deadline {
            fresh.close()
            throw RedisError(.connect, "cannot connect to Redis at \(settings.targetDescription): timed out after \(settings.connectTimeoutMs) ms")
        }
        _ = fresh.waitEvents(write: true, timeoutMs: 20)
    }
    return fresh
}

/// Writes `connection`'s pending output and waits up to `timeoutMs` for its next reply.
func awaitRedisReply(on connection: RedisConnection, timeoutMs: Int) throws(RedisError) -> RedisReply {
    let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
    while true {
        if let reply = try connection.nextReply() { return reply }
        let (readable, writable) = connection.waitEvents(write: connection.wantsWrite, timeoutMs: 100)
        if writable { try connection.flush() }
        if readable { try connection.read() }
        if ContinuousClock.now >= deadline { throw RedisError(.timeout, "Redis did not answer in time") }
    }
}
