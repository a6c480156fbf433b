import Dispatch
import KVDConfig
import KVDHTTP
import KVDRedis
import KVDSystem
import Logging
import Synchronization

/// Sentinel mode (`[redis] sentinels`): keeps every worker pointed at the master the sentinels name.
///
/// kvd asks the sentinels before its workers connect (`resolveAtStart`). Then this thread keeps a
/// subscription to `+switch-master` on one sentinel and asks again — a sentinel names the
/// master, a connection of its own confirms it with ROLE — on a switch, whenever a worker has lost
/// Redis (at most twice a second), and every `periodicAskSeconds` in any case (a switch announced
/// while no subscription was up). When the confirmed master differs from the workers' target,
/// every worker is retargeted (the reload path: each switches once its lookups in flight are
/// answered) and one line is logged. Worker connections send ROLE themselves (`RedisSettings.
/// requiresMasterRole`), so a reconnect never reads from a replica, even before this thread notices.
///
/// Worker health is sampled (`workersWithRedis`, every `tickMs`), not signalled: a reconnect that
/// succeeds at once passed ROLE, so its address is still the master's; one that fails keeps the
/// worker down for a backoff or longer, and is seen.
final class SentinelWatcher: Sendable {
    /// The file's `[redis]` settings (sentinels, name, password …) and the master they resolved to.
    private struct State {
        var base: RedisSettings
        var resolved: RedisSettings
        /// The last ask failed (logged once per outage).
        var failing = false
        /// The sentinel that answered last: asked first next time.
        var lastSentinel: NodeAddress?
    }

