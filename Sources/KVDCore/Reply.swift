/// One response header.
public struct HTTPHeader: Sendable, Hashable {
    public let name: String
    public let value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// A complete HTTP answer: status, headers and body. kvd builds the fixed ones once per worker.
public struct Reply: Sendable, Hashable {
    public let status: Int
    public let contentType: String
    public let headers: [HTTPHeader]
    public let body: [UInt8]

    public init(status: Int, contentType: String = "application/json", headers: [HTTPHeader] = [], body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.headers = headers
        self.body = body
    }

    /// `{"detail":"…"}`, the seed service's error shape.
    public static func detail(_ status: Int, _ message: String, headers: [HTTPHeader] = []) -> Reply {
        var body = Array(#"{"detail":"#.utf8)
        JSONString.encode(Array(message.utf8), into: &body)
        body.append(UInt8(ascii: "}"))
        return Reply(status: status, headers: headers, body: body)
    }

    // The seed contract's answers, byte for byte.
    public static let keyNotFound = detail(404, "Key not found")
    public static let notFound = detail(404, "Not Found")
    public static let methodNotAllowed = detail(405, "Method Not Allowed", headers: [HTTPHeader("Allow", "GET, HEAD")])

    // kvd's own answers.
    public static let healthy = Reply(status: 200, body: Array(#"{"status":"ok"}"#.utf8))
    /// `/readyz` when Redis answered a PING.
    public static let ready = Reply(status: 200, body: Array(#"{"status":"ready"}"#.utf8))
    /// `/readyz` when Redis did not answer (down, refusing, too slow).
    public static let notReady = detail(503, "Not ready: Redis does not answer", headers: [HTTPHeader("Retry-After", "1")])
    public static let badPercentEncoding = detail(400, "Invalid percent-encoding in path")
    public static let notUTF8 = detail(406, "Value is not valid UTF-8; request it with Accept: application/octet-stream or ?format=raw")
    public static let redisUnavailable = detail(503, "Redis unavailable", headers: [HTTPHeader("Retry-After", "1")])
    public static let redisTimeout = detail(504, "Redis timed out")
    public static let shuttingDown = detail(503, "Shutting down", headers: [HTTPHeader("Retry-After", "1")])

    public static func keyTooLong(limit: Int) -> Reply {
        detail(414, "Key longer than \(limit) bytes")
    }

    public static func redisError(_ message: String) -> Reply {
        detail(502, "Redis error: \(message)")
    }

    public static let unexpectedRedisReply = detail(502, "Unexpected reply from Redis")

    // `POST /mget`.
    public static let mgetMethodNotAllowed = detail(405, "Method Not Allowed", headers: [HTTPHeader("Allow", "POST")])

    public static func mgetTooManyKeys(limit: Int) -> Reply {
        detail(413, "More than \(limit) keys in one request")
    }

    public static func mgetBodyTooLarge(limit: Int) -> Reply {
        detail(413, "Request body larger than \(limit) bytes", headers: [HTTPHeader("Connection", "close")])
    }

    /// An answer longer than `mget_max_answer_bytes` (the request's body was read: the connection stays open).
    public static func mgetAnswerTooLarge(limit: Int) -> Reply {
        detail(413, "Answer larger than \(limit) bytes; request fewer keys at a time")
    }

    /// A value JSON cannot carry: the whole batch is refused with the single GET's status (406).
    public static func mgetNotUTF8(index: Int) -> Reply {
        detail(406, "Value at index \(index) is not valid UTF-8; request it alone with GET /get/{key} and Accept: application/octet-stream or ?format=raw")
    }
}
