import KVDSettings

/// A cluster pipeline's routing: the slot map (from `CLUSTER SLOTS`), one `NodeLink` per node,
/// lookups sent to the node serving their Redis key's slot (a master, or a replica by
/// `read_from`), redirects followed, retries after `TRYAGAIN`/`CLUSTERDOWN`, and the map kept
/// fresh (`MapRefreshSchedule`). One per worker; nothing shared between threads.
final class ClusterRouter {
    /// A request waiting for the first slot map.
    fileprivate enum Waiting {
        case request(RedisPipeline.Held)
        case internalCommand(RedisCommand, key: [UInt8], token: LookupToken)
    }

    private struct Retry {
        let dueMs: Int64
        let token: LookupToken
        let job: ClusterJob
    }

    private let settings: RedisSettings
    unowned let pipeline: RedisPipeline
    /// The map in use; nil until the first `CLUSTER SLOTS` answer.
    private(set) var map: ClusterSlotMap?
    /// Every link, in creation order (polled and flushed in this order).
    private(set) var links: [NodeLink] = []
    private var linkByAddress: [NodeAddress: NodeLink] = [:]
    /// Per shard of the map: the master's link, and the replica's link kvd reads from (`read_from`).
    private var masterLinks: [NodeLink] = []
    private var replicaLinks: [NodeLink?] = []
    private(set) var refresh: MapRefreshSchedule
    private var waiting: [Waiting] = []
    private var retries: [Retry] = []
    /// Readiness checks spread over several nodes: the token and the nodes still to answer.
    private var pingGroups: [Int: (token: LookupToken, remaining: Int)] = [:]
    private var nextPingGroup = 0
    /// Where the next refresh is asked when no link is connected (rotates over seeds and nodes).
    private var sourceRotation = 0
    /// Which replica of a shard this pipeline reads (spreads workers over replicas).
    private let replicaChoice = Int.random(in: 0..<1024)
    /// `hash` layout: the slot of the one hash.
    let hashSlot: Int
    private static let noToken = LookupToken(Int.min)
    private static let readOnly = RedisCommand(["READONLY"])
    private static let asking = RedisCommand(["ASKING"])
    private static let clusterSlots = RedisCommand(["CLUSTER", "SLOTS"])
    private static let pingCommand = RedisCommand(["PING"])

    init(settings: RedisSettings, pipeline: RedisPipeline) {
        self.settings = settings
        self.pipeline = pipeline
        refresh = MapRefreshSchedule(periodMs: Int64(settings.clusterRefreshMs))
        hashSlot = ClusterSlot.of(Array(settings.hash.utf8))
    }

    // MARK: Links

    private func link(for address: NodeAddress) -> NodeLink {
        if let known = linkByAddress[address] { return known }
        var nodeSettings = settings
        nodeSettings.cluster = false
        nodeSettings.nodes = []
        nodeSettings.socket = nil
        nodeSettings.db = 0
        nodeSettings.host = address.host
        nodeSettings.port = address.port
        let link = NodeLink(address: address, settings: nodeSettings, pipeline: pipeline)
        links.append(link)
        linkByAddress[address] = link
        return link
    }

    /// The link whose socket is `descriptor`.
    func link(descriptor: Int32) -> NodeLink? {
        for link in links where link.fileDescriptor == descriptor { return link }
        return nil
    }

    /// The link a lookup of `shard` goes to by `read_from`: nil when none can take it now.
    private func target(shard: Int, nowMs: Int64) -> NodeLink? {
        let master = masterLinks[shard]
        switch settings.readFrom {
        case .master:
            return master.connectIfNeeded(nowMs: nowMs) ? master : nil
        case .replica:
            let chosen = replicaLinks[shard] ?? master
            return chosen.connectIfNeeded(nowMs: nowMs) ? chosen : nil
        case .preferReplica:
            if let replica = replicaLinks[shard], replica.connectIfNeeded(nowMs: nowMs) { return replica }
            return master.connectIfNeeded(nowMs: nowMs) ? master : nil
        }
    }

