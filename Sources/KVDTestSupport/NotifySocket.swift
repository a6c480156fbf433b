import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A stand-in for systemd's notification socket: an `AF_UNIX` datagram socket a test binds and
/// hands to kvd through `NOTIFY_SOCKET`, then reads `READY=1`, `STATUS=…`, `WATCHDOG=1` from.
public final class NotifySocket: @unchecked Sendable {
    public let path: String
    private let descriptor: Int32
    private var received: [String] = []

    /// Binds a fresh socket in a temporary directory.
    public init() throws {
        path = try TemporaryDirectory.make(prefix: "notify") + "/notify.sock"
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard descriptor >= 0 else { throw TestSupportError("socket(AF_UNIX) failed: \(String(cString: strerror(errno)))") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else {
            throw TestSupportError("socket path too long: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let status = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard status == 0 else {
            close(descriptor)
            throw TestSupportError("bind(\(path)) failed: \(String(cString: strerror(errno)))")
        }
    }

    /// The environment that points a child at this socket.
    public var environment: [String: String] { ["NOTIFY_SOCKET": path] }

    /// Every datagram received so far, oldest first.
    public var messages: [String] {
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            guard count > 0 else { break }
            received.append(String(decoding: buffer[..<count], as: UTF8.self))
        }
        return received
    }

    /// Every `KEY=value` assignment received so far, in order (a datagram may carry several).
    public var assignments: [String] {
        messages.flatMap { $0.split(separator: "\n").map(String.init) }
    }

    /// Waits until an assignment satisfies `matches`.
    /// - Returns: the first such assignment, or nil at the deadline.
    public func waitFor(timeout: Double, _ matches: (String) -> Bool) -> String? {
        var found: String?
        waitUntil(timeout: timeout) {
            found = assignments.first(where: matches)
            return found != nil
        }
        return found
    }

    /// Forgets what was received so far.
    public func clear() {
        _ = messages
        received.removeAll()
    }

    deinit {
        close(descriptor)
        unlink(path)
    }
}
