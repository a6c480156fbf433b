import KVDConfig

/// A Redis URI as redis-cli's `-u` takes it, plus the unix-socket form redis-py and others use:
///
/// - `redis://[[user]:password@]host[:port][/db]` (IPv6 hosts in brackets: `redis://[::1]:6380/2`)
/// - `unix://[[user]:password@]/path/to/redis.sock[?db=N]`
///
/// A user-info part without a colon is the password alone (as in redis-cli); user and password are
/// percent-decoded. `rediss://` (TLS) is refused: kvload speaks plain TCP or a unix socket.
public struct RedisURI: Sendable, Equatable {
    public var host: String?
    public var port: Int?
    public var socket: String?
    public var db: Int?
    public var user: String?
    public var password: String?

    public init(host: String? = nil, port: Int? = nil, socket: String? = nil, db: Int? = nil, user: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.socket = socket
        self.db = db
        self.user = user
        self.password = password
    }

    /// Why a URI was refused.
    public struct Invalid: Error, Sendable, Equatable, CustomStringConvertible {
        public let reason: String
        public var description: String { reason }
    }

    /// Parses `text`.
    /// - Throws: `Invalid` with the reason.
    public init(parsing text: String) throws(Invalid) {
        let isUnix: Bool
        var rest: Substring
        if text.hasPrefix("redis://") {
            isUnix = false
            rest = text.dropFirst("redis://".count)
        } else if text.hasPrefix("unix://") {
            isUnix = true
            rest = text.dropFirst("unix://".count)
        } else if text.hasPrefix("rediss://") {
            throw Invalid(reason: "rediss:// (TLS) is not supported: use redis://, or unix:// for a socket")
        } else {
            throw Invalid(reason: "expected redis://[[user]:password@]host[:port][/db] or unix://[[user]:password@]/path[?db=N]")
        }
        // The user info ends at the last '@' before the path (a password may hold '@' only percent-encoded).
        let authorityEnd = isUnix ? (rest.firstIndex(of: "/") ?? rest.endIndex) : (rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex)
        if let at = rest[..<authorityEnd].lastIndex(of: "@") {
            let info = rest[..<at]
            if let colon = info.firstIndex(of: ":") {
                let name = try Self.percentDecoded(info[..<colon])
                user = name.isEmpty ? nil : name
                password = try Self.percentDecoded(info[info.index(after: colon)...])
            } else {
                password = try Self.percentDecoded(info)
            }
            rest = rest[rest.index(after: at)...]
        }
        if isUnix {
            var path = rest
            if let query = rest.firstIndex(of: "?") {
                path = rest[..<query]
                for parameter in rest[rest.index(after: query)...].split(separator: "&") {
                    guard parameter.hasPrefix("db=") else { throw Invalid(reason: "unknown URI parameter '\(parameter)' (only db=N)") }
                    db = try Self.database(parameter.dropFirst(3))
                }
            }
            guard path.hasPrefix("/") else { throw Invalid(reason: "unix:// needs an absolute socket path, e.g. unix:///run/redis/redis.sock") }
            socket = String(path)
            return
        }
        var authority = rest
        if let slash = rest.firstIndex(where: { $0 == "/" || $0 == "?" }) {
            authority = rest[..<slash]
            let path = rest[rest.index(after: slash)...]
            if rest[slash] == "?" { throw Invalid(reason: "redis:// takes the database as a path (/N), not as a parameter") }
            if !path.isEmpty { db = try Self.database(path) }
        }
        var hostPart = authority
        var portPart: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { throw Invalid(reason: "an IPv6 host needs its closing ']'") }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw Invalid(reason: "unexpected text after the IPv6 host") }
                portPart = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        }
        if !hostPart.isEmpty { host = String(hostPart) }
        if let portPart {
            guard let number = Int(portPart), (1...65535).contains(number) else { throw Invalid(reason: "port must be 1-65535, not '\(portPart)'") }
            port = number
        }
    }

    /// Applies the URI over `settings` (a host or a port clears a socket from the configuration, as the flags do).
    public func apply(to settings: inout RedisSettings) {
        if let host { settings.host = host; settings.socket = nil }
        if let port { settings.port = port; settings.socket = nil }
        if let socket { settings.socket = socket }
        if let db { settings.db = db }
        if let user { settings.user = user }
        if let password { settings.password = password }
    }

    private static func database(_ text: Substring) throws(Invalid) -> Int {
        guard let number = Int(text), number >= 0 else { throw Invalid(reason: "the database must be a number ≥ 0, not '\(text)'") }
        return number
    }

    /// `%XX` escapes decoded (as UTF-8 bytes; other bytes kept).
    static func percentDecoded(_ text: Substring) throws(Invalid) -> String {
        var bytes: [UInt8] = []
        var utf8 = Array(text.utf8)[...]
        while let byte = utf8.popFirst() {
            guard byte == 0x25 else { bytes.append(byte); continue }
            guard utf8.count >= 2, let value = UInt8(String(decoding: utf8.prefix(2), as: UTF8.self), radix: 16) else {
                throw Invalid(reason: "a '%' in the user or password must start a %XX escape")
            }
            bytes.append(value)
            utf8 = utf8.dropFirst(2)
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