    /// The links `read_from` reads each shard from (the readiness check asks each of them).
    private func neededLinks() -> [NodeLink] {
        var needed: [NodeLink] = []
        for shard in masterLinks.indices {
            let link = settings.readFrom == .master ? masterLinks[shard] : (replicaLinks[shard] ?? masterLinks[shard])
            if !needed.contains(where: { $0 === link }) { needed.append(link) }
        }
        return needed
    }

    /// Points every shard at its links after the map changed; drops links no shard names.
    private func useMap(_ next: ClusterSlotMap) {
        // Nothing was read through this router before its first map.
        let moved = map.map { next.slotsMoved(since: $0) } ?? ClusterSlotSet()
        map = next
        masterLinks = next.shards.map { link(for: $0.master) }
        replicaLinks = next.shards.map { shard in
            guard settings.readFrom != .master, !shard.replicas.isEmpty else { return nil }
            let replica = link(for: shard.replicas[replicaChoice % shard.replicas.count])
            if !replica.readsAsReplica {
                replica.readsAsReplica = true
                replica.handshake.append(Self.readOnly)
                if replica.isOpen { replica.send(Self.readOnly, InFlight(token: Self.noToken, sentMs: 0, job: .discard)) }
            }
            return replica
        }
        let named = Set(next.shards.flatMap { [$0.master] + $0.replicas })
        links.removeAll { link in
            guard let address = link.address, !named.contains(address), link.entries.isEmpty else { return false }
            link.close()
            pipeline.linkRestored(link)
            linkByAddress[address] = nil
            return true
        }
        if !moved.isEmpty { pipeline.observe(.cluster(.slotsMoved(moved))) }
    }

    // MARK: Submitting

    /// Whether a request can be routed now; else it waits for the first map (or fails when none can be read).
    func admit(_ request: RedisPipeline.Held, nowMs: Int64) -> Bool {
        guard map == nil else { return true }
        waiting.append(.request(request))
        startRefreshIfDue(nowMs: nowMs)
        return false
    }

    /// Sends a lookup (or a tracker command) to the node of its slot, or to `node` after `ASK`.
    func route(_ job: ClusterJob, token: LookupToken, nowMs: Int64, askingNode: NodeAddress? = nil) {
        guard let map else {
            if case .internalCommand(let command, let key, _, _) = job {
                waiting.append(.internalCommand(command, key: key, token: token))
                startRefreshIfDue(nowMs: nowMs)
            } else if case .lookup(let key, _, _) = job {
                waiting.append(.request(.lookup(token, key: key)))
                startRefreshIfDue(nowMs: nowMs)
            }
            return
        }
        let slot: Int
        let command: RedisCommand
        switch job {
        case .lookup(let key, _, _):
            guard let lookupSlot = pipeline.buildClusterLookup(key) else {
                pipeline.complete(token, .failed(.unavailable))
                return
            }
            slot = lookupSlot
            command = pipeline.builtCommand
        case .internalCommand(let internalCommand, let key, _, _):
            slot = ClusterSlot.of(key)
            command = internalCommand
        case .pingPart, .discard, .slots:
            return
        }
        let link: NodeLink?
        if let askingNode {
            let asked = self.link(for: askingNode)
            link = asked.connectIfNeeded(nowMs: nowMs) ? asked : nil
            link?.send(Self.asking, InFlight(token: Self.noToken, sentMs: nowMs, job: .discard))
        } else if let shard = map.shard(forSlot: slot) {
            link = target(shard: shard, nowMs: nowMs)
        } else {
            // No node serves the slot: the map may be stale.
            refresh.request()
            link = nil
        }
        guard let link else {
            pipeline.complete(token, .failed(.unavailable))
            return
        }
        // tracking: a lookup's Redis key as it goes out on this node's link (a redirected resend is not cached).
        if case .lookup(let key, let redirects, _) = job, let sent = pipeline.trackingHooks.lookupSent {
            sent(token, key, command, link, redirects > 0 || askingNode != nil, nowMs)
        }
        link.send(command, InFlight(token: token, sentMs: nowMs, job: job))
    }

