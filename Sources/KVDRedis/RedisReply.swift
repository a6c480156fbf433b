/// A reply from Redis, copied out of hiredis's reply object into Swift values.
public enum RedisReply: Sendable, Equatable {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case null
    case array([RedisReply])
}

/// A failure talking to Redis. `kind` says what a caller should do about it.
public struct RedisError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The connection could not be made (refused, unreachable, no such socket, timed out).
        case connect
        /// AUTH or SELECT was refused after connecting.
        case handshake
        /// The connection broke while in use (closed by Redis, reset, protocol error).
        case io
        /// Redis did not answer in time.
        case timeout
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

/// One Redis command's arguments, binary-safe, packed into one reusable buffer.
///
/// Build it with `add`, hand it to `RedisConnection.append`, then `removeAll()` and reuse it:
/// in steady state this allocates nothing.
public struct RedisCommand: Sendable {
    var bytes: [UInt8] = []
    var lengths: [Int] = []

    public init() {}

    /// A command from string arguments (for fixed commands such as `PING` or `RENAME a b`).
    public init(_ arguments: [String]) {
        for argument in arguments { add(argument.utf8) }
    }

    public var argumentCount: Int { lengths.count }

    public mutating func add(_ argument: some Sequence<UInt8>) {
        let before = bytes.count
        bytes.append(contentsOf: argument)
        lengths.append(bytes.count - before)
    }

    public mutating func add(_ argument: String) { add(argument.utf8) }

    public mutating func add(_ value: Int) { add(String(value).utf8) }

    public mutating func removeAll() {
        bytes.removeAll(keepingCapacity: true)
        lengths.removeAll(keepingCapacity: true)
    }
}
