import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kvd under a service manager, without one: sd_notify through a test NOTIFY_SOCKET.
@Suite("kvd: systemd notifications")
struct KVDSystemdNotifyTests {
    @Test func readyStatusAndStoppingAreSent() throws {
        let notify = try NotifySocket()
        let redis = try RedisServer()
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis),
                                environment: notify.environment)
        #expect(notify.waitFor(timeout: 10) { $0 == "READY=1" } != nil)
        let status = notify.waitFor(timeout: 10) { $0.hasPrefix("STATUS=") }
        #expect(status?.contains("Redis 127.0.0.1:\(redis.port) up") == true, "\(String(describing: status))")
        #expect(status?.contains("req/s") == true)
        kvd.process.signal(SIGTERM)
        #expect(kvd.process.waitForExit(timeout: 10) == 0)
        #expect(notify.assignments.contains("STOPPING=1"))
        // READY comes before STOPPING.
        let order = notify.assignments
        let ready = try #require(order.firstIndex(of: "READY=1"))
        let stopping = try #require(order.firstIndex(of: "STOPPING=1"))
        #expect(ready < stopping)
    }

    @Test func watchdogPingsWhileWorkersTurnAndStatusReportsRedisDown() throws {
        let notify = try NotifySocket()
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        var environment = notify.environment
        environment["WATCHDOG_USEC"] = "300000"
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis, extra: KVDFaultTests.timeouts),
                                environment: environment)
        // An idle kvd keeps pinging: its workers are woken and turn.
        #expect(waitUntil(timeout: 10) { notify.assignments.filter { $0 == "WATCHDOG=1" }.count >= 5 })
        #expect(kvd.log.contains("systemd watchdog armed: 300 ms"))
        #expect(try kvd.get("/get/k").status == 200)
        redis.kill()
        #expect(try kvd.get("/get/k").status == 503)
        notify.clear()
        #expect(notify.waitFor(timeout: 10) { $0.hasPrefix("STATUS=") && $0.contains("DOWN") } != nil)
        // A Redis outage is not a wedge: the pings go on.
        notify.clear()
        #expect(notify.waitFor(timeout: 10) { $0 == "WATCHDOG=1" } != nil)
    }

    @Test func aWorkerBlockedInALogWriteStopsThePings() throws {
        let notify = try NotifySocket()
        // kvd's standard error: a pipe nobody reads. Once it is full, the worker blocks in the
        // write of an access-log line: a real wedge, in a system call.
        var ends: [Int32] = [0, 0]
        #expect(pipe(&ends) == 0)
        let (readEnd, writeEnd) = (ends[0], ends[1])
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        _ = fcntl(writeEnd, 1031 /* F_SETPIPE_SZ */, 4096)
        let port = try FreePort.find()
        let config = try TemporaryDirectory.make(prefix: "wedge") + "/kvd.conf"
        try "[http]\nport = \(port)\nthreads = 1\n[log]\naccess = yes\n".write(toFile: config, atomically: true, encoding: .utf8)
        var environment = notify.environment
        environment["WATCHDOG_USEC"] = "600000"
        let kvd = try ChildProcess(try Binaries.path("kvd"), ["--config", config], environment: environment, stderrDescriptor: writeEnd)
        close(writeEnd)
        defer {
            close(readEnd)  // the blocked write fails with EPIPE: kvd can stop
            kvd.stop()
        }
        #expect(notify.waitFor(timeout: 10) { $0 == "WATCHDOG=1" } != nil)
        // A request that gets no answer within 5 s is taken as the worker being blocked (a loaded
        // machine can be slow, but not that slow); the pings withheld below confirm it.
        var answered = 0
        while answered < 5000, (try? HTTPConnection(port: port, timeout: 5).request("GET", "/healthz").status) == 200 {
            answered += 1
        }
        #expect(answered < 5000, "the worker never blocked")
        // The supervisor reports once more, without the ping (every STATUS= before had one;
        // then its own log line blocks too, which is fine: systemd restarts kvd either way).
        var withheld = false
        waitUntil(timeout: 10) {
            withheld = notify.messages.contains { $0.hasPrefix("STATUS=") && !$0.contains("WATCHDOG=1") }
            return withheld
        }
        #expect(withheld, "\(notify.messages.suffix(6)) answered \(answered)")
        #expect(kvd.isRunning)
    }

    @Test func reloadIsAnnounced() throws {
        let notify = try NotifySocket()
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n", environment: notify.environment)
        #expect(notify.waitFor(timeout: 10) { $0 == "READY=1" } != nil)
        notify.clear()
        kvd.process.signal(SIGHUP)
        #expect(notify.waitFor(timeout: 10) { $0 == "RELOADING=1" } != nil)
        #expect(waitUntil(timeout: 10) { notify.assignments.contains("READY=1") })
    }

    @Test func withoutNotifySocketNothingIsSentAndKVDRuns() throws {
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n", environment: ["NOTIFY_SOCKET": ""])
        #expect(try kvd.get("/healthz").status == 200)
    }
}

