import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kvd with `[cache] enabled = yes` against a real Redis: writes are never hidden by the cache once
/// their invalidation has arrived, faults that lose tracking flush it, and it stays within its bound.
@Suite("kvd: near-cache", .serialized)
struct KVDCacheTests {
    static func config(_ redis: RedisServer, threads: Int = 1, layout: String = "string", cache: String = "") -> String {
        "[http]\nthreads = \(threads)\n" + KVDProcess.redisSection(redis, extra: "layout = \(layout)\nconnect_timeout_ms = 2000\ncommand_timeout_ms = 2000\nreconnect_max_ms = 100\n")
            + "[cache]\nenabled = yes\n" + cache
    }

    /// The sum over workers of a kvd_cache_* series.
    static func metric(_ kvd: KVDProcess, _ name: String) -> Int {
        guard let text = try? kvd.get("/metrics").text else { return -1 }
        return text.split(separator: "\n").filter { $0.hasPrefix(name + "{") }
            .compactMap { $0.split(separator: " ").last.flatMap { Int($0) } }.reduce(0, +)
    }

    /// Waits until every worker tracks (values are cached from now on).
    static func waitTracking(_ kvd: KVDProcess, workers: Int = 1) -> Bool {
        waitUntil(timeout: 10, interval: 0.02) {
            // Lookups open the data connections; tracking needs one.
            _ = try? kvd.get("/get/warm-up")
            return metric(kvd, "kvd_cache_tracking") == workers
        }
    }

    static func json(_ text: String) -> String { "\"\(text)\"" }

