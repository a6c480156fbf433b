import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A UUIDv4-shaped key, lower-case, deterministic from `index` and `salt`.
func uuidKey(_ index: Int, salt: Int = 0) -> String {
    let hex = String(format: "%08x%04x%012x", UInt32(truncatingIfNeeded: index &* 2_654_435_761), salt & 0xffff, index)
    let chars = Array(hex)
    return "\(String(chars[0..<8]))-\(String(chars[8..<12]))-4\(String(chars[13..<16]))-8\(String(chars[17..<20]))-\(String(chars[12..<24]).prefix(12))"
}

/// Writes `count` seed rows and returns the file's path and the pairs.
func writeSeedFile(in directory: String, name: String, count: Int, salt: Int = 0, value: (Int) -> String) throws -> (String, [String: String]) {
    var text = ""
    var pairs: [String: String] = [:]
    text.reserveCapacity(count * 60)
    for index in 0..<count {
        let key = uuidKey(index, salt: salt)
        let v = value(index)
        pairs[key] = v
        text += "\(key) \(v)\n"
    }
    let path = directory + "/" + name
    try text.write(toFile: path, atomically: true, encoding: .utf8)
    return (path, pairs)
}

/// The staging hash of a hash-layout `--replace` by kvload process `pid` on this host.
func stagingHash(pid: pid_t, hash: String = "data") throws -> String {
    "\(hash):kvload-staging:\(try localHostName()):\(pid)"
}

