import KVDConfig
import KVDRedis
import KVDSystem

#if canImport(Glibc)
import Glibc
#endif

/// The input formats kvload reads.
public enum InputFormat: String, Sendable, CaseIterable {
    case seed, csv, tsv, jsonl
}

/// Everything about one load except where Redis is.
public struct LoadOptions: Sendable {
    public var format: InputFormat = .seed
    /// Refuse keys that are not lower-case UUIDv4.
    public var strictKeys = false
    /// CSV/TSV: the first record names the columns.
    public var header = false
    public var keyColumn = ColumnSelector.index(1)
    public var valueColumn = ColumnSelector.index(2)
    public var keyField = "key"
    public var valueField = "value"
    /// String layout only: `SET … EX seconds`.
    public var ttlSeconds: Int? = nil
    /// Load into staging and switch atomically at the end.
    public var replace = false
    /// String layout with `replace`: the empty database loaded into and then swapped with the live one.
    public var stagingDB: Int? = nil
    /// Malformed rows skipped before the load stops.
    public var maxErrors = 0
    /// Parse and validate only.
    public var dryRun = false
    /// Most rows per batch.
    public var batchRows = 1000
    /// Most key and value bytes per batch (a single larger row still goes, alone).
    public var batchBytes = 1 << 20
    /// Most batches sent and not yet acknowledged.
    public var pipeline = 16
    /// How long to keep reconnecting after the connection is lost mid-load.
    public var retrySeconds = 30.0
    /// How long Redis may stay silent while replies are due before the connection counts as lost.
    public var replyTimeoutMs = 10_000
    /// The longest record accepted.
    public var maxLineBytes = 64 << 20
    /// Polled while loading: a signal number (SIGINT, SIGTERM) once one asked kvload to stop, else 0.
    public var stopSignal: @Sendable () -> Int32 = { 0 }

    public init() {}
}

/// Why a load stopped: the message to print and the sysexits code to exit with.
public struct LoadFailure: Error, Sendable, CustomStringConvertible {
    public let exitCode: Int32
    public let message: String

    public init(_ exitCode: Int32, _ message: String) {
        self.exitCode = exitCode
        self.message = message
    }

    public init(_ status: SysExit, _ message: String) {
        self.init(status.rawValue, message)
    }

    public var description: String { message }

    /// Stopped by a signal: exit 128 + the signal number, as a shell reports it.
    static func interrupted(by signal: Int32) -> LoadFailure {
        LoadFailure(SysExit.interrupted(by: signal), "kvload: interrupted by signal \(signal): stopped")
    }
}

/// Streams input files into Redis: parse, batch, pipeline, count acknowledgements, reconnect and resend.
public final class Loader {
    private let settings: RedisSettings
    private let options: LoadOptions
    private let progress: ProgressReporter
    /// What the final summary reports.
    public private(set) var summary = LoadSummary()

    private var connection: RedisConnection?
    private var runID: String?
    private var pending: [PendingBatch] = []
    /// Set once a `--replace` switch has (or may have) happened: from then on the staging data is not deleted.
    private var switched = false
    private var finishedBytes = 0
    private var totalBytes: Int?

    /// A batch sent and not yet fully acknowledged.
    private struct PendingBatch {
        var batch: CommandBatch
        var replies = 0
        var newFields = 0
        let origin: String
    }

    public init(settings: RedisSettings, options: LoadOptions, progress: ProgressReporter) {
        self.settings = settings
        self.options = options
        self.progress = progress
    }

    /// Whether HSET replies are counted (the summary's new/updated split).
    public var countsNewKeys: Bool { settings.layout == .hash && !options.dryRun }
    /// Whether the rows go into a hash that was empty when the load began (a `--replace` staging
    /// hash, or a first load): then every row Redis does not report as new repeats a key of the input.
    public private(set) var intoEmptyTarget = false

    /// The hash a `--replace` load writes before the switch.
    public var stagingHash: String { "\(settings.hash):kvload-staging:\(getpid())" }
    /// Where the old live hash goes during the switch, to be freed in the background (UNLINK).
    var retiredHash: String { "\(settings.hash):kvload-retired:\(getpid())" }

