/// What a request asks for, decided from its method and target alone.
public enum Route: Sendable, Equatable {
    /// Look the key up in Redis; `raw` answers the exact bytes as application/octet-stream.
    case lookup(key: [UInt8], raw: Bool)
    /// Answer at once, without Redis.
    case reply(FixedReply)
    /// `/readyz`: send Redis a PING through the worker's pipeline; 200 when it answers, else 503.
    case readiness
    /// `/metrics`: the Prometheus text exposition.
    case metrics
    /// `POST /mget`: the body is a JSON array of keys (see `Router.mgetKeys`).
    case batch
}

/// What a `POST /mget` body asks for.
public enum MgetRequest: Sendable, Equatable {
    /// The keys to look up, in order (duplicates kept).
    case keys([[UInt8]])
    /// Refused with a fixed answer (too many keys: 413).
    case refused(FixedReply)
    /// Refused with a `{"detail": …}` 400 naming what is wrong (and the element, when one is).
    case invalid(Reply)
}

/// Every answer kvd gives with a fixed body: each worker prepares them once, in one table
/// indexed by `rawValue`. Only a value read from Redis and a Redis error message are built per request.
public enum FixedReply: Int, Sendable, CaseIterable {
    // The router's own answers, decided from the method and the path.
    case notFound, methodNotAllowed, healthy, badPercentEncoding, keyTooLong
    // The answers to a lookup or a readiness probe, decided by what Redis said (or did not say).
    case keyNotFound, notUTF8, unexpectedRedisReply, redisUnavailable, redisTimeout, shuttingDown, ready, notReady
    // `POST /mget`'s own answers: a method other than POST, too many keys, a body too large.
    case mgetMethodNotAllowed, mgetTooManyKeys, mgetBodyTooLarge
}

/// Maps requests to routes: `/get/{key}` (GET, HEAD), `POST /mget`, `/healthz`, `/readyz`, `/metrics`, and the seed's 404 and 405 answers.
public struct Router: Sendable {
    public let maxKeyBytes: Int
    /// Most keys in one `POST /mget` (more: 413).
    public let mgetMaxKeys: Int
    /// Largest `POST /mget` body, in bytes (larger: 413, before the rest is read).
    public let mgetMaxBodyBytes: Int

    public init(maxKeyBytes: Int, mgetMaxKeys: Int = 1000, mgetMaxBodyBytes: Int = 1 << 20) {
        self.maxKeyBytes = maxKeyBytes
        self.mgetMaxKeys = mgetMaxKeys
        self.mgetMaxBodyBytes = mgetMaxBodyBytes
    }

    /// The full answer for a fixed reply.
    public func reply(_ fixed: FixedReply) -> Reply {
        switch fixed {
        case .notFound: return .notFound
        case .methodNotAllowed: return .methodNotAllowed
        case .healthy: return .healthy
        case .badPercentEncoding: return .badPercentEncoding
        case .keyTooLong: return .keyTooLong(limit: maxKeyBytes)
        case .keyNotFound: return .keyNotFound
        case .notUTF8: return .notUTF8
        case .unexpectedRedisReply: return .unexpectedRedisReply
        case .redisUnavailable: return .redisUnavailable
        case .redisTimeout: return .redisTimeout
        case .shuttingDown: return .shuttingDown
        case .ready: return .ready
        case .notReady: return .notReady
        case .mgetMethodNotAllowed: return .mgetMethodNotAllowed
        case .mgetTooManyKeys: return .mgetTooManyKeys(limit: mgetMaxKeys)
        case .mgetBodyTooLarge: return .mgetBodyTooLarge(limit: mgetMaxBodyBytes)
        }
    }

    private static let getPrefix = Array("/get/".utf8)
    private static let healthPath = Array("/healthz".utf8)
    private static let readinessPath = Array("/readyz".utf8)
    private static let metricsPath = Array("/metrics".utf8)
    private static let mgetPath = Array("/mget".utf8)

    /// Whether a request's body is read and kept for its handler (`POST /mget`); every other
    /// request's body is read and dropped.
    public static func takesBody(method: String, path: [UInt8]) -> Bool {
        method == "POST" && originForm(path) == mgetPath
    }

