import Foundation
import KVDCache
import Testing

@Suite("Near-cache")
struct NearCacheTests {
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

    /// A cache that replaces another (a `[cache]` reload) starts from its counts and counts on.
    @Test func startsFromTheCountsItIsGiven() {
        var earlier = NearCache.Statistics()
        earlier.hits = 7
        earlier.misses = 5
        earlier.flushes = 2
        let cache = NearCache(maxBytes: 1 << 20, statistics: earlier)
        #expect(cache.statistics == earlier)
        #expect(cache.lookup(bytes("a")) == nil)
        cache.store(bytes("a"), .value(bytes("1")), redisKey: bytes("data"), ticket: cache.ticket())
        #expect(cache.lookup(bytes("a")) == .value(bytes("1")))
        #expect(cache.statistics.hits == 8 && cache.statistics.misses == 6 && cache.statistics.stores == 1)
        #expect(cache.statistics.flushes == 2 && cache.count == 1)
    }

    @Test func storesAndFindsValuesAndMisses() {
        let cache = NearCache(maxBytes: 1 << 20)
        #expect(cache.lookup(bytes("a")) == nil)
        cache.store(bytes("a"), .value(bytes("1")), redisKey: bytes("data"), ticket: cache.ticket())
        cache.store(bytes("b"), .missing, redisKey: bytes("data"), ticket: cache.ticket())
        #expect(cache.lookup(bytes("a")) == .value(bytes("1")))
        #expect(cache.lookup(bytes("b")) == .missing)
        #expect(cache.statistics.hits == 2 && cache.statistics.misses == 1)
    }

    /// The race Redis's client-side caching documentation describes: the invalidation of a key
    /// arrives before the reply of a read sent earlier. Without the ticket check the stale reply
    /// would be cached after its invalidation and served until the next write.
    @Test func aReplyOvertakenByItsInvalidationIsNotStored() {
        let cache = NearCache(maxBytes: 1 << 20)
        let ticket = cache.ticket()                       // GET k sent
        cache.invalidate(redisKey: bytes("k"))            // invalidation of k arrives first
        #expect(!cache.store(bytes("k"), .value(bytes("old")), redisKey: bytes("k"), ticket: ticket))
        #expect(cache.lookup(bytes("k")) == nil)
        #expect(cache.statistics.refusedStale == 1)
        // Another key's reply from the same moment is still good.
        #expect(cache.store(bytes("j"), .value(bytes("v")), redisKey: bytes("j"), ticket: ticket))
        // A read sent after the invalidation is stored.
        #expect(cache.store(bytes("k"), .value(bytes("new")), redisKey: bytes("k"), ticket: cache.ticket()))
    }

    @Test func aFlushRefusesEveryEarlierRead() {
        let cache = NearCache(maxBytes: 1 << 20)
        cache.store(bytes("a"), .value(bytes("1")), redisKey: bytes("a"), ticket: cache.ticket())
        let ticket = cache.ticket()
        cache.flush()
        #expect(cache.count == 0 && cache.bytes == 0)
        #expect(!cache.store(bytes("b"), .value(bytes("2")), redisKey: bytes("b"), ticket: ticket))
        #expect(cache.store(bytes("b"), .value(bytes("2")), redisKey: bytes("b"), ticket: cache.ticket()))
    }

