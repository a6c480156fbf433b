// The one place where kvbench calls the C library. Every function reads errno straight after the call it
// belongs to, retries EINTR, and hands back plain Swift values: no pointer leaves this module.

import CKVBenchSystem
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The outcome of one non-blocking read or write.
public enum IOResult: Equatable, Sendable {
    /// This many bytes moved (more than zero).
    case bytes(Int)
    /// The socket has nothing to give (read) or no room (write) right now.
    case wouldBlock
    /// The peer closed its side (read returned 0).
    case endOfStream
    /// The call failed with this errno.
    case failed(Int32)
}

/// Monotonic time and process CPU time.
public enum SystemClock {
    /// Nanoseconds on CLOCK_MONOTONIC.
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// User and system CPU time this process has used so far, in microseconds.
    public static func processCPUMicroseconds() -> (user: UInt64, system: UInt64) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func micros(_ time: timeval) -> UInt64 { UInt64(time.tv_sec) * 1_000_000 + UInt64(time.tv_usec) }
        return (micros(usage.ru_utime), micros(usage.ru_stime))
    }
}

/// A resolved IPv4 or IPv6 TCP address.
public struct SocketAddress: Sendable {
    private let storage: sockaddr_storage
    private let length: socklen_t
    /// AF_INET or AF_INET6.
    public let family: Int32

    /// Resolves `host` (a name or a literal address) and `port` with getaddrinfo; the first TCP answer wins.
    /// - Throws: `SystemError` naming the resolver's message.
    public init(host: String, port: Int) throws {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw SystemError(operation: "resolve \(host)", message: String(cString: gai_strerror(status)))
        }
        defer { freeaddrinfo(list) }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { target in
            target.copyMemory(from: UnsafeRawBufferPointer(start: first.pointee.ai_addr, count: Int(first.pointee.ai_addrlen)))
        }
        self.storage = storage
        length = first.pointee.ai_addrlen
        family = first.pointee.ai_family
    }

    fileprivate func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
}

/// A failed system call, with what was being done and the system's message.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let message: String
    public let code: Int32

    init(operation: String, errno code: Int32) {
        self.operation = operation
        self.code = code
        message = String(cString: strerror(code))
    }

    public init(operation: String, message: String) {
        self.operation = operation
        self.code = 0
        self.message = message
    }

    public var description: String { "\(operation): \(message)" }
}

/// Non-blocking TCP client sockets, named by their descriptor.
public enum TCPSocket {
    /// The errno values that mean the peer reset or dropped the connection.
    public static func isReset(_ code: Int32) -> Bool {
        [ECONNRESET, EPIPE, ECONNABORTED].contains(code)
    }

    /// Starts a non-blocking connect with TCP_NODELAY set.
    /// - Returns: the descriptor (the connect may still be in progress: wait for writability, then `pendingError`),
    ///   or the errno of a failure that happened at once.
    public static func connect(to address: SocketAddress) -> Result<Int32, SystemError> {
        let fd = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return .failure(SystemError(operation: "socket", errno: errno)) }
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
        let status = address.withSockaddr { Glibc.connect(fd, $0, $1) }
        if status == 0 || errno == EINPROGRESS { return .success(fd) }
        let code = errno
        Glibc.close(fd)
        return .failure(SystemError(operation: "connect", errno: code))
    }

    /// The error of a finished non-blocking connect (0 when it succeeded).
    public static func pendingError(_ fd: Int32) -> Int32 {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) == 0 else { return errno }
        return code
    }

    /// Reads into `buffer[offset...]` (up to the buffer's count).
    @inline(__always)
    public static func read(_ fd: Int32, into buffer: inout [UInt8], from offset: Int) -> IOResult {
        let room = buffer.count - offset
        precondition(room > 0, "read buffer full")
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + offset, room) }
            if count > 0 { return .bytes(count) }
            if count == 0 { return .endOfStream }
            let code = errno
            if code == EINTR { continue }
            return code == EAGAIN || code == EWOULDBLOCK ? .wouldBlock : .failed(code)
        }
    }

    /// Writes `buffer[range]`.
    @inline(__always)
    public static func write(_ fd: Int32, _ buffer: [UInt8], _ range: Range<Int>) -> IOResult {
        precondition(!range.isEmpty && range.upperBound <= buffer.count)
        while true {
            let count = buffer.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + range.lowerBound, range.count, Int32(MSG_NOSIGNAL)) }
            if count > 0 { return .bytes(count) }
            let code = errno
            if code == EINTR { continue }
            return code == EAGAIN || code == EWOULDBLOCK ? .wouldBlock : .failed(code)
        }
    }

    /// Closes the descriptor. With `reset`, sends RST instead of FIN (SO_LINGER 0), so that many short-lived
    /// connections do not fill the port range with TIME_WAIT.
    public static func close(_ fd: Int32, reset: Bool = false) {
        if reset {
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        }
        Glibc.close(fd)
    }
}

