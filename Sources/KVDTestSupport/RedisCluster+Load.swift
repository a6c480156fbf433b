import Foundation

/// Reading a whole dataset back from a cluster, for kvload's tests.
extension RedisCluster {
    /// Sends `commands` (arguments without spaces) to every running master through redis-cli's
    /// standard input (`--csv`: one line per reply) and returns, per command, the reply of the
    /// master that serves its key: the one that does not answer MOVED, ASK or CLUSTERDOWN (nil when
    /// none does).
    public func repliesFromOwners(_ commands: [[String]]) throws -> [String?] {
        let file = try TemporaryDirectory.make(prefix: "cluster-commands") + "/commands.txt"
        try commands.map { $0.joined(separator: " ") + "\n" }.joined().write(toFile: file, atomically: true, encoding: .utf8)
        var replies = [String?](repeating: nil, count: commands.count)
        for port in try slotMasterPorts() {
            let result = try ChildProcess.run("/usr/bin/redis-cli", ["--csv", "-h", "127.0.0.1", "-p", String(port)], stdin: file, timeout: 60)
            guard result.status == 0 else { throw TestSupportError("redis-cli -p \(port) failed: \(result.stderr)") }
            let lines = result.stdout.split(separator: "\n", omittingEmptySubsequences: false)
            for (index, line) in lines.prefix(commands.count).enumerated() where replies[index] == nil {
                if line.hasPrefix("ERROR,\"MOVED") || line.hasPrefix("ERROR,\"ASK") || line.hasPrefix("ERROR,\"CLUSTERDOWN") { continue }
                replies[index] = String(line)
            }
        }
        return replies
    }

    /// The string values of `keys` (nil where a key is missing or not a string), read from their masters.
    public func values(of keys: [String]) throws -> [String?] {
        try repliesFromOwners(keys.map { ["GET", $0] }).map { reply in
            guard let reply, reply.hasPrefix("\""), reply.hasSuffix("\""), reply.count >= 2 else { return nil }
            return String(reply.dropFirst().dropLast())
        }
    }

    /// Every key matching `pattern` on each running master (SCAN), by master port.
    public func keysByMaster(matching pattern: String) throws -> [Int: [String]] {
        var found: [Int: [String]] = [:]
        for port in try slotMasterPorts() {
            let result = try ChildProcess.run("/usr/bin/redis-cli", ["-h", "127.0.0.1", "-p", String(port), "--scan", "--pattern", pattern], timeout: 60)
            guard result.status == 0 else { throw TestSupportError("redis-cli --scan -p \(port) failed: \(result.stderr)") }
            found[port] = result.stdout.split(separator: "\n").map(String.init)
        }
        return found
    }

    /// The fields and values of the hashes `keys` together (values without commas or quotes), read from their masters.
    public func hashContents(_ keys: [String]) throws -> [String: String] {
        var pairs: [String: String] = [:]
        for reply in try repliesFromOwners(keys.map { ["HGETALL", $0] }) {
            guard let reply, !reply.isEmpty else { continue }
            let items = reply.split(separator: ",").map { $0.hasPrefix("\"") && $0.hasSuffix("\"") ? String($0.dropFirst().dropLast()) : String($0) }
            var index = 0
            while index + 1 < items.count {
                pairs[items[index]] = items[index + 1]
                index += 2
            }
        }
        return pairs
    }

    /// The ports of the masters that serve slots (CLUSTER NODES on a running node: flag `master`,
    /// not failed, with slot ranges), sorted; right after `--cluster create` a replica may still
    /// be listed as a master without slots.
    public func slotMasterPorts() throws -> [Int] {
        guard let node = nodes.first(where: \.isRunning) else { throw TestSupportError("no cluster node is running") }
        return try node.command(["CLUSTER", "NODES"]).split(separator: "\n").compactMap { line -> Int? in
            let fields = line.split(separator: " ")
            guard fields.count > 8, fields[2].contains("master"), !fields[2].contains("fail") else { return nil }
            let endpoint = fields[1].split(separator: "@").first ?? fields[1]
            return endpoint.lastIndex(of: ":").flatMap { Int(endpoint[endpoint.index(after: $0)...]) }
        }.sorted()
    }

    /// Waits until `masters` running masters serve slots and each says `cluster_state:ok` (after a
    /// failover: the killed master is no longer listed, its replica serves its slots).
    @discardableResult
    public func waitUntilServing(masters: Int, timeout: Double) -> Bool {
        waitUntil(timeout: timeout, interval: 0.2) {
            guard let ports = try? slotMasterPorts(), ports.count == masters else { return false }
            return ports.allSatisfy { port in
                guard let node = node(port: port), node.isRunning else { return false }
                return (try? node.command(["CLUSTER", "INFO"]))?.contains("cluster_state:ok") ?? false
            }
        }
    }

    /// Waits until every master that serves slots has a replica online (INFO replication): right
    /// after `--cluster create` a replica may not have synchronised yet, and a master killed then
    /// has no replica that can take over.
    @discardableResult
    public func waitUntilReplicated(timeout: Double) -> Bool {
        waitUntil(timeout: timeout, interval: 0.2) {
            guard let ports = try? slotMasterPorts(), !ports.isEmpty else { return false }
            return ports.allSatisfy { port in
                let info = (try? node(port: port)?.command(["INFO", "replication"])) ?? nil
                return info?.contains("state=online") ?? false
            }
        }
    }

    /// The number of keys on the master on `port` (DBSIZE).
    public func keyCount(onPort port: Int) throws -> Int {
        guard let node = node(port: port) else { throw TestSupportError("no cluster node on port \(port)") }
        return Int(try node.command(["DBSIZE"])) ?? 0
    }

    /// The node id of the node on `port` (CLUSTER MYID).
    public func nodeID(port: Int) throws -> String {
        guard let node = node(port: port) else { throw TestSupportError("no cluster node on port \(port)") }
        return try node.command(["CLUSTER", "MYID"])
    }
}