    /// Readiness: every slot has a node, and every node `read_from` reads answers `PING`.
    func ping(token: LookupToken, nowMs: Int64) {
        guard let map, map.coversEverySlot else {
            pipeline.complete(token, .failed(.unavailable))
            return
        }
        let needed = neededLinks()
        guard needed.allSatisfy({ $0.connectIfNeeded(nowMs: nowMs) }) else {
            pipeline.complete(token, .failed(.unavailable))
            return
        }
        let group = nextPingGroup
        nextPingGroup &+= 1
        pingGroups[group] = (token, needed.count)
        for link in needed { link.send(Self.pingCommand, InFlight(token: Self.noToken, sentMs: nowMs, job: .pingPart(group: group))) }
    }

    private func pingPartAnswered(group: Int, _ result: LookupResult) {
        guard let (token, remaining) = pingGroups[group] else { return }
        if result != .reply(.status("PONG")) {
            pingGroups[group] = nil
            pipeline.complete(token, result == .failed(.timedOut) ? result : .failed(.unavailable))
        } else if remaining == 1 {
            pingGroups[group] = nil
            pipeline.complete(token, result)
        } else {
            pingGroups[group] = (token, remaining - 1)
        }
    }

    // MARK: Replies

    func received(_ reply: RedisReply, for token: LookupToken, _ job: ClusterJob, on link: NodeLink, nowMs: Int64) {
        switch job {
        case .discard:
            return
        case .slots:
            mapAnswered(reply, by: link, nowMs: nowMs)
            return
        case .pingPart(let group):
            if case .error(let message) = reply, RedisReply.isTemporaryRefusal(message) {
                pipeline.refused(message, on: link)
            } else {
                link.refusing = false
            }
            pingPartAnswered(group: group, .reply(reply))
            return
        case .lookup(_, let redirects, _), .internalCommand(_, _, let redirects, _):
            switch ClusterRouting.action(for: reply, redirects: redirects) {
            case .deliver:
                link.refusing = false
                pipeline.complete(token, .reply(reply))
            case .moved(let slot, let node):
                pipeline.observe(.cluster(.redirected(.moved)))
                var patched = map ?? ClusterSlotMap()
                patched.move(slot: slot, to: node)
                useMap(patched)
                refresh.request()
                route(job.redirected, token: token, nowMs: nowMs)
            case .ask(let node):
                pipeline.observe(.cluster(.redirected(.ask)))
                route(job.redirected, token: token, nowMs: nowMs, askingNode: node)
            case .retry(let refreshMap):
                if refreshMap { refresh.request() }
                if ClusterRouting.mayRetry(startedMs: job.startedMs, nowMs: nowMs, commandTimeoutMs: settings.commandTimeoutMs) {
                    retries.append(Retry(dueMs: nowMs + ClusterRouting.retryPauseMs, token: token, job: job))
                } else {
                    pipeline.complete(token, .failed(.unavailable))
                }
            case .refused:
                if case .error(let message) = reply { pipeline.refused(message, on: link) }
                pipeline.complete(token, .failed(.unavailable))
            case .tooManyRedirects:
                pipeline.complete(token, .failed(.unavailable))
            }
        }
    }

    /// `link` failed: only what it owed fails (with `prefer-replica`, what a replica owed goes to
    /// the master instead, unless it timed out); the map is read again until it changes.
    func linkFailed(_ link: NodeLink, _ error: RedisError, failure: LookupFailure, owed: [InFlight], nowMs: Int64) {
        if let address = link.address { pipeline.observe(.cluster(.nodeFailed(address, error))) }
        let resend = settings.readFrom == .preferReplica && link.readsAsReplica && failure != .timedOut
        for entry in owed {
            switch entry.job {
            case .pingPart(let group)?: pingPartAnswered(group: group, .failed(failure))
            case .slots?: refreshFailed(nowMs: nowMs)
            case .discard?: break
            case let job? where resend: route(job, token: entry.token, nowMs: nowMs)
            case .lookup?, .internalCommand?, nil: pipeline.complete(entry.token, .failed(failure))
            }
        }
        refresh.requestUntilChange(nowMs: nowMs)
    }

