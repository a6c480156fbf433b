import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kvd when Redis fails: down, stalled, wrong type, killed and restarted under load.
@Suite("kvd: Redis faults", .serialized)
struct KVDFaultTests {
    static let timeouts = "connect_timeout_ms = 300\ncommand_timeout_ms = 400\nreconnect_max_ms = 200\n"

    /// Nothing listens on Redis's port: the connection is refused at once, so the 503 must not wait
    /// for the connect timeout. That timeout is set long (8 s) so the bound below separates the two
    /// on a loaded machine: a refused connect answers in milliseconds, a wait for the deadline in 8 s.
    @Test func redisDownAnswers503WithRetryAfterWithinTheConnectTimeout() throws {
        let port = try FreePort.find()
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n[redis]\nport = \(port)\n"
            + "connect_timeout_ms = 8000\ncommand_timeout_ms = 400\nreconnect_max_ms = 200\n")
        for _ in 0..<5 {
            let started = Date()
            let response = try kvd.get("/get/anything")
            #expect(response.status == 503)
            #expect(response.header("Retry-After") == "1")
            #expect(response.text == #"{"detail":"Redis unavailable"}"#)
            #expect(Date().timeIntervalSince(started) < 4)
        }
        #expect(kvd.process.isRunning)
    }

    @Test func missingUnixSocketAnswers503() throws {
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n[redis]\nsocket = /nonexistent/redis.sock\n" + Self.timeouts)
        let response = try kvd.get("/get/anything")
        #expect(response.status == 503)
    }

    @Test func recoversByItselfWhenRedisComesBack() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis, extra: Self.timeouts))
        #expect(try kvd.get("/get/k").status == 200)
        redis.kill()
        #expect(try kvd.get("/get/k").status == 503)
        try redis.restart()
        try redis.command(["HSET", "data", "k", "v"])
        let restarted = Date()
        // Every worker must be back: ask on several fresh connections until all answer 200.
        let recovered = waitUntil(timeout: 5, interval: 0.05) {
            (0..<8).allSatisfy { _ in (try? kvd.get("/get/k").status) == 200 }
        }
        #expect(recovered)
        // kvd's part is a backoff of at most reconnect_max_ms (200 ms) and a loopback connect; the
        // rest is this test's polling (8 fresh connections a round), slow on a loaded machine.
        #expect(Date().timeIntervalSince(restarted) < 3)
        // The log arrives through a pipe read by another thread: wait for it rather than race it.
        #expect(waitUntil(timeout: 5, interval: 0.05) { kvd.log.contains("Redis connection restored") })
        #expect(kvd.log.contains("Redis unavailable"))
    }

    @Test func stalledRedisAnswers504AndTheConnectionIsReplaced() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: Self.timeouts))
        #expect(try kvd.get("/get/k").status == 200)
        redis.pause()
        let started = Date()
        let response = try kvd.get("/get/k")
        let waited = Date().timeIntervalSince(started)
        redis.resume()
        #expect(response.status == 504)
        #expect(response.text == #"{"detail":"Redis timed out"}"#)
        #expect(waited >= 0.35 && waited < 3)
        #expect(waitUntil(timeout: 5) { (try? kvd.get("/get/k").status) == 200 })
        // The timed-out connection was closed: Redis sees only the replacement.
        #expect(waitUntil(timeout: 5) { (try? redis.command(["CLIENT", "LIST"]).split(separator: "\n").filter { !$0.contains("cmd=client") }.count) == 1 })
    }

    @Test func debugSleepAnswers504ThenRecovers() throws {
        let redis = try RedisServer(extraArguments: ["--enable-debug-command", "yes"])
        try redis.command(["HSET", "data", "k", "v"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: Self.timeouts))
        #expect(try kvd.get("/get/k").status == 200)
        let sleeper = try ChildProcess("/usr/bin/redis-cli", ["-p", String(redis.port), "DEBUG", "SLEEP", "1.5"])
        defer { sleeper.stop() }
        #expect(waitUntil(timeout: 5) { (try? kvd.get("/get/k").status) == 504 })
        #expect(waitUntil(timeout: 5) { (try? kvd.get("/get/k").status) == 200 })
    }

    @Test func redisErrorRepliesAnswer502() throws {
        let redis = try RedisServer()
        try redis.command(["SET", "data", "not a hash"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis))
        let response = try kvd.get("/get/k")
        #expect(response.status == 502)
        #expect(response.text.hasPrefix(#"{"detail":"Redis error: WRONGTYPE"#))
        #expect(try kvd.get("/get/k").status == 502)
    }

    @Test func killAndRestartCyclesUnderLoadLeakNothing() async throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis, extra: Self.timeouts))
        // The baseline counts both workers' Redis connections: each opens its own lazily, on its
        // first lookup, so ask on fresh connections until Redis sees both.
        func redisClients() throws -> Int {
            try redis.command(["CLIENT", "LIST"]).split(separator: "\n").filter { !$0.contains("cmd=client") }.count
        }
        #expect(waitUntil(timeout: 5) { (try? kvd.get("/get/k").status) == 200 && (try? redisClients()) == 2 })
        let baseline = kvd.ownDescriptorsBesidesClients
        let baselineReport = kvd.descriptorReport
        let port = kvd.port
        let stop = ManagedFlag()
        let load = Task.detached {
            var statuses: [Int: Int] = [:]
            while !stop.isSet {
                if let connection = try? HTTPConnection(port: port) {
                    for _ in 0..<20 {
                        guard let response = try? connection.request("GET", "/get/k") else { break }
                        statuses[response.status, default: 0] += 1
                    }
                }
            }
            return statuses
        }
        for _ in 0..<5 {
            try await Task.sleep(for: .milliseconds(200))
            redis.kill()
            try await Task.sleep(for: .milliseconds(200))
            try redis.restart()
            try redis.command(["HSET", "data", "k", "v"])
        }
        #expect(waitUntil(timeout: 5) { (try? kvd.get("/get/k").status) == 200 })
        stop.set()
        let statuses = await load.value
        #expect(kvd.process.isRunning)
        // 404 is honest too: a restarted Redis is empty until the test writes the key again.
        #expect(Set(statuses.keys).isSubset(of: [200, 404, 503, 504]), "\(statuses)")
        #expect(statuses[200, default: 0] > 0)
        // Descriptors settle back to the baseline (client sockets may take a moment to close; on a
        // loaded machine the workers may be slow to see the load's last connections go).
        #expect(waitUntil(timeout: 15) { kvd.ownDescriptorsBesidesClients <= baseline + 1 },
                "fds \(kvd.ownDescriptorsBesidesClients) vs \(baseline): now \(kvd.descriptorReport); at the baseline \(baselineReport)")
        // At most one Redis connection per worker.
        #expect(try redisClients() <= 2)
    }

    @Test func sigtermFinishesRequestsInFlightThenExitsZero() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: "command_timeout_ms = 5000\n"))
        let connection = try HTTPConnection(port: kvd.port)
        redis.pause()
        try connection.send("GET /get/k HTTP/1.1\r\nHost: x\r\n\r\n")
        // The lookup has reached frozen Redis (bytes wait in its socket) when SIGTERM arrives.
        #expect(waitUntil(timeout: 5) { redisHasUnreadBytes(port: redis.port) })
        kvd.process.signal(SIGTERM)
        #expect(waitUntil(timeout: 5) { kvd.log.contains("stopping") })
        // New connections are refused while the old request waits.
        #expect((try? HTTPConnection(port: kvd.port).request("GET", "/healthz")) == nil)
        redis.resume()
        let response = try connection.readResponse()
        #expect(response.status == 200)
        #expect(response.text == #""v""#)
        #expect(kvd.process.waitForExit(timeout: 10) == 0)
        #expect(kvd.log.contains("stopped"))
    }

    @Test func sigintAlsoStopsCleanly() throws {
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n")
        #expect(try kvd.get("/healthz").status == 200)
        kvd.process.signal(SIGINT)
        #expect(kvd.process.waitForExit(timeout: 10) == 0)
    }
}

/// A flag one task sets and another polls.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
}

/// Whether a connection to Redis on `port` holds bytes Redis has not read (it is frozen).
func redisHasUnreadBytes(port: Int) -> Bool {
    guard let result = try? ChildProcess.run("/usr/bin/ss", ["-tnH", "state", "established", "( sport = :\(port) )"]) else {
        return false
    }
    return result.stdout.split(separator: "\n").contains { line in
        line.split(separator: " ", omittingEmptySubsequences: true).first.flatMap { Int($0) }.map { $0 > 0 } ?? false
    }
}
