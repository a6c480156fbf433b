import KVDRedis
import KVDSettings
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The pipeline on its own, without HTTP: against a real redis-server for replies, reconnects and
/// reloads, and against a scripted socket for stalls and protocol faults.
@Suite("RedisPipeline", .serialized)
struct RedisPipelineTests {
    // MARK: Replies

    @Test func repliesCompleteTheirLookupsInSubmissionOrder() throws {
        let redis = try RedisServer()
        var fields = ["HSET", "data"]
        for index in stride(from: 0, to: 100, by: 2) { fields += ["k\(index)", "v\(index)"] }
        try redis.command(fields)
        let harness = PipelineHarness(.local(port: redis.port))
        // One loop turn's worth: every lookup goes out in the same write, a PING among them.
        for token in 0..<100 {
            if token == 50 {
                harness.pipeline.ping(token: LookupToken(token), nowMs: Clock.nowMs())
            } else {
                harness.lookup("k\(token)", token: token)
            }
        }
        #expect(harness.run { harness.results.count == 100 })
        #expect(harness.results.map(\.token.value) == Array(0..<100))
        for (token, result) in harness.results {
            switch token.value {
            case 50: #expect(result == .reply(.status("PONG")))
            case let index where index.isMultiple(of: 2): #expect(result == .reply(.bulk(Array("v\(index)".utf8))))
            default: #expect(result == .reply(.null), "k\(token.value)")
            }
        }
        #expect(harness.failures == 0)
        #expect(harness.events == [.connecting(reconnect: false)])
    }

    @Test func stringLayoutReadsPrefixedKeysAndRedisErrorsAreReplies() throws {
        let redis = try RedisServer()
        try redis.command(["SET", "p:k", "value"])
        try redis.command(["HSET", "p:hash", "f", "v"])
        let harness = PipelineHarness(.local(port: redis.port, layout: .string, prefix: "p:"))
        harness.lookup("k", token: 0)
        harness.lookup("hash", token: 1)
        harness.lookup("missing", token: 2)
        #expect(harness.run { harness.results.count == 3 })
        #expect(harness.result(0) == .reply(.bulk(Array("value".utf8))))
        guard case .reply(.error(let message)) = harness.result(1) else {
            Issue.record("GET on a hash: \(String(describing: harness.result(1)))")
            return
        }
        #expect(message.hasPrefix("WRONGTYPE"))
        #expect(harness.result(2) == .reply(.null))
        // A Redis error is an answer, not a broken connection.
        #expect(harness.failures == 0)
    }

    // MARK: Backoff

    /// Nothing listens: every lookup fails at once, and connect attempts back off 10, 20, 40 ms…
    /// up to `reconnect_max_ms`. Times are the caller's, so the schedule is checked exactly.
    @Test func unavailableAtOnceAndAttemptsBackOffUpToTheCap() {
        var settings = RedisSettings()
        settings.socket = "/nonexistent/kvd-pipeline-test.sock"
        settings.reconnectMaxMs = 50
        let harness = PipelineHarness(settings)
        // (time, connect attempts so far): an attempt at the end of each pause, none before it.
        let schedule: [(Int64, Int)] = [(1000, 1), (1009, 1), (1010, 2), (1029, 2), (1030, 3), (1069, 3),
                                        (1070, 4), (1119, 4), (1120, 5), (1169, 5), (1170, 6)]
        for (index, (time, attempts)) in schedule.enumerated() {
            harness.lookup("k", token: index, nowMs: time)
            #expect(harness.results.count == index + 1, "at \(time) ms the lookup fails at once")
            #expect(harness.result(index) == .failed(.unavailable))
            #expect(harness.failures == attempts, "connect attempts by \(time) ms")
        }
        harness.pipeline.ping(token: LookupToken(99), nowMs: 1171)
        #expect(harness.result(99) == .failed(.unavailable))
        #expect(harness.pipeline.nextDeadlineMs() == nil)
        // The outage is reported once, not per attempt.
        #expect(harness.events.count { if case .redisDown = $0 { true } else { false } } == 1)
    }

