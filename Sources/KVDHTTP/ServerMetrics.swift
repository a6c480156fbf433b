import CoreMetrics
import Prometheus
import Synchronization

/// The route a request took, as the `route` label of kvd's metrics.
enum RouteLabel: Int, CaseIterable {
    case get, healthz, readyz, metrics, other

    var name: String {
        switch self {
        case .get: return "get"
        case .healthz: return "healthz"
        case .readyz: return "readyz"
        case .metrics: return "metrics"
        case .other: return "other"
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
        return registry.emitToBuffer()
    }
}

/// One worker's metric handles, created once; recording is a counter increment and a histogram
/// observation per request.
final class WorkerMetrics {
    private let worker: String
    private let factory: PrometheusMetricsFactory
    /// Requests by route and status, at `route * statusSlots + status`, created on first use.
    private var requests: [CoreMetrics.Counter?]
    private static let statusSlots = 600
    private let latency: CoreMetrics.Recorder
    private var redisErrors: [String: CoreMetrics.Counter] = [:]
    private let redisTimeouts: CoreMetrics.Counter
    private let redisReconnects: CoreMetrics.Counter
    private let slowHeads: CoreMetrics.Counter
    private var clusterRedirects: [String: CoreMetrics.Counter] = [:]
    private var nodeErrors: [String: CoreMetrics.Counter] = [:]
    private let clusterMapRefreshes: CoreMetrics.Counter
    private let malformedRequests: CoreMetrics.Counter

    init(worker: String, factory: PrometheusMetricsFactory) {
        self.worker = worker
        self.factory = factory
        requests = Array(repeating: nil, count: RouteLabel.allCases.count * Self.statusSlots)
        latency = CoreMetrics.Recorder(label: ServerMetrics.latencyName, dimensions: [("worker", worker)], aggregate: true, factory: factory)
        redisTimeouts = CoreMetrics.Counter(label: "kvd_redis_timeouts_total", dimensions: [("worker", worker)], factory: factory)
        redisReconnects = CoreMetrics.Counter(label: "kvd_redis_reconnects_total", dimensions: [("worker", worker)], factory: factory)
        slowHeads = CoreMetrics.Counter(label: "kvd_http_slow_heads_total", dimensions: [("worker", worker)], factory: factory)
        malformedRequests = CoreMetrics.Counter(label: "kvd_http_malformed_requests_total", dimensions: [("worker", worker)], factory: factory)
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

    /// A request kvd or libmicrohttpd refused as malformed (bad framing, a head too large, a
    /// connection ended mid-request: every warning libmicrohttpd reports counts once).
    func malformedRequest() { malformedRequests.increment() }

    /// A new connection to Redis after the first one.
    func redisReconnect() { redisReconnects.increment() }
}
