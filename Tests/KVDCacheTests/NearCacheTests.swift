import KVDCache
import Testing

@Suite("Near-cache")
struct NearCacheTests {
    func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

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

    @Test func staysWithinItsByteBoundAndKeepsTheHotKeys() {
        let entry = NearCache.entryOverhead + 8 + 4 + 100
        let cache = NearCache(maxBytes: entry * 100)
        let value = [UInt8](repeating: 7, count: 100)
        // Ten hot keys, read between every cold insert, survive a stream of 10,000 cold keys.
        for round in 0..<10_000 {
            for hot in 0..<10 {
                let key = bytes("hot-\(hot)")
                if cache.lookup(key) == nil { cache.store(key, .value(value), redisKey: bytes("data"), ticket: cache.ticket()) }
            }
            let cold = bytes("c\(round)")
            cache.store(cold, .value(value), redisKey: bytes("data"), ticket: cache.ticket())
            #expect(cache.bytes <= cache.maxBytes)
        }
        let hotMissesBefore = cache.statistics.misses
        for hot in 0..<10 {
            #expect(cache.lookup(bytes("hot-\(hot)")) != nil)
        }
        #expect(cache.statistics.misses == hotMissesBefore)
        #expect(cache.statistics.evictions > 9_000)
        // Every value under one Redis key: invalidating it empties the cache (the hash layout).
        cache.invalidate(redisKey: bytes("data"))
        #expect(cache.count == 0 && cache.bytes == 0)
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
        cache.store(bytes("k"), .value(bytes("12345")), redisKey: bytes("k"), ticket: cache.ticket())
        cache.store(bytes("k"), .value(bytes("1")), redisKey: bytes("k"), ticket: cache.ticket())
        #expect(cache.count == 1)
        #expect(cache.bytes == NearCache.entryOverhead + 1 + 1 + 1)
        cache.invalidate(redisKey: bytes("k"))
        #expect(cache.bytes == 0)
    }
}

@Suite("Near-cache admission")
struct NearCacheAdmissionTests {
    @Test func aKeyIsAdmittedAtItsSecondReadWithinTheWindow() {
        let cache = NearCache(maxBytes: 64 * 300)          // a window of 64 first reads
        #expect(!cache.admits(Array("a".utf8)))
        #expect(cache.admits(Array("a".utf8)))
        #expect(cache.admits(Array("a".utf8)))
        // About 64 other first reads end the window: "a" must be read twice again.
        var index = 0
        while cache.admissionWindows == 0 {
            _ = cache.admits(Array("k\(index)".utf8))
            index += 1
        }
        #expect(index >= 63)
        #expect(!cache.admits(Array("a".utf8)))
        #expect(cache.admits(Array("a".utf8)))
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