    // MARK: The map

    /// Asks a node for `CLUSTER SLOTS` when a refresh is due: a connected link first, else the
    /// seeds and known nodes in turn.
    private func startRefreshIfDue(nowMs: Int64) {
        guard refresh.isDue(nowMs: nowMs) else { return }
        refresh.started(nowMs: nowMs)
        var sources: [NodeLink] = links.filter(\.isConnected)
        if sources.isEmpty {
            var addresses = settings.nodes
            for link in links { if let address = link.address, !addresses.contains(address) { addresses.append(address) } }
            for offset in 0..<addresses.count { sources.append(link(for: addresses[(sourceRotation + offset) % addresses.count])) }
            sourceRotation &+= 1
        }
        for source in sources where source.connectIfNeeded(nowMs: nowMs) {
            pipeline.observe(.cluster(.mapRefresh))
            source.send(Self.clusterSlots, InFlight(token: Self.noToken, sentMs: nowMs, job: .slots))
            return
        }
        refreshFailed(nowMs: nowMs)
    }

    private func mapAnswered(_ reply: RedisReply, by link: NodeLink, nowMs: Int64) {
        guard let address = link.address else { return }
        do throws(ClusterSlotMap.Problem) {
            let next = try ClusterSlotMap(clusterSlots: reply, answeredBy: address)
            guard !next.shards.isEmpty else { throw ClusterSlotMap.Problem(description: "no slot is assigned to any node") }
            let changed = next != map
            refresh.finished(gotMap: true, changed: changed)
            if changed {
                useMap(next)
                pipeline.observe(.cluster(.topology(ClusterTopologySummary(next))))
            }
            releaseWaiting(nowMs: nowMs)
        } catch {
            refresh.finished(gotMap: false, changed: false)
            let reason = if case .error(let message) = reply { "\(address) answered CLUSTER SLOTS with \(message)" } else { "\(address): \(error.description)" }
            pipeline.observe(.cluster(.mapUnavailable(reason)))
            if map == nil { failWaiting() }
        }
    }

    private func refreshFailed(nowMs: Int64) {
        refresh.finished(gotMap: false, changed: false)
        if map == nil {
            pipeline.observe(.cluster(.mapUnavailable("no node of \(settings.nodes.map(\.description).joined(separator: ", ")) answered CLUSTER SLOTS")))
            failWaiting()
        }
    }

    private func releaseWaiting(nowMs: Int64) {
        guard !waiting.isEmpty else { return }
        let released = waiting
        waiting.removeAll()
        for entry in released {
            switch entry {
            case .request(.lookup(let token, let key)): pipeline.lookup(key: key, token: token, nowMs: nowMs)
            case .request(.ping(let token)): pipeline.ping(token: token, nowMs: nowMs)
            case .internalCommand(let command, let key, let token):
                route(.internalCommand(command, key: key, redirects: 0, startedMs: nowMs), token: token, nowMs: nowMs)
            }
        }
    }

    private func failWaiting(with failure: LookupFailure = .unavailable) {
        let failed = waiting
        waiting.removeAll()
        for entry in failed { pipeline.complete(entry.token, .failed(failure)) }
    }

    // MARK: The owner's loop

    func checkDeadlines(nowMs: Int64) {
        for link in links { link.checkDeadlines(nowMs: nowMs) }
        if !retries.isEmpty {
            let due = retries.filter { $0.dueMs <= nowMs }
            retries.removeAll { $0.dueMs <= nowMs }
            for retry in due { route(retry.job, token: retry.token, nowMs: nowMs) }
        }
        startRefreshIfDue(nowMs: nowMs)
    }

    // MARK: Writes

