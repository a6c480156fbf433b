import KVDConfig
import KVDRedis
import KVDSystem

/// kvload's connections to a Redis Cluster: one pipelined connection per master, each command sent
/// to the master that serves its key's slot (from `CLUSTER SLOTS`).
///
/// Every command is kept until it is safe to forget: unacknowledged ones are resent after a
/// `MOVED` (map patched, a refresh scheduled), an `ASK` (`ASKING` first, map unchanged), a
/// `TRYAGAIN`/`CLUSTERDOWN` (after a pause) or a lost connection (map refreshed); acknowledged
/// ones stay until a `WAIT 1` on their master says a replica has them, so that rows a killed
/// master acknowledged but never replicated are sent again to the replica that takes its place.
/// A master that restarts (new run id) may have lost rows a replica had confirmed and then
/// resynchronised from it: `confirm()` then fails rather than promise them.
final class ClusterLoadConnection: LoadChannel {
    private let settings: RedisSettings
    private let options: LoadOptions
    private let tally: LoadTally
    private let countsNewKeys: Bool
    private let seeds: [NodeAddress]
    private var map = ClusterSlotMap() {
        didSet { shardNodes = [] }
    }
    /// The node of each shard of `map`, filled as commands are routed (emptied when the map changes).
    private var shardNodes: [Node?] = []
    private var nodes: [NodeAddress: Node] = [:]
    /// Nodes by their poll token.
    private var nodeList: [Node] = []
    private let poll: EventPoll
    /// Commands to send (again) once `due`: after a lost connection, TRYAGAIN or CLUSTERDOWN.
    private var parked: [(command: Command, due: ContinuousClock.Instant)] = []
    private var refreshWanted = false
    private var lastRefresh: ContinuousClock.Instant?
    /// The last acknowledgement (or the start of the current work): outstanding work with no
    /// acknowledgement for `retrySeconds` fails the load.
    private var lastAck = ContinuousClock.now
    /// The pause before parked commands are sent again: doubles while nothing is acknowledged.
    private var pauseMs = ClusterLoadConnection.firstPauseMs
    /// Rows of batches sent and not acknowledged (queued on a node or parked).
    private var inFlightRows = 0
    /// Rows handed to `send`.
    private var rowsSent = 0
    /// Replies of single commands, by their id.
    private var singleReplies: [Int: RedisReply] = [:]
    private var nextSingle = 0
    /// A failure found while handling replies, thrown by the pump.
    private var failure: LoadFailure?
    /// Rows acknowledged (and confirmed by a replica) by masters that then restarted: may be lost.
    private var possiblyLostRows = 0
    private var restartedMasters: [String] = []
    private var moved = 0
    private var asked = 0
    private var reconnects = 0

    static let firstPauseMs = 50
    static let longestPauseMs = 500
    /// `WAIT 1 <ms>`: how long a master may take to hear from a replica.
    static let replicaWaitMs = 1000
    /// Redirections one command may follow before the load fails (a map that never settles).
    static let maxRedirections = 16

    /// A command kept until it is acknowledged (and, for rows, confirmed by a replica).
    struct Command {
        /// The command's RESP bytes (a slice of its batch, shared, not copied).
        var bytes: ArraySlice<UInt8>
        /// The slot of its key; nil for a command sent to `node` (SCAN, WAIT, CONFIG GET).
        let slot: Int?
        let node: NodeAddress?
        /// After `ASK`: send `ASKING` then the command to this node, once.
        var askTo: NodeAddress? = nil
        let rows: Int
        let origin: String
        /// The id of the single command (`call`) waiting for this reply; nil for batch rows.
        let single: Int?
        /// New fields its HSET reported (counted in the summary).
        var newFields = 0
        var redirections = 0
    }

    enum Entry {
        case command(Command)
        case asking
        case wait
    }

