import KVDConfig
import KVDDataset
import KVDRedis
import Testing
@testable import KVLoad

/// Slotted batches (a Redis Cluster): each command with its key's slot, keys of one command in one slot.
@Suite struct ClusterBatchTests {
    @Test func stringRowsAreOneSETEachWithTheirKeysSlot() {
        var batch = CommandBatch(mode: .stringsEach(prefix: "p:"), slotted: true)
        let keys = (0..<50).map { "key-\($0)" } + ["{user1}.a", "{user1}.b"]
        for key in keys { batch.add(key: Array(key.utf8), value: Array("v-\(key)".utf8)) }
        batch.seal()
        #expect(batch.expectedReplies == keys.count)
        #expect(batch.commands.count == keys.count)
        let decoded = BucketWindowTests.commands(batch.encoded)
        #expect(decoded.count == keys.count)
        for (index, key) in keys.enumerated() {
            let command = batch.commands[index]
            #expect(command.rows == 1)
            #expect(command.slot == ClusterSlot.of(Array(("p:" + key).utf8)))
            #expect(BucketWindowTests.commands(Array(batch.encoded[command.range])) == [[Array("SET".utf8), Array(("p:" + key).utf8), Array("v-\(key)".utf8)]])
        }
        // A hash tag spanning the prefix keeps both keys in one slot.
        #expect(batch.commands[50].slot == batch.commands[51].slot)
    }

    @Test func bucketWindowsAreOneHSETPerBucketEachWithItsSlot() {
        let placement = BucketPlacement(
            descriptor: DatasetDescriptor(generation: "g1", layout: .buckets, bucketCount: 40, rows: 0, loadedAt: "", source: ""),
            datasetPrefix: Array("kv:".utf8))
        var batch = CommandBatch(mode: .buckets(placement), slotted: true)
        for index in 0..<500 { batch.add(key: Array("k\(index)".utf8), value: Array("v\(index)".utf8)) }
        batch.seal()
        #expect(batch.commands.count == batch.expectedReplies)
        #expect(batch.commands.reduce(0) { $0 + $1.rows } == 500)
        #expect(batch.commands.last?.range.upperBound == batch.encoded.count)
        for command in batch.commands {
            let decoded = BucketWindowTests.commands(Array(batch.encoded[command.range]))
            #expect(decoded.count == 1)
            #expect(decoded[0][0] == Array("HSET".utf8))
            #expect(ClusterSlot.of(decoded[0][1]) == command.slot)
            #expect(decoded[0].count == 2 + 2 * command.rows)
        }
    }

    @Test func aHashBatchIsOneCommandInTheHashsSlot() {
        var batch = CommandBatch(mode: .hash(name: "data"), slotted: true)
        batch.add(key: Array("a".utf8), value: Array("1".utf8))
        batch.add(key: Array("b".utf8), value: Array("2".utf8))
        batch.seal()
        #expect(batch.commands == [SlottedCommand(range: 0..<batch.encoded.count, slot: ClusterSlot.of(Array("data".utf8)), rows: 2)])
    }

    @Test func unslottedBatchesKeepNoCommandList() {
        var batch = CommandBatch(mode: .stringsEach(prefix: ""))
        batch.add(key: Array("a".utf8), value: Array("1".utf8))
        batch.seal()
        #expect(batch.commands.isEmpty)
    }

    @Test func keyGroupsKeepOneSlotAndTheLimit() throws {
        var settings = RedisSettings()
        settings.cluster = true
        let connection = try ClusterLoadConnection(settings: settings, options: LoadOptions(), tally: LoadTally(progress: ProgressReporter(style: .off)), countsNewKeys: false)
        let keys = (0..<300).map { Array("k\($0)".utf8) } + (0..<7).map { Array("{t}\($0)".utf8) }
        let groups = connection.keyGroups(keys, limit: 3)
        #expect(groups.allSatisfy { $0.count <= 3 && Set($0.map { ClusterSlot.of($0) }).count == 1 })
        #expect(groups.flatMap { $0 }.count == keys.count)
        #expect(groups.filter { $0.first.map { ClusterSlot.of($0) } == ClusterSlot.of(Array("t".utf8)) }.map(\.count) == [3, 3, 1])
    }

    /// The seeds are `nodes` (parsed by `NodeAddress`, tested in KVDRedisTests), or host and port when none are set.
    @Test func seedsAreTheNodesOrElseHostAndPort() throws {
        var settings = RedisSettings()
        settings.nodes = [NodeAddress("127.0.0.1:7000")!, NodeAddress("[::1]:7001")!]
        #expect(ClusterLoadConnection.seedAddresses(settings) == [
            NodeAddress(host: "127.0.0.1", port: 7000), NodeAddress(host: "::1", port: 7001),
        ])
        settings.nodes = []
        settings.host = "10.0.0.5"
        settings.port = 6380
        #expect(ClusterLoadConnection.seedAddresses(settings) == [NodeAddress(host: "10.0.0.5", port: 6380)])
    }
}
