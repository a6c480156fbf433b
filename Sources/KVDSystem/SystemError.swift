// KVDSystem: the one module where kvd, kvload and kvbench call the C library (Glibc and Linux) directly,
// outside the C libraries that have a wrapper of their own (libmicrohttpd, hiredis, zlib,
// libsystemd). Every function reads errno straight after the call it belongs to, retries EINTR, and hands
// back plain Swift values: no pointer leaves this module.

#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: what was being done (`operation`, often naming a path) and the system's message.
public struct SystemError: Error, CustomStringConvertible, Sendable, Equatable {
    public let operation: String
    /// `strerror`'s text, or the resolver's message.
    public let message: String
    /// The errno (0 when the failure has none, e.g. a resolver error).
    public let code: Int32

    /// A failure described by `errno`.
    public init(operation: String, errno code: Int32) {
        self.operation = operation
        self.code = code
        message = String(cString: strerror(code))
    }

    /// A failure with a message of its own and no errno.
    public init(operation: String, message: String) {
        self.operation = operation
        self.code = 0
        self.message = message
    }

    public var description: String { "\(operation): \(message)" }
}
