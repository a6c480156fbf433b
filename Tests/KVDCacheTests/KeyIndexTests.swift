import Foundation
@testable import KVDCache
import Testing

@Suite("Near-cache key index")
struct KeyIndexTests {
    func entry(_ key: Int, hash: UInt64, position: Int) -> KeyIndex.Bucket {
        let bytes = Array("key-\(key)".utf8)
        return KeyIndex.Bucket(hash: hash, bytes: bytes + [UInt8(position & 0xff)], position: position,
                               keyCount: bytes.count, frequency: 0, missing: false, epoch: 0)
    }

    /// A retired index hands over every bucket it held and starts again empty and small (a flush
    /// writes no big table), then grows back to where it was as it fills up again.
    @Test func retiringHandsOverEveryEntryAndStartsSmall() {
        var index = KeyIndex()
        insert(0..<1_000, into: &index)
        let capacity = index.capacity
        let retired = index.retire()
        #expect(Set(retired.joined().filter { !$0.bytes.isEmpty }.map { Int($0.position) }) == Set(0..<1_000))
        #expect(index.count == 0)
        #expect(index.capacity == 16)
        let hash = UInt64(1) &* 0x9E37_79B9_7F4A_7C15
        #expect(index.find(hash, key: Array("key-0".utf8)) == nil)
        insert(0..<1_000, into: &index)
        #expect(index.capacity == capacity, "grew back to the size it had")
        for k in 0..<1_000 {
            let hash = UInt64(k + 1) &* 0x9E37_79B9_7F4A_7C15
            #expect(index.find(hash, key: Array("key-\(k)".utf8)).map { Int(index[$0].position) } == k)
        }
    }

    private func insert(_ keys: Range<Int>, into index: inout KeyIndex) {
        for k in keys {
            let hash = UInt64(k + 1) &* 0x9E37_79B9_7F4A_7C15
            _ = index.set(entry(k, hash: hash, position: k), hash: hash, key: Array("key-\(k)".utf8))
        }
    }

    private func expectFound(_ keys: Range<Int>, in index: KeyIndex) {
        var lost = 0
        for k in keys {
            let hash = UInt64(k + 1) &* 0x9E37_79B9_7F4A_7C15
            if index.find(hash, key: Array("key-\(k)".utf8)).map({ Int(index[$0].position) }) != k { lost += 1 }
        }
        #expect(lost == 0)
    }

    /// From 3/4 full, an index whose next table is big orders it from `elsewhere`; its growth at
    /// 7/8 takes the table when it was made in time and makes its own when not (the late one is
    /// then freed by its maker); retiring hands a made but unused table back to be freed there.
    @Test func bigTablesAreOrderedAheadAndTakenWhenMade() {
        var index = KeyIndex()
        var orders: [@Sendable () -> Void] = []
        index.elsewhere = { orders.append($0) }
        #expect(index.madeElsewhereFrom == 65_536)
        insert(0..<24_575, into: &index)            // 3/4 of 32,768 buckets less one
        #expect(index.capacity == 32_768)
        #expect(orders.isEmpty, "tables under 65,536 buckets are made here")
        insert(24_575..<24_576, into: &index)
        #expect(orders.count == 1, "at 3/4 full: the 65,536-bucket table is ordered")
        insert(24_576..<28_672, into: &index)
        #expect(orders.count == 1 && index.capacity == 32_768)
        orders[0]()                                 // made before the growth
        insert(28_672..<28_673, into: &index)       // past 7/8: the growth
        #expect(index.capacity == 65_536)
        #expect(index.tablesTaken == 1)
        insert(28_673..<49_152, into: &index)       // 3/4 of 65,536
        #expect(orders.count == 2)
        insert(49_152..<57_345, into: &index)       // the growth comes before the table is made
        #expect(index.capacity == 131_072)
        #expect(index.tablesTaken == 1, "a table not made yet is not waited for")
        orders[1]()                                 // made late: its maker drops it
        expectFound(0..<57_345, in: index)
        insert(57_345..<98_304, into: &index)       // 3/4 of 131,072
        #expect(orders.count == 3)
        orders[2]()
        _ = index.retire()
        #expect(orders.count == 4, "the unused table goes back to be freed elsewhere")
        orders[3]()
        #expect(index.capacity == 16 && index.count == 0)
        insert(0..<30_000, into: &index)            // the index orders again after a retirement
        #expect(orders.count == 5)
        expectFound(0..<30_000, in: index)
    }

    /// With tables made on other threads for real while the index fills, every entry is found.
    @Test func tablesMadeOnOtherThreadsKeepEveryEntry() {
        var index = KeyIndex()
        index.elsewhere = { work in Thread.detachNewThread { work() } }
        insert(0..<200_000, into: &index)
        #expect(index.capacity == 262_144)
        expectFound(0..<200_000, in: index)
        _ = index.retire()
        insert(0..<100_000, into: &index)
        expectFound(0..<100_000, in: index)
    }

