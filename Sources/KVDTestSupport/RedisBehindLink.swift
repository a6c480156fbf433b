import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A redis-server in a network namespace of its own, reached over a veth link that the test can
/// cut: a real silent partition (packets dropped, no FIN, no RST), which loopback cannot give.
/// kvd connects to `host:port` over the link; the test's own commands go over a unix socket,
/// which no link cut touches. Needs root (`ip netns`), as `make test` runs; cleaned up at the end.
public final class RedisBehindLink: @unchecked Sendable {
    /// Redis's address across the link (in 10.200.0.0/13, a /30 per instance).
    public let host: String
    public let port = 6379
    public let directory: String
    private let namespace: String
    private let outside: String
    private var child: ChildProcess?
    private static let instances = Mutex(0)

    public init() throws {
        let instance = Self.instances.withLock { count in
            count += 1
            return count
        }
        let pid = Int(getpid())
        namespace = "kvd-test-\(pid)-\(instance)"
        outside = "kvd\(pid % 100_000)x\(instance)"
        let inside = "kvd\(pid % 100_000)y\(instance)"
        let subnet = (pid * 16 + instance) % (1 << 17)   // /30 number within 10.200.0.0/13
        let base = 200 << 16 | subnet << 2
        func address(_ last: Int) -> String {
            let value = base | last
            return "10.\(value >> 16 & 0xff).\(value >> 8 & 0xff).\(value & 0xff)"
        }
        host = address(2)
        directory = try TemporaryDirectory.make(prefix: "redis-link")
        try Self.ip(["netns", "add", namespace])
        do {
            try Self.ip(["link", "add", outside, "type", "veth", "peer", "name", inside])
            try Self.ip(["link", "set", inside, "netns", namespace])
            try Self.ip(["addr", "add", address(1) + "/30", "dev", outside])
            try Self.ip(["link", "set", outside, "up"])
            try Self.ip(["netns", "exec", namespace, Self.ipPath, "addr", "add", host + "/30", "dev", inside])
            try Self.ip(["netns", "exec", namespace, Self.ipPath, "link", "set", inside, "up"])
            try Self.ip(["netns", "exec", namespace, Self.ipPath, "link", "set", "lo", "up"])
            let child = try ChildProcess(Self.ipPath, [
                "netns", "exec", namespace, RedisServer.executable, "--port", String(port), "--bind", host,
                "--protected-mode", "no", "--unixsocket", socket, "--dir", directory, "--save", "",
                "--appendonly", "no", "--daemonize", "no", "--logfile", ""])
            self.child = child
            let ready = waitUntil(timeout: 10, interval: 0.02) {
                !child.isRunning || (try? self.command(["PING"])) == "PONG"
            }
            guard ready, child.isRunning else {
                throw TestSupportError("redis-server in namespace \(namespace) did not become ready: \(child.standardOutput)\(child.standardError)")
            }
        } catch {
            cleanUp()
            throw error
        }
    }

    /// The unix socket the test's commands use.
    public var socket: String { directory + "/redis.sock" }

    /// Runs redis-cli over the unix socket and returns its output (trimmed).
    @discardableResult
    public func command(_ arguments: [String]) throws -> String {
        let result = try ChildProcess.run("/usr/bin/redis-cli", ["-s", socket] + arguments, timeout: 30)
        guard result.status == 0 else { throw TestSupportError("redis-cli \(arguments) failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Cuts the link: from now on every packet either way is dropped, and nobody is told.
    public func cut() throws { try Self.ip(["link", "set", outside, "down"]) }

    /// Restores the link.
    public func heal() throws { try Self.ip(["link", "set", outside, "up"]) }

    private func cleanUp() {
        child?.stop(grace: 2)
        child = nil
        // Deleting the namespace deletes the veth pair with it.
        _ = try? ChildProcess.run(Self.ipPath, ["netns", "del", namespace], timeout: 30)
        _ = try? ChildProcess.run(Self.ipPath, ["link", "del", outside], timeout: 30)
    }

    deinit { cleanUp() }

    static var ipPath: String {
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/sbin/ip"
    }

    private static func ip(_ arguments: [String]) throws {
        let result = try ChildProcess.run(ipPath, arguments, timeout: 30)
        guard result.status == 0 else {
            throw TestSupportError("ip \(arguments.joined(separator: " ")) failed (\(result.status)): \(result.stderr) (network namespaces need root; `make test` runs as root)")
        }
    }
}
