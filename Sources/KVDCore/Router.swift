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
}

/// Every answer kvd gives with a fixed body: each worker prepares them once, in one table
/// indexed by `rawValue`. Only a value read from Redis and a Redis error message are built per request.
public enum FixedReply: Int, Sendable, CaseIterable {
    // The router's own answers, decided from the method and the path.
    case notFound, methodNotAllowed, healthy, badPercentEncoding, keyTooLong
    // The answers to a lookup or a readiness probe, decided by what Redis said (or did not say).
    case keyNotFound, notUTF8, unexpectedRedisReply, redisUnavailable, redisTimeout, shuttingDown, ready, notReady
}

/// Maps requests to routes: `/get/{key}` (GET, HEAD), `/healthz`, `/readyz`, `/metrics`, and the seed's 404 and 405 answers.
public struct Router: Sendable {
    public let maxKeyBytes: Int

    public init(maxKeyBytes: Int) {
        self.maxKeyBytes = maxKeyBytes
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
        }
    }

    private static let getPrefix = Array("/get/".utf8)
    private static let healthPath = Array("/healthz".utf8)
    private static let readinessPath = Array("/readyz".utf8)
    private static let metricsPath = Array("/metrics".utf8)

    /// - Parameters:
    ///   - method: the request method, as sent.
    ///   - path: the path as sent (still percent-encoded, without the query string).
    ///   - wantsRaw: the client asked for raw bytes (see `wantsRaw(accept:format:)`); evaluated
    ///     only for a lookup, so other routes never look at headers or the query.
    public func route(method: String, path: [UInt8], wantsRaw: @autoclosure () -> Bool) -> Route {
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
        return .reply(.notFound)
    }

    /// Whether the client asked for raw bytes: `format=raw` in the query, or an Accept header
    /// that names application/octet-stream.
    public static func wantsRaw(accept: String?, format: String?) -> Bool {
        if format == "raw" { return true }
        return accept?.contains("application/octet-stream") ?? false
    }
}