    /// One master (or any node kvload sent a command to) and its connection.
    final class Node {
        let address: NodeAddress
        let token: Int
        var connection: RedisConnection?
        var runID: String?
        /// Sent and awaiting replies, in order.
        var queue: ArraySlice<Entry> = []
        /// Commands routed to it and not yet handed to its connection (one append per batch).
        var outgoing: [UInt8] = []
        /// Row commands it acknowledged that no replica is known to have yet.
        var unreplicated: [Command] = []
        var rowsSinceWait = 0
        /// Rows it acknowledged that a replica confirmed (or that it holds alone): lost if it restarts.
        var confirmedRows = 0
        /// False once a `WAIT 1` timed out: it has no replica keeping up, so rows it acknowledges are final.
        var waits = true
        var lastReply = ContinuousClock.now
        /// Set while it is unreachable, so that the loss is reported once.
        var down = false

        init(address: NodeAddress, token: Int) {
            self.address = address
            self.token = token
        }

        var isIdle: Bool { queue.isEmpty }

        /// The oldest entry (the queue must not be empty); an emptied queue lets its storage go.
        func popEntry() -> Entry {
            let entry = queue.removeFirst()
            if queue.isEmpty { queue = [] }
            return entry
        }
    }

    init(settings: RedisSettings, options: LoadOptions, tally: LoadTally, countsNewKeys: Bool) throws(LoadFailure) {
        self.settings = settings
        self.options = options
        self.tally = tally
        self.countsNewKeys = countsNewKeys
        seeds = Self.seedAddresses(settings)
        do {
            poll = try EventPoll(capacity: 64)
        } catch {
            throw LoadFailure(.software, "kvload: \(error)")
        }
    }

    /// `nodes`, or `host:port` when it is empty.
    static func seedAddresses(_ settings: RedisSettings) -> [NodeAddress] {
        if settings.nodes.isEmpty { return [NodeAddress(host: settings.host, port: settings.port)] }
        return settings.nodes
    }

    var isCluster: Bool { true }

    func note(_ message: String) { tally.progress.note(message) }

    var confirmedLine: String {
        let held = nodeList.reduce(0) { $0 + $1.unreplicated.reduce(0) { $0 + $1.rows } }
        let unconfirmed = held > 0 ? " (\(held) of them not yet confirmed by a replica)" : ""
        return tally.confirmedLine(inFlightRows: inFlightRows) + unconfirmed
    }

    func close() {
        for node in nodeList {
            node.connection?.close()
            node.connection = nil
        }
    }

    // MARK: The slot map

    func connectFirstTime() throws(LoadFailure) {
        var problems: [String] = []
        for seed in seeds {
            let reply: RedisReply
            do {
                reply = try Self.blockingCall(RedisCommand(["CLUSTER", "SLOTS"]), at: seed, settings: settings)
            } catch {
                if error.kind == .handshake { throw LoadFailure(.unavailable, "kvload: Redis refused the connection set-up: \(error.message)") }
                problems.append("\(seed): \(error.message)")
                continue
            }
            if case .error(let message) = reply {
                throw LoadFailure(.unavailable, "kvload: \(seed) is no Redis Cluster node (CLUSTER SLOTS: \(message)); without --cluster kvload loads one Redis")
            }
            do {
                map = try ClusterSlotMap(clusterSlots: reply, answeredBy: seed)
            } catch {
                problems.append("\(seed): \(error.description)")
                continue
            }
            lastRefresh = ContinuousClock.now
            let masters = map.shards.map { "\($0.master) (\($0.replicas.count) replica\($0.replicas.count == 1 ? "" : "s"))" }
            note("kvload: Redis Cluster: \(map.shards.count) masters, \(map.coveredSlots) of \(ClusterSlot.count) slots covered: \(masters.joined(separator: ", "))")
            return
        }
        throw LoadFailure(.unavailable, "kvload: no Redis Cluster node answered CLUSTER SLOTS: \(problems.joined(separator: "; "))")
    }

