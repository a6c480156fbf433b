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
    /// Cluster mode: the slot map, redirects, a node's failure.
    case cluster(ClusterEvent)
}

/// A pipelined connection to Redis (or, in cluster mode, one per node) for one event loop: lookups of a loop turn go out in one write,
/// replies come back in order, each lookup has a deadline, and the connection is opened when the
/// owner starts (`connectEarly`) or at the first lookup that needs it, and re-opened with bounded
/// backoff after a failure. New settings (a reload) take effect once
/// the lookups in flight are answered; nothing fails because of the switch.
///
/// The owner drives it from its loop, on one thread: `appendPollDescriptors` before polling,
/// `handle` with what poll reported, `checkDeadlines`, and `flush` at the end of the turn. Every
/// submitted lookup completes exactly once, through `complete`, possibly during the submitting call.
/// The pipeline never blocks and never sleeps; times are the owner's monotonic milliseconds.
///
/// In cluster mode (`[redis] cluster = yes`) each lookup goes to the node serving its Redis key's
/// slot (`ClusterRouter`): one link per node, redirects followed, the slot map kept fresh.
public final class RedisPipeline {
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

    /// The settings in force (a `retarget` replaces them once the lookups in flight are answered).
    public var settings: RedisSettings { activeSettings }
    // Stored privately behind a public getter, so that Swift checks its accesses at compile time:
    // a stored property other modules can read is checked at run time on every access.
    private var activeSettings: RedisSettings
    /// The one Redis (single mode); nil in cluster mode.
    private var single: NodeLink?
    /// Cluster mode's routing; nil for a single Redis.
    private var cluster: ClusterRouter?
    // `@exclusivity(unchecked)`: built by every lookup; see docs/performance.md, "Exclusivity checks".
    @exclusivity(unchecked) private var command = RedisCommand()
    private var lookupVerb = ""
    private var hashOrPrefix: [UInt8] = []
    /// `string` layout: the Redis key of the lookup being built, `prefix+key` (cluster mode routes by its slot).
    @exclusivity(unchecked) private var redisKey: [UInt8] = []
    /// Settings from a reload, applied once the lookups in flight on the old connection are answered.
    private var pendingSettings: RedisSettings?
    /// Lookups that arrived while `pendingSettings` waits.
    private var held: [Held] = []
    /// Links whose outage was reported (`.redisDown` at the first, `.redisRestored` when none is left).
    private var linksDown = 0
    let complete: (LookupToken, LookupResult) -> Void
    let observe: (PipelineEvent) -> Void
    /// `buckets` layout (and `string` with generations): the live generation and the descriptor
    /// poll (inactive otherwise).
    let dataset: DatasetTracker
    // tracking: client tracking's view of the links' data connections (Tracking.swift).
    let trackingHooks = PipelineTrackingHooks()
    // tracking: the one link of a single Redis (nil in cluster mode).
    var singleLink: NodeLink? { single }

    /// - Parameters:
    ///   - complete: called once for every submitted lookup, on the owner's thread.
    ///   - observe: called for connection events (failures, recovery, reconnects, settings applied).
    public init(settings: RedisSettings, complete: @escaping (LookupToken, LookupResult) -> Void,
                observe: @escaping (PipelineEvent) -> Void = { _ in }) {
        activeSettings = settings
        let dataset = DatasetTracker(deliver: complete, observe: observe)
        self.dataset = dataset
        // The tracker's own commands (negative tokens) come back to it, not to the owner.
        self.complete = { token, result in
            if token.value < 0 {
                // tracking: its commands' replies go to its hooks from `received`; what arrives
                // here is a failure, which the link reported as `connectionClosed` already.
                if !PipelineTrackingHooks.owns(token) { dataset.receive(token, result) }
            } else {
                complete(token, result)
            }
        }
        self.observe = observe
        dataset.pipeline = self
        setUpTarget()
        deriveCommandParts()
    }

    /// One link for a single Redis, or a router for a cluster.
    private func setUpTarget() {
        if settings.cluster {
            single = nil
            cluster = ClusterRouter(settings: settings, pipeline: self)
        } else if let single {
            single.retarget(settings)
        } else {
            cluster = nil
            single = NodeLink(address: nil, settings: settings, pipeline: self)
        }
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
        if let single {
            buildLookup(key)
            // tracking: which Redis key this lookup reads, as it goes out.
            trackingHooks.lookupSent?(token, key, command, single, false, nowMs)
            single.send(command, InFlight(token: token, sentMs: nowMs))
        } else if let cluster {
            cluster.route(.lookup(key: key, redirects: 0, startedMs: nowMs), token: token, nowMs: nowMs)
        }
    }

