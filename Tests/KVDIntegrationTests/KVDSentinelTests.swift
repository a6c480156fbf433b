import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kvd in Sentinel mode (issue 12 item 6): a real redis-sentinel, a master and its replica; a forced
/// failover and a killed master, each followed with no restart of kvd.
@Suite("kvd: Redis Sentinel", .serialized)
struct KVDSentinelTests {
    static let timeouts = "connect_timeout_ms = 300\ncommand_timeout_ms = 500\nreconnect_max_ms = 200\n"

    static func config(_ deployment: RedisSentinel, threads: Int = 2, extra: String = "") -> String {
        "[http]\nport = 0\nthreads = \(threads)\n[redis]\nsentinels = \(deployment.address)\nmaster_name = \(deployment.masterName)\n"
            + timeouts + extra
    }

    /// Writes `key` on the master and waits until the replica has it too (HMGET: not counted as an HGET).
    static func write(_ deployment: RedisSentinel, _ key: String, _ value: String) throws {
        try deployment.servers[0].command(["HSET", "data", key, value])
        #expect(waitUntil(timeout: 10, interval: 0.02) { (try? deployment.servers[1].command(["HMGET", "data", key])) == value })
    }

    /// Every worker answers `key` with 200: asked on several fresh connections (each worker has its own).
    static func allWorkersAnswer(_ kvd: KVDProcess, _ key: String) -> Bool {
        (0..<8).allSatisfy { _ in (try? kvd.get("/get/\(key)").status) == 200 }
    }

