import KVDConfig
import KVDCore
import KVDRedis
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// How a lookup ended.
enum LookupOutcome {
    case reply(RedisReply)
    case failed(Reply)
    /// The outcome of a readiness probe (PING): whether Redis answered PONG.
    case probe(ready: Bool)
}

/// A first-in, first-out queue over an array, for the lookups a Redis connection owes replies to.
struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var first: Element? { isEmpty ? nil : storage[head] }

    mutating func append(_ element: Element) { storage.append(element) }

    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        }
        return element
    }

    mutating func removeAll() -> [Element] {
        let rest = Array(storage[head...])
        storage.removeAll(keepingCapacity: true)
        head = 0
        return rest
    }
}

/// A worker's connection to Redis: opened lazily, pipelined (every lookup of a loop turn goes out
/// in one write), timed out, and re-opened with bounded backoff after any failure.
final class RedisLink {
    private struct Lookup {
        let request: RequestState
        let deadlineMs: Int64
        /// A readiness PING rather than a key lookup.
        let isProbe: Bool
    }

    private enum Phase {
        case idle
        case connecting(deadlineMs: Int64)
        case connected
        case backingOff(untilMs: Int64)
    }

    private var settings: RedisSettings
    private let logger: Logger
    private var connection: RedisConnection?
    private var phase = Phase.idle
    private var backoffMs: Int64 = 0
    private var lookups = FIFO<Lookup>()
    private var command = RedisCommand()
    private var lookupVerb = ""
    private var hashOrPrefix: [UInt8] = []
    /// Settings from a reload, applied once the lookups in flight on the old connection are answered.
    private var pendingSettings: RedisSettings?
    /// Requests that arrived while `pendingSettings` waits (key nil: a readiness probe).
    private var held: [(request: RequestState, key: [UInt8]?)] = []
    /// Last state reported in the log, so an outage is logged once, not per attempt.
    private var reportedUp = true
    private let complete: (RequestState, LookupOutcome) -> Void
    private let activity: WorkerActivity
    private let metrics: WorkerMetrics
    /// Whether a connection was opened before: every later one counts as a reconnect.
    private var connectedBefore = false

    /// - Parameter complete: called, on the worker's thread, once for every submitted lookup.
    init(settings: RedisSettings, logger: Logger, activity: WorkerActivity, metrics: WorkerMetrics,
         complete: @escaping (RequestState, LookupOutcome) -> Void) {
        self.settings = settings
        self.logger = logger
        self.activity = activity
        self.metrics = metrics
        self.complete = complete
        deriveCommandParts()
    }

    private func deriveCommandParts() {
        switch settings.layout {
        case .hash:
            lookupVerb = "HGET"
            hashOrPrefix = Array(settings.hash.utf8)
        case .string:
            lookupVerb = "GET"
            hashOrPrefix = Array(settings.prefix.utf8)
        }
    }

    /// Switches to new settings (a reload): lookups already sent are answered on the old
    /// connection; requests arriving meanwhile wait, then go to the new target. Nothing fails.
    func retarget(_ next: RedisSettings, nowMs: Int64) {
        guard next != settings || pendingSettings != nil else { return }
        pendingSettings = next
        switchWhenDrained(nowMs: nowMs)
    }

    private func switchWhenDrained(nowMs: Int64) {
        guard let next = pendingSettings, lookups.isEmpty else { return }
        pendingSettings = nil
        connection?.close()
        connection = nil
        phase = .idle
        backoffMs = 0
        let target = next.targetDescription != settings.targetDescription ? " (now \(next.targetDescription))" : ""
        settings = next
        deriveCommandParts()
        logger.info("Redis settings applied\(target)")
        let waiting = held
        held.removeAll()
        for (request, key) in waiting {
            if let key { submit(request, key: key, nowMs: nowMs) } else { submitProbe(request, nowMs: nowMs) }
        }
    }

    /// Queues a lookup of `key`; its outcome arrives through `complete`, possibly at once.
    func submit(_ request: RequestState, key: [UInt8], nowMs: Int64) {
        if pendingSettings != nil {
            held.append((request, key))
            return
        }
        guard connectIfNeeded(nowMs: nowMs) else {
            complete(request, .failed(.redisUnavailable))
            return
        }
        command.removeAll()
        command.add(lookupVerb)
        switch settings.layout {
        case .hash:
            command.add(hashOrPrefix)
            command.add(key)
        case .string:
            command.add(hashOrPrefix + key)
        }
        connection?.append(command)
        lookups.append(Lookup(request: request, deadlineMs: nowMs + Int64(settings.commandTimeoutMs), isProbe: false))
    }

    /// Queues a PING behind the lookups in flight: `/readyz`'s proof that Redis answers this worker.
    /// Its outcome arrives through `complete` as `.probe`, possibly at once.
    func submitProbe(_ request: RequestState, nowMs: Int64) {
        if pendingSettings != nil {
            held.append((request, nil))
            return
        }
        guard connectIfNeeded(nowMs: nowMs) else {
            complete(request, .probe(ready: false))
            return
        }
        command.removeAll()
        command.add("PING")
        connection?.append(command)
        lookups.append(Lookup(request: request, deadlineMs: nowMs + Int64(settings.commandTimeoutMs), isProbe: true))
    }

