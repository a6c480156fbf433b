import CoreMetrics
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// Nanoseconds on the monotonic clock (what kvd reads once more per request for the latency).
func nowNs() -> UInt64 {
    var time = timespec()
    clock_gettime(CLOCK_MONOTONIC, &time)
    return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
}

/// Mean nanoseconds per call of `body` over `count` calls.
func measure(_ count: Int, _ body: (Int) -> Void) -> Double {
    let start = nowNs()
    for index in 0..<count { body(index) }
    return Double(nowNs() - start) / Double(count)
}

// The same set-up as kvd's ServerMetrics/WorkerMetrics.
var factory = PrometheusMetricsFactory(registry: PrometheusCollectorRegistry())
factory.valueHistogramBuckets["latency"] = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.25, 1]
let counter = CoreMetrics.Counter(label: "requests", dimensions: [("route", "get"), ("status", "200"), ("worker", "0")], factory: factory)
let latency = CoreMetrics.Recorder(label: "latency", dimensions: [("worker", "0")], aggregate: true, factory: factory)

/// `value` with one decimal.
func tenths(_ value: Double) -> String {
    let scaled = Int((value * 10).rounded())
    return "\(scaled / 10).\(scaled % 10)"
}

let count = 5_000_000
var sink: UInt64 = 0
for round in 1...3 {
    let clock = measure(count) { _ in sink &+= nowNs() }
    let increment = measure(count) { _ in counter.increment() }
    let observation = measure(count) { latency.record(Double($0 & 1023) / 1e6) }
    let perRequest = clock + increment + observation
    var line = "round \(round): clock read \(tenths(clock)) ns (reference)"
    line += ", counter \(tenths(increment)) ns (\(tenths(increment / clock))x)"
    line += ", histogram \(tenths(observation)) ns (\(tenths(observation / clock))x)"
    line += "; per request \(tenths(perRequest)) ns (\(tenths(perRequest / clock))x the clock read)"
    print(line)
}
if sink == 42 { print("") }