    /// Asks the known masters, then the seeds, for the slot map; keeps the first one that answers.
    private func refreshMap() {
        refreshWanted = false
        lastRefresh = ContinuousClock.now
        var candidates: [NodeAddress] = []
        for address in nodeList.filter({ $0.connection != nil }).map(\.address) + map.shards.map(\.master) + seeds
        where !candidates.contains(address) {
            candidates.append(address)
        }
        for address in candidates {
            guard let reply = try? Self.blockingCall(RedisCommand(["CLUSTER", "SLOTS"]), at: address, settings: settings),
                  let fresh = try? ClusterSlotMap(clusterSlots: reply, answeredBy: address), fresh.coveredSlots > 0 else { continue }
            if fresh.shards.map(\.master) != map.shards.map(\.master) {
                note("kvload: the cluster's masters are now \(fresh.shards.map(\.master.description).joined(separator: ", ")) (\(fresh.coveredSlots) slots covered)")
            }
            map = fresh
            return
        }
    }

    /// One command on a connection of its own (the slot map), closed afterwards.
    static func blockingCall(_ command: RedisCommand, at address: NodeAddress, settings: RedisSettings) throws(RedisError) -> RedisReply {
        let connection = try openRedisConnection(settings.pointing(at: address))
        defer { connection.close() }
        connection.append(command)
        return try awaitRedisReply(on: connection, timeoutMs: settings.commandTimeoutMs)
    }

    // MARK: Routing

    private func node(for address: NodeAddress) -> Node {
        if let known = nodes[address] { return known }
        let fresh = Node(address: address, token: nodeList.count)
        nodes[address] = fresh
        nodeList.append(fresh)
        return fresh
    }

    /// Connects `node` (INFO server gives its run id: a new one means it restarted).
    private func connect(_ node: Node) throws(RedisError) {
        let connection = try openRedisConnection(settings.pointing(at: node.address))
        connection.append(RedisCommand(["INFO", "server"]))
        let info: RedisReply
        do {
            info = try awaitRedisReply(on: connection, timeoutMs: settings.commandTimeoutMs)
        } catch {
            connection.close()
            throw error
        }
        if case .error(let message) = info {
            connection.close()
            throw RedisError(.handshake, "INFO refused by \(node.address): \(message)")
        }
        // A reply without a run id is no Redis: a connect to a port nobody listens on can meet
        // itself (TCP simultaneous open) and would echo every command back as its "reply".
        guard case .bulk(let text) = info, let runID = RedisInfo.value(of: "run_id", in: text) else {
            connection.close()
            throw RedisError(.io, "\(node.address) answered INFO server without a run id")
        }
        if let previous = node.runID, previous != runID, node.confirmedRows > 0 {
            // It restarted: what it held is gone, and a replica that resynchronised from it too.
            possiblyLostRows += node.confirmedRows
            restartedMasters.append(node.address.description)
            note("kvload: cluster node \(node.address) restarted (new run id): \(node.confirmedRows) rows it had acknowledged may be lost")
            node.confirmedRows = 0
        }
        node.runID = runID
        node.connection = connection
        node.lastReply = ContinuousClock.now
        poll.add(connection.fileDescriptor, token: node.token, readable: true, writable: true)
        if node.down {
            node.down = false
            reconnects += 1
            note("kvload: reconnected to cluster node \(node.address)")
        }
    }

