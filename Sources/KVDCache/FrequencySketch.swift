/// How often each key was read lately, approximately: the frequency estimate of TinyLFU (Einziger,
/// Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", 2017), as Caffeine keeps it.
///
/// A count-min sketch of 4-bit counters: a key has four counters, one per row, and its estimate is
/// the smallest of them (collisions only ever raise a counter). All four lie in one 64-byte block
/// of the table, so a read or an increment touches one cache line. Counters saturate at 15, and
/// after `sampleSize` increments every counter is halved: old popularity fades, and the estimate
/// follows what is read now.
///
/// In front of the counters, TinyLFU's **doorkeeper**: a Bloom filter (two bits of one 64-bit
/// word per key, about one to two bits per read of the sample) that takes a key's first read in
/// each sample; only later reads reach the counters, and a key's estimate is its counters plus
/// one when the doorkeeper holds it. Without it every key read once fills four counters: when
/// many more keys are read than fit (a uniform load over a keyspace far larger than the cache),
/// the counters of keys read once or twice overflow into each other, every estimate reads 2 or 3,
/// and admission cannot tell a key read twice from one read once (measured: ten times as many
/// replacements, each an allocation, index updates and an eviction, for no hit). The doorkeeper is
/// cleared at every halving.
///
/// Keys are given by a 64-bit hash (the cache's seeded `Hasher` value): the block comes from bits
/// 8 and up, the row's word and the counter inside it from bits 40–59, so they do not repeat the
/// bits that place the key in the cache's index; the doorkeeper's word and bits come from the
/// hash multiplied by an odd constant.
struct FrequencySketch {
    private var table: [UInt64]
    private let blockMask: Int
    private var doorkeeper: [UInt64]
    private let doorkeeperMask: Int
    /// Increments between two halvings: ten per expected entry, as TinyLFU's sample.
    let sampleSize: Int
    private var additions = 0
    /// Times every counter was halved.
    private(set) var halvings = 0

    /// - Parameter expectedEntries: about how many keys the cache holds (the table gets one 64-bit
    ///   word, sixteen counters, per two of them: 4 bytes a key).
    init(expectedEntries: Int) {
        let entries = max(16, expectedEntries)
        var words = 8
        while words * 2 < entries { words <<= 1 }
        table = [UInt64](repeating: 0, count: words)
        blockMask = words / 8 - 1
        sampleSize = 10 * entries
        // At least one bit per read of the sample (a sample reads at most that many keys).
        var doorkeeperWords = 1
        while doorkeeperWords * 64 < sampleSize { doorkeeperWords <<= 1 }
        doorkeeper = [UInt64](repeating: 0, count: doorkeeperWords)
        doorkeeperMask = doorkeeperWords - 1
    }

    /// The doorkeeper's word for `hash`, and its two bits there.
    @inline(__always)
    private func door(_ hash: UInt64) -> (word: Int, bits: UInt64) {
        let mixed = hash &* 0x9E37_79B9_7F4A_7C15
        return (Int(truncatingIfNeeded: mixed >> 16) & doorkeeperMask, 1 << (mixed >> 58) | 1 << ((mixed >> 52) & 63))
    }

    /// Where row `row`'s counter of `hash` is: its word, and the shift of its 4 bits in that word.
    @inline(__always)
    private func place(_ hash: UInt64, row: Int) -> (word: Int, shift: UInt64) {
        let block = Int(truncatingIfNeeded: hash >> 8) & blockMask
        let word = block << 3 | row << 1 | Int(truncatingIfNeeded: (hash >> (40 + UInt64(row))) & 1)
        let counter = (hash >> (44 + 4 * UInt64(row))) & 15
        return (word, counter << 2)
    }

    /// The estimated number of reads of `hash` (0...15).
    func frequency(_ hash: UInt64) -> Int {
        var minimum: UInt64 = 15
        for row in 0..<4 {
            let (word, shift) = place(hash, row: row)
            minimum = min(minimum, (table[word] >> shift) & 15)
        }
        let (word, bits) = door(hash)
        return Int(min(15, minimum + (doorkeeper[word] & bits == bits ? 1 : 0)))
    }

    /// Counts one read of `hash`; returns the estimate including it. A key's first read in the
    /// sample goes to the doorkeeper only, and counts as 1 (its counters are not read: most reads
    /// of a uniform load over many keys end here, one memory access).
    @discardableResult
    mutating func increment(_ hash: UInt64) -> Int {
        defer { tick() }
        let (doorWord, bits) = door(hash)
        if doorkeeper[doorWord] & bits != bits {
            doorkeeper[doorWord] |= bits
            return 1
        }
        var minimum: UInt64 = 15
        for row in 0..<4 {
            let (word, shift) = place(hash, row: row)
            let count = (table[word] >> shift) & 15
            if count < 15 { table[word] &+= 1 << shift }
            minimum = min(minimum, min(count + 1, 15))
        }
        return Int(min(15, minimum + 1))
    }

    /// Raises the estimate of `hash` to at least `value` (0...15), without counting a read: a
    /// cached entry's own count, when the entry is dropped for a write.
    mutating func raise(_ hash: UInt64, to value: Int) {
        guard value > 0 else { return }
        let (doorWord, bits) = door(hash)
        doorkeeper[doorWord] |= bits
        // The doorkeeper holds one read; the counters the rest.
        let target = UInt64(min(15, value - 1))
        for row in 0..<4 {
            let (word, shift) = place(hash, row: row)
            if (table[word] >> shift) & 15 < target { table[word] = table[word] & ~(15 << shift) | target << shift }
        }
    }

    /// Counts a read in the sample without counting it for any key: a hit, whose count the
    /// cache keeps in the entry itself (see `NearCache`), still brings the next halving nearer.
    mutating func tick() {
        additions += 1
        if additions >= sampleSize { halve() }
    }

    /// Halves every counter (the sample is full): estimates keep their order, old reads fade; the
    /// doorkeeper starts empty.
    private mutating func halve() {
        for word in table.indices { table[word] = (table[word] >> 1) & 0x7777_7777_7777_7777 }
        for word in doorkeeper.indices { doorkeeper[word] = 0 }
        additions /= 2
        halvings += 1
    }
}
