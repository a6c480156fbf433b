import KVDSettings

#if canImport(Glibc)
import Glibc
#endif

/// Names one lookup for whoever submitted it; the pipeline hands it back, untouched, with the
/// lookup's result. What it stands for (a request, a slot in a batch) is the submitter's business.
public struct LookupToken: Hashable, Sendable {
    public let value: Int

    public init(_ value: Int) { self.value = value }
}

/// Why a lookup got no reply from Redis.
public enum LookupFailure: Sendable, Equatable {
    /// No usable connection (refused, broken, handshake refused, Redis at `maxclients`, or backing
    /// off after a failure), or Redis refuses commands for now (`LOADING`, `BUSY`, `MASTERDOWN`).
    case unavailable
    /// Redis sent nothing for `command_timeout_ms` while the lookup waited.
    case timedOut
    /// The pipeline was abandoned (shutdown) with the lookup still pending.
    case shuttingDown
    /// `buckets` layout: no usable dataset generation; the detail says why (missing or invalid
    /// descriptor, unknown hash function, generation gone).
    case noDataset(String)
}

/// How a lookup ended: Redis's reply (which may be a Redis error), or no reply at all.
public enum LookupResult: Sendable, Equatable {
    case reply(RedisReply)
    case failed(LookupFailure)
}

/// What happened to the pipeline's connection, for its owner's log and metrics.
public enum PipelineEvent: Sendable, Equatable {
    /// A connection is being opened; `reconnect` when one was opened before.
    case connecting(reconnect: Bool)
    /// A lookup, or a connect, ran out of time; a `.connectionFailed` follows.
    case timedOut
    /// The connection failed and was dropped; the lookups it owed fail.
    case connectionFailed(RedisError)
    /// The first failure after Redis was answering (reported once per outage): after `.connectionFailed`,
    /// or at the first `LOADING`/`BUSY`/`MASTERDOWN` reply (the connection stays).
    case redisDown(RedisError)
    /// Redis answers again after `.redisDown`.
    case redisRestored
    /// Settings from `retarget` took effect; the argument is the settings they replaced.
    case settingsApplied(previous: RedisSettings)
    /// `buckets` layout: the live dataset generation changed, became unusable, or cannot be read.
    case dataset(DatasetEvent)
}

/// A pipelined connection to Redis for one event loop: lookups of a loop turn go out in one write,
/// replies come back in order, each lookup has a deadline, and the connection is opened lazily
/// and re-opened with bounded backoff after a failure. New settings (a reload) take effect once
/// the lookups in flight are answered; nothing fails because of the switch.
///
/// The owner drives it from its loop, on one thread: `appendPollDescriptors` before polling,
/// `handle` with what poll reported, `checkDeadlines`, and `flush` at the end of the turn. Every
/// submitted lookup completes exactly once, through `complete`, possibly during the submitting call.
/// The pipeline never blocks and never sleeps; times are the owner's monotonic milliseconds.
public final class RedisPipeline {
    private struct Lookup {
        let token: LookupToken
        let sentMs: Int64
    }

    /// A request not sent yet: waiting for settings from a reload, or for the dataset descriptor.
    enum Held {
        case lookup(LookupToken, key: [UInt8])
        case ping(LookupToken)

        var token: LookupToken {
            switch self {
            case .lookup(let token, _), .ping(let token): token
            }
        }
    }

    private enum Phase {
        case idle
        case connecting(deadlineMs: Int64)
        case connected
        case backingOff(untilMs: Int64)
    }