    /// Sends `command` to the node its slot (or `askTo`, or its fixed node) names, connecting if need be.
    private func route(_ original: Command) {
        var command = original
        let node: Node
        if let ask = command.askTo {
            node = self.node(for: ask)
        } else if let fixed = command.node {
            node = self.node(for: fixed)
        } else if let slot = command.slot, let shard = map.shard(forSlot: slot) {
            if shard < shardNodes.count, let known = shardNodes[shard] {
                node = known
            } else {
                node = self.node(for: map.shards[shard].master)
                if shardNodes.count < map.shards.count { shardNodes += [Node?](repeating: nil, count: map.shards.count - shardNodes.count) }
                shardNodes[shard] = node
            }
        } else {
            // No node serves the slot (yet): ask again for the map after a pause.
            refreshWanted = true
            park(command)
            return
        }
        if node.connection == nil {
            do {
                try connect(node)
            } catch {
                nodeFailed(node, error)
                park(command)
                return
            }
        }
        guard node.connection != nil else { return park(command) }
        if node.isIdle { node.lastReply = ContinuousClock.now }
        if command.askTo != nil {
            node.outgoing += Self.asking
            node.queue.append(.asking)
        }
        node.outgoing += command.bytes
        command.askTo = nil
        node.queue.append(.command(command))
        if command.single == nil && node.waits {
            node.rowsSinceWait += command.rows
            if node.rowsSinceWait >= waitEveryRows {
                node.outgoing += Self.waitForReplica
                node.queue.append(.wait)
                node.rowsSinceWait = 0
            }
        }
    }

    private static let asking = RedisCommand(["ASKING"]).encoded
    private static let waitForReplica = RedisCommand(["WAIT", "1", String(replicaWaitMs)]).encoded

    /// Hands what was routed to each node to its connection.
    private func pushOutgoing() {
        for node in nodeList where !node.outgoing.isEmpty {
            node.connection?.appendEncoded(node.outgoing)
            node.outgoing.removeAll(keepingCapacity: true)
        }
    }

    /// Rows between two `WAIT 1` on a master: four times what the pipeline holds (a WAIT holds up
    /// the commands behind it until the replica has caught up; rarer ones keep more rows for a resend).
    private var waitEveryRows: Int { max(1, options.batchRows * options.pipeline * Self.waitSpacing) }
    static let waitSpacing = 1

    private func park(_ original: Command) {
        var command = original
        command.askTo = nil
        parked.append((command, ContinuousClock.now + .milliseconds(pauseMs)))
    }

    /// After a connection broke (or could not be made): every command it owed a reply is sent
    /// again, and so is every row command it acknowledged that no replica confirmed.
    private func nodeFailed(_ node: Node, _ error: RedisError) {
        if error.kind == .handshake {
            failure = failure ?? LoadFailure(.unavailable, "kvload: \(error.message)")
        }
        let wasUp = node.connection != nil
        node.connection?.close()
        node.connection = nil
        node.outgoing.removeAll()
        var resend: [Command] = []
        for command in node.unreplicated {
            var again = command
            tally.summary.rowsWritten -= command.rows
            tally.summary.newKeys -= command.newFields
            inFlightRows += command.rows
            again.newFields = 0
            resend.append(again)
        }
        node.unreplicated = []
        node.rowsSinceWait = 0
        while !node.isIdle {
            guard case .command(let command) = node.popEntry() else { continue }
            if command.node != nil, let id = command.single {
                // A command for this node alone (SCAN, WAIT): its caller decides what to do.
                singleReplies[id] = .error("CONNECTION lost the connection to \(node.address): \(error.message)")
            } else {
                resend.append(command)
            }
        }
        if wasUp || !node.down {
            note("kvload: lost cluster node \(node.address) (\(error.message)); resending its \(resend.count) unconfirmed commands where the slot map says, for up to \(Int(options.retrySeconds)) s")
        }
        node.down = true
        for command in resend { park(command) }
        refreshWanted = true
        lastRefresh = nil
    }

    // MARK: Replies

