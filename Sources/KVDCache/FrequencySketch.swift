/// How often each key was read lately, approximately: the frequency estimate of TinyLFU (Einziger,
/// Friedman, Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", 2017), as Caffeine keeps it.
///
/// A count-min sketch of 4-bit counters: a key has four counters, one per row, and its estimate is
/// the smallest of them (collisions only ever raise a counter). All four lie in one 64-byte block
/// of the table, so a read or an increment touches one cache line. Counters saturate at 15, and
/// after `sampleSize` increments every counter is halved: old popularity fades, and the estimate
/// follows what is read now.
///
/// Keys are given by a 64-bit hash (the cache's seeded `Hasher` value): the block comes from bits
/// 8 and up, the row's word and the counter inside it from bits 40–59, so they do not repeat the
/// bits that place the key in the cache's index.
struct FrequencySketch {
    private var table: [UInt64]
    private let blockMask: Int
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
        return Int(minimum)
    }

    /// Counts one read of `hash`; returns the estimate including it.
    @discardableResult
    mutating func increment(_ hash: UInt64) -> Int {
        var minimum: UInt64 = 15
        for row in 0..<4 {
            let (word, shift) = place(hash, row: row)
            let count = (table[word] >> shift) & 15
            if count < 15 { table[word] &+= 1 << shift }
            minimum = min(minimum, min(count + 1, 15))
        }
        additions += 1
        if additions >= sampleSize { halve() }
        return Int(minimum)
    }

    /// Halves every counter (the sample is full): estimates keep their order, old reads fade.
    private mutating func halve() {
        for word in table.indices { table[word] = (table[word] >> 1) & 0x7777_7777_7777_7777 }
        additions /= 2
        halvings += 1
    }
}
