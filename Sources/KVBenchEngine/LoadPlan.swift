import KVBench
import KVDSystem

/// How the next key is chosen.
public enum KeyOrder: Sendable {
    /// The keys in file order, each thread taking its own stretch and wrapping around.
    case sequential
    /// Every key equally likely.
    case uniform
    /// Zipf-distributed over the file order (the first key the hottest) with this exponent.
    case zipf(Double)
}

/// When a run ends.
public enum StopCondition: Sendable {
    /// After this many requests (responses plus errors).
    case requests(Int)
    /// After this many nanoseconds; requests in flight then are still completed.
    case duration(UInt64)
}

/// Everything a run needs; shared read-only by the worker threads.
public struct LoadPlan: Sendable {
    public var address: SocketAddress
    /// The Host header value.
    public var host: String
    /// The path before the key, e.g. `/get/`.
    public var pathPrefix: String
    public var keys: KeySet
    public var order: KeyOrder
    /// The share of requests for keys that are not in the key file (random UUIDs; 404 expected).
    public var missingRatio: Double
    public var connections: Int
    public var threads: Int
    public var stop: StopCondition
    /// Requests per second for an open-loop run; nil for closed loop.
    public var rate: Double?
    /// Reuse connections (HTTP/1.1 keep-alive); false opens a connection per request.
    public var keepAlive: Bool
    /// Compare 200 bodies with the key file's values and expect 404 for keys not in it.
    public var verify: Bool
    /// Nanoseconds after which a request without a complete response counts as a timeout.
    public var timeout: UInt64
    public var seed: UInt64
    /// Print each response body (or `Error: STATUS - BODY`) to standard output, as the seed's client did.
    public var printBodies: Bool
    /// `--path`: every request goes to this path (e.g. `/healthz`) instead of `pathPrefix` + a key.
    public var fixedPath: String? = nil
    /// `-H`: extra header lines (`Name: value`); a `Host` among them replaces kvbench's own.
    public var headers: [String] = []
    /// `--batch N`: every request is `POST batchPath` with N keys (a JSON array), drawn as single
    /// GETs draw theirs; `keyLiterals` holds the keys as JSON strings.
    public var batch: Int? = nil
    public var batchPath = "/mget"
    public var keyLiterals: JSONKeyLiterals? = nil

    public init(address: SocketAddress, host: String, pathPrefix: String, keys: KeySet, order: KeyOrder,
                missingRatio: Double, connections: Int, threads: Int, stop: StopCondition, rate: Double?,
                keepAlive: Bool, verify: Bool, timeout: UInt64, seed: UInt64, printBodies: Bool) {
        self.address = address
        self.host = host
        self.pathPrefix = pathPrefix
        self.keys = keys
        self.order = order
        self.missingRatio = missingRatio
        self.connections = connections
        self.threads = threads
        self.stop = stop
        self.rate = rate
        self.keepAlive = keepAlive
        self.verify = verify
        self.timeout = timeout
        self.seed = seed
        self.printBodies = printBodies
    }
}