    @Test func servesTheMasterTheSentinelNamesAndLogsIt() throws {
        let deployment = try RedisSentinel()
        try Self.write(deployment, "k", "v")
        let kvd = try KVDProcess(config: Self.config(deployment))
        let response = try kvd.get("/get/k")
        #expect(response.status == 200)
        #expect(response.text == #""v""#)
        let master = deployment.servers[0].port
        #expect(kvd.log.contains("Sentinel: master 'kvdmaster' is 127.0.0.1:\(master) (named by sentinel \(deployment.address), ROLE master)"))
        #expect(kvd.log.contains("Redis 127.0.0.1:\(master) (master 'kvdmaster' from sentinels \(deployment.address))"))
        // Reads go to the master: the replica served no HGET.
        #expect(waitUntil(timeout: 5) { Self.allWorkersAnswer(kvd, "k") })
        #expect(try !deployment.servers[1].command(["INFO", "commandstats"]).contains("cmdstat_hget:"))
        #expect(try deployment.servers[0].command(["INFO", "commandstats"]).contains("cmdstat_hget:"))

        // A reload of [redis] keys asks the sentinels again (host and port stay the master's).
        let base = try String(contentsOfFile: kvd.configPath, encoding: .utf8)
        try base.replacingOccurrences(of: "command_timeout_ms = 500", with: "command_timeout_ms = 600")
            .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 5) { kvd.log.contains("applied redis.command_timeout_ms") }, "\(kvd.log)")
        #expect(Self.allWorkersAnswer(kvd, "k"))
        #expect(!kvd.log.contains("(now "))
        // A master name the sentinel does not know: refused, kvd stays on the master it has.
        try base.replacingOccurrences(of: "master_name = kvdmaster", with: "master_name = elsewhere")
            .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 5) { kvd.log.contains("reload: the new [redis] settings do not work, still using the previous ones (Redis 127.0.0.1:\(master))") }, "\(kvd.log)")
        #expect(kvd.log.contains("does not monitor 'elsewhere'"))
        #expect(Self.allWorkersAnswer(kvd, "k"))
        // Turning Sentinel mode off needs a restart: nothing of [redis] changes.
        try "[http]\nport = 0\nthreads = 2\n[redis]\nport = \(deployment.servers[1].port)\n".write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 5) { kvd.log.contains("redis.sentinels (turning Sentinel mode on or off)") }, "\(kvd.log)")
        #expect(Self.allWorkersAnswer(kvd, "k"))
        #expect(try !deployment.servers[1].command(["INFO", "commandstats"]).contains("cmdstat_hget:"))
    }

    /// `SENTINEL FAILOVER` while clients read: kvd follows `+switch-master` to the new master with
    /// no restart, and never answers a wrong value. The old master stays a master for about 10 s
    /// after the switch (until the sentinel converts it), so only the switch tells kvd to move:
    /// a key written on the new master alone shows where kvd reads.
    @Test func followsAForcedFailoverUnderAVerifyingLoad() throws {
        let deployment = try RedisSentinel()
        try Self.write(deployment, "k", "v")
        let kvd = try KVDProcess(config: Self.config(deployment))
        #expect(waitUntil(timeout: 5) { Self.allWorkersAnswer(kvd, "k") })
        let pid = kvd.process.pid
        // A reload that changes the list first: kvd subscribes anew, and still hears the switch.
        let unreachable = try FreePort.find()
        let base = try String(contentsOfFile: kvd.configPath, encoding: .utf8)
        try base.replacingOccurrences(of: "sentinels = \(deployment.address)", with: "sentinels = 127.0.0.1:\(unreachable), \(deployment.address)")
            .write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 5) { kvd.log.contains("applied redis.sentinels") }, "\(kvd.log)")
        let load = VerifyingLoad(port: kvd.port, key: "k", expected: #""v""#)
        let started = Date()
        let newMaster = try deployment.failover()
        let promoted = Date()
        try newMaster.command(["HSET", "data", "only-on-the-new-master", "yes"])
        let followed = waitUntil(timeout: 10, interval: 0.02) { Self.allWorkersAnswer(kvd, "only-on-the-new-master") }
        let back = Date()
        let statuses = load.stop()
        #expect(followed, "kvd did not follow the failover; log:\n\(kvd.log)")
        #expect(kvd.process.isRunning && kvd.process.pid == pid)
        #expect(load.mismatches == 0)
        #expect(statuses[200, default: 0] > 0)
        #expect(Set(statuses.keys).isSubset(of: [200, 503]), "\(statuses)")
        #expect(kvd.log.contains("Sentinel: master 'kvdmaster' moved from 127.0.0.1:\(deployment.servers[0].port) to 127.0.0.1:\(newMaster.port)"))
        #expect(kvd.log.contains("after +switch-master)"), "\(kvd.log)")
        print("sentinel failover: new master \(String(format: "%.2f", promoted.timeIntervalSince(started))) s after SENTINEL FAILOVER, every kvd worker on it \(String(format: "%.2f", back.timeIntervalSince(promoted))) s later; answers: \(statuses.sorted { $0.key < $1.key })")
    }

    /// kill -9 of the master: once the sentinel promotes the replica, kvd serves again by itself,
    /// with no leaked descriptors.
    @Test func servesAgainAfterTheMasterIsKilledAndTheReplicaPromoted() throws {
        let deployment = try RedisSentinel()
        try Self.write(deployment, "k", "v")
        let kvd = try KVDProcess(config: Self.config(deployment))
        #expect(waitUntil(timeout: 5) { Self.allWorkersAnswer(kvd, "k") })
        let baseline = kvd.ownDescriptorsBesidesClients
        let load = VerifyingLoad(port: kvd.port, key: "k", expected: #""v""#)
        let killed = Date()
        deployment.servers[0].kill()
        let newMaster = try deployment.waitForNewMaster(other: deployment.servers[0].port, timeout: 20)
        let promoted = Date()
        let served = waitUntil(timeout: 10, interval: 0.02) { Self.allWorkersAnswer(kvd, "k") }
        let back = Date()
        let statuses = load.stop()
        #expect(served, "kvd did not serve again after the promotion; log:\n\(kvd.log)")
        #expect(newMaster.port == deployment.servers[1].port)
        #expect(load.mismatches == 0)
        #expect(Set(statuses.keys).isSubset(of: [200, 503, 504]), "\(statuses)")
        #expect(kvd.log.contains("to 127.0.0.1:\(newMaster.port)"))
        // A leaked descriptor stays; connections to the dead master that close late on a loaded machine get 15 s.
        // (HTTP clients' connections are not counted: their clients decide when they close.)
        #expect(waitUntil(timeout: 15) { kvd.ownDescriptorsBesidesClients <= baseline + 1 }, "fds \(kvd.ownDescriptorsBesidesClients) vs \(baseline): \(kvd.descriptorReport)")
        print("sentinel kill -9: promoted \(String(format: "%.2f", promoted.timeIntervalSince(killed))) s after the kill, kvd served every worker \(String(format: "%.2f", back.timeIntervalSince(promoted))) s after the promotion; answers: \(statuses.sorted { $0.key < $1.key })")
    }

    /// The address the sentinel names turns into a replica behind its back (an operator's
    /// REPLICAOF; the same as a stale answer during a failover): kvd's new connections see ROLE
    /// slave and refuse it, answering 503, never the replica's data; once it is a master again
    /// kvd serves again by itself.
    @Test func aNamedMasterThatIsAReplicaIsRefusedByROLE() throws {
        let deployment = try RedisSentinel()
        try Self.write(deployment, "k", "v")
        let master = deployment.servers[0], replica = deployment.servers[1]
        let kvd = try KVDProcess(config: Self.config(deployment, threads: 1))
        #expect(waitUntil(timeout: 5) { Self.allWorkersAnswer(kvd, "k") })
        try replica.command(["REPLICAOF", "NO", "ONE"])
        try master.command(["REPLICAOF", "127.0.0.1", String(replica.port)])
        try master.command(["CLIENT", "KILL", "TYPE", "normal"])
        let refused = waitUntil(timeout: 5, interval: 0.02) {
            (try? kvd.get("/get/k").status) == 503 && kvd.log.contains("127.0.0.1:\(master.port) is not the master (ROLE: slave)")
        }
        #expect(refused, "\(kvd.log)")
        // While it is a replica, every answer is a refusal, never its data.
        #expect((0..<5).map { _ in (try? kvd.get("/get/k").status) ?? 0 } == [503, 503, 503, 503, 503])
        #expect(waitUntil(timeout: 5) { kvd.log.contains("Sentinel: no confirmed master after") }, "\(kvd.log)")
        try master.command(["REPLICAOF", "NO", "ONE"])
        try replica.command(["REPLICAOF", "127.0.0.1", String(master.port)])
        #expect(waitUntil(timeout: 10, interval: 0.02) { Self.allWorkersAnswer(kvd, "k") }, "\(kvd.log)")
    }

    @Test func sentinelConfigurationErrorsExit78() throws {
        let directory = try TemporaryDirectory.make(prefix: "sentinel-conf")
        let cases = [
            ("[redis]\nsentinels = 127.0.0.1:26379\n", ":2: [redis] sentinels needs master_name"),
            ("[redis]\nsentinels = 127.0.0.1:26379\nmaster_name = m\nhost = 10.0.0.1\n", ":4: [redis] host cannot be set with sentinels"),
            ("[redis]\nsentinels = 127.0.0.1\nmaster_name = m\n", ":2: [redis] sentinels: expected host:port"),
        ]
        for (index, (text, message)) in cases.enumerated() {
            let path = directory + "/kvd-\(index).conf"
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            let result = try ChildProcess.run(try Binaries.path("kvd"), ["--config", path], timeout: 30)
            #expect(result.status == 78)
            #expect(result.stderr.contains(path + message), "\(result.stderr)")
        }
    }

    /// No sentinel answers at start: kvd does not guess a Redis to read from; it exits 69
    /// (EX_UNAVAILABLE) saying what it asked, and systemd restarts it.
    @Test func noSentinelAtStartExits69() throws {
        let port = try FreePort.find()
        let directory = try TemporaryDirectory.make(prefix: "sentinel-down")
        let path = directory + "/kvd.conf"
        try "[http]\nport = 0\n[redis]\nsentinels = 127.0.0.1:\(port)\nmaster_name = m\n\(Self.timeouts)".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(try Binaries.path("kvd"), ["--config", path], timeout: 30)
        #expect(result.status == 69)
        #expect(result.stderr.contains("cannot start: Sentinel: no sentinel named the master 'm'"), "\(result.stderr)")
        #expect(result.stderr.contains("127.0.0.1:\(port)"))
    }
}

