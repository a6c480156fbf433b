import KVDSettings

#if canImport(Glibc)
import Glibc
#endif

/// Where `RedisPipeline` tells client tracking about its data connection (the `// tracking:` call
/// sites): a connection opened or closed, a lookup sent, the reply to a tracking command. Empty
/// (every hook nil) unless a `ClientTracking` is attached.
final class PipelineTrackingHooks {
    /// The token of tracking's own commands on the data connection (`CLIENT TRACKING …`).
    static let token = LookupToken(-100)

    /// A new data connection is being opened (its commands go out after AUTH/SELECT).
    var connectionOpened: ((_ nowMs: Int64) -> Void)?
    /// The data connection was closed (failure, reload, shutdown): what it tracked is lost.
    var connectionClosed: (() -> Void)?
    /// A lookup of `key` goes out now on the data connection, as `command` (its `firstKey` is the Redis key read).
    var lookupSent: ((_ token: LookupToken, _ key: [UInt8], _ command: RedisCommand) -> Void)?
    /// The reply to a command sent with `token`.
    var receive: ((LookupResult) -> Void)?

    var active: Bool { lookupSent != nil }
}

extension RedisCommand {
    /// The argument after the command name (the Redis key of a lookup: `HGET key field`, `GET key`).
    var firstKey: [UInt8] {
        var index = arguments.startIndex
        var found = 0
        while index < arguments.endIndex, arguments[index] == UInt8(ascii: "$") {
            var length = 0
            index += 1
            while arguments[index] != UInt8(ascii: "\r") {
                length = length * 10 + Int(arguments[index] - UInt8(ascii: "0"))
                index += 1
            }
            index += 2
            if found == 1 { return Array(arguments[index..<index + length]) }
            found += 1
            index += length + 2
        }
        return []
    }
}

/// What happened to client tracking, for the cache that relies on it.
public enum TrackingEvent: Sendable, Equatable {
    /// Tracking is confirmed: reads sent from now on are tracked, and their invalidations will
    /// arrive (`subscriber` is the redirect target's client id).
    case started(subscriber: Int64)
    /// Tracking is lost (or never was where it is needed): whatever was read before may change
    /// unseen. Flush, and cache nothing until `.started`.
    case lost(String)
    /// Redis changed these keys.
    case invalidated([[UInt8]])
    /// FLUSHALL/FLUSHDB: every key changed.
    case flushedAll
    /// `CLIENT TRACKING` was refused (Redis older than 6, or an ACL): the cache stays empty.
    case refused(String)
}

/// Redis client-side caching on RESP2 for one pipeline (default tracking mode, with redirection):
/// an `InvalidationListener` subscribed to `__redis__:invalidate`, and `CLIENT TRACKING on REDIRECT
/// <its id>` on the pipeline's data connection, re-sent whenever either connection is replaced.
///
/// `isTracking` is true only between a confirmed `CLIENT TRACKING` (its `OK` came back, naming the
/// subscriber that is still subscribed) and the next loss; reads sent outside that span must not be
/// cached. In RESP2 Redis never tells the data connection that its redirect target is gone, so a
/// lost subscriber means: report `.lost`, and re-send `CLIENT TRACKING` with the new subscriber's id.
public final class ClientTracking {
    private let listener: InvalidationListener
    private unowned let pipeline: RedisPipeline
    private let observe: (TrackingEvent) -> Void
    /// Whether the pipeline has a data connection (tracking commands go out on it).
    private var dataOpen = false
    /// The subscriber id each `CLIENT TRACKING on` in flight names (nil: `off`), oldest first.
    private var inFlight: [Int64?] = []
    public private(set) var isTracking = false
    private var lastNowMs: Int64 = 0

