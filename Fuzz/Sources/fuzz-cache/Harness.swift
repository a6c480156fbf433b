// The near-cache (KVDCache.NearCache) driven by a sequence of operations the input spells, against a
// model of Redis: reads (a hit, or a miss whose read may be offered), replies arriving late and in
// any order, writes with Redis's invalidation of their Redis key, and flushes. Properties: a hit is
// always Redis's current value (or its current absence), the cache never holds more than its bound,
// and it is empty exactly when it holds no bytes. The input chooses the keys, the Redis key each
// belongs to (one key each, shared buckets, or the hash layout's one key), the value sizes and the
// order of replies, so admission (TinyLFU), CLOCK eviction, attachments and the read/invalidate
// tickets meet in every order the fuzzer can find. Cluster mode too: each key is read through
// one of three nodes (its source) and lies in one of five slots (its group); a node's tracking can
// be lost (its entries dropped, its writes unseen until it is back) and a slot can move (a write
// kvd's tracking does not see, then the slot's keys dropped). Whole flushes leave their entries to be
// freed a batch at a time, and partial flushes of more than a few entries leave theirs to a sweep
// that drops a batch at a time; nothing retired or named by a flush may be found again.
// Every input runs twice: once with every table made and freed where the cache runs, once with
// the index's next tables ordered ahead (from 16 buckets on, not 65,536) and the emptied tables
// handed over to "another thread" (`NearCache.elsewhere`), whose queued work the input runs
// later, in any order, or never: an order made after its growth, made before it, or let go by a
// flush, and a table freed after the cache moved on.
import FuzzSupport
import KVDCache

final class Prepared {}

func fuzzCache(_ input: [UInt8], elsewhere: Bool) {
    guard input.count >= 2 else { return }
    // The first byte: the cache's size (1–16 small entries' worth, or 1 MiB) and the layout.
    let maxBytes = input[0] & 0x0f == 0 ? 1 << 20 : Int(input[0] & 0x0f) * (NearCache.entryOverhead + 64)
    let bucketSize = [1, 4, 1_000][Int(input[0] >> 4) % 3]
    let cache = NearCache(maxBytes: maxBytes)
    // The other thread's work, run when the input says (on this thread: any interleaving of the
    // hand-over is one the real thread can produce, since each piece runs whole under its lock).
    var queued: [@Sendable () -> Void] = []
    if elsewhere {
        cache.makeElsewhereFrom = 16
        cache.freeElsewhereFrom = 0
        cache.elsewhere = { queued.append($0) }
    }
    // Partial flushes of more than 1–4 entries are swept over later operations.
    cache.partialFlushBatch = 1 + Int(input[0] >> 6)
    var redis: [Int: [UInt8]] = [:]
    var inFlight: [(key: Int, value: [UInt8]?, ticket: NearCache.Ticket)] = []
    var version: UInt8 = 0
    var untracked: Set<Int> = []
    func source(_ key: Int) -> Int { key % 3 }
    func group(_ key: Int) -> Int { key % 5 }
    func bytes(_ key: Int) -> [UInt8] { Array("k\(key)".utf8) }
    func redisKey(_ key: Int) -> [UInt8] { Array("r\(key / bucketSize)".utf8) }
    var index = 1
    while index + 1 < input.count {
        let operation = input[index], argument = input[index + 1]
        index += 2
        let key = Int(argument & 0x1f)
        switch operation % 11 {
        case 0, 1, 2:                                  // read
            if let entry = cache.lookup(bytes(key)) {
                switch entry {
                case .value(let value): check(redis[key] == value, "key \(key): a hit served \(describe(value)), Redis holds \(redis[key].map(describe) ?? "nothing")")
                case .missing: check(redis[key] == nil, "key \(key): a hit said missing, Redis holds \(describe(redis[key]!))")
                }
                if operation & 0x80 != 0 { cache.attach(Prepared(), bytes: Int(argument)) }
            } else if !untracked.contains(source(key)), cache.admits(bytes(key)) {
                inFlight.append((key, redis[key], cache.ticket()))
            }
        case 3, 4:                                     // a reply arrives, chosen by the argument
            guard !inFlight.isEmpty else { continue }
            let reply = inFlight.remove(at: Int(argument) % inFlight.count)
            cache.store(bytes(reply.key), reply.value.map { .value($0) } ?? .missing, redisKey: redisKey(reply.key), ticket: reply.ticket,
                        source: source(reply.key), group: group(reply.key))
        case 5, 6:                                     // a write (or a delete), then its invalidation
            version &+= 1
            redis[key] = operation & 0x40 != 0 ? nil : [UInt8](repeating: version, count: Int(operation >> 3) * 8 + 1)
            // Written on a node whose tracking is lost: no invalidation reaches kvd.
            if !untracked.contains(source(key)) { cache.invalidate(redisKey: redisKey(key)) }
        case 7:                                        // tracking lost everywhere, FLUSHALL, a reload
            cache.flush()
        case 8:                                        // one node's tracking lost: what was read there goes
            untracked.insert(source(key))
            cache.flush(source: source(key))
        case 9:                                        // that node's tracking is back
            untracked.remove(source(key))
        default:                                       // the key's slot moved: a write on its new node kvd does
            version &+= 1                              // not track, then the map change drops the slot's keys
            redis[key] = [UInt8](repeating: version, count: 3)
            cache.flush(groups: { $0 == group(key) })
        }
        // What flushes left (a sweep's entries, whole flushes' memory) goes a batch at a time, between any two operations.
        if operation & 0x20 != 0 {
            if argument & 0x80 != 0 { cache.doPendingWork() } else { cache.releaseRetired(limit: Int(argument & 7) + 1) }
        }
        // The other thread makes an ordered table, or frees what it was handed, chosen by the argument.
        if operation & 0x10 != 0, !queued.isEmpty {
            queued.remove(at: Int(argument) % queued.count)()
        }
        check(cache.bytes <= cache.maxBytes, "the cache holds \(cache.bytes) bytes, over its bound of \(cache.maxBytes)")
        check((cache.count == 0) == (cache.bytes == 0), "\(cache.count) entries in \(cache.bytes) bytes")
    }
    // The other thread ends what it was given (tables made late are freed by their maker), and
    // every key the cache still holds is still Redis's.
    while !queued.isEmpty { queued.removeFirst()() }
    for key in 0..<32 where !untracked.contains(source(key)) {
        switch cache.lookup(bytes(key)) {
        case .value(let value)?: check(redis[key] == value, "key \(key): at the end a hit served \(describe(value)), Redis holds \(redis[key].map(describe) ?? "nothing")")
        case .missing?: check(redis[key] == nil, "key \(key): at the end a hit said missing, Redis holds \(describe(redis[key]!))")
        case nil: break
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzInput(data, size)
    fuzzCache(input, elsewhere: false)
    fuzzCache(input, elsewhere: true)
    return 0
}
