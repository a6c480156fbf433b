import KVDDataset
import Testing

@Suite("Bucket hash")
struct BucketHashTests {
    /// xxHash64 (seed 0) vectors, checked against the reference implementation (Python's xxhash
    /// package): they are part of the stored format (every dataset depends on them) and must never change.
    @Test(arguments: [
        ("", 0xef46_db37_51d8_e999 as UInt64),
        ("a", 0xd24e_c4f1_a98c_6e5b),
        ("abc", 0x44bc_2cf5_ad77_0999),
        ("foobar", 0xa2aa_05ed_9085_aaf9),
        ("2f1e4d4c-8c3a-4b1e-9d2e-0c6b6a1f0e11", 0x95dc_bb8d_f2da_b98c),
    ])
    func xxh64Vectors(key: String, expected: UInt64) {
        #expect(BucketHash.xxh64.hash(Array(key.utf8)) == expected)
        // Any collection of bytes, contiguous or not, hashes the same.
        #expect(BucketHash.xxh64.hash(Array(key.utf8).lazy.map { $0 }) == expected)
    }

    /// Binary bytes, and a 100-byte input that takes the 32-byte stripe loop, the 8-, 4- and 1-byte tails.
    @Test func binaryAndLongInputs() {
        #expect(BucketHash.xxh64.hash([0x00, 0xff]) == 0xe0d9_7d9a_0313_1d7d)
        #expect(BucketHash.xxh64.hash((0..<100).map { UInt8($0) }) == 0x6ac1_e580_3216_6597)
    }

    @Test(arguments: [64, 1000])
    func bucketsStayInRangeAndSpreadEvenly(count: Int) {
        var randomBinary = [Int](repeating: 0, count: count)
        var hexKeys = [Int](repeating: 0, count: count)
        var generator = SystemRandomNumberGenerator()
        let perBucket = 200
        for index in 0..<(count * perBucket) {
            let key = (0..<Int.random(in: 4...40, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            randomBinary[BucketHash.xxh64.bucket(of: key, count: count)] += 1
            // Seed-like keys: lower-case hex digits that differ in a few places.
            hexKeys[BucketHash.xxh64.bucket(of: Array(String(index, radix: 16).utf8), count: count)] += 1
        }
        // 200 expected per bucket (σ ≈ 14); outside ±40% (5.6σ) would mean a broken spread, not chance.
        for counts in [randomBinary, hexKeys] {
            #expect(counts.allSatisfy { (120...280).contains($0) }, "min \(counts.min()!) max \(counts.max()!)")
        }
    }

    @Test func theBucketOfAKeyIsFixed() {
        // Part of the stored format, like the hash vectors: a change here orphans every stored dataset.
        #expect(BucketHash.xxh64.bucket(of: Array("foobar".utf8), count: 4096) == 0xa2a)
        #expect(BucketHash.xxh64.bucket(of: Array("foobar".utf8), count: 1000) == 635)
        #expect(BucketHash.xxh64.bucket(of: [UInt8](), count: 1) == 0)
    }

    @Test func namesAreStable() {
        #expect(BucketHash(rawValue: "xxh64") == .xxh64)
        #expect(BucketHash(rawValue: "fnv1a-64") == nil)
    }
}
