import Histogram
import Foundation

/// The result of a run, as printed (text) and as `--json`.
public struct Report: Codable, Sendable {
    /// Latency summary in microseconds.
    public struct Latency: Codable, Sendable {
        public let mean: Double
        public let p50: UInt64
        public let p90: UInt64
        public let p99: UInt64
        public let p999: UInt64
        public let max: UInt64
    }

    /// Requests issued (responses plus errors).
    public let requests: Int
    /// Complete responses.
    public let responses: Int
    public let durationSeconds: Double
    public let requestsPerSecond: Double
    public let bytesPerSecond: Double
    public let latencyMicroseconds: Latency
    /// Status code (as a string) → responses.
    public let status: [String: Int]
    /// Error kind → failed requests (every kind present, zeros included).
    public let errors: [String: Int]
    public let mismatches: Int
    /// Responses with a 5xx status (counted in `errorRate`; never a mismatch).
    public let serverErrors: Int
    /// 404 responses / responses (a high share usually means the keys were not loaded).
    public let notFoundRate: Double
    /// Latency at the percentiles `Report.percentiles` names (`p50`, `p99.99`…), microseconds.
    public let latencyPercentiles: [String: UInt64]
    /// Why the first connect failed, if one did (`connect to host:port: Connection refused`).
    public let firstConnectError: String?
    /// `--batch`: keys per request, and values received per second (200 answers × keys); nil otherwise.
    public var batch: Int? = nil
    public var valuesPerSecond: Double? = nil
    /// The text report's latency histogram: geometric bins from the fastest to the slowest answer,
    /// each `(upper bound µs, answers)` (as oha prints one). JSON has the percentiles instead.
    public var latencyHistogram: [LatencyBin] = []

    public struct LatencyBin: Codable, Sendable, Equatable {
        public let upToMicroseconds: UInt64
        public let count: UInt64
    }

    /// Bins of the text histogram.
    static let histogramBins = 10
    /// (errors + 5xx responses) / requests.
    public let errorRate: Double
    /// This process's user + system CPU time divided by requests.
    public let cpuMicrosecondsPerRequest: Double
    public let connections: Int
    public let threads: Int
    /// "closed" (back to back) or "open" (fixed rate, latency from the scheduled time).
    public let mode: String
    /// The target rate of an open-loop run.
    public let targetRate: Double?

    enum CodingKeys: String, CodingKey {
        case requests, responses
        case durationSeconds = "duration_s"
        case requestsPerSecond = "requests_per_second"
        case bytesPerSecond = "bytes_per_second"
        case latencyMicroseconds = "latency_us"
        case status, errors, mismatches
        case serverErrors = "server_errors"
        case notFoundRate = "not_found_rate"
        case latencyPercentiles = "latency_percentiles_us"
        case firstConnectError = "first_connect_error"
        case errorRate = "error_rate"
        case cpuMicrosecondsPerRequest = "cpu_us_per_request"
        case connections, threads, mode
        case targetRate = "target_rate"
        case batch
        case valuesPerSecond = "values_per_second"
    }

    /// Summarises merged statistics.
    public init(statistics: RunStatistics, durationSeconds: Double, cpuMicroseconds: UInt64,
                connections: Int, threads: Int, targetRate: Double?, batch: Int? = nil) {
        let histogram = statistics.latency
        responses = statistics.responses
        requests = responses + statistics.errors
        self.durationSeconds = durationSeconds
        requestsPerSecond = durationSeconds > 0 ? Double(responses) / durationSeconds : 0
        bytesPerSecond = durationSeconds > 0 ? Double(statistics.bytesReceived) / durationSeconds : 0
        let empty = histogram.totalCount == 0
        latencyMicroseconds = Latency(
            mean: empty ? 0 : histogram.mean,
            p50: empty ? 0 : histogram.valueAtPercentile(50),
            p90: empty ? 0 : histogram.valueAtPercentile(90),
            p99: empty ? 0 : histogram.valueAtPercentile(99),
            p999: empty ? 0 : histogram.valueAtPercentile(99.9),
            max: empty ? 0 : histogram.max
        )
        var status: [String: Int] = [:]
        for (code, count) in statistics.statusCounts.enumerated() where count > 0 { status[String(code)] = count }
        self.status = status
        var errors: [String: Int] = [:]
        for kind in ErrorKind.allCases { errors[kind.name] = statistics.errorCounts[kind.rawValue] }
        self.errors = errors
        mismatches = statistics.mismatches
        serverErrors = statistics.serverErrors
        notFoundRate = responses > 0 ? Double(statistics.statusCounts[404]) / Double(responses) : 0
        var percentiles: [String: UInt64] = [:]
        for percentile in Self.percentiles { percentiles[Self.name(percentile)] = empty ? 0 : histogram.valueAtPercentile(percentile) }
        latencyPercentiles = percentiles
        latencyHistogram = empty ? [] : Self.bins(of: histogram)
        firstConnectError = statistics.firstConnectError
        errorRate = requests > 0 ? Double(statistics.errors + statistics.serverErrors) / Double(requests) : 0
        cpuMicrosecondsPerRequest = requests > 0 ? Double(cpuMicroseconds) / Double(requests) : 0
        self.connections = connections
        self.threads = threads
        mode = targetRate == nil ? "closed" : "open"
        self.targetRate = targetRate
        self.batch = batch
        if batch != nil { valuesPerSecond = durationSeconds > 0 ? Double(statistics.values) / durationSeconds : 0 }
    }

