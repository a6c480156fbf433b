import KVDSettings

/// `host:port` of a node (defined with the settings, where `[redis] nodes` holds them).
public typealias NodeAddress = KVDSettings.NodeAddress

/// A cluster redirection error: `MOVED <slot> <host:port>` or `ASK <slot> <host:port>`.
public struct ClusterRedirect: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The slot lives on another node for good: update the map, resend there.
        case moved
        /// The slot is migrating: send `ASKING` then the command to that node, once; map unchanged.
        case ask
    }

    public let kind: Kind
    public let slot: Int
    public let node: NodeAddress

    /// Parses an error reply's text; nil when it is no redirection.
    public init?(errorText: String) {
        let parts = errorText.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, let slot = Int(parts[1]), (0..<ClusterSlot.count).contains(slot),
              let node = NodeAddress(parts[2]) else { return nil }
        switch parts[0] {
        case "MOVED": kind = .moved
        case "ASK": kind = .ask
        default: return nil
        }
        self.slot = slot
        self.node = node
    }
}

/// Which node serves each of the 16384 slots, from `CLUSTER SLOTS`.
public struct ClusterSlotMap: Sendable, Equatable {
    /// One shard: its master and replicas, in the order Redis lists them.
    public struct Shard: Sendable, Equatable {
        public var master: NodeAddress
        public var replicas: [NodeAddress]

        public init(master: NodeAddress, replicas: [NodeAddress]) {
            self.master = master
            self.replicas = replicas
        }
    }

    public private(set) var shards: [Shard] = []
    /// Index into `shards` per slot; `unassigned` where no node serves the slot.
    private var owner: [UInt16]
    public static let unassigned = UInt16.max

    /// An empty map: every slot unassigned.
    public init() { owner = [UInt16](repeating: Self.unassigned, count: ClusterSlot.count) }

    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
    }

    /// Reads `CLUSTER SLOTS`: `[[start, end, [host, port, id, …], replica…], …]`. A node whose
    /// host is empty, `?` or null is the node that answered (`answeredBy`'s host), as Redis documents.
    public init(clusterSlots reply: RedisReply, answeredBy: NodeAddress) throws(Problem) {
        self.init()
        guard case .array(let ranges) = reply else { throw Problem(description: "CLUSTER SLOTS did not answer an array") }
        var shardIndex: [NodeAddress: Int] = [:]
        for range in ranges {
            guard case .array(let items) = range, items.count >= 3,
                  case .integer(let start) = items[0], case .integer(let end) = items[1],
                  0 <= start, start <= end, end < ClusterSlot.count else {
                throw Problem(description: "CLUSTER SLOTS answered a malformed slot range")
            }
            let master = try Self.node(items[2], answeredBy: answeredBy)
            let replicas = try items.dropFirst(3).map { item throws(Problem) in try Self.node(item, answeredBy: answeredBy) }
            let index: Int
            if let known = shardIndex[master] {
                index = known
            } else {
                index = shards.count
                shardIndex[master] = index
                shards.append(Shard(master: master, replicas: replicas))
            }
            for slot in Int(start)...Int(end) { owner[slot] = UInt16(index) }
        }
    }

    private static func node(_ item: RedisReply, answeredBy: NodeAddress) throws(Problem) -> NodeAddress {
        guard case .array(let fields) = item, fields.count >= 2, case .integer(let port) = fields[1], (1...65535).contains(port) else {
            throw Problem(description: "CLUSTER SLOTS answered a malformed node entry")
        }
        var host = ""
        if case .bulk(let bytes) = fields[0] { host = String(decoding: bytes, as: UTF8.self) }
        if host.isEmpty || host == "?" { host = answeredBy.host }
        return NodeAddress(host: host, port: Int(port))
    }

    /// The shard serving `slot`, or nil when none does.
    public func shard(forSlot slot: Int) -> Int? {
        let index = owner[slot]
        return index == Self.unassigned ? nil : Int(index)
    }

    /// Whether every slot has a node.
    public var coversEverySlot: Bool { !owner.contains(Self.unassigned) }

    /// Slots served, for log lines.
    public var coveredSlots: Int { owner.reduce(0) { $0 + ($1 == Self.unassigned ? 0 : 1) } }

    /// After `MOVED`: `slot` now lives on `node` (a master, maybe one the map does not know yet).
    public mutating func move(slot: Int, to node: NodeAddress) {
        let index: Int
        if let known = shards.firstIndex(where: { $0.master == node }) {
            index = known
        } else {
            index = shards.count
            shards.append(Shard(master: node, replicas: []))
        }
        owner[slot] = UInt16(index)
    }

    /// The slots whose shard is not the same in `previous` (its master or its replicas, or whether
    /// a node serves it): what the near-cache read there may now be written on a node whose
    /// tracking does not cover it. Every slot when there was no map.
    public func slotsMoved(since previous: ClusterSlotMap?) -> ClusterSlotSet {
        var moved = ClusterSlotSet()
        guard let previous else {
            for slot in 0..<ClusterSlot.count { moved.insert(slot) }
            return moved
        }
        // Shards are compared once per pair of indexes (a map has a few), not once per slot.
        var same = [Int8](repeating: -1, count: previous.shards.count * shards.count)
        for slot in 0..<ClusterSlot.count {
            let before = previous.owner[slot], now = owner[slot]
            if before == Self.unassigned || now == Self.unassigned {
                if before != now { moved.insert(slot) }
                continue
            }
            let pair = Int(before) * shards.count + Int(now)
            if same[pair] < 0 { same[pair] = previous.shards[Int(before)] == shards[Int(now)] ? 1 : 0 }
            if same[pair] == 0 { moved.insert(slot) }
        }
        return moved
    }
}

/// A set of cluster slots (a bit each).
public struct ClusterSlotSet: Sendable, Equatable {
    private var words = [UInt64](repeating: 0, count: ClusterSlot.count / 64)
    public private(set) var count = 0

    public init() {}

    public var isEmpty: Bool { count == 0 }

    public mutating func insert(_ slot: Int) {
        let bit: UInt64 = 1 << UInt64(slot & 63)
        guard words[slot >> 6] & bit == 0 else { return }
        words[slot >> 6] |= bit
        count += 1
    }

    /// Whether `slot` is in the set (false for a number that is no cluster slot).
    public func contains(_ slot: Int) -> Bool {
        guard (0..<ClusterSlot.count).contains(slot) else { return false }
        return words[slot >> 6] & (1 << UInt64(slot & 63)) != 0
    }
}
