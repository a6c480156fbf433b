import KVBench
import Dispatch
import KVDCache

#if canImport(Glibc)
import Glibc
#endif

func environment(_ name: String, _ fallback: Int) -> Int {
    getenv(name).flatMap { Int(String(cString: $0)) } ?? fallback
}

let pairs = environment("PAIRS", 1_000_000)
let maxBytes = environment("MAX_BYTES", 128 << 20)
let requests = environment("REQUESTS", 2_000_000)
let rounds = environment("ROUNDS", 3)
let pollute = environment("POLLUTE_KB", 16) << 10

/// Seed-like pairs: 36-byte keys (hex text), 50-byte values. A key is made afresh for each
/// request, as kvd decodes it from the request (a table of a million keys would add a cold read
/// of its own to every lookup).
@inline(__always)
func key(_ index: Int) -> [UInt8] {
    var key = [UInt8](repeating: UInt8(ascii: "0"), count: 36)
    var rest = index
    for position in (0..<36).reversed() where rest != 0 {
        let digit = UInt8(truncatingIfNeeded: rest & 15)
        key[position] = digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10
        rest >>= 4
    }
    return key
}
let value = [UInt8](repeating: UInt8(ascii: "v"), count: 50)
let redisKey = Array("data".utf8)

/// Other memory a request touches: read one byte per cache line of `pollute` bytes, from a 16 MiB area.
final class OtherMemory {
    var area = [UInt8](repeating: 1, count: 16 << 20)
    var offset = 0
    @inline(never)
    func touch() -> Int {
        var sum = 0
        for _ in 0..<(pollute / 64) {
            sum &+= Int(area[offset])
            offset = (offset + 64) & (area.count - 1)
        }
        return sum
    }
}

/// One GET as kvd makes it: a hit, or a miss whose reply is offered to the cache when admitted.
@inline(__always)
func get(_ cache: NearCache, _ key: [UInt8]) -> Int {
    if let entry = cache.lookup(key) {
        if case .value(let bytes) = entry { return bytes.count }
        return 0
    }
    if cache.admits(key) { cache.store(key, .value(value), redisKey: redisKey, ticket: cache.ticket()) }
    return 1
}

let zipf = ZipfSampler(count: pairs, exponent: 0.99)
func draws(uniform: Bool, seed: UInt64) -> [Int] {
    var random = SplitMix64(seed: seed)
    return (0..<requests).map { _ in uniform ? random.nextIndex(below: pairs) : zipf.sample(&random) }
}

/// The cache as bench/cache-bench.sh leaves it: the 300,000 hottest keys read six times in order.
func warmCache() -> NearCache {
    let cache = NearCache(maxBytes: maxBytes)
    for _ in 0..<6 { for index in 0..<min(pairs, 300_000) { _ = get(cache, key(index)) } }
    return cache
}

@MainActor func measure(_ name: String, _ body: () -> Int) -> Double {
    let clock = ContinuousClock()
    var sink = 0
    let duration = clock.measure { sink = body() }
    let elapsed = (Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9) / Double(requests)
    if sink == -1 { print(name) }
    return elapsed
}

func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