    /// Handles the reply to `node`'s oldest entry.
    private func accept(_ reply: RedisReply, from node: Node) {
        guard !node.isIdle else {
            failure = failure ?? LoadFailure(.protocolError, "kvload: cluster node \(node.address) sent a reply nobody asked for")
            return
        }
        node.lastReply = ContinuousClock.now
        switch node.popEntry() {
        case .asking:
            return
        case .wait:
            if case .integer(let replicas) = reply, replicas >= 1 {
                node.confirmedRows += node.unreplicated.reduce(0) { $0 + $1.rows }
                node.unreplicated.removeAll()
            } else if node.waits {
                note("kvload: master \(node.address) has no replica that confirmed its writes within \(Self.replicaWaitMs) ms (WAIT 1): its rows are no longer kept for a resend")
                node.waits = false
                node.confirmedRows += node.unreplicated.reduce(0) { $0 + $1.rows }
                node.unreplicated.removeAll()
            }
        case .command(var command):
            if case .error(let message) = reply {
                handleError(message, command: command, node: node)
                return
            }
            lastAck = ContinuousClock.now
            pauseMs = Self.firstPauseMs
            if let id = command.single {
                singleReplies[id] = reply
                return
            }
            switch reply {
            case .status, .integer: break
            default:
                failure = failure ?? LoadFailure(.protocolError, "kvload: cluster node \(node.address) answered the batch starting at \(command.origin) with \(reply), not a write's reply\n" + confirmedLine)
                return
            }
            inFlightRows -= command.rows
            tally.summary.rowsWritten += command.rows
            if countsNewKeys, case .integer(let count) = reply {
                command.newFields = Int(count)
                tally.summary.newKeys += Int(count)
            }
            if node.waits {
                node.unreplicated.append(command)
            } else {
                node.confirmedRows += command.rows
            }
            tally.showWritten()
        }
    }

    private func handleError(_ message: String, command original: Command, node: Node) {
        var command = original
        if let redirect = ClusterRedirect(errorText: message) {
            command.redirections += 1
            if command.redirections > Self.maxRedirections {
                failure = failure ?? LoadFailure(.protocolError, "kvload: more than \(Self.maxRedirections) redirections for one command (last: \(message))\n" + confirmedLine)
                return
            }
            switch redirect.kind {
            case .moved:
                moved += 1
                map.move(slot: redirect.slot, to: redirect.node)
                refreshWanted = true
            case .ask:
                asked += 1
                command.askTo = redirect.node
            }
            route(command)
            return
        }
        let code = message.prefix { $0 != " " }
        if code == "TRYAGAIN" || code == "CLUSTERDOWN" || RedisReply.isTemporaryRefusal(message) {
            if code == "CLUSTERDOWN" { refreshWanted = true }
            pauseMs = min(pauseMs * 2, Self.longestPauseMs)
            park(command)
            return
        }
        if let id = command.single {
            singleReplies[id] = .error(message)
            return
        }
        failure = failure ?? LoadFailure(.protocolError, "kvload: Redis (cluster node \(node.address)) refused the batch starting at \(command.origin): \(message)\n" + confirmedLine)
    }

    // MARK: The pump

    private var hasOutstanding: Bool { !parked.isEmpty || nodeList.contains { !$0.isIdle } }

    /// Called before new work: the retry window counts from here when nothing was outstanding.
    private func markBusy() {
        if !hasOutstanding { lastAck = ContinuousClock.now }
    }

