/// kvd's near-cache: values read from Redis, kept in memory until Redis says they changed.
///
/// One per worker, used from that worker's thread only (no locks on the request path). Bounded in
/// bytes; CLOCK eviction (second chance): a hit only sets a bit, so hits cost no list moves, and a
/// key read again before the hand comes round survives, which keeps the hot set of a skewed load.
/// Admission is TinyLFU's (`FrequencySketch`): a key is offered at its second recent read, and once
/// the cache is full it gets in only if it was read more often lately than the entry CLOCK would
/// evict for it, so a stream of keys read once or twice (a uniform load) does not churn the cache.
///
/// Invalidation is keyed by the *Redis* key that holds a value (what Redis's client tracking
/// reports): the hash in the `hash` layout (one key for every value), the string key, or the bucket.
///
/// The read/invalidate race: an invalidation can arrive (on the subscriber connection) before the
/// reply of a read that was already in flight (on the data connection). Each read takes a `Ticket`
/// when it is sent; a reply is stored only if nothing invalidated its Redis key, and nothing
/// flushed the cache, since that ticket.
public final class NearCache {
    /// What a cached lookup found: a value, or a key Redis did not have.
    public enum Entry: Equatable, Sendable {
        case value([UInt8])
        case missing
    }

    /// Taken when a read is sent; presented when its reply is stored.
    public struct Ticket: Sendable, Equatable {
        let sequence: UInt64
    }

    public struct Statistics: Sendable, Equatable {
        public init() {}
        public var hits = 0
        public var misses = 0
        public var stores = 0
        /// Replies not stored because an invalidation or flush overtook them.
        public var refusedStale = 0
        /// Keys read again but not cached: the cache was full and the entry they would replace was
        /// read more often lately (refused when the read is sent, or when its reply arrives).
        public var notAdmitted = 0
        public var evictions = 0
        public var invalidations = 0
        public var flushes = 0
    }

    /// Bytes counted per entry on top of its key, value and Redis key: the slot (40), the index
    /// bucket (24, at a load between 7/16 and 7/8) and tag, the holder entry, the bytes' array
    /// header and the allocator's rounding. Measured (`bench/cache-memory.sh`): seed-like
    /// pairs (87 bytes of key, value and Redis key) grew kvd's RSS by 222 bytes per entry with the
    /// index 3/4 full and by 246 just after it doubled: 135–159 bytes on top.
    public static let entryOverhead = 160

    /// Longer keys are not cached (kvd refuses keys over 16 KiB before they get here).
    public static let maxKeyBytes = Int(UInt16.max)
    /// An entry's bytes, attachment included, fit a slot's 32 bits (kvd caches values of at most 1 GiB).
    static let maxEntryBytes = Int(Int32.max)

    public let maxBytes: Int
    @exclusivity(unchecked) public private(set) var bytes = 0  // (see `slots`)
    public var statistics: Statistics { counts }
    // Stored privately behind a public getter, as the fields a hit touches must be: a stored
    // property that other modules can read keeps Swift's dynamic exclusivity checks (a runtime
    // call each) on every access.
    private var counts = Statistics()
    public var count: Int { index.count }

    /// One cached entry's bookkeeping for invalidation and eviction (`hash` 0: a free slot); what
    /// a hit reads (key, value, read count, CLOCK's mark) is in the entry's `KeyIndex` bucket, so a
    /// hit does not touch its slot unless it has an attachment. Read field by field
    /// (`slots[i].redisKey`), never copied whole: a copy would retain what it references.
    /// 40 bytes (the fields' order keeps it so).
    private struct Slot {
        /// `KeyIndex.hash(key)`, to find the index entry again.
        var hash: UInt64
        /// The Redis key that holds the value; empty when it is `derivedPrefix` + the key (`derived`).
        var redisKey: [UInt8]
        var size: Int32
        /// The neighbours in the list of the entries that `redisKey` holds (-1: none), whose first
        /// entry `holders` names: O(1) removal, even when one Redis key holds every value.
        /// `previous` is `derivedMark` for an entry in no list (`derived`).
        var previous: Int32
        var next: Int32
        /// Where the owner read the entry (kvd: the Redis node's tracking), for `flush(source:)`.
        /// Sources that share these 16 bits only make a flush drop more, never less.
        var source: UInt16
        /// The owner's group of the entry (kvd: the Redis Cluster slot of its Redis key), for `flush(groups:)`.
        var group: UInt16
        /// The owner's prepared form of the entry (kvd: the HTTP answer), counted in `size`.
        var attachment: AnyObject?