/// Clients reading one key over keep-alive connections until stopped, checking every 200's body.
/// Each client is a thread of its own (not a task: tests that block would starve the shared pool).
final class VerifyingLoad: @unchecked Sendable {
    private let lock = NSLock()
    private var statuses: [Int: Int] = [:]
    private var wrong = 0
    private let stopFlag = ManagedFlag()
    private let finished = DispatchGroup()

    /// Starts the clients and waits until they have had a first answer (or `timeout` passed).
    init(port: Int, key: String, expected: String, clients: Int = 2, timeout: Double = 10) {
        for _ in 0..<clients {
            finished.enter()
            Thread { [self] in
                while !stopFlag.isSet {
                    guard let connection = try? HTTPConnection(port: port) else { continue }
                    for _ in 0..<50 {
                        guard let response = try? connection.request("GET", "/get/\(key)") else { break }
                        record(response.status, correct: response.status != 200 || response.text == expected)
                        // A refusal says Retry-After: pause a little, so an outage does not spin two cores.
                        if response.status != 200 { usleep(10_000) }
                    }
                }
                finished.leave()
            }.start()
        }
        _ = waitUntil(timeout: timeout) { lock.withLock { !statuses.isEmpty } }
    }

    private func record(_ status: Int, correct: Bool) {
        lock.withLock {
            statuses[status, default: 0] += 1
            if !correct { wrong += 1 }
        }
    }