/// The Redis password from a file, as systemd's LoadCredential= hands it over.
@Suite("kvd: password_file and credentials")
struct KVDPasswordFileTests {
    @Test func passwordFromTheCredentialsDirectoryAuthenticatesAndIsNeverLogged() throws {
        let secret = "cr3dential-pa55"
        let redis = try RedisServer(password: secret)
        try redis.command(["HSET", "data", "k", "v"])
        let credentials = try TemporaryDirectory.make(prefix: "credentials")
        try "\(secret)\n".write(toFile: credentials + "/redis-password", atomically: true, encoding: .utf8)
        let kvd = try KVDProcess(
            config: "[http]\nport = 0\nthreads = 1\n[redis]\nport = \(redis.port)\npassword_file = redis-password\n[log]\nlevel = debug\n",
            environment: ["CREDENTIALS_DIRECTORY": credentials])
        #expect(try kvd.get("/get/k").text == #""v""#)
        #expect(!kvd.log.contains(secret))
        let check = try ChildProcess.run(try Binaries.path("kvd"), ["--check-config", "--config", kvd.configPath],
                                         environment: ["CREDENTIALS_DIRECTORY": credentials], timeout: 30)
        #expect(check.status == 0)
        #expect(!(check.stdout + check.stderr).contains(secret))
    }

    @Test func unreadablePasswordFileExits78() throws {
        let config = try TemporaryDirectory.make(prefix: "conf") + "/kvd.conf"
        try "[redis]\npassword_file = /nonexistent/redis-password\n".write(toFile: config, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(try Binaries.path("kvd"), ["--check-config", "--config", config], timeout: 30)
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(config):2: [redis] password_file: cannot read '/nonexistent/redis-password'"))
    }
}

/// `/readyz`: 200 only while Redis answers this worker's PING, without blocking the worker.
@Suite("kvd: readiness")
struct KVDReadinessTests {
    @Test func readyzFollowsRedisWhileHealthzStays200() throws {
        let redis = try RedisServer()
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis, extra: KVDFaultTests.timeouts))
        let ready = try kvd.get("/readyz")
        #expect(ready.status == 200)
        #expect(ready.text == #"{"status":"ready"}"#)
        redis.kill()
        // Every worker notices (each has its own connection): ask on fresh connections.
        #expect(waitUntil(timeout: 5, interval: 0.05) { (0..<6).allSatisfy { _ in (try? kvd.get("/readyz").status) == 503 } })
        let down = try kvd.get("/readyz")
        #expect(down.text == #"{"detail":"Not ready: Redis does not answer"}"#)
        #expect(down.header("Retry-After") == "1")
        #expect(try kvd.get("/healthz").status == 200)
        #expect(kvd.process.isRunning)
        try redis.restart()
        #expect(waitUntil(timeout: 5, interval: 0.05) { (0..<6).allSatisfy { _ in (try? kvd.get("/readyz").status) == 200 } })
    }

    @Test func stalledRedisMakesReadyz503WhileOtherRequestsAreServed() throws {
        let redis = try RedisServer()
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: KVDFaultTests.timeouts))
        #expect(try kvd.get("/readyz").status == 200)
        redis.pause()
        defer { redis.resume() }
        let probe = try HTTPConnection(port: kvd.port)
        // The worker is not blocked while its PING waits: /healthz answers meanwhile.
        try probe.send("GET /readyz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        #expect(try kvd.get("/healthz").status == 200)
        #expect(try probe.readResponse().status == 503)
    }

    @Test func wrongPasswordIsNotReady() throws {
        let redis = try RedisServer(password: "right")
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n[redis]\nport = \(redis.port)\npassword = wrong\n")
        #expect(try kvd.get("/readyz").status == 503)
    }
}

