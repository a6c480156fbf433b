import KVDConfig
import KVDRedis
import KVDSystem

/// kvload's one connection to Redis, with the batches sent on it and not yet acknowledged.
///
/// Batches are pipelined up to `LoadOptions.pipeline` in flight. When the connection breaks (or Redis stays
/// silent past `replyTimeoutMs`), it reconnects for up to `retrySeconds` and sends every unacknowledged batch
/// again, unless Redis restarted in between (a new run id): rows it acknowledged may then be lost, and the
/// load fails rather than promise them.
final class LoadConnection {
    /// Where the rows are written (for a string-layout `--replace`, the staging database).
    private let settings: RedisSettings
    private let options: LoadOptions
    private let tally: LoadTally
    /// Whether HSET replies count new fields (the hash layout).
    private let countsNewKeys: Bool
    private var connection: RedisConnection?
    /// Redis's `run_id` when the connection was made: a different one after a reconnect means a restart.
    private var runID: String?
    private var pending: [PendingBatch] = []

    /// A batch sent and not yet fully acknowledged.
    private struct PendingBatch {
        var batch: CommandBatch
        var replies = 0
        var newFields = 0
        let origin: String
    }

    init(settings: RedisSettings, options: LoadOptions, tally: LoadTally, countsNewKeys: Bool) {
        self.settings = settings
        self.options = options
        self.tally = tally
        self.countsNewKeys = countsNewKeys
    }

    func close() { connection?.close() }

    /// Prints a line on standard error, clearing the progress bar first.
    func note(_ message: String) { tally.progress.note(message) }

    /// The line that ends a failure: rows confirmed and rows still in flight.
    var confirmedLine: String { tally.confirmedLine(inFlightRows: pending.reduce(0) { $0 + $1.batch.rows }) }

    // MARK: Connecting

    /// The first connection: a failure here means Redis is unavailable (no retry).
    func connectFirstTime() throws(LoadFailure) {
        do {
            try connect()
        } catch {
            let what = error.kind == .handshake ? "Redis refused the connection set-up" : "Redis is unreachable"
            throw LoadFailure(.unavailable, "kvload: \(what): \(error.message)")
        }
    }

    /// Opens a connection, waits for the connect and checks it with `INFO server` (which also gives the run id).
    private func connect() throws(RedisError) {
        connection?.close()
        connection = nil
        let fresh = try openRedisConnection(settings)
        connection = fresh
        let info = try roundTrip(RedisCommand(["INFO", "server"]))
        if case .error(let message) = info { throw RedisError(.handshake, "INFO refused: \(message)") }
        // A reply without a run id is no Redis: a connect to a port nobody listens on can meet itself
        // (TCP simultaneous open) and would echo every command back as its "reply".
        guard case .bulk(let text) = info, let id = RedisInfo.value(of: "run_id", in: text) else {
            connection?.close()
            connection = nil
            throw RedisError(.io, "the server answered INFO server without a run id")
        }
        runID = id
    }

    /// After the connection broke: reconnects for up to `retrySeconds`, then resends every unacknowledged batch.
    /// - Throws: `LoadFailure` when Redis refuses the set-up (69), stays away past the retry window or restarted (75),
    ///   or a stop signal arrives.
    private func reconnect(after broken: RedisError) throws(LoadFailure) {
        if broken.kind == .handshake { throw LoadFailure(.unavailable, "kvload: \(broken.message)") }
        note("kvload: lost the connection to Redis (\(broken.message)); reconnecting for up to \(Int(options.retrySeconds)) s")
        let previousRunID = runID
        let deadline = ContinuousClock.now + .milliseconds(Int(options.retrySeconds * 1000))
        var pauseMs = 10
        while true {
            do {
                try connect()
                break
            } catch where error.kind == .handshake {
                throw LoadFailure(.unavailable, "kvload: \(error.message)")
            } catch {
                try LoadFailure.checkStopSignal(options)
                if ContinuousClock.now + .milliseconds(pauseMs) >= deadline {
                    connection?.close()
                    connection = nil
                    throw LoadFailure(.temporaryFailure,
                                      "kvload: lost the connection to Redis and could not reconnect within \(Int(options.retrySeconds)) s (\(error.message))\n" + confirmedLine)
                }
                SystemClock.sleep(milliseconds: pauseMs)
                pauseMs = min(pauseMs * 2, settings.reconnectMaxMs)
            }
        }
        if let previousRunID, previousRunID != runID {
            // Rows acknowledged before the restart survive only if Redis persisted them: success can no longer be promised.
            let consequence = options.replace ? "the staging data may be incomplete, so the live data was left untouched"
                                              : "rows it acknowledged before the restart are lost unless it persisted them; rerun kvload (loads are idempotent)"
            throw LoadFailure(.temporaryFailure, "kvload: Redis restarted during the load (new run id): \(consequence)\n" + confirmedLine)
        }
        for index in pending.indices {
            pending[index].replies = 0
            pending[index].newFields = 0
            connection!.appendEncoded(pending[index].batch.encoded)
        }
        note("kvload: reconnected; resending \(pending.count) unacknowledged batches")
    }