    /// Builds the lookup command of `key` into `command` (`HGET hash key`, `GET prefix+key`, or
    /// the dataset generation's `HGET bucket key` / `GET prefixgeneration:key`).
    /// - Returns: false when the dataset has no usable generation (nothing built).
    @inline(__always)
    @discardableResult
    private func buildLookup(_ key: [UInt8]) -> Bool {
        command.removeAll()
        command.add(lookupVerb)
        switch settings.layout {
        case .hash:
            command.add(hashOrPrefix)
            command.add(key)
        case .string where !dataset.active:
            redisKey.removeAll(keepingCapacity: true)
            redisKey.append(contentsOf: hashOrPrefix)
            redisKey.append(contentsOf: key)
            command.add(redisKey)
        case .string, .buckets:
            guard case .live = dataset.readiness else { return false }
            dataset.addLookupArguments(for: key, to: &command)
        }
        return true
    }

    /// Cluster mode: builds the lookup command of `key` into `command`.
    /// - Returns: the slot of the Redis key it names, or nil when no dataset generation is usable.
    func buildClusterLookup(_ key: [UInt8]) -> Int? {
        guard buildLookup(key) else { return nil }
        switch settings.layout {
        case .hash: return cluster?.hashSlot
        case .string where !dataset.active: return ClusterSlot.of(redisKey)
        case .string, .buckets: return ClusterSlot.of(dataset.lastRedisKey)
        }
    }

    /// The command `buildClusterLookup` built.
    var builtCommand: RedisCommand { command }

    /// Queues a PING behind the lookups in flight: proof that Redis answers this pipeline
    /// (the reply is `.status("PONG")` when it does). In cluster mode: proof that every slot has a
    /// node and every node kvd reads from answers.
    public func ping(token: LookupToken, nowMs: Int64) {
        guard admit(.ping(token), nowMs: nowMs) else { return }
        if let single {
            command.removeAll()
            command.add("PING")
            single.send(command, InFlight(token: token, sentMs: nowMs))
        } else if let cluster {
            cluster.ping(token: token, nowMs: nowMs)
        }
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
        if let cluster { return cluster.admit(request, nowMs: nowMs) }
        guard single?.connectIfNeeded(nowMs: nowMs) == true else {
            complete(request.token, .failed(.unavailable))
            return false
        }
        return true
    }

