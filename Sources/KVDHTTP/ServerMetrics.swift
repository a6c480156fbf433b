import CoreMetrics
import KVDRedis
import KVDSettings
import Prometheus
import Synchronization

/// The route a request took, as the `route` label of kvd's metrics.
enum RouteLabel: Int, CaseIterable {
    case get, healthz, readyz, metrics, other, mget

    var name: String {
        switch self {
        case .get: return "get"
        case .healthz: return "healthz"
        case .readyz: return "readyz"
        case .metrics: return "metrics"
        case .other: return "other"
        case .mget: return "mget"
        }
    }
}

/// kvd's metrics, recorded through the swift-metrics API into a swift-prometheus registry and
/// served on `/metrics` in Prometheus text format.
///
/// Every worker records into series of its own (label `worker`), so that no two threads share a
/// counter's cache line or a histogram's lock on the request path.
final class ServerMetrics: Sendable {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let limiter: ConnectionLimiter
    private let openConnections: CoreMetrics.Gauge
    /// Each worker's near-cache counters, by worker id (registered by the workers at start).
    private let caches = Mutex<[(worker: Int, activity: CacheActivity)]>([])
    /// The last Redis Cluster topology logged (every worker reads the map; one line per change).
    private let loggedTopology = Mutex("")

    static let latencyName = "kvd_http_request_duration_seconds"

    init(limiter: ConnectionLimiter) {
        self.limiter = limiter
        var factory = PrometheusMetricsFactory(registry: registry)
        // Seconds, as Doubles: a value histogram compares plain floats per observation (a duration
        // histogram would compare 128-bit Durations).
        factory.valueHistogramBuckets[Self.latencyName] = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1]
        self.factory = factory
        openConnections = CoreMetrics.Gauge(label: "kvd_http_open_connections", factory: factory)
    }

    /// The series one worker records into (to be used on that worker's thread only).
    func forWorker(_ id: Int) -> WorkerMetrics {
        WorkerMetrics(worker: String(id), factory: factory)
    }

    /// Whether `description` differs from the topology logged last (and is now the last one).
    func topologyChanged(_ description: String) -> Bool {
        loggedTopology.withLock { last in
            guard last != description else { return false }
            last = description
            return true
        }
    }

    /// Every series, in Prometheus text exposition format 0.0.4.
    func exposition() -> [UInt8] {
        openConnections.record(limiter.openConnections)
        var text = registry.emitToBuffer()
        appendCacheSeries(to: &text)
        return text
    }

    /// Adds a worker's near-cache counters to the exposition.
    func register(_ activity: CacheActivity, worker: Int) {
        caches.withLock { $0.append((worker, activity)) }
    }

    /// The near-cache series (written here from each worker's published counters: the workers
    /// count in plain integers on the request path, and publish once per loop turn).
    private func appendCacheSeries(to text: inout [UInt8]) {
        let workers = caches.withLock { $0 }
        guard workers.contains(where: { $0.activity.enabled.load(ordering: .relaxed) }) else { return }
        var out = ""
        for series in CacheActivity.Series.allCases {
            out += "# HELP \(series.name) \(series.help)\n# TYPE \(series.name) \(series.type)\n"
            for (worker, activity) in workers {
                out += "\(series.name){worker=\"\(worker)\"} \(activity.value(series))\n"
            }
        }
        text.append(contentsOf: out.utf8)
    }
}

/// One worker's metric handles, created once; recording is a counter increment and a histogram
/// observation per request.
final class WorkerMetrics {
    private let worker: String
    private let factory: PrometheusMetricsFactory
    /// Requests by route and status, at `route * statusSlots + status`, created on first use.
    @exclusivity(unchecked) private var requests: [CoreMetrics.Counter?]
    private static let statusSlots = 600
    private let latency: CoreMetrics.Recorder
    private var redisErrors: [String: CoreMetrics.Counter] = [:]
    private let redisTimeouts: CoreMetrics.Counter
    private let redisReconnects: CoreMetrics.Counter
    private let slowHeads: CoreMetrics.Counter
    private let slowBodies: CoreMetrics.Counter
    private let bodiesCut: CoreMetrics.Counter
    private var clusterRedirects: [String: CoreMetrics.Counter] = [:]
    private var nodeErrors: [String: CoreMetrics.Counter] = [:]
    private let clusterMapRefreshes: CoreMetrics.Counter
    private let malformedRequests: CoreMetrics.Counter
    private let mgetKeys: CoreMetrics.Counter