    /// One turn: map refresh, due resends, writes, one wait for readiness, replies, deadlines.
    private func pumpOnce() throws(LoadFailure) {
        try LoadFailure.checkStopSignal(options)
        let now = ContinuousClock.now
        if refreshWanted, lastRefresh.map({ now - $0 >= .milliseconds(100) }) ?? true { refreshMap() }
        if parked.contains(where: { $0.due <= now }) {
            let due = parked.filter { $0.due <= now }
            parked.removeAll { $0.due <= now }
            for entry in due { route(entry.command) }
        }
        pushOutgoing()
        for node in nodeList {
            guard let connection = node.connection else { continue }
            do {
                if connection.wantsWrite { try connection.flush() }
                if let connection = node.connection {
                    poll.modify(connection.fileDescriptor, token: node.token, readable: true, writable: connection.wantsWrite)
                }
            } catch {
                nodeFailed(node, error)
            }
        }
        let ready = poll.wait(timeoutMilliseconds: parked.isEmpty ? 50 : 10)
        for index in 0..<ready {
            let event = poll.event(at: index)
            guard event.token < nodeList.count else { continue }
            let node = nodeList[event.token]
            guard let connection = node.connection else { continue }
            do {
                if event.writable { try connection.flush() }
                if event.readable || event.failed {
                    try connection.read()
                    while node.connection === connection, let reply = try connection.nextReply() {
                        accept(reply, from: node)
                    }
                }
            } catch {
                if node.connection === connection { nodeFailed(node, error) }
            }
        }
        let later = ContinuousClock.now
        for node in nodeList where node.connection != nil && !node.isIdle
        && later - node.lastReply > .milliseconds(max(options.replyTimeoutMs, Self.replicaWaitMs * 2)) {
            nodeFailed(node, RedisError(.timeout, "no answer for \(options.replyTimeoutMs) ms"))
        }
        if let failure {
            self.failure = nil
            throw failure
        }
        if hasOutstanding && later - lastAck > .milliseconds(Int(options.retrySeconds * 1000)) {
            throw LoadFailure(.temporaryFailure, "kvload: the cluster acknowledged nothing for \(Int(options.retrySeconds)) s (--retry-for): stopped\n" + confirmedLine)
        }
    }

    // MARK: Batches

    func send(_ batch: CommandBatch, origin: String) throws(LoadFailure) {
        markBusy()
        let limit = batch.inFlightLimit(pipeline: options.pipeline) * max(batch.rows, options.batchRows)
        while inFlightRows > 0 && inFlightRows + batch.rows > limit { try pumpOnce() }
        rowsSent += batch.rows
        inFlightRows += batch.rows
        for piece in batch.commands {
            route(Command(bytes: batch.encoded[piece.range], slot: piece.slot, node: nil, rows: piece.rows, origin: origin, single: nil))
        }
        pushOutgoing()
        for node in nodeList {
            guard let connection = node.connection, connection.wantsWrite else { continue }
            do {
                try connection.flush()
            } catch {
                nodeFailed(node, error)
            }
        }
        if let failure {
            self.failure = nil
            throw failure
        }
    }

    func drain() throws(LoadFailure) {
        while hasOutstanding { try pumpOnce() }
    }

    /// Waits until a replica of every master confirms the rows it acknowledged (`WAIT 1`), resending
    /// what a master lost meanwhile; fails when a master restarted after confirming rows, or when the
    /// rows acknowledged differ from the rows sent.
    func confirm() throws(LoadFailure) {
        try drain()
        var rounds = 0
        while let node = nodeList.first(where: { !$0.unreplicated.isEmpty }) {
            rounds += 1
            if rounds > 1000 { break }
            let reply = try callAll([(RedisCommand(["WAIT", "1", String(Self.replicaWaitMs)]), nil)], at: node.address)[0]
            if case .integer(let replicas) = reply, replicas >= 1 {
                node.confirmedRows += node.unreplicated.reduce(0) { $0 + $1.rows }
                node.unreplicated.removeAll()
            } else if case .integer = reply {
                note("kvload: master \(node.address) has no replica that confirmed its last \(node.unreplicated.reduce(0) { $0 + $1.rows }) rows within \(Self.replicaWaitMs) ms (WAIT 1): they are on the master only")
                node.confirmedRows += node.unreplicated.reduce(0) { $0 + $1.rows }
                node.unreplicated.removeAll()
            }
            // A lost connection (an error reply here) has put the node's rows back in the queue.
            try drain()
        }
        if moved + asked + reconnects > 0 {
            note("kvload: cluster: \(moved) MOVED and \(asked) ASK redirections followed, \(reconnects) reconnections")
        }
        if possiblyLostRows > 0 {
            let confirmed = tally.summary.rowsWritten - possiblyLostRows
            throw LoadFailure(.temporaryFailure, "kvload: cluster master \(restartedMasters.joined(separator: ", ")) restarted during the load: \(possiblyLostRows) rows it had acknowledged may be lost; Redis confirmed \(max(0, confirmed)) of \(rowsSent) rows sent; rerun kvload (loads are idempotent)")
        }
        if tally.summary.rowsWritten != rowsSent {
            throw LoadFailure(.temporaryFailure, "kvload: the cluster acknowledged \(tally.summary.rowsWritten) of \(rowsSent) rows sent")
        }
    }