    /// Every worker connects and turns tracking on when it starts, not at its first lookup: with
    /// no GET at all (only `/metrics`, which looks nothing up), all four workers track; and again
    /// on the new connection after a `[redis]` reload (another database) replaced theirs.
    @Test func everyWorkerTracksBeforeItsFirstLookup() throws {
        let redis = try RedisServer()
        let kvd = try KVDProcess(config: Self.config(redis, threads: 4))
        #expect(waitUntil(timeout: 10, interval: 0.05) { Self.metric(kvd, "kvd_cache_tracking") == 4 },
                "tracking on \(Self.metric(kvd, "kvd_cache_tracking")) of 4 idle workers")
        #expect(Self.metric(kvd, "kvd_cache_tracking_starts_total") >= 4)
        try KVDProcess.withEphemeralPort(Self.config(redis, threads: 4)).replacingOccurrences(of: "layout = string", with: "layout = string\ndb = 1")
            .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 10, interval: 0.05) {
            Self.metric(kvd, "kvd_cache_tracking_starts_total") >= 8 && Self.metric(kvd, "kvd_cache_tracking") == 4
        }, "after the reload: \(Self.metric(kvd, "kvd_cache_tracking_starts_total")) starts, tracking on \(Self.metric(kvd, "kvd_cache_tracking")) of 4")
        #expect(Self.metric(kvd, "kvd_cache_misses_total") == 0)
    }

    /// A writer updates keys one after another; after each acknowledged write a reader asks kvd
    /// (keep-alive, so always the same worker, whose cache holds the old value) until it serves the
    /// new one: it must never serve an older value again, and the delay is measured.
    @Test func aWriterNeverHidesBehindTheCacheAndTheDelayIsMeasured() throws {
        let redis = try RedisServer()
        let keys = (0..<8).map { "w\($0)" }
        for key in keys { try redis.command(["SET", key, "0"]) }
        let kvd = try KVDProcess(config: Self.config(redis, threads: 2))
        #expect(Self.waitTracking(kvd, workers: 2))
        let reader = try HTTPConnection(port: kvd.port)
        var version = [String: Int]()
        var delaysMs: [Double] = []
        var stale = 0
        for round in 1...120 {
            let key = keys[round % keys.count]
            let previous = version[key] ?? 0
            // Three times: a key is cached at its second read, the third answer comes from the cache.
            for _ in 0..<3 { #expect(try reader.request("GET", "/get/\(key)").text == Self.json("\(previous)")) }
            try redis.command(["SET", key, "\(round)"])
            let acknowledged = Date()
            var seen = false
            while !seen {
                let body = try reader.request("GET", "/get/\(key)").text
                if body == Self.json("\(round)") {
                    seen = true
                    delaysMs.append(Date().timeIntervalSince(acknowledged) * 1000)
                } else {
                    #expect(body == Self.json("\(previous)"), "an unexpected answer \(body)")
                    if Date().timeIntervalSince(acknowledged) > 5 { Issue.record("\(key) still old after 5 s"); break }
                }
            }
            // Once seen, the old value never comes back.
            for _ in 0..<3 where try reader.request("GET", "/get/\(key)").text != Self.json("\(round)") { stale += 1 }
            version[key] = round
        }
        #expect(stale == 0)
        #expect(Self.metric(kvd, "kvd_cache_hits_total") >= 120)
        #expect(Self.metric(kvd, "kvd_cache_invalidations_total") >= 120)
        delaysMs.sort()
        let p = { (q: Double) in delaysMs[min(delaysMs.count - 1, Int(Double(delaysMs.count) * q))] }
        print(String(format: "near-cache: acknowledged write -> kvd serves the new value (%d writes, incl. one HTTP round trip): p50 %.2f ms, p99 %.2f ms, max %.2f ms",
                     delaysMs.count, p(0.5), p(0.99), delaysMs.last ?? 0))
    }

    /// OPTIN tracking: Redis remembers only the keys of the reads whose reply the cache takes
    /// (kvd sends `CLIENT CACHING yes` before those), not every key kvd ever read: a key read once
    /// costs Redis no tracking entry, and invalidating a cached key still works.
    @Test func redisTracksOnlyTheReadsTheCacheTakes() throws {
        let redis = try RedisServer()
        var input = ""
        for index in 0..<300 { input += "SET t\(index) v\(index)\n" }
        _ = try redis.command(["--pipe"], input: Data(input.utf8))
        let kvd = try KVDProcess(config: Self.config(redis))
        #expect(Self.waitTracking(kvd))
        func trackedKeys() throws -> Int {
            let info = try redis.command(["INFO", "stats"])
            let line = info.split(whereSeparator: \.isNewline).first { $0.hasPrefix("tracking_total_keys:") }
            return try #require(line.flatMap { Int($0.dropFirst("tracking_total_keys:".count)) })
        }
        let reader = try HTTPConnection(port: kvd.port)
        let before = try trackedKeys()
        let storesBefore = Self.metric(kvd, "kvd_cache_stores_total")
        // Read once each: not cached, not tracked (default tracking would remember all 300).
        for index in 0..<300 { #expect(try reader.request("GET", "/get/t\(index)").text == Self.json("v\(index)")) }
        #expect(try trackedKeys() == before)
        // Ten of them read again: cached, and tracked.
        for index in 0..<10 { #expect(try reader.request("GET", "/get/t\(index)").text == Self.json("v\(index)")) }
        #expect(Self.metric(kvd, "kvd_cache_stores_total") == storesBefore + 10)
        #expect(try trackedKeys() == before + 10)
        let hitsBefore = Self.metric(kvd, "kvd_cache_hits_total")
        for index in 0..<10 { #expect(try reader.request("GET", "/get/t\(index)").text == Self.json("v\(index)")) }
        #expect(Self.metric(kvd, "kvd_cache_hits_total") == hitsBefore + 10)
        // A write to a cached key is invalidated (Redis drops it from its table as it tells kvd);
        // read again, the new value is cached, and tracked, once more.
        let invalidationsBefore = Self.metric(kvd, "kvd_cache_invalidations_total")
        try redis.command(["SET", "t3", "changed"])
        #expect(waitUntil(timeout: 5) { (try? reader.request("GET", "/get/t3").text) == Self.json("changed") })
        #expect(Self.metric(kvd, "kvd_cache_invalidations_total") == invalidationsBefore + 1)
        #expect(try trackedKeys() == before + 10)
    }

    /// `[cache]` keys are checked like every other: a bad value names file:line (exit 78), and
    /// `--print-config` shows every key with its default.
    @Test func cacheSettingsAreValidatedAndPrinted() throws {
        let kvd = try Binaries.path("kvd")
        let directory = try TemporaryDirectory.make(prefix: "kvd-cache-config")
        for (text, message) in [("[cache]\nenabled = maybe\n", "kvd.conf:2: [cache] enabled: expected yes or no"),
                                ("[http]\nthreads = 2\n[cache]\nmax_bytes = 1048576\nmax_value_bytes = 600000\n",
                                 "kvd.conf:5: [cache] max_value_bytes (600000) is more than one worker's share of max_bytes"),
                                ("[cache]\nmax_bytes = 10\n", "kvd.conf:2: [cache] max_bytes: expected a whole number")] {
            try text.write(toFile: directory + "/kvd.conf", atomically: true, encoding: .utf8)
            let result = try ChildProcess.run(kvd, ["-t", "-c", directory + "/kvd.conf"], timeout: 30)
            #expect(result.status == 78)
            #expect(result.stderr.contains(message), "\(result.stderr)")
        }
        let printed = try ChildProcess.run(kvd, ["--print-config", "-c", "/dev/null"], timeout: 30)
        #expect(printed.stdout.contains("[cache]\nenabled = no\nmax_bytes = 268435456\nmax_value_bytes = 16384\ncache_missing = yes\n"), "\(printed.stdout)")
    }

    /// `[redis] keepalive_s` sets TCP keep-alive on every connection to Redis, the invalidation
    /// subscribers' too, so a silent partition of an idle one is noticed in seconds (hiredis's own
    /// keep-alive waits 15 s before its first probe). What the kernel says of kvd's sockets (`ss`):
    /// with `keepalive_s = 1` no keep-alive timer is ever more than a second away.
    @Test func keepAliveTimersFollowTheSetting() throws {
        let redis = try RedisServer()
        let kvd = try KVDProcess(config: Self.config(redis, threads: 2).replacingOccurrences(
            of: "[cache]\n", with: "keepalive_s = 1\n[cache]\n"))
        #expect(Self.waitTracking(kvd, workers: 2))
        for (text, seconds) in [("532ms", 0.532), ("1.234ms", 1.234), ("14sec", 14), ("2min5sec", 125), ("", 0)] {
            #expect(abs((Self.ssTimerSeconds(text) ?? -1) - seconds) < 1e-9, "\(text)")
        }
        let ss = ["/usr/bin/ss", "/bin/ss"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "ss"
        var samples = 0
        var connections = 0
        for _ in 0..<12 {
            let listing = try ChildProcess.run(ss, ["-tnoH", "state", "established", "( dport = :\(redis.port) )"], timeout: 30)
            try #require(listing.status == 0, "ss: \(listing.stderr)")
            let timers: [String?] = listing.stdout.split(separator: "\n").map { line -> String? in
                let parts = String(line).components(separatedBy: "timer:(keepalive,")
                return parts.count == 2 ? parts[1].components(separatedBy: ",")[0] : nil
            }
            connections = max(connections, timers.count)
            for timer in timers {
                let text: String = try #require(timer, "a connection to Redis without keep-alive: \(listing.stdout)")
                let seconds = Self.ssTimerSeconds(text)
                let parsed: Double = try #require(seconds, "timer \(text)")
                #expect(parsed <= 1.1, "keep-alive timer \(text): \(listing.stdout)")
                samples += 1
            }
            usleep(200_000)
        }
        // Two subscribers and at least one data connection.
        #expect(connections >= 3, "\(connections) connections to Redis")
        #expect(samples >= 36)
    }

    /// Seconds in one of `ss`'s timer figures: "532ms" (0.532), "1.234ms" (1.234: seconds, a
    /// dot, then milliseconds), "14sec", "2min5sec"; "" when the timer is due now.
    static func ssTimerSeconds(_ text: String) -> Double? {
        var rest = Substring(text), total = 0.0
        func take(_ unit: String, _ scale: Double) -> Bool {
            guard let range = rest.range(of: unit), let value = Double(rest[..<range.lowerBound]) else { return false }
            total += value * scale
            rest = rest[range.upperBound...]
            return true
        }
        _ = take("min", 60)
        if !take("sec", 1) { _ = take(".", 1) }
        _ = take("ms", 0.001)
        return rest.isEmpty ? total : nil
    }

    /// A silent partition (the link to Redis cut: packets dropped, no FIN, no RST) while a value is
    /// cached, and a write to it during the partition whose invalidation cannot arrive: kvd may
    /// serve the old value only until keep-alive gives the lost subscriber up (`keepalive_s = 1`:
    /// 1 s + 3 probes 1 s apart); then it reads through (503/504 while cut), and serves the new
    /// value once the link is back. With hiredis's own keep-alive (15 s + 3 × 5 s) the old value
    /// would be served for ~30 s, past the deadline.
    @Test func aSilentPartitionServesTheOldValueOnlyUntilKeepAliveNotices() throws {
        let redis = try RedisBehindLink()
        try redis.command(["SET", "k", "before"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n[redis]\nhost = \(redis.host)\nport = \(redis.port)\n"
            + "layout = string\nkeepalive_s = 1\nconnect_timeout_ms = 1000\ncommand_timeout_ms = 1000\nreconnect_max_ms = 100\n"
            + "[cache]\nenabled = yes\n")
        #expect(Self.waitTracking(kvd))
        let reader = try HTTPConnection(port: kvd.port)
        for _ in 0..<3 { #expect(try reader.request("GET", "/get/k").text == Self.json("before")) }
        try redis.cut()
        let cut = Date()
        try redis.command(["SET", "k", "after"])    // over the unix socket: applied, its invalidation lost
        var lastStale = 0.0, staleAnswers = 0
        let noticed = try waitUntil(timeout: 12, interval: 0.05) {
            guard try reader.request("GET", "/get/k").text == Self.json("before") else { return true }
            staleAnswers += 1
            lastStale = Date().timeIntervalSince(cut)
            return false
        }
        #expect(noticed, "still serving the value from before the partition \(Date().timeIntervalSince(cut)) s after it")
        print("silent partition: \(staleAnswers) answers from the cache, the last \(Int(lastStale * 1000)) ms after the cut")
        try redis.heal()
        #expect(try waitUntil(timeout: 15, interval: 0.1) { try reader.request("GET", "/get/k").text == Self.json("after") })
        #expect(Self.waitTracking(kvd))
    }

    /// `hash` layout: one tracked Redis key holds every value, so a write to any field empties the cache.
    @Test func hashLayoutAnyWriteInvalidatesEverything() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "a", "1", "b", "2"])
        let kvd = try KVDProcess(config: Self.config(redis, layout: "hash"))
        #expect(Self.waitTracking(kvd))
        let reader = try HTTPConnection(port: kvd.port)
        for _ in 0..<3 { #expect(try reader.request("GET", "/get/a").text == Self.json("1")) }
        #expect(Self.metric(kvd, "kvd_cache_entries") >= 1)
        try redis.command(["HSET", "data", "b", "3"])
        #expect(waitUntil(timeout: 5) { Self.metric(kvd, "kvd_cache_entries") == 0 })
        #expect(try reader.request("GET", "/get/b").text == Self.json("3"))
    }

    /// A key read often gets a prepared JSON answer, and its hits then skip the cached value; every
    /// other form of answer (raw) still comes from the value, and a write replaces both.
    @Test func aHotKeyAnswersEveryFormFromTheCache() throws {
        let redis = try RedisServer()
        let value = "a \"quoted\" välue\n", newValue = "second"
        try redis.command(["SET", "hot", value])
        try redis.command(["SET", "blank", ""])
        let kvd = try KVDProcess(config: Self.config(redis))
        #expect(Self.waitTracking(kvd))
        let reader = try HTTPConnection(port: kvd.port)
        let quoted = #""a \"quoted\" välue\n""#
        for _ in 0..<20 {
            #expect(try reader.request("GET", "/get/hot").text == quoted)
            #expect(try reader.request("GET", "/get/blank").text == "\"\"")
        }
        let hits = Self.metric(kvd, "kvd_cache_hits_total")
        #expect(hits >= 30, "\(hits) hits")
        for _ in 0..<3 {
            #expect(try reader.request("GET", "/get/hot?format=raw").text == value)
            #expect(try reader.request("GET", "/get/hot").text == quoted)
            #expect(try reader.request("GET", "/get/blank?format=raw").body.isEmpty)
            #expect(try reader.request("GET", "/get/blank").text == "\"\"")
        }
        #expect(Self.metric(kvd, "kvd_cache_hits_total") >= hits + 12)
        try redis.command(["SET", "hot", newValue])
        #expect(waitUntil(timeout: 5) { (try? reader.request("GET", "/get/hot").text) == Self.json(newValue) })
        #expect(try reader.request("GET", "/get/hot?format=raw").text == newValue)
    }

    enum Fault: CaseIterable {
        case subscriberKilled, dataConnectionKilled, flushAll, redisRestarted
    }

    /// Each fault that can make kvd miss an invalidation: the cache is flushed (or invalidated) and
    /// the next answer is Redis's; tracking comes back and caching resumes.
    @Test(arguments: Fault.allCases)
    func noStaleAnswerAfter(_ fault: Fault) throws {
        let redis = try RedisServer()
        try redis.command(["SET", "k", "before"])
        let kvd = try KVDProcess(config: Self.config(redis))
        #expect(Self.waitTracking(kvd))
        let reader = try HTTPConnection(port: kvd.port)
        for _ in 0..<2 { #expect(try reader.request("GET", "/get/k").text == Self.json("before")) }  // the second stores it
        let hits = Self.metric(kvd, "kvd_cache_hits_total")
        #expect(try reader.request("GET", "/get/k").text == Self.json("before"))
        #expect(Self.metric(kvd, "kvd_cache_hits_total") == hits + 1, "k is served from the cache")
        let losses = Self.metric(kvd, "kvd_cache_tracking_losses_total")
        switch fault {
        case .subscriberKilled:
            #expect(try redis.command(["CLIENT", "KILL", "TYPE", "pubsub"]) == "1")
        case .dataConnectionKilled:
            // SKIPME: redis-cli's own connection stays.
            #expect(try redis.command(["CLIENT", "KILL", "TYPE", "normal"]) == "1")
        case .flushAll:
            try redis.command(["FLUSHALL"])
        case .redisRestarted:
            try redis.restart()
        }
        if fault == .flushAll {
            // The null invalidation: everything goes, tracking stays.
            #expect(waitUntil(timeout: 5) { Self.metric(kvd, "kvd_cache_entries") == 0 })
            #expect(try reader.request("GET", "/get/k").status == 404)
            return
        }
        // kvd noticed (the connection's end reached its socket) before the write below.
        #expect(waitUntil(timeout: 5) { Self.metric(kvd, "kvd_cache_tracking_losses_total") > losses })
        try redis.command(["SET", "k", "after"])
        #expect(waitUntil(timeout: 5) { (try? reader.request("GET", "/get/k").status) != nil })
        let body = try HTTPConnection(port: kvd.port).request("GET", "/get/k").text
        #expect(body == Self.json("after"), "\(fault): \(body)")
        // Tracking is back, values are cached again, and invalidated again.
        #expect(Self.waitTracking(kvd))
        let again = try HTTPConnection(port: kvd.port)
        for _ in 0..<3 { #expect(try again.request("GET", "/get/k").text == Self.json("after")) }
        try redis.command(["SET", "k", "later"])
        #expect(waitUntil(timeout: 5) { (try? again.request("GET", "/get/k").text) == Self.json("later") })
        #expect(Self.metric(kvd, "kvd_cache_tracking_starts_total") >= 2)
    }

    /// Reload: turning the cache on tracks the data connection already open; a `[redis]` change
    /// (another database) flushes what the old target made the cache hold.
    @Test func reloadTurnsTheCacheOnAndARedisChangeFlushesIt() throws {
        let redis = try RedisServer()
        try redis.command(["SET", "k", "db0"])
        try redis.command(["-n", "1", "SET", "k", "db1"])
        let off = Self.config(redis).replacingOccurrences(of: "enabled = yes", with: "enabled = no")
        let kvd = try KVDProcess(config: off)
        let reader = try HTTPConnection(port: kvd.port)
        #expect(try reader.request("GET", "/get/k").text == Self.json("db0"))
        #expect(Self.metric(kvd, "kvd_cache_tracking") == 0)
        try KVDProcess.withEphemeralPort(Self.config(redis)).write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(Self.waitTracking(kvd))
        for _ in 0..<3 { #expect(try reader.request("GET", "/get/k").text == Self.json("db0")) }
        #expect(Self.metric(kvd, "kvd_cache_hits_total") >= 1)
        try (KVDProcess.withEphemeralPort(Self.config(redis)) + "").replacingOccurrences(of: "layout = string", with: "layout = string\ndb = 1")
            .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 10) { (try? reader.request("GET", "/get/k").text) == Self.json("db1") })
        // From then on only db 1's value, cached or not.
        for _ in 0..<5 { #expect(try reader.request("GET", "/get/k").text == Self.json("db1")) }
        #expect(kvd.log.contains("applied redis.db"))
    }

    /// A `[cache]` reload replaces the cache; its counters go on from where they were (a
    /// Prometheus counter goes back only when kvd restarts), the replacement counted as a flush.
    @Test func countersCarryOverAReloadThatReplacesTheCache() throws {
        let redis = try RedisServer()
        try redis.command(["SET", "k", "v"])
        let kvd = try KVDProcess(config: Self.config(redis))
        #expect(Self.waitTracking(kvd))
        let reader = try HTTPConnection(port: kvd.port)
        // Two misses (the second stores k), then hits.
        for _ in 0..<5 { #expect(try reader.request("GET", "/get/k").text == Self.json("v")) }
        #expect(Self.metric(kvd, "kvd_cache_entries") == 1)
        let hits = Self.metric(kvd, "kvd_cache_hits_total"), misses = Self.metric(kvd, "kvd_cache_misses_total")
        let stores = Self.metric(kvd, "kvd_cache_stores_total"), flushes = Self.metric(kvd, "kvd_cache_flushes_total")
        #expect(hits >= 3 && misses >= 2 && stores == 1)
        try KVDProcess.withEphemeralPort(Self.config(redis, cache: "max_bytes = 33554432\n"))
            .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        // The new cache starts empty.
        #expect(waitUntil(timeout: 10) { Self.metric(kvd, "kvd_cache_entries") == 0 })
        #expect(Self.metric(kvd, "kvd_cache_hits_total") == hits)
        #expect(Self.metric(kvd, "kvd_cache_misses_total") == misses)
        #expect(Self.metric(kvd, "kvd_cache_stores_total") == stores)
        #expect(Self.metric(kvd, "kvd_cache_flushes_total") == flushes + 1)
        // And they count on: a miss for the new cache.
        #expect(try reader.request("GET", "/get/k").text == Self.json("v"))
        #expect(Self.metric(kvd, "kvd_cache_misses_total") == misses + 1)
    }

    /// The systemd status line shows the hit rate (the watchdog set short so that it reports often).
    @Test func theStatusLineShowsTheHitRate() throws {
        let notify = try NotifySocket()
        let redis = try RedisServer()
        try redis.command(["SET", "k", "v"])
        var environment = notify.environment
        environment["WATCHDOG_USEC"] = "300000"
        let kvd = try KVDProcess(config: Self.config(redis), environment: environment)
        #expect(Self.waitTracking(kvd))
        let reader = try HTTPConnection(port: kvd.port)
        // 2 misses (the second stores k); then, in later reporting periods, only hits.
        for _ in 0..<2 { #expect(try reader.request("GET", "/get/k").status == 200) }
        #expect(notify.waitFor(timeout: 10) { $0.contains("cache hit rate") || $0.contains("cache on, no lookups") } != nil,
                "\(notify.messages.suffix(3))")
        notify.clear()
        #expect(waitUntil(timeout: 10) {
            _ = try? reader.request("GET", "/get/k")
            return notify.messages.contains { $0.contains("cache hit rate 100%") }
        }, "\(notify.messages.suffix(3))")
    }

    /// A small `max_bytes` and a dataset many times larger: the cache holds at most `max_bytes`,
    /// and kvd's resident memory grows by no more than that plus the documented overhead.
    @Test func staysWithinMaxBytes() throws {
        let redis = try RedisServer()
        // 3,000 keys in six groups of 500 (each group over twice the cache); group g's keys are
        // read g + 1 times in a row. A key is offered from its second read, and a full cache takes
        // it only in place of an entry read less often (TinyLFU): each group replaces the one
        // before, so the cache is filled and emptied six times and the bound is what keeps it small.
        let count = 3000
        let value = String(repeating: "v", count: 2000)
        var input = ""
        for index in 0..<count { input += "SET key\(index) \(value)\(index)\n" }
        _ = try redis.command(["--pipe"], input: Data(input.utf8))
        let maxBytes = 1 << 20
        let kvd = try KVDProcess(config: Self.config(redis, cache: "max_bytes = \(maxBytes)\n"))
        #expect(Self.waitTracking(kvd))
        let reader = try HTTPConnection(port: kvd.port)
        for index in 0..<50 { _ = try reader.request("GET", "/get/key\(index)") }
        let baseline = try #require(KVDBigValueAndRefusalTests.residentBytes(kvd))
        for group in 1...6 {
            for index in (group - 1) * 500..<group * 500 {
                for _ in 0...group { #expect(try reader.request("GET", "/get/key\(index)").status == 200) }
            }
        }
        let held = Self.metric(kvd, "kvd_cache_bytes")
        #expect(held > maxBytes / 2 && held <= maxBytes)
        // The one worker holds about 470 of these entries (2,200 bytes each, counted). Each group
        // replaces most of the one before; measured: 2,150-2,280 stores, 1,680-1,810 evictions.
        let evictions = Self.metric(kvd, "kvd_cache_evictions_total")
        #expect(evictions >= 3 * 400)
        let grown = try #require(KVDBigValueAndRefusalTests.residentBytes(kvd)) - baseline
        // The documented overhead (docs/cache.md): 8 MiB for the allocator's slack and kvd's buffers.
        #expect(KVDProcess.sanitized || grown <= maxBytes + 8 << 20, "RSS grew \(grown) bytes")
        let stores = Self.metric(kvd, "kvd_cache_stores_total")
        print("near-cache bound: max_bytes \(maxBytes), held \(held), RSS grew \(grown) bytes over \(count) keys of 2 KB, \(stores) stores, \(evictions) evictions")
        #expect(stores >= 4 * 400)
        // Within a group, keys read as often as the entries they would replace are refused; no
        // writes, so no reply was refused as stale.
        #expect(Self.metric(kvd, "kvd_cache_not_admitted_total") > 0)
        #expect(Self.metric(kvd, "kvd_cache_refused_stale_total") == 0)
    }

    /// The same bound with small entries, where the bookkeeping outweighs the bytes: 170,000 keys
    /// of 10 bytes with 40-byte values in the `string` layout, each read twice (by `/mget`), fill
    /// a 32 MiB cache, and kvd's RSS grows by no more than `max_bytes` and the documented overhead.
    /// (Until the 14th session every entry of this layout kept its Redis key and a list of one in
    /// a table: RSS grew by ~335 bytes an entry for ~210 counted, over 50 MiB here.)
    @Test func smallEntriesStayWithinMaxBytes() throws {
        let redis = try RedisServer()
        let count = 170_000
        let keys = (0..<count).map { "key-" + String(1_000_000 + $0).dropFirst() }
        let value = String(repeating: "v", count: 34)
        var input = ""
        for (index, key) in keys.enumerated() { input += "SET \(key) \(value)\(String(1_000_000 + index).dropFirst())\n" }
        _ = try redis.command(["--pipe"], input: Data(input.utf8))
        let maxBytes = 32 << 20
        let kvd = try KVDProcess(config: Self.config(redis, cache: "max_bytes = \(maxBytes)\n"))
        #expect(Self.waitTracking(kvd))
        let reader = try HTTPConnection(port: kvd.port)
        _ = try KVDMgetTests.mget(reader, Array(keys.prefix(1000)))
        let baseline = try #require(KVDBigValueAndRefusalTests.residentBytes(kvd))
        for _ in 0..<2 {
            for start in stride(from: 0, to: count, by: 1000) {
                let answer = try KVDMgetTests.mget(reader, Array(keys[start..<start + 1000]))
                try #require(answer.status == 200)
            }
        }
        let held = Self.metric(kvd, "kvd_cache_bytes"), entries = Self.metric(kvd, "kvd_cache_entries")
        #expect(held > maxBytes * 3 / 4 && held <= maxBytes)
        #expect(entries > 120_000, "\(entries) entries")
        let grown = try #require(KVDBigValueAndRefusalTests.residentBytes(kvd)) - baseline
        print("near-cache bound, small entries: max_bytes \(maxBytes), held \(held) in \(entries) entries, RSS grew \(grown) bytes")
        #expect(KVDProcess.sanitized || grown <= maxBytes + 8 << 20, "RSS grew \(grown) bytes")
    }

    /// Whole flushes of a cache whose tables are big enough to be freed on another thread (the
    /// `hash` layout: every write empties it), and reloads that replace the whole cache (also
    /// freed there): kvd answers every key right before, between and after them. The one reader's
    /// worker holds all 30,000 entries, so each fill and refill grows its index past 28,672
    /// entries into a 65,536-bucket table ordered from that thread at 24,576.
    @Test func bigFlushesAndReplacedCachesKeepEveryAnswerRight() throws {
        let redis = try RedisServer()
        let count = 30_000
        let keys = (0..<count).map { "k\($0)" }
        var input = ""
        for key in keys { input += "HSET data \(key) v-\(key)\n" }
        _ = try redis.command(["--pipe"], input: Data(input.utf8))
        let kvd = try KVDProcess(config: Self.config(redis, layout: "hash"))
        #expect(Self.waitTracking(kvd))
        let reader = try HTTPConnection(port: kvd.port)
        var expected = Dictionary(uniqueKeysWithValues: keys.map { ($0, "v-\($0)") })
        /// Reads every key twice (stored at the second read) and checks every answer.
        func readAll() throws {
            for _ in 0..<2 {
                for start in stride(from: 0, to: count, by: 1000) {
                    let batch = Array(keys[start..<start + 1000])
                    let answer = try KVDMgetTests.mget(reader, batch)
                    try #require(answer.status == 200)
                    let values = try #require(try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String])
                    #expect(values == batch.map { expected[$0]! })
                }
            }
        }
        for round in 0..<3 {
            try readAll()
            // Enough entries that the tables (slots and index, ~40 + 24 bytes a key) pass 1 MiB.
            #expect(Self.metric(kvd, "kvd_cache_entries") > 25_000)
            let key = keys[round * 7]
            expected[key] = "written \(round)"
            try redis.command(["HSET", "data", key, "written \(round)"])
            #expect(waitUntil(timeout: 10) { Self.metric(kvd, "kvd_cache_entries") < 1_000 })
            #expect(try reader.request("GET", "/get/\(key)").text == Self.json("written \(round)"))
        }
        try readAll()
        for megabytes in [200, 100] {
            try KVDProcess.withEphemeralPort(Self.config(redis, layout: "hash", cache: "max_bytes = \(megabytes << 20)\n"))
                .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
            kvd.process.signal(SIGHUP)
            #expect(waitUntil(timeout: 10) { kvd.log.contains("restarted empty, \(megabytes << 20) bytes") })
            try readAll()
            #expect(Self.metric(kvd, "kvd_cache_entries") > 25_000)
        }
        #expect(kvd.process.isRunning)
    }
}

/// `buckets` with the cache on: dataset generation switches under readers (the shared scenario).
/// A switch changes the Redis key every lookup reads, and kvd flushes the cache when a generation
/// goes live, so no answer from the old generation may follow the switch by more than its poll.
@Suite("kvd: near-cache with dataset generations", .serialized)
struct KVDCacheGenerationTests: GenerationSuite {
    let kvload: String
    let directory: String
    static let prefix = "kc:"
    var kvloadArguments: [String] { ["--layout", "buckets", "--prefix", Self.prefix, "--quiet"] }

    init() throws {
        kvload = try Binaries.path("kvload")
        directory = try TemporaryDirectory.make(prefix: "kvd-cache-buckets")
    }

    @Test func switchesUnderReadersServeNoOldGenerationFromTheCache() throws {
        let redis = try RedisServer()
        let keys = (0..<500).map { "key-\($0)" }
        let pathA = try seedFile("a.txt", keys.map { ($0, "A-value-of-\($0)") })
        let pathB = try seedFile("b.txt", keys.map { ($0, "B-value-of-\($0)-longer") })
        try load(redis, [pathA])
        let kvd = try KVDProcess(config: "[http]\nthreads = 2\n"
            + KVDProcess.redisSection(redis, extra: "layout = buckets\nprefix = \(Self.prefix)\ncommand_timeout_ms = 2000\n")
            + "[cache]\nenabled = yes\n")
        defer { kvd.process.stop() }
        #expect(KVDCacheTests.waitTracking(kvd, workers: 2))
        try checkSwitchesUnderLoad(
            kvdPort: kvd.port, keys: keys, pathB: pathB, switches: [pathB, pathA],
            replace: { path in try load(redis, ["--replace", "--grace-seconds", "1", path]) },
            startReplace: { path in
                try ChildProcess(kvload, ["--port", String(redis.port)] + kvloadArguments + ["--replace", "--grace-seconds", "2", path])
            },
            liveGeneration: { try liveGeneration(redis) })
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_hits_total") > 1000, "the readers were served from the cache")
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_flushes_total") >= 3, "one flush per switch and worker at least")
    }
}
