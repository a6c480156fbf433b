import Foundation
import KVDTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Reads keys through kvd over and over on its own thread (one keep-alive connection) and checks
/// every answer: the value, or a failure recorded with its key and status.
final class VerifyingReader: @unchecked Sendable {
    struct Tally {
        var passes = 0
        var answers = 0
        var mismatches: [String] = []
        var failures: [(key: String, status: Int)] = []
    }

    private let port: Int
    private let pairs: [(String, String)]
    private let state = Mutex(Tally())
    private let stopFlag = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)

    init(port: Int, pairs: [(String, String)]) {
        self.port = port
        self.pairs = pairs
        let thread = Thread { [self] in
            run()
            done.signal()
        }
        thread.start()
    }

    var tally: Tally { state.withLock { $0 } }

    /// Waits until `more` further full passes over the keys are done (false after `timeout` s).
    @discardableResult
    func waitPasses(_ more: Int, timeout: Double = 30) -> Bool {
        let target = tally.passes + more
        return waitUntil(timeout: timeout) { tally.passes >= target }
    }

    func stop() -> Tally {
        stopFlag.store(true, ordering: .relaxed)
        done.wait()
        return tally
    }

    private func run() {
        var connection: HTTPConnection?
        while !stopFlag.load(ordering: .relaxed) {
            for (key, value) in pairs {
                if stopFlag.load(ordering: .relaxed) { return }
                do {
                    if connection == nil { connection = try HTTPConnection(port: port) }
                    let response = try connection!.request("GET", "/get/\(key.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
                    state.withLock { tally in
                        tally.answers += 1
                        if response.status != 200 {
                            tally.failures.append((key, response.status))
                        } else if response.text != "\"\(value)\"" {
                            tally.mismatches.append(key)
                        }
                    }
                } catch {
                    connection = nil
                    state.withLock { $0.failures.append((key, -1)) }
                }
            }
            state.withLock { $0.passes += 1 }
        }
    }
}

/// kvd as a Redis Cluster client, end to end: real 3-master, 3-replica clusters, data on every
/// master, a slot migrated and a failover under a verifying reader, a master killed, replica reads.
@Suite("kvd on a Redis Cluster", .serialized)
struct KVDClusterTests {
    let kvload: String

    init() throws {
        kvload = try Binaries.path("kvload")
    }

    static func pairs(_ count: Int, tag: String = "", seed: Int) -> [(String, String)] {
        (0..<count).map { ("\(tag)key\($0)", "value-\($0)-\(seed)-\(String(repeating: "x", count: $0 % 40))") }
    }

