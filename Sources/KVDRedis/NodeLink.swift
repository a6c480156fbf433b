import KVDSettings

#if canImport(Glibc)
import Glibc
#endif

/// One command sent on a link and owed a reply, in the order sent.
struct InFlight {
    let token: LookupToken
    let sentMs: Int64
    /// What a cluster pipeline needs to resend or account for the command; nil for a single Redis
    /// (the reply goes straight to its lookup: nothing to keep).
    var job: ClusterJob?
}

/// A cluster pipeline's record of one command in flight (see `RedisPipeline+Cluster`).
enum ClusterJob {
    /// A client lookup (or ping of the single-node kind), resent after a redirect.
    case lookup(key: [UInt8], redirects: Int, startedMs: Int64)
    /// One of the dataset tracker's commands, routed by `key`.
    case internalCommand(RedisCommand, key: [UInt8], redirects: Int, startedMs: Int64)
    /// One node's `PING` of a readiness check spread over every node kvd needs.
    case pingPart(group: Int)
    /// A reply nobody waits for (`+OK` to `ASKING` before a redirected command, to a late `READONLY`): dropped.
    case discard
    /// `CLUSTER SLOTS`, asked for a map refresh.
    case slots
}

/// One non-blocking connection to one Redis server, as a pipeline uses it: the connection's life
/// (lazily opened, bounded backoff after a failure, a connect deadline), the commands in flight
/// on it in order, and the reply deadline. What replies and failures mean is the pipeline's job:
/// the link hands them to it. A single-Redis pipeline has exactly one link; a cluster pipeline
/// one per node it talks to.
final class NodeLink {
    enum Phase {
        case idle
        case connecting(deadlineMs: Int64)
        case connected
        case backingOff(untilMs: Int64)
    }

    /// The node (cluster mode); nil for the one Redis of the settings.
    let address: NodeAddress?
    /// Where and how to connect (host and port are the node's in cluster mode).
    private(set) var settings: RedisSettings
    private(set) var connection: RedisConnection?
    private(set) var phase = Phase.idle
    private var backoffMs: Int64 = 0
    /// (`@exclusivity(unchecked)`: every lookup appends; docs/performance.md, "Exclusivity checks".)
    @exclusivity(unchecked) var entries = FIFO<InFlight>()
    /// When the connection last received bytes: Redis is at work on the oldest command until it
    /// falls silent, however long kvd takes to read and answer a big value.
    private var lastProgressMs: Int64 = 0
    /// Whether a connection was opened before: every later one is a reconnect.
    private var connectedBefore = false
    /// Whether the server answered last: an outage is reported once, not per attempt.
    var reportedUp = true
    /// Whether the last reply was a temporary refusal (`LOADING`, `BUSY`): down until a reply of
    /// another kind, whatever the connection does meanwhile.
    var refusing = false
    /// Commands sent first on every new connection, after AUTH/SELECT (`READONLY` on a replica);
    /// their replies are consumed here, an error one fails the connection.
    var handshake: [RedisCommand] = []
    private var handshakeRepliesOwed = 0
    /// Cluster mode: the link reads from a replica (`READONLY` is part of its handshake).
    var readsAsReplica = false
    unowned let pipeline: RedisPipeline
    // tracking: the link's client tracking (Tracking.swift), while the near-cache tracks this server.
    var tracking: LinkTracking?
    /// The last write on the connection (reset with it).
    private struct LastWrite {
        /// Its commands not answered yet.
        var owed = 0
        /// Part of it is still in the output buffer.
        var unfinished = false
        var atMs: Int64 = 0
    }
    private var lastWrite = LastWrite()
    /// When the last write went out.
    var lastWriteMs: Int64 { lastWrite.atMs }

    init(address: NodeAddress?, settings: RedisSettings, pipeline: RedisPipeline) {
        self.address = address
        self.settings = settings
        self.pipeline = pipeline
    }