/// Readiness flags of one epoll event.
public struct Readiness: Sendable {
    public let token: Int
    public let readable: Bool
    public let writable: Bool
    /// EPOLLERR or EPOLLHUP.
    public let failed: Bool
}

/// An epoll instance (level-triggered) with a fixed event array; tokens are caller-chosen integers.
public final class EventPoll {
    private let fd: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private let capacity: Int

    /// - Throws: `SystemError` when epoll_create1 fails.
    public init(capacity: Int = 256) throws {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw SystemError(operation: "epoll_create1", errno: errno) }
        self.capacity = capacity
        events = .allocate(capacity: capacity)
    }

    deinit {
        events.deallocate()
        Glibc.close(fd)
    }

    private func control(_ operation: Int32, _ target: Int32, token: Int, readable: Bool, writable: Bool) {
        var event = epoll_event()
        var mask: UInt32 = 0
        if readable { mask |= EPOLLIN.rawValue }
        if writable { mask |= EPOLLOUT.rawValue }
        event.events = mask
        event.data.u64 = UInt64(bitPattern: Int64(token))
        epoll_ctl(fd, operation, target, &event)
    }

    /// Starts watching `target`.
    public func add(_ target: Int32, token: Int, readable: Bool, writable: Bool) {
        control(EPOLL_CTL_ADD, target, token: token, readable: readable, writable: writable)
    }

    /// Changes what `target` is watched for.
    public func modify(_ target: Int32, token: Int, readable: Bool, writable: Bool) {
        control(EPOLL_CTL_MOD, target, token: token, readable: readable, writable: writable)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) and returns how many events `event(at:)` can read.
    public func wait(timeoutMilliseconds: Int32) -> Int {
        let count = epoll_wait(fd, events, Int32(capacity), timeoutMilliseconds)
        return count < 0 ? 0 : Int(count)
    }

    /// The `index`-th event of the last `wait`.
    @inline(__always)
    public func event(at index: Int) -> Readiness {
        let event = events[index]
        let mask = event.events
        return Readiness(
            token: Int(Int64(bitPattern: event.data.u64)),
            readable: mask & EPOLLIN.rawValue != 0,
            writable: mask & EPOLLOUT.rawValue != 0,
            failed: mask & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
        )
    }
}

/// A timerfd on CLOCK_MONOTONIC that becomes readable at an absolute time, with nanosecond resolution
/// (epoll_wait's timeout has only milliseconds).
public final class DeadlineTimer {
    /// The descriptor, to register with an `EventPoll`.
    public let fd: Int32
    private var armedAt: UInt64 = 0