    /// Opens the connection before the first lookup needs it (one server; a cluster's node links
    /// open as lookups reach them): a worker that has served nothing yet holds its connection, and
    /// with the near-cache on its tracking, like the others. A failure here is the failure a
    /// lookup would have met (reported, backed off); the next lookup tries again.
    public func connectEarly(nowMs: Int64) {
        guard pendingSettings == nil, let single else { return }
        _ = single.connectIfNeeded(nowMs: nowMs)
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
    /// connect completes it at once, as for a lookup. `key` is the Redis key it names (cluster
    /// mode routes it by that key's slot).
    func sendInternal(_ internalCommand: RedisCommand, key: [UInt8], token: LookupToken, nowMs: Int64) {
        if let cluster {
            cluster.route(.internalCommand(internalCommand, key: key, redirects: 0, startedMs: nowMs), token: token, nowMs: nowMs)
            return
        }
        guard let single, single.connectIfNeeded(nowMs: nowMs) else {
            complete(token, .failed(.unavailable))
            return
        }
        single.send(internalCommand, InFlight(token: token, sentMs: nowMs))
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
        if let single {
            single.appendPollDescriptor(to: &descriptors)
        } else if let cluster {
            for link in cluster.links { link.appendPollDescriptor(to: &descriptors, holding: cluster.holds(link)) }
        }
    }

    /// Handles what poll reported for the entries `appendPollDescriptors` added: connect
    /// completion, replies (completing their lookups in order), errors.
    public func handle(_ descriptors: ArraySlice<pollfd>, nowMs: Int64) {
        for entry in descriptors where entry.revents != 0 {
            if let single {
                guard entry.fd == single.fileDescriptor else { continue }
                single.handle(events: entry.revents, nowMs: nowMs)
            } else if let link = cluster?.link(descriptor: entry.fd) {
                link.handle(events: entry.revents, nowMs: nowMs)
            }
        }
        switchWhenDrained(nowMs: nowMs)
    }

    /// Writes the lookups queued since the last flush (one write per connection for all of them;
    /// cluster mode writes in rounds, `ClusterRouter.flush`).
    public func flush(nowMs: Int64) {
        if let single {
            single.flush(nowMs: nowMs)
        } else if let cluster {
            cluster.flush(nowMs: nowMs)
        }
    }

    /// Fails the lookups once Redis sent nothing for `command_timeout_ms` since the oldest one was
    /// sent or since its last bytes arrived, whichever is later (a stalled server: the connection is
    /// replaced at once); a connect that takes too long counts as Redis being down. A big reply
    /// that keeps arriving is not a stall, nor is the time kvd spends answering it. Cluster mode:
    /// also resends lookups whose retry pause is over and starts a due map refresh.
    public func checkDeadlines(nowMs: Int64) {
        if let single {
            single.checkDeadlines(nowMs: nowMs)
        } else if let cluster {
            cluster.checkDeadlines(nowMs: nowMs)
        }
    }

    /// The earliest time `checkDeadlines` has something to do, if any.
    public func nextDeadlineMs() -> Int64? {
        if let single { return single.nextDeadlineMs() }
        return cluster?.nextDeadlineMs()
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
        if let single {
            for entry in single.entries.removeAll() { complete(entry.token, .failed(.shuttingDown)) }
            single.close()
        }
        cluster?.abandon()
    }

    // MARK: What the links report

    /// A reply to `entry`, on `link`.
    @inline(__always)
    func received(_ reply: RedisReply, for entry: InFlight, on link: NodeLink, nowMs: Int64) {
        if entry.token.value < 0, entry.job == nil {
            if entry.token == PipelineTrackingHooks.token {
                // tracking: the reply to CLIENT TRACKING on this link (no job, in cluster mode too).
                trackingReceived(reply, on: link)
                return
            }
            if entry.token == PipelineTrackingHooks.cachingToken {
                // tracking: CLIENT CACHING yes before a lookup (`OK`; anything else stops caching there).
                if reply != .status("OK") { trackingHooks.cachingRefused?(link, reply) }
                return
            }
        }
        if let job = entry.job {
            cluster?.received(reply, for: entry.token, job, on: link, nowMs: nowMs)
            return
        }
        if case .error(let message) = reply, RedisReply.isTemporaryRefusal(message) {
            refused(message, on: link)
            complete(entry.token, .failed(.unavailable))
        } else {
            link.refusing = false
            complete(entry.token, .reply(reply))
        }
    }

    // tracking: a temporary refusal counts as a failure of the tracking command, as for a lookup.
    private func trackingReceived(_ reply: RedisReply, on link: NodeLink) {
        if case .error(let message) = reply, RedisReply.isTemporaryRefusal(message) {
            refused(message, on: link)
            trackingHooks.receive?(link, .failed(.unavailable))
        } else {
            link.refusing = false
            trackingHooks.receive?(link, .reply(reply))
        }
    }

    /// `LOADING`, `BUSY`, `MASTERDOWN`: the server counts as down until a reply of another kind.
    func refused(_ message: String, on link: NodeLink) {
        link.refusing = true
        reportDown(link, RedisError(.io, "Redis refuses commands for now: \(message)"))
    }

    /// `link` dropped its connection; `owed` are the commands it had sent.
    func linkFailed(_ link: NodeLink, _ error: RedisError, failure: LookupFailure, owed: [InFlight], nowMs: Int64) {
        reportDown(link, error)
        if let cluster {
            cluster.linkFailed(link, error, failure: failure, owed: owed, nowMs: nowMs)
        } else {
            for entry in owed { complete(entry.token, .failed(failure)) }
        }
        switchWhenDrained(nowMs: nowMs)
    }

    /// Reports the first failure of an outage (once, until every server answers again).
    private func reportDown(_ link: NodeLink, _ error: RedisError) {
        guard link.reportedUp else { return }
        link.reportedUp = false
        linksDown += 1
        if linksDown == 1 { observe(.redisDown(error)) }
    }

    /// `link` answers again after its outage (or is no longer used).
    func linkRestored(_ link: NodeLink) {
        guard !link.reportedUp else { return }
        link.reportedUp = true
        linksDown -= 1
        if linksDown == 0 { observe(.redisRestored) }
    }

    private func switchWhenDrained(nowMs: Int64) {
        guard let next = pendingSettings else { return }
        if let single, !single.entries.isEmpty { return }
        if let cluster, !cluster.isDrained { return }
        pendingSettings = nil
        cluster?.closeAll()
        let previous = settings
        activeSettings = next
        // A single Redis keeps its link (and its outage state); cluster links are new.
        if previous.cluster || next.cluster { linksDown = 0 }
        setUpTarget()
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
        // The new target is connected now, as at start, not at the next lookup.
        connectEarly(nowMs: nowMs)
    }
}
