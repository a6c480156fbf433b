import KVDRedis
import KVDSettings
import KVDTestSupport
import Testing

/// The pipeline in cluster mode against a real 3-master, 3-replica cluster (one for the suite's
/// one scenario): routing to every master, readiness, ASK during a slot migration and MOVED after
/// it, and reads from replicas.
@Suite("RedisPipeline on a Redis Cluster", .serialized)
struct ClusterPipelineTests {
    static func settings(_ cluster: RedisCluster, seeds: [NodeAddress], readFrom: ReadFrom = .master) -> RedisSettings {
        var settings = RedisSettings.local(port: 1, layout: .string, prefix: "p:")
        settings.cluster = true
        settings.nodes = seeds
        settings.readFrom = readFrom
        return settings
    }

    func expectValues(_ harness: PipelineHarness, _ keys: [String], firstToken: Int, _ comment: String) {
        let before = harness.results.count
        for (offset, key) in keys.enumerated() { harness.lookup(key, token: firstToken + offset) }
        #expect(harness.run { harness.results.count == before + keys.count }, "\(comment)")
        for (offset, key) in keys.enumerated() {
            #expect(harness.result(firstToken + offset) == .reply(.bulk(Array("v-\(key)".utf8))), "\(comment): \(key)")
        }
    }

    func count(_ harness: PipelineHarness, _ event: PipelineEvent) -> Int { harness.events.count { $0 == event } }

    @Test func routesRedirectsAndReadsFromReplicas() throws {
        let cluster = try RedisCluster(masters: 3, replicasPerMaster: 1)
        let spread = (0..<60).map { "k\($0)" }
        let migrating = (0..<20).map { "{mig}m\($0)" }
        try cluster.commands((spread + migrating).map { "SET p:\($0) v-\($0)" })
        let masters = try cluster.masterPorts()
        #expect(Set(try spread.map { try cluster.node(servingKey: "p:\($0)").port }) == Set(masters), "the keys live on every master")

        // One reachable seed and one dead one are enough.
        let seeds = [NodeAddress(host: "127.0.0.1", port: 1), NodeAddress(host: "127.0.0.1", port: cluster.nodes[4].port)]
        let harness = PipelineHarness(Self.settings(cluster, seeds: seeds))
        expectValues(harness, spread, firstToken: 0, "every master")
        guard case .cluster(.topology(let summary))? = harness.events.first(where: { if case .cluster(.topology) = $0 { true } else { false } }) else {
            Issue.record("no topology event: \(harness.events)")
            return
        }
        #expect(summary.masters.count == 3 && summary.replicas.count == 3 && summary.coveredSlots == ClusterSlot.count)
        #expect(Set(summary.masters.map(\.port)) == Set(masters))
        harness.pipeline.ping(token: LookupToken(100), nowMs: Clock.nowMs())
        #expect(harness.run { harness.result(100) != nil })
        #expect(harness.result(100) == .reply(.status("PONG")))

        // A slot migrated under the pipeline: ASK for keys already moved, then MOVED once assigned.
        let source = try cluster.node(servingKey: "p:{mig}m0")
        guard let targetPort = masters.first(where: { $0 != source.port }), let target = cluster.node(port: targetPort) else {
            Issue.record("no second master")
            return
        }
        let slot = ClusterSlot.of(Array("p:{mig}m0".utf8))
        try cluster.migrate(slot: slot, from: source, to: target, halfway: {
            expectValues(harness, migrating, firstToken: 200, "halfway through the migration")
            #expect(count(harness, .cluster(.redirected(.ask))) > 0)
        })
        let movedBefore = count(harness, .cluster(.redirected(.moved)))
        expectValues(harness, migrating, firstToken: 300, "after the migration")
        #expect(count(harness, .cluster(.redirected(.moved))) > movedBefore)
        // The map was patched (and read again): the next lookups go straight to the new master.
        harness.run(forMs: 300)
        let moved = count(harness, .cluster(.redirected(.moved)))
        expectValues(harness, migrating, firstToken: 400, "with the patched map")
        #expect(count(harness, .cluster(.redirected(.moved))) == moved)
        #expect(!harness.results.contains { if case .failed = $0.result { true } else { false } })

        // A reload to a single Redis and back: nothing fails, each lookup goes to the target in force.
        let single = try RedisServer()
        try single.command(["SET", "p:k0", "single"])
        harness.lookup("k1", token: 500)
        harness.pipeline.retarget(.local(port: single.port, layout: .string, prefix: "p:"), nowMs: Clock.nowMs())
        harness.lookup("k0", token: 501)
        #expect(harness.run { harness.result(501) != nil })
        #expect(harness.result(500) == .reply(.bulk(Array("v-k1".utf8))))
        #expect(harness.result(501) == .reply(.bulk(Array("single".utf8))))
        harness.pipeline.retarget(Self.settings(cluster, seeds: seeds), nowMs: Clock.nowMs())
        expectValues(harness, Array(spread.prefix(10)), firstToken: 510, "back on the cluster")

        // read_from = replica: the GETs land on replicas, none on a master.
        let replicaPorts = Set(cluster.nodes.map(\.port)).subtracting(try cluster.masterPorts())
        func gets(_ ports: Set<Int>) throws -> Int { try ports.reduce(0) { $0 + (try cluster.calls(of: "get", on: cluster.node(port: $1)!)) } }
        let mastersBefore = try gets(Set(try cluster.masterPorts()))
        let replicasBefore = try gets(replicaPorts)
        let replicaReader = PipelineHarness(Self.settings(cluster, seeds: seeds, readFrom: .replica))
        expectValues(replicaReader, spread, firstToken: 0, "from replicas")
        #expect(try gets(Set(try cluster.masterPorts())) == mastersBefore)
        let replicaGets = try gets(replicaPorts) - replicasBefore
        #expect(replicaGets == spread.count, "\(replicaReader.events)")
        replicaReader.pipeline.ping(token: LookupToken(100), nowMs: Clock.nowMs())
        #expect(replicaReader.run { replicaReader.result(100) != nil })
        #expect(replicaReader.result(100) == .reply(.status("PONG")))

        // prefer-replica: replicas while they answer; a replica gone, its shard is read from the master.
        let preferring = PipelineHarness(Self.settings(cluster, seeds: seeds, readFrom: .preferReplica))
        expectValues(preferring, spread, firstToken: 0, "prefer-replica")
        #expect(try gets(Set(try cluster.masterPorts())) == mastersBefore)
        #expect(try gets(replicaPorts) - replicasBefore == 2 * spread.count)
        let gonePort = try #require(replicaPorts.first)
        let gone = try #require(cluster.node(port: gonePort))
        gone.kill()
        expectValues(preferring, spread, firstToken: 100, "prefer-replica with a replica killed")
        #expect(try gets(Set(try cluster.masterPorts())) > mastersBefore)
    }

