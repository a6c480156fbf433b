import KVDDataset
import Testing

@Suite("Dataset descriptor")
struct DatasetDescriptorTests {
    let sample = DatasetDescriptor(generation: "g20261130-1", layout: .buckets, bucketCount: 4096, rows: 1_000_000,
                                   loadedAt: "2026-11-30T16:00:00Z", source: "data.txt")

    func bytes(_ fields: [(name: String, value: String)]) -> [(name: [UInt8], value: [UInt8])] {
        fields.map { (Array($0.name.utf8), Array($0.value.utf8)) }
    }

    @Test func roundTripsThroughItsFields() throws {
        #expect(try DatasetDescriptor(fields: bytes(sample.fields)) == sample)
        var string = sample
        string.layout = .string
        string.bucketCount = 1
        #expect(try DatasetDescriptor(fields: bytes(string.fields)) == string)
    }

    @Test func everyProblemIsNamed() {
        func problem(_ change: (inout [String: String]) -> Void) -> String? {
            var map = Dictionary(uniqueKeysWithValues: sample.fields.map { ($0.name, $0.value) })
            change(&map)
            do { _ = try DatasetDescriptor(fields: bytes(map.map { ($0.key, $0.value) })); return nil } catch { return error.description }
        }
        #expect(problem { $0 = [:] }?.contains("missing") == true)
        #expect(problem { $0["hash"] = "md5" }?.contains("unknown hash function 'md5'") == true)
        #expect(problem { $0["layout"] = "hash" }?.contains("unknown layout 'hash'") == true)
        #expect(problem { $0["buckets"] = "0" }?.contains("'buckets'") == true)
        #expect(problem { $0["format"] = "2" }?.contains("format 2") == true)
        #expect(problem { $0["generation"] = "a b" }?.contains("not a valid name") == true)
        #expect(problem { $0.removeValue(forKey: "rows") }?.contains("no 'rows' field") == true)
    }

    @Test func redisKeysHoldNoUserBytesInTheBucketsLayout() {
        let prefix = sample.keyPrefix(datasetPrefix: Array("kv:".utf8))
        for key in [Array("{tag}x".utf8), [0, 255, 10, 13], [UInt8](repeating: 0x41, count: 10_000), []] {
            var name: [UInt8] = []
            sample.appendRedisKey(for: key, generationPrefix: prefix, to: &name)
            let text = String(decoding: name, as: UTF8.self)
            #expect(text.hasPrefix("kv:g20261130-1:"))
            let bucket = Int(text.dropFirst("kv:g20261130-1:".count))
            #expect(bucket == BucketHash.xxh64.bucket(of: key, count: 4096))
            #expect(name == sample.bucketName(bucket!, generationPrefix: prefix))
        }
    }

    @Test func stringLayoutKeysAreThePrefixedKey() {
        var string = sample
        string.layout = .string
        var name: [UInt8] = []
        string.appendRedisKey(for: [0, 1, 2], generationPrefix: string.keyPrefix(datasetPrefix: []), to: &name)
        #expect(name == Array("g20261130-1:".utf8) + [0, 1, 2])
    }

    @Test func decimalBucketNames() {
        let prefix = [UInt8]()
        #expect(sample.bucketName(0, generationPrefix: prefix) == Array("0".utf8))
        #expect(sample.bucketName(4095, generationPrefix: prefix) == Array("4095".utf8))
        #expect(sample.bucketName(Int.max, generationPrefix: prefix) == Array(String(Int.max).utf8))
    }
}