    /// Geometric bins between the fastest and the slowest answer: tail latencies get their own rows
    /// instead of one wide linear bin.
    static func bins(of histogram: Histogram<UInt64>) -> [LatencyBin] {
        let low = Swift.max(histogram.min, 1)
        let high = Swift.max(histogram.max, low)
        var bins: [LatencyBin] = []
        var lower: UInt64 = 0
        for index in 1...histogramBins {
            let edge = index == histogramBins ? high
                : Swift.max(lower, UInt64(Double(low) * pow(Double(high) / Double(low), Double(index) / Double(histogramBins))))
            if edge < lower { continue }
            bins.append(LatencyBin(upToMicroseconds: edge, count: histogram.count(within: lower...edge)))
            lower = edge + 1
            if lower > high { break }
        }
        return bins
    }

    /// The percentiles of `latencyPercentiles` (as oha and wrk's --latency report them).
    public static let percentiles: [Double] = [10, 25, 50, 75, 90, 95, 99, 99.9, 99.99, 99.999]

    /// `p50`, `p99.9`: the percentile's name in JSON.
    static func name(_ percentile: Double) -> String {
        percentile == percentile.rounded() ? "p\(Int(percentile))" : "p\(percentile)"
    }

    /// One JSON object, keys sorted.
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        // Encoding plain numbers, strings and dictionaries cannot fail.
        return String(decoding: (try? encoder.encode(self)) ?? Data(), as: UTF8.self)
    }

    /// The human-readable report.
    public func text() -> String {
        func ms(_ micros: Double) -> String { String(format: "%.3f ms", micros / 1000) }
        let latency = latencyMicroseconds
        var lines: [String] = []
        let modeText = targetRate.map { String(format: "open loop at %.0f req/s (latency from scheduled send time)", $0) }
            ?? "closed loop"
        lines.append("\(requests) requests in \(String(format: "%.2f", durationSeconds)) s, \(connections) connections, \(threads) threads, \(modeText)")
        lines.append(String(format: "  requests/s: %.1f   transfer: %.2f MB/s   CPU: %.2f µs/request",
                            requestsPerSecond, bytesPerSecond / 1_000_000, cpuMicrosecondsPerRequest))
        if let batch, let valuesPerSecond {
            lines.append(String(format: "  values/s: %.1f   (POST /mget, %d keys per request)", valuesPerSecond, batch))
        }
        if responses == 0 {
            // No response, no latency: "0.000 ms" would read as a fast server.
            lines.append("  latency: none (no responses)")
        } else {
            lines.append("  latency: mean \(ms(latency.mean))  p50 \(ms(Double(latency.p50)))  p90 \(ms(Double(latency.p90)))  "
                     + "p99 \(ms(Double(latency.p99)))  p99.9 \(ms(Double(latency.p999)))  max \(ms(Double(latency.max)))")
        }
        if !latencyHistogram.isEmpty {
            lines.append("  latency histogram (answers up to each latency):")
            let most = latencyHistogram.map(\.count).max() ?? 1
            let width = String(latencyHistogram.map(\.count).max() ?? 0).count
            for bin in latencyHistogram {
                let bar = String(repeating: "■", count: most == 0 ? 0 : Int((Double(bin.count) / Double(most) * 40).rounded(.up)))
                let count = String(bin.count)
                lines.append("    \(String(format: "%10.3f", Double(bin.upToMicroseconds) / 1000)) ms [\(String(repeating: " ", count: width - count.count))\(count)] |\(bar)")
            }
        }
        let statusText = status.keys.sorted().map { "\($0): \(status[$0]!)" }.joined(separator: "  ")
        lines.append("  status: " + (statusText.isEmpty ? "none" : statusText))
        let errorText = ErrorKind.allCases.map { "\($0.name): \(errors[$0.name]!)" }.joined(separator: "  ")
        lines.append("  errors: \(errorText)  5xx: \(serverErrors)   error rate: \(String(format: "%.4f", errorRate))")
        lines.append("  mismatches: \(mismatches)")
        if let firstConnectError { lines.append("  first connect error: \(firstConnectError)") }
        return lines.joined(separator: "\n")
    }
}