/// Socket activation: kvd adopts the listening socket passed with LISTEN_FDS/LISTEN_PID.
@Suite("kvd: socket activation")
struct KVDSocketActivationTests {
    /// systemd's own test tool: it listens, then on the first connection execs kvd in place with
    /// the socket as fd 3 and LISTEN_FDS/LISTEN_PID set, as systemd does for kvd.socket.
    static let activator = "/usr/bin/systemd-socket-activate"

    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: activator), "systemd-socket-activate is missing (package systemd)"))
    func servesOnTheInheritedSocket() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "activated"])
        let port = try FreePort.find()
        let directory = try TemporaryDirectory.make(prefix: "activate")
        // The [http] port is deliberately another one: the inherited socket wins.
        try "[http]\nport = 1\nthreads = 2\n\(KVDProcess.redisSection(redis))".write(toFile: directory + "/kvd.conf", atomically: true, encoding: .utf8)
        let notify = try NotifySocket()
        // The activator passes its children only the variables named with --setenv.
        let child = try ChildProcess(Self.activator, ["--listen=127.0.0.1:\(port)", "--setenv=NOTIFY_SOCKET=\(notify.path)",
                                                      try Binaries.path("kvd"), "--config", directory + "/kvd.conf"])
        defer { child.stop() }
        #expect(waitUntil(timeout: 10) { child.standardError.contains("Listening on 127.0.0.1:\(port)") })
        // This first connection starts kvd, which then answers it on the socket it inherited.
        #expect(try httpRequest(port: port, "GET", "/get/k").text == #""activated""#)
        // kvd may answer before its start-up line has come through the pipe: wait for it.
        #expect(waitUntil(timeout: 10) { child.standardError.contains("listening on 127.0.0.1:\(port) (socket fd 3 from the service manager)") })
        #expect(notify.waitFor(timeout: 10) { $0 == "READY=1" } != nil)
        for _ in 0..<20 { #expect(try httpRequest(port: port, "GET", "/get/k").status == 200) }
        child.signal(SIGTERM)
        #expect(child.waitForExit(timeout: 10) == 0)
    }

    @Test func restartsOnTheSameSocketRefuseNoConnection() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        let listener = try TCPListener(backlog: 511)
        let config = try TemporaryDirectory.make(prefix: "activated") + "/kvd.conf"
        try "[http]\nthreads = 2\n\(KVDProcess.redisSection(redis))".write(toFile: config, atomically: true, encoding: .utf8)
        let kvd = try Binaries.path("kvd")
        func start() throws -> ChildProcess {
            let process = try ChildProcess(kvd, ["--config", config], listeningSocket: listener)
            guard waitUntil(timeout: 20, { process.standardError.contains("listening on") }) else {
                throw TestSupportError("kvd did not start: \(process.standardError)")
            }
            return process
        }
        var current = try start()
        #expect(current.standardError.contains("(socket fd 3 from the service manager)"))
        let client = ClientLoop(port: listener.port, target: "/get/k")
        for _ in 0..<3 {
            let before = client.answered
            #expect(waitUntil(timeout: 10) { client.answered >= before + 20 })
            current.signal(SIGTERM)
            #expect(current.waitForExit(timeout: 15) == 0)
            current = try start()
        }
        let before = client.answered
        #expect(waitUntil(timeout: 10) { client.answered >= before + 20 })
        let result = client.finish()
        #expect(result.connectionErrors.isEmpty, "\(result.connectionErrors.prefix(5))")
        #expect(result.statuses.keys.allSatisfy { $0 == 200 }, "\(result.statuses)")
        current.stop()
    }

    @Test func listenFDsForAnotherProcessAreIgnored() throws {
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n", environment: ["LISTEN_FDS": "1", "LISTEN_PID": "1"])
        #expect(try kvd.get("/healthz").status == 200)
        #expect(!kvd.log.contains("from the service manager"))
    }

    @Test func aPassedDescriptorThatIsNotAListeningSocketExits78() throws {
        // Under systemd-socket-activate in --datagram mode fd 3 is a UDP socket.
        let port = try FreePort.find()
        let child = try ChildProcess(Self.activator, ["--datagram", "--listen=127.0.0.1:\(port)", try Binaries.path("kvd")])
        defer { child.stop() }
        #expect(waitUntil(timeout: 10) { child.standardError.contains("Listening on") })
        // A datagram starts the program.
        let sender = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        defer { close(sender) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(sender, "x", 1, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        #expect(child.waitForExit(timeout: 10) == 78)
        #expect(child.standardError.contains("is not a listening TCP stream socket"))
    }
}

/// Requests one target on a new connection each time, on its own thread, until `finish()`;
/// counts statuses and connection errors (refused, reset, timed out).
final class ClientLoop: @unchecked Sendable {
    private let lock = NSLock()
    private var running = true
    private var statuses: [Int: Int] = [:]
    private var errors: [String] = []
    private var count = 0
    private let done = DispatchSemaphore(value: 0)

    init(port: Int, target: String) {
        Thread { [self] in
            while lock.withLock({ running }) {
                do {
                    let status = try httpRequest(port: port, "GET", target).status
                    lock.withLock {
                        statuses[status, default: 0] += 1
                        count += 1
                    }
                } catch {
                    lock.withLock { errors.append("\(error)") }
                }
            }
            done.signal()
        }.start()
    }

    /// Requests answered so far.
    var answered: Int { lock.withLock { count } }

    func finish() -> (statuses: [Int: Int], connectionErrors: [String]) {
        lock.withLock { running = false }
        done.wait()
        return lock.withLock { (statuses, errors) }
    }
}

/// SIGHUP (`systemctl reload kvd`): what applies live, what is named as needing a restart.
@Suite("kvd: reload")
struct KVDReloadTests {
    @Test func redisTargetChangesLiveWithoutFailingARequest() throws {
        let first = try RedisServer()
        let second = try RedisServer()
        try first.command(["HSET", "data", "k", "from first"])
        try second.command(["HSET", "data", "k", "from second"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(first))
        #expect(try kvd.get("/get/k").text == #""from first""#)
        let client = ClientLoop(port: kvd.port, target: "/get/k")
        #expect(waitUntil(timeout: 10) { client.answered >= 20 })
        try "[http]\nport = 0\nthreads = 2\n\(KVDProcess.redisSection(second, extra: "command_timeout_ms = 800\n"))"
            .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 10) { kvd.log.contains("applied redis.port, redis.command_timeout_ms") })
        // Every worker switches: fresh connections spread over both.
        #expect(waitUntil(timeout: 10, interval: 0.05) {
            (0..<8).allSatisfy { _ in (try? kvd.get("/get/k").text) == #""from second""# }
        })
        let answered = client.answered
        #expect(waitUntil(timeout: 10) { client.answered >= answered + 20 })
        let result = client.finish()
        #expect(result.connectionErrors.isEmpty)
        #expect(result.statuses.keys.allSatisfy { $0 == 200 }, "\(result.statuses)")
        #expect(!kvd.log.contains("needs a restart"))
    }

    @Test func perAddressLimitAppliesLiveAndListenChangesNeedARestart() throws {
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n")
        let held = try HTTPConnection(port: kvd.port)
        #expect(try held.request("GET", "/healthz").status == 200)
        try "[http]\nport = 9\nthreads = 1\nper_ip_connection_limit = 1\nmax_key_bytes = 10\n"
            .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 10) { kvd.log.contains("configuration reloaded") })
        #expect(kvd.log.contains("applied http.per_ip_connection_limit; needs a restart, still running on the old value: http.port, http.max_key_bytes"))
        // The held connection counts: a second one from the same address is refused now.
        #expect((try? HTTPConnection(port: kvd.port).request("GET", "/healthz")) == nil)
        #expect(try held.request("GET", "/healthz").status == 200)
    }

    @Test func aBadFileChangesNothing() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis))
        try "[http]\nport = 0\nthreads = 1\n[redis]\nport = 1\ndb = many\n".write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 10) { kvd.log.contains("reload refused") })
        #expect(kvd.log.contains("\(kvd.configPath):6: [redis] db: expected a whole number"))
        #expect(try kvd.get("/get/k").text == #""v""#)
    }
}

