/// kvd's near-cache: values read from Redis, kept in memory until Redis says they changed.
///
/// One per worker, used from that worker's thread only (no locks on the request path). Bounded in
/// bytes; CLOCK eviction (second chance): a hit only sets a bit, so hits cost no list moves, and a
/// key read again before the hand comes round survives, which keeps the hot set of a skewed load.
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
        public var evictions = 0
        public var invalidations = 0
        public var flushes = 0
    }

    /// Bytes counted per entry on top of its key and value: the slot, the index and holder
    /// entries, the arrays' headers and the allocator's rounding (measured: 200k entries of seed-like
    /// pairs grew kvd's RSS by about 290 bytes each beside their prepared answers).
    public static let entryOverhead = 200

    public let maxBytes: Int
    public private(set) var bytes = 0
    public private(set) var statistics = Statistics()
    public var count: Int { index.count }

    /// Whether the slot at `position` holds `key`.
    @inline(__always)
    private func holds(_ position: Int, _ key: [UInt8]) -> Bool {
        slots[position]?.key == key
    }

    private struct Slot {
        var key: [UInt8]
        var entry: Entry
        var redisKey: [UInt8]
        var referenced: Bool
        var size: Int
        /// Where this slot stands in `holders[redisKey]` (O(1) removal, even when one Redis key holds every value).
        var holderIndex: Int
        /// The owner's prepared form of the entry (kvd: the HTTP answer), counted in `size`.
        var attachment: AnyObject? = nil
        /// `KeyIndex.hash(key)`, to find the index entry again.
        var hash: UInt64 = 0
    }

    private var slots: [Slot?] = []
    private var freeSlots: [Int] = []
    private var index = KeyIndex()
    /// Cached keys per Redis key, for invalidation.
    private var holders: [[UInt8]: [Int]] = [:]
    private var hand = 0

    /// Bumped by every invalidation and flush; tickets carry the value at the time of the read.
    private var sequence: UInt64 = 0
    /// When each recently invalidated Redis key was last invalidated (bounded; see `floor`).
    private var invalidatedAt: [[UInt8]: UInt64] = [:]
    /// Replies to reads sent before this are refused (a flush, or `invalidatedAt` was trimmed).
    private var floor: UInt64 = 0
    private static let invalidationMemory = 4096

    /// The entry the last `lookup` hit or the last `store` stored, until the cache changes: where
    /// `attachment` and `attach` apply.
    public private(set) var current: Int?

    /// Tests only: store replies whatever their tickets say, to show that a test catches the race.
    public var ignoresTickets = false

    public init(maxBytes: Int) {
        self.maxBytes = max(0, maxBytes)
        // About one entry per 300 bytes (seed-like pairs); 8 bits per entry keeps false "seen" rare.
        let entries = max(64, self.maxBytes / 300)
        var bits = 64
        while bits < entries * 8 { bits <<= 1 }
        seen = [UInt64](repeating: 0, count: bits / 64)
        seenWindow = entries
    }

    // MARK: Admission

    /// Keys read recently, one bit per hash (a doorkeeper): `admits` lets a key in at its second
    /// read within a window of about a cache's worth of first reads. A key read only once (most of
    /// a uniform load over more keys than fit, or a skewed load's long tail) then costs one bit,
    /// not an entry that would be evicted unread.
    private var seen: [UInt64]
    private var seenInserted = 0
    private let seenWindow: Int
    /// Times the doorkeeper was cleared (its window ended).
    public private(set) var admissionWindows = 0

    /// A cheap hash for the doorkeeper (FNV-1a, then a final mix): false "seen" only admit early.
    static func quickHash(_ key: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in key { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        hash ^= hash >> 33
        hash = hash &* 0xff51_afd7_ed55_8ccd
        return hash ^ (hash >> 33)
    }

    /// Whether a read of `key` should be cached: true when it was read recently (see `seen`).
    public func admits(_ key: [UInt8]) -> Bool {
        let bit = Int(truncatingIfNeeded: Self.quickHash(key)) & (seen.count * 64 - 1)
        let mask = UInt64(1) << UInt64(bit & 63)
        if seen[bit >> 6] & mask != 0 { return true }
        seen[bit >> 6] |= mask
        seenInserted += 1
        if seenInserted >= seenWindow {
            for word in seen.indices { seen[word] = 0 }
            seenInserted = 0
            admissionWindows += 1
        }
        return false
    }

    /// The cached entry for `key`, marking it recently used.
    @inlinable
    public func lookup(_ key: [UInt8]) -> Entry? {
        lookupSlot(key)
    }

    @usableFromInline
    func lookupSlot(_ key: [UInt8]) -> Entry? {
        guard let position = index.find(KeyIndex.hash(key), matches: { holds($0, key) }) else {
            current = nil
            statistics.misses += 1
            return nil
        }
        statistics.hits += 1
        slots[position]!.referenced = true
        current = position
        return slots[position]!.entry
    }

    /// The attachment of the `current` entry, if any.
    public var attachment: AnyObject? {
        guard let current else { return nil }
        return slots[current]?.attachment
    }

    /// Attaches `object` (counting `bytes` more) to the `current` entry, evicting others to make
    /// room; nothing when it does not fit.
    public func attach(_ object: AnyObject, bytes extra: Int) {
        guard let position = current, slots[position] != nil, slots[position]!.attachment == nil else { return }
        guard slots[position]!.size + extra <= maxBytes else { return }
        // The entry itself survives the hand: it was just read.
        slots[position]!.referenced = true
        while bytes + extra > maxBytes { evictOne(sparing: position) }
        guard slots[position] != nil else { return }
        slots[position]!.attachment = object
        slots[position]!.size += extra
        bytes += extra
        current = position
    }

    /// Bumped by every invalidation and flush: whether anything was dropped between two readings.
    public var changes: UInt64 { sequence }

    /// Call when a read is sent to Redis.
    public func ticket() -> Ticket { Ticket(sequence: sequence) }

    /// Stores the reply of a read, unless an invalidation of `redisKey` or a flush came after `ticket`.
    /// - Returns: whether it was stored.
    @discardableResult
    public func store(_ key: [UInt8], _ entry: Entry, redisKey: [UInt8], ticket: Ticket) -> Bool {
        current = nil
        if !ignoresTickets, ticket.sequence < floor || (invalidatedAt[redisKey].map { $0 > ticket.sequence } ?? false) {
            statistics.refusedStale += 1
            return false
        }
        let size = Self.entryOverhead + key.count + redisKey.count + {
            if case .value(let value) = entry { return value.count }
            return 0
        }()
        guard size <= maxBytes else { return false }
        while bytes + size > maxBytes { evictOne() }
        // One copy of a Redis key for all its entries (the `hash` layout's one key holds them all).
        let redisKey = holders.index(forKey: redisKey).map { holders[$0].key } ?? redisKey
        let position: Int
        let hash = KeyIndex.hash(key)
        let slot = Slot(key: key, entry: entry, redisKey: redisKey, referenced: false, size: size,
                        holderIndex: holders[redisKey]?.count ?? 0, hash: hash)
        if let free = freeSlots.popLast() {
            position = free
            slots[position] = slot
        } else {
            position = slots.count
            slots.append(slot)
        }
        if let replaced = index.set(hash, position, matches: { $0 != position && holds($0, key) }) {
            // Two reads of one key were in flight: the later reply replaces the earlier one's entry.
            remove(at: replaced, unlinkIndex: false)
        }
        slots[position]!.holderIndex = holders[redisKey]?.count ?? 0
        holders[redisKey, default: []].append(position)
        bytes += size
        statistics.stores += 1
        current = position
        return true
    }

    /// Redis reported that `redisKey` changed: drops every value it holds, and refuses replies to reads sent before now.
    public func invalidate(redisKey: [UInt8]) {
        current = nil
        sequence += 1
        statistics.invalidations += 1
        if invalidatedAt.count >= Self.invalidationMemory {
            // Forget single keys, remember "everything before now" instead: stricter, and bounded.
            invalidatedAt.removeAll(keepingCapacity: true)
            floor = sequence
        } else {
            invalidatedAt[redisKey] = sequence
        }
        guard let positions = holders.removeValue(forKey: redisKey) else { return }
        if holders.isEmpty {
            // It held every entry (the `hash` layout's one key): drop them all at once.
            removeEverything()
            return
        }
        for position in positions { remove(at: position, unlinkHolder: false) }
    }

    /// Drops everything and refuses replies to reads sent before now (tracking lost, FLUSHALL, a new generation, a reload).
    public func flush() {
        sequence += 1
        floor = sequence
        statistics.flushes += 1
        invalidatedAt.removeAll()
        removeEverything()
    }

    private func removeEverything() {
        slots.removeAll()
        freeSlots.removeAll()
        index.removeAll()
        holders.removeAll()
        bytes = 0
        hand = 0
        current = nil
    }

    private func evictOne(sparing spared: Int? = nil) {
        precondition(index.count > 0, "evicting from an empty cache")
        while true {
            if hand >= slots.count { hand = 0 }
            if slots[hand] != nil {
                if slots[hand]!.referenced || hand == spared {
                    slots[hand]!.referenced = false
                } else {
                    statistics.evictions += 1
                    remove(at: hand)
                    hand += 1
                    return
                }
            }
            hand += 1
        }
    }

    private func remove(at position: Int, unlinkHolder: Bool = true, unlinkIndex: Bool = true) {
        guard let slot = slots[position] else { return }
        if unlinkIndex { index.remove(slot.hash, position: position) }
        if unlinkHolder {
            var emptied = false
            if let last = holders[slot.redisKey]?.popLast() {
                if last != position {
                    holders[slot.redisKey]![slot.holderIndex] = last
                    slots[last]!.holderIndex = slot.holderIndex
                }
                emptied = holders[slot.redisKey]!.isEmpty
            }
            if emptied { holders.removeValue(forKey: slot.redisKey) }
        }
        bytes -= slot.size
        slots[position] = nil
        freeSlots.append(position)
    }
}