    var mismatches: Int { lock.withLock { wrong } }

    /// Stops the clients and returns the count of each status.
    func stop() -> [Int: Int] {
        stopFlag.set()
        finished.wait()
        return lock.withLock { statuses }
    }
}

/// kvload in Sentinel mode: asks once at the start, loads into the confirmed master.
@Suite("kvload: Redis Sentinel")
struct KVLoadSentinelTests {
    @Test func loadsIntoTheMasterTheSentinelNames() throws {
        let deployment = try RedisSentinel()
        let directory = try TemporaryDirectory.make(prefix: "kvload-sentinel")
        let input = directory + "/data.txt"
        try "a 1\nb 2\nc 3\n".write(toFile: input, atomically: true, encoding: .utf8)
        let kvload = try Binaries.path("kvload")
        // From the flags (over an empty config file: not the machine's /etc/kvd.conf).
        let empty = directory + "/empty.conf"
        try "".write(toFile: empty, atomically: true, encoding: .utf8)
        let flags = try ChildProcess.run(kvload, ["--config", empty, "--sentinel", "127.0.0.1:\(try FreePort.find())",
                                                  "--sentinel", deployment.address, "--master-name", deployment.masterName, input], timeout: 60)
        #expect(flags.status == 0, "\(flags.stderr)")
        #expect(flags.stderr.contains("kvload: Sentinel: master 'kvdmaster' is 127.0.0.1:\(deployment.servers[0].port)"))
        #expect(try deployment.servers[0].command(["HLEN", "data"]) == "3")
        // From kvd's config file.
        let config = directory + "/kvd.conf"
        try "[redis]\nsentinels = \(deployment.address)\nmaster_name = \(deployment.masterName)\nhash = other\n".write(toFile: config, atomically: true, encoding: .utf8)
        let file = try ChildProcess.run(kvload, ["--config", config, input], timeout: 60)
        #expect(file.status == 0, "\(file.stderr)")
        #expect(try deployment.servers[0].command(["HLEN", "other"]) == "3")
        // No sentinel answers: 69, before anything is read.
        let down = try ChildProcess.run(kvload, ["--config", config, "--sentinel", "127.0.0.1:\(try FreePort.find())", input], timeout: 60)
        #expect(down.status == 69)
        #expect(down.stderr.contains("kvload: Sentinel: no sentinel named the master 'kvdmaster'"), "\(down.stderr)")
    }
}
