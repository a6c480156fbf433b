import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A child process started by a test: output captured to files, always stoppable.
///
/// `Foundation.Process` inherits the launching thread's blocked signals; a child started from an
/// async test could then ignore SIGTERM forever. The signal mask is cleared around `run()`, and
/// `stop` falls back to SIGKILL after a deadline.
public final class ChildProcess: @unchecked Sendable {
    public let executable: String
    public let arguments: [String]
    public let stdoutPath: String
    public let stderrPath: String
    private let process = Process()

    /// Starts `executable` with `arguments`.
    /// - Parameters:
    ///   - environment: extra variables on top of this process's environment.
    ///   - stdin: a file to read standard input from (nil: /dev/null).
    /// - Throws: when the executable is missing or cannot be started.
    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:],
                stdin: String? = nil, workingDirectory: String? = nil) throws {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw TestSupportError("executable not found: \(executable)")
        }
        self.executable = executable
        self.arguments = arguments
        let directory = try TemporaryDirectory.make(prefix: "child")
        let name = (executable as NSString).lastPathComponent
        stdoutPath = directory + "/\(name).stdout"
        stderrPath = directory + "/\(name).stderr"
        guard FileManager.default.createFile(atPath: stdoutPath, contents: nil),
              FileManager.default.createFile(atPath: stderrPath, contents: nil) else {
            throw TestSupportError("cannot create output files in \(directory)")
        }
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (key, value) in environment { env[key] = value }
        process.environment = env
        if let workingDirectory { process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory) }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: stdin ?? "/dev/null"))
        var empty = sigset_t()
        var old = sigset_t()
        sigemptyset(&empty)
        pthread_sigmask(SIG_SETMASK, &empty, &old)
        defer { pthread_sigmask(SIG_SETMASK, &old, nil) }
        try ProcessSpawning.serialized { try process.run() }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    /// The exit status once the process has exited (the signal number if it was killed).
    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }
    public var exitedBySignal: Bool { !process.isRunning && process.terminationReason == .uncaughtSignal }

    public var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var standardError: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    public func signal(_ number: Int32) { if process.isRunning { kill(process.processIdentifier, number) } }

    /// Waits for the process to exit by itself.
    /// - Returns: the exit status, or nil if it was still running at the deadline.
    @discardableResult
    public func waitForExit(timeout: Double) -> Int32? {
        let exited = waitUntil(timeout: timeout) { !self.process.isRunning }
        return exited ? process.terminationStatus : nil
    }

    /// SIGTERM, then SIGKILL if it has not exited within `grace` seconds.
    public func stop(grace: Double = 5) {
        guard process.isRunning else { return }
        kill(process.processIdentifier, SIGTERM)
        if waitForExit(timeout: grace) == nil {
            kill(process.processIdentifier, SIGKILL)
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

/// One spawn at a time in the test process: Foundation's `Process.run()` was seen to crash
/// (SIGSEGV in a memcpy inside it) while parallel test suites started children at once.
enum ProcessSpawning {
    private static let lock = NSLock()

    static func serialized<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
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

/// Temporary directories under the system's temp folder.
public enum TemporaryDirectory {
    public static func make(prefix: String) throws -> String {
        var template = Array((NSTemporaryDirectory() + "/kvd-\(prefix)-XXXXXX").utf8CString)
        guard let result = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw TestSupportError("mkdtemp failed: \(String(cString: strerror(errno)))")
        }
        return String(cString: result)
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