        /// The Redis key is `derivedPrefix` + the entry's key: kept nowhere, and in no `holders` list.
        var derived: Bool { previous == Self.derivedMark }
        static let derivedMark: Int32 = -2

        static var free: Slot { Slot(hash: 0, redisKey: [], size: 0, previous: -1, next: -1, source: 0, group: 0, attachment: nil) }
    }

    // `@exclusivity(unchecked)` on the fields every lookup and store touches (`slots`, `index`,
    // `sketch`, `bytes`, `freeSlots`, `holders`, `invalidatedAt`, `ignoresTickets`): Swift cannot
    // prove that no two accesses to them overlap (its analysis gives up on methods that call others
    // while they hold one), so it checks each access at run time, a runtime call of 100–120
    // instructions, 5 per hit and 8 per store. They are used from the owner's thread only, by this
    // class's own short accesses, and reached by no closure; see docs/performance.md,
    // "Exclusivity checks".
    @exclusivity(unchecked) private var slots: [Slot] = []
    @exclusivity(unchecked) private var freeSlots: [Int] = []
    @exclusivity(unchecked) private var index = KeyIndex()
    /// For invalidation: the first slot of the list of entries each Redis key holds (through
    /// `Slot.previous`/`next`), for the entries whose Redis key is not derived from their key.
    @exclusivity(unchecked) private var holders: [[UInt8]: Int32] = [:]
    /// The `string` layout's Redis key is a prefix and the key (`GET prefix+key`): one more copy of
    /// the key per entry, and a `holders` entry each (together ~150 bytes, more than a seed-like
    /// entry's key and value), for what an invalidation can work out from its own Redis key. An
    /// entry stored with `derivedPrefix` + its key keeps neither; the prefix is the first one seen
    /// while no entry is derived from another.
    private var derivedPrefix: [UInt8] = []
    private var derivedCount = 0
    private var hand = 0

    /// Bumped by every invalidation and flush; tickets carry the value at the time of the read.
    private var sequence: UInt64 = 0
    /// When each recently invalidated Redis key was last invalidated (bounded; see `floor`).
    @exclusivity(unchecked) private var invalidatedAt: [[UInt8]: UInt64] = [:]
    /// Replies to reads sent before this are refused (a flush, or `invalidatedAt` was trimmed).
    private var floor: UInt64 = 0
    private static let invalidationMemory = 4096

    /// The slot of the entry the last `lookup` hit, until the cache changes: where `attachment`
    /// and `attach` apply.
    private var current: Int?
    /// Whether that entry has an attachment (read from its bucket: its slot is not touched otherwise).
    private var currentAttached = false

    /// Tests only: store replies whatever their tickets say, to show that a test catches the race.
    @exclusivity(unchecked) public var ignoresTickets = false

    /// - Parameters:
    ///   - maxBytes: the bound on what the cache holds.
    ///   - expectedEntries: what admission's sketch is sized for; by default about one entry per
    ///     250 bytes (seed-like pairs). Tests pass a larger figure for a sketch without collisions.
    ///   - statistics: where the counts start (the counts of the cache this one replaces).
    public init(maxBytes: Int, expectedEntries: Int? = nil, statistics: Statistics = Statistics()) {
        self.maxBytes = max(0, maxBytes)
        counts = statistics
        sketch = FrequencySketch(expectedEntries: max(64, expectedEntries ?? self.maxBytes / 250))
        slots.reserveCapacity(slotReservation)
    }

    /// Slots reserved up front: as many as `maxBytes` can hold (every entry counts at least
    /// `entryOverhead`), at most 4M (160 MiB). Reserved, not written: the system maps the pages as
    /// the cache fills, and the slots are never copied to a bigger array while it does (a doubling
    /// at 524,288 slots copied 20 MB and stopped the worker 13–63 ms). Above 4M entries the slots
    /// grow by doubling again.
    private var slotReservation: Int { min(maxBytes / Self.entryOverhead, 1 << 22) }

    // MARK: Admission (TinyLFU)

    /// How often keys were read lately (cached or not): what admission compares.
    @exclusivity(unchecked) private var sketch: FrequencySketch  // (see `slots`)
    /// Times the read counts were halved (every ten reads per expected entry): old reads fade.
    public var admissionHalvings: Int { sketch.halvings }

