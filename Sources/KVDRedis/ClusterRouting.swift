/// What a cluster pipeline reports besides the connection events, for its owner's log and metrics.
public enum ClusterEvent: Sendable, Equatable {
    /// A slot map was read that differs from the one in use (the first one too).
    case topology(ClusterTopologySummary)
    /// The map now in use (read, or patched after `MOVED`) puts these slots on other nodes than
    /// the one before did (not sent for the first map: nothing was read before it).
    case slotsMoved(ClusterSlotSet)
    /// `CLUSTER SLOTS` was asked (periodic, after a redirect, after a node's failure).
    case mapRefresh
    /// A lookup was redirected (`MOVED` or `ASK`).
    case redirected(ClusterRedirect.Kind)
    /// The connection to `node` failed (its lookups fail; the map is read again).
    case nodeFailed(NodeAddress, RedisError)
    /// No node could give a slot map: lookups waiting for the first one fail (503).
    case mapUnavailable(String)
}

/// The slot map in a few words, for log lines: masters, replicas, slots covered.
public struct ClusterTopologySummary: Sendable, Equatable, CustomStringConvertible {
    public let masters: [NodeAddress]
    public let replicas: [NodeAddress]
    public let coveredSlots: Int

    public init(_ map: ClusterSlotMap) {
        masters = map.shards.map(\.master)
        replicas = map.shards.flatMap(\.replicas)
        coveredSlots = map.coveredSlots
    }

    public var description: String {
        let coverage = coveredSlots == ClusterSlot.count ? "all \(ClusterSlot.count) slots covered" : "\(coveredSlots) of \(ClusterSlot.count) slots covered (the others answer 503)"
        return "\(masters.count) masters (\(masters.map(\.description).joined(separator: ", "))), \(replicas.count) replicas (\(replicas.map(\.description).joined(separator: ", "))), \(coverage)"
    }
}

/// The routing decisions of a cluster pipeline that depend on nothing but their inputs.
enum ClusterRouting {
    /// Redirects one lookup may follow; the next one fails it (503).
    static let maxRedirects = 5
    /// The pause before a lookup answered `TRYAGAIN` or `CLUSTERDOWN` is sent again.
    static let retryPauseMs: Int64 = 50

    enum Action: Equatable {
        /// The reply is the lookup's answer.
        case deliver
        /// `MOVED`: patch the map, resend by the map, refresh the map.
        case moved(slot: Int, node: NodeAddress)
        /// `ASK`: `ASKING` then the command to `node`, map unchanged.
        case ask(NodeAddress)
        /// `TRYAGAIN`, `CLUSTERDOWN`: resend after a pause (a refresh too for `CLUSTERDOWN`).
        case retry(refreshMap: Bool)
        /// `LOADING`, `BUSY`, `MASTERDOWN`: the node refuses commands for now.
        case refused
        /// A redirect beyond `maxRedirects`.
        case tooManyRedirects
    }

    /// What to do with `reply` to a lookup already redirected `redirects` times.
    static func action(for reply: RedisReply, redirects: Int) -> Action {
        guard case .error(let message) = reply else { return .deliver }
        if let redirect = ClusterRedirect(errorText: message) {
            guard redirects < maxRedirects else { return .tooManyRedirects }
            switch redirect.kind {
            case .moved: return .moved(slot: redirect.slot, node: redirect.node)
            case .ask: return .ask(redirect.node)
            }
        }
        if message.hasPrefix("TRYAGAIN") { return .retry(refreshMap: false) }
        if message.hasPrefix("CLUSTERDOWN") { return .retry(refreshMap: true) }
        if RedisReply.isTemporaryRefusal(message) { return .refused }
        return .deliver
    }

    /// Whether a lookup started at `startedMs` may still be retried after a pause at `nowMs`.
    static func mayRetry(startedMs: Int64, nowMs: Int64, commandTimeoutMs: Int) -> Bool {
        nowMs + retryPauseMs < startedMs + Int64(commandTimeoutMs)
    }
}

/// When a cluster pipeline reads the slot map: once at the start, every `periodMs`, soon after a
/// `MOVED` or a `CLUSTERDOWN`, and repeatedly after a node's failure until the map changes (a
/// failover) or `untilChangeLimitMs` pass. Never more than one refresh in flight, and urgent ones
/// at least `minimumGapMs` apart.
struct MapRefreshSchedule: Equatable {
    static let minimumGapMs: Int64 = 100
    static let untilChangeLimitMs: Int64 = 30_000

    let periodMs: Int64
    private(set) var inFlight = false
    /// A refresh is wanted soon (the first map, a `MOVED`, a failed refresh).
    private(set) var requested = true
    /// Refresh again after each answer until the map changes, up to this time.
    private(set) var untilChangeEndsMs: Int64?
    private var lastStartMs: Int64?
    private var nextPeriodicMs: Int64 = 0

    init(periodMs: Int64) { self.periodMs = periodMs }

    /// After a `MOVED` or `CLUSTERDOWN`: one refresh soon (however many redirects asked for it).
    mutating func request() { requested = true }

    /// After a node's failure: refresh until the map changes.
    mutating func requestUntilChange(nowMs: Int64) {
        requested = true
        if untilChangeEndsMs == nil { untilChangeEndsMs = nowMs + Self.untilChangeLimitMs }
    }

    /// When the next refresh may start (nil while one is in flight).
    func nextDueMs() -> Int64? {
        guard !inFlight else { return nil }
        if requested || untilChangeEndsMs != nil {
            return lastStartMs.map { $0 + Self.minimumGapMs } ?? 0
        }
        return nextPeriodicMs
    }

    func isDue(nowMs: Int64) -> Bool { nextDueMs().map { nowMs >= $0 } ?? false }

    mutating func started(nowMs: Int64) {
        inFlight = true
        requested = false
        lastStartMs = nowMs
        nextPeriodicMs = nowMs + periodMs
        if let ends = untilChangeEndsMs, nowMs >= ends { untilChangeEndsMs = nil }
    }

    /// The refresh ended: with a map (`changed` when it differs from the one in use), or without
    /// one (the node failed or refused: ask another one soon).
    mutating func finished(gotMap: Bool, changed: Bool) {
        inFlight = false
        if changed { untilChangeEndsMs = nil }
        if !gotMap { requested = true }
    }
}