    /// The hash switch, atomic in Redis: the live hash is renamed aside (O(1)) before the staging
    /// hash takes its name, so Redis never frees the old hash inside the switch (a plain
    /// `RENAME staging live` would, blocking every reader for the whole free: ~0.3 s per million
    /// fields). Returns 0 when the staging hash is gone already (a resent switch that was done).
    static let switchScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[3]) end
        redis.call('RENAME', KEYS[1], KEYS[2])
        return 1
        """

    private var writeMode: WriteMode {
        switch settings.layout {
        case .hash:
            return .hash(name: options.replace ? stagingHash : settings.hash)
        case .string:
            if let ttl = options.ttlSeconds { return .stringsWithTTL(prefix: settings.prefix, seconds: ttl) }
            return .strings(prefix: settings.prefix)
        }
    }

    /// The settings of the connection that writes: the staging database for a string-layout replace.
    private var writeSettings: RedisSettings {
        var chosen = settings
        if options.replace && settings.layout == .string, let staging = options.stagingDB { chosen.db = staging }
        return chosen
    }

    /// Loads every file in order (`-` is standard input).
    /// - Throws: `LoadFailure` with the exit code and message; `summary` then holds what was confirmed.
    public func run(paths: [String]) throws(LoadFailure) {
        do {
            try validate()
            try checkInputsExist(paths)
            if !options.dryRun {
                try connectFirstTime()
                try prepareTarget()
            }
            do {
                for path in paths { try load(path: path) }
                try drain()
                if options.replace && !options.dryRun { try switchToNewData() }
            } catch let failure as LoadFailure {
                if options.replace && !options.dryRun && !switched { discardStaging() } else if failure.exitCode == SysExit.dataError.rawValue { try? drain() }
                throw failure
            }
        } catch let failure as LoadFailure {
            finish()
            throw failure
        } catch let error as RedisError {
            finish()
            throw LoadFailure(.unavailable, "kvload: Redis failed while setting up the load: \(error.message)")
        } catch {
            finish()
            throw LoadFailure(.software, "internal error: \(error)")
        }
        finish()
    }

    private func finish() {
        summary.elapsedSeconds = progress.elapsedSeconds
        progress.finish()
        connection?.close()
    }

    private func validate() throws {
        if options.ttlSeconds != nil && settings.layout != .string {
            throw LoadFailure(.usage, "--ttl applies to the string layout only (the hash layout has no per-field TTL in Redis 7.0)")
        }
        if options.replace && settings.layout == .string {
            guard let staging = options.stagingDB else {
                throw LoadFailure(.usage, "--replace with the string layout needs --staging-db N: an empty database to load into, then swapped with db \(settings.db) (SWAPDB)")
            }
            if staging == settings.db { throw LoadFailure(.usage, "--staging-db must differ from the live db \(settings.db)") }
        }
    }

    // MARK: Reading

    /// Fails before touching Redis when an input cannot be opened (exit 66).
    private func checkInputsExist(_ paths: [String]) throws {
        for path in paths where path != "-" {
            do {
                _ = try FileSource(path: path)
            } catch {
                throw LoadFailure(.noInput, "kvload: \(error)")
            }
        }
    }

    private func makeParser() throws -> any RowParser {
        switch options.format {
        case .seed:
            return SeedParser()
        case .jsonl:
            return JSONLinesParser(keyField: options.keyField, valueField: options.valueField)
        case .csv, .tsv:
            do {
                return try DelimitedParser(delimiter: options.format == .csv ? 0x2C : 0x09, hasHeader: options.header,
                                           key: options.keyColumn, value: options.valueColumn)
            } catch {
                throw LoadFailure(.usage, error.reason)
            }
        }
    }

    private func load(path: String) throws {
        let source: any ByteSource
        do {
            source = try openInput(path: path)
        } catch {
            throw LoadFailure(error.kind == .cannotOpen ? .noInput : .ioError, "kvload: \(error)")
        }
        var parser = try makeParser()
        var reader = RecordReader(source: source, quoteAware: parser.quoteAware, maxRecordBytes: options.maxLineBytes)
        totalBytes = source.totalBytes.map { $0 + finishedBytes }
        var row = Row()
        var batch = CommandBatch(mode: writeMode)
        var batchOrigin = ""
        var sinceUpdate = 0
        while true {
            let record: RecordLocation
            do {
                guard let next = try reader.next() else { break }
                record = next
            } catch let error as InputError {
                throw LoadFailure(error.kind == .cannotOpen ? .noInput : (error.kind == .corruptGzip ? .dataError : .ioError), "kvload: \(error)")
            } catch let error as RecordTooLong {
                let hint = parser.quoteAware ? "; an unclosed double quote makes the record run on" : ""
                throw LoadFailure(.dataError, "\(path):\(error.line): record longer than \(error.limit) bytes (--max-line-bytes)\(hint)")
            }
            summary.rowsRead += 1
            do {
                if try parser.parse(reader.buffer[record.range], into: &row) == .header {
                    summary.rowsRead -= 1
                    continue
                }
                if options.strictKeys && !KeyRules.isUUIDv4(row.key[...]) {
                    throw RowError("key is not a lower-case UUIDv4: \(KeyRules.printable(row.key[...]))")
                }
            } catch let error as RowError {
                if error.isFatal { throw LoadFailure(.dataError, "\(path):\(record.line): \(error.reason)") }
                summary.skippedRows += 1
                progress.finish()
                warn("\(path):\(record.line): \(error.reason)")
                if summary.skippedRows > options.maxErrors {
                    throw LoadFailure(.dataError, options.maxErrors == 0
                        ? "kvload: stopped at the first malformed row (--max-errors 0)"
                        : "kvload: stopped: more than \(options.maxErrors) malformed rows (--max-errors)")
                }
                continue
            }
            sinceUpdate += 1
            if sinceUpdate >= 4096 {
                sinceUpdate = 0
                try checkStopSignal()
                summary.bytesRead = finishedBytes + reader.bytesConsumed
                progress.update(bytes: summary.bytesRead, totalBytes: totalBytes, rows: options.dryRun ? summary.rowsRead : summary.rowsWritten)
            }
            if options.dryRun { continue }
            if batch.isEmpty { batchOrigin = "\(path):\(record.line)" }
            batch.add(key: row.key, value: row.value)
            if batch.rows >= options.batchRows || batch.payloadBytes >= options.batchBytes {
                try send(&batch, origin: batchOrigin)
            }
        }
        if !batch.isEmpty { try send(&batch, origin: batchOrigin) }
        finishedBytes += reader.bytesConsumed
        summary.bytesRead = finishedBytes
    }

    // MARK: Writing

    private func send(_ batch: inout CommandBatch, origin: String) throws {
        batch.seal()
        while pending.count >= options.pipeline { try pump(until: options.pipeline - 1) }
        pending.append(PendingBatch(batch: batch, origin: origin))
        batch = CommandBatch(mode: writeMode)
        connection!.appendEncoded(pending[pending.count - 1].batch.encoded)
        do {
            try connection!.flush()
        } catch {
            try reconnect(after: error)
        }
    }

    private func drain() throws {
        if options.dryRun { return }
        try pump(until: 0)
    }

    /// Writes and reads until at most `limit` batches await replies, reconnecting when the connection breaks.
    private func pump(until limit: Int) throws {
        var lastProgress = ContinuousClock.now
        while pending.count > limit {
            try checkStopSignal()
            do {
                guard let connection else { throw RedisError(.io, "not connected") }
                let (readable, writable) = connection.waitEvents(write: connection.wantsWrite, timeoutMs: 100)
                if writable { try connection.flush() }
                if readable {
                    try connection.read()
                    while let reply = try connection.nextReply() {
                        try accept(reply)
                        lastProgress = ContinuousClock.now
                    }
                }
                if !readable && !writable && ContinuousClock.now - lastProgress > .milliseconds(options.replyTimeoutMs) {
                    throw RedisError(.timeout, "Redis did not answer for \(options.replyTimeoutMs) ms")
                }
            } catch let error as RedisError {
                try reconnect(after: error)
                lastProgress = ContinuousClock.now
            }
        }
    }

    private func checkStopSignal() throws {
        let signal = options.stopSignal()
        if signal != 0 { throw LoadFailure.interrupted(by: signal) }
    }

    private func accept(_ reply: RedisReply) throws {
        guard !pending.isEmpty else { throw LoadFailure(.protocolError, "kvload: Redis sent a reply nobody asked for") }
        switch reply {
        case .error(let message):
            throw LoadFailure(.protocolError,
                              "kvload: Redis refused the batch starting at \(pending[0].origin): \(message)\n" + confirmedLine)
        case .integer(let count):
            pending[0].newFields += Int(count)
        default:
            break
        }
        pending[0].replies += 1
        if pending[0].replies == pending[0].batch.expectedReplies {
            let done = pending.removeFirst()
            summary.rowsWritten += done.batch.rows
            if countsNewKeys { summary.newKeys += done.newFields }
            progress.update(bytes: summary.bytesRead, totalBytes: totalBytes, rows: summary.rowsWritten)
        }
    }

    private var confirmedLine: String {
        let unacknowledged = pending.reduce(0) { $0 + $1.batch.rows }
        return "kvload: Redis confirmed \(summary.rowsWritten) of \(summary.rowsRead - summary.skippedRows) rows read; \(unacknowledged) rows in flight were not acknowledged"
    }

    // MARK: Connections

    private func connectFirstTime() throws {
        do {
            try connect()
        } catch let error as RedisError {
            let what = error.kind == .handshake ? "Redis refused the connection set-up" : "Redis is unreachable"
            throw LoadFailure(.unavailable, "kvload: \(what): \(error.message)")
        }
    }

    /// Opens a connection, waits for the connect and checks it with `INFO server` (which also gives the run id).
    private func connect() throws {
        connection?.close()
        connection = nil
        let target = writeSettings
        let fresh = try RedisConnection(settings: target)
        let deadline = ContinuousClock.now + .milliseconds(target.connectTimeoutMs)
        while try !fresh.finishConnect() {
            if ContinuousClock.now >= deadline {
                fresh.close()
                throw RedisError(.connect, "cannot connect to Redis at \(target.targetDescription): timed out after \(target.connectTimeoutMs) ms")
            }
            _ = fresh.waitEvents(write: true, timeoutMs: 20)
        }
        connection = fresh
        let info = try roundTrip(RedisCommand(["INFO", "server"]))
        guard case .bulk(let text) = info else {
            if case .error(let message) = info { throw RedisError(.handshake, "INFO refused: \(message)") }
            return
        }
        runID = RedisInfo.value(of: "run_id", in: text)
    }

    /// Sends one command while nothing else is in flight and waits for its reply.
    private func roundTrip(_ command: RedisCommand) throws -> RedisReply {
        guard let connection else { throw RedisError(.io, "not connected") }
        connection.append(command)
        return try awaitReply()
    }

    /// Writes pending output and waits for the next reply.
    private func awaitReply() throws -> RedisReply {
        guard let connection else { throw RedisError(.io, "not connected") }
        let deadline = ContinuousClock.now + .milliseconds(max(options.replyTimeoutMs, settings.commandTimeoutMs))
        while true {
            if let reply = try connection.nextReply() { return reply }
            let (readable, writable) = connection.waitEvents(write: connection.wantsWrite, timeoutMs: 100)
            if writable { try connection.flush() }
            if readable { try connection.read() }
            if ContinuousClock.now >= deadline { throw RedisError(.timeout, "Redis did not answer in time") }
        }
    }

    /// After the connection broke: reconnects for up to `retrySeconds`, then resends every unacknowledged batch.
    private func reconnect(after error: any Error) throws {
        guard let broken = error as? RedisError else { throw error }
        if broken.kind == .handshake { throw LoadFailure(.unavailable, "kvload: \(broken.message)") }
        progress.finish()
        warn("kvload: lost the connection to Redis (\(broken.message)); reconnecting for up to \(Int(options.retrySeconds)) s")
        let previousRunID = runID
        let deadline = ContinuousClock.now + .milliseconds(Int(options.retrySeconds * 1000))
        var pauseMs = 10
        while true {
            do {
                try connect()
                break
            } catch let failure as RedisError where failure.kind != .handshake {
                try checkStopSignal()
                if ContinuousClock.now + .milliseconds(pauseMs) >= deadline {
                    connection?.close()
                    connection = nil
                    throw LoadFailure(.temporaryFailure,
                                      "kvload: lost the connection to Redis and could not reconnect within \(Int(options.retrySeconds)) s (\(failure.message))\n" + confirmedLine)
                }
                usleep(UInt32(pauseMs * 1000))
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
        warn("kvload: reconnected; resending \(pending.count) unacknowledged batches")
    }

    // MARK: --replace

    private func prepareTarget() throws {
        guard options.replace else {
            if settings.layout == .hash, case .integer(0) = try roundTripReconnecting(RedisCommand(["EXISTS", settings.hash])) {
                intoEmptyTarget = true
            }
            return
        }
        switch settings.layout {
        case .hash:
            try expectSuccess(roundTripReconnecting(RedisCommand(["DEL", stagingHash])), doing: "DEL \(stagingHash)")
            intoEmptyTarget = true
        case .string:
            let size = try roundTrip(RedisCommand(["DBSIZE"]))
            if case .integer(let count) = size, count > 0 {
                throw LoadFailure(.usage, "kvload: staging db \(options.stagingDB!) holds \(count) keys: --replace needs it empty (it receives the old data after the swap and is then flushed)")
            }
        }
    }

    /// Publishes the staged data in one atomic command.
    private func switchToNewData() throws {
        switch settings.layout {
        case .hash:
            let length = try roundTripReconnecting(RedisCommand(["HLEN", stagingHash]))
            // Every field HSET reported new must be there (a resent batch may report fewer new fields, never more).
            guard case .integer(let fields) = length, Int(fields) >= summary.newKeys else {
                throw LoadFailure(.temporaryFailure, "kvload: the staging hash holds \(length) fields but Redis acknowledged \(summary.newKeys) distinct keys: Redis lost data during the load; the live data was left untouched")
            }
            if fields == 0 {
                try expectSuccess(roundTripReconnecting(RedisCommand(["UNLINK", settings.hash])), doing: "UNLINK \(settings.hash)")
            } else {
                let reply = try roundTripReconnecting(
                    RedisCommand(["EVAL", Self.switchScript, "3", stagingHash, settings.hash, retiredHash]))
                try expectSuccess(reply, doing: "the switch to the new data (EVAL)")
                switched = true
                try expectSuccess(roundTripReconnecting(RedisCommand(["UNLINK", retiredHash])), doing: "UNLINK \(retiredHash)")
            }
            switched = true
        case .string:
            let swap: RedisReply
            do {
                swap = try roundTrip(RedisCommand(["SWAPDB", String(settings.db), String(options.stagingDB!)]))
            } catch let error as RedisError {
                // SWAPDB is not idempotent: sending it again could swap back.
                switched = true
                throw LoadFailure(.temporaryFailure, "kvload: the connection broke during SWAPDB (\(error.message)): the swap may or may not have happened; check db \(settings.db) and db \(options.stagingDB!)")
            }
            try expectSuccess(swap, doing: "SWAPDB")
            switched = true
            // The connection's database (the staging number) now holds the old data.
            try expectSuccess(roundTripReconnecting(RedisCommand(["FLUSHDB", "ASYNC"])), doing: "FLUSHDB ASYNC of the old data in the staging db")
        }
    }

    /// `roundTrip` that reconnects (as mid-load) and sends the command again when the connection breaks;
    /// `afterRetry` interprets the reply to a command that was sent twice.
    private func roundTripReconnecting(_ command: RedisCommand, afterRetry: (RedisReply) -> RedisReply = { $0 }) throws -> RedisReply {
        var retried = false
        while true {
            do {
                let reply = try roundTrip(command)
                return retried ? afterRetry(reply) : reply
            } catch let error as RedisError {
                try reconnect(after: error)
                retried = true
            }
        }
    }

    /// Deletes the staging data after a failed `--replace` load. The command goes on the same
    /// connection, after the batches still in flight, so none of them can write staging data after it.
    private func discardStaging() {
        let staging = settings.layout == .hash ? "hash \(stagingHash)" : "db \(options.stagingDB ?? 0)"
        do {
            guard let connection else { throw RedisError(.io, "not connected") }
            let outstanding = pending.reduce(0) { $0 + $1.batch.expectedReplies - $1.replies }
            pending.removeAll()
            connection.append(settings.layout == .hash ? RedisCommand(["DEL", stagingHash]) : RedisCommand(["FLUSHDB", "ASYNC"]))
            for _ in 0..<outstanding { _ = try awaitReply() }
            try expectSuccess(awaitReply(), doing: "deleting the staging data")
            warn("kvload: --replace: nothing was switched; the live data is untouched")
        } catch {
            warn("kvload: --replace: nothing was switched; the live data is untouched, but the staging \(staging) could not be removed (\(error)): delete it by hand")
        }
    }

    private func expectSuccess(_ reply: RedisReply, doing what: String) throws {
        if case .error(let message) = reply {
            throw LoadFailure(.protocolError, "kvload: \(what) failed: \(message)")
        }
    }
}