/// `/metrics`: Prometheus text format, through swift-metrics and swift-prometheus.
@Suite("kvd: metrics")
struct KVDMetricsTests {
    /// The value of one series (`name{labels}`), summed over workers when `labels` leaves `worker` out.
    func value(_ exposition: String, _ name: String, _ labels: [String] = []) -> Double {
        exposition.split(separator: "\n")
            .filter { line in
                guard line.hasPrefix(name + "{") || line.hasPrefix(name + " ") else { return false }
                return labels.allSatisfy { line.contains($0) }
            }
            .compactMap { Double($0.split(separator: " ").last ?? "") }
            .reduce(0, +)
    }

    @Test func requestsLatencyRedisEventsAndConnectionsAreExposed() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "v"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis, extra: KVDFaultTests.timeouts))
        for _ in 0..<5 { #expect(try kvd.get("/get/k").status == 200) }
        for _ in 0..<3 { #expect(try kvd.get("/get/absent").status == 404) }
        #expect(try kvd.get("/healthz").status == 200)
        #expect(try kvd.get("/nowhere").status == 404)
        let held = try HTTPConnection(port: kvd.port)
        let response = try held.request("GET", "/metrics")
        #expect(response.status == 200)
        #expect(response.header("Content-Type")?.hasPrefix("text/plain; version=0.0.4") == true)
        let text = response.text
        #expect(value(text, "kvd_http_requests_total", [#"route="get""#, #"status="200""#]) == 5)
        #expect(value(text, "kvd_http_requests_total", [#"route="get""#, #"status="404""#]) == 3)
        #expect(value(text, "kvd_http_requests_total", [#"route="healthz""#, #"status="200""#]) == 1)
        #expect(value(text, "kvd_http_requests_total", [#"route="other""#, #"status="404""#]) == 1)
        #expect(text.contains("# TYPE kvd_http_request_duration_seconds histogram"))
        #expect(value(text, "kvd_http_request_duration_seconds_count") >= 10)
        #expect(value(text, "kvd_http_request_duration_seconds_bucket", [#"le="+Inf""#]) >= 10)
        #expect(value(text, "kvd_http_open_connections") >= 1)

        redis.kill()
        #expect(try kvd.get("/get/k").status == 503)
        try redis.restart()
        try redis.command(["HSET", "data", "k", "v"])
        #expect(waitUntil(timeout: 10, interval: 0.05) { (0..<6).allSatisfy { _ in (try? kvd.get("/get/k").status) == 200 } })
        let after = try kvd.get("/metrics").text
        #expect(value(after, "kvd_redis_errors_total") >= 1)
        #expect(value(after, "kvd_redis_reconnects_total") >= 1)
        #expect(after.contains("kvd_redis_timeouts_total"))
    }
}
