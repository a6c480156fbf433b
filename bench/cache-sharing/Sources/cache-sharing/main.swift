import KVDCache
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

func nowNs() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

let threads = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 2 : 2
let keyCount = 100_000
let lookupsPerThread = 4_000_000
/// Seed-like keys (36-byte UUID text) and 80-byte values.
let keys: [[UInt8]] = (0..<keyCount).map { index in Array(String(format36: index).utf8) }
let value = [UInt8](repeating: UInt8(ascii: "v"), count: 80)

extension String {
    init(format36 index: Int) {
        let digits = String(index, radix: 16)
        self = String(repeating: "0", count: 36 - digits.count) + digits
    }
}

/// A filled cache: every key stored (twice read, so admitted).
func filledCache() -> NearCache {
    let cache = NearCache(maxBytes: 1 << 30)
    for key in keys {
        _ = cache.admits(key)
        _ = cache.admits(key)
        _ = cache.store(key, .value(value), redisKey: key, ticket: cache.ticket())
    }
    return cache
}

/// Each thread's key sequence: a skewed draw (the square of a uniform number favours low ranks).
func sequence(seed: UInt64) -> [Int] {
    var state = seed | 1
    return (0..<lookupsPerThread).map { _ in
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        let uniform = Double(state % 1_000_000) / 1_000_000
        return Int(uniform * uniform * Double(keyCount))
    }
}

final class Box<T>: @unchecked Sendable { var value: T; init(_ value: T) { self.value = value } }

/// Runs `body(thread)` on `threads` threads at once; the mean nanoseconds per lookup.
func run(_ body: @escaping @Sendable (Int) -> Void) -> Double {
    let start = nowNs()
    var ids: [pthread_t] = []
    for thread in 0..<threads {
        let context = Unmanaged.passRetained(Box((thread, body))).toOpaque()
        var id = pthread_t()
        pthread_create(&id, nil, { raw in
            let box = Unmanaged<Box<(Int, @Sendable (Int) -> Void)>>.fromOpaque(raw!).takeRetainedValue()
            box.value.1(box.value.0)
            return nil
        }, context)
        ids.append(id)
    }
    for id in ids { pthread_join(id, nil) }
    return Double(nowNs() - start) / Double(lookupsPerThread)
}

let sequences = (0..<threads).map { sequence(seed: UInt64($0 + 1) &* 0x9E37_79B9_7F4A_7C15) }
let perWorker = (0..<threads).map { _ in Box(filledCache()) }
let shared = Mutex(filledCache())
let sink = Atomic<Int>(0)

print("# \(threads) threads at once, \(lookupsPerThread) hits each over \(keyCount) keys; wall ns per hit per thread")
for round in 1...3 {
    let own = run { thread in
        let cache = perWorker[thread].value
        var found = 0
        for index in sequences[thread] where cache.lookup(keys[index]) != nil { found += 1 }
        sink.add(found, ordering: .relaxed)
    }
    let locked = run { thread in
        var found = 0
        for index in sequences[thread] where shared.withLock({ $0.lookup(keys[index]) }) != nil { found += 1 }
        sink.add(found, ordering: .relaxed)
    }
    print("round \(round): per-worker caches \(Int(own.rounded())) ns, one shared cache behind a Mutex \(Int(locked.rounded())) ns: shared / per-worker = \(Double(Int(locked / own * 100)) / 100)")
}
precondition(sink.load(ordering: .relaxed) == 2 * 3 * threads * lookupsPerThread, "every lookup must hit")
