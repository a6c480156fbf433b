import KVDSettings

#if canImport(Glibc)
import Glibc
#endif

/// The subscriber side of Redis's client tracking on RESP2: one connection that takes its
/// `CLIENT ID` and `SUBSCRIBE __redis__:invalidate`, then receives the invalidations Redis sends
/// for the keys the data connections read (`CLIENT TRACKING on REDIRECT <id>`, see `ClientTracking`).
///
/// Non-blocking, driven by its owner's poll loop like `RedisPipeline`: `appendPollDescriptors`,
/// `handle`, `checkDeadlines`, `flush`. It connects on the first `checkDeadlines` and reconnects
/// after a failure with the pipeline's backoff rules (10 ms doubling up to `reconnect_max_ms`).
final class InvalidationListener {
    enum Event: Equatable {
        /// Subscribed: invalidations for clients redirecting to `id` arrive from now on.
        case subscribed(id: Int64)
        /// Redis changed these keys.
        case invalidated([[UInt8]])
        /// A null invalidation: FLUSHALL or FLUSHDB (every key changed).
        case flushedAll
        /// The connection failed or was closed; everything redirected to it is lost.
        case lost(String)
    }

    static let channel = "__redis__:invalidate"

    private enum Phase: Equatable {
        case idle
        case connecting(deadlineMs: Int64)
        /// CLIENT ID and SUBSCRIBE sent; their replies are due by `deadlineMs`.
        case subscribing(deadlineMs: Int64)
        case subscribed(id: Int64)
        case backingOff(untilMs: Int64)
        case stopped
    }

    private(set) var settings: RedisSettings
    private var connection: RedisConnection?
    private var phase = Phase.stopped
    private var backoffMs: Int64 = 0
    private var clientID: Int64?
    private let observe: (Event) -> Void

    init(settings: RedisSettings, observe: @escaping (Event) -> Void) {
        self.settings = settings
        self.observe = observe
    }

    /// The subscriber's client id while it is subscribed.
    var subscribedID: Int64? {
        if case .subscribed(let id) = phase { return id }
        return nil
    }

    /// Connects at the next `checkDeadlines` (and keeps reconnecting until `stop`).
    func start() {
        if phase == .stopped { phase = .idle }
    }

    /// Closes the connection and stays closed until `start` (a `.lost` is reported if it was subscribed).
    func stop() {
        drop(reason: "stopped", next: .stopped)
    }

    /// Reconnects to `next` (a reload changed the Redis settings).
    func retarget(_ next: RedisSettings) {
        settings = next
        guard phase != .stopped else { return }
        drop(reason: "Redis settings changed", next: .idle)
        backoffMs = 0
    }

    func appendPollDescriptors(to descriptors: inout [pollfd]) {
        if let connection { descriptors.append(connection.pollDescriptor) }
    }

    func handle(_ descriptors: ArraySlice<pollfd>, nowMs: Int64) {
        if let connection, let events = connection.reportedEvents(in: descriptors) {
            handle(events: events, on: connection, nowMs: nowMs)
        }
    }

    /// Handles what has arrived on the subscriber socket by now, without waiting (one `poll` of it).
    func handleArrived(nowMs: Int64) {
        guard let connection, connection.isConnected else { return }
        var entry = connection.pollDescriptor
        guard poll(&entry, 1, 0) == 1, entry.revents != 0 else { return }
        handle(events: entry.revents, on: connection, nowMs: nowMs)
    }

    private func handle(events: Int16, on connection: RedisConnection, nowMs: Int64) {
        do throws(RedisError) {
            if case .connecting = phase {
                guard try connection.finishConnect() else { return }
                phase = .subscribing(deadlineMs: nowMs + Int64(settings.commandTimeoutMs))
                try connection.flush()
            }
            guard events & Int16(POLLIN | POLLERR | POLLHUP) != 0 else { return }
            let (_, closed) = try connection.read(upTo: RedisConnection.defaultReadLimit)
            while let reply = try connection.nextReply() {
                try receive(reply)
            }
            if closed { throw RedisError(.io, "Redis closed the invalidation connection") }
        } catch {
            fail(error, nowMs: nowMs)
        }
    }

