import KVDSettings

#if canImport(Glibc)
import Glibc
#endif

/// Where the pipeline and its links tell client tracking about their data connections (the
/// `// tracking:` call sites): a link's connection opened or closed, a lookup sent on a link, the
/// reply to a tracking command. Empty (every hook nil) unless a `ClientTracking` is attached.
final class PipelineTrackingHooks {
    /// The token of tracking's own commands on a data connection (`CLIENT TRACKING …`).
    static let token = LookupToken(-100)
    /// The token of `CLIENT CACHING yes`, sent just before a lookup whose reply may be cached.
    static let cachingToken = LookupToken(-101)
    /// Whether `token` is one of tracking's own commands (their replies go to the hooks).
    static func owns(_ token: LookupToken) -> Bool { token == Self.token || token == cachingToken }

    /// A new connection of `link` is being opened (its commands go out after AUTH/SELECT/READONLY).
    var connectionOpened: ((_ link: NodeLink, _ nowMs: Int64) -> Void)?
    /// `link`'s connection was closed (failure, reload, shutdown, node left the map): what it tracked is lost.
    var connectionClosed: ((_ link: NodeLink) -> Void)?
    /// A lookup of `key` goes out next on `link`, as `command` (its `firstKey` is the Redis key
    /// read); `redirected`: it is resent after `MOVED`/`ASK` (after `ASKING`: nothing may go
    /// between the two). Tracking may send `CLIENT CACHING yes` on `link` first.
    var lookupSent: ((_ token: LookupToken, _ key: [UInt8], _ command: RedisCommand, _ link: NodeLink, _ redirected: Bool, _ nowMs: Int64) -> Void)?
    /// The reply to a tracking command sent on `link`.
    var receive: ((_ link: NodeLink, _ result: LookupResult) -> Void)?
    /// The reply to `CLIENT CACHING yes` on `link` (other than `OK`).
    var cachingRefused: ((_ link: NodeLink, _ reply: RedisReply) -> Void)?

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
    /// Tracking is confirmed on one link: reads sent on it from now on are tracked, and their
    /// invalidations will arrive (`subscriber` is the redirect target's client id on that node).
    case started(subscriber: Int64)
    /// Tracking is lost on a link (or never was where it is needed): whatever was read there before
    /// may change unseen. Drop what was read from `source` (`LinkTracking.source`: the single
    /// Redis, or one cluster node), and cache nothing read on that link until it is `.started` again.
    case lost(String, source: Int)
    /// Redis changed these keys.
    case invalidated([[UInt8]])
    /// FLUSHALL/FLUSHDB (or a replica's full resynchronisation) on `source`'s server: every key read there changed.
    case flushedAll(source: Int)
    /// `CLIENT TRACKING` was refused (Redis older than 6, or an ACL): nothing read there is cached.
    case refused(String)
}

/// Client tracking on one `NodeLink` (the single Redis, or one cluster node): the link's own
/// `InvalidationListener` (a subscriber connection to the same server), and `CLIENT TRACKING on
/// REDIRECT <its id>` on the link's data connection, re-sent whenever either connection is replaced.
/// Redis delivers an invalidation only to the redirect target on the server where the key was read,
/// so each server kvd reads from needs its own subscriber.
final class LinkTracking {
    weak var link: NodeLink?
    /// What the cache records as where an entry was read (`TrackingEvent`'s `source`): unique
    /// among the links of one `ClientTracking`, never reused.
    let source: Int
    let listener: InvalidationListener
    /// Whether the link has a data connection (tracking commands go out on it).
    var dataOpen: Bool
    /// The subscriber id each `CLIENT TRACKING on` in flight names (nil: `off`), oldest first.
    var inFlight: [Int64?] = []
    /// True only between a confirmed `CLIENT TRACKING` (its `OK` came back, naming the subscriber
    /// that is still subscribed) and the next loss: reads sent on the link outside it are not cached.
    var isTracking = false

    init(link: NodeLink, source: Int, settings: RedisSettings, observe: @escaping (InvalidationListener.Event) -> Void) {
        self.link = link
        self.source = source
        dataOpen = link.connection != nil
        listener = InvalidationListener(settings: settings, observe: observe)
    }

    var place: String { link?.address.map { " on \($0)" } ?? "" }
}

