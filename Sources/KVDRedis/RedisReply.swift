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

/// One Redis command, binary-safe, built straight into its RESP encoding in one reusable buffer.
///
/// Build it with `add`, hand it to `RedisConnection.append`, then `removeAll()` and reuse it:
/// in steady state this allocates nothing, and hiredis only copies the bytes (no formatting).
public struct RedisCommand: Sendable {
    /// The arguments, each a RESP bulk string: `$<length>\r\n<bytes>\r\n`.
    private(set) var arguments: [UInt8] = []
    public private(set) var argumentCount = 0

    public init() {}

    /// A command from string arguments (for fixed commands such as `PING` or `RENAME a b`).
    public init(_ arguments: [String]) {
        for argument in arguments { add(argument) }
    }

    public mutating func add(_ argument: [UInt8]) {
        argumentCount += 1
        RESP.appendBulk(argument, to: &arguments)
    }

    public mutating func add(_ argument: String) {
        argumentCount += 1
        RESP.appendBulk(argument, to: &arguments)
    }

    public mutating func add(_ value: Int) { add(String(value)) }

    public mutating func removeAll() {
        arguments.removeAll(keepingCapacity: true)
        argumentCount = 0
    }

    /// The command's RESP header, `*<argument count>\r\n`, appended to `out`.
    func appendHeader(to out: inout [UInt8]) {
        RESP.appendArrayHeader(count: argumentCount, to: &out)
    }
}

extension RedisReply {
    /// The error codes Redis answers while it cannot serve commands for now but will later:
    /// `LOADING` (reading its data file after a start), `BUSY` (a script or function ran past
    /// `busy-reply-threshold`), `MASTERDOWN` (a replica cut off from its master, set not to serve
    /// stale data). A client should retry, as after an outage.
    public static let temporaryErrorCodes: Set<Substring> = ["LOADING", "BUSY", "MASTERDOWN"]

    /// Whether an error reply's `message` says Redis refuses commands only for now (its first
    /// word is one of `temporaryErrorCodes`).
    public static func isTemporaryRefusal(_ message: String) -> Bool {
        let code = message.prefix { $0 != " " }
        return temporaryErrorCodes.contains(code)
    }

    /// Whether an error reply's `message` is Redis turning a new connection away (`maxclients`
    /// reached): it sends this instead of any reply, then closes the connection.
    public static func refusesNewConnections(_ message: String) -> Bool {
        message.hasPrefix("ERR max number of clients reached")
    }
}