    /// Loads `pairs` with kvload into a standalone Redis in `layout`, then copies it into `cluster`.
    func load(_ pairs: [(String, String)], layout: String, prefix: String, into cluster: RedisCluster) throws {
        let staging = try RedisServer()
        let file = try TemporaryDirectory.make(prefix: "kvd-cluster") + "/pairs.txt"
        try pairs.map { "\($0.0) \($0.1)\n" }.joined().write(toFile: file, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(kvload, ["--port", String(staging.port), "--layout", layout, "--prefix", prefix, "--quiet", file], timeout: 120)
        #expect(result.status == 0, "kvload: \(result.stderr)")
        try cluster.copy(from: staging)
    }

    func config(_ cluster: RedisCluster, layout: String, prefix: String, timeoutMs: Int = 2000, extra: String = "") -> String {
        "[http]\nthreads = 2\n[redis]\ncluster = yes\nnodes = \(cluster.seedList)\nlayout = \(layout)\nprefix = \(prefix)\ncommand_timeout_ms = \(timeoutMs)\n\(extra)"
    }

    func expectEveryValue(_ kvd: KVDProcess, _ pairs: [(String, String)], _ comment: String) throws {
        let connection = try HTTPConnection(port: kvd.port)
        var wrong: [String] = []
        for (key, value) in pairs {
            let response = try connection.request("GET", "/get/\(key.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)")
            if response.status != 200 || response.text != "\"\(value)\"" { wrong.append("\(key): \(response.status) \(response.text)") }
        }
        #expect(wrong.isEmpty, "\(comment): \(wrong.prefix(5))")
    }

    /// The sum of a counter over every worker (and every other label), from /metrics.
    func metric(_ kvd: KVDProcess, _ name: String, containing label: String = "") throws -> Int {
        try kvd.get("/metrics").text.split(separator: "\n").filter { $0.hasPrefix(name) && (label.isEmpty || $0.contains(label)) }
            .reduce(0) { $0 + (Int(Double($1.split(separator: " ").last ?? "0") ?? 0)) }
    }

    @Test func dataOnEveryMasterASlotMigratedUnderLoadAndReplicaReads() throws {
        let cluster = try RedisCluster(masters: 3, replicasPerMaster: 1)
        let strings = Self.pairs(600, seed: 1) + Self.pairs(60, tag: "{mig}", seed: 1)
        let buckets = Self.pairs(600, seed: 2)
        try load(strings, layout: "string", prefix: "s:", into: cluster)
        try load(buckets, layout: "buckets", prefix: "b:", into: cluster)
        let masters = try cluster.masterPorts()
        #expect(Set(try strings.prefix(30).map { try cluster.node(servingKey: "s:\($0.0)").port }) == Set(masters))

        let kvd = try KVDProcess(config: config(cluster, layout: "string", prefix: "s:"))
        defer { kvd.process.stop() }
        #expect(waitUntil(timeout: 10) { (try? kvd.get("/readyz").status) == 200 })
        // The workers log the topology when their map arrives; the test reads kvd's stderr as it comes.
        #expect(waitUntil(timeout: 5) { kvd.log.contains("Redis Cluster topology: 3 masters") }, "\(kvd.log)")
        #expect(waitUntil(timeout: 5) { kvd.log.contains("all 16384 slots covered") })
        try expectEveryValue(kvd, strings, "string layout")

        let bucketsKVD = try KVDProcess(config: config(cluster, layout: "buckets", prefix: "b:"))
        defer { bucketsKVD.process.stop() }
        #expect(waitUntil(timeout: 10) { (try? bucketsKVD.get("/readyz").status) == 200 })
        try expectEveryValue(bucketsKVD, buckets, "buckets layout")

        // A slot moved to another master while a reader checks every answer: ASK for the keys
        // already moved, MOVED once the slot is assigned; not one error.
        let reader = VerifyingReader(port: kvd.port, pairs: strings.suffix(60) + strings.prefix(60))
        #expect(reader.waitPasses(2))
        let source = try cluster.node(servingKey: "s:{mig}key0")
        let targetPort = try #require(masters.first { $0 != source.port })
        let target = try #require(cluster.node(port: targetPort))
        try cluster.migrate(slot: try Int(source.command(["CLUSTER", "KEYSLOT", "s:{mig}key0"]))!, from: source, to: target,
                            halfway: { #expect(reader.waitPasses(3)) }, beforeAssign: { #expect(reader.waitPasses(2)) })
        #expect(reader.waitPasses(5))
        let tally = reader.stop()
        #expect(tally.failures.isEmpty && tally.mismatches.isEmpty, "\(tally.failures.prefix(5)) \(tally.mismatches.prefix(5))")
        #expect(try metric(kvd, "kvd_redis_cluster_redirects_total", containing: "kind=\"ask\"") > 0)
        #expect(try metric(kvd, "kvd_redis_cluster_redirects_total", containing: "kind=\"moved\"") > 0)
        let metricsText = try kvd.get("/metrics").text
        #expect(try metric(kvd, "kvd_redis_cluster_map_refreshes_total") >= 2, "\(metricsText)")

        // read_from = replica: the GETs land on replicas, none on a master.
        let replicaPorts = Set(cluster.nodes.map(\.port)).subtracting(try cluster.masterPorts())
        func gets(_ ports: Set<Int>) throws -> Int { try ports.reduce(0) { $0 + (try cluster.calls(of: "get", on: cluster.node(port: $1)!)) } }
        let mastersBefore = try gets(Set(try cluster.masterPorts()))
        let replicasBefore = try gets(replicaPorts)
        let replicaKVD = try KVDProcess(config: config(cluster, layout: "string", prefix: "s:", extra: "read_from = replica\n"))
        defer { replicaKVD.process.stop() }
        #expect(waitUntil(timeout: 10) { (try? replicaKVD.get("/readyz").status) == 200 })
        try expectEveryValue(replicaKVD, strings, "read_from = replica")
        #expect(try gets(Set(try cluster.masterPorts())) == mastersBefore)
        #expect(try gets(replicaPorts) - replicasBefore >= strings.count)

        // layout = hash works, and says at start that one master takes every read.
        try cluster.commands(["HSET data one 1", "HSET data two 2"])
        let hashKVD = try KVDProcess(config: config(cluster, layout: "hash", prefix: ""))
        defer { hashKVD.process.stop() }
        // Logged just after the "listening" line KVDProcess waits for: it may not have been read yet.
        #expect(waitUntil(timeout: 5) { hashKVD.log.contains("every read goes to one master") }, "\(hashKVD.log)")
        #expect(waitUntil(timeout: 10) { (try? hashKVD.get("/get/two").text) == "\"2\"" })
    }

    @Test func failoverAndAKilledMasterUnderLoad() throws {
        let cluster = try RedisCluster(masters: 3, replicasPerMaster: 1)
        let strings = Self.pairs(300, seed: 3)
        try cluster.commands(strings.map { "SET \(RedisCluster.quoted("s:" + $0.0)) \(RedisCluster.quoted($0.1))" })
        let kvd = try KVDProcess(config: config(cluster, layout: "string", prefix: "s:", timeoutMs: 1000))
        defer { kvd.process.stop() }
        #expect(waitUntil(timeout: 10) { (try? kvd.get("/readyz").status) == 200 })
        let reader = VerifyingReader(port: kvd.port, pairs: strings)
        #expect(reader.waitPasses(2))

        // A manual failover (CLUSTER FAILOVER on a replica): no lookup fails.
        let masters = try cluster.masterPorts()
        let replica = try #require(cluster.nodes.first { !masters.contains($0.port) })
        try replica.command(["CLUSTER", "FAILOVER"])
        #expect(waitUntil(timeout: 15) { (try? cluster.masterPorts().contains(replica.port)) == true })
        #expect(cluster.waitUntilHealthy(timeout: 15))
        #expect(reader.waitPasses(3))
        var tally = reader.tally
        #expect(tally.failures.isEmpty && tally.mismatches.isEmpty, "after CLUSTER FAILOVER: \(tally.failures.prefix(5))")
        let descriptors = kvd.ownDescriptorsBesidesClients

        // kill -9 of a master: only its keys fail (503) until its replica takes over, then every key
        // answers within 15 s, kvd unrestarted; its descriptors back to what they were.
        let victimPort = try #require(try cluster.masterPorts().first { $0 != replica.port })
        let victim = try #require(cluster.node(port: victimPort))
        let victimKeys = Set(try strings.map(\.0).filter { try cluster.node(servingKey: "s:\($0)") === victim })
        let failuresBefore = tally.failures.count
        let killedAt = Date()
        victim.kill()
        let recovered = waitUntil(timeout: 15) {
            let before = reader.tally.failures.count
            guard reader.waitPasses(1, timeout: 15) else { return false }
            return reader.tally.failures.count == before
        }
        #expect(recovered, "every key answers within 15 s of the kill")
        #expect(Date().timeIntervalSince(killedAt) < 20)
        tally = reader.tally
        let failed = tally.failures.dropFirst(failuresBefore)
        #expect(!failed.isEmpty, "the killed master's keys failed for a while")
        #expect(failed.allSatisfy { victimKeys.contains($0.key) && $0.status == 503 }, "\(failed.filter { !victimKeys.contains($0.key) || $0.status != 503 }.prefix(5))")
        #expect(tally.mismatches.isEmpty)
        #expect(kvd.process.isRunning)
        #expect(waitUntil(timeout: 5) { kvd.ownDescriptorsBesidesClients <= descriptors }, "descriptors \(kvd.ownDescriptorsBesidesClients), were \(descriptors): \(kvd.descriptorReport)")
        #expect(try metric(kvd, "kvd_redis_node_errors_total", containing: "node=\"127.0.0.1:\(victim.port)\"") > 0)

        // The killed node comes back as a replica; kvd carries on.
        try victim.restart()
        #expect(cluster.waitUntilHealthy(timeout: 30))
        #expect(try victim.command(["ROLE"]).hasPrefix("slave"))
        let failuresAfterRecovery = reader.tally.failures.count
        #expect(reader.waitPasses(2))
        tally = reader.stop()
        #expect(tally.failures.count == failuresAfterRecovery && tally.mismatches.isEmpty)
        #expect(waitUntil(timeout: 5) { (try? kvd.get("/readyz").status) == 200 })
    }

    @Test func aClusterWithADatabaseOtherThanZeroIsAConfigurationError() throws {
        let directory = try TemporaryDirectory.make(prefix: "kvd-cluster-db")
        let kvd = try Binaries.path("kvd")
        for (name, redis) in [("db", "cluster = yes\nnodes = 127.0.0.1:7000\ndb = 1\n"),
                              ("socket", "cluster = yes\nnodes = 127.0.0.1:7000\nsocket = /tmp/redis.sock\n"),
                              ("no-nodes", "cluster = yes\n"),
                              ("read-from", "read_from = replica\n")] {
            let path = directory + "/\(name).conf"
            try "[http]\nport = 0\n[redis]\n\(redis)".write(toFile: path, atomically: true, encoding: .utf8)
            let result = try ChildProcess.run(kvd, ["--config", path], timeout: 20)
            #expect(result.status == 78, "\(name): \(result.stderr)")
            #expect(result.stderr.contains("\(name).conf:"), "\(name): \(result.stderr)")
        }
        // Seeds in any address form (IPv6 with or without brackets) read back as --print-config writes them.
        let path = directory + "/ok.conf"
        try "[redis]\ncluster = yes\nnodes = 127.0.0.1:7000, ::1:7001 , [fe80::2]:7002\nread_from = prefer-replica\n".write(toFile: path, atomically: true, encoding: .utf8)
        let printed = try ChildProcess.run(kvd, ["--config", path, "--print-config"], timeout: 20)
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(printed.stdout.contains("cluster = yes\nnodes = 127.0.0.1:7000, [::1]:7001, [fe80::2]:7002\nread_from = prefer-replica\ncluster_refresh_ms = 10000\n"), "\(printed.stdout)")
    }
}