    /// The estimated recent reads of `key` (0...15): a cached entry's own count, else the sketch's.
    public func frequency(of key: [UInt8]) -> Int {
        let hash = KeyIndex.hash(key)
        guard let bucket = index.find(hash, key: key) else { return sketch.frequency(hash) }
        return index[bucket].frequency(epoch: epoch)
    }

    /// The sketch's halvings, as an entry's count records them.
    private var epoch: UInt16 { UInt16(truncatingIfNeeded: sketch.halvings) }

    /// Counts a read of `key` that missed, and says whether its reply may be offered to `store`:
    /// from its second recent read on. A key read once (most of a uniform load over more keys than
    /// fit, or a skewed load's long tail) costs a counter, not an entry that would be evicted unread.
    /// When the cache is full, the key must also beat the entry CLOCK would evict now (as `store`
    /// checks again): most misses of a uniform load then cost no bookkeeping for their reply.
    public func admits(_ key: [UInt8]) -> Bool {
        // Usually the key `lookup` just missed: its hash is known (an array compares equal to itself at once).
        let hash = lastMiss.key == key ? lastMiss.hash : KeyIndex.hash(key)
        let frequency = sketch.increment(hash)
        guard frequency >= 2 else { return false }
        guard bytes + Self.entryOverhead + key.count > maxBytes, index.count > 0 else { return true }
        return beatsVictim(frequency)
    }

    /// Reads a newcomer needs lately to replace an entry of a full cache. Under a uniform load
    /// over more keys than fit, counts are small and noisy: an entry whose count halved to 1 loses
    /// to a newcomer that happened to be read twice, and the cache churns (an allocation, index
    /// updates and an eviction per replacement) for no gain. Three reads is rare by chance and
    /// common for a key that is really hot.
    public static let replacementFrequency = 3

    /// The cache is full: whether a newcomer read `frequency` times lately (at least
    /// `replacementFrequency`) was read more often than the entry CLOCK would evict for it
    /// (TinyLFU); a refusal is counted in `notAdmitted`.
    /// A victim that wins keeps its place and the hand moves past it, so the next newcomer meets
    /// the next entry: one victim whose count is high (read often long ago, or sharing the
    /// sketch's counters with busy keys) must not refuse every newcomer until the counts halve.
    private func beatsVictim(_ frequency: Int) -> Bool {
        let victim = clockVictim()
        if frequency >= Self.replacementFrequency, frequency > index[victim.bucket].frequency(epoch: epoch) { return true }
        counts.notAdmitted += 1
        hand = victim.position + 1
        return false
    }

    /// The cached entry for `key`, marking it recently used.
    /// - Parameter attachmentSuffices: the caller answers from the entry's `attachment` when it has
    ///   one, and needs its value only when it has none: an entry with an attachment then comes back
    ///   as `.value([])`, without copying its value out (an allocation and a copy per hit).
    @inlinable
    public func lookup(_ key: [UInt8], attachmentSuffices: Bool = false) -> Entry? {
        lookupSlot(key, attachmentSuffices: attachmentSuffices)
    }

    /// The key the last `lookup` missed and its hash, for the `admits` that usually follows.
    private var lastMiss: (key: [UInt8], hash: UInt64) = ([], KeyIndex.hash([]))

    /// A hit reads the entry's bucket and its bytes, and counts the read there: not in the
    /// sketch (one more cold cache line), which counts only the reads of keys not cached. An
    /// entry's count starts from the sketch's when it is stored, and fades with the sketch's
    /// halvings (`KeyIndex.Bucket.frequency(epoch:)`), so admission compares like with like.
    @usableFromInline
    func lookupSlot(_ key: [UInt8], attachmentSuffices: Bool) -> Entry? {
        let hash = KeyIndex.hash(key)
        guard let bucket = index.find(hash, key: key) else {
            current = nil
            counts.misses += 1
            lastMiss = (key, hash)
            return nil
        }
        if sweep != nil, dropsDuringSweep(bucket) {
            current = nil
            counts.misses += 1
            lastMiss = (key, hash)
            return nil
        }
        counts.hits += 1
        sketch.tick()
        currentFrequency = index[bucket].read(epoch: epoch)
        // Field by field: a copy of the whole bucket would retain and release its bytes.
        current = Int(index[bucket].position)
        currentAttached = index[bucket].attached
        if index[bucket].missing { return .missing }
        // (The slot is read here rather than by the `attachment` that follows: no extra cache line.)
        if attachmentSuffices, currentAttached, slots[Int(index[bucket].position)].attachment != nil { return .value([]) }
        return .value(Array(index[bucket].bytes[Int(index[bucket].keyCount)...]))
    }