let other = OtherMemory()
@MainActor func touchOtherMemory() -> Int { other.touch() }
var pollution: [Double] = [], uniform: [Double] = [], skewed: [Double] = []
var hitRates: [String] = []
for round in 0..<rounds {
    let cache = warmCache()
    let uniformDraws = draws(uniform: true, seed: UInt64(round) + 1)
    let zipfDraws = draws(uniform: false, seed: UInt64(round) + 100)
    pollution.append(measure("pollution") { (0..<requests).reduce(0) { sum, _ in sum &+ touchOtherMemory() } })
    var hits = cache.statistics.hits
    uniform.append(measure("uniform") { uniformDraws.reduce(0) { sum, index in sum &+ get(cache, key(index)) &+ touchOtherMemory() } })
    let uniformHits = Double(cache.statistics.hits - hits) / Double(requests)
    hits = cache.statistics.hits
    skewed.append(measure("zipf") { zipfDraws.reduce(0) { sum, index in sum &+ get(cache, key(index)) &+ touchOtherMemory() } })
    let zipfHits = Double(cache.statistics.hits - hits) / Double(requests)
    hitRates.append(String(format: "uniform %.1f%%, Zipf %.1f%%, %d entries", 100 * uniformHits, 100 * zipfHits, cache.count))
}
let base = median(pollution)
print("cache-lookup: \(pairs) pairs, max_bytes \(maxBytes), \(requests) requests per run, \(pollute >> 10) KiB of other memory per request (\(String(format: "%.0f", base)) ns, taken off)")
print("hit rates: \(hitRates.last ?? "")")
print(String(format: "ns per GET, cache work only: uniform %.0f, Zipf 0.99 %.0f   (rounds: uniform %@; Zipf %@)",
             median(uniform) - base, median(skewed) - base,
             uniform.map { String(format: "%.0f", $0 - base) }.joined(separator: " "),
             skewed.map { String(format: "%.0f", $0 - base) }.joined(separator: " ")))

// PARTIAL_FLUSH=1: what a partial flush stops the worker for (kvd: one cluster node's tracking
// lost, its third of the entries dropped); WHOLE_FLUSH=1: what a whole flush does (tracking lost,
// FLUSHALL, a reload) in the `string` layout (one Redis key per entry). One worker's cache filled
// with entries read from three sources; the flush is timed (the call the worker's loop makes),
// then each `doPendingWork()` call until nothing is left (one per loop turn in kvd).
// ELSEWHERE=1: the emptied tables are freed, and the index's big tables made, on another thread,
// as kvd's workers have them (`NearCache.elsewhere`); 0: by the worker's own calls.
// The first fill and the refill print their slowest store (a growth of the index, or of the slots).
for (variable, partial) in [("PARTIAL_FLUSH", true), ("WHOLE_FLUSH", false)] where environment(variable, 0) != 0 {
    func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1e3 + Double(duration.components.attoseconds) / 1e15
    }
    let clock = ContinuousClock()
    for _ in 0..<rounds {
        let cache = NearCache(maxBytes: maxBytes)
        if environment("ELSEWHERE", 1) != 0 { cache.elsewhere = { DispatchQueue.global().async(execute: $0) } }
        var slowestFill = 0.0
        for index in 0..<pairs {
            var stored = false
            slowestFill = max(slowestFill, milliseconds(clock.measure {
                stored = cache.store(key(index), .value(value), redisKey: key(index), ticket: cache.ticket(), source: index % 3)
            }))
            guard stored else { break }
        }
        let before = cache.count
        print(String(format: "filled to %d entries: slowest store %.2f ms", before, slowestFill))
        let flush = clock.measure { if partial { cache.flush(source: 1) } else { cache.flush() } }
        var calls: [Double] = []
        while cache.hasPendingWork { calls.append(milliseconds(clock.measure { cache.doPendingWork() })) }
        calls.sort()
        print(String(format: "%@ flush: %d of %d entries dropped; the flush call %.1f ms, then %d pending-work calls: median %.2f ms, longest %.2f ms, %.1f ms in all",
                     partial ? "partial" : "whole", before - cache.count, before, milliseconds(flush), calls.count,
                     calls.isEmpty ? 0 : calls[calls.count / 2], calls.last ?? 0, calls.reduce(0, +)))
        // The refill to as many entries: its slowest store (an index growth allocates a table) and its time in all.
        var longest = 0.0
        let refill = clock.measure {
            for index in 0..<before {
                let store = milliseconds(clock.measure {
                    _ = cache.store(key(index), .value(value), redisKey: key(index), ticket: cache.ticket(), source: index % 3)
                })
                longest = max(longest, store)
            }
        }
        print(String(format: "  refilled to %d entries: slowest store %.2f ms, %.1f ms in all", cache.count, longest, milliseconds(refill)))
    }
}