    init(worker: String, factory: PrometheusMetricsFactory) {
        self.worker = worker
        self.factory = factory
        requests = Array(repeating: nil, count: RouteLabel.allCases.count * Self.statusSlots)
        latency = CoreMetrics.Recorder(label: ServerMetrics.latencyName, dimensions: [("worker", worker)], aggregate: true, factory: factory)
        redisTimeouts = CoreMetrics.Counter(label: "kvd_redis_timeouts_total", dimensions: [("worker", worker)], factory: factory)
        redisReconnects = CoreMetrics.Counter(label: "kvd_redis_reconnects_total", dimensions: [("worker", worker)], factory: factory)
        slowHeads = CoreMetrics.Counter(label: "kvd_http_slow_heads_total", dimensions: [("worker", worker)], factory: factory)
        slowBodies = CoreMetrics.Counter(label: "kvd_http_slow_bodies_total", dimensions: [("worker", worker)], factory: factory)
        bodiesCut = CoreMetrics.Counter(label: "kvd_http_bodies_cut_total", dimensions: [("worker", worker)], factory: factory)
        malformedRequests = CoreMetrics.Counter(label: "kvd_http_malformed_requests_total", dimensions: [("worker", worker)], factory: factory)
        mgetKeys = CoreMetrics.Counter(label: "kvd_mget_keys_total", dimensions: [("worker", worker)], factory: factory)
        clusterMapRefreshes = CoreMetrics.Counter(label: "kvd_redis_cluster_map_refreshes_total", dimensions: [("worker", worker)], factory: factory)
    }

    /// One answered request: its route, status and time from request head to queued response.
    func request(_ route: RouteLabel, status: UInt32, nanoseconds: UInt64) {
        let slot = route.rawValue * Self.statusSlots + min(Int(status), Self.statusSlots - 1)
        if let counter = requests[slot] {
            counter.increment()
        } else {
            let counter = CoreMetrics.Counter(label: "kvd_http_requests_total",
                                              dimensions: [("route", route.name), ("status", String(status)), ("worker", worker)],
                                              factory: factory)
            requests[slot] = counter
            counter.increment()
        }
        latency.record(Double(nanoseconds) / 1e9)
    }

    /// A failed exchange with Redis, by kind (connect, handshake, io, timeout).
    func redisError(kind: String) {
        counter(&redisErrors, kind, label: "kvd_redis_errors_total", dimension: "kind").increment()
    }

    /// Cluster mode: a lookup redirected, by kind (moved, ask).
    func clusterRedirect(_ kind: String) {
        counter(&clusterRedirects, kind, label: "kvd_redis_cluster_redirects_total", dimension: "kind").increment()
    }

    /// Cluster mode: a `CLUSTER SLOTS` asked.
    func clusterMapRefresh() { clusterMapRefreshes.increment() }

    /// Cluster mode: a node's connection failed (`node` is its host:port).
    func nodeError(node: String) {
        counter(&nodeErrors, node, label: "kvd_redis_node_errors_total", dimension: "node").increment()
    }

    /// The counter of `label` for one value of `dimension` (and this worker), created on first use.
    private func counter(_ known: inout [String: CoreMetrics.Counter], _ value: String, label: String, dimension: String) -> CoreMetrics.Counter {
        if let counter = known[value] { return counter }
        let counter = CoreMetrics.Counter(label: label, dimensions: [(dimension, value), ("worker", worker)], factory: factory)
        known[value] = counter
        return counter
    }

    /// A lookup or a connect that ran out of time.
    func redisTimeout() { redisTimeouts.increment() }

    /// A connection closed because its request head was not complete by `request_head_timeout_s`.
    func slowHead() { slowHeads.increment() }

    /// A connection closed because its request body was not complete by `request_body_timeout_s`.
    func slowBody() { slowBodies.increment() }

    /// A connection closed mid-body: the body went on past twice `mget_max_body_bytes`.
    func bodyCut() { bodiesCut.increment() }

    /// A request kvd or libmicrohttpd refused as malformed (bad framing, a head too large, a
    /// connection ended mid-request: every warning libmicrohttpd reports counts once).
    func malformedRequest() { malformedRequests.increment() }

    /// Keys looked up for one `POST /mget` (duplicates counted each time).
    func mgetLookups(_ keys: Int) { mgetKeys.increment(by: Int64(keys)) }

    /// A new connection to Redis after the first one.
    func redisReconnect() { redisReconnects.increment() }
}

/// One worker's near-cache counters as the other threads see them (`/metrics`, the status line):
/// written by the worker once per loop turn with relaxed atomics.
final class CacheActivity: Sendable {
    let enabled = Atomic<Bool>(false)
    final class Cell: Sendable {
        let value = Atomic<Int>(0)
    }

