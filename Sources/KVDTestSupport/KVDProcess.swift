import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The built `kvd` binary, started for one test with its own config file and port 0.
/// (Not `KVDServer`: that is the module with the daemon's life.)
public final class KVDProcess: @unchecked Sendable {
    /// Whether the tests run the sanitized builds (`scripts/sanitize.sh` sets these options for
    /// them): the allocator is then the sanitizer's, whose quarantine and shadow memory stay
    /// resident, so a bound on kvd's RSS cannot hold and is printed rather than checked.
    public static let sanitized = ["ASAN_OPTIONS", "TSAN_OPTIONS"].contains { ProcessInfo.processInfo.environment[$0] != nil }

    public let process: ChildProcess
    public let configPath: String
    /// The port kvd reported in its start-up line.
    public let port: Int

    /// Writes `config` (INI text; `port = 0` is added to `[http]` unless it sets a port) and starts kvd.
    /// Waits for the start-up line ("listening on HOST:PORT").
    /// - Throws: when kvd exits or does not report a port within `timeout` seconds.
    public init(config: String, environment: [String: String] = [:], timeout: Double = 20) throws {
        let directory = try TemporaryDirectory.make(prefix: "kvd")
        configPath = directory + "/kvd.conf"
        let text = Self.withEphemeralPort(config)
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        let child = try ChildProcess(try Binaries.path("kvd"), ["--config", configPath], environment: environment)
        process = child
        var found: Int?
        waitUntil(timeout: timeout) {
            found = Self.reportedPort(in: child.standardError)
            return found != nil || !child.isRunning
        }
        guard let found else {
            let log = process.standardError
            process.stop(grace: 1)
            throw TestSupportError("kvd did not report a listening port; status \(String(describing: process.exitStatus)); log:\n\(log)")
        }
        port = found
    }

    /// The `[redis]` lines that point kvd at `redis`.
    public static func redisSection(_ redis: RedisServer, extra: String = "") -> String {
        var text = "[redis]\nhost = 127.0.0.1\nport = \(redis.port)\n"
        if let password = redis.password { text += "password = \(password)\n" }
        return text + extra
    }

    /// `config` with `port = 0` in its `[http]` section, unless that section sets a port already:
    /// inside the first `[http]` heading when there is one, else in a new `[http]` section first.
    /// Without it kvd would bind its default port 8000, which tests running side by side share.
    public static func withEphemeralPort(_ config: String) -> String {
        var lines = config.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        var section = ""
        var firstHTTPHeading: Int?
        for (index, raw) in lines.enumerated() {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("["), let end = line.firstIndex(of: "]") {
                section = String(line[line.index(after: line.startIndex)..<end])  // as written, inner blanks included
                if section == "http", firstHTTPHeading == nil { firstHTTPHeading = index }
            } else if section == "http", let delimiter = line.firstIndex(where: { $0 == "=" || $0 == ":" }),
                      line[..<delimiter].trimmingCharacters(in: .whitespaces) == "port" {
                return config
            }
        }
        guard let heading = firstHTTPHeading else { return "[http]\nport = 0\n" + config }
        lines.insert("port = 0", at: heading + 1)
        return lines.joined(separator: "\n")
    }

    static func reportedPort(in log: String) -> Int? {
        guard let range = log.range(of: "listening on ") else { return nil }
        let rest = log[range.upperBound...].prefix { $0 != "," && $0 != " " && $0 != "\n" }
        guard let colon = rest.lastIndex(of: ":") else { return nil }
        return Int(rest[rest.index(after: colon)...])
    }

    public var log: String { process.standardError }

    /// Sends a request on a new connection.
    public func get(_ target: String, method: String = "GET", headers: [String: String] = [:]) throws -> HTTPResponse {
        try httpRequest(port: port, method, target, headers: headers)
    }

    /// Open file descriptors of kvd's own: all but the pipes to a child process (-1 once kvd is
    /// gone). kvd starts no process; a child is a sanitizer's (ThreadSanitizer's runtime starts
    /// llvm-symbolizer from inside kvd when it first symbolizes, and keeps two pipes to it), not
    /// something kvd leaked.
    public var ownDescriptors: Int { ownDescriptorTargets()?.count ?? -1 }