    /// The settings in force (a `retarget` replaces them once the lookups in flight are answered).
    public private(set) var settings: RedisSettings
    private var connection: RedisConnection?
    private var phase = Phase.idle
    private var backoffMs: Int64 = 0
    private var lookups = FIFO<Lookup>()
    private var command = RedisCommand()
    private var lookupVerb = ""
    private var hashOrPrefix: [UInt8] = []
    /// Settings from a reload, applied once the lookups in flight on the old connection are answered.
    private var pendingSettings: RedisSettings?
    /// Lookups that arrived while `pendingSettings` waits.
    private var held: [Held] = []
    /// Whether Redis answered last: an outage is reported once, not per attempt.
    private var reportedUp = true
    /// Whether the last reply was a temporary refusal (`LOADING`, `BUSY`): Redis counts as down
    /// until a reply of another kind, whatever the connection does meanwhile.
    private var refusing = false
    /// When the connection last received bytes: Redis is at work on the oldest lookup until it
    /// falls silent, however long kvd takes to read and answer a big value.
    private var lastProgressMs: Int64 = 0
    /// Whether a connection was opened before: every later one is a reconnect.
    private var connectedBefore = false
    private let complete: (LookupToken, LookupResult) -> Void
    private let observe: (PipelineEvent) -> Void
    /// `buckets` layout (and `string` with generations): the live generation and the descriptor
    /// poll (inactive otherwise).
    private let dataset: DatasetTracker
    // tracking: client tracking's view of the data connection (Tracking.swift).
    let trackingHooks = PipelineTrackingHooks()
    // tracking: whether a data connection is open or opening (tracking attached later uses it).
    var hasConnection: Bool { connection != nil }

