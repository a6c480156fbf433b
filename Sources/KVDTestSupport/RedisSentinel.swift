import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A private Redis Sentinel deployment for one test: a master, one replica (`replicaof`) and one
/// sentinel (quorum 1, `down-after-milliseconds` 1000, so a killed master is replaced within a few
/// seconds), each on a free loopback port with its own directory; stopped at the end.
public final class RedisSentinel: @unchecked Sendable {
    /// The name the sentinel monitors the master under (`master_name`).
    public let masterName = "kvdmaster"
    /// The master at start, then the replica at start (either may be the master after a failover).
    public let servers: [RedisServer]
    public private(set) var port = 0
    public let directory: String
    /// The sentinel's `requirepass`, when given.
    public let password: String?
    private var child: ChildProcess?

    /// Starts the master, its replica (waiting for its link) and the sentinel (waiting until it
    /// knows the replica, so that a failover can pick it).
    /// - Parameter password: the sentinel's `requirepass` (the master and replica have none).
    /// - Throws: when redis-sentinel is missing (`make test` installs it) or a process never becomes ready.
    public init(password: String? = nil, timeout: Double = 20) throws {
        self.password = password
        // No wait before a full sync (Redis waits 5 s by default for more replicas to join one).
        let quick = ["--repl-diskless-sync-delay", "0"]
        let master = try RedisServer(extraArguments: quick)
        let replica = try RedisServer(extraArguments: quick + ["--replicaof", "127.0.0.1", String(master.port)])
        servers = [master, replica]
        directory = try TemporaryDirectory.make(prefix: "sentinel")
        guard waitUntil(timeout: timeout, interval: 0.05, { (try? replica.command(["INFO", "replication"]))?.contains("master_link_status:up") == true }) else {
            throw TestSupportError("the replica on port \(replica.port) did not connect to its master")
        }
        var lastError: (any Error)?
        for _ in 0..<5 {
            do {
                port = try FreePort.find()
                try launch(masterPort: master.port, timeout: timeout)
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TestSupportError("redis-sentinel did not start")
    }

    /// Debian's redis-sentinel (a link to redis-server, which runs as a sentinel under that name).
    public static var executable: String {
        for path in ["/usr/bin/redis-sentinel", "/usr/local/bin/redis-sentinel"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        return "/usr/bin/redis-sentinel"
    }

    private func launch(masterPort: Int, timeout: Double) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw TestSupportError("redis-sentinel not found at \(Self.executable): `make test` installs it (apt-get install redis-sentinel)")
        }
        // The sentinel rewrites its configuration file (what it learns about replicas, epochs).
        let configuration = directory + "/sentinel.conf"
        try """
            port \(port)
            bind 127.0.0.1
            dir \(directory)
            daemonize no
            logfile ""
            sentinel monitor \(masterName) 127.0.0.1 \(masterPort) 1
            sentinel down-after-milliseconds \(masterName) 1000
            sentinel failover-timeout \(masterName) 4000
            sentinel parallel-syncs \(masterName) 1
            \(password.map { "requirepass \($0)" } ?? "")

            """.write(toFile: configuration, atomically: true, encoding: .utf8)
        let child = try ChildProcess(Self.executable, [configuration])
        self.child = child
        let ready = waitUntil(timeout: timeout, interval: 0.05) {
            guard child.isRunning else { return true }
            let replicas = (try? command(["SENTINEL", "REPLICAS", masterName])) ?? ""
            return replicas.split(separator: "\n").contains("slave")
        }
        if !ready || !child.isRunning {
            let log = child.standardOutput + child.standardError
            child.stop(grace: 1)
            throw TestSupportError("redis-sentinel on port \(port) did not become ready (or never saw the replica): \(log)")
        }
    }

    /// `127.0.0.1:PORT`, for a `sentinels =` line.
    public var address: String { "127.0.0.1:\(port)" }

    /// Runs redis-cli against the sentinel and returns its output (trimmed).
    @discardableResult
    public func command(_ arguments: [String]) throws -> String {
        var cli = ["-h", "127.0.0.1", "-p", String(port)]
        if let password { cli += ["--no-auth-warning", "-a", password] }
        let result = try ChildProcess.run("/usr/bin/redis-cli", cli + arguments, timeout: 30)
        guard result.status == 0 else { throw TestSupportError("redis-cli -p \(port) \(arguments) failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The port of the master the sentinel names now.
    public func masterPort() throws -> Int {
        let answer = try command(["SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName]).split(separator: "\n")
        guard answer.count == 2, let port = Int(answer[1]) else { throw TestSupportError("the sentinel names no master: \(answer)") }
        return port
    }

    /// The server the sentinel names as master now.
    public func master() throws -> RedisServer {
        let port = try masterPort()
        guard let server = servers.first(where: { $0.port == port }) else { throw TestSupportError("the sentinel names an unknown master on port \(port)") }
        return server
    }

    /// Whether `server` answers ROLE with `master` now.
    public static func isMaster(_ server: RedisServer) -> Bool {
        (try? server.command(["ROLE"]))?.split(separator: "\n").first == "master"
    }

    /// `SENTINEL FAILOVER`, then waits until the sentinel names the other server and it is a master.
    /// - Returns: the new master.
    public func failover(timeout: Double = 20) throws -> RedisServer {
        let previous = try masterPort()
        try command(["SENTINEL", "FAILOVER", masterName])
        return try waitForNewMaster(other: previous, timeout: timeout)
    }

    /// Waits until the sentinel names a master other than the one on `port`, and that one says `master`.
    public func waitForNewMaster(other port: Int, timeout: Double) throws -> RedisServer {
        var found: RedisServer?
        let switched = waitUntil(timeout: timeout, interval: 0.05) {
            guard let master = try? master(), master.port != port, Self.isMaster(master) else { return false }
            found = master
            return true
        }
        guard switched, let found else { throw TestSupportError("the sentinel named no new master within \(timeout) s") }
        return found
    }

    public var isRunning: Bool { child?.isRunning ?? false }

    public func stop() {
        child?.stop(grace: 5)
        child = nil
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
