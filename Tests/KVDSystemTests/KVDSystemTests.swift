import Foundation
import KVDSystem
import Testing

@Suite struct SysExitTests {
    @Test func codesAreTheSysexitsOnes() {
        let expected: [SysExit: Int32] = [
            .ok: 0, .failedCriteria: 1, .usage: 64, .dataError: 65, .noInput: 66, .unavailable: 69,
            .software: 70, .ioError: 74, .temporaryFailure: 75, .protocolError: 76, .config: 78,
        ]
        for status in SysExit.allCases { #expect(status.rawValue == expected[status]) }
        #expect(SysExit.interrupted(by: SIGTERM) == 143)
    }
}

@Suite struct FileTests {
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-system-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    @Test func wholeFileIsReadPastItsFirstChunk() throws {
        let bytes = (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let path = directory + "/big"
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(try FileContents.read(path: path) == bytes)
        #expect(FileContents.exists(path))
    }

    @Test func failuresNameThePathAndTheErrno() {
        #expect(throws: SystemError(operation: directory + "/missing", errno: ENOENT)) {
            try FileContents.read(path: directory + "/missing")
        }
        #expect(throws: SystemError(operation: directory, errno: EISDIR)) { try FileContents.read(path: directory) }
    }

    @Test func sinkWritesAndReportsOpenFailures() throws {
        let path = directory + "/out"
        let sink = try FileSink(path: path)
        try sink.write(Array("hello\n".utf8))
        try sink.close()
        #expect(try FileContents.read(path: path) == Array("hello\n".utf8))
        #expect(throws: SystemError.self) { try FileSink(path: directory + "/no/such/dir/out") }
    }

    @Test func passwordFileIsOneLineWithoutItsLineBreak() throws {
        try "pa55\r\n".write(toFile: directory + "/pw", atomically: true, encoding: .utf8)
        let read = try Secrets.readPasswordFile("pw", credentialsDirectory: directory)
        #expect(read.path == directory + "/pw" && read.secret == "pa55")
        #expect(throws: SecretError.self) { try Secrets.readPasswordFile("pw", credentialsDirectory: nil) }
    }
}

@Suite struct SocketAddressTests {
    @Test func literalAddressesResolveAndBadNamesFail() throws {
        #expect(try SocketAddress(host: "127.0.0.1", port: 80).family == AF_INET)
        #expect(try SocketAddress(host: "::1", port: 80).family == AF_INET6)
        #expect(throws: SystemError.self) { try SocketAddress(host: "no such host.invalid", port: 80) }
    }
}

@Suite struct ThreadsTests {
    /// The name a thread has, as `ps -L` shows it.
    static func threadName() -> String {
        (try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
    }

    /// `detachOrRunHere` runs its body on a new thread of that name (when the system allows one),
    /// not on the caller's.
    @Test func detachOrRunHereRunsElsewhere() {
        let ran = DispatchSemaphore(value: 0)
        let seen = Seen()
        let caller = pthread_self()
        Threads.detachOrRunHere(name: "kvd-test-free") {
            seen.set(name: Self.threadName(), onCaller: pthread_equal(pthread_self(), caller) != 0)
            ran.signal()
        }
        #expect(ran.wait(timeout: .now() + 30) == .success)
        #expect(seen.name == "kvd-test-free")
        #expect(seen.onCaller == false)
    }

    final class Seen: @unchecked Sendable {
        private let lock = NSLock()
        private var _name = "", _onCaller = true
        func set(name: String, onCaller: Bool) { lock.withLock { (_name, _onCaller) = (name, onCaller) } }
        var name: String { lock.withLock { _name } }
        var onCaller: Bool { lock.withLock { _onCaller } }
    }
}
