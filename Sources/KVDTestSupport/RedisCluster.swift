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
                             "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "",
                             // Replicas sync at once (Redis 7 waits 5 s for more replicas by default).
                             "--repl-diskless-sync-delay", "0"]
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

        /// Stops the node (SIGSTOP): it keeps its connections and answers nothing until `resume`.
        /// Keep pauses under the cluster's node timeout (2 s) unless a failover is wanted.
        public func pause() { child?.signal(SIGSTOP) }

        /// Lets a paused node run again (SIGCONT).
        public func resume() { child?.signal(SIGCONT) }

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

    /// Waits until every running node reports `cluster_state:ok`, agrees on who the masters are,
    /// and lists every running node in its CLUSTER SLOTS (replicas included).
    @discardableResult
    public func waitUntilHealthy(timeout: Double) -> Bool {
        waitUntil(timeout: timeout, interval: 0.1) {
            let running = nodes.filter(\.isRunning)
            let states = running.map { (try? $0.command(["CLUSTER", "INFO"])) ?? "" }
            guard states.allSatisfy({ $0.contains("cluster_state:ok") }) else { return false }
            let views = running.map { (try? $0.command(["CLUSTER", "SLOTS"])) ?? "" }
            let ports = Set(running.map { String($0.port) })
            let listed = views.allSatisfy { view in ports.isSubset(of: Set(view.split(separator: "\n").map(String.init))) }
            return listed && Set(views.map { Self.mastersIn(slots: $0) }).count == 1
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

    /// Runs `redis-cli -c` (which follows MOVED and ASK) with `lines` on standard input, one
    /// command a line (arguments quoted with `quoted`), against the first running node.
    @discardableResult
    public func commands(_ lines: [String]) throws -> String {
        guard let node = nodes.first(where: \.isRunning) else { throw TestSupportError("no cluster node is running") }
        let file = directory + "/commands-\(UUID().uuidString)"
        try (lines.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let result = try ChildProcess.run("/usr/bin/redis-cli", ["-c", "-h", "127.0.0.1", "-p", String(node.port)], stdin: file, timeout: 120)
        guard result.status == 0 else { throw TestSupportError("redis-cli -c failed: \(result.stderr)") }
        return result.stdout
    }

    /// `text` as one redis-cli argument: in double quotes, `"` and `\` escaped, other bytes outside printable ASCII as `\xHH`.
    public static func quoted(_ text: String) -> String {
        var out = "\""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): out += "\\" + String(UnicodeScalar(byte))
            case 0x20..<0x7F: out += String(UnicodeScalar(byte))
            default: out += String(format: "\\x%02x", byte)
            }
        }
        return out + "\""
    }

    /// Copies every string and hash of `source` (a standalone Redis a loader wrote, text keys and
    /// values without line breaks) into the cluster.
    /// - Returns: how many keys were copied.
    @discardableResult
    public func copy(from source: RedisServer) throws -> Int {
        let keys = try source.command(["--scan"]).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        var lines: [String] = []
        for key in keys {
            switch try source.command(["TYPE", key]) {
            case "string":
                lines.append("SET \(Self.quoted(key)) \(Self.quoted(try source.command(["--raw", "GET", key])))")
            case "hash":
                let items = try source.command(["--raw", "HGETALL", key]).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                var line = "HSET \(Self.quoted(key))"
                for item in items { line += " " + Self.quoted(item) }
                lines.append(line)
            case let other:
                throw TestSupportError("cannot copy key \(key) of type \(other)")
            }
        }
        try commands(lines)
        return keys.count
    }

    /// The node's cluster ID (CLUSTER MYID).
    public func id(of node: Node) throws -> String { try node.command(["CLUSTER", "MYID"]) }

    /// Moves `slot` from `source` to `target` as `redis-cli --cluster reshard` does: IMPORTING on the
    /// target, MIGRATING on the source, MIGRATE of its keys, then the slot assigned to the target on
    /// every master. `halfway` runs after half of the keys moved (lookups of the moved ones get
    /// `ASK` then), `beforeAssign` after every key moved.
    public func migrate(slot: Int, from source: Node, to target: Node, halfway: () throws -> Void = {}, beforeAssign: () throws -> Void = {}) throws {
        let sourceID = try id(of: source)
        let targetID = try id(of: target)
        try target.command(["CLUSTER", "SETSLOT", String(slot), "IMPORTING", sourceID])
        try source.command(["CLUSTER", "SETSLOT", String(slot), "MIGRATING", targetID])
        let keys = try source.command(["CLUSTER", "GETKEYSINSLOT", String(slot), "100000"]).split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        let half = keys.count / 2
        for (index, batch) in [Array(keys[..<half]), Array(keys[half...])].enumerated() {
            if !batch.isEmpty {
                let answer = try source.command(["MIGRATE", "127.0.0.1", String(target.port), "", "0", "5000", "KEYS"] + batch)
                guard answer == "OK" else { throw TestSupportError("MIGRATE answered \(answer)") }
            }
            try index == 0 ? halfway() : beforeAssign()
        }
        for node in [target, source] + nodes.filter({ $0 !== source && $0 !== target && $0.isRunning }) {
            _ = try? node.command(["CLUSTER", "SETSLOT", String(slot), "NODE", targetID])
        }
    }

    /// How many times `node` ran `command` (lowercase, e.g. "get") since its start, from INFO commandstats.
    public func calls(of command: String, on node: Node) throws -> Int {
        let stats = try node.command(["INFO", "commandstats"])
        guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_\(command):") }),
              let range = line.range(of: "calls=") else { return 0 }
        return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? 0
    }

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
