import Foundation
import KVDTestSupport
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kvd with big values, with a Redis that answers but refuses for now, and reloads of [redis]
/// settings that do not work: issue 9, defects 5, 6, 8 and 12 (SIGHUP).
@Suite("kvd: big values, refusals and [redis] reloads", .serialized)
struct KVDBigValueAndRefusalTests {
    static let timeouts = "connect_timeout_ms = 300\ncommand_timeout_ms = 1000\nreconnect_max_ms = 200\n"

    /// Defect 5: eight concurrent GETs of a 10 MB value and a small GET, on one worker. Redis
    /// answers them in tens of milliseconds; kvd used to read 16 KB a loop turn and counted its own
    /// reading and JSON encoding against `command_timeout_ms` (1000 ms): four of the eight got 504.
    @Test func concurrentBigValuesAreAllServedWithoutFalseTimeouts() throws {
        let redis = try RedisServer()
        let size = 10 << 20
        _ = try redis.command(["-x", "HSET", "data", "big"], input: Data(repeating: UInt8(ascii: "a"), count: size))
        try redis.command(["HSET", "data", "small", "v"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: Self.timeouts))
        let statuses = Mutex<[Int: Int]>([:])
        let lengths = Mutex<[Int: Int]>([:])
        DispatchQueue.concurrentPerform(iterations: 9) { index in
            let response = try? HTTPConnection(port: kvd.port, timeout: 60).request("GET", index == 8 ? "/get/small" : "/get/big")
            statuses.withLock { $0[index] = response?.status ?? -1 }
            lengths.withLock { $0[index] = response?.body.count ?? -1 }
        }
        let answered = statuses.withLock { $0 }
        #expect((0..<9).allSatisfy { answered[$0] == 200 }, "statuses: \(answered.sorted { $0.key < $1.key })")
        let bodies = lengths.withLock { $0 }
        #expect((0..<8).allSatisfy { bodies[$0] == size + 2 }, "a JSON string of the whole value")
        #expect(!kvd.log.contains("Redis unavailable"), "the Redis connection was never torn down")
    }