/// Redis client-side caching on RESP2 for one pipeline (default tracking mode, with redirection,
/// `OPTIN`): one `LinkTracking` per link kvd reads from — the one link of a single Redis (attached
/// at once), or, in cluster mode, each node's link (attached at the first lookup sent on it).
///
/// A read may be cached only if its link was tracking when it was sent (`lookupSent`'s `tracked`).
/// `OPTIN`: Redis remembers only the keys of reads that follow `CLIENT CACHING yes`, which kvd
/// sends just before the reads whose reply the cache will take (`onLookupSent`'s handler says
/// which). Other reads (most of a uniform load's, a skewed load's tail) cost Redis no tracking
/// entry, and the tracking table holds about what kvd caches rather than every key ever read.
/// In RESP2 Redis never tells the data connection that its redirect target is gone, so a lost
/// subscriber means: report `.lost`, and re-send `CLIENT TRACKING` with the new subscriber's id.
/// A link's loss is reported as `.lost` with the link's `source`: the cache drops what was read
/// there, and keeps what other nodes' tracking still covers.
public final class ClientTracking {
    private unowned let pipeline: RedisPipeline
    private let observe: (TrackingEvent) -> Void
    private var links: [LinkTracking] = []
    private var lastNowMs: Int64 = 0
    private var sentHandler: ((LookupToken, [UInt8], RedisCommand, _ source: Int, Bool) -> Bool)?
    /// The last `LinkTracking.source` given.
    private var nextSource = 0
    private static let cachingYes: RedisCommand = {
        var command = RedisCommand()
        for word in ["CLIENT", "CACHING", "yes"] { command.add(word) }
        return command
    }()

    /// Whether tracking is confirmed on every link it is attached to (and it is attached to one).
    public var isTracking: Bool {
        // Read once per loop turn (the published counters): a loop, not a key path.
        for tracked in links where !tracked.isTracking { return false }
        return !links.isEmpty
    }

    /// Attaches tracking to `pipeline` (its hooks are set; a subscriber connects at the next `checkDeadlines`).
    public init(pipeline: RedisPipeline, observe: @escaping (TrackingEvent) -> Void) {
        self.pipeline = pipeline
        self.observe = observe
        let hooks = pipeline.trackingHooks
        hooks.connectionOpened = { [unowned self] link, nowMs in
            lastNowMs = nowMs
            guard let tracked = link.tracking else { return }
            tracked.dataOpen = true
            if let id = tracked.listener.subscribedID { sendTracking(on: id, tracked) }
        }
        hooks.connectionClosed = { [unowned self] link in
            guard let tracked = link.tracking else { return }
            tracked.dataOpen = false
            tracked.inFlight.removeAll()
            lose(tracked, "the Redis data connection\(tracked.place) closed")
        }
        hooks.receive = { [unowned self] link, result in
            if let tracked = link.tracking { trackingReply(result, tracked) }
        }
        hooks.lookupSent = { [unowned self] token, key, command, link, redirected, nowMs in
            let tracked = link.tracking ?? attach(link)
            guard let sentHandler, sentHandler(token, key, command, tracked.source, tracked.isTracking && !redirected) else { return }
            // The cache will take the reply: Redis must track the key this read reads (OPTIN).
            link.send(Self.cachingYes, InFlight(token: PipelineTrackingHooks.cachingToken, sentMs: nowMs))
        }
        hooks.cachingRefused = { [unowned self] link, reply in
            // Never expected (CACHING goes only on links whose OPTIN tracking was confirmed); if it
            // is, the read after it is not tracked: flush, and cache nothing on this link until
            // tracking is confirmed again.
            guard let tracked = link.tracking else { return }
            let answer = if case .error(let message) = reply { "refused CLIENT CACHING: \(message)" } else { "answered CLIENT CACHING with \(reply)" }
            lose(tracked, "Redis \(answer)")
            // Tracking is turned on again (OPTIN); caching resumes at its OK.
            if let id = tracked.listener.subscribedID, tracked.dataOpen { sendTracking(on: id, tracked) }
        }
        // The single Redis is tracked from the start (attached to a pipeline already connected,
        // e.g. a reload turned the cache on: TRACKING goes out once the subscriber is up).
        if let single = pipeline.singleLink { attach(single) }
    }

    @discardableResult
    private func attach(_ link: NodeLink) -> LinkTracking {
        var forward: ((InvalidationListener.Event) -> Void)?
        nextSource += 1
        let tracked = LinkTracking(link: link, source: nextSource, settings: link.address == nil ? pipeline.settings : link.settings) { forward?($0) }
        forward = { [unowned self, unowned tracked] event in listenerEvent(event, tracked) }
        link.tracking = tracked
        links.append(tracked)
        tracked.listener.start()
        return tracked
    }

    /// Detaches from the pipeline: closes the subscribers and turns tracking off on the data connections.
    public func stop() {
        // Silent: the owner stops on purpose (no `.lost` for the subscriber or connection it closes).
        let hooks = pipeline.trackingHooks
        hooks.connectionOpened = nil
        hooks.connectionClosed = nil
        hooks.lookupSent = nil
        hooks.receive = nil
        hooks.cachingRefused = nil
        sentHandler = nil
        for tracked in links { detach(tracked, turnOff: true) }
        links.removeAll()
    }

