import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `layout = string` with `generations = yes`: keys `<prefix><generation>:<key>`, switched by the
/// dataset descriptor like the buckets layout (no spare database, no SWAPDB).
@Suite("kvd: string layout through dataset generations", .serialized)
struct KVDStringGenerationsTests: GenerationSuite {
    let kvload: String
    let directory: String
    static let prefix = "s:"

    init() throws {
        kvload = try Binaries.path("kvload")
        directory = try TemporaryDirectory.make(prefix: "kvd-string-generations")
    }

    var kvloadArguments: [String] { ["--layout", "string", "--generations", "--prefix", Self.prefix, "--quiet"] }

    func kvdConfig(_ redis: RedisServer) -> String {
        "[http]\nport = 0\nthreads = 2\n" + KVDProcess.redisSection(redis, extra: "layout = string\ngenerations = yes\nprefix = \(Self.prefix)\ncommand_timeout_ms = 2000\n")
    }



    /// Readers hammer kvd while `kvload --replace` switches A→B→A→B: every answer is A's or B's
    /// value, never an error or a 404; after the last switch to B every answer is B's within a
    /// second; only the live generation's keys remain.
    @Test func replaceSwitchesAtomicallyUnderLoad() throws {
        let redis = try RedisServer()
        let keys = (0..<2000).map { "key-\($0)" }
        let pathA = try seedFile("a.txt", keys.map { ($0, "A-value-of-\($0)") })
        let pathB = try seedFile("b.txt", keys.map { ($0, "B-value-of-\($0)-longer") })
        try load(redis, [pathA])
        #expect(try redis.command(["HGET", Self.prefix + "meta", "layout"]) == "string")
        let kvd = try KVDProcess(config: kvdConfig(redis))
        defer { kvd.process.stop() }

        try checkSwitchesUnderLoad(
            kvdPort: kvd.port, keys: keys, pathB: pathB, switches: [pathB, pathA],
            replace: { path in try load(redis, ["--replace", "--grace-seconds", "2", path]) },
            startReplace: { path in
                try ChildProcess(kvload, ["--port", String(redis.port)] + kvloadArguments + ["--replace", "--grace-seconds", "3", path])
            },
            liveGeneration: { try liveGeneration(redis) })
        #expect(try redis.command(["HLEN", Self.prefix + "generations"]) == "1")
        // Left: descriptor, registry, the live marker and the live generation's 2000 keys.
        let live = try liveGeneration(redis)
        #expect(try redis.command(["DBSIZE"]) == String(3 + keys.count))
        #expect(try redis.command(["GET", Self.prefix + live + ":key-7"]) == "B-value-of-key-7-longer")
    }

    /// SIGKILL mid-replace: the live generation answers everything; `--gc` removes the orphan's keys.
    @Test func aKilledReplaceLeavesTheLiveGenerationAndGCRemovesTheOrphan() throws {
        let redis = try RedisServer()
        let keys = (0..<300).map { "live-\($0)" }
        let live = try seedFile("live.txt", keys.map { ($0, "v-\($0)") })
        try load(redis, [live])
        let liveGeneration = try liveGeneration(redis)
        let big = directory + "/big.txt"
        #expect(try ChildProcess.run(try Binaries.path("kvbench"), ["gen", "--count", "200000", "--output", big], timeout: 120).status == 0)
        let kvd = try KVDProcess(config: kvdConfig(redis))
        defer { kvd.process.stop() }

        let replace = try ChildProcess(kvload, ["--port", String(redis.port)] + kvloadArguments + ["--replace", "--batch", "1", "--pipeline", "1", big])
        #expect(waitUntil(timeout: 30) { (try? redis.command(["HLEN", Self.prefix + "generations"])) == "2" })
        #expect(waitUntil(timeout: 30) { (Int((try? redis.command(["DBSIZE"])) ?? "0") ?? 0) > 400 })
        replace.signal(SIGKILL)
        _ = replace.waitForExit(timeout: 30)
        #expect(!replace.isRunning)
        #expect(try self.liveGeneration(redis) == liveGeneration)
        let connection = try HTTPConnection(port: kvd.port)
        for key in keys {
            let response = try connection.request("GET", "/get/" + key)
            #expect(response.status == 200 && response.text == "\"v-\(key)\"", "\(key): \(response.status) \(response.text)")
        }
        let gc = try load(redis, ["--gc"])
        #expect(gc.stdout.contains("kvload: --gc: deleted generation g"), "\(gc.stdout)")
        #expect(try redis.command(["HLEN", Self.prefix + "generations"]) == "1")
        let remaining = try redis.command(["KEYS", "*"]).split(separator: "\n").map(String.init)
        #expect(remaining.count == 3 + keys.count)
        #expect(remaining.allSatisfy { $0 == Self.prefix + "meta" || $0 == Self.prefix + "generations" || $0.hasPrefix(Self.prefix + liveGeneration) }, "\(remaining)")
    }

    /// Without the opt-in, the string layout's --replace is unchanged (it still needs --staging-db),
    /// and kvd reads plain `<prefix><key>` keys.
    @Test func withoutGenerationsTheStringLayoutIsUnchanged() throws {
        let redis = try RedisServer()
        let path = try seedFile("plain.txt", [("k1", "v1")])
        let refused = try ChildProcess.run(kvload, ["--port", String(redis.port), "--layout", "string", "--prefix", Self.prefix, "--quiet", "--replace", path], timeout: 60)
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("--staging-db"), "\(refused.stderr)")
        let plain = try ChildProcess.run(kvload, ["--port", String(redis.port), "--layout", "string", "--prefix", Self.prefix, "--quiet", path], timeout: 60)
        #expect(plain.status == 0, "\(plain.stderr)")
        #expect(try redis.command(["GET", Self.prefix + "k1"]) == "v1")
        #expect(try redis.command(["EXISTS", Self.prefix + "meta"]) == "0")
        // kvd with generations but no descriptor: 503 with the detail, until a generation load.
        let kvd = try KVDProcess(config: kvdConfig(redis))
        defer { kvd.process.stop() }
        let connection = try HTTPConnection(port: kvd.port)
        let missing = try connection.request("GET", "/get/k1")
        #expect(missing.status == 503 && missing.text.contains("the dataset descriptor is missing"), "\(missing.status) \(missing.text)")
        try load(redis, [path])
        #expect(waitUntil(timeout: 5) { (try? connection.request("GET", "/get/k1"))?.text == "\"v1\"" })
    }
}
