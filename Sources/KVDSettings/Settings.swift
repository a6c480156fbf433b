#if canImport(Glibc)
import Glibc
#endif

// kvd's settings as plain values, with their defaults: what kvd, kvload and the Redis client
// share. Reading them from a file (and checking them) is KVDConfig's job; this module depends on
// nothing, so that the Redis client can take its settings without pulling in the INI parser.

/// Where values live in Redis; loader and server must agree on it.
public enum StorageLayout: String, Sendable, CaseIterable {
    /// All pairs are fields of one Redis hash (the seed's layout: `HGET data <key>`).
    case hash
    /// Each pair is a plain Redis string key, `<prefix><key>`.
    case string
    /// Pairs spread over many small hashes of one dataset generation, named by the dataset
    /// descriptor: `HGET <prefix><generation>:<bucket> <key>` (KVDDataset).
    case buckets
}

/// How each worker waits for its HTTP sockets (libmicrohttpd's external polling modes).
public enum PollingMode: String, Sendable, CaseIterable {
    /// `select` while every descriptor fits under FD_SETSIZE (`HTTPSettings.selectConnectionCeiling`), else `epoll`.
    case auto
    /// No limit on descriptors; each request answered after Redis costs two epoll_ctl calls.
    case epoll
    /// No per-request system calls beyond the socket I/O; descriptors must stay below 1024.
    case select
}

/// Log verbosity, from least to most severe (the names swift-log uses).
public enum LogLevel: String, Sendable, CaseIterable, Comparable {
    case trace, debug, info, notice, warning, error, critical

    public static func < (lhs: LogLevel, rhs: LogLevel) -> Bool {
        allCases.firstIndex(of: lhs)! < allCases.firstIndex(of: rhs)!
    }
}

