import Foundation
import KVBench
import Testing

@Suite("kvbench: statistics and report")
struct ReportTests {
    func statistics() -> RunStatistics {
        var statistics = RunStatistics()
        var random = SplitMix64(seed: 1)
        for _ in 0..<10_000 {
            statistics.recordResponse(status: random.nextUnitDouble() < 0.8 ? 200 : 404,
                                      latencyMicroseconds: 50 + UInt64(random.nextIndex(below: 5_000)), bytes: 100)
        }
        statistics.recordError(.timeout)
        statistics.recordError(.reset)
        return statistics
    }

    @Test func countsAddUpAndPercentilesAreOrdered() {
        let report = Report(statistics: statistics(), durationSeconds: 2, cpuMicroseconds: 30_000, connections: 4, threads: 1, targetRate: nil)
        #expect(report.requests == 10_002)
        #expect(report.responses == 10_000)
        #expect(report.status.values.reduce(0, +) + report.errors.values.reduce(0, +) == report.requests)
        #expect(report.errors == ["connect": 0, "timeout": 1, "reset": 1, "malformed": 0])
        let latency = report.latencyMicroseconds
        #expect(50 <= latency.p50 && latency.p50 <= latency.p90 && latency.p90 <= latency.p99)
        #expect(latency.p99 <= latency.p999 && latency.p999 <= latency.max && latency.max <= 5_060)
        #expect(report.requestsPerSecond == 5_000)
        #expect(report.bytesPerSecond == 500_000)
        #expect(abs(report.errorRate - 2.0 / 10_002) < 1e-12)
        #expect(abs(report.cpuMicrosecondsPerRequest - 30_000.0 / 10_002) < 1e-9)
        #expect(report.mode == "closed")
    }

    /// The text report's histogram (as oha prints one): ascending bins from the fastest to the
    /// slowest answer that together hold every answer.
    @Test func theLatencyHistogramHoldsEveryAnswerInAscendingBins() {
        let report = Report(statistics: statistics(), durationSeconds: 2, cpuMicroseconds: 0, connections: 4, threads: 1, targetRate: nil)
        let bins = report.latencyHistogram
        #expect(!bins.isEmpty && bins.count <= 10)
        #expect(bins.map(\.count).reduce(0, +) == UInt64(report.responses))
        #expect(zip(bins, bins.dropFirst()).allSatisfy { $0.upToMicroseconds < $1.upToMicroseconds })
        #expect(bins.last?.upToMicroseconds == report.latencyMicroseconds.max)
        let text = report.text()
        #expect(text.contains("latency histogram"))
        #expect(text.split(separator: "\n").filter { $0.contains(" ms [") && $0.contains("|■") }.count == bins.filter { $0.count > 0 }.count)
        let none = Report(statistics: RunStatistics(), durationSeconds: 1, cpuMicroseconds: 0, connections: 1, threads: 1, targetRate: nil)
        #expect(none.latencyHistogram.isEmpty && !none.text().contains("latency histogram"))
    }

    @Test func mergeAddsEverything() {
        var merged = statistics()
        merged.merge(statistics())
        #expect(merged.responses == 20_000)
        #expect(merged.errors == 4)
        #expect(merged.bytesReceived == 2_000_000)
    }

    @Test func jsonHasTheDocumentedFields() throws {
        var statistics = statistics()
        statistics.recordResponse(status: 503, latencyMicroseconds: 10, bytes: 10)
        statistics.recordMismatch()
        let report = Report(statistics: statistics, durationSeconds: 1, cpuMicroseconds: 0, connections: 2, threads: 1, targetRate: 1000)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        for key in ["requests", "duration_s", "requests_per_second", "latency_us", "status", "errors", "mismatches",
                    "bytes_per_second", "cpu_us_per_request", "error_rate", "mode", "target_rate"] {
            #expect(object[key] != nil, "\(key)")
        }
        let latency = try #require(object["latency_us"] as? [String: Any])
        #expect(Set(latency.keys) == ["mean", "p50", "p90", "p99", "p999", "max"])
        #expect((object["status"] as? [String: Int])?["503"] == 1)
        #expect(object["mismatches"] as? Int == 1)
        #expect(object["mode"] as? String == "open")
        // 2 errors + one 5xx over 10,003 requests.
        #expect(abs((object["error_rate"] as? Double ?? 0) - 3.0 / 10_003) < 1e-12)
    }

    @Test func emptyRunReportsZeros() {
        let report = Report(statistics: RunStatistics(), durationSeconds: 0, cpuMicroseconds: 0, connections: 1, threads: 1, targetRate: nil)
        #expect(report.requests == 0 && report.requestsPerSecond == 0 && report.latencyMicroseconds.max == 0)
    }

    /// Full percentiles in JSON (as oha prints them), ordered, under their own key.
    @Test func fullPercentilesAreInTheJSON() throws {
        let report = Report(statistics: statistics(), durationSeconds: 2, cpuMicroseconds: 0, connections: 4, threads: 1, targetRate: nil)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(report.json().utf8)) as? [String: Any])
        let percentiles = try #require(object["latency_percentiles_us"] as? [String: Int])
        let names = ["p10", "p25", "p50", "p75", "p90", "p95", "p99", "p99.9", "p99.99", "p99.999"]
        #expect(Set(percentiles.keys) == Set(names))
        let values = names.map { percentiles[$0] ?? -1 }
        #expect(values == values.sorted() && values[0] >= 50, "\(values)")
        #expect(UInt64(percentiles["p50"]!) == report.latencyMicroseconds.p50)
        #expect(abs((object["not_found_rate"] as? Double ?? -1) - report.notFoundRate) < 1e-12)
        #expect(report.notFoundRate > 0.15 && report.notFoundRate < 0.25)
    }

    /// With no response, the text says so and gives the first connect error instead of "0.000 ms" latencies.
    @Test func aRunWithoutResponsesShowsTheFirstConnectError() {
        var one = RunStatistics()
        one.recordConnectError("connect to 127.0.0.1:9: Connection refused")
        one.recordConnectError("connect to 127.0.0.1:9: something later")
        var merged = RunStatistics()
        merged.merge(one)
        #expect(merged.firstConnectError == "connect to 127.0.0.1:9: Connection refused")
        #expect(merged.errorCounts[ErrorKind.connect.rawValue] == 2)
        let text = Report(statistics: merged, durationSeconds: 1, cpuMicroseconds: 0, connections: 1, threads: 1, targetRate: nil).text()
        #expect(text.contains("latency: none (no responses)"))
        #expect(!text.contains("0.000 ms"))
        #expect(text.contains("first connect error: connect to 127.0.0.1:9: Connection refused"))
    }
}