    /// Defect 6: eight clients ask for a 10 MB value whose JSON is 60 MB (control bytes escape to
    /// `\u0000`) and never read. kvd held their answers (here +200 MiB RSS) and kept +81 MiB after
    /// they left (the issue saw 495 MB and 200 MB); with the fix: +61 MiB, then +1 MiB.
    /// Now big answers not yet sent are bounded by `max_unsent_bytes` (plus one answer); the others
    /// get 503 + Retry-After, and the memory goes back once the clients are gone.
    @Test func clientsThatDoNotReadBigAnswersCannotGrowMemoryPastTheLimit() throws {
        let redis = try RedisServer()
        let size = 10 << 20
        try redis.command(["SETRANGE", "big", String(size - 1), "\u{1}"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 2\nmax_unsent_bytes = 16777216\n"
            + KVDProcess.redisSection(redis, extra: Self.timeouts + "layout = string\n"))
        #expect(try kvd.get("/get/absent").status == 404)
        let baseline = try #require(Self.residentBytes(kvd))
        var clients: [HTTPConnection] = []
        for _ in 0..<8 {
            let client = try HTTPConnection(port: kvd.port)
            try client.send("GET /get/big HTTP/1.1\r\nHost: kvd\r\n\r\n")
            clients.append(client)
        }
        #expect(waitUntil(timeout: 60, interval: 0.1) { Self.answeredGets(kvd) >= 9 }, "every GET answered")
        let held = try #require(Self.residentBytes(kvd))
        #expect(KVDProcess.sanitized || held - baseline < 150 << 20, "RSS grew by \((held - baseline) >> 20) MiB while clients do not read")
        clients.removeAll()
        var after = held
        let released = waitUntil(timeout: 30, interval: 0.1) {
            after = Self.residentBytes(kvd) ?? after
            return after - baseline < 40 << 20
        }
        #expect(KVDProcess.sanitized || released, "RSS \((after - baseline) >> 20) MiB above the baseline after the clients left")
        // The budget is free again: a client that reads gets the whole answer.
        let response = try HTTPConnection(port: kvd.port, timeout: 60).request("GET", "/get/big")
        #expect(response.status == 200)
        #expect(response.body.count == 6 * size + 2)
    }

    /// Defect 8: a Lua script past `busy-reply-threshold` makes Redis answer `-BUSY`: kvd answers
    /// 503 + Retry-After (it answered 502), logs one line for the whole episode and one when Redis
    /// answers again.
    @Test func busyRedisAnswers503WithRetryAfterAndLogsOnce() throws {
        let redis = try RedisServer(extraArguments: ["--busy-reply-threshold", "100"])
        try redis.command(["HSET", "data", "k", "v"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: Self.timeouts))
        #expect(try kvd.get("/get/k").status == 200)
        let script = try ChildProcess("/usr/bin/redis-cli", ["-p", String(redis.port), "EVAL", "while true do end", "0"])
        defer { script.stop(grace: 1) }
        #expect(waitUntil(timeout: 10) { (try? kvd.get("/get/k").status) != 200 })
        for _ in 0..<5 {
            let response = try kvd.get("/get/k")
            #expect(response.status == 503)
            #expect(response.header("Retry-After") == "1")
        }
        try redis.command(["SCRIPT", "KILL"])
        #expect(waitUntil(timeout: 10) { (try? kvd.get("/get/k").status) == 200 })
        let log = kvd.log
        #expect(log.components(separatedBy: "Redis unavailable").count - 1 == 1, "\(log)")
        #expect(log.contains("BUSY"))
        #expect(log.components(separatedBy: "Redis connection restored").count - 1 == 1, "\(log)")
    }

    /// Defect 8: Redis reading its data file after a start answers `-LOADING`: kvd answers 503 +
    /// Retry-After (it answered 502), then 200 once Redis has loaded, with one log line each way.
    @Test func loadingRedisAnswers503WithRetryAfterUntilItHasLoaded() throws {
        let seed = try RedisServer()
        // 150 keys of 1 KB that do not compress, so that the data file is 150 KB.
        try seed.command(["EVAL", "for i = 1, 150 do local v = {} for j = 1, 25 do v[j] = redis.sha1hex(i .. ':' .. j) end "
                                  + "redis.call('SET', 'filler' .. i, table.concat(v)) end", "0"])
        try seed.command(["HSET", "data", "k", "v"])
        try seed.command(["SAVE"])
        let directory = try TemporaryDirectory.make(prefix: "redis-loading")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.copyItem(atPath: seed.directory + "/dump.rdb", toPath: directory + "/dump.rdb")
        seed.stop()
        let port = try FreePort.find()
        // key-load-delay (µs per key; a hook of Redis's own tests) makes the load last about 3 s, and
        // events every KiB let Redis answer LOADING meanwhile.
        let loading = try ChildProcess(RedisServer.executable, [
            "--port", String(port), "--bind", "127.0.0.1", "--dir", directory, "--save", "", "--appendonly", "no",
            "--daemonize", "no", "--logfile", "", "--key-load-delay", "20000", "--loading-process-events-interval-bytes", "1024",
        ])
        defer { loading.stop(grace: 1) }
        #expect(waitUntil(timeout: 10) {
            (try? ChildProcess.run("/usr/bin/redis-cli", ["-p", String(port), "PING"], timeout: 5).stdout.contains("LOADING")) == true
        })
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n[redis]\nport = \(port)\n" + Self.timeouts)
        let response = try kvd.get("/get/k")
        #expect(response.status == 503)
        #expect(response.header("Retry-After") == "1")
        #expect(waitUntil(timeout: 30, interval: 0.05) { (try? kvd.get("/get/k").status) == 200 })
        let log = kvd.log
        #expect(log.components(separatedBy: "Redis unavailable").count - 1 == 1, "\(log)")
        #expect(log.contains("LOADING"))
        #expect(log.components(separatedBy: "Redis connection restored").count - 1 == 1, "\(log)")
    }

    /// Defect 8: Redis at `maxclients` turns kvd's connection away: 503 + Retry-After (it was 502
    /// with Redis's text), and one log line for the outage, one for its end (it flapped: every
    /// attempt logged "restored").
    @Test func maxClientsReachedAnswers503AndTheLogDoesNotFlap() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: Self.timeouts))
        let holder = try ChildProcess("/usr/bin/redis-cli", ["-p", String(redis.port), "BLPOP", "never", "0"])
        defer { holder.stop(grace: 1) }
        #expect(waitUntil(timeout: 10) { (try? redis.command(["CLIENT", "LIST"]).contains("cmd=blpop")) == true })
        // The worker connected when it started: that connection goes (kvd reconnects at its next
        // lookup), then Redis takes no one but the holder, and kvd's next connection is turned away.
        let kvdClients = try redis.command(["CLIENT", "LIST"]).split(separator: "\n")
            .filter { !$0.contains("cmd=blpop") && !$0.contains("cmd=client|list") }
            .compactMap { $0.split(separator: " ").first { $0.hasPrefix("id=") }?.dropFirst(3) }
        #expect(kvdClients.count == 1, "kvd's worker holds one connection from its start")
        for id in kvdClients { _ = try redis.command(["CLIENT", "KILL", "ID", String(id)]) }
        try redis.command(["CONFIG", "SET", "maxclients", "1"])
        for _ in 0..<5 {
            let response = try kvd.get("/get/k")
            #expect(response.status == 503)
            #expect(response.header("Retry-After") == "1")
            #expect(!response.text.contains("max number of clients"))
        }
        holder.stop(grace: 1)
        #expect(waitUntil(timeout: 10) { (try? kvd.get("/get/k").status) == 200 })
        let log = kvd.log
        #expect(log.components(separatedBy: "Redis unavailable").count - 1 == 1, "\(log)")
        #expect(log.components(separatedBy: "Redis connection restored").count - 1 == 1, "\(log)")
    }

    /// Defect 12: a reload with a wrong Redis password is tried first and refused (logged, without
    /// the secret); kvd keeps serving on the old settings. A reload that works is applied.
    @Test func sighupWithAWrongPasswordIsRefusedAndKVDKeepsServing() throws {
        let redis = try RedisServer(password: "right-secret-7")
        try redis.command(["HSET", "data", "k", "db0"])
        try redis.command(["-n", "1", "HSET", "data", "k", "db1"])
        let base = "[http]\nthreads = 2\n[redis]\nport = \(redis.port)\n" + Self.timeouts
        let kvd = try KVDProcess(config: base + "password = right-secret-7\n")
        #expect(try kvd.get("/get/k").text == #""db0""#)
        try (KVDProcess.withEphemeralPort(base) + "password = wrong-secret-9\n").write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 10) { kvd.log.contains("[redis] settings do not work") })
        for _ in 0..<6 {
            #expect(try kvd.get("/get/k").status == 200)
        }
        #expect(kvd.log.contains("WRONGPASS") || kvd.log.contains("invalid password"), "\(kvd.log)")
        try (KVDProcess.withEphemeralPort(base) + "password = right-secret-7\ndb = 1\n").write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 10) { (try? kvd.get("/get/k").text) == #""db1""# })
        #expect(kvd.log.contains("applied redis.db"))
        #expect(!kvd.log.contains("secret-"), "no password in the log")
        #expect(kvd.process.isRunning)
    }

    /// kvd's resident memory, from /proc.
    static func residentBytes(_ kvd: KVDProcess) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(kvd.process.pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
              let kilobytes = Int(line.split(separator: " ")[1]) else { return nil }
        return kilobytes * 1024
    }

    /// GETs answered so far (any status), from kvd's metrics.
    static func answeredGets(_ kvd: KVDProcess) -> Int {
        guard let text = try? kvd.get("/metrics").text else { return 0 }
        return text.split(separator: "\n")
            .filter { $0.hasPrefix("kvd_http_requests_total{") && $0.contains(#"route="get""#) }
            .compactMap { $0.split(separator: " ").last.flatMap { Int(Double($0) ?? -1) } }
            .reduce(0, +)
    }
}
