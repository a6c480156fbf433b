import CKVDSystem

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

/// A resolved IPv4 or IPv6 TCP address.
public struct SocketAddress: Sendable {
    private var storage: sockaddr_storage
    private let length: socklen_t
    /// AF_INET or AF_INET6.
    public let family: Int32

    /// Resolves `host` (a name or a literal address) and `port` with getaddrinfo; the first TCP answer wins.
    /// - Throws: `SystemError` naming the resolver's message.
    public init(host: String, port: Int) throws(SystemError) {
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

    /// The address the socket `fd` is bound to (getsockname), e.g. a listening socket kvd inherited.
    /// - Throws: `SystemError` when `fd` is not a bound IPv4 or IPv6 socket.
    public init(boundTo fd: Int32) throws(SystemError) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard status == 0 else { throw SystemError(operation: "getsockname", errno: errno) }
        let family = Int32(storage.ss_family)
        guard family == AF_INET || family == AF_INET6 else {
            throw SystemError(operation: "getsockname", message: "not an IPv4 or IPv6 socket (family \(family))")
        }
        self.storage = storage
        self.length = length
        self.family = family
    }

    public var isIPv6: Bool { family == AF_INET6 }

    private var portOffset: Int {
        isIPv6 ? MemoryLayout<sockaddr_in6>.offset(of: \.sin6_port)! : MemoryLayout<sockaddr_in>.offset(of: \.sin_port)!
    }

    /// The port in the address.
    public var port: UInt16 {
        withUnsafeBytes(of: storage) { UInt16(bigEndian: $0.load(fromByteOffset: portOffset, as: UInt16.self)) }
    }

    /// The same address with another port.
    public func with(port: UInt16) -> SocketAddress {
        var copy = self
        let offset = portOffset
        withUnsafeMutableBytes(of: &copy.storage) { $0.storeBytes(of: port.bigEndian, toByteOffset: offset, as: UInt16.self) }
        return copy
    }

    /// The host part as a numeric address (`127.0.0.1`, `::1`).
    public var numericHost: String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        _ = withSockaddr { getnameinfo($0, $1, &host, socklen_t(host.count), nil, 0, NI_NUMERICHOST) }
        return String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The `sockaddr_in` or `sockaddr_in6` bytes, for a C library that takes an address (the
    /// wrapper of that library turns them into its pointer).
    public var bytes: [UInt8] {
        withUnsafeBytes(of: storage) { Array($0.prefix(Int(length))) }
    }

    fileprivate func withSockaddr<Result>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
        withUnsafeBytes(of: storage) { raw in
            body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }
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

/// An exclusive claim on a listening address for the life of the process.
///
/// SO_REUSEPORT spreads connections evenly over a server's own sockets, but it also lets any other
/// process of the same user join the port and silently take part of the traffic. A claim therefore
/// (1) binds an abstract Unix socket named `name` (released by the kernel when the process exits,
/// however it exits): a second claimant of the same name fails, even when both start at once; and
/// (2) with `probe`, binds a probe socket to `address` without SO_REUSEPORT, which fails while any
/// other process listens on the port, with or without SO_REUSEPORT.
public final class AddressClaim: Sendable {
    public enum Refusal: Error, Sendable {
        /// Another process holds a claim of the same name.
        case claimedElsewhere
        /// Another process listens on the address.
        case inUse
        case failed(SystemError)
    }

    private let lock: Int32

    public init(name: String, address: SocketAddress, probe: Bool) throws(Refusal) {
        let lock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard lock >= 0 else { throw .failed(SystemError(operation: "socket", errno: errno)) }
        var unixName = sockaddr_un()
        unixName.sun_family = sa_family_t(AF_UNIX)
        // Abstract namespace: a leading NUL byte, then the name; no file, nothing to clean up.
        let label = Array(name.utf8.prefix(MemoryLayout.size(ofValue: unixName.sun_path) - 1))
        withUnsafeMutableBytes(of: &unixName.sun_path) { raw in
            raw[0] = 0
            for (index, byte) in label.enumerated() { raw[index + 1] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + 1 + label.count)
        let locked = withUnsafePointer(to: &unixName) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(lock, $0, length) }
        }
        guard locked == 0 else {
            let code = errno
            Glibc.close(lock)
            throw code == EADDRINUSE ? .claimedElsewhere : .failed(SystemError(operation: "bind", errno: code))
        }
        if probe {
            let probe = socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard probe >= 0 else {
                let code = errno
                Glibc.close(lock)
                throw .failed(SystemError(operation: "socket", errno: code))
            }
            defer { Glibc.close(probe) }
            var one: Int32 = 1
            // SO_REUSEADDR: connections of an earlier process in TIME_WAIT do not hold the port.
            _ = setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            let bound = address.withSockaddr { bind(probe, $0, $1) }
            guard bound == 0 else {
                let code = errno
                Glibc.close(lock)
                throw code == EADDRINUSE ? .inUse : .failed(SystemError(operation: "bind", errno: code))
            }
        }
        self.lock = lock
    }

    deinit { Glibc.close(lock) }
}
