/// The near-cache's index from a key to its slot: open addressing with linear probing over two flat
/// arrays, the key's hash and the slot's position, so that a probe compares 8-byte hashes and
/// touches a key's bytes only when the hashes are equal. (A `Dictionary` compares the keys
/// themselves at every occupied bucket it probes: one pointer chase, often a cache miss, per probe,
/// which made a miss in a big cache cost more than the rest of the request's user-space work.)
///
/// Hashes come from Swift's `Hasher` (seeded per process, so clients cannot choose keys that
/// collide); 0 marks an empty bucket. Deletion shifts the following run back (no tombstones).
struct KeyIndex {
    private var hashes = [UInt64](repeating: 0, count: 16)
    private var positions = [Int32](repeating: 0, count: 16)
    private(set) var count = 0

    static func hash(_ key: [UInt8]) -> UInt64 {
        var hasher = Hasher()
        key.withUnsafeBytes { hasher.combine(bytes: $0) }
        let value = UInt64(bitPattern: Int64(hasher.finalize()))
        return value == 0 ? 1 : value
    }

    /// The position stored for `hash` whose key `matches`, if any.
    @inline(__always)
    func find(_ hash: UInt64, matches: (Int) -> Bool) -> Int? {
        bucket(hash, matches: matches).map { Int(positions[$0]) }
    }

    private func bucket(_ hash: UInt64, matches: (Int) -> Bool) -> Int? {
        let mask = hashes.count - 1
        var bucket = Int(truncatingIfNeeded: hash) & mask
        while true {
            let stored = hashes[bucket]
            if stored == 0 { return nil }
            if stored == hash && matches(Int(positions[bucket])) { return bucket }
            bucket = (bucket + 1) & mask
        }
    }

    /// Stores `position` for the key of `hash` (`matches` recognises it): returns the position it replaced.
    mutating func set(_ hash: UInt64, _ position: Int, matches: (Int) -> Bool) -> Int? {
        if let bucket = bucket(hash, matches: matches) {
            let replaced = Int(positions[bucket])
            positions[bucket] = Int32(position)
            return replaced
        }
        if (count + 1) * 4 > hashes.count * 3 { grow() }
        insert(hash, Int32(position))
        count += 1
        return nil
    }

    private mutating func insert(_ hash: UInt64, _ position: Int32) {
        let mask = hashes.count - 1
        var bucket = Int(truncatingIfNeeded: hash) & mask
        while hashes[bucket] != 0 { bucket = (bucket + 1) & mask }
        hashes[bucket] = hash
        positions[bucket] = position
    }

    private mutating func grow() {
        let oldHashes = hashes, oldPositions = positions
        hashes = [UInt64](repeating: 0, count: oldHashes.count * 2)
        positions = [Int32](repeating: 0, count: oldHashes.count * 2)
        for bucket in oldHashes.indices where oldHashes[bucket] != 0 {
            insert(oldHashes[bucket], oldPositions[bucket])
        }
    }

    /// Removes the entry of `hash` that stores `position`.
    mutating func remove(_ hash: UInt64, position: Int) {
        guard var hole = bucket(hash, matches: { $0 == position }) else { return }
        let mask = hashes.count - 1
        var next = hole
        while true {
            next = (next + 1) & mask
            let stored = hashes[next]
            if stored == 0 { break }
            let home = Int(truncatingIfNeeded: stored) & mask
            // The entry at `next` may move back into the hole unless its home lies after the hole
            // (cyclically, within (hole, next]).
            let staysPut = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next)
            if !staysPut {
                hashes[hole] = stored
                positions[hole] = positions[next]
                hole = next
            }
        }
        hashes[hole] = 0
        count -= 1
    }

    mutating func removeAll() {
        hashes = [UInt64](repeating: 0, count: 16)
        positions = [Int32](repeating: 0, count: 16)
        count = 0
    }
}