    /// The recent reads of the entry the last `lookup` hit (what `attach` requires).
    private var currentFrequency = 0

    /// Reads an entry needs lately before it takes an attachment: a prepared answer costs about
    /// twice a small entry, so it goes to the keys read again and again (a skewed load's head),
    /// not to every entry (a uniform load's entries are read once in a while: room for more of them).
    public static let attachmentFrequency = 8

    /// The attachment of the `current` entry, if any.
    public var attachment: AnyObject? {
        guard currentAttached, let current else { return nil }
        return slots[current].attachment
    }

    /// Attaches `object` (counting `bytes` more) to the `current` entry, evicting others to make
    /// room, when the entry was read often lately (`attachmentFrequency`); nothing when it was
    /// not, or does not fit.
    public func attach(_ object: AnyObject, bytes extra: Int) {
        guard currentFrequency >= Self.attachmentFrequency else { return }
        guard let position = current, slots[position].hash != 0, slots[position].attachment == nil else { return }
        guard Int(slots[position].size) + extra <= min(maxBytes, Self.maxEntryBytes) else { return }
        // The entry itself survives the hand (it was just read, and is spared).
        while bytes + extra > maxBytes { evictOne(sparing: position) }
        guard slots[position].hash != 0, let bucket = index.find(slots[position].hash, position: position) else { return }
        slots[position].attachment = object
        slots[position].size += Int32(extra)
        index[bucket].attached = true
        bytes += extra
        current = position
        currentAttached = true
    }

    /// Bumped by every invalidation and flush: whether anything was dropped between two readings.
    public var changes: UInt64 { sequence }

    /// Call when a read is sent to Redis.
    public func ticket() -> Ticket { Ticket(sequence: sequence) }

    /// Stores the reply of a read, unless an invalidation of `redisKey` or a flush came after `ticket`.
    /// - Parameters:
    ///   - source: where the value was read (kvd: the Redis node), for `flush(source:)`.
    ///   - group: the entry's group (kvd: its Redis key's cluster slot), for `flush(groups:)`; 0...65535.
    /// - Returns: whether it was stored.
    @discardableResult
    public func store(_ key: [UInt8], _ entry: Entry, redisKey: [UInt8], ticket: Ticket, source: Int = 0, group: Int = 0) -> Bool {
        current = nil
        if !ignoresTickets, ticket.sequence < floor || (invalidatedAt[redisKey].map { $0 > ticket.sequence } ?? false) {
            counts.refusedStale += 1
            return false
        }
        let derived = derives(redisKey, from: key)
        let size = Self.entryOverhead + key.count + (derived ? 0 : redisKey.count) + {
            if case .value(let value) = entry { return value.count }
            return 0
        }()
        guard size <= min(maxBytes, Self.maxEntryBytes), key.count <= Self.maxKeyBytes else { return false }
        let hash = KeyIndex.hash(key)
        let frequency = sketch.frequency(hash)
        // Full: under a uniform load over more keys than fit, every key is as likely as the next,
        // so entries stay, and the misses cost no stores and evictions.
        if bytes + size > maxBytes, !beatsVictim(frequency) { return false }
        while bytes + size > maxBytes { evictOne() }
        // One copy of a Redis key for all its entries (the `hash` layout's one key holds them all).
        let holder = derived ? nil : holders.index(forKey: redisKey)
        let redisKey = derived ? [] : holder.map { holders.keys[$0] } ?? redisKey
        let position: Int
        let slot = Slot(hash: hash, redisKey: redisKey, size: Int32(size), previous: derived ? Slot.derivedMark : -1, next: -1,
                        source: UInt16(truncatingIfNeeded: source), group: UInt16(truncatingIfNeeded: group), attachment: nil)
        if let free = freeSlots.popLast() {
            position = free
            slots[position] = slot
        } else {
            position = slots.count
            slots.append(slot)
        }
        // Key and value in one allocation: a hit reads them from adjacent memory.
        var stored = [UInt8]()
        var missing = true
        if case .value(let value) = entry {
            stored.reserveCapacity(key.count + value.count)
            stored += key
            stored += value
            missing = false
        } else {
            stored = key
        }
        let bucket = KeyIndex.Bucket(hash: hash, bytes: stored, position: position, keyCount: key.count,
                                     frequency: frequency, missing: missing, epoch: epoch)
        if let replaced = index.set(bucket, hash: hash, key: key) {
            // Two reads of one key were in flight: the later reply replaces the earlier one's entry.
            remove(at: replaced, bucket: nil)
        }
        if derived {
            derivedCount += 1
        } else {
            // First in its Redis key's list (the removal above may have changed the table: looked up again).
            let first = holders.index(forKey: redisKey).map { holders.values[$0] } ?? -1
            slots[position].next = first
            if first >= 0 { slots[Int(first)].previous = Int32(position) }
            holders[redisKey] = Int32(position)
        }
        bytes += size
        counts.stores += 1
        return true
    }

