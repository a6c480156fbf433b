import KVDCache
import KVDRedis
import KVDSettings
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The read/invalidate race against a real Redis, with the order of events scripted: a read is
/// answered by Redis, then the key is written and its invalidation arrives on the subscriber
/// connection, and kvd handles the invalidation before the read's reply (both are waiting on
/// their sockets). The reply carries the old value; it must be delivered (it was Redis's answer)
/// but never stored, or the cache would serve it after the invalidation that should have removed it.
@Suite("Near-cache: read/invalidate race (real Redis)", .serialized)
struct ReadInvalidateRaceTests {
    /// Drives a `CachedLookups` as a kvd worker does, one socket group at a time when asked.
    final class Driver {
        var results: [Int: LookupResult] = [:]
        var lookups: CachedLookups!

        init(port: Int, cache: CacheSettings = .on) {
            var settings = RedisSettings()
            settings.port = port
            settings.connectTimeoutMs = 5000
            settings.commandTimeoutMs = 5000
            lookups = CachedLookups(settings: settings, cache: cache, threads: 1) { [unowned self] token, result in
                results[token.value] = result
            }
        }

        static func nowMs() -> Int64 {
            var time = timespec()
            clock_gettime(CLOCK_MONOTONIC, &time)
            return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
        }

        /// One loop turn over both connections.
        func turn() {
            let now = Self.nowMs()
            lookups.flush(nowMs: now)
            var descriptors: [pollfd] = []
            lookups.appendPollDescriptors(to: &descriptors)
            _ = poll(&descriptors, nfds_t(descriptors.count), 5)
            lookups.handle(descriptors[...], nowMs: Self.nowMs())
            lookups.checkDeadlines(nowMs: Self.nowMs())
        }

        @discardableResult
        func run(until condition: () -> Bool) -> Bool {
            let deadline = Self.nowMs() + 10_000
            while !condition() {
                if Self.nowMs() >= deadline { return false }
                turn()
            }
            return true
        }

        func lookup(_ key: String, token: Int) {
            results[token] = nil
            lookups.lookup(key: Array(key.utf8), token: LookupToken(token), nowMs: Self.nowMs())
        }

        /// Waits (up to 10 s) until one of the sockets `append` lists is readable, without handling it.
        func waitReadable(_ append: (inout [pollfd]) -> Void) -> [pollfd] {
            var descriptors: [pollfd] = []
            append(&descriptors)
            _ = poll(&descriptors, nfds_t(descriptors.count), 10_000)
            return descriptors
        }
    }

    /// Tracking confirmed, and `key` read once (tracked).
    func warmUp(_ driver: Driver) {
        var token = 1000
        #expect(driver.run {
            token += 1
            driver.lookup("warm", token: token)
            return driver.lookups.tracking!.isTracking
        })
    }

    /// Runs the scripted race; returns what a lookup of `k` right after it finds in the cache.
    func race(ignoringTickets: Bool) throws -> (delivered: LookupResult?, cachedAfter: LookupResult?) {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "old"])
        let driver = Driver(port: redis.port)
        warmUp(driver)
        driver.lookups.cache!.ignoresTickets = ignoringTickets
        let pipeline = driver.lookups.pipeline
        let tracking = driver.lookups.tracking!

        driver.lookup("k", token: 0)                   // a first read: not cached (`NearCache.admits`)
        #expect(driver.run { driver.results[0] != nil })
        driver.lookup("k", token: 1)                   // HGET data k: a miss, sent to Redis, to be cached
        pipeline.flush(nowMs: Driver.nowMs())
        let data = driver.waitReadable { pipeline.appendPollDescriptors(to: &$0) }
        #expect(data.first.map { $0.revents & Int16(POLLIN) != 0 } == true)  // "old" is on its way
        try redis.command(["HSET", "data", "k", "new"]) // acknowledged by Redis
        let subscriber = driver.waitReadable { tracking.appendPollDescriptors(to: &$0) }
        #expect(subscriber.first.map { $0.revents & Int16(POLLIN) != 0 } == true)
        tracking.handle(subscriber[...], nowMs: Driver.nowMs())  // the invalidation first…
        pipeline.handle(data[...], nowMs: Driver.nowMs())         // …then the reply it overtook
        let delivered = driver.results[1]

        driver.lookup("k", token: 2)                   // a hit completes during lookup
        return (delivered, driver.results[2])
    }

    @Test func aReplyOvertakenByItsInvalidationIsDeliveredButNotCached() throws {
        let (delivered, cachedAfter) = try race(ignoringTickets: false)
        #expect(delivered == .reply(.bulk(Array("old".utf8))))
        #expect(cachedAfter == nil)
    }

    /// The same script with the guard switched off serves the stale value: the test above would catch it.
    @Test func withoutTheGuardTheSameScriptServesTheStaleValue() throws {
        let (_, cachedAfter) = try race(ignoringTickets: true)
        #expect(cachedAfter == .reply(.bulk(Array("old".utf8))))
    }

    /// Reads sent before tracking is confirmed are never cached; once it is, values are, and a
    /// write invalidates them.
    @Test func cachesOnlyWhileTrackingIsConfirmed() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v1"])
        let driver = Driver(port: redis.port)
        warmUp(driver)
        for token in 0...1 {                                           // the second read is cached
            driver.lookup("k", token: token)
            #expect(driver.results[token] == nil)
            #expect(driver.run { driver.results[token] != nil })
        }
        driver.lookup("k", token: 2)
        #expect(driver.results[2] == .reply(.bulk(Array("v1".utf8))))  // a hit
        try redis.command(["HSET", "data", "other", "x"])             // the hash changed: everything goes
        #expect(driver.run { driver.lookups.cache!.count == 0 })
        driver.lookup("k", token: 3)
        #expect(driver.results[3] == nil)
        #expect(driver.run { driver.results[3] != nil })
        try redis.command(["CLIENT", "KILL", "TYPE", "pubsub"])      // tracking lost: flush, read through
        #expect(driver.run { !driver.lookups.tracking!.isTracking })
        #expect(driver.lookups.cache!.count == 0)
        #expect(driver.run { driver.lookups.tracking!.isTracking })  // a new subscriber, TRACKING re-sent
        for token in 6...7 {
            driver.lookup("k", token: token)
            #expect(driver.run { driver.results[token] != nil })
        }
        driver.lookup("k", token: 5)
        #expect(driver.results[5] == .reply(.bulk(Array("v1".utf8))))
        #expect(driver.lookups.counters.trackingStarts == 2)
    }
}

extension CacheSettings {
    static var on: CacheSettings {
        var settings = CacheSettings()
        settings.enabled = true
        return settings
    }
}
