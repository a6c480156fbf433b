import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `layout = buckets` end to end: kvload writes generations and switches the descriptor, kvd follows.
@Suite("kvd: the buckets layout and dataset generations", .serialized)
struct KVDBucketsTests: GenerationSuite {
    let kvload: String
    let directory: String
    static let prefix = "kv:"

    init() throws {
        kvload = try Binaries.path("kvload")
        directory = try TemporaryDirectory.make(prefix: "kvd-buckets")
    }

    func kvdConfig(_ redis: RedisServer, threads: Int = 2) -> String {
        "[http]\nport = 0\nthreads = \(threads)\n" + KVDProcess.redisSection(redis, extra: "layout = buckets\nprefix = \(Self.prefix)\ncommand_timeout_ms = 2000\n")
    }

    var kvloadArguments: [String] { ["--layout", "buckets", "--prefix", Self.prefix, "--quiet"] }

    static func percentEncoded(_ bytes: [UInt8]) -> String {
        bytes.map { String(format: "%%%02X", $0) }.joined()
    }

    // MARK: Byte for byte

    /// Binary keys (every byte value, `{`, `}`, spaces, line breaks), empty values and 64 KB values
    /// (which push their bucket out of the listpack encoding) all answer byte for byte.
    @Test func everyKeyAnswersItsValueByteForByteIncludingBinaryKeysEmptyAnd64KBValues() throws {
        let redis = try RedisServer()
        var generator = SystemRandomNumberGenerator()
        var pairs: [([UInt8], [UInt8])] = []
        var seen = Set<[UInt8]>()
        for index in 0..<3000 {
            var key = (0..<Int.random(in: 1...40, using: &generator)).map { _ in UInt8.random(in: 1...255, using: &generator) }
            if index == 0 { key = Array("{tag}with braces".utf8) }
            if index == 1 { key = Array(0...255).map(UInt8.init).filter { $0 != 0 } }
            guard seen.insert(key).inserted else { continue }
            let value: [UInt8]
            switch index % 100 {
            case 0: value = []
            case 1: value = (0..<65_536).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
            default: value = (0..<Int.random(in: 1...120, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            pairs.append((key, value))
        }
        // CSV with every field quoted (quotes doubled) carries any bytes.
        var csv: [UInt8] = []
        func field(_ bytes: [UInt8]) {
            csv.append(UInt8(ascii: "\""))
            for byte in bytes {
                csv.append(byte)
                if byte == UInt8(ascii: "\"") { csv.append(byte) }
            }
            csv.append(UInt8(ascii: "\""))
        }
        for (key, value) in pairs {
            field(key)
            csv.append(UInt8(ascii: ","))
            field(value)
            csv.append(UInt8(ascii: "\n"))
        }
        let path = directory + "/binary.csv"
        try Data(csv).write(to: URL(fileURLWithPath: path))
        let loaded = try load(redis, ["--format", "csv", path])
        #expect(loaded.stdout.contains("new keys:       \(pairs.count)"))
        // 64 KB values exceed hash-max-listpack-value: kvload says so once, with the redis.conf line.
        #expect(loaded.stderr.components(separatedBy: "hash-max-listpack-value 65536").count == 2, "\(loaded.stderr)")

        let kvd = try KVDProcess(config: kvdConfig(redis))
        defer { kvd.process.stop() }
        let connection = try HTTPConnection(port: kvd.port)
        var mismatches = 0
        for (key, value) in pairs {
            let response = try connection.request("GET", "/get/" + Self.percentEncoded(key) + "?format=raw")
            if response.status != 200 || response.body != value { mismatches += 1 }
        }
        #expect(mismatches == 0)
        #expect(try connection.request("GET", "/get/absent-key").status == 404)
    }

    // MARK: The atomic switch

    /// Readers hammer kvd while kvload --replace switches between datasets A and B (same keys,
    /// different values) several times: every answer is A's or B's value for its key, never an
    /// error or a 404; once a switch to B is made, every answer is B's within a second.
    @Test func replaceSwitchesAtomicallyUnderLoad() throws {
        let redis = try RedisServer()
        let keys = (0..<3000).map { "key-\($0)" }
        let pathA = try seedFile("a.txt", keys.map { ($0, "A-value-of-\($0)") })
        let pathB = try seedFile("b.txt", keys.map { ($0, "B-value-of-\($0)-longer") })
        try load(redis, [pathA])
        let kvd = try KVDProcess(config: kvdConfig(redis))
        defer { kvd.process.stop() }

        // A→B, B→A, A→B, B→A, then the last switch to B timed from the descriptor's change.
        try checkSwitchesUnderLoad(
            kvdPort: kvd.port, keys: keys, pathB: pathB, switches: [pathB, pathA, pathB, pathA],
            replace: { path in try load(redis, ["--replace", "--grace-seconds", "2", path]) },
            startReplace: { path in
                try ChildProcess(kvload, ["--port", String(redis.port), "--layout", "buckets", "--prefix", Self.prefix,
                                          "--quiet", "--replace", "--grace-seconds", "3", path])
            },
            liveGeneration: { try liveGeneration(redis) })
        // Only the live generation remains.
        #expect(try redis.command(["HLEN", Self.prefix + "generations"]) == "1")
    }

    // MARK: Killed and interrupted loads

    /// kvload SIGKILLed mid-replace: the live generation still answers everything; --gc removes
    /// the orphan. SIGINT mid-replace: kvload deletes its partial generation and says the live one is untouched.
    @Test func aKilledOrInterruptedReplaceLeavesTheLiveGenerationAndGCRemovesTheOrphan() throws {
        let redis = try RedisServer()
        let keys = (0..<500).map { "live-\($0)" }
        let live = try seedFile("live.txt", keys.map { ($0, "v-\($0)") })
        try load(redis, [live])
        let liveGeneration = try liveGeneration(redis)
        let big = directory + "/big.txt"
        let generated = try ChildProcess.run(try Binaries.path("kvbench"), ["gen", "--count", "400000", "--output", big], timeout: 120)
        #expect(generated.status == 0)
        let kvd = try KVDProcess(config: kvdConfig(redis))
        defer { kvd.process.stop() }

        for signal in [SIGKILL, SIGINT] {
            // --batch 1 --pipeline 1 slows the load so the signal lands mid-load.
            let replace = try ChildProcess(kvload, ["--port", String(redis.port), "--layout", "buckets", "--prefix", Self.prefix,
                                                    "--quiet", "--replace", "--batch", "1", "--pipeline", "1", big])
            #expect(waitUntil(timeout: 30) { (try? redis.command(["HLEN", Self.prefix + "generations"])) == "2" })
            #expect(waitUntil(timeout: 30) { (Int((try? redis.command(["DBSIZE"])) ?? "0") ?? 0) > 10 })
            replace.signal(signal)
            _ = replace.waitForExit(timeout: 30)
            #expect(!replace.isRunning)
            #expect(try self.liveGeneration(redis) == liveGeneration)
            let connection = try HTTPConnection(port: kvd.port)
            for key in keys {
                let response = try connection.request("GET", "/get/" + key)
                #expect(response.status == 200 && response.text == "\"v-\(key)\"", "\(key): \(response.status) \(response.text)")
            }
            if signal == SIGINT {
                #expect(replace.exitStatus == 130)
                #expect(replace.standardError.contains("nothing was switched: the live generation '\(liveGeneration)' is untouched"), "\(replace.standardError)")
                #expect(try redis.command(["HLEN", Self.prefix + "generations"]) == "1")
            } else {
                #expect(try redis.command(["HLEN", Self.prefix + "generations"]) == "2")
                let gc = try load(redis, ["--gc"])
                #expect(gc.stdout.contains("kvload: --gc: deleted generation g"))
                #expect(try redis.command(["HLEN", Self.prefix + "generations"]) == "1")
                // Left: the descriptor, the registry, the live marker and the live generation's buckets (2 for 500 rows).
                let remaining = try redis.command(["KEYS", "*"]).split(separator: "\n").map(String.init)
                #expect(remaining.allSatisfy { $0 == Self.prefix + "meta" || $0 == Self.prefix + "generations" || $0.hasPrefix(Self.prefix + liveGeneration) }, "\(remaining)")
            }
        }
    }

    // MARK: Descriptor problems

    /// Missing descriptor, unknown hash function, generation deleted: 503 with the detail, /readyz
    /// 503, one log line per change; kvd recovers by itself each time.
    @Test func descriptorProblemsAnswer503WithTheDetailThenRecover() throws {
        let redis = try RedisServer()
        let kvd = try KVDProcess(config: kvdConfig(redis, threads: 1))
        defer { kvd.process.stop() }
        let meta = Self.prefix + "meta"

        func expect503(_ detail: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            var response = try kvd.get("/get/k")
            #expect(waitUntil(timeout: 5) {
                response = (try? kvd.get("/get/k")) ?? response
                return response.text.contains("Dataset unavailable: " + detail)
            }, "\(response.text)", sourceLocation: sourceLocation)
            #expect(response.status == 503, sourceLocation: sourceLocation)
            #expect(response.header("Retry-After") == "1", sourceLocation: sourceLocation)
            let ready = try kvd.get("/readyz")
            #expect(ready.status == 503 && ready.text.contains("Not ready: ") && ready.text.contains(detail), "\(ready.text)", sourceLocation: sourceLocation)
        }
        func expectServes(_ value: String, sourceLocation: SourceLocation = #_sourceLocation) {
            #expect(waitUntil(timeout: 5) { (try? kvd.get("/get/k"))?.text == "\"\(value)\"" }, sourceLocation: sourceLocation)
            #expect((try? kvd.get("/readyz"))?.status == 200, sourceLocation: sourceLocation)
        }

        try expect503("the dataset descriptor is missing (no dataset loaded with generations yet) (key 'kv:meta')")
        #expect(try kvd.get("/get/k").text == #"{"detail":"Dataset unavailable: the dataset descriptor is missing (no dataset loaded with generations yet) (key 'kv:meta')"}"#)
        try load(redis, [try seedFile("one.txt", [("k", "one")])])
        expectServes("one")

        try redis.command(["HSET", meta, "hash", "fnv1a"])
        try expect503("the dataset descriptor names an unknown hash function 'fnv1a'")
        try redis.command(["HSET", meta, "hash", "xxh64"])
        expectServes("one")

        let generation = try liveGeneration(redis)
        try redis.command(["UNLINK", Self.prefix + generation, Self.prefix + generation + ":0"])
        try expect503("the dataset generation '\(generation)' named by 'kv:meta' is gone: its marker key 'kv:\(generation)' does not exist")
        try load(redis, ["--replace", try seedFile("two.txt", [("k", "two")])])
        expectServes("two")

        // One log line per change (one worker): each problem once, each recovery once.
        let log = kvd.log
        #expect(log.components(separatedBy: "dataset unavailable, answering 503: the dataset descriptor is missing").count == 2, "\(log)")
        #expect(log.components(separatedBy: "unknown hash function 'fnv1a'").count == 2)
        #expect(log.components(separatedBy: "is gone: its marker key").count == 2)
        #expect(log.components(separatedBy: "' live").count == 4, "\(log)")

        // The descriptor replaced by a string in one step (no moment without it).
        try redis.command(["EVAL", "redis.call('DEL', KEYS[1]) return redis.call('SET', KEYS[1], 'not a hash')", "1", meta])
        try expect503("the dataset descriptor 'kv:meta' cannot be read: WRONGTYPE")
        try redis.command(["DEL", meta])
        try load(redis, ["--replace", try seedFile("three.txt", [("k", "three")])])
        expectServes("three")
    }

    /// Redis stalls: the descriptor cannot be read; kvd says so once and keeps its generation.
    @Test func anUnreadableDescriptorKeepsTheLastGenerationAndSaysSo() throws {
        let redis = try RedisServer()
        try load(redis, [try seedFile("one.txt", [("k", "one")])])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: "layout = buckets\nprefix = kv:\ncommand_timeout_ms = 300\nreconnect_max_ms = 100\n"))
        defer { kvd.process.stop() }
        #expect(waitUntil(timeout: 5) { (try? kvd.get("/get/k"))?.text == "\"one\"" })
        redis.pause()
        #expect(waitUntil(timeout: 5) { kvd.log.contains("cannot be read") })
        redis.resume()
        #expect(waitUntil(timeout: 5) { (try? kvd.get("/get/k"))?.text == "\"one\"" })
        #expect(waitUntil(timeout: 5) { kvd.log.contains("dataset descriptor readable again") })
        #expect(kvd.log.contains("still serving generation '\(try liveGeneration(redis))'"))
        #expect(kvd.log.components(separatedBy: "cannot be read").count == 2, "\(kvd.log)")
    }

    // MARK: Merge

    /// Without --replace, rows merge into the live generation (same generation, its bucket count).
    @Test func aMergeWritesIntoTheLiveGeneration() throws {
        let redis = try RedisServer()
        let first = (0..<2000).map { ("k\($0)", "first-\($0)") }
        try load(redis, [try seedFile("first.txt", first)])
        let generation = try liveGeneration(redis)
        let buckets = try redis.command(["HGET", Self.prefix + "meta", "buckets"])
        let merged = (1500..<2500).map { ("k\($0)", "merged-\($0)") }
        let result = try load(redis, [try seedFile("merge.txt", merged)])
        #expect(result.stdout.contains("new keys:       500"))
        #expect(result.stdout.contains("updated keys:   500"))
        #expect(try liveGeneration(redis) == generation)
        #expect(try redis.command(["HGET", Self.prefix + "meta", "buckets"]) == buckets)
        #expect(try redis.command(["HGET", Self.prefix + "meta", "rows"]) == "2500")
        let kvd = try KVDProcess(config: kvdConfig(redis))
        defer { kvd.process.stop() }
        let connection = try HTTPConnection(port: kvd.port)
        for index in stride(from: 0, to: 2500, by: 7) {
            let expected = index < 1500 ? "first-\(index)" : "merged-\(index)"
            #expect(try connection.request("GET", "/get/k\(index)").text == "\"\(expected)\"")
        }
    }

    // MARK: Seed-format data

    /// kvbench's seed-format data (UUIDv4 keys, values up to 94 bytes) loads and answers byte for byte.
    @Test func seedFormatDataAnswersEveryKey() throws {
        let redis = try RedisServer(extraArguments: ["--hash-max-listpack-value", "128"])
        let path = directory + "/seed.txt"
        #expect(try ChildProcess.run(try Binaries.path("kvbench"), ["gen", "--count", "50000", "--output", path], timeout: 60).status == 0)
        let loaded = try load(redis, ["--strict-keys", path])
        #expect(loaded.stdout.contains("new keys:       50000"))
        #expect(!loaded.stderr.contains("hash-max-listpack-value"), "\(loaded.stderr)")
        // Sized from the file's size and a sample of its first 4 MB: about 64 fields per bucket (±5%).
        let buckets = Int(try redis.command(["HGET", Self.prefix + "meta", "buckets"])) ?? 0
        #expect(abs(buckets - (50000 + 63) / 64) <= 40, "\(buckets)")
        let generation = try liveGeneration(redis)
        #expect(try redis.command(["OBJECT", "ENCODING", Self.prefix + generation + ":0"]) == "listpack")
        let kvd = try KVDProcess(config: kvdConfig(redis))
        defer { kvd.process.stop() }
        let connection = try HTTPConnection(port: kvd.port)
        let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
        var wrong: [String] = []
        for line in lines {
            let space = line.firstIndex(of: " ")!
            let response = try connection.request("GET", "/get/" + line[..<space])
            if response.status != 200 || response.text != "\"" + line[line.index(after: space)...] + "\"" {
                wrong.append("\(line[..<space]): \(response.status) \(response.text.prefix(80))")
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) wrong answers, first: \(wrong.prefix(3))")
    }
}