    @Test func reconnectsAfterRedisRestartsAndReportsTheOutageOnce() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        var settings = RedisSettings.local(port: redis.port)
        settings.reconnectMaxMs = 100
        let harness = PipelineHarness(settings)
        harness.lookup("k", token: 0)
        #expect(harness.run { harness.results.count == 1 })
        redis.kill()
        var token = 1
        harness.lookup("k", token: token)
        #expect(harness.run { harness.result(1) != nil })
        #expect(harness.result(1) == .failed(.unavailable))
        try redis.restart()
        try redis.command(["HSET", "data", "k", "v2"])
        // Lookups fail at once while the pipeline backs off, then one reaches the new server.
        let recovered = harness.run {
            if let result = harness.result(token) {
                if result == .reply(.bulk(Array("v2".utf8))) { return true }
                token += 1
                harness.lookup("k", token: token)
            }
            return false
        }
        #expect(recovered)
        let down = harness.events.count { if case .redisDown = $0 { true } else { false } }
        #expect(down == 1)
        #expect(harness.events.last == .redisRestored)
        #expect(harness.events.contains(.connecting(reconnect: true)))
    }

    // MARK: Deadlines

    /// A server that takes commands and never answers: at the oldest lookup's deadline, every
    /// lookup on the connection fails with `.timedOut`, and the next lookup opens a new
    /// connection at once (no backoff after a timeout).
    @Test func aStalledServerFailsItsLookupsAtTheOldestDeadline() throws {
        let server = try ScriptedServer(.silent)
        var settings = RedisSettings.local(port: server.port)
        settings.commandTimeoutMs = 200
        let harness = PipelineHarness(settings)
        let start = Clock.nowMs()
        harness.lookup("a", token: 0)
        harness.run(forMs: 100, alsoEachTurn: server.serve)
        harness.lookup("b", token: 1)
        #expect(harness.results.isEmpty)
        #expect(harness.run(alsoEachTurn: server.serve) { harness.results.count == 2 })
        let elapsed = Clock.nowMs() - start
        #expect(elapsed >= 200, "failed after \(elapsed) ms, before the 200 ms deadline")
        #expect(elapsed < 5000)
        #expect(harness.result(0) == .failed(.timedOut))
        #expect(harness.result(1) == .failed(.timedOut))
        #expect(harness.events.contains(.timedOut))
        #expect(harness.events.contains { if case .connectionFailed(let error) = $0 { error.kind == .timeout } else { false } })
        #expect(String(decoding: server.received, as: UTF8.self).contains("$4\r\ndata\r\n$1\r\nb\r\n"))

        harness.lookup("c", token: 2)
        #expect(harness.result(2) == nil, "no backoff after a timeout: the lookup is sent")
        #expect(harness.run(alsoEachTurn: server.serve) { server.accepted == 2 })
        #expect(harness.run(alsoEachTurn: server.serve) { harness.result(2) != nil })
        #expect(harness.result(2) == .failed(.timedOut))
    }

    /// A connect that never completes (the server's listen queue is full) fails its lookups as
    /// `.unavailable` at `connect_timeout_ms`, and the pipeline backs off.
    @Test func aConnectThatHangsFailsAtTheConnectTimeout() throws {
        let server = try ScriptedServer(.silent, backlog: 0)
        let fillers = (0..<3).map { _ in server.occupyQueue() }
        defer { fillers.forEach(server.release) }
        var settings = RedisSettings.local(port: server.port)
        settings.connectTimeoutMs = 200
        let harness = PipelineHarness(settings)
        let start = Clock.nowMs()
        harness.lookup("k", token: 0)
        #expect(harness.result(0) == nil, "the connect is in progress")
        #expect(harness.run { harness.result(0) != nil })
        let elapsed = Clock.nowMs() - start
        #expect(elapsed >= 200, "failed after \(elapsed) ms, before the 200 ms connect timeout")
        #expect(elapsed < 5000)
        #expect(harness.result(0) == .failed(.unavailable))
        #expect(harness.events.contains(.timedOut))
        #expect(harness.events.contains { if case .connectionFailed(let error) = $0 { error.kind == .connect } else { false } })
        harness.lookup("k", token: 1)
        #expect(harness.result(1) == .failed(.unavailable), "backing off after a failed connect")
    }

    @Test func aReplyNobodyAskedForBreaksTheConnection() throws {
        let server = try ScriptedServer(.answer(Array("$1\r\na\r\n+PONG\r\n".utf8)))
        let harness = PipelineHarness(.local(port: server.port))
        harness.lookup("k", token: 0)
        #expect(harness.run(alsoEachTurn: server.serve) { harness.failures == 1 })
        #expect(harness.result(0) == .reply(.bulk([UInt8(ascii: "a")])))
        #expect(harness.events.contains { if case .connectionFailed(let error) = $0 { error.kind == .io } else { false } })
        harness.lookup("k", token: 1)
        #expect(harness.result(1) == .failed(.unavailable))
    }

    // MARK: Retarget

    /// A reload while lookups are in flight: they are answered by the old server, lookups
    /// submitted meanwhile wait (not failed, not sent), then go to the new one, in order.
    @Test func retargetWaitsForTheLookupsInFlightThenSwitches() throws {
        let old = try RedisServer()
        let new = try RedisServer()
        try old.command(["HSET", "data", "k", "old"])
        try new.command(["SET", "p:k", "new"])
        let oldSettings = RedisSettings.local(port: old.port)
        let newSettings = RedisSettings.local(port: new.port, layout: .string, prefix: "p:")
        let harness = PipelineHarness(oldSettings)
        harness.lookup("k", token: 0)
        #expect(harness.run { harness.results.count == 1 })

        old.pause()
        defer { old.resume() }
        harness.lookup("k", token: 1)
        harness.lookup("k", token: 2)
        harness.run(forMs: 50)
        harness.pipeline.retarget(newSettings, nowMs: Clock.nowMs())
        harness.lookup("k", token: 3)
        harness.pipeline.ping(token: LookupToken(4), nowMs: Clock.nowMs())
        harness.run(forMs: 300)
        #expect(harness.results.count == 1, "in flight: not failed; submitted after the reload: held")
        #expect(harness.pipeline.settings == oldSettings)

        old.resume()
        #expect(harness.run { harness.results.count == 5 })
        #expect(harness.results.map(\.token.value) == [0, 1, 2, 3, 4])
        #expect(harness.result(1) == .reply(.bulk(Array("old".utf8))))
        #expect(harness.result(2) == .reply(.bulk(Array("old".utf8))))
        #expect(harness.result(3) == .reply(.bulk(Array("new".utf8))))
        #expect(harness.result(4) == .reply(.status("PONG")))
        #expect(harness.pipeline.settings == newSettings)
        #expect(harness.events.contains(.settingsApplied(previous: oldSettings)))
        #expect(harness.failures == 0)

        // The same settings again change nothing.
        let events = harness.events.count
        harness.pipeline.retarget(newSettings, nowMs: Clock.nowMs())
        #expect(harness.events.count == events)
    }

    @Test func abandonFailsEveryPendingLookupWithShuttingDown() throws {
        let server = try ScriptedServer(.silent)
        let other = try ScriptedServer(.silent)
        let harness = PipelineHarness(.local(port: server.port))
        harness.lookup("a", token: 0)
        harness.pipeline.ping(token: LookupToken(1), nowMs: Clock.nowMs())
        harness.run(forMs: 20, alsoEachTurn: server.serve)
        harness.pipeline.retarget(.local(port: other.port), nowMs: Clock.nowMs())
        harness.lookup("b", token: 2)
        #expect(harness.results.isEmpty)
        harness.pipeline.abandon()
        #expect(harness.results.map(\.token.value) == [2, 0, 1])
        #expect(harness.results.allSatisfy { $0.result == .failed(.shuttingDown) })
        #expect(harness.pipeline.nextDeadlineMs() == nil)
        var descriptors: [pollfd] = []
        harness.pipeline.appendPollDescriptors(to: &descriptors)
        #expect(descriptors.isEmpty, "the connection is closed")
    }
}
