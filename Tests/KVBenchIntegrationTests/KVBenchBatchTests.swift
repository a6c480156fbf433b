import Foundation
import KVBench
import KVDTestSupport
import Testing

/// `kvbench run --batch`: POST /mget against the built kvd and a real redis-server.
@Suite("kvbench: --batch against kvd", .serialized)
struct KVBenchBatchTests {
    let redis: RedisServer
    let kvd: KVDProcess
    let dataFile: String

    init() throws {
        redis = try RedisServer()
        let directory = try TemporaryDirectory.make(prefix: "kvbench-batch")
        dataFile = directory + "/data.txt"
        let generated = try KVBenchIntegrationTests.kvbench(["gen", "--count", "2000", "--seed", "5", "-o", dataFile])
        guard generated.status == 0 else { throw TestSupportError("kvbench gen failed: \(generated.stderr)") }
        try KVBenchIntegrationTests.load(dataFile, into: redis)
        kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis))
    }

    func run(_ arguments: [String]) throws -> (status: Int32, report: [String: Any], stderr: String) {
        let result = try KVBenchIntegrationTests.kvbench(["run", "--url", "http://127.0.0.1:\(kvd.port)", "--json", "--keys", dataFile] + arguments)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        guard let object else { throw TestSupportError("no JSON report: \(result.stdout) \(result.stderr)") }
        return (result.status, object, result.stderr)
    }

    @Test func verifiedBatchesCountRequestsAndValues() throws {
        for arguments in [["--missing-ratio", "0.2"], ["--zipf", "0.99"], ["--threads", "2"]] {
            let run = try run(["--batch", "25", "--verify", "--concurrency", "4", "--requests", "400"] + arguments)
            #expect(run.status == 0, "\(arguments): \(run.stderr)")
            #expect(run.report["requests"] as? Int == 400)
            #expect(run.report["mismatches"] as? Int == 0)
            #expect(run.report["status"] as? [String: Int] == ["200": 400])
            #expect(run.report["batch"] as? Int == 25)
            let duration = try #require(run.report["duration_s"] as? Double)
            let values = try #require(run.report["values_per_second"] as? Double)
            #expect(abs(values * duration - 10_000) < 1, "\(values) values/s over \(duration) s")
        }
    }

    @Test func aWrongValueIsAMismatch() throws {
        let firstKey = try String(contentsOfFile: dataFile, encoding: .utf8).prefix { $0 != " " }
        try redis.command(["HSET", "data", String(firstKey), "not the value in the file"])
        defer { _ = try? KVBenchIntegrationTests.load(dataFile, into: redis) }
        let run = try run(["--batch", "10", "--verify", "--sequential", "--concurrency", "1", "--requests", "1"])
        #expect(run.status != 0)
        #expect(run.report["mismatches"] as? Int == 1)
        #expect(run.stderr.contains("mismatch: POST /mget element 0, \(firstKey): not the value in the file"), "\(run.stderr)")
    }

    @Test func batchExcludesPath() throws {
        let result = try KVBenchIntegrationTests.kvbench(["run", "--url", "http://127.0.0.1:\(kvd.port)", "--path", "/healthz", "--batch", "5"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("--batch and --path exclude each other"))
    }
}