    /// Redis reported that `redisKey` changed: drops every value it holds, and refuses replies to reads sent before now.
    public func invalidate(redisKey: [UInt8]) {
        current = nil
        sequence += 1
        counts.invalidations += 1
        if invalidatedAt.count >= Self.invalidationMemory {
            // Forget single keys, remember "everything before now" instead: stricter, and bounded.
            invalidatedAt.removeAll(keepingCapacity: true)
            floor = sequence
        } else {
            invalidatedAt[redisKey] = sequence
        }
        if derivedCount > 0, redisKey.count >= derivedPrefix.count, redisKey.starts(with: derivedPrefix) {
            let key = Array(redisKey[derivedPrefix.count...])
            if let bucket = index.find(KeyIndex.hash(key), key: key), slots[Int(index[bucket].position)].derived {
                drop(Int(index[bucket].position), bucket: bucket)
            }
        }
        guard var position = holders.removeValue(forKey: redisKey).map(Int.init) else { return }
        if holders.isEmpty && derivedCount == 0 {
            // It held every entry (the `hash` layout's one key): drop them all at once.
            removeEverything()
            return
        }
        while position >= 0 {
            let next = Int(slots[position].next)
            drop(position, bucket: nil, unlinkHolder: false)
            position = next
        }
    }

    /// Whether `redisKey` is `derivedPrefix` + `key` (choosing the prefix while no entry is derived).
    private func derives(_ redisKey: [UInt8], from key: [UInt8]) -> Bool {
        let prefixCount = redisKey.count - key.count
        guard prefixCount >= 0, redisKey[prefixCount...].elementsEqual(key) else { return false }
        let prefix = redisKey[..<prefixCount]
        if prefix.elementsEqual(derivedPrefix) { return true }
        guard derivedCount == 0 else { return false }
        derivedPrefix = Array(prefix)
        return true
    }

    /// Drops everything and refuses replies to reads sent before now (tracking lost, FLUSHALL, a new generation, a reload).
    public func flush() {
        refuseEarlierReads()
        removeEverything()
    }

    /// Every flush, whole or partial: replies to reads sent before now are refused from now on.
    private func refuseEarlierReads() {
        sequence += 1
        floor = sequence
        counts.flushes += 1
        invalidatedAt.removeAll()
    }

    /// Drops the entries read from `source` (kvd: a Redis node whose tracking was lost, or that was
    /// flushed), and refuses replies to reads sent before now, from any source: the few reads in
    /// flight cost a store each, and a reply need not be traced to its source.
    public func flush(source: Int) {
        var named = Named()
        named.add(source: UInt16(truncatingIfNeeded: source))
        flush(named)
    }

    /// Drops the entries whose group `matches` (kvd: the keys of cluster slots that moved to
    /// another node), and refuses replies to reads sent before now.
    public func flush(groups matches: (Int) -> Bool) {
        // `matches` is asked once per group the cache holds entries of.
        var named = Named(), asked = Named()
        for position in slots.indices where slots[position].hash != 0 {
            let group = slots[position].group
            guard !asked.names(group: group) else { continue }
            asked.add(group: group)
            if matches(Int(group)) { named.add(group: group) }
        }
        flush(named)
    }

    /// The sources and groups a partial flush names, one bit per value.
    private struct Named {
        var sources = [UInt64](repeating: 0, count: 1024)
        var groups = [UInt64](repeating: 0, count: 1024)

        mutating func add(source: UInt16) { sources[Int(source >> 6)] |= 1 << UInt64(source & 63) }
        mutating func add(group: UInt16) { groups[Int(group >> 6)] |= 1 << UInt64(group & 63) }

