/// The near-cache's index from a key to its slot: open addressing with linear probing over a flat
/// array of buckets, the key's hash and the slot's position side by side, so that a probe compares 8-byte hashes and
/// touches a key's bytes only when the hashes are equal. (A `Dictionary` compares the keys
/// themselves at every occupied bucket it probes: one pointer chase, often a cache miss, per probe,
/// which made a miss in a big cache cost more than the rest of the request's user-space work.)
///
/// A third array holds one byte per bucket, a tag from the hash's top bits (0: empty), as
/// SwissTable's control bytes do: a probe reads tags first, 64 buckets to a cache line and an
/// eighth of the hashes' memory (small enough to stay in the CPU's caches when the hashes do
/// not), and reads a bucket's hash only when its tag matches, 1 time in 255 for another key. A
/// key the cache does not hold, most lookups of a uniform load, is then found missing without a
/// trip to main memory.
///
/// Hashes come from Swift's `Hasher` (seeded per process, so clients cannot choose keys that
/// collide); 0 marks an empty bucket. Deletion shifts the following run back (no tombstones).
struct KeyIndex {
    private struct Bucket {
        var hash: UInt64
        var position: Int32
    }

    private var tags = [UInt8](repeating: 0, count: 16)
    private var buckets = [Bucket](repeating: Bucket(hash: 0, position: 0), count: 16)
    private(set) var count = 0

    static func hash(_ key: [UInt8]) -> UInt64 {
        var hasher = Hasher()
        key.withUnsafeBytes { hasher.combine(bytes: $0) }
        let value = UInt64(bitPattern: Int64(hasher.finalize()))
        return value == 0 ? 1 : value
    }

    /// The tag of a hash: its top byte, never 0 (the empty bucket's).
    @inline(__always)
    private static func tag(_ hash: UInt64) -> UInt8 {
        let top = UInt8(truncatingIfNeeded: hash >> 56)
        return top == 0 ? 1 : top
    }

    /// The position stored for `hash` whose key `matches`, if any.
    @inline(__always)
    func find(_ hash: UInt64, matches: (Int) -> Bool) -> Int? {
        bucket(hash, matches: matches).map { Int(buckets[$0].position) }
    }

    private func bucket(_ hash: UInt64, matches: (Int) -> Bool) -> Int? {
        let mask = tags.count - 1
        let tag = Self.tag(hash)
        var bucket = Int(truncatingIfNeeded: hash) & mask
        while true {
            let stored = tags[bucket]
            if stored == 0 { return nil }
            if stored == tag && buckets[bucket].hash == hash && matches(Int(buckets[bucket].position)) { return bucket }
            bucket = (bucket + 1) & mask
        }
    }

    /// Stores `position` for the key of `hash` (`matches` recognises it): returns the position it replaced.
    mutating func set(_ hash: UInt64, _ position: Int, matches: (Int) -> Bool) -> Int? {
        if let bucket = bucket(hash, matches: matches) {
            let replaced = Int(buckets[bucket].position)
            buckets[bucket].position = Int32(position)
            return replaced
        }
        if (count + 1) * 4 > tags.count * 3 { grow() }
        insert(hash, Int32(position))
        count += 1
        return nil
    }

    private mutating func insert(_ hash: UInt64, _ position: Int32) {
        let mask = tags.count - 1
        var bucket = Int(truncatingIfNeeded: hash) & mask
        while tags[bucket] != 0 { bucket = (bucket + 1) & mask }
        tags[bucket] = Self.tag(hash)
        buckets[bucket] = Bucket(hash: hash, position: position)
    }

    private mutating func grow() {
        let oldTags = tags, oldBuckets = buckets
        tags = [UInt8](repeating: 0, count: oldTags.count * 2)
        buckets = [Bucket](repeating: Bucket(hash: 0, position: 0), count: oldTags.count * 2)
        for bucket in oldTags.indices where oldTags[bucket] != 0 {
            insert(oldBuckets[bucket].hash, oldBuckets[bucket].position)
        }
    }

    /// Removes the entry of `hash` that stores `position`.
    mutating func remove(_ hash: UInt64, position: Int) {
        guard var hole = bucket(hash, matches: { $0 == position }) else { return }
        let mask = tags.count - 1
        var next = hole
        while true {
            next = (next + 1) & mask
            if tags[next] == 0 { break }
            let home = Int(truncatingIfNeeded: buckets[next].hash) & mask
            // The entry at `next` may move back into the hole unless its home lies after the hole
            // (cyclically, within (hole, next]).
            let staysPut = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !staysPut {
                tags[hole] = tags[next]
                buckets[hole] = buckets[next]
                hole = next
            }
        }
        tags[hole] = 0
        buckets[hole] = Bucket(hash: 0, position: 0)
        count -= 1
    }

    mutating func removeAll() {
        tags = [UInt8](repeating: 0, count: 16)
        buckets = [Bucket](repeating: Bucket(hash: 0, position: 0), count: 16)
        count = 0
    }
}