    /// Attaches tracking to `pipeline` (its hooks are set; the subscriber connects at the next `checkDeadlines`).
    public init(pipeline: RedisPipeline, observe: @escaping (TrackingEvent) -> Void) {
        self.pipeline = pipeline
        self.observe = observe
        var forward: ((InvalidationListener.Event) -> Void)?
        listener = InvalidationListener(settings: pipeline.settings) { forward?($0) }
        forward = { [unowned self] event in self.listenerEvent(event) }
        let hooks = pipeline.trackingHooks
        hooks.connectionOpened = { [unowned self] nowMs in
            dataOpen = true
            lastNowMs = nowMs
            if let id = listener.subscribedID { sendTracking(on: id) }
        }
        hooks.connectionClosed = { [unowned self] in
            dataOpen = false
            inFlight.removeAll()
            lose("the Redis data connection closed")
        }
        hooks.receive = { [unowned self] result in trackingReply(result) }
        // Attached to a pipeline already connected (a reload turned the cache on): TRACKING goes
        // out on that connection once the subscriber is up.
        dataOpen = pipeline.hasConnection
        listener.start()
    }

    /// Detaches from the pipeline: closes the subscriber and turns tracking off on the data connection.
    public func stop() {
        // Silent: the owner stops on purpose (no `.lost` for the subscriber or connection it closes).
        isTracking = false
        let hooks = pipeline.trackingHooks
        hooks.connectionOpened = nil
        hooks.connectionClosed = nil
        hooks.lookupSent = nil
        hooks.receive = nil
        listener.stop()
        if dataOpen {
            var off = RedisCommand()
            for word in ["CLIENT", "TRACKING", "off"] { off.add(word) }
            // The reply (to a token nobody holds now) is dropped by the pipeline's hook.
            pipeline.sendInternal(off, key: [], token: PipelineTrackingHooks.token, nowMs: lastNowMs)
        }
    }

    /// Sets where lookups report their Redis key when sent (`CachedLookups`).
    func onLookupSent(_ hook: @escaping (LookupToken, [UInt8], RedisCommand) -> Void) {
        pipeline.trackingHooks.lookupSent = hook
    }

    /// The subscriber follows new Redis settings (the pipeline reports `.settingsApplied`).
    public func retarget(_ settings: RedisSettings) {
        lose("Redis settings changed")
        listener.retarget(settings)
    }

    // MARK: The owner's loop (the subscriber's socket)

    public func appendPollDescriptors(to descriptors: inout [pollfd]) { listener.appendPollDescriptors(to: &descriptors) }
    public func handle(_ descriptors: ArraySlice<pollfd>, nowMs: Int64) {
        lastNowMs = nowMs
        listener.handle(descriptors, nowMs: nowMs)
    }
    public func flush(nowMs: Int64) { listener.flush(nowMs: nowMs) }
    /// Applies the invalidations (and a subscriber loss) that have reached the socket by now.
    public func handleArrived(nowMs: Int64) {
        lastNowMs = nowMs
        listener.handleArrived(nowMs: nowMs)
    }
    public func checkDeadlines(nowMs: Int64) {
        lastNowMs = nowMs
        listener.checkDeadlines(nowMs: nowMs)
    }
    public var nextDeadlineMs: Int64? { listener.nextDeadlineMs }

    // MARK: State

    private func listenerEvent(_ event: InvalidationListener.Event) {
        switch event {
        case .subscribed(let id):
            if dataOpen { sendTracking(on: id) }
        case .invalidated(let keys):
            observe(.invalidated(keys))
        case .flushedAll:
            observe(.flushedAll)
        case .lost(let reason):
            lose("the invalidation connection was lost: \(reason)")
        }
    }

    private func sendTracking(on id: Int64) {
        var command = RedisCommand()
        for word in ["CLIENT", "TRACKING", "on", "REDIRECT"] { command.add(word) }
        command.add(String(id))
        inFlight.append(id)
        pipeline.sendInternal(command, key: [], token: PipelineTrackingHooks.token, nowMs: lastNowMs)
    }

    private func trackingReply(_ result: LookupResult) {
        guard !inFlight.isEmpty else { return }
        let id = inFlight.removeFirst()
        switch result {
        case .reply(.status("OK")):
            if let id, id == listener.subscribedID, !isTracking {
                isTracking = true
                observe(.started(subscriber: id))
            }
        case .reply(.error(let message)):
            lose("CLIENT TRACKING refused")
            observe(.refused(message))
        default:
            // A failure closes the connection: `connectionClosed` follows.
            lose("no reply to CLIENT TRACKING")
        }
    }

    private func lose(_ reason: String) {
        let was = isTracking
        isTracking = false
        if was { observe(.lost(reason)) }
    }
}
