import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A private redis-server for one test: a free loopback port, its own temp dir, stopped at the end.
public final class RedisServer: @unchecked Sendable {
    public private(set) var port = 0
    public let directory: String
    public let password: String?
    private var child: ChildProcess?

    /// Starts redis-server on a free port and waits until it answers PING.
    /// - Parameter password: sets `requirepass` when given.
    /// - Throws: when redis-server is missing (`make test` installs it) or never becomes ready.
    public init(password: String? = nil, extraArguments: [String] = []) throws {
        self.password = password
        directory = try TemporaryDirectory.make(prefix: "redis")
        var lastError: (any Error)?
        for _ in 0..<5 {
            let candidate = try FreePort.find()
            do {
                port = candidate
                try launch(extraArguments: extraArguments)
                return
            } catch {
                lastError = error
            }
        }
        throw lastError ?? TestSupportError("redis-server did not start")
    }

    public static var executable: String {
        for path in ["/usr/bin/redis-server", "/usr/local/bin/redis-server"] where FileManager.default.isExecutableFile(atPath: path) {
            return path
        }
        return "/usr/bin/redis-server"
    }

    private var extraArguments: [String] = []

    private func launch(extraArguments: [String]) throws {
        self.extraArguments = extraArguments
        guard FileManager.default.isExecutableFile(atPath: Self.executable) else {
            throw TestSupportError("redis-server not found at \(Self.executable): `make test` installs it (apt-get install redis-server)")
        }
        var arguments = ["--port", String(port), "--bind", "127.0.0.1", "--dir", directory,
                         "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", ""]
        if let password { arguments += ["--requirepass", password] }
        arguments += extraArguments
        let child = try ChildProcess(Self.executable, arguments)
        self.child = child
        let ready = waitUntil(timeout: 10) {
            !child.isRunning || (try? self.command(["PING"]).hasPrefix("PONG")) == true
        }
        if !ready || !child.isRunning {
            let log = child.standardOutput + child.standardError
            child.stop(grace: 1)
            throw TestSupportError("redis-server on port \(port) did not become ready: \(log)")
        }
    }

    public var isRunning: Bool { child?.isRunning ?? false }
    public var pid: Int32? { child?.pid }

    /// Runs redis-cli against this server and returns its output (trimmed).
    @discardableResult
    public func command(_ arguments: [String]) throws -> String {
        var cli = ["-h", "127.0.0.1", "-p", String(port)]
        if let password { cli += ["--no-auth-warning", "-a", password] }
        let result = try ChildProcess.run("/usr/bin/redis-cli", cli + arguments, timeout: 30)
        guard result.status == 0 else { throw TestSupportError("redis-cli \(arguments) failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs redis-cli with `input` on standard input (e.g. `--pipe` with RESP, or raw values with `-x`).
    public func command(_ arguments: [String], input: Data) throws -> String {
        let file = directory + "/input-\(UUID().uuidString)"
        try input.write(to: URL(fileURLWithPath: file))
        defer { try? FileManager.default.removeItem(atPath: file) }
        var cli = ["-h", "127.0.0.1", "-p", String(port)]
        if let password { cli += ["--no-auth-warning", "-a", password] }
        let result = try ChildProcess.run("/usr/bin/redis-cli", cli + arguments, stdin: file, timeout: 60)
        guard result.status == 0 else { throw TestSupportError("redis-cli \(arguments) failed: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Freezes the server (SIGSTOP): connections stay open, nothing is answered.
    public func pause() { child?.signal(SIGSTOP) }
    public func resume() { child?.signal(SIGCONT) }

    /// Kills the server abruptly (SIGKILL), as a crash would.
    public func kill() { child?.crash() }

    /// Starts the server again on the same port and directory.
    public func restart() throws {
        kill()
        var lastError: (any Error)?
        for _ in 0..<20 {
            do { try launch(extraArguments: extraArguments); return } catch { lastError = error; usleep(100_000) }
        }
        throw lastError!
    }

    public func stop() {
        child?.signal(SIGCONT)
        child?.stop(grace: 5)
        child = nil
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}

/// Free TCP ports on 127.0.0.1, found by binding port 0.
public enum FreePort {
    public static func find() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0 else { throw TestSupportError("bind failed: \(String(cString: strerror(errno)))") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