    // MARK: Single commands

    /// Sends one command while nothing else is in flight and waits for its reply.
    func roundTrip(_ command: RedisCommand) throws(RedisError) -> RedisReply {
        guard let connection else { throw RedisError(.io, "not connected") }
        connection.append(command)
        return try awaitReply()
    }

    /// `roundTrip` that reconnects (as mid-load) and sends the command again when the connection breaks.
    func roundTripReconnecting(_ command: RedisCommand) throws(LoadFailure) -> RedisReply {
        while true {
            do {
                return try roundTrip(command)
            } catch {
                try reconnect(after: error)
            }
        }
    }

    /// Every key matching the glob `pattern` (SCAN, so Redis is never blocked for long).
    /// - Throws: `LoadFailure` when the connection cannot be restored or Redis refuses SCAN.
    func scan(matching pattern: String) throws(LoadFailure) -> [String] {
        var keys: [String] = []
        try scanEach(matching: pattern) { page throws(LoadFailure) in keys += page.map { String(decoding: $0, as: UTF8.self) } }
        return keys
    }

    /// Gives up the batches in flight: sends `command` after them on the same connection (so none of them can
    /// write after it), reads and drops their replies, and returns the reply to `command`.
    func abandonInFlight(sending command: RedisCommand) throws(RedisError) -> RedisReply {
        guard let connection else { throw RedisError(.io, "not connected") }
        let outstanding = pending.reduce(0) { $0 + $1.batch.expectedReplies - $1.replies }
        pending.removeAll()
        connection.append(command)
        for _ in 0..<outstanding { _ = try awaitReply() }
        return try awaitReply()
    }

    /// Writes pending output and waits for the next reply.
    private func awaitReply() throws(RedisError) -> RedisReply {
        guard let connection else { throw RedisError(.io, "not connected") }
        return try awaitRedisReply(on: connection, timeoutMs: max(options.replyTimeoutMs, settings.commandTimeoutMs))
    }

    // MARK: Batches

    /// Sends a sealed batch, first waiting (pumping) until fewer than `pipeline` batches are in flight.
    func send(_ batch: CommandBatch, origin: String) throws(LoadFailure) {
        let limit = batch.inFlightLimit(pipeline: options.pipeline)
        while pending.count >= limit { try pump(until: limit - 1) }
        pending.append(PendingBatch(batch: batch, origin: origin))
        connection!.appendEncoded(pending[pending.count - 1].batch.encoded)
        do {
            try connection!.flush()
        } catch {
            try reconnect(after: error)
        }
    }

    /// Waits until every batch sent is acknowledged.
    func drain() throws(LoadFailure) {
        try pump(until: 0)
    }

    /// Writes and reads until at most `limit` batches await replies, reconnecting when the connection breaks.
    private func pump(until limit: Int) throws(LoadFailure) {
        var lastProgress = ContinuousClock.now
        while pending.count > limit {
            try LoadFailure.checkStopSignal(options)
            var refusal: LoadFailure?
            do throws(RedisError) {
                guard let connection else { throw RedisError(.io, "not connected") }
                let (readable, writable) = connection.waitEvents(write: connection.wantsWrite, timeoutMs: 100)
                if writable { try connection.flush() }
                if readable {
                    try connection.read()
                    while let reply = try connection.nextReply() {
                        refusal = accept(reply)
                        if refusal != nil { break }
                        lastProgress = ContinuousClock.now
                    }
                }
                if !readable && !writable && ContinuousClock.now - lastProgress > .milliseconds(options.replyTimeoutMs) {
                    throw RedisError(.timeout, "Redis did not answer for \(options.replyTimeoutMs) ms")
                }
            } catch {
                try reconnect(after: error)
                lastProgress = ContinuousClock.now
            }
            if let refusal { throw refusal }
        }
    }

    /// Counts one reply against the oldest batch in flight.
    /// - Returns: the failure when Redis refused the batch or sent a reply nobody asked for, else nil.
    private func accept(_ reply: RedisReply) -> LoadFailure? {
        guard !pending.isEmpty else { return LoadFailure(.protocolError, "kvload: Redis sent a reply nobody asked for") }
        switch reply {
        case .error(let message):
            return LoadFailure(.protocolError, "kvload: Redis refused the batch starting at \(pending[0].origin): \(message)\n" + confirmedLine)
        case .integer(let count):
            pending[0].newFields += Int(count)
        default:
            break
        }
        pending[0].replies += 1
        if pending[0].replies == pending[0].batch.expectedReplies {
            let done = pending.removeFirst()
            tally.summary.rowsWritten += done.batch.rows
            if countsNewKeys { tally.summary.newKeys += done.newFields }
            tally.showWritten()
        }
        return nil
    }
}

/// Fails unless `reply` is a success.
/// - Throws: `LoadFailure` (76) naming `what` with Redis's error.
func expectSuccess(_ reply: RedisReply, doing what: String) throws(LoadFailure) {
    if case .error(let message) = reply {
        throw LoadFailure(.protocolError, "kvload: \(what) failed: \(message)")
    }
}
