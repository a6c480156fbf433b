import Foundation
import KVDTestSupport
import Testing

/// `kvbench gen` output loads into every storage layout, and `kvbench run --verify` (which checks
/// answers through kvd's HTTP) passes on each: one test per layout.
@Suite("kvbench: gen and --verify on every layout", .serialized)
struct KVBenchLayoutsTests {
    static let pairs = 2_000

    /// gen → kvload (LAYOUT_ARGUMENTS) → kvd (REDIS_LINES) → `run --verify` over every key, once
    /// sequentially from the file and once from `--random N --seed S`; both find no mismatch.
    func verifyOnLayout(kvload arguments: [String], kvd redisLines: String) throws {
        let redis = try RedisServer()
        let directory = try TemporaryDirectory.make(prefix: "kvbench-layouts")
        let data = directory + "/data.txt"
        let generated = try KVBenchIntegrationTests.kvbench(["gen", "--count", String(Self.pairs), "--seed", "11", "-o", data])
        #expect(generated.status == 0, "\(generated.stderr)")
        let loaded = try ChildProcess.run(try Binaries.path("kvload"),
                                          ["--config", "/dev/null", "--port", String(redis.port), "--quiet"] + arguments + [data], timeout: 120)
        #expect(loaded.status == 0, "\(loaded.stderr)")
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis, extra: redisLines))
        defer { kvd.process.stop() }
        let url = "http://127.0.0.1:\(kvd.port)"
        for mode in [["--keys", data, "--sequential", "--requests", String(Self.pairs)],
                     ["--random", String(Self.pairs), "--seed", "11", "--requests", "1000"]] {
            let run = try KVBenchIntegrationTests.kvbench(["run", "--url", url, "--json", "--concurrency", "4", "--verify"] + mode)
            #expect(run.status == 0, "\(mode): \(run.stderr)")
            let report = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any]
            #expect(report?["mismatches"] as? Int == 0, "\(mode): \(run.stdout)")
            #expect((report?["errors"] as? [String: Int])?.values.allSatisfy { $0 == 0 } == true, "\(mode): \(run.stdout)")
        }
    }

    @Test func hashLayout() throws {
        try verifyOnLayout(kvload: [], kvd: "")
    }

    @Test func stringLayout() throws {
        try verifyOnLayout(kvload: ["--layout", "string", "--prefix", "s:"], kvd: "layout = string\nprefix = s:\n")
    }

    @Test func bucketsLayout() throws {
        try verifyOnLayout(kvload: ["--layout", "buckets", "--prefix", "kv:"], kvd: "layout = buckets\nprefix = kv:\n")
    }

    @Test func stringLayoutWithGenerations() throws {
        try verifyOnLayout(kvload: ["--layout", "string", "--prefix", "s:", "--generations"], kvd: "layout = string\nprefix = s:\ngenerations = yes\n")
    }
}