/// A server's address as `host:port`, the port after the last `:` (so IPv6 addresses need no
/// brackets; brackets are accepted and removed): a Redis Cluster node, a seed in `[redis] nodes`.
public struct NodeAddress: Sendable, Hashable, CustomStringConvertible {
    public let host: String
    public let port: Int

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port` or `v6:port`; nil without a valid port or host.
    public init?(_ text: some StringProtocol) {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]),
              (1...65535).contains(port) else { return nil }
        var host = Substring(text[..<colon]).utf8[...]
        if host.first == UInt8(ascii: "["), host.last == UInt8(ascii: "]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, host.allSatisfy(Self.isHostByte) else { return nil }
        self.host = String(decoding: host, as: UTF8.self)
        self.port = port
    }

    /// What a host name or an IP literal is made of: ASCII letters, digits, `.`, `-`, `_`, `:` (IPv6)
    /// and `%` (an IPv6 zone). Anything else (spaces, control bytes, other scripts) is refused: found by
    /// fuzzing, a combining mark after `[` made the bracket part of another character.
    private static func isHostByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "."), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ":"), UInt8(ascii: "%"): true
        default: false
        }
    }

    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Which nodes of a Redis Cluster kvd reads from (`[redis] read_from`).
public enum ReadFrom: String, Sendable, CaseIterable {
    /// Every lookup goes to the master of its slot.
    case master
    /// Lookups go to a replica of the slot's master (`READONLY`); a shard listing no replica is
    /// read from its master. A replica that cannot be reached answers 503, masters take no reads.
    case replica
    /// A replica when one can be reached, else the master.
    case preferReplica = "prefer-replica"
}

/// How to reach Redis and where the data sits there: the `[redis]` section, shared by kvd and kvload.
public struct RedisSettings: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 6379
    /// A unix socket path; when set, `host` and `port` are not used.
    public var socket: String? = nil
    public var db = 0
    /// ACL user name (Redis 6+); nil sends the one-argument `AUTH password`.
    public var user: String? = nil
    public var password: String? = nil
    /// Where `password` was read from (`password_file`), for messages; the file is read when the
    /// configuration is loaded, so a reload picks up a changed secret.
    public var passwordFile: String? = nil
    public var layout: StorageLayout = .hash
    /// The hash that holds every pair in the `hash` layout.
    public var hash = "data"
    /// Prepended to every key in the `string` layout, and to every Redis key of the `buckets` layout.
    public var prefix = ""
    /// The dataset descriptor's key (`buckets` layout, or `string` with `generations`); nil means `<prefix>meta`.
    public var descriptor: String? = nil
    /// `string` layout: keys live in dataset generations named by the descriptor,
    /// `<prefix><generation>:<key>`, so `kvload --replace` switches atomically without SWAPDB
    /// (always on for `buckets`; off by default for `string`, whose keys are then `<prefix><key>`).
    public var generations = false
    public var connectTimeoutMs = 500
    public var commandTimeoutMs = 1000
    /// Upper bound of the pause between reconnect attempts (it starts at 10 ms and doubles).
    public var reconnectMaxMs = 500
    /// TCP keep-alive on every TCP connection to Redis: probed after this many seconds without a
    /// byte, then every third of it (at least 1 s), and dropped after 3 unanswered probes. It
    /// bounds how long a silent network partition (no FIN, no RST) goes unnoticed on an idle
    /// connection, above all the near-cache's invalidation subscriber: this plus 3 intervals.
    public var keepaliveSeconds = 5
    /// Sentinel mode: `host:port` of each Redis Sentinel (`[v6]:port` for IPv6), asked in order for
    /// the address of `masterName`. kvd then sets `host` and `port` to the master it found (and
    /// confirmed with `ROLE`); the file must not set `host`, `port` or `socket`. Empty: no Sentinel.
    public var sentinels: [NodeAddress] = []
    /// The master's name as the sentinels know it (`sentinel monitor <name> …`).
    public var masterName: String? = nil
    /// AUTH for the sentinels (their `requirepass`), not for the master.
    public var sentinelPassword: String? = nil
    /// Where `sentinelPassword` was read from (`sentinel_password_file`), for messages.
    public var sentinelPasswordFile: String? = nil
    /// Redis Cluster: route each lookup to the node serving its key's slot (`nodes` seed the map;
    /// `host`, `port`, `socket` and `db` are not used).
    public var cluster = false
    /// Cluster mode: nodes asked for the slot map (any reachable one will do).
    public var nodes: [NodeAddress] = []
    /// Cluster mode: masters, replicas, or replicas when reachable.
    public var readFrom: ReadFrom = .master
    /// Cluster mode: how often each worker reads the slot map again, whatever happens
    /// (redirects and node failures make it read sooner).
    public var clusterRefreshMs = 10_000

    public init() {}

    /// Every new connection sends `ROLE` after AUTH and SELECT and is dropped unless the server
    /// answers `master`: on in Sentinel mode, where the address may be stale after a failover.
    public var requiresMasterRole: Bool { !sentinels.isEmpty }

    /// The dataset descriptor's Redis key: `descriptor`, or `<prefix>meta`.
    public var descriptorKey: String { descriptor ?? prefix + "meta" }

    /// `host:port` or `unix:path` (`cluster host:port, …` in cluster mode), for log lines (never
    /// includes the password).
    public var targetDescription: String {
        if cluster { return "cluster " + nodes.map(\.description).joined(separator: ", ") }
        if let socket { return "unix:\(socket)" }
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// The `[http]` section: what kvd listens on and how it treats connections.
public struct HTTPSettings: Sendable, Equatable {
    public var host = "127.0.0.1"
    public var port = 8000
    /// Worker threads, each with its own HTTP engine and Redis connection.
    public var threads = HTTPSettings.processorCount
    /// Most open client connections at once, over all workers.
    public var connectionLimit = 1000
    /// How workers wait for their sockets; `resolvedPolling` is what `auto` becomes.
    public var polling: PollingMode = .auto
    /// Most open connections from one client address; 0 means no limit; nil (not set) means half
    /// of `connectionLimit`, so that no single address can take every connection.
    public var perIPConnectionLimit: Int? = nil
    /// Seconds an idle keep-alive connection stays open; 0 keeps it forever.
    public var idleTimeoutSeconds = 60
    /// Seconds a client has to send a whole request head (request line and headers), counted from
    /// the accept, or for a later request on a kept-alive connection from the end of the idle time
    /// after the previous answer; 0: no deadline. Bytes trickled in do not extend it (slowloris).
    public var requestHeadTimeoutSeconds = 10
    /// Seconds a client has, from the first byte of a request body, to send the rest of it; 0: no
    /// deadline. Bytes trickled in do not extend it (a slowloris on the body).
    public var requestBodyTimeoutSeconds = 30
    public var listenBacklog = 511
    /// Longest key, in bytes after percent-decoding, that a request may name (longer: 414).
    public var maxKeyBytes = 1024
    /// Most keys one `POST /mget` may name (more: 413).
    public var mgetMaxKeys = 1000
    /// Largest `POST /mget` body, in bytes (larger: 413, answered before the rest is read), and
    /// the largest body any other request may carry (read and dropped). A chunked body that goes
    /// on past twice this has its connection closed (libmicrohttpd answers only before or after a body).
    public var mgetMaxBodyBytes = 1 << 20
    /// Longest `POST /mget` answer, in bytes (longer: 413); values beyond it are not held while
    /// the batch's other lookups complete.
    public var mgetMaxAnswerBytes = 64 << 20
    /// Memory libmicrohttpd gives each connection for the request head and the response head
    /// (it clears it for every request, so more costs time); larger request heads are refused.
    public var connectionMemoryBytes = 8192
    /// How long shutdown waits for requests in flight before it answers them 503.
    public var shutdownTimeoutMs = 5000
    /// Most bytes of big answers (16 KiB and up) built and not yet sent, over all workers; a value
    /// beyond it is answered 503 + `Retry-After` until clients read what they asked for. Nothing
    /// held: any one answer goes out, however big.
    public var maxUnsentBytes = 64 << 20
    /// An `ETag` (a hash of the value) on every value answer, and 304 for a matching `If-None-Match`.
    public var etag = false
    /// The `Cache-Control` header of 200 value answers; nil sends none.
    public var cacheControl: String? = nil
    /// `Access-Control-Allow-Origin` on every answer and an answer to CORS preflights; nil: no CORS.
    public var corsOrigin: String? = nil

    public init() {}

    /// select() waits only on descriptors below FD_SETSIZE.
    public static let fdSetSize = 1024
    /// Descriptors each worker keeps besides its clients: its listening socket, its wake-up eventfd,
    /// its Redis connection, and the replacement connection while it reconnects.
    public static let descriptorsPerThread = 4
    /// Descriptors the process keeps whatever the thread count: stdio, the listen lock, /dev/null,
    /// the systemd notify socket, a config or password file read during a reload, and some spare.
    public static let reservedDescriptors = 16

    /// The most connections `select` polling can hold with `threads` workers: every descriptor kvd
    /// may have open (clients, and its own per thread) must stay below FD_SETSIZE.
    public static func selectConnectionCeiling(threads: Int) -> Int {
        fdSetSize - reservedDescriptors - descriptorsPerThread * threads
    }

    /// The polling mode in effect: `auto` picks `select` when the connection limit and the workers'
    /// own descriptors fit under FD_SETSIZE.
    public var resolvedPolling: PollingMode {
        switch polling {
        case .auto: connectionLimit <= Self.selectConnectionCeiling(threads: threads) ? .select : .epoll
        case .epoll, .select: polling
        }
    }

    /// The per-address limit in effect (0: none).
    public var effectivePerIPConnectionLimit: Int {
        Self.perAddressLimit(configured: perIPConnectionLimit, total: connectionLimit)
    }

    /// The per-address limit for `configured` (nil: half of `total`, at least 1; 0: none).
    public static func perAddressLimit(configured: Int?, total: Int) -> Int {
        configured ?? max(1, total / 2)
    }

    public static var processorCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
}

/// How access-log lines are written.
public enum LogFormat: String, Sendable, CaseIterable {
    /// One space-separated line, like nginx's combined format.
    case text
    /// One JSON object per line.
    case json
}

/// The `[log]` section.
public struct LogSettings: Sendable, Equatable {
    public var level: LogLevel = .info
    /// One line per request (whatever `level` is); switched on and off by a reload.
    public var access = false
    /// The form of access-log lines.
    public var format: LogFormat = .text

    public init() {}
}

/// The `[cache]` section: kvd's near-cache of values read from Redis, invalidated by Redis's
/// client tracking (docs/cache.md).
public struct CacheSettings: Sendable, Equatable {
    /// Off by default: with it on, a value written to Redis can still be served for the time its
    /// invalidation takes to reach kvd (about a millisecond on loopback), and kvd holds one more
    /// Redis connection per worker. Without the cache every answer is Redis's answer of that moment.
    public var enabled = false
    /// Bytes the cache may hold over all workers (each worker holds its own share: max_bytes / threads),
    /// counting keys, values, prepared answers and a fixed overhead per entry. 256 MiB: at seed-like
    /// sizes (about 300 bytes an entry, 850 with its prepared answer) each of 2 workers keeps the
    /// hottest ~300k of 1M keys, 92% of a Zipf(0.99) load (docs/cache.md).
    public var maxBytes = 256 << 20
    /// Values longer than this are not cached (one big value would evict many small ones).
    public var maxValueBytes = 16 << 10
    /// Whether a key Redis does not have (404) is cached too (invalidated the same way).
    public var cacheMissing = true

    public init() {}

    /// One worker's share of `maxBytes`.
    public func bytesPerWorker(threads: Int) -> Int { maxBytes / max(1, threads) }
}

/// Every setting of kvd's INI file, each with its default.
public struct Configuration: Sendable, Equatable {
    public var http = HTTPSettings()
    public var redis = RedisSettings()
    public var cache = CacheSettings()
    public var log = LogSettings()

    public init() {}
}
