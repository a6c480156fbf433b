import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The near-cache on a Redis Cluster: client tracking per node (a subscriber on every node kvd
/// reads from). One real 3-master, 3-replica cluster for the whole suite: writes on every master
/// are seen, cached keys cost the masters no GET, a killed subscriber, a migrated slot and replica
/// reads serve no stale answer.
@Suite("kvd: near-cache on a Redis Cluster", .serialized)
struct KVDClusterCacheTests {
    static let prefix = "c:"

    static func config(_ cluster: RedisCluster, extra: String = "") -> String {
        "[http]\nthreads = 1\n[redis]\ncluster = yes\nnodes = \(cluster.seedList)\nlayout = string\nprefix = \(prefix)\n"
            + "connect_timeout_ms = 2000\ncommand_timeout_ms = 2000\nreconnect_max_ms = 100\n\(extra)[cache]\nenabled = yes\n"
    }

    static func json(_ text: String) -> String { "\"\(text)\"" }

    /// Reads every key until every node kvd reads from tracks (the one worker's gauge is 1), then
    /// twice more: each key is cached.
    static func warm(_ kvd: KVDProcess, _ reader: HTTPConnection, _ values: [String: String]) throws -> Bool {
        var wrong: [String] = []
        let tracking = try waitUntil(timeout: 10, interval: 0.02) {
            for (key, value) in values where try reader.request("GET", "/get/\(key)").text != json(value) { wrong.append(key) }
            return KVDCacheTests.metric(kvd, "kvd_cache_tracking") == 1
        }
        #expect(wrong.isEmpty, "wrong answers while warming: \(wrong.prefix(5))")
        for _ in 0..<2 {
            for (key, value) in values { #expect(try reader.request("GET", "/get/\(key)").text == json(value)) }
        }
        return tracking
    }

    /// Writes `value` to `key` on the node serving it, then asks kvd until it serves it (within 5 s):
    /// before, only `previous`; after, never anything else. Returns the delay in ms (write acknowledged to new value served).
    @discardableResult
    static func writeAndExpectSeen(_ cluster: RedisCluster, _ reader: HTTPConnection, key: String, previous: String, value: String,
                                   _ comment: String) throws -> Double {
        let node = try cluster.node(servingKey: prefix + key)
        #expect(try node.command(["SET", prefix + key, value]) == "OK")
        let written = Date()
        var delayMs: Double?
        while delayMs == nil {
            let body = try reader.request("GET", "/get/\(key)").text
            if body == json(value) {
                delayMs = Date().timeIntervalSince(written) * 1000
            } else {
                #expect(body == json(previous), "\(comment): \(key) answered \(body)")
                if Date().timeIntervalSince(written) > 5 { Issue.record("\(comment): \(key) still old 5 s after the write"); return -1 }
            }
        }
        for _ in 0..<3 { #expect(try reader.request("GET", "/get/\(key)").text == json(value), "\(comment): \(key) old again") }
        return delayMs ?? -1
    }

    /// `rounds` times, each key of `keys` (one per master): checked cached (a hit), written on its
    /// node, served new within 5 s; prints the delays.
    static func writeRounds(_ rounds: Int, _ cluster: RedisCluster, _ kvd: KVDProcess, _ reader: HTTPConnection, keys: [String],
                            values: inout [String: String], _ label: String) throws {
        var delays: [Double] = []
        for round in 1...rounds {
            for key in keys {
                let before = KVDCacheTests.metric(kvd, "kvd_cache_hits_total")
                for _ in 0..<2 { #expect(try reader.request("GET", "/get/\(key)").text == json(values[key]!)) }
                #expect(KVDCacheTests.metric(kvd, "kvd_cache_hits_total") > before, "\(label): \(key) is cached before the write")
                let next = "\(label)-\(round)"
                delays.append(try writeAndExpectSeen(cluster, reader, key: key, previous: values[key]!, value: next, label))
                values[key] = next
            }
        }
        delays.sort()
        print(String(format: "near-cache on a cluster, %@: acknowledged write on a master -> kvd serves it (%d writes): median %.2f ms, max %.2f ms",
                     label, delays.count, delays[delays.count / 2], delays.last ?? 0))
    }

    /// How many GETs the masters ran so far.
    static func masterGets(_ cluster: RedisCluster) throws -> Int {
        try cluster.masterPorts().reduce(0) { $0 + (try cluster.calls(of: "get", on: cluster.node(port: $1)!)) }
    }

    @Test func trackingPerNodeWritesOnEveryMasterAKilledSubscriberAMigratedSlotAndReplicaReads() throws {
        let cluster = try RedisCluster(masters: 3, replicasPerMaster: 1)
        var values: [String: String] = [:]
        for index in 0..<24 { values["k\(index)"] = "v\(index)-0" }
        for index in 0..<4 { values["{mv}k\(index)"] = "m\(index)-0" }
        try cluster.commands(values.map { "SET \(RedisCluster.quoted(Self.prefix + $0.key)) \(RedisCluster.quoted($0.value))" })
        let masters = try cluster.masterPorts()
        let owner = try values.keys.sorted().reduce(into: [String: Int]()) { $0[$1] = try cluster.node(servingKey: Self.prefix + $1).port }
        #expect(Set(owner.values) == Set(masters), "keys on every master")

        let kvd = try KVDProcess(config: Self.config(cluster))
        defer { kvd.process.stop() }
        #expect(kvd.log.contains("per node"), "\(kvd.log)")
        #expect(waitUntil(timeout: 10) { (try? kvd.get("/readyz").status) == 200 })
        let reader = try HTTPConnection(port: kvd.port)
        #expect(try Self.warm(kvd, reader, values), "tracking confirmed on every master")
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_tracking_starts_total") >= 3, "one start per master")

        // Cached keys are answered by kvd alone: hits grow by one per key, the masters run no GET.
        let hits = KVDCacheTests.metric(kvd, "kvd_cache_hits_total")
        let gets = try Self.masterGets(cluster)
        for (key, value) in values { #expect(try reader.request("GET", "/get/\(key)").text == Self.json(value)) }
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_hits_total") == hits + values.count)
        #expect(try Self.masterGets(cluster) == gets)

        // A write on each master is seen (its node's subscriber delivers the invalidation), 5 times per master.
        let keyPerMaster = try masters.map { master in try #require(owner.filter { $0.value == master && !$0.key.hasPrefix("{") }.keys.sorted().first) }
        try Self.writeRounds(5, cluster, kvd, reader, keys: keyPerMaster, values: &values, "reading from the masters")
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_invalidations_total") >= 15)

        // The subscriber on one master killed: tracking there is lost (the cache flushed), so a write
        // made right after is served at once; tracking comes back there and caching resumes.
        let victim = try #require(cluster.node(port: masters[0]))
        let victimKey = try #require(owner.filter { $0.value == masters[0] && !$0.key.hasPrefix("{") }.keys.sorted().last)
        for _ in 0..<3 { #expect(try reader.request("GET", "/get/\(victimKey)").text == Self.json(values[victimKey]!)) }
        let losses = KVDCacheTests.metric(kvd, "kvd_cache_tracking_losses_total")
        #expect(try victim.command(["CLIENT", "KILL", "TYPE", "pubsub"]) == "1")
        #expect(waitUntil(timeout: 5) { KVDCacheTests.metric(kvd, "kvd_cache_tracking_losses_total") > losses })
        // Only what was read on that master left the cache: the other masters' keys are still hits.
        let elsewhere = values.keys.filter { owner[$0] != masters[0] }
        let hitsAfterLoss = KVDCacheTests.metric(kvd, "kvd_cache_hits_total")
        for key in elsewhere { #expect(try reader.request("GET", "/get/\(key)").text == Self.json(values[key]!)) }
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_hits_total") == hitsAfterLoss + elsewhere.count,
                "keys of the masters whose tracking stayed are still cached")
        #expect(try victim.command(["SET", Self.prefix + victimKey, "after-kill"]) == "OK")
        #expect(try reader.request("GET", "/get/\(victimKey)").text == Self.json("after-kill"))
        values[victimKey] = "after-kill"
        #expect(try Self.warm(kvd, reader, values), "tracking back on \(victim.port)")
        try Self.writeAndExpectSeen(cluster, reader, key: victimKey, previous: "after-kill", value: "after-kill-2", "after the subscriber came back")
        values[victimKey] = "after-kill-2"

        // A slot migrated to another master (ASK while half its keys moved, then MOVED): every answer
        // right, and a write on the new owner is seen.
        let moving = values.keys.filter { $0.hasPrefix("{mv}") }.sorted()
        for key in moving { for _ in 0..<3 { #expect(try reader.request("GET", "/get/\(key)").text == Self.json(values[key]!)) } }
        let source = try cluster.node(servingKey: Self.prefix + moving[0])
        let targetPort = try #require(masters.first { $0 != source.port })
        let target = try #require(cluster.node(port: targetPort))
        let slot = try #require(Int(try source.command(["CLUSTER", "KEYSLOT", Self.prefix + moving[0]])))
        let current = values
        func readAll() throws {
            for key in moving {
                let body = try reader.request("GET", "/get/\(key)").text
                #expect(body == Self.json(current[key]!), "\(key) while migrating")
            }
        }
        try cluster.migrate(slot: slot, from: source, to: target, halfway: readAll, beforeAssign: readAll)
        #expect(waitUntil(timeout: 10) { (try? cluster.node(servingKey: Self.prefix + moving[0]).port) == target.port })
        for _ in 0..<3 { try readAll() }
        // Only the moved slot's keys left the cache: every other key is still a hit, no master reads it.
        let unmoved = values.keys.filter { !$0.hasPrefix("{mv}") }
        let hitsAfterMove = KVDCacheTests.metric(kvd, "kvd_cache_hits_total")
        let getsAfterMove = try Self.masterGets(cluster)
        for key in unmoved { #expect(try reader.request("GET", "/get/\(key)").text == Self.json(values[key]!)) }
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_hits_total") == hitsAfterMove + unmoved.count, "keys of other slots still cached")
        #expect(try Self.masterGets(cluster) == getsAfterMove)
        for (index, key) in moving.enumerated() {
            try Self.writeAndExpectSeen(cluster, reader, key: key, previous: values[key]!, value: "moved-\(index)", "after the slot moved")
            values[key] = "moved-\(index)"
        }

        // A key that does not exist, in a slot that holds no key, moved to another master: the old
        // owner has nothing to delete, so it sends no invalidation; a write on the new owner is seen
        // all the same (within 5 s, well before the periodic map refresh of 10 s).
        let absent = "{empty}absent"
        for _ in 0..<3 { #expect(try reader.request("GET", "/get/\(absent)").status == 404) }
        let emptySource = try cluster.node(servingKey: Self.prefix + absent)
        let emptyTargetPort = try #require(masters.first { $0 != emptySource.port })
        let emptyTarget = try #require(cluster.node(port: emptyTargetPort))
        let emptySlot = try #require(Int(try emptySource.command(["CLUSTER", "KEYSLOT", Self.prefix + absent])))
        try cluster.migrate(slot: emptySlot, from: emptySource, to: emptyTarget)
        #expect(waitUntil(timeout: 10) { (try? cluster.node(servingKey: Self.prefix + absent).port) == emptyTarget.port })
        #expect(try emptyTarget.command(["SET", Self.prefix + absent, "now-here"]) == "OK")
        let created = Date()
        #expect(waitUntil(timeout: 5) { (try? reader.request("GET", "/get/\(absent)").text) == Self.json("now-here") },
                "a key created on the slot's new owner is served")
        print("near-cache on a cluster: a key created after its empty slot moved was served after \(Int(Date().timeIntervalSince(created) * 1000)) ms")

        // read_from = replica with the cache on: replicas track the reads made on them (READONLY) and
        // invalidate when replication changes a key; a write on the master is seen through kvd.
        let replicaKVD = try KVDProcess(config: Self.config(cluster, extra: "read_from = replica\n"))
        defer { replicaKVD.process.stop() }
        #expect(waitUntil(timeout: 10) { (try? replicaKVD.get("/readyz").status) == 200 })
        let replicaReader = try HTTPConnection(port: replicaKVD.port)
        #expect(try Self.warm(replicaKVD, replicaReader, values), "tracking confirmed on every replica")
        let replicaHits = KVDCacheTests.metric(replicaKVD, "kvd_cache_hits_total")
        let mastersNow = try cluster.masterPorts()
        for (key, value) in values { #expect(try replicaReader.request("GET", "/get/\(key)").text == Self.json(value)) }
        #expect(KVDCacheTests.metric(replicaKVD, "kvd_cache_hits_total") == replicaHits + values.count)
        let replicaKeys = try mastersNow.map { master in
            try #require(try values.keys.sorted().first { try cluster.node(servingKey: Self.prefix + $0).port == master })
        }
        try Self.writeRounds(3, cluster, replicaKVD, replicaReader, keys: replicaKeys, values: &values, "read_from = replica")
        #expect(KVDCacheTests.metric(replicaKVD, "kvd_cache_invalidations_total") >= 3)

        // Reloads on a cluster: the cache turned off, then on again together with another read_from
        // (the worker switches to a new slot map and new links, tracked afresh): right answers, and a
        // write is seen.
        try KVDProcess.withEphemeralPort(Self.config(cluster).replacingOccurrences(of: "enabled = yes", with: "enabled = no"))
            .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 10) { kvd.log.contains("applied cache.enabled") })
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_tracking") == 0)
        try KVDProcess.withEphemeralPort(Self.config(cluster, extra: "read_from = prefer-replica\n")).write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 10) { kvd.log.contains("redis.read_from") })
        #expect(try Self.warm(kvd, reader, values), "tracking confirmed after the reloads")
        try Self.writeRounds(1, cluster, kvd, reader, keys: replicaKeys, values: &values, "after reloads")
    }
}