    /// Opens the connection when there is none and the backoff allows it.
    /// - Returns: false when Redis is to be considered unavailable now.
    private func connectIfNeeded(nowMs: Int64) -> Bool {
        if case .backingOff(let until) = phase {
            if nowMs < until { return false }
            phase = .idle
        }
        if case .idle = phase { return open(nowMs: nowMs) }
        return true
    }

    /// The socket to poll, or -1 when there is no connection.
    var pollDescriptor: Int32 { connection?.fileDescriptor ?? -1 }

    /// The poll events this connection waits for.
    var pollEvents: Int16 {
        guard let connection else { return 0 }
        return Int16(POLLIN) | (connection.wantsWrite ? Int16(POLLOUT) : 0)
    }

    /// Handles what poll reported for the socket: connect completion, replies, errors.
    func handle(events: Int16, nowMs: Int64) {
        guard let connection else { return }
        do {
            if case .connecting = phase {
                guard try connection.finishConnect() else { return }
                phase = .connected
            }
            if events & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                try connection.read()
                while let reply = try connection.nextReply() {
                    guard let lookup = lookups.popFirst() else {
                        throw RedisError(.io, "Redis sent a reply nobody asked for")
                    }
                    if lookup.isProbe {
                        complete(lookup.request, .probe(ready: reply == .status("PONG")))
                    } else {
                        complete(lookup.request, .reply(reply))
                    }
                }
                if !reportedUp {
                    reportedUp = true
                    activity.redisAvailable.store(true, ordering: .relaxed)
                    logger.notice("Redis connection restored", metadata: ["redis": "\(settings.targetDescription)"])
                }
                backoffMs = 0
            }
        } catch {
            fail(error, nowMs: nowMs)
        }
        switchWhenDrained(nowMs: nowMs)
    }

    /// Writes the lookups queued during this loop turn (one write for all of them).
    func flush(nowMs: Int64) {
        guard let connection, case .connected = phase, connection.wantsWrite else { return }
        do {
            try connection.flush()
        } catch {
            fail(error, nowMs: nowMs)
        }
    }

    /// Fails lookups whose deadline passed; a connect that takes too long counts as Redis being down.
    func checkDeadlines(nowMs: Int64) {
        if case .connecting(let deadline) = phase, nowMs >= deadline {
            metrics.redisTimeout()
            fail(RedisError(.connect, "connect to Redis at \(settings.targetDescription) timed out after \(settings.connectTimeoutMs) ms"), nowMs: nowMs)
            return
        }
        if let oldest = lookups.first, nowMs >= oldest.deadlineMs {
            metrics.redisTimeout()
            fail(RedisError(.timeout, "Redis did not answer within \(settings.commandTimeoutMs) ms"), nowMs: nowMs)
        }
    }

    /// The earliest time `checkDeadlines` has something to do, if any.
    func nextDeadlineMs() -> Int64? {
        if case .connecting(let deadline) = phase { return deadline }
        return lookups.first?.deadlineMs
    }

    /// Answers every pending lookup with `reply` and drops the connection (shutdown).
    func abandon(with reply: Reply) {
        for (request, key) in held { complete(request, key == nil ? .probe(ready: false) : .failed(reply)) }
        held.removeAll()
        for lookup in lookups.removeAll() { finish(lookup, failure: reply) }
        connection?.close()
        connection = nil
        phase = .idle
    }

    private func open(nowMs: Int64) -> Bool {
        do {
            let connection = try RedisConnection(settings: settings)
            self.connection = connection
            if connectedBefore { metrics.redisReconnect() }
            connectedBefore = true
            phase = .connecting(deadlineMs: nowMs + Int64(settings.connectTimeoutMs))
            // Unix sockets and loopback usually connect at once.
            if try connection.finishConnect() { phase = .connected }
            return true
        } catch {
            fail(error, nowMs: nowMs)
            return false
        }
    }

    /// Drops the connection, answers what it owed, and waits before the next attempt.
    private func fail(_ error: any Error, nowMs: Int64) {
        let redisError = error as? RedisError
        let reply: Reply = redisError?.kind == .timeout ? .redisTimeout : .redisUnavailable
        metrics.redisError(kind: redisError.map { "\($0.kind)" } ?? "io")
        connection?.close()
        connection = nil
        if redisError?.kind == .timeout {
            // A stalled server: replace the connection right away, no backoff.
            phase = .idle
        } else {
            backoffMs = min(max(backoffMs * 2, 10), Int64(settings.reconnectMaxMs))
            phase = .backingOff(untilMs: nowMs + backoffMs)
        }
        if reportedUp {
            reportedUp = false
            activity.redisAvailable.store(false, ordering: .relaxed)
            logger.error("Redis unavailable: \(error)", metadata: ["redis": "\(settings.targetDescription)"])
        }
        for lookup in lookups.removeAll() { finish(lookup, failure: reply) }
        switchWhenDrained(nowMs: nowMs)
    }

    private func finish(_ lookup: Lookup, failure: Reply) {
        complete(lookup.request, lookup.isProbe ? .probe(ready: false) : .failed(failure))
    }
}