/// This machine's host name, as kvload names its staging hashes with it.
func localHostName() throws -> String {
    try String(contentsOfFile: "/proc/sys/kernel/hostname", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
}

/// Reads the whole hash through redis-cli (values must be printable, without line breaks).
func readHash(_ redis: RedisServer, _ name: String = "data") throws -> [String: String] {
    let output = try redis.command(["--raw", "HGETALL", name])
    let lines = output.isEmpty ? [] : output.components(separatedBy: "\n")
    var result: [String: String] = [:]
    var index = 0
    while index + 1 < lines.count {
        result[lines[index]] = lines[index + 1]
        index += 2
    }
    return result
}

@Suite("kvload: loads into a real redis-server", .serialized)
struct KVLoadIntegrationTests {
    let kvload: String
    let directory: String

    init() throws {
        kvload = try Binaries.path("kvload")
        directory = try TemporaryDirectory.make(prefix: "kvload")
    }

    func config(_ redis: RedisServer, extra: String = "") throws -> String {
        let path = directory + "/kvd-\(UUID().uuidString).conf"
        try KVDProcess.redisSection(redis, extra: extra).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func everyPairIsInRedisAfterALoadFromTheConfigFile() throws {
        let redis = try RedisServer()
        let (path, pairs) = try writeSeedFile(in: directory, name: "seed.txt", count: 20_000) { "value \($0) with  spaces" }
        let result = try ChildProcess.run(kvload, ["--config", try config(redis), "--quiet", "--strict-keys", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("rows written:   20000"))
        #expect(result.stdout.contains("new keys:       20000"))
        #expect(try readHash(redis) == pairs)

        // Loading again is a no-op merge: every key is reported as updated.
        let again = try ChildProcess.run(kvload, ["--config", try config(redis), "--quiet", path])
        #expect(again.status == 0)
        #expect(again.stdout.contains("new keys:       0"))
        #expect(again.stdout.contains("updated keys:   20000"))
    }

    @Test func duplicateKeysInTheInputAreCountedExactlyOnAFirstLoad() throws {
        let redis = try RedisServer()
        let path = directory + "/duplicates.txt"
        // 5 rows, 3 distinct keys: "a" three times (the last value wins), "b", "c".
        try "a 1\nb 2\na 3\nc 4\na 5\n".write(toFile: path, atomically: true, encoding: .utf8)
        let first = try ChildProcess.run(kvload, ["--config", try config(redis), "--quiet", path])
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("new keys:       3"))
        #expect(first.stdout.contains("duplicate keys in the input: 2"), "\(first.stdout)")
        #expect(try redis.command(["HGET", "data", "a"]) == "5")
        // Into a hash that already holds data, updates and repeats cannot be told apart in constant memory.
        let again = try ChildProcess.run(kvload, ["--config", try config(redis), "--quiet", path])
        #expect(again.stdout.contains("updated keys:   5 (already in Redis or repeated in the input)"), "\(again.stdout)")
    }

    @Test func csvJsonlGzipAndStdinAreLoadedByteForByte() throws {
        let redis = try RedisServer()
        let conf = try config(redis, extra: "hash = other\n")
        let csv = directory + "/people.csv"
        try "name,id\r\n\"Smith, \"\"J\"\"\",k1\r\n\"two\nlines\",k2\r\n,k3\r\n".write(toFile: csv, atomically: true, encoding: .utf8)
        var result = try ChildProcess.run(kvload, ["--config", conf, "-q", "--format", "csv", "--header", "--key-column", "id", "--value-column", "name", csv])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["--raw", "HGET", "other", "k1"]) == "Smith, \"J\"")
        #expect(try redis.command(["--no-raw", "HGET", "other", "k2"]) == "\"two\\nlines\"")
        #expect(try redis.command(["HSTRLEN", "other", "k3"]) == "0")

        let jsonl = directory + "/rows.jsonl"
        try "{\"key\":\"j1\",\"value\":\"caf\\u00e9\"}\n".write(toFile: jsonl, atomically: true, encoding: .utf8)
        result = try ChildProcess.run(kvload, ["--config", conf, "-q", "--format", "jsonl", jsonl])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["--no-raw", "HGET", "other", "j1"]) == "\"caf\\xc3\\xa9\"")

        // Invalid UTF-8 and a BOM, gzipped: from a .gz file, then through standard input (gzip recognised by its magic bytes).
        let raw = directory + "/raw.txt"
        try Data([0xEF, 0xBB, 0xBF] + Array("b1 ".utf8) + [0xFF, 0x00, 0xFE, 0x0A]).write(to: URL(fileURLWithPath: raw))
        _ = try ChildProcess.run("/bin/gzip", ["-k", raw])
        result = try ChildProcess.run(kvload, ["--config", conf, "-q", raw + ".gz"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["--no-raw", "HGET", "other", "b1"]) == "\"\\xff\\x00\\xfe\"")
        result = try ChildProcess.run(kvload, ["--config", conf, "-q", "--hash", "fromstdin", "-"], stdin: raw + ".gz")
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["--no-raw", "HGET", "fromstdin", "b1"]) == "\"\\xff\\x00\\xfe\"")
    }

    @Test func stringLayoutWithPrefixAndTTL() throws {
        let redis = try RedisServer()
        let (path, pairs) = try writeSeedFile(in: directory, name: "s.txt", count: 3000) { "v\($0)" }
        var result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--layout", "string", "--prefix", "kv:", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["DBSIZE"]) == "3000")
        let key = pairs.keys.first!
        #expect(try redis.command(["GET", "kv:" + key]) == pairs[key]!)
        result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--layout", "string", "--prefix", "t:", "--ttl", "100", path])
        #expect(result.status == 0, "\(result.stderr)")
        let ttl = Int(try redis.command(["TTL", "t:" + key])) ?? -1
        #expect(ttl > 0 && ttl <= 100)
    }

    @Test func anErrorReplyFailsTheLoadWithItsBatch() throws {
        let redis = try RedisServer()
        try redis.command(["SET", "data", "not a hash"])
        let (path, _) = try writeSeedFile(in: directory, name: "w.txt", count: 50) { "v\($0)" }
        let result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", path])
        #expect(result.status == 76)
        #expect(result.stderr.contains("Redis refused the batch starting at \(path):1: WRONGTYPE"))
        #expect(result.stdout.contains("rows written:   0"))
    }

    /// A failed export fed to a nightly `--replace` must not wipe the live data: an input without a single
    /// row is refused (65) unless `--allow-empty` (empty file, header-only CSV, every row skipped).
    @Test func emptyInputWithReplaceIsRefusedUnlessAllowEmpty() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "old", "x"])
        let path = directory + "/empty.txt"
        try "".write(toFile: path, atomically: true, encoding: .utf8)
        let headerOnly = directory + "/header-only.csv"
        try "id,name\n".write(toFile: headerOnly, atomically: true, encoding: .utf8)
        let allBad = directory + "/all-bad.txt"
        try "nospace\nnospace-either\n".write(toFile: allBad, atomically: true, encoding: .utf8)
        for arguments in [[path], ["--format", "csv", "--header", headerOnly], ["--max-errors", "5", allBad]] {
            let result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--replace"] + arguments)
            #expect(result.status == 65, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("refusing to replace the live dataset with an empty one"), "\(result.stderr)")
            #expect(result.stderr.contains("--allow-empty"))
            #expect(try redis.command(["HGET", "data", "old"]) == "x")
            #expect(try redis.command(["KEYS", "*kvload-*"]) == "")
        }
        let stringLayout = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--layout", "string", "--replace", "--staging-db", "5", path])
        #expect(stringLayout.status == 65, "\(stringLayout.stderr)")
        #expect(try redis.command(["EXISTS", "data"]) == "1")

        let allowed = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--replace", "--allow-empty", path])
        #expect(allowed.status == 0, "\(allowed.stderr)")
        #expect(try redis.command(["EXISTS", "data"]) == "0")
    }

    @Test func unixSocketFromTheConfig() throws {
        let socketDirectory = try TemporaryDirectory.make(prefix: "kvload-sock")
        let socket = socketDirectory + "/redis.sock"
        let redis = try RedisServer(extraArguments: ["--unixsocket", socket])
        let conf = directory + "/socket.conf"
        try "[redis]\nsocket = \(socket)\nlayout = string\nprefix = s:\n".write(toFile: conf, atomically: true, encoding: .utf8)
        let (path, pairs) = try writeSeedFile(in: directory, name: "u.txt", count: 100) { "v\($0)" }
        let result = try ChildProcess.run(kvload, ["--config", conf, "-q", path])
        #expect(result.status == 0, "\(result.stderr)")
        let key = pairs.keys.first!
        #expect(try redis.command(["GET", "s:" + key]) == pairs[key]!)
    }

    @Test func passwordFromTheConfigOrAPasswordFile() throws {
        let redis = try RedisServer(password: "s3cret")
        let (path, _) = try writeSeedFile(in: directory, name: "p.txt", count: 10) { "v\($0)" }
        var result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", path])
        #expect(result.status == 0, "\(result.stderr)")
        let passwordFile = directory + "/pass"
        try "s3cret\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        result = try ChildProcess.run(kvload, ["--config", "/dev/null", "--port", String(redis.port), "-q", "--hash", "h2",
                                               "--password-file", passwordFile, path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["HLEN", "h2"]) == "10")
        result = try ChildProcess.run(kvload, ["--config", "/dev/null", "--port", String(redis.port), "-q", path])
        #expect(result.status == 69)
        #expect(result.stderr.contains("NOAUTH") || result.stderr.contains("Authentication"))
    }

    /// `--password-file` reads the secret with kvd's rules: one line, a relative name in `$CREDENTIALS_DIRECTORY`.
    @Test func passwordFileFollowsKvdsRules() throws {
        let redis = try RedisServer(password: "s3cret")
        let (path, _) = try writeSeedFile(in: directory, name: "r.txt", count: 10) { "v\($0)" }
        let credentials = try TemporaryDirectory.make(prefix: "kvload-credentials")
        try "s3cret\r\n".write(toFile: credentials + "/redis-password", atomically: true, encoding: .utf8)
        let base = ["--config", "/dev/null", "--port", String(redis.port), "-q", "--hash", "h3"]
        var result = try ChildProcess.run(kvload, base + ["--password-file", "redis-password", path],
                                          environment: ["CREDENTIALS_DIRECTORY": credentials])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["HLEN", "h3"]) == "10")

        result = try ChildProcess.run(kvload, base + ["--password-file", "redis-password", path], environment: ["CREDENTIALS_DIRECTORY": ""])
        #expect(result.status == 66)
        #expect(result.stderr.contains("$CREDENTIALS_DIRECTORY is not set"))

        let twoLines = directory + "/two-lines"
        try "s3cret\nsecond-secret\n".write(toFile: twoLines, atomically: true, encoding: .utf8)
        result = try ChildProcess.run(kvload, base + ["--password-file", twoLines, path])
        #expect(result.status == 66)
        #expect(result.stderr.contains("on one line") && !result.stderr.contains("second-secret"))
    }

    @Test func malformedRowsAreReportedWithFileAndLine() throws {
        let redis = try RedisServer()
        let path = directory + "/bad.txt"
        try "k1 a\nk2 b\nnospace\nk4 d\n\nk6 f\n".write(toFile: path, atomically: true, encoding: .utf8)
        var result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", path])
        #expect(result.status == 65)
        #expect(result.stderr.contains("\(path):3: missing separator"))
        #expect(!result.stderr.contains("\(path):5:"))

        result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--max-errors", "5", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("\(path):3: missing separator"))
        #expect(result.stderr.contains("\(path):5: empty line"))
        #expect(result.stdout.contains("skipped rows:   2"))
        #expect(try redis.command(["HLEN", "data"]) == "4")

        result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--strict-keys", path])
        #expect(result.status == 65)
        #expect(result.stderr.contains("\(path):1: key is not a lower-case UUIDv4"))

        result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--dry-run", "--max-errors", "9", path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("rows read:      6"))
        #expect(try redis.command(["HLEN", "data"]) == "4")
    }

    /// An export's or an editor's trailing empty lines do not fail the load (they did: exit 65 for the whole
    /// file); an empty line with a row after it is still malformed.
    @Test func trailingEmptyLinesAreIgnored() throws {
        let redis = try RedisServer()
        let seed = directory + "/trailing.txt"
        try "k1 a\r\nk2 b\n\n\r\n\n".write(toFile: seed, atomically: true, encoding: .utf8)
        var result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", seed])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("rows read:      2"), "\(result.stdout)")
        #expect(result.stdout.contains("skipped rows:   0"))
        let csv = directory + "/trailing.csv"
        try "id,name\nk3,c\n\n".write(toFile: csv, atomically: true, encoding: .utf8)
        result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--format", "csv", "--header", csv])
        #expect(result.status == 0, "\(result.stderr)")
        let jsonl = directory + "/trailing.jsonl"
        try "{\"key\":\"k4\",\"value\":\"d\"}\n\n".write(toFile: jsonl, atomically: true, encoding: .utf8)
        result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--format", "jsonl", jsonl])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try readHash(redis) == ["k1": "a", "k2": "b", "k3": "c", "k4": "d"])

        let middle = directory + "/middle.txt"
        try "k5 e\n\n\nk6 f\n".write(toFile: middle, atomically: true, encoding: .utf8)
        result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--max-errors", "1", middle])
        #expect(result.status == 65)
        #expect(result.stderr.contains("\(middle):2: empty line"))
        #expect(result.stderr.contains("\(middle):3: empty line"))
    }

    /// The check after a `--replace` load that the staging hash holds every key Redis reported new: its message
    /// gives the number (it printed `integer(5170)`).
    @Test func stagingHashLosingFieldsFailsWithACountedMessage() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "old", "x"])
        // The input comes through a FIFO held open, so the load waits, every row acknowledged, until this test
        // has taken fields from the staging hash and closed its end.
        let fifo = directory + "/lossy-\(UUID().uuidString).fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        let writer = open(fifo, O_RDWR | O_CLOEXEC)
        #expect(writer >= 0)
        let loader = try ChildProcess(kvload, ["--config", try config(redis), "-q", "--replace", "--batch", "100", "-"], stdin: fifo)
        let rows = (0..<2000).map { "\(uuidKey($0)) v\($0)\n" }.joined()
        #expect(rows.utf8.count == rows.withCString { write(writer, $0, strlen($0)) })
        let staging = try stagingHash(pid: loader.pid)
        #expect(waitUntil(timeout: 30) { (try? redis.command(["HLEN", staging])) == "2000" || !loader.isRunning })
        try redis.command(["HDEL", staging, uuidKey(0), uuidKey(1), uuidKey(2)])
        close(writer)
        #expect(loader.waitForExit(timeout: 60) == 75, "\(loader.standardError)")
        #expect(loader.standardError.contains("the staging hash holds 1997 fields but Redis acknowledged 2000 distinct keys"),
                "\(loader.standardError)")
        #expect(!loader.standardError.contains("integer("))
        #expect(try readHash(redis) == ["old": "x"])
    }

    @Test func unreachableRedisExits69AndMissingInput66() throws {
        let port = try FreePort.find()
        let path = directory + "/one.txt"
        try "k v\n".write(toFile: path, atomically: true, encoding: .utf8)
        var result = try ChildProcess.run(kvload, ["--port", String(port), "--config", "/dev/null", path])
        #expect(result.status == 69)
        #expect(result.stderr.contains("Redis is unreachable"))
        result = try ChildProcess.run(kvload, ["--port", String(port), "--config", "/dev/null", "--dry-run", path])
        #expect(result.status == 0, "a dry run needs no Redis: \(result.stderr)")
        #expect(result.stdout.contains("rows read:      1"))
        result = try ChildProcess.run(kvload, ["--port", String(port), "--config", "/dev/null", directory + "/missing.txt"])
        #expect(result.status == 66)
        let redis = try RedisServer()
        result = try ChildProcess.run(kvload, ["--config", try config(redis), directory + "/missing.txt"])
        #expect(result.status == 66)
        #expect(result.stderr.contains("missing.txt"))
    }

    @Test func replaceIsAtomicForAConcurrentReader() throws {
        let redis = try RedisServer()
        let (oldPath, oldPairs) = try writeSeedFile(in: directory, name: "old.txt", count: 5000, salt: 1) { _ in "old" }
        let (newPath, newPairs) = try writeSeedFile(in: directory, name: "new.txt", count: 150_000, salt: 2) { _ in "new" }
        #expect(try ChildProcess.run(kvload, ["--config", try config(redis), "-q", oldPath]).status == 0)
        let oldProbe = oldPairs.keys.first!
        let newProbe = newPairs.keys.first!
        let loader = try ChildProcess(kvload, ["--config", try config(redis), "-q", "--replace", newPath])
        // One atomic snapshot per poll: the field count and a probe of each dataset.
        let script = "return {redis.call('HLEN', KEYS[1]), redis.call('HGET', KEYS[1], ARGV[1]), redis.call('HGET', KEYS[1], ARGV[2])}"
        var observations: [String] = []
        while loader.isRunning {
            observations.append(try redis.command(["--raw", "EVAL", script, "1", "data", oldProbe, newProbe]).replacingOccurrences(of: "\n", with: " "))
        }
        #expect(loader.waitForExit(timeout: 60) == 0, "\(loader.standardError)")
        observations.append(try redis.command(["--raw", "EVAL", script, "1", "data", oldProbe, newProbe]).replacingOccurrences(of: "\n", with: " "))
        let allowed: Set<String> = ["5000 old", "150000  new"]
        #expect(observations.allSatisfy { allowed.contains($0) }, "unexpected snapshots: \(Set(observations))")
        #expect(observations.first == "5000 old")
        #expect(observations.last == "150000  new")
        #expect(try readHash(redis) == newPairs)
        #expect(try redis.command(["KEYS", "*kvload-*"]) == "")
    }

    @Test func failedReplaceLeavesTheLiveDataUntouched() throws {
        let redis = try RedisServer()
        let (oldPath, oldPairs) = try writeSeedFile(in: directory, name: "old.txt", count: 2000, salt: 3) { _ in "old" }
        #expect(try ChildProcess.run(kvload, ["--config", try config(redis), "-q", oldPath]).status == 0)
        let bad = directory + "/bad-new.txt"
        var text = (0..<3000).map { "\(uuidKey($0, salt: 4)) new\n" }.joined()
        text += "this-line-has-no-separator\n"
        try text.write(toFile: bad, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--replace", "--batch", "100", bad])
        #expect(result.status == 65)
        #expect(result.stderr.contains("\(bad):3001: missing separator"))
        #expect(result.stderr.contains("live data is untouched"))
        #expect(try readHash(redis) == oldPairs)
        #expect(try redis.command(["KEYS", "*kvload-staging*"]) == "")
    }

    @Test func interruptedReplaceDeletesItsStagingAndLeavesTheLiveData() throws {
        let redis = try RedisServer()
        let (oldPath, oldPairs) = try writeSeedFile(in: directory, name: "old.txt", count: 1000, salt: 5) { _ in "old" }
        #expect(try ChildProcess.run(kvload, ["--config", try config(redis), "-q", oldPath]).status == 0)
        let (newPath, _) = try writeSeedFile(in: directory, name: "new.txt", count: 40_000, salt: 6) { _ in "new" }
        let loader = try ChildProcess(kvload, ["--config", try config(redis), "-q", "--replace", "--batch", "5", "--pipeline", "1", newPath])
        let staging = try stagingHash(pid: loader.pid)
        #expect(waitUntil(timeout: 30) { (Int((try? redis.command(["HLEN", staging])) ?? "0") ?? 0) > 500 || !loader.isRunning })
        loader.signal(SIGINT)
        #expect(loader.waitForExit(timeout: 30) == 130, "\(loader.standardError)")
        #expect(loader.standardError.contains("interrupted by signal 2"))
        #expect(loader.standardError.contains("the live data is untouched"))
        #expect(try redis.command(["EXISTS", staging]) == "0")
        #expect(try readHash(redis) == oldPairs)
        // The summary says what was kept (nothing), not "rows written: N" for rows then thrown away.
        #expect(loader.standardOutput.contains("rows kept:      0 (the "), "\(loader.standardOutput)")
        #expect(loader.standardOutput.contains("rows written to the staging data were discarded; the live data is untouched)"))
        #expect(!loader.standardOutput.contains("rows written:"))
    }

    /// SIGINT while kvload waits for input on a pipe that stays open: it must stop at once (exit 130) and delete
    /// its staging hash. Before the read was made interruptible, the signal was only seen when more input came.
    @Test func sigintEndsALoadWhoseInputReadBlocks() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "old", "x"])
        let fifo = directory + "/input-\(UUID().uuidString).fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        // Opened read-write, this end does not wait for a reader (posix_spawn waits for the child's open,
        // which waits for a writer), and the child never sees the end of its input while it is open.
        let writer = open(fifo, O_RDWR | O_CLOEXEC)
        #expect(writer >= 0)
        defer { close(writer) }
        let loader = try ChildProcess(kvload, ["--config", try config(redis), "-q", "--replace", "--batch", "100", "-"], stdin: fifo)
        let rows = (0..<500).map { "\(uuidKey($0, salt: 7)) new\n" }.joined()
        #expect(rows.utf8.count == rows.withCString { write(writer, $0, strlen($0)) })
        let staging = try stagingHash(pid: loader.pid)
        #expect(waitUntil(timeout: 30) { (try? redis.command(["HLEN", staging])) == "500" || !loader.isRunning })
        loader.signal(SIGINT)
        #expect(loader.waitForExit(timeout: 5) == 130, "kvload did not stop while its input read blocked: \(loader.standardError)")
        #expect(loader.standardError.contains("interrupted by signal 2"))
        #expect(loader.standardError.contains("the live data is untouched"))
        #expect(try redis.command(["EXISTS", staging]) == "0")
        #expect(try readHash(redis) == ["old": "x"])
    }

    /// Scratch hashes of kvload processes of this host that no longer run (killed before they could clean up)
    /// are removed by the next `--replace` of the same hash; those of running processes or other hosts stay.
    @Test func orphanedStagingHashesAreRemovedByTheNextReplace() throws {
        let redis = try RedisServer()
        let gone = try ChildProcess("/bin/true", [])
        #expect(gone.waitForExit(timeout: 10) == 0)
        let host = try localHostName()
        let orphans = ["data:kvload-staging:\(host):\(gone.pid)", "data:kvload-retired:\(host):\(gone.pid)"]
        let kept = ["data:kvload-staging:\(host):\(getpid())", "data:kvload-staging:other-host:\(gone.pid)",
                    "other:kvload-staging:\(host):\(gone.pid)"]
        for key in orphans + kept { try redis.command(["HSET", key, "k", "v"]) }
        let (path, pairs) = try writeSeedFile(in: directory, name: "orphans.txt", count: 100) { "v\($0)" }
        let result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--replace", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("removed the orphaned staging hash \(orphans[0])"), "\(result.stderr)")
        #expect(result.stderr.contains("removed the orphaned retired hash \(orphans[1])"), "\(result.stderr)")
        #expect(result.stderr.contains("other-host"))
        for key in orphans { #expect(try redis.command(["EXISTS", key]) == "0", "\(key)") }
        for key in kept { #expect(try redis.command(["EXISTS", key]) == "1", "\(key)") }
        #expect(try readHash(redis) == pairs)
    }

    /// `--max-errors 0` in merge mode: the rows before the bad one are written (they were dropped with the
    /// unsent batch that held them), as the docs promise; with --replace nothing is kept.
    @Test func mergeKeepsTheRowsBeforeTheFirstBadOne() throws {
        let redis = try RedisServer()
        let path = directory + "/ten-then-bad.txt"
        let good = (0..<10).map { "k\($0) v\($0)\n" }.joined()
        try (good + "no-separator\nk10 v10\n").write(toFile: path, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", path])
        #expect(result.status == 65)
        #expect(result.stderr.contains("\(path):11: missing separator"))
        #expect(result.stdout.contains("rows written:   10"), "\(result.stdout)")
        #expect(try redis.command(["HLEN", "data"]) == "10")
        #expect(try redis.command(["HGET", "data", "k9"]) == "v9")
        #expect(try redis.command(["HEXISTS", "data", "k10"]) == "0")
    }

    /// Failures before a single row was read (input missing, Redis unreachable) print the error alone, not an
    /// all-zero summary.
    @Test func failuresBeforeAnyRowPrintOnlyTheError() throws {
        let port = try FreePort.find()
        let path = directory + "/one-row.txt"
        try "k v\n".write(toFile: path, atomically: true, encoding: .utf8)
        var result = try ChildProcess.run(kvload, ["--port", String(port), "--config", "/dev/null", path])
        #expect(result.status == 69)
        #expect(result.stdout == "", "\(result.stdout)")
        #expect(result.stderr.hasPrefix("kvload: Redis is unreachable"), "\(result.stderr)")
        result = try ChildProcess.run(kvload, ["--port", String(port), "--config", "/dev/null", directory + "/missing.txt"])
        #expect(result.status == 66)
        #expect(result.stdout == "", "\(result.stdout)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }

    /// On a terminal, a Ctrl-C clears the progress bar before the messages that follow (they were written
    /// after the bar's text, on its line). The terminal is a pseudo-terminal from script(1).
    @Test func messagesAfterAnInterruptStartOnAClearedLine() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "old", "x"])
        let (path, _) = try writeSeedFile(in: directory, name: "tty.txt", count: 60_000) { "v\($0)" }
        let command = "exec \(kvload) --config \(try config(redis)) --replace --batch 5 --pipeline 1 \(path)"
        let terminal = try ChildProcess("/usr/bin/script", ["-qfec", command, "/dev/null"])
        #expect(waitUntil(timeout: 30) { terminal.standardOutput.contains("rows/s") || !terminal.isRunning }, "no progress bar drawn")
        let pid = try redis.command(["--raw", "KEYS", "data:kvload-staging:*"]).split(separator: ":").last.flatMap { Int32($0) }
        let loader = try #require(pid)
        kill(loader, SIGINT)
        #expect(terminal.waitForExit(timeout: 30) != nil)
        let output = terminal.standardOutput
        for message in ["kvload: --replace: nothing was switched", "kvload: interrupted by signal 2"] {
            let range = try #require(output.range(of: message), "\(output)")
            let before = output[..<range.lowerBound]
            // (The terminal turns "\n" into "\r\n", one Character in Swift: compare the last byte.)
            #expect(before.hasSuffix("\u{1B}[K") || before.utf8.last == 0x0A, "\(message) printed over the bar: \(before.suffix(80).debugDescription)")
        }
        #expect(try readHash(redis) == ["old": "x"])
    }

    /// `-u redis://user:password@host:port/db` and `unix:///path?db=N` as redis-cli takes them; `--user` with
    /// `--password-file` for an ACL user; flags override the URI.
    @Test func redisURIsAndACLUsers() throws {
        let socketDirectory = try TemporaryDirectory.make(prefix: "kvload-uri")
        let socket = socketDirectory + "/redis.sock"
        let redis = try RedisServer(password: "s3cret", extraArguments: ["--unixsocket", socket])
        try redis.command(["ACL", "SETUSER", "loader", "on", ">l0ad", "~*", "+@all"])
        let (path, _) = try writeSeedFile(in: directory, name: "uri.txt", count: 50) { "v\($0)" }
        var result = try ChildProcess.run(kvload, ["--config", "/dev/null", "-q", "-u", "redis://loader:l0ad@127.0.0.1:\(redis.port)/3", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stderr.contains("warning: a password on the command line"))
        #expect(try redis.command(["-n", "3", "HLEN", "data"]) == "50")

        result = try ChildProcess.run(kvload, ["--config", "/dev/null", "-q", "-u", "unix://:s3cret@\(socket)?db=4", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["-n", "4", "HLEN", "data"]) == "50")

        let passwordFile = directory + "/loader.pass"
        try "l0ad\n".write(toFile: passwordFile, atomically: true, encoding: .utf8)
        result = try ChildProcess.run(kvload, ["--config", "/dev/null", "-q", "-u", "redis://127.0.0.1:\(redis.port)/9", "--db", "5",
                                               "--user", "loader", "--password-file", passwordFile, path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["-n", "5", "HLEN", "data"]) == "50")

        result = try ChildProcess.run(kvload, ["--config", "/dev/null", "-q", "--port", String(redis.port), "--user", "loader", path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("needs a password"))
        result = try ChildProcess.run(kvload, ["--config", "/dev/null", "-q", "-u", "rediss://h", path])
        #expect(result.status == 64)
        #expect(result.stderr.contains("TLS"))
    }

    @Test func stringLayoutReplaceSwapsAStagingDatabase() throws {
        let redis = try RedisServer()
        try redis.command(["SET", "stale", "x"])
        let (path, pairs) = try writeSeedFile(in: directory, name: "s.txt", count: 1000) { "v\($0)" }
        var result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--layout", "string", "--replace", path])
        #expect(result.status == 64)
        result = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", "--layout", "string", "--replace", "--staging-db", "5", path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try redis.command(["DBSIZE"]) == "1000")
        #expect(try redis.command(["EXISTS", "stale"]) == "0")
        let key = pairs.keys.first!
        #expect(try redis.command(["GET", key]) == pairs[key]!)
        #expect(waitUntil(timeout: 10) { (try? redis.command(["-n", "5", "DBSIZE"])) == "0" })
    }

    @Test func droppedConnectionIsRestoredAndUnacknowledgedBatchesResent() throws {
        let redis = try RedisServer()
        let (path, pairs) = try writeSeedFile(in: directory, name: "drop.txt", count: 60_000) { "v\($0)" }
        let loader = try ChildProcess(kvload, ["--config", try config(redis), "--batch", "5", "--pipeline", "1", path])
        #expect(waitUntil(timeout: 30) { (Int((try? redis.command(["HLEN", "data"])) ?? "0") ?? 0) > 2000 || !loader.isRunning })
        try redis.command(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        #expect(loader.waitForExit(timeout: 60) == 0, "\(loader.standardError)")
        #expect(loader.standardError.contains("reconnected; resending"))
        #expect(try readHash(redis) == pairs)
    }

    @Test func replaceSurvivesADroppedConnection() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "old", "x"])
        let (path, pairs) = try writeSeedFile(in: directory, name: "rdrop.txt", count: 60_000) { "v\($0)" }
        let loader = try ChildProcess(kvload, ["--config", try config(redis), "--replace", "--batch", "5", "--pipeline", "1", path])
        let staging = try stagingHash(pid: loader.pid)
        #expect(waitUntil(timeout: 30) { (Int((try? redis.command(["HLEN", staging])) ?? "0") ?? 0) > 2000 || !loader.isRunning })
        try redis.command(["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"])
        #expect(loader.waitForExit(timeout: 60) == 0, "\(loader.standardError)")
        #expect(loader.standardError.contains("reconnected; resending"))
        #expect(try readHash(redis) == pairs)
    }

    @Test func redisKilledMidLoadGivesAnHonestCountAndARerunConverges() throws {
        let redis = try RedisServer()
        let (path, pairs) = try writeSeedFile(in: directory, name: "kill.txt", count: 40_000) { "v\($0)" }
        let loader = try ChildProcess(kvload, ["--config", try config(redis), "--batch", "5", "--pipeline", "1", "--retry-for", "1", path])
        var seen = 0
        #expect(waitUntil(timeout: 30) {
            seen = Int((try? redis.command(["HLEN", "data"])) ?? "0") ?? 0
            return seen > 1000 || !loader.isRunning
        })
        redis.kill()
        let status = loader.waitForExit(timeout: 30)
        #expect(status == 75, "\(loader.standardError)")
        let message = loader.standardError
        #expect(message.contains("could not reconnect"))
        // "Redis confirmed N of M rows read": N is at least what was seen stored, and below the total.
        let confirmed = message.range(of: "Redis confirmed ").flatMap { range in
            Int(message[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(confirmed != nil)
        if let confirmed { #expect(confirmed >= seen && confirmed < 40_000) }

        try redis.restart()
        let rerun = try ChildProcess.run(kvload, ["--config", try config(redis), "-q", path])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(try readHash(redis) == pairs)
    }

    /// Redis killed and restarted empty within kvload's retry window: the rows it had acknowledged are
    /// gone, so kvload must not report success. Before INFO's CRLF lines were parsed by byte, the run
    /// id was never read, the check never ran, and this load exited 0 with rows missing.
    @Test func redisRestartedWithinTheRetryWindowIsNeverASuccess() throws {
        let redis = try RedisServer()
        let (path, _) = try writeSeedFile(in: directory, name: "restart.txt", count: 50_000) { "v\($0)" }
        let loader = try ChildProcess(kvload, ["--config", try config(redis), "--batch", "1", "--pipeline", "1", "--retry-for", "60", path])
        #expect(waitUntil(timeout: 30) { (Int((try? redis.command(["HLEN", "data"])) ?? "0") ?? 0) > 1000 || !loader.isRunning })
        #expect(loader.isRunning, "the load ended before Redis could be restarted under it")
        try redis.restart()
        let status = loader.waitForExit(timeout: 90)
        #expect(status == 75, "\(loader.standardError)")
        #expect(loader.standardError.contains("Redis restarted during the load"), "\(loader.standardError)")
    }
}