    /// One per `Series` case, at its raw value.
    let values: [Cell]

    init() {
        values = Series.allCases.map { _ in Cell() }
    }

    /// The near-cache's series, in the order /metrics lists them.
    enum Series: Int, CaseIterable, Sendable {
        case hits, misses, stores, refusedStale, notAdmitted, evictions, invalidations, flushes
        case trackingStarts, trackingLosses, bytes, entries, tracking

        var name: String {
            switch self {
            case .hits: "kvd_cache_hits_total"
            case .misses: "kvd_cache_misses_total"
            case .stores: "kvd_cache_stores_total"
            case .refusedStale: "kvd_cache_refused_stale_total"
            case .notAdmitted: "kvd_cache_not_admitted_total"
            case .evictions: "kvd_cache_evictions_total"
            case .invalidations: "kvd_cache_invalidations_total"
            case .flushes: "kvd_cache_flushes_total"
            case .trackingStarts: "kvd_cache_tracking_starts_total"
            case .trackingLosses: "kvd_cache_tracking_losses_total"
            case .bytes: "kvd_cache_bytes"
            case .entries: "kvd_cache_entries"
            case .tracking: "kvd_cache_tracking"
            }
        }

        /// The series' value in a worker's counters (a switch: a new case cannot be left unpublished).
        func value(in counters: CacheCounters) -> Int {
            switch self {
            case .hits: counters.cache.hits
            case .misses: counters.cache.misses
            case .stores: counters.cache.stores
            case .refusedStale: counters.cache.refusedStale
            case .notAdmitted: counters.cache.notAdmitted
            case .evictions: counters.cache.evictions
            case .invalidations: counters.cache.invalidations
            case .flushes: counters.cache.flushes
            case .trackingStarts: counters.trackingStarts
            case .trackingLosses: counters.trackingLosses
            case .bytes: counters.bytes
            case .entries: counters.entries
            case .tracking: counters.tracking ? 1 : 0
            }
        }

        var type: String {
            switch self {
            case .bytes, .entries, .tracking: "gauge"
            default: "counter"
            }
        }

        var help: String {
            switch self {
            case .hits: "GET lookups answered from the near-cache"
            case .misses: "GET lookups the near-cache did not hold (sent to Redis)"
            case .stores: "Redis replies stored in the near-cache"
            case .refusedStale: "Replies not stored because an invalidation or flush overtook them"
            case .notAdmitted: "Keys read again but not cached: the cache was full and the entry they would replace was read more often lately (TinyLFU)"
            case .evictions: "Entries evicted to stay within max_bytes"
            case .invalidations: "Redis keys invalidated by Redis (FLUSHALL, a replica's full resync and lost tracking count as flushes)"
            case .flushes: "Times the near-cache was emptied (tracking lost, FLUSHALL, new generation, reload)"
            case .trackingStarts: "Times Redis client tracking was confirmed (start and restarts)"
            case .trackingLosses: "Times Redis client tracking was lost"
            case .bytes: "Bytes the near-cache holds (keys, values, prepared answers, overhead)"
            case .entries: "Entries the near-cache holds"
            case .tracking: "1 while Redis client tracking is confirmed on every node the worker reads from (values are cached), else 0"
            }
        }
    }

    /// Called by the worker on its own thread, once per loop turn: plain stores (a closure per
    /// series, with its strings, cost a quarter of a microsecond per request).
    func publish(_ counters: CacheCounters, enabled on: Bool = true) {
        enabled.store(on, ordering: .relaxed)
        for series in Series.allCases { store(series, series.value(in: counters)) }
    }

    @inline(__always)
    private func store(_ series: Series, _ value: Int) {
        values[series.rawValue].value.store(value, ordering: .relaxed)
    }

    func value(_ series: Series) -> Int { values[series.rawValue].value.load(ordering: .relaxed) }
    var hits: Int { value(.hits) }
    var misses: Int { value(.misses) }
}

extension HTTPServer {
    /// Near-cache hits and misses so far over all workers; nil while no worker's cache is on.
    public var cacheLookups: (hits: Int, misses: Int)? {
        var total: (hits: Int, misses: Int)?
        for worker in workers where worker.cacheActivity.enabled.load(ordering: .relaxed) {
            total = ((total?.hits ?? 0) + worker.cacheActivity.hits, (total?.misses ?? 0) + worker.cacheActivity.misses)
        }
        return total
    }

    /// New `[cache]` settings (a reload): every worker's cache starts again, empty.
    public func reconfigureCache(_ settings: CacheSettings) {
        for worker in workers { worker.reconfigureCache(settings) }
    }
}