    /// The targets of kvd's own descriptors (see `ownDescriptors`); nil once kvd is gone.
    private func ownDescriptorTargets() -> [String]? {
        let pid = String(process.pid)
        let targets = Self.descriptorTargets(of: pid)
        // Every process holds descriptors 0 to 2: none at all means /proc has no such process.
        guard !targets.isEmpty else { return nil }
        let children = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []).flatMap {
            Self.procText("/proc/\(pid)/task/\($0)/children").split(separator: " ").map(String.init)
        }
        let theirs = Set(children.flatMap { Self.descriptorTargets(of: $0).values })
        return targets.values.filter { !($0.hasPrefix("pipe:") && theirs.contains($0)) }
    }

    /// The inode of a socket descriptor's target (`socket:[INODE]`), nil for any other target.
    private static func socketInode(_ target: String) -> String? {
        target.hasPrefix("socket:[") ? String(target.dropFirst(8).dropLast()) : nil
    }

    /// What each descriptor of process `pid` points to (fd → readlink of /proc/PID/fd/FD).
    private static func descriptorTargets(of pid: String) -> [Int: String] {
        let directory = "/proc/\(pid)/fd"
        var targets: [Int: String] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] {
            guard let fd = Int(name), let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(name)") else { continue }
            targets[fd] = target
        }
        return targets
    }

    /// A /proc file's whole text: `String(contentsOfFile:)` stops after the first 4 KiB of such a
    /// file (its size reads as 0), and /proc/PID/net/tcp is longer while a test's load leaves
    /// connections in TIME_WAIT.
    private static func procText(_ path: String) -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
        defer { try? handle.close() }
        return String(decoding: (try? handle.readToEnd()) ?? Data(), as: UTF8.self)
    }

    /// `ownDescriptors` less the established connections of HTTP clients to kvd's port: what a test
    /// of leaked Redis connections counts. Such a connection lives as long as its client keeps it
    /// open, and in a full parallel run a client of another test may reach this kvd's port (a number
    /// freed by that test's kvd and found free again) and hold connections open. One its client
    /// closed and kvd did not (CLOSE_WAIT) is kvd's, and counts.
    public var ownDescriptorsBesidesClients: Int {
        guard let own = ownDescriptorTargets() else { return -1 }
        let sockets = Self.tcpSockets(of: String(process.pid))
        return own.filter { target in
            guard let socket = Self.socketInode(target).flatMap({ sockets[$0] }) else { return true }
            return !(socket.local == port && socket.state == "01")
        }.count
    }

    /// The TCP sockets of process `pid`'s network namespace by inode: ports and state (hex, as
    /// /proc/PID/net/tcp shows it: 01 established, 0A listening).
    private static func tcpSockets(of pid: String) -> [String: (local: Int, remote: Int, state: String)] {
        var sockets: [String: (local: Int, remote: Int, state: String)] = [:]
        for table in ["tcp", "tcp6"] {
            for line in procText("/proc/\(pid)/net/\(table)").split(separator: "\n").dropFirst() {
                let fields = line.split(separator: " ")
                guard fields.count > 9 else { continue }
                func port(_ field: Substring) -> Int {
                    field.split(separator: ":").last.flatMap { Int($0, radix: 16) } ?? -1
                }
                sockets[String(fields[9])] = (port(fields[1]), port(fields[2]), String(fields[3]))
            }
        }
        return sockets
    }

    /// What each open descriptor is, for a failure message: `fd -> target`, and for a TCP socket its
    /// ports and state as /proc/PID/net/tcp shows them (`local->remote st=state`), or `unix` and its path.
    public var descriptorReport: String {
        let targets = Self.descriptorTargets(of: String(process.pid))
        guard !targets.isEmpty else { return "gone" }
        var sockets = Self.tcpSockets(of: String(process.pid)).mapValues { "\($0.local)->\($0.remote) st=\($0.state)" }
        for line in Self.procText("/proc/\(process.pid)/net/unix").split(separator: "\n").dropFirst() {
            let fields = line.split(separator: " ")
            guard fields.count > 6 else { continue }
            sockets[String(fields[6])] = "unix" + (fields.count > 7 ? " \(fields[7])" : "")
        }
        return targets.keys.sorted().map { fd in
            let target = targets[fd] ?? "?"
            return "\(fd) -> \(target)" + (Self.socketInode(target).flatMap { sockets[$0] }.map { " \($0)" } ?? "")
        }.joined(separator: "; ")
    }

    deinit { process.stop(grace: 10) }
}