        mutating func add(_ other: Named) {
            for word in sources.indices { sources[word] |= other.sources[word] }
            for word in groups.indices { groups[word] |= other.groups[word] }
        }

        @inline(__always)
        func names(source: UInt16, group: UInt16) -> Bool {
            sources[Int(source >> 6)] & (1 << UInt64(source & 63)) != 0 || names(group: group)
        }

        @inline(__always)
        func names(group: UInt16) -> Bool { groups[Int(group >> 6)] & (1 << UInt64(group & 63)) != 0 }
    }

    /// Finds the entries to drop in one sequential pass over the slots (~1 ms for 500,000 entries).
    /// Each one dropped then costs about a microsecond (its index bucket, holders, memory): up to
    /// `partialFlushBatch` of them are dropped at once; more (a cluster node's share of a full
    /// cache: 100,000 or more) are dropped a batch per `doPendingWork` call (a `Sweep`), and until
    /// then a lookup that finds one misses and drops it, so nothing a flush named is ever served.
    private func flush(_ named: Named) {
        refuseEarlierReads()
        current = nil
        // Counted, with the positions kept only while they could still be a small flush's: a list
        // of 100,000 positions would cost page faults.
        var count = 0
        var first: [Int] = []
        for position in slots.indices where slotIsNamed(position, by: named) {
            count += 1
            if count <= partialFlushBatch { first.append(position) }
        }
        if count == index.count {
            removeEverything()
            return
        }
        guard count > partialFlushBatch else {
            // Even during a sweep: merged into it, a small flush would send it back to the start
            // (a migration's `MOVED` patches, one slot each, could then keep a sweep going for good).
            for position in first { drop(position, bucket: nil) }
            return
        }
        // Named entries dropped at once would stop the worker for ~1–2 µs each: a sweep drops them
        // over the next loop turns (merged with one still under way: it starts over, naming both).
        // The free list's room, once: doubling it later (a megabyte) would stop one turn for its page faults.
        freeSlots.reserveCapacity(freeSlots.count + count)
        var next = sweep ?? Sweep(next: 0, end: 0, named: Named())
        sweep = nil
        next.named.add(named)
        next.next = 0
        next.end = slots.count
        sweep = next
    }

    /// A partial flush under way: the slots below `end` (the slots when it started) are looked at
    /// from `next` on, a batch per `doPendingWork` call, and the entries `named` names are dropped;
    /// meanwhile a lookup that finds one of them misses and drops it. An entry stored since (a new
    /// read from a named source or group) may be dropped too: a later miss, never a stale answer.
    private struct Sweep {
        var next: Int
        var end: Int
        var named: Named
    }
    private var sweep: Sweep?

    /// Partial flushes of at most this many entries drop them at once, and a sweep drops this
    /// many per `doPendingWork` call: about half a millisecond (each entry dropped costs ~1–2 µs:
    /// its bucket, its holders, its memory, all cold). Tests make it small.
    public var partialFlushBatch = 256

    /// Whether a partial flush is still dropping what it named.
    public var isSweeping: Bool { sweep != nil }

    /// Whether slot `position` holds an entry that `named` names (by its source or its group).
    @inline(__always)
    private func slotIsNamed(_ position: Int, by named: Named) -> Bool {
        slots[position].hash != 0 && named.names(source: slots[position].source, group: slots[position].group)
    }

    /// During a sweep: whether the entry in `bucket` was named, in which case it is dropped now.
    private func dropsDuringSweep(_ bucket: Int) -> Bool {
        let position = Int(index[bucket].position)
        guard let named = sweep?.named, slotIsNamed(position, by: named) else { return false }
        drop(position, bucket: bucket)
        return true
    }

    /// Drops the entry in slot `position` for an invalidation or a flush: a key read often gets
    /// back in at its next read, even into a full cache (its reads while cached, counted in its
    /// entry and not in the sketch, go back to the sketch).
    private func drop(_ position: Int, bucket known: Int?, unlinkHolder: Bool = true) {
        guard slots[position].hash != 0 else { return }
        let bucket = known ?? index.find(slots[position].hash, position: position)
        if let bucket { sketch.raise(slots[position].hash, to: index[bucket].frequency(epoch: epoch)) }
        remove(at: position, bucket: bucket, unlinkHolder: unlinkHolder)
    }

