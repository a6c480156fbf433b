import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kvload with `layout = buckets`: generations, their sizes, counts and leftovers.
@Suite("kvload: the buckets layout", .serialized)
struct KVLoadBucketsTests {
    let kvload: String
    let directory: String

    init() throws {
        kvload = try Binaries.path("kvload")
        directory = try TemporaryDirectory.make(prefix: "kvload-buckets")
    }

    func run(_ redis: RedisServer, _ arguments: [String], stdin: String? = nil) throws -> (status: Int32, stdout: String, stderr: String) {
        let base = ["--port", String(redis.port), "--layout", "buckets", "--prefix", "p:", "--quiet"]
        guard let stdin else { return try ChildProcess.run(kvload, base + arguments, timeout: 60) }
        let path = directory + "/stdin-\(UUID().uuidString)"
        try stdin.write(toFile: path, atomically: true, encoding: .utf8)
        return try ChildProcess.run(kvload, base + arguments + ["-"], stdin: path, timeout: 60)
    }

    /// A first load with repeated keys: the descriptor's rows and the summary count distinct keys.
    @Test func duplicateKeysAreCountedHonestly() throws {
        let redis = try RedisServer()
        let path = directory + "/duplicates.txt"
        try "a 1\nb 2\na 3\nc 4\na 5\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try run(redis, [path])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("rows written:   5"))
        #expect(result.stdout.contains("new keys:       3"))
        #expect(result.stdout.contains("duplicate keys in the input: 2"))
        #expect(try redis.command(["HGET", "p:meta", "rows"]) == "3")
        let generation = try redis.command(["HGET", "p:meta", "generation"])
        #expect(try redis.command(["HGET", "p:\(generation):0", "a"]) == "5")
        #expect(try redis.command(["GET", "p:\(generation)"]) == "3")
    }

    /// Standard input: sized for the documented default unless --expected-rows says otherwise.
    @Test func standardInputIsSizedByExpectedRowsOrTheDefault() throws {
        let redis = try RedisServer()
        let byDefault = try run(redis, [], stdin: "k v\n")
        #expect(byDefault.status == 0, "\(byDefault.stderr)")
        #expect(byDefault.stderr.contains("sizing the new generation for 1000000 rows (pass --expected-rows N"))
        #expect(try redis.command(["HGET", "p:meta", "buckets"]) == String(1_000_000 / 64 + (1_000_000 % 64 == 0 ? 0 : 1)))
        let sized = try run(redis, ["--replace", "--grace-seconds", "0", "--expected-rows", "2560"], stdin: "k w\n")
        #expect(sized.status == 0, "\(sized.stderr)")
        #expect(try redis.command(["HGET", "p:meta", "buckets"]) == "40")
        // The replaced generation's 15625 buckets (one of them written) are gone after the grace period.
        #expect(try redis.command(["HLEN", "p:generations"]) == "1")
        #expect(try redis.command(["DBSIZE"]) == "4")
    }

    /// --gc refuses to guess when no generation is live, and says which it deleted otherwise.
    /// --bucket-fields sets the fields per bucket a new generation aims at, capped at half of
    /// hash-max-listpack-entries (with a warning naming both).
    @Test func bucketFieldsSizesTheGeneration() throws {
        let redis = try RedisServer(extraArguments: ["--hash-max-listpack-entries", "512"])
        let wide = try run(redis, ["--bucket-fields", "256", "--expected-rows", "2560"], stdin: "k v\n")
        #expect(wide.status == 0, "\(wide.stderr)")
        #expect(try redis.command(["HGET", "p:meta", "buckets"]) == "10")
        let capped = try run(redis, ["--replace", "--grace-seconds", "0", "--bucket-fields", "1000", "--expected-rows", "2560"], stdin: "k v\n")
        #expect(capped.status == 0, "\(capped.stderr)")
        #expect(capped.stderr.contains("--bucket-fields 1000 is over half of hash-max-listpack-entries 512: aiming at 256 fields per bucket"), "\(capped.stderr)")
        #expect(try redis.command(["HGET", "p:meta", "buckets"]) == "10")
        #expect(try run(redis, ["--bucket-fields", "0"], stdin: "k v\n").status == 64)
    }

    @Test func gcNeedsALiveGeneration() throws {
        let redis = try RedisServer()
        let refused = try run(redis, ["--gc"])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("the dataset descriptor 'p:meta' is missing, so no generation is known to be live: nothing deleted"))
        let path = directory + "/one.txt"
        try "k v\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try run(redis, [path]).status == 0)
        // An orphan as a killed run leaves it: registered, some buckets, no marker.
        try redis.command(["HSET", "p:generations", "g1-1", "3"])
        try redis.command(["HSET", "p:g1-1:2", "x", "y"])
        let gc = try run(redis, ["--gc"])
        #expect(gc.status == 0, "\(gc.stderr)")
        #expect(gc.stdout.contains("kvload: --gc: deleted generation g1-1"))
        #expect(try redis.command(["EXISTS", "p:g1-1:2"]) == "0")
        #expect(try redis.command(["HKEYS", "p:generations"]) == (try redis.command(["HGET", "p:meta", "generation"])))
    }

    /// A merge needs a valid descriptor; a broken one is reported, and --replace is the way out.
    @Test func aMergeIntoABrokenDescriptorIsRefused() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "p:meta", "format", "1", "generation", "g", "layout", "buckets", "buckets", "1", "hash", "fnv1a", "rows", "0"])
        let path = directory + "/one.txt"
        try "k v\n".write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try run(redis, [path])
        #expect(refused.status == 64)
        #expect(refused.stderr.contains("unknown hash function 'fnv1a'"))
        #expect(refused.stderr.contains("--replace writes a new generation"))
        #expect(try run(redis, ["--replace", path]).status == 0)
        #expect(try redis.command(["HGET", "p:meta", "hash"]) == "xxh64")
    }
}
