import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A listening TCP socket on 127.0.0.1 and a free port, without SO_REUSEPORT: it holds the port
/// against other binders, or plays systemd's `kvd.socket` for `SpawnedProcess`.
public final class TCPListener: @unchecked Sendable {
    public let fd: Int32
    public let port: Int

    /// - Parameter reusePort: bind with SO_REUSEPORT, as another server sharing a port would.
    public init(backlog: Int32 = 1, reusePort: Bool = false) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw TestSupportError("socket failed: \(String(cString: strerror(errno)))") }
        self.fd = fd
        if reusePort {
            var one: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, backlog) == 0 else {
            close(fd)
            throw TestSupportError("bind/listen failed: \(String(cString: strerror(errno)))")
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}

/// A child process with descriptors Foundation's `Process` cannot give it (it passes none beyond
/// 0-2): a listening socket as systemd passes it (socket activation), or a standard error the test
/// controls (a pipe nobody reads, to wedge the child's logging).
public final class SpawnedProcess: @unchecked Sendable {
    public let pid: pid_t
    /// Where standard output and error go, unless `standardError` was given.
    public let stderrPath: String
    private let exit: ExitWatcher

    /// - Parameters:
    ///   - socket: passed as descriptor 3 with `LISTEN_FDS=1` and `LISTEN_PID` set to the child's
    ///     own id, as systemd does (the child is spawned through `/bin/sh`, which sets LISTEN_PID
    ///     to `$$` and execs).
    ///   - standardError: the child's standard output and error (default: the file `stderrPath`).
    ///   - environment: extra variables on top of this process's environment.
    public init(_ executable: String, _ arguments: [String], socket: TCPListener? = nil, standardError: Int32? = nil,
                environment: [String: String] = [:]) throws {
        let stderrPath = try TemporaryDirectory.make(prefix: "spawned") + "/stderr"
        self.stderrPath = stderrPath
        let script = #"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#
        let argv = socket == nil ? [executable] + arguments : ["/bin/sh", "-c", script, executable] + arguments
        pid = try ProcessSpawning.spawn(argv, environment: environment) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            if let standardError {
                posix_spawn_file_actions_adddup2(&actions, standardError, 1)
                posix_spawn_file_actions_adddup2(&actions, standardError, 2)
            } else {
                posix_spawn_file_actions_addopen(&actions, 1, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
                posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            }
            // dup2 clears FD_CLOEXEC on the copy: descriptor 3 survives the exec, the original does not.
            if let socket { posix_spawn_file_actions_adddup2(&actions, socket.fd, 3) }
        }
        exit = ExitWatcher(pid: pid)
    }

    public var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    public var isRunning: Bool { exit.status == nil }

    public func signal(_ number: Int32) { if isRunning { kill(pid, number) } }

    /// - Returns: the exit status (128 + signal when killed), or nil if still running at the deadline.
    @discardableResult
    public func waitForExit(timeout: Double) -> Int32? {
        waitUntil(timeout: timeout) { exit.status != nil } ? exit.status?.code : nil
    }

    /// SIGTERM, then SIGKILL after `grace` seconds.
    public func stop(grace: Double = 5) {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        if waitForExit(timeout: grace) == nil {
            kill(pid, SIGKILL)
            waitForExit(timeout: 5)
        }
    }

    deinit { stop(grace: 2) }
}
