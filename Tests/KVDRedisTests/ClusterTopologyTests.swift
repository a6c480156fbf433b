import KVDRedis
import Testing

@Suite("Cluster topology")
struct ClusterTopologyTests {
    @Test func addressesIncludingIPv6() {
        #expect(NodeAddress("127.0.0.1:7000") == NodeAddress(host: "127.0.0.1", port: 7000))
        #expect(NodeAddress("::1:7001") == NodeAddress(host: "::1", port: 7001))
        #expect(NodeAddress("[fe80::1]:7002") == NodeAddress(host: "fe80::1", port: 7002))
        #expect(NodeAddress("redis-a.internal:6379")?.host == "redis-a.internal")
        #expect(NodeAddress("::1:7001")?.description == "[::1]:7001")
        for bad in ["", "host", "host:", ":7000", "host:0", "host:65536", "host:x", "a b:7000", "[\u{0339}::1]:7000", "h\u{0}:7000", "héte:7000"] {
            #expect(NodeAddress(bad) == nil, "\(bad)")
        }
        #expect(NodeAddress("[fe80::1%eth0]:7000")?.description == "[fe80::1%eth0]:7000")
    }

    @Test func redirections() {
        let moved = ClusterRedirect(errorText: "MOVED 3999 127.0.0.1:6381")
        #expect(moved?.kind == .moved && moved?.slot == 3999 && moved?.node == NodeAddress(host: "127.0.0.1", port: 6381))
        let ask = ClusterRedirect(errorText: "ASK 16383 ::1:7005")
        #expect(ask?.kind == .ask && ask?.slot == 16383 && ask?.node == NodeAddress(host: "::1", port: 7005))
        for other in ["WRONGTYPE Operation against a key", "MOVED 16384 h:1", "MOVED x h:1", "ASK 1", "CLUSTERDOWN The cluster is down", "TRYAGAIN x"] {
            #expect(ClusterRedirect(errorText: other) == nil, "\(other)")
        }
    }

    func node(_ host: String?, _ port: Int64, _ id: String = "id") -> RedisReply {
        .array([host.map { .bulk(Array($0.utf8)) } ?? .null, .integer(port), .bulk(Array(id.utf8))])
    }

    @Test func slotMapFromClusterSlots() throws {
        let reply = RedisReply.array([
            .array([.integer(0), .integer(5460), node("127.0.0.1", 7000), node("127.0.0.1", 7003)]),
            .array([.integer(5461), .integer(10922), node("?", 7001), node("", 7004)]),
            .array([.integer(10923), .integer(16383), node(nil, 7002)]),
        ])
        let map = try ClusterSlotMap(clusterSlots: reply, answeredBy: NodeAddress(host: "10.0.0.9", port: 7000))
        #expect(map.coversEverySlot)
        #expect(map.shards.count == 3)
        #expect(map.shards[0] == .init(master: NodeAddress(host: "127.0.0.1", port: 7000), replicas: [NodeAddress(host: "127.0.0.1", port: 7003)]))
        // An unknown endpoint ("?", empty, null) is the node that answered.
        #expect(map.shards[1].master == NodeAddress(host: "10.0.0.9", port: 7001))
        #expect(map.shards[1].replicas == [NodeAddress(host: "10.0.0.9", port: 7004)])
        #expect(map.shards[2].master.host == "10.0.0.9")
        #expect(map.shard(forSlot: 0) == 0 && map.shard(forSlot: 5460) == 0 && map.shard(forSlot: 5461) == 1 && map.shard(forSlot: 16383) == 2)
    }

    @Test func partialCoverageAndMoves() throws {
        let reply = RedisReply.array([.array([.integer(0), .integer(99), node("h", 1)])])
        var map = try ClusterSlotMap(clusterSlots: reply, answeredBy: NodeAddress(host: "h", port: 1))
        #expect(!map.coversEverySlot)
        #expect(map.coveredSlots == 100)
        #expect(map.shard(forSlot: 100) == nil)
        map.move(slot: 100, to: NodeAddress(host: "h", port: 2))
        #expect(map.shard(forSlot: 100) == 1)
        map.move(slot: 5, to: NodeAddress(host: "h", port: 2))
        #expect(map.shard(forSlot: 5) == 1 && map.shards.count == 2)
    }

    /// What the near-cache drops when the map changes: slots whose shard (master or replicas) is
    /// not the same, and nothing else.
    @Test func slotsMovedBetweenTwoMaps() throws {
        let answered = NodeAddress(host: "h", port: 1)
        func map(_ ranges: [(Int64, Int64, Int64, [Int64])]) throws -> ClusterSlotMap {
            try ClusterSlotMap(clusterSlots: .array(ranges.map { start, end, master, replicas in
                .array([.integer(start), .integer(end), node("h", master)] + replicas.map { node("h", $0) })
            }), answeredBy: answered)
        }
        let before = try map([(0, 5460, 7000, [7003]), (5461, 10922, 7001, [7004]), (10923, 16383, 7002, [7005])])
        #expect(before.slotsMoved(since: before).isEmpty)
        #expect(before.slotsMoved(since: nil).count == ClusterSlot.count)
        // Slot 100 migrated to the second shard; the third shard failed over (its replica is master now).
        let after = try map([(0, 99, 7000, [7003]), (100, 100, 7001, [7004]), (101, 5460, 7000, [7003]),
                             (5461, 10922, 7001, [7004]), (10923, 16383, 7005, [])])
        let moved = after.slotsMoved(since: before)
        #expect(moved.count == 1 + (16383 - 10923 + 1))
        #expect(moved.contains(100) && moved.contains(10923) && moved.contains(16383))
        #expect(!moved.contains(99) && !moved.contains(101) && !moved.contains(5461) && !moved.contains(10922))
        // A `MOVED` patch moves one slot; a slot no node serves any more counts as moved.
        var patched = before
        patched.move(slot: 42, to: NodeAddress(host: "h", port: 7001))
        #expect(patched.slotsMoved(since: before) == { var set = ClusterSlotSet(); set.insert(42); return set }())
        // A number that is no cluster slot is not in any set (the near-cache may ask about any group).
        var set = ClusterSlotSet()
        set.insert(16383)
        #expect(set.contains(16383) && !set.contains(16384) && !set.contains(65535) && !set.contains(-1))
        let partial = try map([(0, 5460, 7000, [7003])])
        #expect(partial.slotsMoved(since: before).count == 16384 - 5461)
    }

    @Test func malformedRepliesAreProblems() {
        let answered = NodeAddress(host: "h", port: 1)
        for reply in [RedisReply.error("ERR"), .array([.array([.integer(0)])]), .array([.array([.integer(5), .integer(2), node("h", 1)])]),
                      .array([.array([.integer(0), .integer(16384), node("h", 1)])]), .array([.array([.integer(0), .integer(1), .array([.bulk([])])])])] {
            #expect(throws: ClusterSlotMap.Problem.self) { try ClusterSlotMap(clusterSlots: reply, answeredBy: answered) }
        }
    }
}
