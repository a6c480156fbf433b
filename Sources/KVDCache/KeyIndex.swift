import Synchronization

/// The near-cache's entries, found by key: open addressing with linear probing over a flat array
/// of buckets, each bucket holding what a hit needs (half the key's hash, the key and value bytes in
/// one array, and the entry's read count and marks). A hit touches three cache lines: the tag, the
/// bucket, and the bytes of its key and value side by side. (The entry's other bookkeeping, what
/// invalidation and eviction need, lives in the cache's slot for it, read only by those.)
///
/// Why this shape: a lookup in a big cache is a string of CPU cache misses, one per structure it
/// reads, and the rest of a request evicts them all between two lookups. Entries kept apart from
/// the index (index bucket → slot → key array → value array → frequency sketch) cost six to seven
/// misses per hit (`bench/cache-lookup`: 640 against 434 ns per Zipf GET; docs/cache.md).
///
/// A separate array holds one byte per bucket, a tag from the hash's top bits (0: empty), as
/// SwissTable's control bytes do: a probe reads tags first, 64 buckets to a cache line and a
/// twenty-fourth of the buckets' memory (small enough to stay in the CPU's caches when the buckets do
/// not), and reads a bucket only when its tag matches, 1 time in 255 for another key. A key the
/// cache does not hold, most lookups of a uniform load, is then found missing without a trip to
/// main memory.
///
/// Hashes come from Swift's `Hasher` (seeded per process, so clients cannot choose keys that
/// collide); a tag of 0 marks an empty bucket. The table grows at 7/8 full, into a table twice the
/// size that the old one drains into a few buckets per insertion. Deletion shifts the
/// following run back (no tombstones), so a bucket's index is good only until the next insertion
/// or removal.
struct KeyIndex {
    /// 24 bytes (the fields' order keeps it so): 43 buckets in a kilobyte of index.
    struct Bucket {
        /// The key's bytes, then the value's (none for a key Redis did not have).
        var bytes: [UInt8]
        /// The low half of the key's hash (its home bucket; the tag holds bits of the high half).
        var hash: UInt32
        /// The cache's slot for this entry.
        var position: Int32
        var keyCount: UInt16
        /// The sketch's halvings when `frequency` was last counted.
        var epoch: UInt16
        /// Reads lately (0...15), as of the frequency sketch's halving `epoch`; see `NearCache`.
        var frequency: UInt8
        /// Read since CLOCK's hand last passed (a second chance).
        var referenced: Bool
        /// Redis had no value for the key (`NearCache.Entry.missing`).
        var missing: Bool
        /// The slot holds a prepared answer.
        var attached: Bool

        init(hash: UInt64, bytes: [UInt8], position: Int, keyCount: Int, frequency: Int, missing: Bool, epoch: UInt16) {
            self.bytes = bytes
            self.hash = UInt32(truncatingIfNeeded: hash)
            self.position = Int32(truncatingIfNeeded: position)
            self.keyCount = UInt16(truncatingIfNeeded: keyCount)
            self.epoch = epoch
            self.frequency = UInt8(truncatingIfNeeded: frequency)
            self.referenced = false
            self.missing = missing
            self.attached = false
        }

        static let empty = Bucket(hash: 0, bytes: [], position: 0, keyCount: 0, frequency: 0, missing: false, epoch: 0)

        /// The read count as of the sketch's halving `now`: halved once per halving since `epoch`.
        @inline(__always)
        func frequency(epoch now: UInt16) -> Int {
            let elapsed = now &- epoch
            return elapsed >= 4 ? 0 : Int(frequency >> elapsed)
        }

        /// Counts a read (at most 15) and marks the entry referenced; returns the new count.
        @inline(__always)
        mutating func read(epoch now: UInt16) -> Int {
            let count = min(15, frequency(epoch: now) + 1)
            frequency = UInt8(count)
            epoch = now
            referenced = true
            return count
        }

        /// Whether the key stored here is `key`.
        @inline(__always)
        func holds(_ key: [UInt8]) -> Bool {
            guard Int(keyCount) == key.count else { return false }
            // Iterated side by side (the key is the bytes' prefix): no index checks per byte.
            for (stored, wanted) in zip(bytes, key) where stored != wanted { return false }
            return true
        }
    }