    /// Granularity follows the layout: one hash holds every value; a bucket holds some.
    /// Cluster mode: a node's lost tracking drops what was read there only; every read in flight
    /// is refused (a reply is not traced to its node), and the accounting stays exact.
    @Test func aSourcesFlushDropsOnlyWhatWasReadThere() {
        let cache = NearCache(maxBytes: 1 << 20)
        for (index, source) in [1, 2, 1, 3, 2].enumerated() {
            cache.store(bytes("k\(index)"), .value(bytes("v\(index)")), redisKey: bytes("k\(index)"), ticket: cache.ticket(), source: source)
        }
        let bytesBefore = cache.bytes
        let inFlight = cache.ticket()
        cache.flush(source: 2)
        #expect(cache.count == 3)
        for index in [0, 2, 3] { #expect(cache.lookup(bytes("k\(index)")) == .value(bytes("v\(index)"))) }
        for index in [1, 4] { #expect(cache.lookup(bytes("k\(index)")) == nil) }
        #expect(cache.bytes == bytesBefore * 3 / 5)
        #expect(!cache.store(bytes("k1"), .value(bytes("v1")), redisKey: bytes("k1"), ticket: inFlight, source: 1))
        #expect(cache.store(bytes("k1"), .value(bytes("v1")), redisKey: bytes("k1"), ticket: cache.ticket(), source: 1))
        // Invalidation still finds entries after the partial flush moved the index around.
        cache.invalidate(redisKey: bytes("k3"))
        #expect(cache.lookup(bytes("k3")) == nil && cache.count == 3)
        cache.flush(source: 1)
        #expect(cache.count == 0 && cache.bytes == 0)
    }

    /// Cluster mode: the keys of slots that moved go, whichever node they were read from.
    @Test func aFlushByGroupDropsTheMatchingEntries() {
        let cache = NearCache(maxBytes: 1 << 20)
        for index in 0..<100 {
            cache.store(bytes("k\(index)"), .value(bytes("v")), redisKey: bytes(index % 2 == 0 ? "even" : "odd\(index)"), ticket: cache.ticket(),
                        source: index % 3, group: index % 2 == 0 ? 16383 : index)
        }
        var asked: [Int] = []
        cache.flush(groups: { asked.append($0); return $0 == 16383 })
        #expect(cache.count == 50)
        #expect(asked.sorted() == Array(Set((0..<100).map { $0 % 2 == 0 ? 16383 : $0 })).sorted(), "asked once per group held")
        for index in 0..<100 { #expect((cache.lookup(bytes("k\(index)")) != nil) == (index % 2 == 1)) }
        cache.invalidate(redisKey: bytes("odd7"))
        #expect(cache.count == 49)
    }

    @Test func invalidatingARedisKeyDropsEveryValueItHolds() {
        let cache = NearCache(maxBytes: 1 << 20)
        for index in 0..<100 {
            cache.store(bytes("k\(index)"), .value(bytes("v")), redisKey: bytes("bucket\(index % 3)"), ticket: cache.ticket())
        }
        cache.invalidate(redisKey: bytes("bucket1"))
        #expect(cache.count == 67)
        for index in 0..<100 { #expect((cache.lookup(bytes("k\(index)")) == nil) == (index % 3 == 1)) }
        cache.invalidate(redisKey: bytes("nothing-cached"))
        #expect(cache.count == 67)
    }

    /// Reads `key` as kvd does: a hit, or a miss whose reply is offered to the cache when `admits` says so.
    @discardableResult
    func read(_ cache: NearCache, _ key: [UInt8], value: [UInt8], redisKey: [UInt8] = Array("data".utf8)) -> Bool {
        if cache.lookup(key) != nil { return true }
        if cache.admits(key) { cache.store(key, .value(value), redisKey: redisKey, ticket: cache.ticket()) }
        return false
    }

    @Test func staysWithinItsByteBoundAndKeepsTheHotKeys() {
        let entry = NearCache.entryOverhead + 8 + 4 + 100
        let cache = NearCache(maxBytes: entry * 100)
        let value = [UInt8](repeating: 7, count: 100)
        // Ten hot keys, read between every cold key, survive a stream of 10,000 cold keys read twice each.
        for round in 0..<10_000 {
            for hot in 0..<10 { read(cache, bytes("hot-\(hot)"), value: value) }
            read(cache, bytes("c\(round)"), value: value)
            read(cache, bytes("c\(round)"), value: value)
            #expect(cache.bytes <= cache.maxBytes)
        }
        let hotMissesBefore = cache.statistics.misses
        for hot in 0..<10 {
            #expect(cache.lookup(bytes("hot-\(hot)")) != nil)
        }
        #expect(cache.statistics.misses == hotMissesBefore)
        // Once full, a key read twice does not push out one read as often: the cold stream only
        // displaces entries whose counts faded (about a cache's worth per halving), no churn between.
        #expect(cache.count >= 90)
        #expect(cache.statistics.stores <= 100 * (cache.admissionHalvings + 1))
        // Every cold key's second read was weighed (refused or stored), but for the few whose two
        // reads a halving fell between (it empties the doorkeeper that held the first): one per halving at most.
        #expect(cache.statistics.notAdmitted + cache.statistics.stores >= 10_000 - cache.admissionHalvings)
        // Every value under one Redis key: invalidating it empties the cache (the hash layout).
        cache.invalidate(redisKey: bytes("data"))
        #expect(cache.count == 0 && cache.bytes == 0)
    }

    /// TinyLFU: once full, a newcomer replaces CLOCK's victim only if it was read more often lately.
    @Test func aFullCacheAdmitsOnlyKeysReadMoreOftenThanItsVictim() {
        let entry = NearCache.entryOverhead + 8 + 4 + 10
        // A sketch sized for far more keys than these: with one sized for the cache's 50 entries,
        // a newcomer read twice shares all four counters with fill keys about once in a hundred
        // runs (the hash seed changes per process), and counts 3.
        let cache = NearCache(maxBytes: entry * 50, expectedEntries: 1 << 16)
        let value = [UInt8](repeating: 1, count: 10)
        // Fill with keys read twice (offered at their second read).
        var index = 0
        while cache.bytes + entry <= cache.maxBytes {
            read(cache, bytes("fill\(index)"), value: value)
            read(cache, bytes("fill\(index)"), value: value)
            index += 1
        }
        let stores = cache.statistics.stores
        // A key read twice more: as often as the victims, refused (at `admits` or at `store`).
        read(cache, bytes("newcomer"), value: value)
        read(cache, bytes("newcomer"), value: value)
        #expect(cache.lookup(bytes("newcomer")) == nil)
        #expect(cache.statistics.stores == stores)
        // Read three more times, it beats a victim read twice, and gets in.
        for _ in 0..<3 { read(cache, bytes("newcomer"), value: value) }
        #expect(cache.lookup(bytes("newcomer")) != nil)
        #expect(cache.statistics.stores == stores + 1)
        #expect(cache.statistics.evictions >= 1)
        #expect(cache.bytes <= cache.maxBytes)
        // store checks too (a reply offered by an earlier admits): a key never read is refused when full.
        #expect(!cache.store(bytes("unread"), .value(value), redisKey: bytes("data"), ticket: cache.ticket()))
        #expect(cache.statistics.notAdmitted >= 1)
    }

    /// A victim that wins the comparison keeps its place, and the next newcomer meets the next
    /// entry: entries read often a while ago (their counts not yet halved) do not refuse every
    /// newcomer once CLOCK's hand comes round to them.
    @Test func frequentVictimsDoNotBlockAdmission() {
        let entry = NearCache.entryOverhead + 8 + 4 + 10
        // A sketch sized for far more keys than these: counts are exact (no shared counters).
        let cache = NearCache(maxBytes: entry * 50, expectedEntries: 1 << 16)
        let value = [UInt8](repeating: 1, count: 10)
        func readAll(_ prefix: String, _ count: Int, times: Int) {
            for index in 0..<count {
                for _ in 0..<times { read(cache, bytes("\(prefix)\(index)"), value: value) }
            }
        }
        readAll("fill", 50, times: 2)
        #expect(cache.count == 50)
        // Five entries read often, then no more.
        readAll("fill", 5, times: 10)
        // Newcomers read four times replace the other 45 (the hand clears the five's marks on its way).
        readAll("first", 45, times: 4)
        // Newcomers read five times: the five (read twelve times) win against them, the entries
        // read four times do not.
        readAll("second", 20, times: 5)
        #expect(cache.admissionHalvings == 0)
        let admitted = (0..<20).filter { cache.lookup(bytes("second\($0)")) != nil }.count
        #expect(admitted >= 15, "\(admitted) of 20 newcomers admitted")
        #expect((0..<5).allSatisfy { cache.lookup(bytes("fill\($0)")) != nil })
        #expect(cache.bytes <= cache.maxBytes)
    }

    /// A prepared answer is attached only to an entry read often lately.
    @Test func attachmentsGoToEntriesReadOften() {
        let cache = NearCache(maxBytes: 1 << 20)
        let key = bytes("k")
        read(cache, key, value: bytes("v"))
        read(cache, key, value: bytes("v"))          // stored at its second read
        #expect(cache.lookup(key) != nil)             // third read: a hit, but not read often enough yet
        cache.attach(Prepared(), bytes: 500)
        #expect(cache.attachment == nil)
        var hits = 1
        while cache.frequency(of: key) < NearCache.attachmentFrequency {
            _ = cache.lookup(key)
            hits += 1
            #expect(hits < 20)
        }
        _ = cache.lookup(key)
        let bytesBefore = cache.bytes
        cache.attach(Prepared(), bytes: 500)
        #expect(cache.attachment is Prepared)
        #expect(cache.bytes == bytesBefore + 500)
        cache.invalidate(redisKey: bytes("data"))
        #expect(cache.bytes == 0)
    }

    /// A caller that answers from the attachment gets no copy of an attached entry's value; a caller
    /// that needs the value, and every entry without an attachment, get the value itself.
    @Test func anAttachedHitSkipsTheValueOnlyWhenTheAttachmentSuffices() {
        let cache = NearCache(maxBytes: 1 << 20)
        let hot = bytes("hot"), cold = bytes("cold"), empty = bytes("empty")
        for (key, value) in [(hot, bytes("value of hot")), (cold, bytes("value of cold")), (empty, [])] {
            read(cache, key, value: value)
            read(cache, key, value: value)
        }
        while cache.frequency(of: hot) < NearCache.attachmentFrequency { _ = cache.lookup(hot) }
        #expect(cache.lookup(hot, attachmentSuffices: true) == .value(bytes("value of hot")))  // not attached yet
        cache.attach(Prepared(), bytes: 500)
        #expect(cache.lookup(hot, attachmentSuffices: true) == .value([]))
        #expect(cache.attachment is Prepared)
        #expect(cache.lookup(hot) == .value(bytes("value of hot")))
        #expect(cache.attachment is Prepared)
        #expect(cache.lookup(cold, attachmentSuffices: true) == .value(bytes("value of cold")))
        #expect(cache.attachment == nil)
        #expect(cache.lookup(empty, attachmentSuffices: true) == .value([]))
        #expect(cache.attachment == nil)
        // A write drops the entry with its attachment: the next read of it is a miss, not an empty value.
        cache.invalidate(redisKey: bytes("data"))
        #expect(cache.lookup(hot, attachmentSuffices: true) == nil)
    }

    /// A whole flush's emptied tables go to the owner's `elsewhere` when they are big (their
    /// return to the system would stop the worker), and are freed in place when they are small.
    @Test func aBigFlushsEmptiedTablesAreFreedWhereTheOwnerSays() {
        let cache = NearCache(maxBytes: 1 << 26, expectedEntries: 1 << 16)
        var handedOver: [@Sendable () -> Void] = []
        cache.elsewhere = { handedOver.append($0) }
        cache.makeElsewhereFrom = .max      // only what is freed is handed over here
        func fillFlushAndRelease(_ count: Int) {
            for i in 0..<count { cache.store(bytes("key\(i)"), .value(bytes("value")), redisKey: bytes("data"), ticket: cache.ticket()) }
            #expect(cache.count == count)
            cache.invalidate(redisKey: bytes("data"))
            var calls = 0
            while cache.hasRetired {
                cache.releaseRetired()
                calls += 1
            }
            #expect(calls > count / NearCache.releaseBatch)
        }
        fillFlushAndRelease(1_000)          // ~50 KB of tables: freed here
        #expect(handedOver.isEmpty)
        fillFlushAndRelease(60_000)         // a 131,072-bucket index, 60,000 slots: ~5.6 MB
        #expect(handedOver.count == 1)
        cache.freeElsewhereFrom = 64 << 20
        fillFlushAndRelease(60_000)
        #expect(handedOver.count == 1)
        for free in handedOver { free() }
        // The cache goes on as before.
        cache.store(bytes("k"), .value(bytes("v")), redisKey: bytes("data"), ticket: cache.ticket())
        #expect(cache.lookup(bytes("k")) == .value(bytes("v")))
    }

    /// A cache whose big index tables are made on other threads, for real, answers every key right
    /// through its growths, a whole flush and the refill after it.
    @Test func tablesMadeElsewhereKeepEveryAnswerRight() {
        let cache = NearCache(maxBytes: 1 << 28)
        cache.elsewhere = { work in Thread.detachNewThread { work() } }
        for round in 0..<2 {
            for i in 0..<70_000 {
                cache.store(bytes("key\(i)"), .value(bytes("value\(i)/\(round)")), redisKey: bytes("data"), ticket: cache.ticket())
            }
            #expect(cache.count == 70_000)
            var wrong = 0
            for i in 0..<70_000 where cache.lookup(bytes("key\(i)")) != .value(bytes("value\(i)/\(round)")) { wrong += 1 }
            #expect(wrong == 0)
            cache.invalidate(redisKey: bytes("data"))
            #expect(cache.lookup(bytes("key0")) == nil)
            while cache.hasPendingWork { cache.doPendingWork() }
        }
    }

    final class Prepared {}

    final class Counted {
        nonisolated(unsafe) static var alive = 0
        init() { Counted.alive += 1 }
        deinit { Counted.alive -= 1 }
    }

    /// A whole flush (the `hash` layout's invalidation on every write) drops every entry at once,
    /// but frees their memory a batch per `releaseRetired` call: the worker keeps answering
    /// instead of freeing hundreds of thousands of entries in one go. Nothing retired is found.
    @Test func aWholeFlushFreesItsEntriesABatchAtATime() {
        let cache = NearCache(maxBytes: 1 << 24, expectedEntries: 1 << 16)
        let keys = (0..<3_000).map { bytes("key\($0)") }
        for key in keys { cache.store(key, .value(bytes("value")), redisKey: bytes("data"), ticket: cache.ticket()) }
        // Prepared answers on some entries, to watch when the retired ones are released.
        for key in keys.prefix(100) {
            while cache.frequency(of: key) < NearCache.attachmentFrequency { _ = cache.lookup(key) }
            _ = cache.lookup(key)
            cache.attach(Counted(), bytes: 100)
        }
        #expect(Counted.alive == 100)
        cache.invalidate(redisKey: bytes("data"))
        #expect(cache.count == 0 && cache.bytes == 0)
        #expect(keys.allSatisfy { cache.lookup($0) == nil })
        #expect(cache.hasRetired && cache.retiredSlots == 3_000)
        // New entries meanwhile are the cache's; the retired ones are not found again.
        cache.store(keys[0], .value(bytes("new")), redisKey: bytes("data"), ticket: cache.ticket())
        #expect(cache.lookup(keys[0]) == .value(bytes("new")) && cache.count == 1)
        var calls = 0
        while cache.hasRetired {
            let before = cache.retiredSlots
            cache.releaseRetired(limit: 500)
            calls += 1
            #expect(before - cache.retiredSlots <= 500)
            #expect(calls < 100, "releasing never ends")
            if calls == 3 { #expect(cache.retiredSlots == 1_500 && Counted.alive > 0) }
        }
        #expect(calls >= 6, "\(calls) calls freed 3,000 entries: not a batch at a time")
        #expect(Counted.alive == 0 && cache.retiredSlots == 0)
        #expect(cache.lookup(keys[0]) == .value(bytes("new")))
        #expect(cache.bytes <= cache.maxBytes)
    }

    /// One Redis key per entry, not made of the key (in kvd: keys `buckets` does not share): a whole
    /// flush's table of Redis keys is emptied with its entries, a batch at a time, not freed in one
    /// go once they are (350 ms for 475,000).
    @Test func aWholeFlushFreesItsRedisKeysWithItsEntries() {
        let cache = NearCache(maxBytes: 1 << 24, expectedEntries: 1 << 16)
        let keys = (0..<3_000).map { bytes("key\($0)") }
        func redisKey(_ index: Int) -> [UInt8] { bytes("bucket\(index)") }
        for (index, key) in keys.enumerated() { cache.store(key, .value(bytes("value")), redisKey: redisKey(index), ticket: cache.ticket()) }
        cache.flush()
        #expect(cache.retiredRedisKeys == 3_000)
        cache.releaseRetired(limit: 500)
        #expect(cache.retiredRedisKeys == 2_500 && cache.retiredSlots == 2_500)
        while cache.hasRetired { cache.releaseRetired(limit: 500) }
        #expect(cache.retiredRedisKeys == 0)
        // Invalidations of Redis keys retired meanwhile, and new entries, work as before.
        cache.store(keys[0], .value(bytes("new")), redisKey: redisKey(0), ticket: cache.ticket())
        cache.invalidate(redisKey: redisKey(1))
        #expect(cache.lookup(keys[0]) == .value(bytes("new")) && cache.count == 1)
    }

    /// The `string` layout's Redis key is a prefix and the key: the cache keeps no copy of it and
    /// no list for it (counted without it), and an invalidation finds its entry by its own bytes.
    /// One prefix at a time is derived; entries under another are kept as any Redis key is.
    @Test func aRedisKeyMadeOfAPrefixAndTheKeyIsNotKept() {
        let cache = NearCache(maxBytes: 1 << 20)
        let keys = ["k1", "k2", "k3"].map(bytes)
        for key in keys { cache.store(key, .value(bytes("vv")), redisKey: bytes("p:") + key, ticket: cache.ticket()) }
        #expect(cache.bytes == 3 * (NearCache.entryOverhead + 2 + 2))
        cache.invalidate(redisKey: bytes("k2"))        // not a Redis key of theirs
        cache.invalidate(redisKey: bytes("p:"))
        cache.invalidate(redisKey: bytes("p:k22"))
        #expect(cache.count == 3)
        cache.invalidate(redisKey: bytes("p:k2"))
        #expect(cache.lookup(keys[1]) == nil && cache.count == 2)
        #expect(cache.bytes == 2 * (NearCache.entryOverhead + 2 + 2))
        // Another prefix while entries are derived from "p:": kept and counted like a bucket's key.
        cache.store(bytes("k4"), .value(bytes("vv")), redisKey: bytes("q:k4"), ticket: cache.ticket())
        #expect(cache.bytes == 3 * (NearCache.entryOverhead + 2 + 2) + 4)
        cache.invalidate(redisKey: bytes("p:k4"))
        #expect(cache.lookup(bytes("k4")) == .value(bytes("vv")))
        cache.invalidate(redisKey: bytes("q:k4"))
        #expect(cache.lookup(bytes("k4")) == nil)
        // A new value of a derived key replaces its entry; the last derived entries go.
        cache.store(keys[0], .value(bytes("new")), redisKey: bytes("p:k1"), ticket: cache.ticket())
        #expect(cache.lookup(keys[0]) == .value(bytes("new")) && cache.count == 2)
        cache.invalidate(redisKey: bytes("p:k1"))
        cache.invalidate(redisKey: bytes("p:k3"))
        #expect(cache.count == 0 && cache.bytes == 0)
        // With none derived any more, the next prefix is the one derived.
        cache.store(bytes("k5"), .value(bytes("vv")), redisKey: bytes("q:k5"), ticket: cache.ticket())
        #expect(cache.bytes == NearCache.entryOverhead + 2 + 2)
        cache.invalidate(redisKey: bytes("q:k5"))
        #expect(cache.count == 0 && cache.bytes == 0)
        // A reply overtaken by its derived key's invalidation is refused, as any.
        let ticket = cache.ticket()
        cache.invalidate(redisKey: bytes("q:k6"))
        #expect(!cache.store(bytes("k6"), .value(bytes("old")), redisKey: bytes("q:k6"), ticket: ticket))
    }

    /// A partial flush naming more than `partialFlushBatch` entries (a cluster node's share of a
    /// full cache) drops them a batch per `doPendingWork` call, so the worker is not stopped for
    /// ~1 µs per entry at once; meanwhile no named entry is served, the others are, and flushes,
    /// stores and invalidations that come during the sweep keep the accounting exact.
    @Test func aLargePartialFlushDropsABatchAtATimeAndServesNoneOfItMeanwhile() {
        func key(_ index: Int) -> [UInt8] { bytes("key\(100_000 + index)") }
        func store(_ cache: NearCache, _ index: Int, value: String = "value") {
            cache.store(key(index), .value(bytes(value)), redisKey: key(index), ticket: cache.ticket(), source: index % 3, group: index % 7)
        }
        let cache = NearCache(maxBytes: 1 << 24, expectedEntries: 1 << 16)
        cache.partialFlushBatch = 100
        for index in 0..<3_000 { store(cache, index) }
        // What the cache holds at the end: every entry not read from source 1 nor in group 3.
        let kept = (0..<3_000).filter { $0 % 3 != 1 && $0 % 7 != 3 }
        let expected = NearCache(maxBytes: 1 << 24, expectedEntries: 1 << 16)
        for index in kept { store(expected, index) }

        cache.flush(source: 1)
        #expect(cache.isSweeping && cache.hasPendingWork && cache.count == 3_000)
        // Named entries miss at once (and go), before any pending work; the rest still hit.
        for index in 0..<300 { #expect((cache.lookup(key(index)) == nil) == (index % 3 == 1), "\(index)") }
        #expect(cache.count == 2_900)
        // Pending work drops at most a batch per call.
        cache.doPendingWork()
        #expect(cache.isSweeping && cache.count < 2_900 && cache.count >= 2_800)
        // A small partial flush during the sweep drops its entries at once, beside it.
        for index in 0..<10 {
            cache.store(bytes("other\(index)"), .value(bytes("v")), redisKey: bytes("other\(index)"), ticket: cache.ticket(), source: 5, group: 0)
        }
        let withOthers = cache.count
        cache.flush(source: 5)
        #expect(cache.count == withOthers - 10 && cache.isSweeping)
        // A second big partial flush during the sweep joins it.
        cache.flush(groups: { $0 == 3 })
        for index in 0..<3_000 where index % 7 == 3 { #expect(cache.lookup(key(index)) == nil, "\(index)") }
        // Stores, invalidations and hits meanwhile.
        cache.invalidate(redisKey: key(6))
        store(cache, 6, value: "new")
        #expect(cache.lookup(key(6)) == .value(bytes("new")))
        var calls = 0
        while cache.hasPendingWork {
            let before = cache.count
            cache.doPendingWork()
            calls += 1
            #expect(before - cache.count <= 100)
            #expect(calls < 100, "the sweep never ends")
        }
        #expect(calls >= 5)
        for index in 0..<3_000 where index % 3 == 1 || index % 7 == 3 { #expect(cache.lookup(key(index)) == nil, "\(index)") }
        for index in kept { #expect(cache.lookup(key(index)) == .value(bytes(index == 6 ? "new" : "value")), "\(index)") }
        #expect(cache.count == kept.count && cache.bytes == expected.bytes - 2)
        // A whole flush during a sweep ends it: nothing is found, nothing is left to drop.
        for index in 0..<3_000 where index % 3 == 1 { store(cache, index) }
        cache.flush(source: 1)
        #expect(cache.isSweeping)
        cache.flush()
        #expect(!cache.isSweeping && cache.count == 0 && cache.bytes == 0)
        while cache.hasPendingWork { cache.doPendingWork() }
        for index in kept { #expect(cache.lookup(key(index)) == nil) }
    }

    /// A partial flush naming few entries drops them at once (no sweep).
    @Test func aSmallPartialFlushDropsAtOnce() {
        let cache = NearCache(maxBytes: 1 << 20)
        for index in 0..<50 {
            cache.store(bytes("k\(index)"), .value(bytes("v")), redisKey: bytes("k\(index)"), ticket: cache.ticket(), source: index % 2)
        }
        cache.flush(source: 0)
        #expect(cache.count == 25 && !cache.isSweeping && !cache.hasPendingWork)
    }

    /// Hits are counted in the entry, not in the sketch; when a write drops the entry, its count
    /// goes back to the sketch, so a hot key gets back into a full cache at its next read.
    @Test func aHotKeyWrittenToGetsBackIntoAFullCache() {
        let entry = NearCache.entryOverhead + 8 + 4 + 10
        let cache = NearCache(maxBytes: entry * 50, expectedEntries: 1 << 16)
        let value = [UInt8](repeating: 1, count: 10)
        let hot = bytes("hot-key")
        for _ in 0..<15 { read(cache, hot, value: value, redisKey: hot) }
        #expect(cache.frequency(of: hot) == 15)
        // Fill the rest with keys read three times: stored at the second read, counted 3.
        var index = 0
        func fill() {
            while cache.bytes + entry <= cache.maxBytes {
                for _ in 0..<3 { read(cache, bytes("fill\(index)"), value: value, redisKey: bytes("fill\(index)")) }
                index += 1
            }
        }
        fill()
        cache.invalidate(redisKey: hot)                  // a write to the hot key
        #expect(cache.lookup(hot) == nil)
        #expect(cache.frequency(of: hot) == 15)
        fill()                                           // its room taken: the cache is full again
        let stores = cache.statistics.stores
        // Read once more: without its count back in the sketch it would count 3, no more than
        // the victims', and be refused.
        read(cache, hot, value: value, redisKey: hot)
        #expect(cache.lookup(hot) != nil)
        #expect(cache.statistics.stores == stores + 1 && cache.statistics.evictions >= 1)
        #expect(cache.bytes <= cache.maxBytes)
    }

    @Test func theInvalidationMemoryIsBoundedAndStaysSafe() {
        let cache = NearCache(maxBytes: 1 << 20)
        let ticket = cache.ticket()
        for index in 0..<10_000 { cache.invalidate(redisKey: bytes("x\(index)")) }
        // x0's invalidation may have been forgotten, but the read that preceded it is still refused.
        #expect(!cache.store(bytes("x0"), .value(bytes("old")), redisKey: bytes("x0"), ticket: ticket))
    }

    @Test func aValueLargerThanTheCacheIsNotStored() {
        let cache = NearCache(maxBytes: 200)
        #expect(!cache.store(bytes("k"), .value([UInt8](repeating: 0, count: 500)), redisKey: bytes("k"), ticket: cache.ticket()))
        #expect(cache.bytes == 0)
    }

    @Test func replacingAValueKeepsTheAccountingExact() {
        let cache = NearCache(maxBytes: 1 << 20)
        cache.store(bytes("k"), .value(bytes("12345")), redisKey: bytes("h"), ticket: cache.ticket())
        cache.store(bytes("k"), .value(bytes("1")), redisKey: bytes("h"), ticket: cache.ticket())
        #expect(cache.count == 1)
        #expect(cache.bytes == NearCache.entryOverhead + 1 + 1 + 1)
        cache.invalidate(redisKey: bytes("h"))
        #expect(cache.bytes == 0)
    }
}

@Suite("Near-cache admission")
struct NearCacheAdmissionTests {
    @Test func aKeyIsOfferedFromItsSecondRecentRead() {
        let cache = NearCache(maxBytes: 64 * 250)          // about 64 entries: halving every 640 reads
        let a = Array("a".utf8)
        #expect(!cache.admits(a))
        #expect(cache.admits(a))
        for _ in 0..<10 { #expect(cache.admits(a)) }
        #expect(cache.frequency(of: a) == 12)
        // Old reads fade: at 640 reads every count is halved (and the sample's count with them),
        // and halved again 320 reads later.
        var reads = 0
        while cache.admissionHalvings < 2 {
            _ = cache.admits(Array("b".utf8))
            reads += 1
        }
        #expect(reads == 640 + 320 - 12)
        // 12 = 11 counted + the doorkeeper's first read, which a halving forgets: 11 → 5 → 2.
        #expect(cache.frequency(of: a) == 2)
    }

    @Test func twoRepliesForOneKeyKeepOneEntry() {
        let cache = NearCache(maxBytes: 1 << 20)
        let first = cache.ticket(), second = cache.ticket()
        #expect(cache.store(Array("k".utf8), .value(Array("1".utf8)), redisKey: Array("data".utf8), ticket: first))
        #expect(cache.store(Array("k".utf8), .value(Array("2".utf8)), redisKey: Array("data".utf8), ticket: second))
        #expect(cache.count == 1)
        #expect(cache.lookup(Array("k".utf8)) == .value(Array("2".utf8)))
        cache.invalidate(redisKey: Array("data".utf8))
        #expect(cache.count == 0 && cache.bytes == 0)
    }
}
