import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A private Redis Cluster for one test: `masters` masters with `replicasPerMaster` replicas each,
/// on free loopback ports (each node's bus port, port + 10000, free too), created with
/// `redis-cli --cluster create`, stopped at the end.
public final class RedisCluster: @unchecked Sendable {
    /// One redis-server of the cluster.
    public final class Node: @unchecked Sendable {
        public let port: Int
        let directory: String
        fileprivate var child: ChildProcess?

        init(port: Int, directory: String) {
            self.port = port
            self.directory = directory
        }

        public var isRunning: Bool { child?.isRunning ?? false }

        /// Runs redis-cli against this node (no `-c`: redirections are returned, not followed).
        @discardableResult
        public func command(_ arguments: [String]) throws -> String {
            let result = try ChildProcess.run("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port)] + arguments, timeout: 30)
            guard result.status == 0 else { throw TestSupportError("redis-cli -p \(port) \(arguments) failed: \(result.stderr)") }
            return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        fileprivate func launch() throws {
            let arguments = ["--port", String(port), "--bind", "127.0.0.1", "--dir", directory,
                             "--cluster-enabled", "yes", "--cluster-config-file", directory + "/nodes.conf",
                             "--cluster-node-timeout", "2000", "--cluster-allow-reads-when-down", "yes",
                             "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""]
            let child = try ChildProcess(RedisServer.executable, arguments)
            self.child = child
            guard waitUntil(timeout: 10, { !child.isRunning || (try? command(["PING"]).hasPrefix("PONG")) == true }), child.isRunning else {
                let log = child.standardOutput + child.standardError
                child.stop(grace: 1)
                throw TestSupportError("cluster node on port \(port) did not become ready: \(log)")
            }
        }

        /// Kills the node abruptly (SIGKILL), as a crash would.
        public func kill() { child?.crash() }

        /// Starts the node again on its port, with its cluster state file (it rejoins the cluster).
        public func restart() throws {
            kill()
            try launch()
        }

        fileprivate func stop() {
            child?.signal(SIGCONT)
            child?.stop(grace: 5)
            child = nil
        }
    }

    public let nodes: [Node]
    public let directory: String

    /// Starts the nodes, creates the cluster and waits until every node reports `cluster_state:ok`.
    public init(masters: Int = 3, replicasPerMaster: Int = 1, timeout: Double = 60) throws {
        let directory = try TemporaryDirectory.make(prefix: "cluster")
        self.directory = directory
        let ports = try Self.freePortPairs(masters * (1 + replicasPerMaster))
        nodes = try ports.map { port in
            let nodeDirectory = directory + "/\(port)"
            try FileManager.default.createDirectory(atPath: nodeDirectory, withIntermediateDirectories: true)
            return Node(port: port, directory: nodeDirectory)
        }
        for node in nodes { try node.launch() }
        let create = try ChildProcess.run("/usr/bin/redis-cli", ["--cluster", "create"] + ports.map { "127.0.0.1:\($0)" }
                                          + ["--cluster-replicas", String(replicasPerMaster), "--cluster-yes"], timeout: timeout)
        guard create.status == 0 else { throw TestSupportError("redis-cli --cluster create failed: \(create.stdout) \(create.stderr)") }
        guard waitUntilHealthy(timeout: timeout) else { throw TestSupportError("the cluster did not reach cluster_state:ok in \(timeout) s") }
    }

    /// Waits until every running node reports `cluster_state:ok` and agrees on who the masters are.
    @discardableResult
    public func waitUntilHealthy(timeout: Double) -> Bool {
        waitUntil(timeout: timeout, interval: 0.1) {
            let running = nodes.filter(\.isRunning)
            let states = running.map { (try? $0.command(["CLUSTER", "INFO"])) ?? "" }
            guard states.allSatisfy({ $0.contains("cluster_state:ok") }) else { return false }
            let views = running.map { (try? $0.command(["CLUSTER", "SLOTS"])) ?? "" }
            return Set(views.map { Self.mastersIn(slots: $0) }).count == 1
        }
    }

    /// The ports of the current masters (from CLUSTER NODES on a running node), sorted.
    public func masterPorts() throws -> [Int] {
        guard let node = nodes.first(where: \.isRunning) else { throw TestSupportError("no cluster node is running") }
        return try node.command(["CLUSTER", "NODES"]).split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 2, fields[2].contains("master"), !fields[2].contains("fail") else { return nil }
            return Self.port(of: fields[1])
        }.sorted()
    }

    /// The node serving `key` (asked with CLUSTER KEYSLOT and CLUSTER SLOTS-free logic: the node that does not redirect).
    public func node(servingKey key: String) throws -> Node {
        for node in nodes where node.isRunning {
            let answer = try node.command(["GET", key])
            if !answer.hasPrefix("MOVED") && !answer.hasPrefix("ASK") && !answer.hasPrefix("CLUSTERDOWN") { return node }
        }
        throw TestSupportError("no node serves key \(key)")
    }

    public func node(port: Int) -> Node? { nodes.first { $0.port == port } }

    /// Every node's address, `127.0.0.1:PORT`, for a `nodes =` line.
    public var seedList: String { nodes.map { "127.0.0.1:\($0.port)" }.joined(separator: ", ") }

    private static func port(of address: Substring) -> Int? {
        // "127.0.0.1:7000@17000"
        let endpoint = address.split(separator: "@").first ?? address
        return endpoint.lastIndex(of: ":").flatMap { Int(endpoint[endpoint.index(after: $0)...]) }
    }

    /// The master ports in redis-cli's CLUSTER SLOTS text output (each range: start, end, ip, port, id, …).
    private static func mastersIn(slots text: String) -> [Int] {
        let lines = text.split(separator: "\n").map(String.init)
        var masters: Set<Int> = []
        var index = 0
        while index + 3 < lines.count {
            if Int(lines[index]) != nil, Int(lines[index + 1]) != nil, let port = Int(lines[index + 3]) {
                masters.insert(port)
                index += 4
            } else {
                index += 1
            }
        }
        return masters.sorted()
    }

    /// Ports P in [20000, 50000) where both P and P + 10000 (the cluster bus) are free now.
    static func freePortPairs(_ count: Int) throws -> [Int] {
        var chosen: [Int] = []
        var generator = SystemRandomNumberGenerator()
        var attempts = 0
        while chosen.count < count {
            attempts += 1
            if attempts > 2000 { throw TestSupportError("no free port pairs for a cluster") }
            let port = Int.random(in: 20000..<50000, using: &generator)
            if chosen.contains(where: { abs($0 - port) < 2 || abs($0 + 10000 - port) < 2 || abs($0 - 10000 - port) < 2 }) { continue }
            if FreePort.isFree(port), FreePort.isFree(port + 10000) { chosen.append(port) }
        }
        return chosen
    }

    deinit {
        for node in nodes { node.stop() }
        try? FileManager.default.removeItem(atPath: directory)
    }
}

extension FreePort {
    /// Whether `port` on 127.0.0.1 can be bound now.
    public static func isFree(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        } == 0
    }
}
