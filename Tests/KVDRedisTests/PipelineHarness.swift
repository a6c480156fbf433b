import KVDRedis
import KVDSettings

#if canImport(Glibc)
import Glibc
#endif

/// Drives a `RedisPipeline` the way a kvd worker does (poll its sockets, handle, check deadlines,
/// flush once per turn) and records every result and event, in order.
final class PipelineHarness {
    private(set) var results: [(token: LookupToken, result: LookupResult)] = []
    private(set) var events: [PipelineEvent] = []
    private(set) var pipeline: RedisPipeline!

    /// - Parameter consume: runs for each result as it completes (a consumer's own work).
    init(_ settings: RedisSettings, consume: @escaping (LookupToken, LookupResult) -> Void = { _, _ in }) {
        pipeline = RedisPipeline(settings: settings) { [unowned self] token, result in
            results.append((token, result))
            consume(token, result)
        } observe: { [unowned self] event in
            events.append(event)
        }
    }

    /// The result of the lookup named `token`, if it completed.
    func result(_ token: Int) -> LookupResult? {
        results.first { $0.token == LookupToken(token) }?.result
    }

    /// How many connection failures were reported (one per connect attempt or broken connection).
    var failures: Int {
        events.count { if case .connectionFailed = $0 { true } else { false } }
    }

    func lookup(_ key: String, token: Int, nowMs: Int64 = Clock.nowMs()) {
        pipeline.lookup(key: Array(key.utf8), token: LookupToken(token), nowMs: nowMs)
    }

    /// One loop turn: flush what was queued, wait up to `maxWaitMs` for the sockets (less when a
    /// deadline is due), handle what they report, check deadlines. `alsoEachTurn` runs first (a
    /// scripted server serves its side there).
    func turn(maxWaitMs: Int64 = 5, alsoEachTurn: () -> Void = {}) {
        alsoEachTurn()
        pipeline.flush(nowMs: Clock.nowMs())
        var descriptors: [pollfd] = []
        pipeline.appendPollDescriptors(to: &descriptors)
        var waitMs = maxWaitMs
        if let deadline = pipeline.nextDeadlineMs() { waitMs = max(0, min(waitMs, deadline - Clock.nowMs())) }
        _ = poll(&descriptors, nfds_t(descriptors.count), Int32(waitMs))
        let now = Clock.nowMs()
        pipeline.handle(descriptors[...], nowMs: now)
        pipeline.checkDeadlines(nowMs: now)
    }

    /// Runs turns until `condition` holds or `timeoutMs` pass.
    /// - Returns: whether the condition held.
    @discardableResult
    func run(timeoutMs: Int64 = 10_000, alsoEachTurn: () -> Void = {}, until condition: () -> Bool) -> Bool {
        let deadline = Clock.nowMs() + timeoutMs
        while !condition() {
            if Clock.nowMs() >= deadline { return false }
            turn(alsoEachTurn: alsoEachTurn)
        }
        return true
    }

    /// Runs turns for `milliseconds`, whatever happens.
    func run(forMs milliseconds: Int64, alsoEachTurn: () -> Void = {}) {
        let end = Clock.nowMs() + milliseconds
        while Clock.nowMs() < end { turn(alsoEachTurn: alsoEachTurn) }
    }
}

/// Monotonic milliseconds, as kvd's workers count them.
enum Clock {
    static func nowMs() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
    }
}

extension RedisSettings {
    /// Settings for a test server on 127.0.0.1:`port`, with deadlines a loaded machine still meets.
    static func local(port: Int, layout: StorageLayout = .hash, prefix: String = "") -> RedisSettings {
        var settings = RedisSettings()
        settings.port = port
        settings.layout = layout
        settings.prefix = prefix
        settings.connectTimeoutMs = 5000
        settings.commandTimeoutMs = 5000
        return settings
    }
}
