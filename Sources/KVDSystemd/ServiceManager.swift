import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// What kvd tells systemd and takes from it, through libsystemd (sd-daemon(3)).
///
/// Every call is a no-op returning "nothing" when kvd does not run under systemd (no
/// `NOTIFY_SOCKET`, `WATCHDOG_USEC` or `LISTEN_FDS` in the environment).
public enum ServiceManager {
    /// Sends `state` (newline-separated `KEY=value` assignments, sd_notify(3)) to the service manager.
    /// - Returns: whether a service manager was there to receive it.
    @discardableResult
    public static func notify(_ state: String) -> Bool {
        sd_notify(0, state) > 0
    }

    /// Whether a service manager listens for notifications (`NOTIFY_SOCKET` is set).
    public static var isNotifying: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// The watchdog timeout systemd set for this process (`WatchdogSec=`), in microseconds, or nil
    /// when no watchdog is armed.
    public static var watchdogTimeoutMicroseconds: UInt64? {
        var microseconds: UInt64 = 0
        return sd_watchdog_enabled(0, &microseconds) > 0 ? microseconds : nil
    }

    /// The listening stream sockets systemd passed (socket activation), in order; empty when none.
    /// Unsets `LISTEN_FDS`/`LISTEN_PID` so that no child inherits them.
    /// - Throws: `SocketActivationError` when a passed descriptor is not a listening stream socket.
    public static func takeListeningSockets() throws(SocketActivationError) -> [Int32] {
        let count = sd_listen_fds(1)
        guard count > 0 else { return [] }
        let descriptors = (0..<count).map { SD_LISTEN_FDS_START + $0 }
        for descriptor in descriptors where sd_is_socket(descriptor, AF_UNSPEC, Int32(SOCK_STREAM.rawValue), 1) <= 0 {
            throw SocketActivationError(descriptor: descriptor)
        }
        return descriptors
    }
}

/// A descriptor systemd passed is not a listening stream socket (a `kvd.socket` with the wrong type).
public struct SocketActivationError: Error, CustomStringConvertible, Sendable {
    public let descriptor: Int32
    public var description: String {
        "descriptor \(descriptor) passed by the service manager (LISTEN_FDS) is not a listening TCP stream socket"
    }
}