    private func detach(_ tracked: LinkTracking, turnOff: Bool) {
        tracked.isTracking = false
        tracked.listener.stop()
        guard let link = tracked.link else { return }
        link.tracking = nil
        if turnOff, tracked.dataOpen, link.connection != nil {
            var off = RedisCommand()
            for word in ["CLIENT", "TRACKING", "off"] { off.add(word) }
            // The reply (nobody tracks this link now) is dropped by the pipeline's hook.
            link.send(off, InFlight(token: PipelineTrackingHooks.token, sentMs: lastNowMs))
        }
    }

    /// Sets where lookups report their Redis key when sent (`CachedLookups`); `tracked` is true
    /// when the link it goes out on tracks now and it is not a redirected resend. The hook returns
    /// whether the reply may be cached: then Redis is asked to track the read (`CLIENT CACHING yes`).
    func onLookupSent(_ hook: @escaping (LookupToken, [UInt8], RedisCommand, _ source: Int, _ tracked: Bool) -> Bool) {
        sentHandler = hook
    }

    /// The subscribers follow new Redis settings (the pipeline reports `.settingsApplied`).
    public func retarget(_ settings: RedisSettings) {
        for tracked in links { lose(tracked, "Redis settings changed") }
        if let single = pipeline.singleLink, let tracked = single.tracking, links.count == 1, links[0] === tracked {
            tracked.listener.retarget(settings)
            return
        }
        // A cluster (or a switch to or from one): the links are new; each is attached again when used.
        for tracked in links { detach(tracked, turnOff: false) }
        links.removeAll()
        if let single = pipeline.singleLink { attach(single) }
    }

    // MARK: The owner's loop (the subscribers' sockets)

    public func appendPollDescriptors(to descriptors: inout [pollfd]) {
        for tracked in links { tracked.listener.appendPollDescriptors(to: &descriptors) }
    }
    public func handle(_ descriptors: ArraySlice<pollfd>, nowMs: Int64) {
        lastNowMs = nowMs
        for tracked in links { tracked.listener.handle(descriptors, nowMs: nowMs) }
    }
    public func flush(nowMs: Int64) {
        for tracked in links { tracked.listener.flush(nowMs: nowMs) }
    }
    /// Applies the invalidations (and a subscriber loss) that have reached the sockets by now.
    public func handleArrived(nowMs: Int64) {
        lastNowMs = nowMs
        for tracked in links { tracked.listener.handleArrived(nowMs: nowMs) }
    }
    public func checkDeadlines(nowMs: Int64) {
        lastNowMs = nowMs
        // A cluster link that left the map is gone (its closing was reported as a loss): its subscriber goes too.
        if links.contains(where: { $0.link == nil }) {
            for tracked in links where tracked.link == nil { detach(tracked, turnOff: false) }
            links.removeAll { $0.link == nil }
        }
        for tracked in links { tracked.listener.checkDeadlines(nowMs: nowMs) }
    }
    public var nextDeadlineMs: Int64? {
        var earliest: Int64?
        for tracked in links {
            if let deadline = tracked.listener.nextDeadlineMs { earliest = min(earliest ?? deadline, deadline) }
        }
        return earliest
    }

    // MARK: State

    private func listenerEvent(_ event: InvalidationListener.Event, _ tracked: LinkTracking) {
        switch event {
        case .subscribed(let id):
            if tracked.dataOpen, tracked.link?.connection != nil { sendTracking(on: id, tracked) }
        case .invalidated(let keys):
            observe(.invalidated(keys))
        case .flushedAll:
            observe(.flushedAll(source: tracked.source))
        case .lost(let reason):
            lose(tracked, "the invalidation connection\(tracked.place) was lost: \(reason)")
        }
    }

    private func sendTracking(on id: Int64, _ tracked: LinkTracking) {
        guard let link = tracked.link else { return }
        var command = RedisCommand()
        for word in ["CLIENT", "TRACKING", "on", "REDIRECT"] { command.add(word) }
        command.add(String(id))
        command.add("OPTIN")
        tracked.inFlight.append(id)
        link.send(command, InFlight(token: PipelineTrackingHooks.token, sentMs: lastNowMs))
    }

    private func trackingReply(_ result: LookupResult, _ tracked: LinkTracking) {
        guard !tracked.inFlight.isEmpty else { return }
        let id = tracked.inFlight.removeFirst()
        switch result {
        case .reply(.status("OK")):
            if let id, id == tracked.listener.subscribedID, !tracked.isTracking {
                tracked.isTracking = true
                observe(.started(subscriber: id))
            }
        case .reply(.error(let message)):
            lose(tracked, "CLIENT TRACKING refused")
            observe(.refused(message))
        default:
            // A failure closes the connection: `connectionClosed` follows.
            lose(tracked, "no reply to CLIENT TRACKING")
        }
    }

    private func lose(_ tracked: LinkTracking, _ reason: String) {
        let was = tracked.isTracking
        tracked.isTracking = false
        if was { observe(.lost(reason, source: tracked.source)) }
    }
}
