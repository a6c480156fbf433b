import KVDCache
import Testing

/// The near-cache against a model of Redis, under random reads, late replies, writes (with their
/// invalidations) and flushes: whatever the admission and eviction did, a hit is always Redis's
/// current value, and the cache stays within its bound with its counts consistent.
@Suite("Near-cache model")
struct NearCacheModelTests {
    struct Reply {
        let key: Int
        let value: [UInt8]?
        let ticket: NearCache.Ticket
    }

    func run(seed: UInt64, keys: Int, bucketsPerKey: Int, maxBytes: Int) {
        var random = SeededGenerator(seed: seed)
        let cache = NearCache(maxBytes: maxBytes)
        var redis: [Int: [UInt8]] = [:]              // the model: what Redis holds now
        var version = 0
        var inFlight: [Reply] = []
        func bytes(_ key: Int) -> [UInt8] { Array("key-\(key)".utf8) }
        func redisKey(_ key: Int) -> [UInt8] { Array("bucket-\(key / bucketsPerKey)".utf8) }
        for step in 0..<60_000 {
            let key = Int.random(in: 0..<keys, using: &random)
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<60:                                 // a read: a hit must be Redis's value now
                if let entry = cache.lookup(bytes(key)) {
                    switch entry {
                    case .value(let value): #expect(redis[key] == value, "step \(step): key \(key) stale")
                    case .missing: #expect(redis[key] == nil, "step \(step): key \(key) exists")
                    }
                } else if cache.admits(bytes(key)) {
                    inFlight.append(Reply(key: key, value: redis[key], ticket: cache.ticket()))
                }
            case 60..<85:                                 // a reply arrives (in any order)
                guard !inFlight.isEmpty else { continue }
                let reply = inFlight.remove(at: Int.random(in: 0..<inFlight.count, using: &random))
                cache.store(bytes(reply.key), reply.value.map { .value($0) } ?? .missing,
                            redisKey: redisKey(reply.key), ticket: reply.ticket)
            case 85..<99:                                 // a write, and Redis's invalidation of its Redis key
                version += 1
                if Int.random(in: 0..<5, using: &random) == 0 {
                    redis[key] = nil
                } else {
                    redis[key] = Array(repeating: UInt8(version & 0x7f), count: Int.random(in: 1...300, using: &random))
                }
                cache.invalidate(redisKey: redisKey(key))
            default:                                      // now and then: tracking lost, FLUSHALL, a reload
                if Int.random(in: 0..<50, using: &random) == 0 { cache.flush() }
            }
            #expect(cache.bytes <= cache.maxBytes)
            #expect(cache.bytes >= 0 && (cache.count == 0) == (cache.bytes == 0))
        }
        let statistics = cache.statistics
        #expect(statistics.hits + statistics.misses > 30_000)
        #expect(statistics.stores > 0 && statistics.refusedStale > 0)
        // One key per Redis key and a small cache: it fills between writes, so admission and
        // eviction are exercised (with buckets, or the hash layout's one key, writes keep emptying it).
        if bucketsPerKey == 1 && maxBytes < 64 << 10 { #expect(statistics.evictions > 0 && statistics.notAdmitted > 0) }
    }

    @Test(arguments: [(UInt64(1), 50, 1, 1 << 20), (2, 2_000, 1, 40_000), (3, 2_000, 25, 40_000), (4, 500, 500, 20_000)])
    func hitsAreAlwaysRedissCurrentValue(seed: UInt64, keys: Int, bucketsPerKey: Int, maxBytes: Int) {
        run(seed: seed, keys: keys, bucketsPerKey: bucketsPerKey, maxBytes: maxBytes)
    }
}

/// A small deterministic generator (SplitMix64), so that a failing seed fails again.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
