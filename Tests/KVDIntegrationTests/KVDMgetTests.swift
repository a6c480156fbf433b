import Foundation
import KVDTestSupport
import Testing

/// `POST /mget` against a real redis-server and the built kvd: a JSON array of keys in, a JSON
/// array of values out, in order; its limits and errors; every layout.
@Suite("kvd: POST /mget")
struct KVDMgetTests {
    /// The request body for `keys` (JSON strings, as Foundation writes them).
    static func body(_ keys: [String]) throws -> [UInt8] {
        Array(try JSONSerialization.data(withJSONObject: keys, options: [.fragmentsAllowed]))
    }

    static func mget(_ connection: HTTPConnection, _ keys: [String]) throws -> HTTPResponse {
        try connection.request("POST", "/mget", headers: ["Content-Type": "application/json"], body: body(keys))
    }

    static func mget(_ connection: HTTPConnection, raw body: String) throws -> HTTPResponse {
        try connection.request("POST", "/mget", body: Array(body.utf8))
    }

    /// The answer's elements (strings, or NSNull for null).
    static func values(_ response: HTTPResponse) throws -> [String?] {
        let array = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [Any])
        return array.map { $0 as? String }
    }

    static func hashKVD(_ redis: RedisServer, extra: String = "") throws -> KVDProcess {
        try KVDProcess(config: "[http]\nport = 0\nthreads = 2\nmax_key_bytes = 64\nmget_max_keys = 1000\nmget_max_body_bytes = 65536\n"
            + extra + KVDProcess.redisSection(redis, extra: "command_timeout_ms = 2000\n"))
    }

    // MARK: Answers

    @Test func valuesInOrderWithDuplicatesMissingKeysAndEscapes() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "a", "1", "b", "héllo \"quoted\"\n", "c", "", "café", "unicode key"])
        let kvd = try Self.hashKVD(redis)
        let connection = try HTTPConnection(port: kvd.port)
        let response = try Self.mget(connection, ["b", "a", "missing", "a", "c", "café", "b"])
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.text == #"["héllo \"quoted\"\n","1",null,"1","","unicode key","héllo \"quoted\"\n"]"#)
        // Keys written with \u escapes (a surrogate pair too) are the same keys.
        try redis.command(["HSET", "data", "😀", "emoji"])
        let escaped = try Self.mget(connection, raw: #" [ "caf\u00e9" , "\ud83d\ude00" ] "#)
        #expect(try Self.values(escaped) == ["unicode key", "emoji"])
        // The connection stays open for the next request.
        #expect(try connection.request("GET", "/get/a").text == #""1""#)
        #expect(try Self.mget(connection, []).text == "[]")
        #expect(try Self.mget(connection, ["missing"]).text == "[null]")
    }

    /// A key named several times in one request is read from Redis once (with the cache off):
    /// Redis's own count of HGET calls says so.
    @Test func aKeyNamedManyTimesIsReadOnce() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "a", "1", "b", "2"])
        let kvd = try Self.hashKVD(redis)
        let connection = try HTTPConnection(port: kvd.port)
        #expect(try connection.request("GET", "/get/a").status == 200)
        func hgetCalls() throws -> Int {
            let stats = try redis.command(["INFO", "commandstats"])
            guard let line = stats.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("cmdstat_hget:") }),
                  let calls = line.split(separator: "=").dropFirst().first?.split(separator: ",").first else { return -1 }
            return Int(calls) ?? -1
        }
        let before = try hgetCalls()
        let response = try Self.mget(connection, ["a", "b", "a", "missing", "a", "missing", "b"])
        #expect(response.text == #"["1","2","1",null,"1",null,"2"]"#)
        let afterBatch = try hgetCalls()
        #expect(afterBatch - before == 3, "\(afterBatch - before) HGETs")
        let many = try Self.mget(connection, Array(repeating: "a", count: 1000))
        #expect(try Self.values(many) == Array(repeating: "1", count: 1000))
        #expect(try hgetCalls() - before == 4)
    }

    @Test func aThousandKeysAnswerInOrder() throws {
        let redis = try RedisServer()
        var arguments = ["HSET", "data"]
        for index in 0..<1000 where index % 7 != 0 { arguments += ["key-\(index)", "value-\(index)"] }
        try redis.command(arguments)
        let kvd = try Self.hashKVD(redis)
        let connection = try HTTPConnection(port: kvd.port)
        let keys = (0..<1000).map { "key-\(($0 * 37) % 1000)" }
        let response = try Self.mget(connection, keys)
        #expect(response.status == 200)
        let expected: [String?] = keys.map { key in
            let index = Int(key.dropFirst(4))!
            return index % 7 == 0 ? nil : "value-\(index)"
        }
        #expect(try Self.values(response) == expected)
        let metrics = try kvd.get("/metrics").text
        #expect(metrics.contains(#"kvd_http_requests_total{route="mget",status="200""#))
        #expect(metrics.contains("kvd_mget_keys_total"))
    }

    /// A value JSON cannot carry refuses the whole batch with the single GET's status (406), naming its index.
    @Test func aValueThatIsNotUTF8Answers406NamingItsIndex() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "text", "fine"])
        _ = try redis.command(["EVAL", "redis.call('HSET', 'data', 'binary', 'x' .. string.char(255) .. string.char(0)); return 1", "0"])
        let kvd = try Self.hashKVD(redis)
        let connection = try HTTPConnection(port: kvd.port)
        let response = try Self.mget(connection, ["text", "missing", "binary", "text"])
        #expect(response.status == 406)
        #expect(response.text.hasPrefix(#"{"detail":"Value at index 2 is not valid UTF-8"#))
        // The single GET's raw form still serves it.
        #expect(try connection.request("GET", "/get/binary?format=raw").body == [0x78, 0xFF, 0x00])
        // Control bytes that are UTF-8 are escaped, as in single GETs.
        _ = try redis.command(["EVAL", "redis.call('HSET', 'data', 'ctl', 'a' .. string.char(0) .. string.char(1)); return 1", "0"])
        #expect(try Self.mget(connection, ["ctl"]).text == #"["a\u0000\u0001"]"#)
        // A key that is not UTF-8 goes in as raw bytes (no JSON escape writes them), as its
        // percent-encoded GET does.
        _ = try redis.command(["EVAL", "redis.call('HSET', 'data', 'k' .. string.char(255), 'binary key'); return 1", "0"])
        #expect(try connection.request("GET", "/get/k%FF").text == #""binary key""#)
        let rawKey = try connection.request("POST", "/mget", body: Array(#"["k"#.utf8) + [0xFF] + Array(#"","k"]"#.utf8))
        #expect(rawKey.text == #"["binary key",null]"#)
    }

    // MARK: Refusals

    @Test func limitsAnswer413() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "a", "1"])
        let kvd = try Self.hashKVD(redis, extra: "")
        let connection = try HTTPConnection(port: kvd.port)
        // Too many keys: 413, and the connection stays usable (the body was read).
        let tooMany = try Self.mget(connection, Array(repeating: "a", count: 1001))
        #expect(tooMany.status == 413)
        #expect(tooMany.text == #"{"detail":"More than 1000 keys in one request"}"#)
        #expect(try Self.mget(connection, Array(repeating: "a", count: 1000)).status == 200)

        // A Content-Length over the limit: 413 before the body is sent, then the connection closes.
        let big = try HTTPConnection(port: kvd.port)
        try big.send("POST /mget HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n")
        let refused = try big.readResponse(method: "POST")
        #expect(refused.status == 413)
        #expect(refused.text == #"{"detail":"Request body larger than 65536 bytes"}"#)
        #expect(big.isClosedByPeer())

        // A chunked body that grows over the limit: the rest is dropped, 413 at its end.
        let chunked = try HTTPConnection(port: kvd.port)
        var request = Array("POST /mget HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".utf8)
        let chunk = Array(repeating: UInt8(ascii: "a"), count: 30_000)
        for _ in 0..<4 { request += Array("7530\r\n".utf8) + chunk + Array("\r\n".utf8) }
        request += Array("0\r\n\r\n".utf8)
        try chunked.send(request)
        let chunkedRefused = try chunked.readResponse(method: "POST")
        #expect(chunkedRefused.status == 413)
        #expect(chunked.isClosedByPeer())

        // A chunked body within the limit is served.
        let small = try HTTPConnection(port: kvd.port)
        try small.send("POST /mget HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n[\"a\"\r\n5\r\n,\"b\"]\r\n0\r\n\r\n")
        #expect(try small.readResponse(method: "POST").text == #"["1",null]"#)
        #expect(try kvd.get("/get/a").status == 200)
        let metrics = try kvd.get("/metrics").text
        #expect(metrics.contains(#"kvd_http_requests_total{route="mget",status="413""#))
    }

    /// An answer longer than `mget_max_answer_bytes` is refused 413 (the body was read: the
    /// connection stays open), at the exact boundary: 9 values of 100 bytes make a 928-byte
    /// answer, 10 make 1,031.
    @Test func anAnswerOverItsLimitAnswers413() throws {
        let redis = try RedisServer()
        let value = String(repeating: "v", count: 100)
        try redis.command(["HSET", "data", "a", value])
        let kvd = try Self.hashKVD(redis, extra: "mget_max_answer_bytes = 1030\n")
        let connection = try HTTPConnection(port: kvd.port)
        let fits = try Self.mget(connection, Array(repeating: "a", count: 9))
        #expect(fits.status == 200)
        #expect(fits.body.count == 928)
        let over = try Self.mget(connection, Array(repeating: "a", count: 10))
        #expect(over.status == 413)
        #expect(over.text == #"{"detail":"Answer larger than 1030 bytes; request fewer keys at a time"}"#)
        // Missing keys answer null: 10 of them fit.
        #expect(try Self.mget(connection, Array(repeating: "missing", count: 10)).status == 200)
        #expect(try connection.request("GET", "/get/a").status == 200)
    }

    /// One big value asked for a thousand times (a single request) cannot make kvd hold a thousand
    /// copies: values past `mget_max_answer_bytes` (default 64 MiB) are dropped as they arrive and
    /// the request answered 413. Before the limit, 1,000 × 512 KiB made kvd hold ~500 MiB of
    /// replies and build a ~500 MiB answer.
    @Test func aBigValueAskedForManyTimesDoesNotGrowMemory() throws {
        let redis = try RedisServer()
        _ = try redis.command(["-x", "HSET", "data", "big"], input: Data(repeating: UInt8(ascii: "x"), count: 512 << 10))
        let kvd = try Self.hashKVD(redis)
        #expect(try kvd.get("/get/absent").status == 404)
        let baseline = try #require(Self.peakResidentBytes(kvd))
        let connection = try HTTPConnection(port: kvd.port, timeout: 60)
        let refused = try Self.mget(connection, Array(repeating: "big", count: 1000))
        #expect(refused.status == 413)
        #expect(refused.text.contains("Answer larger than 67108864 bytes"))
        let peak = try #require(Self.peakResidentBytes(kvd))
        #expect(peak - baseline < 256 << 20, "kvd's peak RSS grew by \((peak - baseline) >> 20) MiB")
        // Within the limit, the same value many times is answered.
        let answered = try Self.mget(connection, Array(repeating: "big", count: 100))
        #expect(answered.status == 200)
        #expect(answered.body.count == 100 * (512 << 10) + 100 * 3 + 1)
    }

    /// kvd's peak resident memory (VmHWM), from /proc.
    static func peakResidentBytes(_ kvd: KVDProcess) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(kvd.process.pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
              let kilobytes = Int(line.split(separator: " ")[1]) else { return nil }
        return kilobytes * 1024
    }

    @Test func badJSONNonStringsAndInvalidKeysAnswer400() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "a", "1"])
        let kvd = try Self.hashKVD(redis)
        let connection = try HTTPConnection(port: kvd.port)
        let cases: [(String, String)] = [
            (#"["a","b""#, "Invalid JSON array of keys: array is not closed"),
            (#"{"keys":["a"]}"#, "Invalid JSON array of keys: expected a JSON array of strings"),
            (#"["a",1]"#, "Invalid JSON array of keys: element 1: expected a string, found a number"),
            (#"["a",["b"]]"#, "Invalid JSON array of keys: element 1: expected a string, found a nested array"),
            (#"["a",null]"#, "Invalid JSON array of keys: element 1: expected a string, found null"),
            (#"["a"] trailing"#, "Invalid JSON array of keys: unexpected bytes after the array"),
            (#"["a",""]"#, "Invalid key at index 1: empty"),
            ("[\"a\",\"\(String(repeating: "k", count: 65))\"]", "Invalid key at index 1: longer than 64 bytes"),
        ]
        for (body, detail) in cases {
            let response = try Self.mget(connection, raw: body)
            #expect(response.status == 400, "\(body)")
            #expect(response.header("Content-Type") == "application/json")
            let expected = try JSONSerialization.data(withJSONObject: ["detail": detail])
            #expect(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: String]
                    == (try JSONSerialization.jsonObject(with: expected) as? [String: String]), "\(body): \(response.text)")
        }
        // An empty body is not an array either.
        let connection2 = try HTTPConnection(port: kvd.port)
        try connection2.send("POST /mget HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        #expect(try connection2.readResponse(method: "POST").status == 400)
        // Other methods: 405 with Allow: POST; unknown neighbours stay 404.
        for method in ["GET", "HEAD", "PUT", "DELETE"] {
            let response = try kvd.get("/mget", method: method)
            #expect(response.status == 405, "\(method)")
            #expect(response.header("Allow") == "POST")
        }
        #expect(try kvd.get("/mget/x", method: "POST").status == 404)
        #expect(try connection.request("GET", "/get/a").text == #""1""#)
    }

    // MARK: Redis trouble

    @Test func redisDownFailsTheWholeRequestWith503AndAnErrorReplyWith502() throws {
        let redis = try RedisServer()
        try redis.command(["SET", "kv:a", "1"])
        try redis.command(["RPUSH", "kv:list", "x"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n"
            + KVDProcess.redisSection(redis, extra: "layout = string\nprefix = kv:\ncommand_timeout_ms = 2000\n"))
        let connection = try HTTPConnection(port: kvd.port)
        #expect(try Self.mget(connection, ["a", "missing"]).text == #"["1",null]"#)
        let wrongType = try Self.mget(connection, ["a", "list", "a"])
        #expect(wrongType.status == 502)
        #expect(wrongType.text == #"{"detail":"Redis error: WRONGTYPE"}"#)

        redis.stop()
        let down = try Self.mget(connection, ["a", "missing", "a"])
        #expect(down.status == 503)
        #expect(down.text == #"{"detail":"Redis unavailable"}"#)
        #expect(down.header("Retry-After") == "1")
        #expect(try Self.mget(connection, []).text == "[]")
    }

    // MARK: Layouts

    @Test func stringLayoutLooksEachKeyUp() throws {
        let redis = try RedisServer()
        try redis.command(["MSET", "kv:x", "X", "kv:y", "Y", "x", "not under the prefix"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n"
            + KVDProcess.redisSection(redis, extra: "layout = string\nprefix = kv:\n"))
        let connection = try HTTPConnection(port: kvd.port)
        #expect(try Self.mget(connection, ["y", "x", "z", "y"]).text == #"["Y","X",null,"Y"]"#)
    }

    @Test func bucketsLayoutLoadedByKvload() throws {
        let redis = try RedisServer()
        let directory = try TemporaryDirectory.make(prefix: "kvd-mget")
        let path = directory + "/pairs.txt"
        let pairs = (0..<500).map { ("key-\($0)", "value-\($0)") }
        try pairs.map { "\($0.0) \($0.1)\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        let loaded = try ChildProcess.run(try Binaries.path("kvload"),
                                          ["--port", String(redis.port), "--layout", "buckets", "--prefix", "kv:", "--quiet", path], timeout: 60)
        #expect(loaded.status == 0, "\(loaded.stderr)")
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\n"
            + KVDProcess.redisSection(redis, extra: "layout = buckets\nprefix = kv:\ncommand_timeout_ms = 2000\n"))
        let connection = try HTTPConnection(port: kvd.port)
        let keys = (0..<600).reversed().map { "key-\($0)" }
        let response = try Self.mget(connection, keys)
        #expect(response.status == 200)
        #expect(try Self.values(response) == (0..<600).reversed().map { $0 < 500 ? "value-\($0)" : nil })
    }

    @Test func accessLogHasALineForMget() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "a", "1"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\nmget_max_body_bytes = 100\n[log]\naccess = yes\n" + KVDProcess.redisSection(redis))
        let connection = try HTTPConnection(port: kvd.port)
        #expect(try Self.mget(connection, ["a", "b"]).status == 200)
        let big = try HTTPConnection(port: kvd.port)
        try big.send("POST /mget HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n")
        #expect(try big.readResponse(method: "POST").status == 413)
        func lines() -> [String] { kvd.log.split(separator: "\n").map(String.init).filter { $0.contains(" kvd: 127.0.0.1 POST /mget ") } }
        #expect(waitUntil(timeout: 5) { lines().count >= 2 })
        #expect(lines().contains { $0.range(of: #"POST /mget 200 10 \d+us"#, options: .regularExpression) != nil }, "\(lines())")
        #expect(lines().contains { $0.range(of: #"POST /mget 413 \d+ \d+us"#, options: .regularExpression) != nil }, "\(lines())")
    }
}