    /// One step of a churn test: sets key `k` (at position `step`) or removes it, in the index and
    /// in the Dictionary that models it, checking that a set reports the position it replaced.
    private func step(_ index: inout KeyIndex, _ model: inout [Int: Int], set: Bool, _ k: Int, at step: Int,
                      hash: UInt64, key: [UInt8]) throws {
        if set {
            let replaced = index.set(entry(k, hash: hash, position: step), hash: hash, key: key)
            #expect(replaced == model[k])
            model[k] = step
        } else if let position = model[k] {
            index.remove(bucket: try #require(index.find(hash, position: position)))
            model[k] = nil
        }
    }

    /// Random inserts, replacements and removals against a Dictionary, with hashes forced into few
    /// buckets so that runs wrap around and deletions shift entries back.
    @Test func agreesWithADictionaryUnderRandomChurn() throws {
        var index = KeyIndex()
        var model: [Int: Int] = [:]           // key -> position
        var generator = SystemRandomNumberGenerator()
        func hash(_ key: Int) -> UInt64 { UInt64(key % 37) &* 0x9E37_79B9_7F4A_7C15 | 1 }
        func key(_ key: Int) -> [UInt8] { Array("key-\(key)".utf8) }
        for step in 0..<20_000 {
            let k = Int.random(in: 0..<300, using: &generator)
            try self.step(&index, &model, set: Bool.random(using: &generator), k, at: step, hash: hash(k), key: key(k))
            if step % 97 == 0 {
                #expect(index.count == model.count)
                for probe in 0..<300 {
                    let found = index.find(hash(probe), key: key(probe))
                    #expect(found.map { Int(index[$0].position) } == model[probe])
                    if let found, let position = model[probe] {
                        #expect(index.find(hash(probe), position: position) == found)
                        #expect(index[found].bytes.last == UInt8(position & 0xff))
                    }
                }
            }
        }
    }

    /// Growing moves entries a few buckets per insertion: while it does, entries live in two
    /// tables, and finds, replacements and removals (which shift runs back in either table) must
    /// agree with a Dictionary at every step. Hashes fall on 211 homes, so runs are long and wrap.
    @Test func agreesWithADictionaryWhileGrowing() throws {
        var index = KeyIndex()
        var model: [Int: Int] = [:]
        var generator = SystemRandomNumberGenerator()
        func hash(_ key: Int) -> UInt64 { UInt64(key % 211 + 1) &* 0x9E37_79B9_7F4A_7C15 | 1 }
        func key(_ key: Int) -> [UInt8] { Array("key-\(key)".utf8) }
        var checksWhileGrowing = 0
        for step in 0..<8_000 {
            let k = Int.random(in: 0..<min(3_000, 16 + step / 2), using: &generator)
            try self.step(&index, &model, set: Int.random(in: 0..<10, using: &generator) < 7, k, at: step,
                          hash: hash(k), key: key(k))
            #expect(index.find(hash(k), key: key(k)).map { Int(index[$0].position) } == model[k])
            if step % 100 == 0 || index.isGrowing && step % 10 == 0 {
                if index.isGrowing { checksWhileGrowing += 1 }
                #expect(index.count == model.count)
                for (probe, position) in model {
                    let found = try #require(index.find(hash(probe), key: key(probe)), "key \(probe) lost at step \(step)")
                    #expect(Int(index[found].position) == position)
                    #expect(index.find(hash(probe), position: position) == found)
                }
            }
        }
        #expect(checksWhileGrowing > 20, "only \(checksWhileGrowing) checks during a growth")
        #expect(index.capacity * 7 >= index.count * 8)
    }

    /// A key whose bytes are a prefix of another's, under the same hash: told apart by length.
    @Test func keysSharingAHashAreToldApartByTheirBytes() throws {
        var index = KeyIndex()
        let short = Array("ab".utf8), long = Array("abc".utf8)
        func bucket(_ key: [UInt8], _ position: Int) -> KeyIndex.Bucket {
            KeyIndex.Bucket(hash: 7, bytes: key + Array("value".utf8), position: position, keyCount: key.count,
                            frequency: 0, missing: false, epoch: 0)
        }
        #expect(index.set(bucket(long, 1), hash: 7, key: long) == nil)
        #expect(index.find(7, key: short) == nil)
        #expect(index.set(bucket(short, 2), hash: 7, key: short) == nil)
        #expect(index.find(7, key: short).map { index[$0].position } == 2)
        #expect(index.find(7, key: long).map { index[$0].position } == 1)
        index.remove(bucket: try #require(index.find(7, position: 1)))
        #expect(index.find(7, key: long) == nil && index.count == 1)
    }

    /// What a hit reads stays in one 24-byte bucket (the index's memory per entry).
    @Test func aBucketIsTwentyFourBytes() {
        #expect(MemoryLayout<KeyIndex.Bucket>.stride == 24)
    }

    /// An entry's count halves with each of the sketch's halvings since it was last read.
    @Test func readCountsFadeWithTheSketchsHalvings() {
        var bucket = KeyIndex.Bucket.empty
        for _ in 0..<20 { _ = bucket.read(epoch: 3) }
        #expect(bucket.frequency(epoch: 3) == 15 && bucket.referenced)
        #expect(bucket.frequency(epoch: 4) == 7)
        #expect(bucket.frequency(epoch: 6) == 1)
        #expect(bucket.frequency(epoch: 7) == 0)
        #expect(bucket.read(epoch: 5) == 4)
        // The epoch wraps around: 65,535 → 0 is one halving.
        var wrapped = KeyIndex.Bucket.empty
        for _ in 0..<6 { _ = wrapped.read(epoch: .max) }
        #expect(wrapped.frequency(epoch: 0) == 3)
    }
}
