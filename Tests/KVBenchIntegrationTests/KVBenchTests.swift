import Foundation
import KVBench
import KVDTestSupport
import Testing

/// The built kvbench against the built kvd and a real redis-server.
@Suite("kvbench: against kvd and redis-server", .serialized)
struct KVBenchIntegrationTests {
    let redis: RedisServer
    let kvd: KVDProcess
    let directory: String
    let dataFile: String
    static let pairs = 2_000

    init() throws {
        redis = try RedisServer()
        directory = try TemporaryDirectory.make(prefix: "kvbench")
        dataFile = directory + "/data.txt"
        let generated = try Self.kvbench(["gen", "--count", String(Self.pairs), "--seed", "11", "-o", dataFile])
        guard generated.status == 0 else { throw TestSupportError("kvbench gen failed: \(generated.stderr)") }
        try Self.load(dataFile, into: redis)
        kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis))
    }

    static func kvbench(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try ChildProcess.run(try Binaries.path("kvbench"), arguments, timeout: 120)
    }

    var url: String { "http://127.0.0.1:\(kvd.port)" }

    /// Stores a seed-format file in the hash `data` with the built kvload (the product's own loader).
    static func load(_ file: String, into redis: RedisServer) throws {
        let result = try ChildProcess.run(try Binaries.path("kvload"),
                                          ["--config", "/dev/null", "--host", "127.0.0.1", "--port", String(redis.port), "--quiet", file], timeout: 120)
        guard result.status == 0 else { throw TestSupportError("kvload exited \(result.status): \(result.stderr)") }
    }

    func runJSON(_ arguments: [String]) throws -> (status: Int32, report: [String: Any], stderr: String) {
        let result = try Self.kvbench(["run", "--url", url, "--json"] + arguments)
        let object = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
        guard let object else { throw TestSupportError("no JSON report: \(result.stdout) \(result.stderr)") }
        return (result.status, object, result.stderr)
    }

    func total(_ report: [String: Any], _ field: String) -> Int {
        (report[field] as? [String: Int])?.values.reduce(0, +) ?? -1
    }

    @Test func requestCountsAddUp() throws {
        let cases: [[String]] = [
            ["--concurrency", "8", "--requests", "3000", "--threads", "2", "--missing-ratio", "0.25"],
            ["--concurrency", "5", "--requests", "500", "--no-keep-alive"],
            ["--concurrency", "4", "--requests", "600", "--rate", "2000", "--zipf", "1.1"],
        ]
        for arguments in cases {
            let run = try runJSON(["--keys", dataFile] + arguments)
            let requested = Int(arguments[arguments.firstIndex(of: "--requests")! + 1])!
            #expect(run.status == 0, "\(arguments): \(run.stderr)")
            #expect(run.report["requests"] as? Int == requested, "\(arguments)")
            #expect(run.report["responses"] as? Int == requested, "\(arguments)")
            #expect(total(run.report, "status") + total(run.report, "errors") == requested, "\(arguments)")
            #expect(total(run.report, "errors") == 0, "\(arguments)")
            let status = run.report["status"] as? [String: Int] ?? [:]
            if arguments.contains("--missing-ratio") {
                #expect((status["404"] ?? 0) > 0 && (status["200"] ?? 0) > 0)
            } else {
                #expect(status == ["200": requested], "\(arguments)")
            }
        }
    }

    /// `--verify` against a kvd whose Redis is down: every answer is a 5xx, an error whether or not the key is
    /// in the file, and never a mismatch (a 503 on a missing key was counted as one; on a present key it was not).
    @Test func verifyCountsA5xxAsAnErrorForEveryKey() throws {
        let down = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n[redis]\nhost = 127.0.0.1\nport = \(try FreePort.find())\n")
        let result = try Self.kvbench(["run", "--url", "http://127.0.0.1:\(down.port)", "--json", "--keys", dataFile, "--verify",
                                       "--missing-ratio", "0.5", "--concurrency", "2", "--requests", "200"])
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result.stderr)")
        let status = report["status"] as? [String: Int] ?? [:]
        #expect(status.keys.allSatisfy { $0.hasPrefix("5") } && !status.isEmpty, "\(status)")
        #expect(report["mismatches"] as? Int == 0, "\(result.stderr)")
        #expect(report["server_errors"] as? Int == 200)
        #expect(!result.stderr.contains("mismatch:"))
        #expect(result.status == 1)
    }

    /// The server down: the report gives the first connect error's reason, not "0.000 ms" latencies.
    @Test func serverDownReportsTheFirstConnectError() throws {
        let result = try Self.kvbench(["run", "--url", "http://127.0.0.1:\(try FreePort.find())", "--keys", dataFile, "-c", "2", "-n", "20"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("first connect error: connect to 127.0.0.1:"), "\(result.stdout)")
        #expect(result.stdout.contains("Connection refused"))
        #expect(!result.stdout.contains("0.000 ms"))
    }

    /// Keys kvd does not have (another seed): a warning that they may not be loaded; `--max-404-rate` fails the run.
    @Test func mostly404WarnsAndMax404RateFails() throws {
        let otherKeys = directory + "/other.txt"
        #expect(try Self.kvbench(["gen", "--count", "100", "--seed", "99", "-o", otherKeys]).status == 0)
        var result = try Self.kvbench(["run", "--url", url, "--keys", otherKeys, "-c", "2", "-n", "200"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("100% of the answers were 404: keys not loaded?"), "\(result.stderr)")
        result = try Self.kvbench(["run", "--url", url, "--keys", otherKeys, "-c", "2", "-n", "200", "--max-404-rate", "0.5"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("404 rate"))
        result = try Self.kvbench(["run", "--url", url, "--keys", dataFile, "-c", "2", "-n", "200", "--max-404-rate", "0.5"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(!result.stderr.contains("keys not loaded?"))
    }

    /// wrk/oha-style short flags, and a 10 s run when neither -d nor -n is given.
    @Test func shortFlagsAndADefaultRunLength() throws {
        var run = try runJSON(["--keys", dataFile, "-c", "3", "-t", "2", "-n", "300"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.report["requests"] as? Int == 300 && run.report["connections"] as? Int == 3 && run.report["threads"] as? Int == 2)
        run = try runJSON(["--keys", dataFile, "-c", "2", "-R", "100"])
        #expect(run.status == 0, "\(run.stderr)")
        let seconds = run.report["duration_s"] as? Double ?? 0
        #expect(seconds >= 9.9 && seconds < 13, "\(seconds)")
        #expect(run.report["target_rate"] as? Double == 100)
    }

    /// `--path` measures any URL under the base (no keys needed); `-H` adds request headers.
    @Test func pathAndHeaders() throws {
        let health = try runJSON(["--path", "/healthz", "-c", "2", "-n", "20"])
        #expect(health.status == 0, "\(health.stderr)")
        #expect(health.report["status"] as? [String: Int] == ["200": 20], "\(health.report)")

        let firstLine = try String(contentsOfFile: dataFile, encoding: .utf8).prefix { $0 != "\n" }
        let space = try #require(firstLine.firstIndex(of: " "))
        let (key, value) = (String(firstLine[..<space]), String(firstLine[firstLine.index(after: space)...]))
        let base = ["run", "--url", url, "--path", "/get/\(key)", "-c", "1", "-n", "1", "--print-bodies"]
        var result = try Self.kvbench(base)
        #expect(result.stdout.hasPrefix("\"\(value)\"\n"), "\(result.stdout)")
        result = try Self.kvbench(base + ["-H", "Accept: application/octet-stream"])
        #expect(result.stdout.hasPrefix("\(value)\n"), "\(result.stdout)")

        #expect(try Self.kvbench(["run", "--url", url, "--path", "/healthz", "-n", "1", "-H", "no colon"]).status == 64)
        #expect(try Self.kvbench(["run", "--url", url, "--path", "/healthz", "-n", "1", "--keys", dataFile]).status == 64)
        #expect(try Self.kvbench(["run", "--url", url, "--path", "healthz", "-n", "1"]).status == 64)
    }

    @Test func percentilesAreOrdered() throws {
        let run = try runJSON(["--keys", dataFile, "--concurrency", "10", "--requests", "4000"])
        let latency = try #require(run.report["latency_us"] as? [String: Double])
        let ordered = ["p50", "p90", "p99", "p999", "max"].map { latency[$0] ?? -1 }
        #expect(ordered.first! > 0)
        #expect(ordered == ordered.sorted())
        #expect(latency["mean"]! > 0 && latency["mean"]! <= latency["max"]!)
        #expect((run.report["requests_per_second"] as? Double ?? 0) > 0)
        #expect((run.report["cpu_us_per_request"] as? Double ?? 0) > 0)
    }

    @Test func durationRunsStopByThemselves() throws {
        let run = try runJSON(["--keys", dataFile, "--concurrency", "4", "--duration", "300ms"])
        #expect(run.status == 0)
        #expect((run.report["requests"] as? Int ?? 0) > 0)
        #expect(total(run.report, "status") == run.report["requests"] as? Int)
    }

    @Test func verifyPassesOnLoadedDataAndCatchesAValueChangedInRedis() throws {
        let clean = try runJSON(["--keys", dataFile, "--concurrency", "6", "--requests", String(Self.pairs),
                                 "--sequential", "--verify", "--missing-ratio", "0.1"])
        #expect(clean.status == 0, "\(clean.stderr)")
        #expect(clean.report["mismatches"] as? Int == 0)

        let keys = try KeySet(parsing: [UInt8](try Data(contentsOf: URL(fileURLWithPath: dataFile))), name: dataFile)
        let changedKey = String(decoding: keys.key(123), as: UTF8.self)
        try redis.command(["HSET", "data", changedKey, "a value written after the key file"])
        // Two threads: each takes its own stretch of the file, so every key is still asked exactly once.
        let dirty = try runJSON(["--keys", dataFile, "--concurrency", "6", "--threads", "2", "--requests", String(Self.pairs),
                                 "--sequential", "--verify"])
        #expect(dirty.status == 1)
        #expect(dirty.report["mismatches"] as? Int == 1)
        #expect(dirty.stderr.contains("mismatch: \(changedKey): value a value written after the key file, expected "))

        try redis.command(["HDEL", "data", changedKey])
        let deleted = try runJSON(["--keys", dataFile, "--concurrency", "6", "--requests", String(Self.pairs), "--sequential", "--verify"])
        #expect(deleted.status == 1)
        #expect(deleted.report["mismatches"] as? Int == 1)
        #expect(deleted.stderr.contains("mismatch: \(changedKey): 404, expected 200"))
    }

    /// Keys with bytes a URL must escape (`/`, `%`, `?`, `#`, `+`, UTF-8) are percent-encoded, one
    /// byte at a time; plain keys go out in one copy. Both reach kvd as the key itself: `--verify`
    /// compares every answer with the file's value.
    @Test func keysThatNeedEscapingAreSentPercentEncoded() throws {
        let file = directory + "/escaped.txt"
        let pairs = ["a/b slash", "50%25 percent", "what? query", "x#y+z fragment and plus", "clé-ünïcode utf8",
                     "plain-Key_1.2~ unreserved only"]
        try (pairs.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        try Self.load(file, into: redis)
        let run = try runJSON(["--keys", file, "--concurrency", "2", "--requests", String(pairs.count), "--sequential", "--verify"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.report["mismatches"] as? Int == 0)
        #expect((run.report["status"] as? [String: Int])?["200"] == pairs.count)
    }

    @Test func seedClientInvocationPrintsOneHundredBodies() throws {
        let result = try Self.kvbench(["run", "--url", url, "--keys", dataFile, "--concurrency", "5", "--requests", "100",
                                       "--sequential", "--no-keep-alive", "--print-bodies"])
        #expect(result.status == 0, "\(result.stderr)")
        let keys = try KeySet(parsing: [UInt8](try Data(contentsOf: URL(fileURLWithPath: dataFile))), name: dataFile)
        let expected = Set((0..<100).map { "\"" + String(decoding: keys.value($0)!, as: UTF8.self) + "\"" })
        let printed = result.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("\"") }
        #expect(printed.count == 100)
        #expect(Set(printed) == expected)
        #expect(result.stdout.contains("100 requests in"))
    }

    @Test func unreachableServerCountsConnectErrorsAndFails() throws {
        let port = try FreePort.find()
        let result = try Self.kvbench(["run", "--url", "http://127.0.0.1:\(port)", "--keys", dataFile,
                                       "--concurrency", "3", "--requests", "50", "--json"])
        #expect(result.status == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect((report["errors"] as? [String: Int])?["connect"] == 50)
        #expect(report["requests"] as? Int == 50)
        let tolerated = try Self.kvbench(["run", "--url", "http://127.0.0.1:\(port)", "--keys", dataFile,
                                          "--concurrency", "3", "--requests", "50", "--max-error-rate", "1"])
        #expect(tolerated.status == 0)
    }

    @Test func aStalledServerGivesTimeouts() throws {
        redis.pause()
        defer { redis.resume() }
        let run = try runJSON(["--keys", dataFile, "--concurrency", "3", "--requests", "3", "--timeout", "0.2"])
        #expect(run.status == 1)
        #expect((run.report["errors"] as? [String: Int])?["timeout"] == 3)
        #expect(run.report["requests"] as? Int == 3)
    }

    @Test func aServerThatDoesNotSpeakHTTPGivesResetOrMalformedErrors() throws {
        // redis-server takes the Host: line for a cross-protocol attack and drops the connection (reset);
        // had it flushed its RESP error line first, that would be a malformed response.
        let result = try Self.kvbench(["run", "--url", "http://127.0.0.1:\(redis.port)", "--keys", dataFile,
                                       "--concurrency", "2", "--requests", "10", "--json"])
        #expect(result.status == 1)
        let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let errors = report["errors"] as? [String: Int] ?? [:]
        #expect(errors["reset", default: 0] + errors["malformed", default: 0] == 10, "\(errors)")
        #expect(report["responses"] as? Int == 0)
    }

    @Test func usageAndInputErrorsUseSysexits() throws {
        #expect(try Self.kvbench(["run", "--url", url, "--keys", directory + "/absent.txt", "--requests", "1"]).status == 66)
        let bad = directory + "/bad.txt"
        try "good value\n leading space\n".write(toFile: bad, atomically: true, encoding: .utf8)
        let malformed = try Self.kvbench(["run", "--url", url, "--keys", bad, "--requests", "1"])
        #expect(malformed.status == 65)
        #expect(malformed.stderr.contains("\(bad):2: line starts with a space: no key"))
        #expect(try Self.kvbench(["run", "--url", "ftp://x", "--keys", dataFile, "--requests", "1"]).status == 64)
        // Neither --duration nor --requests is no longer a usage error (a 10 s run: shortFlagsAndADefaultRunLength); both are.
        #expect(try Self.kvbench(["run", "--url", url, "--keys", dataFile, "--duration", "1", "--requests", "1"]).status == 64)
        let keysOnly = directory + "/keys-only.txt"
        try "a\nb\n".write(toFile: keysOnly, atomically: true, encoding: .utf8)
        #expect(try Self.kvbench(["run", "--url", url, "--keys", keysOnly, "--requests", "2", "--verify"]).status == 64)
    }

    @Test func randomKeysAreTheGeneratedDataset() throws {
        // --random N --seed S requests exactly the pairs `gen --count N --seed S` wrote, so --verify holds.
        let run = try runJSON(["--random", String(Self.pairs), "--seed", "11", "--concurrency", "4", "--requests", "1000", "--verify"])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.report["mismatches"] as? Int == 0)
        #expect((run.report["status"] as? [String: Int]) == ["200": 1000])
    }
}

/// `kvbench gen` on its own: determinism and loadability.
@Suite("kvbench gen")
struct KVBenchGenerateTests {
    @Test func sameSeedSameFileOtherSeedOtherFile() throws {
        let directory = try TemporaryDirectory.make(prefix: "kvbench-gen")
        for (name, seed) in [("a", "5"), ("b", "5"), ("c", "6")] {
            let result = try KVBenchIntegrationTests.kvbench(["gen", "--count", "5000", "--seed", seed, "--value-bytes", "3-40",
                                                             "-o", "\(directory)/\(name).txt"])
            #expect(result.status == 0)
        }
        let files = try ["a", "b", "c"].map { try Data(contentsOf: URL(fileURLWithPath: "\(directory)/\($0).txt")) }
        #expect(files[0] == files[1])
        #expect(files[0] != files[2])
        let stdout = try KVBenchIntegrationTests.kvbench(["gen", "--count", "5000", "--seed", "5", "--value-bytes", "3-40"])
        #expect(Data(stdout.stdout.utf8) == files[0])
        #expect(String(decoding: files[0], as: UTF8.self).split(separator: "\n").count == 5000)
    }

    @Test func generatedFileLoadsWithKvloadAndEveryPairReadsBack() throws {
        let directory = try TemporaryDirectory.make(prefix: "kvbench-gen")
        let file = directory + "/data.txt"
        #expect(try KVBenchIntegrationTests.kvbench(["gen", "--count", "3000", "--seed", "8", "-o", file]).status == 0)
        let redis = try RedisServer()
        try KVBenchIntegrationTests.load(file, into: redis)
        #expect(try redis.command(["HLEN", "data"]) == "3000")
        let keys = try KeySet(parsing: [UInt8](try Data(contentsOf: URL(fileURLWithPath: file))), name: file)
        for index in [0, 1, 1500, 2999] {
            let value = try redis.command(["HGET", "data", String(decoding: keys.key(index), as: UTF8.self)])
            #expect(value == String(decoding: keys.value(index)!, as: UTF8.self))
        }
    }

    @Test func unwritableOutputExits74() throws {
        let result = try KVBenchIntegrationTests.kvbench(["gen", "--count", "1", "-o", "/nonexistent-dir/x.txt"])
        #expect(result.status == 74)
        #expect(result.stderr.contains("/nonexistent-dir/x.txt"))
    }
}