    private let server: HTTPServer
    private let logger: Logger
    private let state: Mutex<State>
    private let stopping = Atomic<Bool>(false)
    /// A reload changed the sentinels, the master's name or the sentinel password: subscribe anew.
    private let resubscribe = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)
    /// Called with the new target after each switch (the status line's `Redis host:port`).
    private let switched: @Sendable (String) -> Void

    /// How long one wait for a `+switch-master` lasts: also how often worker health is looked at.
    static let tickMs = 100
    /// Least time between two asks caused by workers without Redis.
    static let downAskIntervalMs: UInt64 = 500
    /// Time between two asks when nothing happened.
    static let periodicAskSeconds: UInt64 = 10
    /// Least time between two subscription attempts.
    static let subscribeRetryMs: UInt64 = 1000

    init(server: HTTPServer, base: RedisSettings, resolved: RedisSettings, sentinel: NodeAddress, logger: Logger,
         switched: @escaping @Sendable (String) -> Void) {
        self.server = server
        self.logger = logger
        self.state = Mutex(State(base: base, resolved: resolved, lastSentinel: sentinel))
        self.switched = switched
    }

    /// Asks the sentinels for the master before the workers exist, retrying for up to `waitMs`
    /// (a failover may be under way while kvd starts).
    /// - Returns: the settings pointed at the confirmed master and the sentinel that named it, or
    ///   nil (logged) when none was found in time.
    static func resolveAtStart(_ redis: RedisSettings, waitMs: Int, logger: Logger) -> (settings: RedisSettings, sentinel: NodeAddress)? {
        let deadline = Self.nowMs() + UInt64(waitMs)
        while true {
            do throws(RedisError) {
                let (resolved, sentinel) = try Sentinel.resolve(redis)
                logger.notice("Sentinel: master '\(redis.masterName ?? "")' is \(resolved.targetDescription) (named by sentinel \(sentinel), ROLE master)")
                return (resolved, sentinel)
            } catch {
                guard Self.nowMs() < deadline else {
                    logger.critical("cannot start: Sentinel: \(error.message) (asked for \(waitMs / 1000) s)")
                    return nil
                }
                SystemClock.sleep(milliseconds: 200)
            }
        }
    }

    private static func nowMs() -> UInt64 { SystemClock.nanoseconds() / 1_000_000 }

    /// The master the workers are pointed at, `host:port`.
    var target: String { state.withLock { $0.resolved.targetDescription } }

    /// Starts the watching thread.
    func start() {
        Threads.detach(name: "kvd-sentinel") { [self] in
            watch()
            finished.signal()
        }
    }

    /// Ends the thread (within one tick, or one blocking ask: the Redis timeouts bound it).
    func stop() {
        stopping.store(true, ordering: .relaxed)
        finished.wait()
    }

    /// New `[redis]` settings from a reload: resolved and confirmed first (nothing changes when that
    /// fails), then every worker is pointed at the master.
    /// - Throws: why no master was confirmed.
    func apply(_ base: RedisSettings) throws(RedisError) {
        try state.withLock { (state: inout State) throws(RedisError) in
            let (resolved, sentinel) = try Sentinel.resolve(base, askingFirst: state.lastSentinel)
            state.lastSentinel = sentinel
            if base.sentinels != state.base.sentinels || base.masterName != state.base.masterName
                || base.sentinelPassword != state.base.sentinelPassword {
                resubscribe.store(true, ordering: .relaxed)
            }
            state.base = base
            state.resolved = resolved
            state.failing = false
            server.retargetRedis(resolved)
        }
        switched(target)
    }

    private func watch() {
        var subscription: SentinelSubscription?
        var nextSubscribeMs: UInt64 = 0
        var subscribeFailing = false
        var lastAskMs = Self.nowMs()
        while !stopping.load(ordering: .relaxed) {
            let nowMs = Self.nowMs()
            if resubscribe.exchange(false, ordering: .relaxed) {
                subscription = nil
                nextSubscribeMs = 0
            }
            if subscription == nil && nowMs >= nextSubscribeMs {
                let (base, first) = state.withLock { ($0.base, $0.lastSentinel) }
                do throws(RedisError) {
                    subscription = try SentinelSubscription(base, tryingFirst: first)
                    if subscribeFailing { logger.notice("Sentinel: subscribed to +switch-master again (sentinel \(subscription!.sentinel))") }
                    subscribeFailing = false
                    // A switch may have happened while no subscription was up.
                    ask(reason: "a new subscription")
                    lastAskMs = Self.nowMs()
                } catch {
                    if !subscribeFailing { logger.warning("Sentinel: \(error.message); asking every \(Self.periodicAskSeconds) s and whenever a worker loses Redis until a sentinel answers") }
                    subscribeFailing = true
                    nextSubscribeMs = nowMs + Self.subscribeRetryMs
                }
            }
            var reason: String?
            if let current = subscription {
                do throws(RedisError) {
                    if try current.nextSwitch(timeoutMs: Self.tickMs) != nil { reason = "+switch-master" }
                } catch {
                    logger.warning("Sentinel: lost the +switch-master subscription on sentinel \(current.sentinel): \(error.message)")
                    subscription = nil
                    subscribeFailing = true
                    reason = "the lost subscription"
                }
            } else {
                SystemClock.sleep(milliseconds: Self.tickMs)
            }
            let afterMs = Self.nowMs()
            if reason == nil {
                let activity = server.activity
                if activity.workersWithRedis < activity.workers && afterMs >= lastAskMs + Self.downAskIntervalMs {
                    reason = "\(activity.workers - activity.workersWithRedis) of \(activity.workers) workers without Redis"
                } else if afterMs >= lastAskMs + Self.periodicAskSeconds * 1000 {
                    reason = "the periodic check"
                }
            }
            if let reason, !stopping.load(ordering: .relaxed) {
                ask(reason: reason)
                lastAskMs = Self.nowMs()
            }
        }
    }

    /// Asks the sentinels and, when the confirmed master is not the workers' target, retargets them.
    private func ask(reason: String) {
        let moved: (from: String, to: String, sentinel: NodeAddress)? = state.withLock { state in
            do throws(RedisError) {
                let (resolved, sentinel) = try Sentinel.resolve(state.base, askingFirst: state.lastSentinel)
                state.lastSentinel = sentinel
                if state.failing {
                    logger.notice("Sentinel: master '\(state.base.masterName ?? "")' confirmed at \(resolved.targetDescription) again (sentinel \(sentinel))")
                    state.failing = false
                }
                guard resolved != state.resolved else { return nil }
                let previous = state.resolved.targetDescription
                state.resolved = resolved
                server.retargetRedis(resolved)
                return (previous, resolved.targetDescription, sentinel)
            } catch {
                if !state.failing {
                    logger.warning("Sentinel: no confirmed master after \(reason): \(error.message); still pointed at \(state.resolved.targetDescription), asking again")
                }
                state.failing = true
                return nil
            }
        }
        guard let moved else { return }
        let name = state.withLock { $0.base.masterName ?? "" }
        logger.notice("Sentinel: master '\(name)' moved from \(moved.from) to \(moved.to) (named by sentinel \(moved.sentinel) after \(reason)); every worker switches once its lookups in flight are answered")
        switched(moved.to)
    }
}