    /// Whether commands can be queued now (connected or connecting).
    var isOpen: Bool {
        switch phase {
        case .connecting, .connected: true
        case .idle, .backingOff: false
        }
    }

    var isConnected: Bool { if case .connected = phase { true } else { false } }

    /// Whether the link would refuse at once: backing off after a failure.
    func isBackingOff(nowMs: Int64) -> Bool {
        if case .backingOff(let until) = phase { return nowMs < until }
        return false
    }

    // MARK: Sending

    /// Queues `command` and what its reply is for (the connection must be open: `connectIfNeeded`).
    @inline(__always)
    func send(_ command: RedisCommand, _ entry: InFlight) {
        connection?.append(command)
        entries.append(entry)
    }

    /// Opens the connection when there is none and the backoff allows it.
    /// - Returns: false when the server is to be considered unavailable now.
    func connectIfNeeded(nowMs: Int64) -> Bool {
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
            pipeline.observe(.connecting(reconnect: connectedBefore))
            connectedBefore = true
            phase = .connecting(deadlineMs: nowMs + Int64(settings.connectTimeoutMs))
            // hook: handshake — commands every new connection sends first (READONLY; CLIENT TRACKING).
            for command in handshake { connection.append(command) }
            handshakeRepliesOwed = handshake.count
            // tracking: CLIENT TRACKING goes first on a new connection (after the handshake).
            pipeline.trackingHooks.connectionOpened?(self, nowMs)
            // Unix sockets and loopback usually connect at once.
            if try connection.finishConnect() { phase = .connected }
            return true
        } catch {
            fail(error, nowMs: nowMs)
            return false
        }
    }

    // MARK: The owner's loop

    /// Whether the whole last write is in the socket and some of its replies are still to come.
    var awaitsReplies: Bool { lastWrite.owed > 0 && !lastWrite.unfinished }

    /// Whether queued commands go out now: always, unless the owner holds them back; a write the
    /// socket took only part of goes on whatever holds others.
    private func writesNow(holding: Bool) -> Bool { !holding || lastWrite.unfinished }

    /// hook: poll descriptor — the link's socket and the events it waits for (none without a connection).
    /// - Parameter holding: the owner holds new writes back (see `flush`).
    func appendPollDescriptor(to descriptors: inout [pollfd], holding: Bool = false) {
        guard let connection else { return }
        // Commands held back wait for replies, not for room in the socket.
        let writable = connection.wantsWrite && writesNow(holding: holding)
        let events = Int16(POLLIN) | (writable ? Int16(POLLOUT) : 0)
        descriptors.append(pollfd(fd: connection.fileDescriptor, events: events, revents: 0))
    }

    var fileDescriptor: Int32 { connection?.fileDescriptor ?? -1 }

    /// Connect completion, replies (handed to the pipeline in order), errors.
    func handle(events: Int16, nowMs: Int64) {
        guard let connection else { return }
        do throws(RedisError) {
            if case .connecting = phase {
                guard try connection.finishConnect() else { return }
                phase = .connected
            }
            if events & Int16(POLLIN | POLLERR | POLLHUP) != 0 {
                let (bytes, closed) = try connection.read(upTo: RedisConnection.defaultReadLimit)
                if bytes > 0 { lastProgressMs = nowMs }
                while let reply = try connection.nextReply() {
                    if handshakeRepliesOwed > 0 {
                        handshakeRepliesOwed -= 1
                        if case .error(let message) = reply {
                            throw RedisError(.handshake, "Redis\(atNode) refused the connection set-up: \(message)")
                        }
                        continue
                    }
                    guard let entry = entries.popFirst() else {
                        throw RedisError(.io, "Redis sent a reply nobody asked for")
                    }
                    if lastWrite.owed > 0 { lastWrite.owed -= 1 }
                    // hook: reply — every reply to a command of kvd's, in order.
                    pipeline.received(reply, for: entry, on: self, nowMs: nowMs)
                    // A cluster pipeline may have closed this link meanwhile (its node left the map).
                    guard self.connection === connection else { return }
                }
                if closed { throw RedisError(.io, "Redis\(atNode) closed the connection") }
                if !reportedUp && !refusing { pipeline.linkRestored(self) }
                backoffMs = 0
            }
        } catch {
            fail(error, nowMs: nowMs)
        }
    }

    /// Writes the commands queued since the last write (one write for all of them).
    /// - Parameter holding: the owner holds new commands back this turn (a cluster pipeline
    ///   writes in rounds: `ClusterRouter.flush`); a write the socket took only part of goes on.
    func flush(nowMs: Int64, holding: Bool = false) {
        guard let connection, case .connected = phase, connection.wantsWrite else { return }
        guard writesNow(holding: holding) else { return }
        do throws(RedisError) {
            lastWrite.owed = entries.count
            lastWrite.atMs = nowMs
            lastWrite.unfinished = try !connection.flush()
        } catch {
            fail(error, nowMs: nowMs)
        }
    }

    /// A connect past its deadline, or no bytes for `command_timeout_ms` since the oldest command
    /// was sent or its last bytes arrived (the connection is replaced at once).
    func checkDeadlines(nowMs: Int64) {
        if case .connecting(let deadline) = phase, nowMs >= deadline {
            pipeline.observe(.timedOut)
            fail(RedisError(.connect, "connect to Redis at \(settings.targetDescription) timed out after \(settings.connectTimeoutMs) ms"), nowMs: nowMs)
            return
        }
        if let deadline = replyDeadlineMs(), nowMs >= deadline, isConnected {
            // Bytes may have come since the owner polled (it did other work meanwhile): look first.
            handle(events: Int16(POLLIN), nowMs: nowMs)
        }
        if let deadline = replyDeadlineMs(), nowMs >= deadline {
            pipeline.observe(.timedOut)
            fail(RedisError(.timeout, "Redis\(atNode) did not answer within \(settings.commandTimeoutMs) ms"), nowMs: nowMs)
        }
    }

    /// The earliest time `checkDeadlines` has something to do, if any.
    func nextDeadlineMs() -> Int64? {
        if case .connecting(let deadline) = phase { return deadline }
        return replyDeadlineMs()
    }

    private func replyDeadlineMs() -> Int64? {
        guard let oldest = entries.first else { return nil }
        return max(oldest.sentMs, lastProgressMs) + Int64(settings.commandTimeoutMs)
    }

    private var atNode: String { address.map { " at \($0)" } ?? "" }

    /// Drops the connection and hands back what it owed; waits before the next attempt (a timeout
    /// replaces the connection at once, no backoff).
    func fail(_ error: RedisError, nowMs: Int64) {
        // hook: failure — the connection is gone; whatever it set up must be set up again.
        pipeline.observe(.connectionFailed(error))
        connection?.close()
        connection = nil
        lastWrite = LastWrite()
        pipeline.trackingHooks.connectionClosed?(self) // tracking: what the connection tracked is lost
        let failure: LookupFailure
        if error.kind == .timeout {
            failure = .timedOut
            phase = .idle
        } else {
            failure = .unavailable
            backoffMs = min(max(backoffMs * 2, 10), Int64(settings.reconnectMaxMs))
            phase = .backingOff(untilMs: nowMs + backoffMs)
        }
        pipeline.linkFailed(self, error, failure: failure, owed: entries.removeAll(), nowMs: nowMs)
    }

    /// New settings (a reload), used from the next connect on; the connection is closed.
    func retarget(_ next: RedisSettings) {
        close()
        settings = next
    }

    /// Closes the connection; what it owed is the caller's to answer (`entries`).
    func close() {
        if connection != nil { pipeline.trackingHooks.connectionClosed?(self) } // tracking
        connection?.close()
        connection = nil
        lastWrite = LastWrite()
        phase = .idle
        backoffMs = 0
    }
}