    private func receive(_ reply: RedisReply) throws(RedisError) {
        switch (phase, reply) {
        case (.subscribing, .integer(let id)) where clientID == nil:
            clientID = id
        case (.subscribing, .array(let parts)) where clientID != nil && parts.first == .bulk(Array("subscribe".utf8)):
            backoffMs = 0
            phase = .subscribed(id: clientID!)
            observe(.subscribed(id: clientID!))
        case (.subscribed, .array(let parts)) where parts.count == 3 && parts[0] == .bulk(Array("message".utf8)):
            switch parts[2] {
            case .array(let keys):
                observe(.invalidated(keys.compactMap { if case .bulk(let key) = $0 { key } else { nil } }))
            case .bulk(let key):
                observe(.invalidated([key]))
            default:
                observe(.flushedAll)
            }
        case (_, .error(let message)):
            throw RedisError(.io, "Redis refused the invalidation subscription: \(message)")
        default:
            throw RedisError(.io, "unexpected reply on the invalidation connection: \(reply)")
        }
    }

    func flush(nowMs: Int64) {
        guard let connection, connection.isConnected, connection.wantsWrite else { return }
        do throws(RedisError) {
            try connection.flush()
        } catch {
            fail(error, nowMs: nowMs)
        }
    }

    /// Connects when due; fails a connect or a subscription that takes too long.
    func checkDeadlines(nowMs: Int64) {
        switch phase {
        case .idle:
            open(nowMs: nowMs)
        case .backingOff(let until) where nowMs >= until:
            open(nowMs: nowMs)
        case .connecting(let deadline) where nowMs >= deadline:
            fail(RedisError(.timeout, "connect to Redis at \(settings.targetDescription) timed out (invalidation connection)"), nowMs: nowMs)
        case .subscribing(let deadline) where nowMs >= deadline:
            fail(RedisError(.timeout, "Redis did not confirm the invalidation subscription within \(settings.commandTimeoutMs) ms"), nowMs: nowMs)
        default:
            break
        }
    }

    /// When `checkDeadlines` has something to do next.
    var nextDeadlineMs: Int64? {
        switch phase {
        case .idle: 0
        case .backingOff(let until): until
        case .connecting(let deadline), .subscribing(let deadline): deadline
        case .subscribed, .stopped: nil
        }
    }

    private func open(nowMs: Int64) {
        do throws(RedisError) {
            let connection = try RedisConnection(settings: settings)
            self.connection = connection
            clientID = nil
            connection.append(RedisCommand(["CLIENT", "ID"]))
            connection.append(RedisCommand(["SUBSCRIBE", Self.channel]))
            phase = .connecting(deadlineMs: nowMs + Int64(settings.connectTimeoutMs))
            if try connection.finishConnect() {
                phase = .subscribing(deadlineMs: nowMs + Int64(settings.commandTimeoutMs))
                try connection.flush()
            }
        } catch {
            fail(error, nowMs: nowMs)
        }
    }

    private func fail(_ error: RedisError, nowMs: Int64) {
        backoffMs = min(max(backoffMs * 2, 10), Int64(settings.reconnectMaxMs))
        drop(reason: error.message, next: .backingOff(untilMs: nowMs + backoffMs))
    }

    private func drop(reason: String, next: Phase) {
        let wasSubscribed = subscribedID != nil
        connection?.close()
        connection = nil
        clientID = nil
        phase = next
        if wasSubscribed { observe(.lost(reason)) }
    }
}

extension RedisConnection {
    /// The entry to poll for this connection: readable, and writable while it has output or connects.
    var pollDescriptor: pollfd {
        pollfd(fd: fileDescriptor, events: Int16(POLLIN) | (wantsWrite ? Int16(POLLOUT) : 0), revents: 0)
    }

    /// What poll reported for this connection among `descriptors`, if anything.
    func reportedEvents(in descriptors: ArraySlice<pollfd>) -> Int16? {
        descriptors.first { $0.fd == fileDescriptor && $0.revents != 0 }?.revents
    }
}