    /// Whether a flush left work for `doPendingWork`.
    public var hasPendingWork: Bool { sweep != nil || !retired.isEmpty }

    /// What flushes left to do, a batch at a time (well under a millisecond): drops up to
    /// `partialFlushBatch` entries a partial flush named, else frees what whole flushes dropped.
    /// The owner calls it once per loop turn while `hasPendingWork`.
    public func doPendingWork() {
        guard var sweep else {
            releaseRetired()
            return
        }
        // At most a batch dropped, and 16 batches' worth of slots looked at (a sequential read).
        var dropped = 0
        let stop = min(sweep.end, slots.count, sweep.next + 16 * max(1, partialFlushBatch))
        while sweep.next < stop && dropped < partialFlushBatch {
            let position = sweep.next
            sweep.next += 1
            if slotIsNamed(position, by: sweep.named) {
                drop(position, bucket: nil)
                dropped += 1
            }
        }
        current = nil
        self.sweep = sweep.next < min(sweep.end, slots.count) ? sweep : nil
    }

    /// Empties the cache at once, in constant time: the entries' storage moves to `retired`, and
    /// `releaseRetired` frees it a batch at a time. Freeing 300,000 entries takes ~100 ms (a free
    /// and a cold cache line each); in the `hash` layout every write to Redis empties the cache,
    /// and the worker must not stop answering for that long each time.
    private func removeEverything() {
        let held = slots.count
        if held > 0 {
            retiredSlots += held
            retired.append(Retired(slots: slots, usedSlots: held, buckets: index.retire(), holders: holders))
        }
        // Room for as many entries as before (`slotReservation`), reserved, not written.
        slots = []
        slots.reserveCapacity(max(held, slotReservation))
        freeSlots = []
        holders = [:]
        derivedCount = 0
        sweep = nil
        bytes = 0
        hand = 0
        current = nil
        currentAttached = false
    }

    /// The storage of entries a whole flush dropped, not yet released: nothing can find them.
    private struct Retired {
        var slots: [Slot]
        /// Slots the entry table held when it was retired: the part of its reserved room that was
        /// ever written (the rest is not mapped, and costs nothing to free).
        let usedSlots: Int
        /// The index's table, and the one a growth was draining if there was one.
        var buckets: [[KeyIndex.Bucket]]
        var holders: [[UInt8]: Int32]

        /// The bytes of the tables themselves that were written, once their entries are gone (an
        /// emptied bucket table stays in `buckets`, its room kept, until the whole is freed).
        var tableBytes: Int {
            usedSlots * MemoryLayout<Slot>.stride
                + buckets.reduce(0) { $0 + $1.capacity * MemoryLayout<KeyIndex.Bucket>.stride }
                + holders.capacity * (MemoryLayout<[UInt8]>.stride + MemoryLayout<Int32>.stride)
        }
    }

    /// Where big tables are made and freed: the owner runs the closure it is given on another
    /// thread. A whole flush's emptied tables are freed there when they are big (`freeElsewhereFrom`
    /// bytes or more): returning a big block to the system takes long (a million-bucket index,
    /// 24 MB: ~55 ms on these machines, a stop of every request of the worker). The index's tables
    /// from `makeElsewhereFrom` buckets on are made there ahead of the growth that needs
    /// them (writing a million buckets: 11–25 ms). Nil: both here.
    public var elsewhere: ((@escaping @Sendable () -> Void) -> Void)? {
        didSet { index.elsewhere = elsewhere }
    }
    public var freeElsewhereFrom = 1 << 20
    /// Index tables of this many buckets or more are made `elsewhere` (`KeyIndex.madeElsewhereFrom`).
    public var makeElsewhereFrom: Int {
        get { index.madeElsewhereFrom }
        set { index.madeElsewhereFrom = newValue }
    }

    private var retired: [Retired] = []

    /// Slots (entries, and the free slots among them) that whole flushes dropped and
    /// `releaseRetired` has not freed yet; their index buckets and bytes go after them.
    public private(set) var retiredSlots = 0

    /// Redis keys of entries whole flushes dropped, still in their retired holders tables: with
    /// about one Redis key per entry they go with their entries, a batch at a time.
    public var retiredRedisKeys: Int { retired.reduce(0) { $0 + $1.holders.count } }

    /// Whether whole flushes left memory for `releaseRetired` to free.
    public var hasRetired: Bool { !retired.isEmpty }

