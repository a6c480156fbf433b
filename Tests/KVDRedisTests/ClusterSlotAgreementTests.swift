import KVDRedis
import KVDTestSupport
import Testing

/// The slot function against a live Redis 7.0 cluster's CLUSTER KEYSLOT.
@Suite("Cluster slots agree with Redis", .serialized)
struct ClusterSlotAgreementTests {
    @Test func randomKeysHashToTheSlotRedisNames() throws {
        let cluster = try RedisCluster(masters: 3, replicasPerMaster: 0)
        let node = cluster.nodes[0]
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789-_{}:.".utf8)
        var keys: [[UInt8]] = ["123456789", "{user1000}.following", "foo{}{bar}", "foo{{bar}}zap", "{", "}"].map { Array($0.utf8) }
        for _ in 0..<60 {
            keys.append((0..<Int.random(in: 1...24, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
        }
        for key in keys {
            let text = String(decoding: key, as: UTF8.self)
            #expect(try node.command(["CLUSTER", "KEYSLOT", text]) == String(ClusterSlot.of(key)), "\(text)")
        }
        // And the map: every slot covered, three masters.
        #expect(try cluster.masterPorts().count == 3)
    }
}