    /// - Parameters:
    ///   - complete: called once for every submitted lookup, on the owner's thread.
    ///   - observe: called for connection events (failures, recovery, reconnects, settings applied).
    public init(settings: RedisSettings, complete: @escaping (LookupToken, LookupResult) -> Void,
                observe: @escaping (PipelineEvent) -> Void = { _ in }) {
        self.settings = settings
        let dataset = DatasetTracker(deliver: complete, observe: observe)
        self.dataset = dataset
        // The tracker's own commands (negative tokens) come back to it, not to the owner.
        let hooks = trackingHooks
        self.complete = { token, result in
            if token.value < 0 {
                // tracking: the replies to CLIENT TRACKING.
                if token == PipelineTrackingHooks.token { hooks.receive?(result) } else { dataset.receive(token, result) }
            } else {
                complete(token, result)
            }
        }
        self.observe = observe
        dataset.pipeline = self
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
        case .buckets:
            lookupVerb = "HGET"
            hashOrPrefix = []
        }
        dataset.configure(settings)
    }

    // MARK: Submitting

    /// Queues a lookup of `key` in the configured layout (`HGET hash key` or `GET prefix+key`).
    /// Its result arrives through `complete`: at once when Redis is unavailable, else once
    /// Redis replies or the deadline passes.
    public func lookup(key: [UInt8], token: LookupToken, nowMs: Int64) {
        guard admit(.lookup(token, key: key), nowMs: nowMs) else { return }
        command.removeAll()
        command.add(lookupVerb)
        switch settings.layout {
        case .hash:
            command.add(hashOrPrefix)
            command.add(key)
        case .string where !dataset.active:
            command.add(hashOrPrefix + key)
        case .string, .buckets:
            dataset.addLookupArguments(for: key, to: &command)
        }
        // tracking: which Redis key this lookup reads, as it goes out.
        trackingHooks.lookupSent?(token, key, command)
        send(token, nowMs: nowMs)
    }

    /// Queues a PING behind the lookups in flight: proof that Redis answers this pipeline
    /// (the reply is `.status("PONG")` when it does).
    public func ping(token: LookupToken, nowMs: Int64) {
        guard admit(.ping(token), nowMs: nowMs) else { return }
        command.removeAll()
        command.add("PING")
        send(token, nowMs: nowMs)
    }

    /// Whether `request` can go to Redis now. Else it is held (a reload waits for the lookups in
    /// flight; the dataset descriptor is being read) or failed (no usable dataset generation; Redis
    /// unavailable), and its result arrives later or has arrived.
    private func admit(_ request: Held, nowMs: Int64) -> Bool {
        if pendingSettings != nil {
            held.append(request)
            return false
        }
        if dataset.active {
            switch dataset.readiness {
            case .waiting:
                dataset.hold(request, nowMs: nowMs)
                return false
            case .unusable(let detail):
                complete(request.token, .failed(.noDataset(detail)))
                return false
            case .live: break
            }
        }
        guard connectIfNeeded(nowMs: nowMs) else {
            complete(request.token, .failed(.unavailable))
            return false
        }
        return true
    }

    /// `buckets` layout: reads the dataset descriptor when a poll is due (about once a second),
    /// behind the lookups in flight. Call once per loop turn, before `flush`.
    public func pollDataset(nowMs: Int64) {
        guard pendingSettings == nil else { return }
        dataset.poll(nowMs: nowMs)
    }

    /// When `pollDataset` has something to do next (nil: nothing, or not the `buckets` layout).
    public var nextDatasetPollMs: Int64? { dataset.nextPollDeadlineMs }

    /// Sends one of the dataset tracker's own commands (its token is negative); a failure to
    /// connect completes it at once, as for a lookup.
    func sendInternal(_ internalCommand: RedisCommand, token: LookupToken, nowMs: Int64) {
        guard connectIfNeeded(nowMs: nowMs) else {
            complete(token, .failed(.unavailable))
            return
        }
        send(internalCommand, token, nowMs: nowMs)
    }

    private func send(_ token: LookupToken, nowMs: Int64) {
        send(command, token, nowMs: nowMs)
    }

    private func send(_ command: RedisCommand, _ token: LookupToken, nowMs: Int64) {
        connection?.append(command)
        lookups.append(Lookup(token: token, sentMs: nowMs))
    }

    /// Switches to new settings (a reload): lookups already sent are answered on the old
    /// connection; lookups submitted meanwhile wait, then go to the new target. Nothing fails.
    public func retarget(_ next: RedisSettings, nowMs: Int64) {
        guard next != settings || pendingSettings != nil else { return }
        pendingSettings = next
        switchWhenDrained(nowMs: nowMs)
    }

    // MARK: The owner's loop

    /// Adds one entry per socket the owner must poll (none while there is no connection).
    public func appendPollDescriptors(to descriptors: inout [pollfd]) {
        guard let connection else { return }
        let events = Int16(POLLIN) | (connection.wantsWrite ? Int16(POLLOUT) : 0)
        descriptors.append(pollfd(fd: connection.fileDescriptor, events: events, revents: 0))
    }

    /// Handles what poll reported for the entries `appendPollDescriptors` added: connect
    /// completion, replies (completing their lookups in order), errors.
    public func handle(_ descriptors: ArraySlice<pollfd>, nowMs: Int64) {
        for entry in descriptors where entry.revents != 0 {
            guard let connection, entry.fd == connection.fileDescriptor else { continue }
            handle(events: entry.revents, on: connection, nowMs: nowMs)
        }
    }

    private func handle(events: Int16, on connection: RedisConnection, nowMs: Int64) {
        do throws(RedisError) {
            if case .connecting = phase {
                guard try connection.finishConnect() else { return }
                phase = .connected
            }
            if events & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                let (bytes, closed) = try connection.read(upTo: RedisConnection.defaultReadLimit)
                if bytes > 0 { lastProgressMs = nowMs }
                while let reply = try connection.nextReply() {
                    guard let lookup = lookups.popFirst() else {
                        throw RedisError(.io, "Redis sent a reply nobody asked for")
                    }
                    if case .error(let message) = reply, RedisReply.isTemporaryRefusal(message) {
                        refusing = true
                        reportDown(RedisError(.io, "Redis refuses commands for now: \(message)"))
                        complete(lookup.token, .failed(.unavailable))
                    } else {
                        refusing = false
                        complete(lookup.token, .reply(reply))
                    }
                }
                if closed { throw RedisError(.io, "Redis closed the connection") }
                if !reportedUp && !refusing {
                    reportedUp = true
                    observe(.redisRestored)
                }
                backoffMs = 0
            }
        } catch {
            fail(error, nowMs: nowMs)
        }
        switchWhenDrained(nowMs: nowMs)
    }

    /// Writes the lookups queued since the last flush (one write for all of them).
    public func flush(nowMs: Int64) {
        guard let connection, case .connected = phase, connection.wantsWrite else { return }
        do throws(RedisError) {
            try connection.flush()
        } catch {
            fail(error, nowMs: nowMs)
        }
    }

    /// Fails the lookups once Redis sent nothing for `command_timeout_ms` since the oldest one was
    /// sent or since its last bytes arrived, whichever is later (a stalled server: the connection is
    /// replaced at once); a connect that takes too long counts as Redis being down. A big reply
    /// that keeps arriving is not a stall, nor is the time kvd spends answering it.
    public func checkDeadlines(nowMs: Int64) {
        if case .connecting(let deadline) = phase, nowMs >= deadline {
            observe(.timedOut)
            fail(RedisError(.connect, "connect to Redis at \(settings.targetDescription) timed out after \(settings.connectTimeoutMs) ms"), nowMs: nowMs)
            return
        }
        if let deadline = replyDeadlineMs(), nowMs >= deadline, let connection, case .connected = phase {
            // Bytes may have come since the owner polled (it did other work meanwhile): look first.
            handle(events: Int16(POLLIN), on: connection, nowMs: nowMs)
        }
        if let deadline = replyDeadlineMs(), nowMs >= deadline {
            observe(.timedOut)
            fail(RedisError(.timeout, "Redis did not answer within \(settings.commandTimeoutMs) ms"), nowMs: nowMs)
        }
    }

    /// The earliest time `checkDeadlines` has something to do, if any.
    public func nextDeadlineMs() -> Int64? {
        if case .connecting(let deadline) = phase { return deadline }
        return replyDeadlineMs()
    }

    private func replyDeadlineMs() -> Int64? {
        guard let oldest = lookups.first else { return nil }
        return max(oldest.sentMs, lastProgressMs) + Int64(settings.commandTimeoutMs)
    }

    /// Completes every pending lookup with `.shuttingDown` and drops the connection.
    public func abandon() {
        dataset.abandonHeld()
        let waiting = held
        held.removeAll()
        for lookup in waiting {
            switch lookup {
            case .lookup(let token, _), .ping(let token): complete(token, .failed(.shuttingDown))
            }
        }
        for lookup in lookups.removeAll() { complete(lookup.token, .failed(.shuttingDown)) }
        connection?.close()
        connection = nil
        trackingHooks.connectionClosed?() // tracking
        phase = .idle
    }

    // MARK: Connection life

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

    private func open(nowMs: Int64) -> Bool {
        do throws(RedisError) {
            let connection = try RedisConnection(settings: settings)
            self.connection = connection
            observe(.connecting(reconnect: connectedBefore))
            connectedBefore = true
            phase = .connecting(deadlineMs: nowMs + Int64(settings.connectTimeoutMs))
            // tracking: CLIENT TRACKING goes first on a new connection.
            trackingHooks.connectionOpened?(nowMs)
            // Unix sockets and loopback usually connect at once.
            if try connection.finishConnect() { phase = .connected }
            return true
        } catch {
            fail(error, nowMs: nowMs)
            return false
        }
    }

    /// Drops the connection, fails what it owed, and waits before the next attempt (a timeout:
    /// replaces the connection at once, no backoff).
    private func fail(_ error: RedisError, nowMs: Int64) {
        observe(.connectionFailed(error))
        connection?.close()
        connection = nil
        trackingHooks.connectionClosed?() // tracking: what the connection tracked is lost
        let failure: LookupFailure
        if error.kind == .timeout {
            failure = .timedOut
            phase = .idle
        } else {
            failure = .unavailable
            backoffMs = min(max(backoffMs * 2, 10), Int64(settings.reconnectMaxMs))
            phase = .backingOff(untilMs: nowMs + backoffMs)
        }
        reportDown(error)
        for lookup in lookups.removeAll() { complete(lookup.token, .failed(failure)) }
        switchWhenDrained(nowMs: nowMs)
    }

    /// Reports the first failure of an outage (once, until Redis answers again).
    private func reportDown(_ error: RedisError) {
        guard reportedUp else { return }
        reportedUp = false
        observe(.redisDown(error))
    }

    private func switchWhenDrained(nowMs: Int64) {
        guard let next = pendingSettings, lookups.isEmpty else { return }
        pendingSettings = nil
        connection?.close()
        connection = nil
        trackingHooks.connectionClosed?() // tracking
        phase = .idle
        backoffMs = 0
        let previous = settings
        settings = next
        deriveCommandParts()
        observe(.settingsApplied(previous: previous))
        let waiting = held
        held.removeAll()
        for lookup in waiting {
            switch lookup {
            case .lookup(let token, let key): self.lookup(key: key, token: token, nowMs: nowMs)
            case .ping(let token): ping(token: token, nowMs: nowMs)
            }
        }
    }
}