    /// Entries released per `releaseRetired` call by default: well under a millisecond of work
    /// (a free and a cold cache line per entry's bytes).
    public static let releaseBatch = 1024

    /// Frees up to about `limit` entries' worth of what whole flushes dropped (their bytes, Redis
    /// keys and attachments); the owner calls it once per loop turn while `hasRetired`.
    /// A `holders` table of many Redis keys (the `buckets` layout's, or Redis keys not derived from
    /// their keys) is emptied with its entries (a dictionary cannot be freed in part; removing its
    /// keys frees what they hold).
    public func releaseRetired(limit: Int = NearCache.releaseBatch) {
        var budget = max(1, limit)
        while budget > 0, !retired.isEmpty {
            let last = retired.count - 1
            if !retired[last].slots.isEmpty {
                let count = min(budget, retired[last].slots.count)
                if retired[last].holders.count > 1 {
                    // Many Redis keys: their holders go with their entries, so that the table is not
                    // freed all at once at the end (~350 ms for 475,000 keys).
                    let end = retired[last].slots.count
                    for position in (end - count)..<end where retired[last].slots[position].hash != 0 && !retired[last].slots[position].derived {
                        let redisKey = retired[last].slots[position].redisKey
                        retired[last].holders.removeValue(forKey: redisKey)
                    }
                }
                retired[last].slots.removeLast(count)
                budget -= count
                retiredSlots -= count
            } else if let table = retired[last].buckets.lastIndex(where: { !$0.isEmpty }) {
                // Two buckets to an entry's worth: between a third and a half of them are empty.
                let count = min(2 * budget, retired[last].buckets[table].count)
                retired[last].buckets[table].removeLast(count)
                budget -= (count + 1) / 2
            } else {
                budget -= retired[last].holders.count
                if let elsewhere, retired[last].tableBytes >= freeElsewhereFrom {
                    // Moved into the object, so that the other thread's reference is the last one.
                    let tables = Disposal(retired.removeLast())
                    elsewhere { tables.free() }
                } else {
                    retired.removeLast()
                }
            }
        }
    }

    private func evictOne(sparing spared: Int? = nil) {
        let victim = clockVictim(sparing: spared)
        counts.evictions += 1
        remove(at: victim.position, bucket: victim.bucket)
        hand += 1
    }

    /// The entry CLOCK evicts next (its slot, and its bucket until the index changes): the hand
    /// moves on, clearing "referenced" marks (a second chance), and stops at the first entry not
    /// read since it last passed (never at `spared`).
    private func clockVictim(sparing spared: Int? = nil) -> (position: Int, bucket: Int) {
        precondition(index.count > 0, "evicting from an empty cache")
        while true {
            if hand >= slots.count { hand = 0 }
            if slots[hand].hash != 0 {
                guard let bucket = index.find(slots[hand].hash, position: hand) else {
                    preconditionFailure("a cached entry missing from the index")
                }
                if index[bucket].referenced || hand == spared {
                    index[bucket].referenced = false
                } else {
                    return (hand, bucket)
                }
            }
            hand += 1
        }
    }

    /// Frees the entry in slot `position`, and its index `bucket` (nil: the index no longer points
    /// at it, its key's new entry replaced it there).
    private func remove(at position: Int, bucket: Int?, unlinkHolder: Bool = true) {
        guard slots[position].hash != 0 else { return }
        if let bucket { index.remove(bucket: bucket) }
        if slots[position].derived {
            derivedCount -= 1
        } else if unlinkHolder {
            let previous = Int(slots[position].previous), next = slots[position].next
            if next >= 0 { slots[Int(next)].previous = Int32(previous) }
            if previous >= 0 {
                slots[previous].next = next
            } else if let first = holders.index(forKey: slots[position].redisKey) {
                // The first of its Redis key's list: the table names the next one, or forgets the key.
                if next >= 0 { holders.values[first] = next } else { holders.remove(at: first) }
            }
        }
        bytes -= Int(slots[position].size)
        slots[position] = .free
        freeSlots.append(position)
    }
}

/// Something to be freed on another thread (`NearCache.elsewhere`): moved in, so that once the
/// mover has let go, the reference that `free()` drops on that thread is the last one.
public final class Disposal<Value>: @unchecked Sendable {
    private var value: Value?
    public init(_ value: consuming Value) { self.value = value }
    public func free() { value = nil }
}
