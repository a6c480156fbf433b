import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A child process started by a test: output captured to files, always stoppable.
///
/// Started with `posix_spawn`, not `Foundation.Process`: Process.run() in Swift 6.3's Foundation
/// over-reads a `dirent` while it scans /proc/self/fd and crashed the test process now and then
/// (swift-corelibs-foundation PR 5472), and it passes no descriptor beyond 0-2. The child starts with
/// an empty signal mask (a thread of an async test may block signals the child must not inherit),
/// and `stop` falls back to SIGKILL.
public final class ChildProcess: @unchecked Sendable {
    public let executable: String
    public let arguments: [String]
    public let stdoutPath: String
    public let stderrPath: String
    public let pid: pid_t
    private let exit: ExitWatcher

    /// Starts `executable` with `arguments`.
    /// - Parameters:
    ///   - environment: extra variables on top of this process's environment.
    ///   - stdin: a file to read standard input from (nil: /dev/null).
    ///   - stderrDescriptor: the child's standard error, a descriptor the test controls (nil: the file
    ///     `stderrPath`), e.g. a pipe nobody reads, to wedge the child's logging.
    ///   - listeningSocket: passed as descriptor 3 with `LISTEN_FDS=1` and `LISTEN_PID` set to the
    ///     child's own id, as systemd does for socket activation (the child is spawned through
    ///     `/bin/sh`, which sets LISTEN_PID to `$$` and execs).
    /// - Throws: when the executable is missing or cannot be started.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                stdin: String? = nil, stderrDescriptor: Int32? = nil, listeningSocket: TCPListener? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestSupportError("executable not found: \(executable)")
        }
        self.executable = executable
        self.arguments = arguments
        let directory = try TemporaryDirectory.make(prefix: "child")
        let name = (executable as NSString).lastPathComponent
        stdoutPath = directory + "/\(name).stdout"
        stderrPath = directory + "/\(name).stderr"
        let (stdoutPath, stderrPath) = (stdoutPath, stderrPath)
        let script = #"LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@""#
        let argv = listeningSocket == nil ? [executable] + arguments : ["/bin/sh", "-c", script, executable] + arguments
        pid = try Self.spawn(argv, environment: environment) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, stdin ?? "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            // dup2 clears FD_CLOEXEC on the copy: the copy survives the exec, the original does not.
            if let stderrDescriptor {
                posix_spawn_file_actions_adddup2(&actions, stderrDescriptor, 2)
            } else {
                posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            }
            if let listeningSocket { posix_spawn_file_actions_adddup2(&actions, listeningSocket.fd, 3) }
        }
        exit = ExitWatcher(pid: pid)
    }

    public var isRunning: Bool { exit.status == nil }

    /// The exit status once the process has exited (the signal number if it was killed).
    public var exitStatus: Int32? { exit.status.map { $0.signal ?? $0.code } }
    public var exitedBySignal: Bool { exit.status?.signal != nil }

    public var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    public func signal(_ number: Int32) { if isRunning { kill(pid, number) } }

    /// Kills the process abruptly (SIGKILL, after a SIGCONT in case it is stopped), as a crash would, and reaps it.
    public func crash() {
        signal(SIGCONT)
        signal(SIGKILL)
        _ = waitForExit(timeout: 10)
    }

    /// Waits for the process to exit by itself.
    /// - Returns: the exit status, or nil if it was still running at the deadline.
    @discardableResult
    public func waitForExit(timeout: Double) -> Int32? {
        waitUntil(timeout: timeout) { !self.isRunning } ? exitStatus : nil
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace` seconds.
    public func stop(grace: Double = 5) {
        guard isRunning else { return }
        kill(pid, SIGTERM)
        if waitForExit(timeout: grace) == nil {
            kill(pid, SIGKILL)
            _ = waitForExit(timeout: 5)
        }
    }

    /// Runs a command to completion and returns its status and output.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                           stdin: String? = nil, timeout: Double = 120) throws -> (status: Int32, stdout: String, stderr: String) {
        let child = try ChildProcess(executable, arguments, environment: environment, stdin: stdin)
        guard let status = child.waitForExit(timeout: timeout) else {
            child.stop(grace: 1)
            throw TestSupportError("\(executable) \(arguments.joined(separator: " ")) did not finish in \(timeout) s; stderr: \(child.standardError)")
        }
        return (status, child.standardOutput, child.standardError)
    }

    deinit { stop(grace: 2) }
}

extension ChildProcess {
    /// Starts `argv` with `posix_spawn`: an empty signal mask, default signal actions, this process's
    /// environment plus extras, and the descriptors `fileActions` sets.
    private static func spawn(_ argv: [String], environment: [String: String],
                              fileActions: (inout posix_spawn_file_actions_t) -> Void) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        fileActions(&actions)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // No blocked signals, and every signal back to its default action (this test process may
        // ignore some, and an ignored signal stays ignored across exec).
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        var cArgv: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        var cEnvp: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in cArgv { free(pointer) }
            for pointer in cEnvp { free(pointer) }
        }
        var child: pid_t = 0
        let result = posix_spawn(&child, argv[0], &actions, &attributes, &cArgv, &cEnvp)
        guard result == 0 else { throw TestSupportError("cannot start \(argv[0]): \(String(cString: strerror(result)))") }
        return child
    }
}

/// How a child ended, read once with `waitpid` (the child is reaped then).
final class ExitWatcher: @unchecked Sendable {
    struct Status {
        /// The exit code, or 128 + the signal number when a signal ended it.
        let code: Int32
        /// The signal that ended it, if one did.
        let signal: Int32?
    }

    private let pid: pid_t
    private let lock = NSLock()
    private var ended: Status?

    init(pid: pid_t) { self.pid = pid }

    /// nil while the child runs.
    var status: Status? {
        lock.lock()
        defer { lock.unlock() }
        if ended == nil {
            var raw: Int32 = 0
            if waitpid(pid, &raw, WNOHANG) == pid {
                let signal = raw & 0x7f
                ended = signal == 0 ? Status(code: (raw >> 8) & 0xff, signal: nil) : Status(code: 128 + signal, signal: signal)
            }
        }
        return ended
    }
}

/// A failure of the test harness itself (a missing binary, a server that never became ready).
public struct TestSupportError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Polls `condition` every few milliseconds until it holds or `timeout` seconds pass.
/// - Returns: whether the condition held before the deadline.
@discardableResult
public func waitUntil(timeout: Double, interval: Double = 0.01, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while true {
        if try condition() { return true }
        if Date() >= deadline { return false }
        usleep(UInt32(interval * 1_000_000))
    }
}

/// Temporary directories under the system's temp folder, removed with everything in them when the
/// test process exits normally (set `KVD_KEEP_TEST_FILES=1` to keep them, to read a child's output
/// or data after a failed run). A test that removes its own directory earlier may.
public enum TemporaryDirectory {
    public static func make(prefix: String) throws -> String {
        var template = Array((NSTemporaryDirectory() + "/kvd-\(prefix)-XXXXXX").utf8CString)
        guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestSupportError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        let path = String(cString: result)
        let first = created.withLock { paths in
            paths.append(path)
            return paths.count == 1
        }
        if first && ProcessInfo.processInfo.environment["KVD_KEEP_TEST_FILES"] == nil {
            atexit { TemporaryDirectory.removeAll() }
        }
        return path
    }

    private static let created = Mutex<[String]>([])

    private static func removeAll() {
        for path in created.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
}

/// Where the package's built executables are: `KVD_BIN_DIR`, else beside the test bundle.
public enum Binaries {
    public static var directory: String {
        if let dir = ProcessInfo.processInfo.environment["KVD_BIN_DIR"] { return dir }
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = (exe as NSString).deletingLastPathComponent
        // On Linux the test binary sits in <products>/kvdPackageTests.xctest; elsewhere inside a bundle.
        while dir.hasSuffix(".xctest") || dir.contains(".xctest/") { dir = (dir as NSString).deletingLastPathComponent }
        return dir
    }

    /// The path of a built executable, failing with the path tried when it is missing.
    public static func path(_ name: String) throws -> String {
        let path = directory + "/" + name
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw TestSupportError("built executable not found at \(path): run `swift build` first (or set KVD_BIN_DIR)")
        }
        return path
    }
}