    /// How long a round of writes (below) may hold other nodes' new commands back: a node slower
    /// than this to answer no longer holds the others.
    static let roundHoldMs: Int64 = 2
    /// While the last `flush` held new writes back for the round in flight: when that hold ends
    /// even if the round's replies are not all in.
    private var roundHoldEndMs: Int64?

    /// Writes in rounds: while any link awaits the replies to a write made under `roundHoldMs`
    /// ago, new commands wait on every link; once those replies are in, every node's commands go
    /// out together. A link also waits for its own last write's replies, however old. With
    /// nothing in flight a command goes out at once; under load each node gets one batch per
    /// round instead of one per loop turn in which a lookup for it arrived. On a few cores the
    /// wake-ups of several Redis processes (and kvd's reads of their replies) are most of what
    /// a cluster costs per request, and they fall as batches grow (docs/cluster.md#benchmark).
    /// A single Redis gains nothing from holding back (measured: it lost 4%), so
    /// `RedisPipeline` writes every turn there.
    func flush(nowMs: Int64) {
        roundHoldEndMs = nil
        for link in links where link.awaitsReplies && link.lastWriteMs + Self.roundHoldMs > nowMs {
            roundHoldEndMs = max(roundHoldEndMs ?? 0, link.lastWriteMs + Self.roundHoldMs)
        }
        for link in links { link.flush(nowMs: nowMs, holding: holds(link)) }
    }

    /// Whether `link`'s new commands wait this turn (see `flush`).
    func holds(_ link: NodeLink) -> Bool { roundHoldEndMs != nil || link.awaitsReplies }

    func nextDeadlineMs() -> Int64? {
        var earliest = refresh.nextDueMs()
        if let holdEnd = roundHoldEndMs { earliest = min(earliest ?? holdEnd, holdEnd) }
        for link in links {
            if let deadline = link.nextDeadlineMs() { earliest = min(earliest ?? deadline, deadline) }
        }
        for retry in retries { earliest = min(earliest ?? retry.dueMs, retry.dueMs) }
        return earliest
    }

    /// Nothing in flight, waiting for a retry, or waiting for the map (a reload may switch).
    var isDrained: Bool {
        retries.isEmpty && waiting.isEmpty && pingGroups.isEmpty && links.allSatisfy { link in
            var rest = link.entries
            while let entry = rest.popFirst() {
                if case .discard? = entry.job { continue }
                if case .slots? = entry.job { continue }
                return false
            }
            return true
        }
    }

    func abandon() {
        failWaiting(with: .shuttingDown)
        for retry in retries { pipeline.complete(retry.token, .failed(.shuttingDown)) }
        retries.removeAll()
        for link in links {
            for entry in link.entries.removeAll() {
                switch entry.job {
                case .lookup?, .internalCommand?, nil: pipeline.complete(entry.token, .failed(.shuttingDown))
                case .pingPart?, .slots?, .discard?: break
                }
            }
            link.close()
        }
        for (_, group) in pingGroups { pipeline.complete(group.token, .failed(.shuttingDown)) }
        pingGroups.removeAll()
    }

    /// Closes every link (a reload switched away from this cluster; nothing is in flight).
    func closeAll() {
        for link in links { link.close() }
        links.removeAll()
        linkByAddress.removeAll()
    }
}

extension ClusterRouter.Waiting {
    var token: LookupToken {
        switch self {
        case .request(let held): held.token
        case .internalCommand(_, _, let token): token
        }
    }
}

extension ClusterJob {
    /// The job once more redirected.
    var redirected: ClusterJob {
        switch self {
        case .lookup(let key, let redirects, let started): .lookup(key: key, redirects: redirects + 1, startedMs: started)
        case .internalCommand(let command, let key, let redirects, let started):
            .internalCommand(command, key: key, redirects: redirects + 1, startedMs: started)
        case .pingPart, .discard, .slots: self
        }
    }

    var startedMs: Int64 {
        switch self {
        case .lookup(_, _, let started), .internalCommand(_, _, _, let started): started
        case .pingPart, .discard, .slots: 0
        }
    }
}
