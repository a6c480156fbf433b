import KVDRedis
import KVDSettings
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The pipeline with big replies and with a Redis that answers but refuses: issue 9, defects 5 and 8.
@Suite("RedisPipeline: big replies and refusals", .serialized)
struct RedisPipelineRefusalTests {
    /// Eight 2 MB values and a small one, with a consumer that takes 100 ms per reply (kvd encoding
    /// a big value): Redis sends every reply at once, so none of them is late, even though the last
    /// is consumed long after `command_timeout_ms` (500 ms) from its sending. Before the fix, the
    /// deadline counted from the sending, replies were read 16 KB a loop turn, and the later lookups
    /// failed as timed out (the connection torn down with them).
    @Test func bigRepliesThatKeepArrivingAreNotTimeouts() throws {
        let redis = try RedisServer()
        try redis.command(["SETRANGE", "big", String((2 << 20) - 1), "x"])
        try redis.command(["SET", "small", "v"])
        var settings = RedisSettings.local(port: redis.port, layout: .string)
        settings.commandTimeoutMs = 500
        var consumedMs: [Int64] = []
        let harness = PipelineHarness(settings) { _, result in
            guard case .reply(.bulk(let value)) = result, value.count > 1 else { return }
            // A slow consumer: 100 ms of work per big value.
            let until = Clock.nowMs() + 100
            while Clock.nowMs() < until {}
            consumedMs.append(Clock.nowMs())
        }
        let start = Clock.nowMs()
        for token in 0..<8 { harness.lookup("big", token: token) }
        harness.lookup("small", token: 8)
        #expect(harness.run { harness.results.count == 9 })
        for token in 0..<8 {
            #expect(harness.result(token).map { if case .reply(.bulk(let value)) = $0 { value.count == 2 << 20 } else { false } } == true,
                    "lookup \(token): \(String(describing: harness.result(token)))")
        }
        #expect(harness.result(8) == .reply(.bulk(Array("v".utf8))))
        #expect(harness.failures == 0)
        #expect((consumedMs.last ?? 0) - start > 500, "the consumer's work outlasts the command timeout")
    }

    /// `-LOADING` (Redis reading its data file) is no answer about the key: the lookup fails as
    /// unavailable (kvd: 503 + Retry-After, not 502), Redis is reported down once, and the
    /// connection stays.
    @Test func loadingIsUnavailableNotAReply() throws {
        let server = try ScriptedServer(.answer(Array("-LOADING Redis is loading the dataset in memory\r\n".utf8)))
        let harness = PipelineHarness(.local(port: server.port))
        harness.lookup("k", token: 0)
        #expect(harness.run(alsoEachTurn: server.serve) { harness.result(0) != nil })
        #expect(harness.result(0) == .failed(.unavailable))
        #expect(harness.failures == 0, "the connection stays")
        #expect(harness.events.count { if case .redisDown = $0 { true } else { false } } == 1)
        #expect(!harness.events.contains(.redisRestored))
    }

    @Test(arguments: ["BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.",
                      "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'."])
    func temporaryRefusalsAreUnavailable(message: String) {
        #expect(RedisReply.isTemporaryRefusal(message))
        #expect(!RedisReply.isTemporaryRefusal("BUSYKEY Target key name already exists."))
        #expect(!RedisReply.isTemporaryRefusal("WRONGTYPE Operation against a key holding the wrong kind of value"))
    }

    /// Redis at `maxclients` accepts a connection, sends `-ERR max number of clients reached` and
    /// closes it: that is a refused connection (lookups unavailable, 503), not a Redis error reply
    /// (it was answered 502), and the outage is reported once and its end once, whatever the number
    /// of attempts (it was reported restored at every attempt: the log flapped).
    @Test func maxClientsReachedIsARefusedConnectionReportedOnce() throws {
        let redis = try RedisServer()
        try redis.command(["SET", "k", "v"])
        // One client holds the only place left.
        let holder = try ChildProcess("/usr/bin/redis-cli", ["-p", String(redis.port), "BLPOP", "never", "0"])
        defer { holder.stop(grace: 1) }
        #expect(waitUntil(timeout: 10) { (try? redis.command(["CLIENT", "LIST"]).contains("cmd=blpop")) == true })
        try redis.command(["CONFIG", "SET", "maxclients", "1"])
        var settings = RedisSettings.local(port: redis.port, layout: .string)
        settings.reconnectMaxMs = 20
        let harness = PipelineHarness(settings)
        var token = 0
        for _ in 0..<5 {
            harness.lookup("k", token: token)
            #expect(harness.run { harness.result(token) != nil })
            #expect(harness.result(token) == .failed(.unavailable), "attempt \(token)")
            token += 1
            harness.run(forMs: 30)
        }
        #expect(harness.failures >= 2, "several connections were tried")
        #expect(harness.events.count { if case .redisDown = $0 { true } else { false } } == 1)
        #expect(!harness.events.contains(.redisRestored))
        holder.stop(grace: 1)
        let served = waitUntil(timeout: 10) {
            let attempt = token
            token += 1
            harness.lookup("k", token: attempt)
            harness.run(timeoutMs: 2000) { harness.result(attempt) != nil }
            return harness.result(attempt) == .reply(.bulk(Array("v".utf8)))
        }
        #expect(served)
        #expect(harness.events.count { $0 == .redisRestored } == 1)
    }
}
