import Foundation
import KVDTestSupport
import Testing

/// Open loop against closed loop through the same Redis stall: the open loop must charge the stall to every
/// request scheduled during it (coordinated omission corrected), the closed loop only to the few in flight.
/// The comparison is between the two runs, not against a fixed time.
@Suite("kvbench: coordinated omission", .serialized)
struct CoordinatedOmissionTests {
    let redis: RedisServer
    let kvd: KVDProcess
    let keyFile: String

    init() throws {
        redis = try RedisServer()
        keyFile = try TemporaryDirectory.make(prefix: "kvbench-co") + "/data.txt"
        let generated = try KVBenchIntegrationTests.kvbench(["gen", "--count", "200", "--seed", "3", "-o", keyFile])
        guard generated.status == 0 else { throw TestSupportError("kvbench gen failed: \(generated.stderr)") }
        try KVBenchIntegrationTests.load(keyFile, into: redis)
        // A stalled Redis turns into 504 after 300 ms: the test's own request then proves the stall lasted that long.
        kvd = try KVDProcess(config: "[http]\nport = 0\n" + KVDProcess.redisSection(redis, extra: "command_timeout_ms = 300\n"))
    }

    func commandsProcessed() throws -> Int {
        let stats = try redis.command(["INFO", "stats"])
        let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("total_commands_processed:") }
        return Int(line?.split(separator: ":").last ?? "") ?? 0
    }

    /// Runs kvbench for 2 s, stalls Redis once it is under load until kvd reports the stall (504), and returns p90 and p99.
    func latencyThroughAStall(_ extra: [String]) throws -> (p90: Int, p99: Int) {
        let before = try commandsProcessed()
        let child = try ChildProcess(try Binaries.path("kvbench"), [
            "run", "--url", "http://127.0.0.1:\(kvd.port)", "--keys", keyFile, "--concurrency", "4",
            "--duration", "2", "--json", "--max-error-rate", "1",
        ] + extra)
        #expect(waitUntil(timeout: 10) { (try? commandsProcessed()) ?? 0 > before + 200 })
        redis.pause()
        let stalled = try kvd.get("/get/" + (try String(contentsOfFile: keyFile, encoding: .utf8).prefix(36)))
        redis.resume()
        #expect(stalled.status == 504)
        let status = child.waitForExit(timeout: 30)
        #expect(status == 0, "\(child.standardError)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(child.standardOutput.utf8)) as? [String: Any])
        let latency = try #require(report["latency_us"] as? [String: Double])
        return (Int(latency["p90"]!), Int(latency["p99"]!))
    }

    @Test func openLoopChargesTheStallToEveryRequestScheduledDuringIt() throws {
        let open = try latencyThroughAStall(["--rate", "1000"])
        let closed = try latencyThroughAStall([])
        // About 15% of the open loop's 2,000 requests were due during the ≥300 ms stall; the closed loop's
        // 4 connections had only 4 requests waiting, out of tens of thousands.
        #expect(open.p90 > closed.p99, "open p90 \(open.p90) µs, closed p99 \(closed.p99) µs")
    }
}