    /// One open-addressing table: a tag byte and a bucket per slot, a power of two of them.
    fileprivate struct Table {
        var tags: [UInt8]
        var buckets: [Bucket]

        init(size: Int) {
            tags = [UInt8](repeating: 0, count: size)
            buckets = [Bucket](repeating: .empty, count: size)
        }

        var size: Int { tags.count }

        @inline(__always)
        func find(_ hash: UInt64, key: [UInt8]) -> Int? {
            // The bucket is read in place (`buckets[bucket].holds`): a copy would retain its bytes.
            probe(hash) { buckets[$0].holds(key) }
        }

        func find(_ hash: UInt64, position: Int32) -> Int? {
            probe(hash) { buckets[$0].position == position }
        }

        @inline(__always)
        private func probe(_ hash: UInt64, matches: (Int) -> Bool) -> Int? {
            let mask = tags.count - 1
            let tag = KeyIndex.tag(hash), low = UInt32(truncatingIfNeeded: hash)
            var bucket = Int(truncatingIfNeeded: hash) & mask
            while true {
                let stored = tags[bucket]
                if stored == 0 { return nil }
                if stored == tag && buckets[bucket].hash == low && matches(bucket) { return bucket }
                bucket = (bucket + 1) & mask
            }
        }

        mutating func insert(_ entry: Bucket, tag: UInt8) {
            let mask = tags.count - 1
            var bucket = Int(entry.hash) & mask
            while tags[bucket] != 0 { bucket = (bucket + 1) & mask }
            tags[bucket] = tag
            buckets[bucket] = entry
        }

        /// Empties `bucket`, shifting the run after it back (no tombstones): every entry left can
        /// still be found from its home bucket without crossing an empty one.
        mutating func remove(bucket: Int) {
            var hole = bucket
            let mask = tags.count - 1
            var next = hole
            while true {
                next = (next + 1) & mask
                if tags[next] == 0 { break }
                let home = Int(buckets[next].hash) & mask
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
            buckets[hole] = .empty
        }
    }

    /// Where entries are inserted.
    private var table = Table(size: 16)
    /// While the index grows: the table before, moved into `table` a few buckets per insertion
    /// (`drainStep`) instead of all at once (a doubling at 229,376 entries took ~40 ms in one go).
    /// Its buckets below `drained` are empty; the entries left are found as before (removal
    /// shifts runs back, so no entry's probe crosses a drained bucket).
    private var old: Table?
    private var drained = 0
    /// Runs what it is given on another thread (`NearCache.elsewhere`); nil: every table is made here.
    var elsewhere: ((@escaping @Sendable () -> Void) -> Void)?
    /// Tables of this many buckets or more (1.6 MB) are made elsewhere, ahead of the growth that needs
    /// them: making one writes every bucket (a million buckets, 24 MB: 11–25 ms on these machines, a
    /// stop of every request of the worker, at each doubling of every refill after a whole flush).
    var madeElsewhereFrom = 1 << 16
    /// Growths that took a table made elsewhere (for tests).
    private(set) var tablesTaken = 0
    /// The next table, ordered when this one reached 3/4 full (`orderAhead`).
    private var order: TableOrder?
    /// Old buckets moved per insertion: the old table is empty before the new one is 7/8 full
    /// (an old table of N buckets holds at most 7N/8 entries; N/4 insertions drain it while they
    /// add N/4 entries to a table of 2N).
    private static let drainStep = 4

    private(set) var count = 0
    /// Buckets of the table insertions go to (a power of two).
    var capacity: Int { table.size }
    /// Whether a growth is still moving entries from the table before.
    var isGrowing: Bool { old != nil }

    static func hash(_ key: [UInt8]) -> UInt64 {
        var hasher = Hasher()
        key.withUnsafeBytes { hasher.combine(bytes: $0) }
        let value = UInt64(bitPattern: Int64(hasher.finalize()))
        return value == 0 ? 1 : value
    }

    /// The tag of a hash: its top byte, never 0 (the empty bucket's).
    @inline(__always)
    fileprivate static func tag(_ hash: UInt64) -> UInt8 {
        let top = UInt8(truncatingIfNeeded: hash >> 56)
        return top == 0 ? 1 : top
    }

    /// The bucket of `key` (whose hash is `hash`), if it is stored. Bucket indices at or above
    /// `capacity` are in the table a growth is draining.
    @inline(__always)
    func find(_ hash: UInt64, key: [UInt8]) -> Int? {
        if let bucket = table.find(hash, key: key) { return bucket }
        guard old != nil, let bucket = old?.find(hash, key: key) else { return nil }
        return table.size + bucket
    }

    /// The bucket of the entry of `hash` whose slot is `position`, if it is stored.
    func find(_ hash: UInt64, position: Int) -> Int? {
        let position = Int32(truncatingIfNeeded: position)
        if let bucket = table.find(hash, position: position) { return bucket }
        guard old != nil, let bucket = old?.find(hash, position: position) else { return nil }
        return table.size + bucket
    }

    /// The bucket at `index` (from `find`, before any insertion or removal since).
    subscript(index: Int) -> Bucket {
        get { index < table.size ? table.buckets[index] : old!.buckets[index - table.size] }
        _modify {
            if index < table.size {
                yield &table.buckets[index]
            } else {
                yield &old!.buckets[index - table.size]
            }
        }
    }

    /// Stores `entry` for `key`, whose hash is `hash`: returns the slot position of the entry it
    /// replaced, if any.
    mutating func set(_ entry: Bucket, hash: UInt64, key: [UInt8]) -> Int? {
        if let bucket = find(hash, key: key) {
            let replaced = Int(self[bucket].position)
            self[bucket] = entry
            return replaced
        }
        if old != nil {
            drain(Self.drainStep)
        } else if (count + 1) * 8 > table.size * 7 {
            // Up to 7/8 full: a probe for a key not held still reads one line of tag bytes, mostly,
            // and the buckets take 27–55 bytes per entry (32–85 for 32-byte buckets growing at 3/4).
            old = table
            table = takeOrder() ?? Table(size: table.size * 2)
            drained = 0
            drain(Self.drainStep)
        }
        table.insert(entry, tag: Self.tag(hash))
        count += 1
        orderAhead()
        return nil
    }

    /// From 3/4 full, the table of the next growth (twice the size) is made on another thread, so
    /// that the growth at 7/8 only swaps it in. Between the two, an eighth of the table's size in
    /// insertions (65,536 of them before a million-bucket table) leave the other thread ample time.
    private mutating func orderAhead() {
        guard order == nil, let elsewhere, count * 4 >= table.size * 3, table.size * 2 >= madeElsewhereFrom else { return }
        let order = TableOrder(size: table.size * 2)
        self.order = order
        elsewhere { order.make() }
    }

    /// The ordered table, if it is made; nil (and the order let go: its maker frees what it makes)
    /// when it is not yet, or none was ordered.
    private mutating func takeOrder() -> Table? {
        guard let order else { return nil }
        self.order = nil
        guard let made = order.take() else { return nil }
        tablesTaken += 1
        return made
    }

    /// Moves the entries of up to `buckets` more old buckets into the current table.
    private mutating func drain(_ buckets: Int) {
        guard var from = old else { return }
        old = nil   // uniquely referenced while it is changed
        var moved = 0
        while moved < buckets, drained < from.size {
            if from.tags[drained] == 0 {
                drained += 1
                moved += 1
                continue
            }
            table.insert(from.buckets[drained], tag: from.tags[drained])
            // What shifts back into the bucket is moved at the next pass over it.
            from.remove(bucket: drained)
            moved += 1
        }
        if drained < from.size { old = from }
    }

    /// Removes the entry in `bucket` (from `find`, before any insertion or removal since).
    mutating func remove(bucket: Int) {
        if bucket < table.size {
            table.remove(bucket: bucket)
        } else {
            old!.remove(bucket: bucket - table.size)
        }
        count -= 1
    }

    /// Empties the index and hands over its buckets as they are, each with its bytes, so that the
    /// caller can release them a few at a time (`NearCache.releaseRetired`) instead of all at once.
    /// The new index starts at its smallest and grows as the cache fills again, a few buckets per
    /// insertion: sized at once for as many entries as the old one held, it made the flush itself
    /// write the whole new table (22–31 ms for a million buckets, every write in the `hash` layout
    /// stopping the worker that long), even when the cache never fills that far again.
    mutating func retire() -> [[Bucket]] {
        if let order {
            self.order = nil
            // Made for a growth that will not come (if made yet: else its maker frees it).
            if let made = order.take(), let elsewhere {
                let disposal = Disposal(made)
                elsewhere { disposal.free() }
            }
        }
        let retired = [table.buckets] + (old.map { [$0.buckets] } ?? [])
        table = Table(size: 16)
        old = nil
        drained = 0
        count = 0
        return retired
    }
}

/// A table being made on another thread for the index's next growth, and its hand-over: the maker
/// delivers it unless the index let go of the order first, in which case the maker frees it.
private final class TableOrder: Sendable {
    private let size: Int
    private let state = Mutex<(made: KeyIndex.Table?, cancelled: Bool)>((nil, false))

    init(size: Int) { self.size = size }

    /// Makes the table (on the other thread).
    func make() {
        let table = KeyIndex.Table(size: size)
        // Not wanted any more: freed here, once the lock is let go.
        let unwanted: KeyIndex.Table? = state.withLock { state in
            if state.cancelled { return table }
            state.made = table
            return nil
        }
        _ = unwanted
    }

    /// The table if it is made; either way the order is closed.
    func take() -> KeyIndex.Table? {
        state.withLock { state in
            state.cancelled = true
            defer { state.made = nil }
            return state.made
        }
    }
}