    /// - Throws: `SystemError` when timerfd_create fails.
    public init() throws {
        fd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK) | Int32(TFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError(operation: "timerfd_create", errno: errno) }
    }

    deinit { Glibc.close(fd) }

    /// Fires at `deadline` (CLOCK_MONOTONIC nanoseconds); a second call with the same deadline does nothing.
    public func arm(at deadline: UInt64) {
        guard deadline != armedAt else { return }
        armedAt = deadline
        var spec = itimerspec()
        spec.it_value.tv_sec = Int(deadline / 1_000_000_000)
        spec.it_value.tv_nsec = Int(deadline % 1_000_000_000)
        timerfd_settime(fd, Int32(TFD_TIMER_ABSTIME), &spec, nil)
    }

    /// Consumes the expiry so that the descriptor is no longer readable.
    public func acknowledge() {
        var expirations: UInt64 = 0
        _ = Glibc.read(fd, &expirations, MemoryLayout<UInt64>.size)
        armedAt = 0
    }
}

/// Whether standard error is a terminal (for the live progress line).
public func standardErrorIsTerminal() -> Bool { isatty(STDERR_FILENO) == 1 }

/// Unbuffered writes to the standard streams (for progress lines and messages from worker threads).
public enum StandardStreams {
    /// Writes `text` to standard error in one write(2) call where possible.
    public static func writeError(_ text: String) { write(STDERR_FILENO, text) }

    /// Writes `text` to standard output.
    public static func writeOutput(_ text: String) { write(STDOUT_FILENO, text) }

    private static func write(_ fd: Int32, _ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { return }
            offset += count
        }
    }
}

/// A file (or standard output) written with plain write(2) calls from a byte array.
public final class FileSink {
    private let fd: Int32
    private let ownsDescriptor: Bool
    /// The name used in error messages.
    public let name: String

    /// Standard output.
    public init() {
        fd = STDOUT_FILENO
        ownsDescriptor = false
        name = "standard output"
    }

    /// Creates or truncates `path` (mode 0644).
    /// - Throws: `SystemError` naming the path.
    public init(path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError(operation: "open \(path)", errno: errno) }
        ownsDescriptor = true
        name = path
    }

    /// Writes all of `bytes`.
    /// - Throws: `SystemError` naming the file when a write fails (disk full, closed pipe).
    public func write(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError(operation: "write \(name)", errno: errno)
            }
            offset += count
        }
    }

    /// Closes the file, reporting a failure of the final flush to disk (e.g. quota) as an error.
    public func close() throws {
        guard ownsDescriptor else { return }
        if Glibc.close(fd) != 0 { throw SystemError(operation: "close \(name)", errno: errno) }
    }
}

/// Ctrl-C during a run: the first SIGINT asks the workers to stop issuing requests and finish the ones in
/// flight, so the report still comes out; a second one kills the process (SA_RESETHAND).
public enum InterruptSignal {
    private static let flag = Atomic<Bool>(false)

    /// Whether SIGINT arrived since `install()`.
    @inline(__always)
    public static var received: Bool { flag.load(ordering: .relaxed) }

    /// Installs the handler.
    public static func install() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in InterruptSignal.flag.store(true, ordering: .relaxed) }
        action.sa_flags = Int32(truncatingIfNeeded: SA_RESETHAND)
        sigemptyset(&action.sa_mask)
        sigaction(SIGINT, &action, nil)
    }
}

/// Whole-file reads straight into a byte array (no intermediate `Data` copy: key files can be gigabytes).
public enum FileSource {
    /// The file's bytes.
    /// - Throws: `SystemError` whose `code` is the errno (ENOENT, EACCES, ...) and whose operation names the path.
    public static func read(path: String) throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError(operation: path, errno: errno) }
        defer { Glibc.close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw SystemError(operation: path, errno: errno) }
        // One byte more than the size, so that reaching the end needs no reallocation.
        var bytes = [UInt8](repeating: 0, count: max(Int(status.st_size), 0) + 1)
        var filled = 0
        while true {
            if filled == bytes.count { bytes.append(contentsOf: repeatElement(0, count: max(bytes.count, 65_536))) }
            let count = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError(operation: path, errno: errno)
            }
            if count == 0 { break }
            filled += count
        }
        bytes.removeSubrange(filled...)
        return bytes
    }
}
