import KVDDataset
import Testing
@testable import KVLoad

/// The `buckets` write mode: a window of rows becomes one HSET per bucket.
@Suite struct BucketWindowTests {
    let placement = BucketPlacement(
        descriptor: DatasetDescriptor(generation: "g1", layout: .buckets, bucketCount: 7, rows: 0, loadedAt: "", source: ""),
        datasetPrefix: Array("kv:".utf8))

    /// Splits RESP-encoded commands into their arguments.
    static func commands(_ encoded: [UInt8]) -> [[[UInt8]]] {
        var commands: [[[UInt8]]] = []
        var index = 0
        func number() -> Int {
            var value = 0
            while encoded[index] != 0x0D { value = value * 10 + Int(encoded[index] - 0x30); index += 1 }
            index += 2
            return value
        }
        while index < encoded.count {
            #expect(encoded[index] == UInt8(ascii: "*"))
            index += 1
            var arguments: [[UInt8]] = []
            for _ in 0..<number() {
                #expect(encoded[index] == UInt8(ascii: "$"))
                index += 1
                let length = number()
                arguments.append(Array(encoded[index..<(index + length)]))
                index += length + 2
            }
            commands.append(arguments)
        }
        return commands
    }

    @Test func oneHSETPerBucketInInputOrder() {
        var batch = CommandBatch(mode: .buckets(placement))
        var rows: [([UInt8], [UInt8])] = []
        for index in 0..<200 {
            // Every 10th row repeats an earlier key with a new value: the later one must win.
            let key = index % 10 == 9 ? Array("key-\(index - 5)".utf8) : Array("key-\(index)".utf8)
            rows.append((key, Array("value-\(index)".utf8)))
        }
        rows.append(([0x00, 0xFF, 0x0D, 0x0A], []))   // binary key, empty value
        for (key, value) in rows { batch.add(key: key, value: value) }
        batch.seal()
        let commands = Self.commands(batch.encoded)
        #expect(batch.rows == rows.count)
        #expect(batch.expectedReplies == commands.count)
        #expect(commands.count == Set(rows.map { placement.bucket(of: $0.0) }).count)
        var seenBuckets = Set<[UInt8]>()
        var applied: [[UInt8]: [UInt8]] = [:]
        for command in commands {
            #expect(command[0] == Array("HSET".utf8))
            #expect(seenBuckets.insert(command[1]).inserted)
            let expected = rows.filter { placement.descriptor.bucketName(placement.bucket(of: $0.0), generationPrefix: placement.generationPrefix) == command[1] }
            let pairs = stride(from: 2, to: command.count, by: 2).map { (command[$0], command[$0 + 1]) }
            #expect(pairs.map(\.0) == expected.map(\.0))
            #expect(pairs.map(\.1) == expected.map(\.1))
            for (key, value) in pairs { applied[key] = value }
        }
        var sequential: [[UInt8]: [UInt8]] = [:]
        for (key, value) in rows { sequential[key] = value }
        #expect(applied == sequential)
    }

    @Test func windowIsLargerThanABatchAndBoundsInFlight() {
        var options = LoadOptions()
        options.batchRows = 10
        options.pipeline = 4
        var batch = CommandBatch(mode: .buckets(placement))
        for index in 0..<159 { batch.add(key: Array("k\(index)".utf8), value: []) }
        #expect(!batch.isFull(options))
        batch.add(key: Array("k159".utf8), value: [])
        #expect(batch.isFull(options))
        #expect(batch.inFlightLimit(pipeline: 16) == CommandBatch.bucketWindowsInFlight)
        var hash = CommandBatch(mode: .hash(name: "data"))
        for index in 0..<10 { hash.add(key: Array("k\(index)".utf8), value: []) }
        #expect(hash.isFull(options))
        #expect(hash.inFlightLimit(pipeline: 16) == 16)
        var big = CommandBatch(mode: .buckets(placement))
        big.add(key: [1], value: Array(repeating: 0x61, count: CommandBatch.bucketWindowBytes(options)))
        #expect(big.isFull(options))
    }
}