    /// The pipeline writes to a cluster in rounds (`ClusterRouter.flush`): while one node's batch
    /// is answered, the other nodes' new lookups wait — but only for `roundHoldMs`. A node that
    /// answers nothing (stopped here) must not hold the others' lookups until its timeout.
    @Test func aStalledNodeHoldsBackOnlyItsOwnLookups() throws {
        let cluster = try RedisCluster(masters: 3, replicasPerMaster: 0)
        let masters = try cluster.masterPorts()
        var keyOn: [Int: String] = [:]
        for index in 0..<200 where keyOn.count < masters.count {
            let key = "h\(index)"
            let port = try cluster.node(servingKey: "p:\(key)").port
            if keyOn[port] == nil { keyOn[port] = key }
        }
        try cluster.commands(keyOn.values.map { "SET p:\($0) v-\($0)" })
        let stalled = try #require(cluster.node(port: masters[0]))
        let stalledKey = try #require(keyOn[masters[0]])
        let others = masters.dropFirst().compactMap { keyOn[$0] }
        #expect(others.count == 2)

        var settings = Self.settings(cluster, seeds: [NodeAddress(host: "127.0.0.1", port: masters[1])])
        settings.commandTimeoutMs = 8000
        let harness = PipelineHarness(settings)
        // Every link connected first (a link still connecting holds nothing).
        expectValues(harness, Array(keyOn.values), firstToken: 0, "before the pause")

        stalled.pause()
        defer { stalled.resume() }
        let started = Clock.nowMs()
        harness.lookup(stalledKey, token: 10)
        harness.turn(maxWaitMs: 0) // the stalled node's write goes out: a round is in flight
        for (offset, key) in others.enumerated() { harness.lookup(key, token: 11 + offset) }
        let othersAnswered = harness.run(timeoutMs: 1500) { harness.result(11) != nil && harness.result(12) != nil }
        let elapsed = Clock.nowMs() - started
        #expect(othersAnswered, "the other nodes' lookups waited for the stalled node (\(elapsed) ms)")
        #expect(harness.result(10) == nil, "the stalled node answered while stopped")
        for (offset, key) in others.enumerated() {
            #expect(harness.result(11 + offset) == .reply(.bulk(Array("v-\(key)".utf8))))
        }
        stalled.resume()
        #expect(harness.run { harness.result(10) != nil })
        #expect(harness.result(10) == .reply(.bulk(Array("v-\(stalledKey)".utf8))))
    }
}