    /// The path of a request target: an absolute-form target (`http://host:8000/get/k`, which a
    /// server must accept, RFC 9112 section 3.2.2) gives its path (`/get/k`, or `/` when it has
    /// none); any other target is its own path. Only a target that does not start with `/` is looked at.
    @inline(__always)
    public static func originForm(_ target: [UInt8]) -> [UInt8] {
        guard let first = target.first, first != UInt8(ascii: "/") else { return target }
        return absolutePath(target) ?? target
    }

    private static let schemes = [Array("http://".utf8), Array("https://".utf8)]

    private static func absolutePath(_ target: [UInt8]) -> [UInt8]? {
        // The scheme is case-insensitive (RFC 3986 section 3.1); the authority ends at the first "/".
        for scheme in schemes where target.count >= scheme.count
            && zip(target, scheme).allSatisfy({ $0 == $1 || ($1 >= UInt8(ascii: "a") && $0 | 0x20 == $1) }) {
            let rest = target[scheme.count...]
            guard let slash = rest.firstIndex(of: UInt8(ascii: "/")) else { return [UInt8(ascii: "/")] }
            return Array(rest[slash...])
        }
        return nil
    }

    /// - Parameters:
    ///   - method: the request method, as sent.
    ///   - path: the request target as sent, without the query string (still percent-encoded; in
    ///     origin form, `/get/k`, or absolute form, `http://host/get/k`: see `originForm`).
    ///   - wantsRaw: the client asked for raw bytes (see `wantsRaw(accept:format:)`); evaluated
    ///     only for a lookup, so other routes never look at headers or the query.
    public func route(method: String, path target: [UInt8], wantsRaw: @autoclosure () -> Bool) -> Route {
        let path = Self.originForm(target)
        let readOnly = method == "GET" || method == "HEAD"
        if path.starts(with: Self.getPrefix) {
            guard readOnly else { return .reply(.methodNotAllowed) }
            guard let key = PercentDecoding.decode(path[Self.getPrefix.count...]) else {
                return .reply(.badPercentEncoding)
            }
            if key.isEmpty { return .reply(.notFound) }
            if key.count > maxKeyBytes { return .reply(.keyTooLong) }
            return .lookup(key: key, raw: wantsRaw())
        }
        if path == Self.healthPath {
            return .reply(readOnly ? .healthy : .methodNotAllowed)
        }
        if path == Self.readinessPath {
            return readOnly ? .readiness : .reply(.methodNotAllowed)
        }
        if path == Self.metricsPath {
            return readOnly ? .metrics : .reply(.methodNotAllowed)
        }
        if path == Self.mgetPath {
            return method == "POST" ? .batch : .reply(.mgetMethodNotAllowed)
        }
        return .reply(.notFound)
    }

    /// The keys a `POST /mget` body names: a JSON array of strings, each a key under the same
    /// rules as `/get/{key}`'s (not empty, at most `maxKeyBytes` bytes); an invalid key refuses
    /// the whole request (400 naming its index), more than `mgetMaxKeys` keys answer 413.
    public func mgetKeys(_ body: [UInt8]) -> MgetRequest {
        let keys: [[UInt8]]
        do {
            keys = try JSONStringArray.parse(body, maxElements: mgetMaxKeys)
        } catch {
            switch error {
            case .tooMany: return .refused(.mgetTooManyKeys)
            case .malformed(let problem): return .invalid(.detail(400, "Invalid JSON array of keys: \(problem.message)"))
            }
        }
        for (index, key) in keys.enumerated() {
            if key.isEmpty { return .invalid(.detail(400, "Invalid key at index \(index): empty")) }
            if key.count > maxKeyBytes {
                return .invalid(.detail(400, "Invalid key at index \(index): longer than \(maxKeyBytes) bytes"))
            }
        }
        return .keys(keys)
    }

    /// Whether the client asked for raw bytes: `format=raw` in the query, or an Accept header
    /// that names application/octet-stream.
    public static func wantsRaw(accept: String?, format: String?) -> Bool {
        if format == "raw" { return true }
        return accept?.contains("application/octet-stream") ?? false
    }
}