    // MARK: Single commands

    func call(_ command: RedisCommand, key: [UInt8]?) throws(LoadFailure) -> RedisReply {
        try callAll([(command, key)])[0]
    }

    func callAll(_ commands: [(command: RedisCommand, key: [UInt8]?)]) throws(LoadFailure) -> [RedisReply] {
        try callAll(commands, at: nil)
    }

    /// Sends `commands` (to `fixed`, or each to its key's node, or without a key to the first
    /// master) and pumps until every reply is in.
    private func callAll(_ commands: [(command: RedisCommand, key: [UInt8]?)], at fixed: NodeAddress?) throws(LoadFailure) -> [RedisReply] {
        markBusy()
        var ids: [Int] = []
        for (command, key) in commands {
            let id = nextSingle
            nextSingle += 1
            ids.append(id)
            let target = fixed ?? (key == nil ? map.shards.first?.master ?? seeds[0] : nil)
            route(Command(bytes: command.encoded[...], slot: key.map { ClusterSlot.ofBytes($0) }, node: target, rows: 0, origin: "", single: id))
        }
        while ids.contains(where: { singleReplies[$0] == nil }) { try pumpOnce() }
        return ids.map { singleReplies.removeValue(forKey: $0)! }
    }

    func keyGroups(_ keys: [[UInt8]], limit: Int) -> [[[UInt8]]] {
        var bySlot: [Int: [[UInt8]]] = [:]
        var order: [Int] = []
        for key in keys {
            let slot = ClusterSlot.ofBytes(key)
            if bySlot[slot] == nil { order.append(slot) }
            bySlot[slot, default: []].append(key)
        }
        var groups: [[[UInt8]]] = []
        for slot in order {
            let slotKeys = bySlot[slot]!
            for start in stride(from: 0, to: slotKeys.count, by: limit) { groups.append(Array(slotKeys[start..<min(start + limit, slotKeys.count)])) }
        }
        return groups
    }

    func scanEach(matching pattern: String, _ page: ([[UInt8]]) throws(LoadFailure) -> Void) throws(LoadFailure) {
        if map.shards.isEmpty { refreshMap() }
        for master in map.shards.map(\.master) {
            try scanPages(matching: pattern, send: { (command: RedisCommand) throws(LoadFailure) in
                let reply = try callAll([(command, nil)], at: master)[0]
                if case .error(let message) = reply, message.hasPrefix("CONNECTION") {
                    throw LoadFailure(.temporaryFailure, "kvload: SCAN on cluster node \(master): \(message.dropFirst(11))")
                }
                return reply
            }, page)
        }
    }

    func abandonInFlight() throws(LoadFailure) {
        parked.removeAll()
        for node in nodeList {
            guard let connection = node.connection else { continue }
            let outstanding = node.queue.count
            node.queue = []
            node.outgoing.removeAll()
            node.unreplicated.removeAll()
            connection.append(RedisCommand(["PING"]))
            do {
                for _ in 0...outstanding { _ = try awaitRedisReply(on: connection, timeoutMs: max(options.replyTimeoutMs, settings.commandTimeoutMs)) }
            } catch {
                connection.close()
                node.connection = nil
            }
        }
        inFlightRows = 0
    }
}

extension RedisSettings {
    /// These settings aimed at one cluster node (`db` 0, no unix socket).
    func pointing(at address: NodeAddress) -> RedisSettings {
        var copy = self
        copy.host = address.host
        copy.port = address.port
        copy.socket = nil
        copy.db = 0
        return copy
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return Substring(self[first...last])
    }
}
