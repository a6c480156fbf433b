import Foundation
import KVDTestSupport
import Testing

/// HTTP conveniences (issue 14 item 4): ETag and 304, Cache-Control, CORS.
@Suite("kvd: ETag, Cache-Control and CORS")
struct KVDResponseHeaderTests {
    @Test func etagNamesTheValueAndIfNoneMatchAnswers304() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "hello", "same", "hello"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\netag = yes\n" + KVDProcess.redisSection(redis))
        let first = try kvd.get("/get/k")
        let tag = try #require(first.header("ETag"))
        #expect(tag.range(of: #"^"[0-9a-f]{16}"$"#, options: .regularExpression) != nil, "\(tag)")
        #expect(try kvd.get("/get/k").header("ETag") == tag)
        #expect(try kvd.get("/get/same").header("ETag") == tag, "a hash of the value, not of the key")
        #expect(first.header("Cache-Control") == nil)
        #expect(first.header("Access-Control-Allow-Origin") == nil)

        for condition in [tag, "W/\(tag)", "\"other\", \(tag)", "*"] {
            for method in ["GET", "HEAD"] {
                let answer = try kvd.get("/get/k", method: method, headers: ["If-None-Match": condition])
                #expect(answer.status == 304, "\(method) If-None-Match: \(condition)")
                #expect(answer.body.isEmpty)
                #expect(answer.header("ETag") == tag)
            }
        }
        #expect(try kvd.get("/get/k", headers: ["If-None-Match": "\"0000000000000000\""]).status == 200)

        // The raw representation is another body: another tag.
        let raw = try kvd.get("/get/k?format=raw")
        #expect(raw.header("ETag") == String(tag.dropLast()) + "-raw\"")
        #expect(try kvd.get("/get/k?format=raw", headers: ["If-None-Match": tag]).status == 200)
        #expect(try kvd.get("/get/k?format=raw", headers: ["If-None-Match": raw.header("ETag")!]).status == 304)

        // A new value, a new tag.
        try redis.command(["HSET", "data", "k", "hello again"])
        let changed = try kvd.get("/get/k", headers: ["If-None-Match": tag])
        #expect(changed.status == 200)
        #expect(changed.text == #""hello again""#)
        #expect(changed.header("ETag") != tag)

        // Only values carry tags; a missing key stays 404 whatever If-None-Match says.
        #expect(try kvd.get("/get/missing", headers: ["If-None-Match": "*"]).status == 404)
        #expect(try kvd.get("/healthz").header("ETag") == nil)
    }

    @Test func etagOffSendsNoTagAndIgnoresIfNoneMatch() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "hello"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\netag = no\n" + KVDProcess.redisSection(redis))
        let answer = try kvd.get("/get/k", headers: ["If-None-Match": "*"])
        #expect(answer.status == 200)
        #expect(answer.header("ETag") == nil)
    }

    @Test func cacheControlOnValueAnswersOnly() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "hello"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\ncache_control = public, max-age=60 # a note\netag = yes\n" + KVDProcess.redisSection(redis))
        let value = try kvd.get("/get/k")
        #expect(value.header("Cache-Control") == "public, max-age=60")
        let notModified = try kvd.get("/get/k", headers: ["If-None-Match": value.header("ETag")!])
        #expect(notModified.status == 304)
        #expect(notModified.header("Cache-Control") == "public, max-age=60")
        #expect(try kvd.get("/get/missing").header("Cache-Control") == nil)
        #expect(try kvd.get("/healthz").header("Cache-Control") == nil)
        #expect(try kvd.get("/metrics").header("Cache-Control") == nil)
    }

    @Test func corsOriginOnEveryAnswerAndPreflight() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "hello"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\ncors_origin = https://app.example\netag = yes\n" + KVDProcess.redisSection(redis))
        for (target, status) in [("/get/k", 200), ("/get/missing", 404), ("/healthz", 200), ("/metrics", 200), ("/nope", 404)] {
            let answer = try kvd.get(target)
            #expect(answer.status == status, "\(target)")
            #expect(answer.header("Access-Control-Allow-Origin") == "https://app.example", "\(target)")
        }
        #expect(try kvd.get("/get/k").header("Access-Control-Expose-Headers") == "ETag")
        let preflight = try kvd.get("/get/k", method: "OPTIONS", headers: [
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        ])
        #expect(preflight.status == 204)
        #expect(preflight.body.isEmpty)
        #expect(preflight.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(preflight.header("Access-Control-Allow-Methods") == "GET, HEAD, POST, OPTIONS")
        #expect(preflight.header("Access-Control-Allow-Headers")?.contains("If-None-Match") == true)
        // A browser's POST /mget with a JSON body: preflight first, then the batch with the origin.
        let mgetPreflight = try kvd.get("/mget", method: "OPTIONS", headers: [
            "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        ])
        #expect(mgetPreflight.status == 204)
        #expect(mgetPreflight.header("Access-Control-Allow-Methods")?.contains("POST") == true)
        #expect(mgetPreflight.header("Access-Control-Allow-Headers")?.contains("Content-Type") == true)
        let connection = try HTTPConnection(port: kvd.port)
        let batch = try connection.request("POST", "/mget", headers: [
            "Origin": "https://app.example", "Content-Type": "application/json",
        ], body: Array(#"["k","missing"]"#.utf8))
        #expect(batch.status == 200)
        #expect(batch.text == #"["hello",null]"#)
        #expect(batch.header("Access-Control-Allow-Origin") == "https://app.example")
        let refused = try connection.request("POST", "/mget", headers: ["Origin": "https://app.example"], body: Array("[1]".utf8))
        #expect(refused.status == 400)
        #expect(refused.header("Access-Control-Allow-Origin") == "https://app.example")
    }

    @Test func withoutCORSOptionsIsRefusedAsBefore() throws {
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n")
        let answer = try kvd.get("/healthz", method: "OPTIONS")
        #expect(answer.status == 405)
        #expect(answer.header("Access-Control-Allow-Origin") == nil)
    }

    @Test func badHeaderValuesAreRefused() throws {
        let path = try TemporaryDirectory.make(prefix: "conf") + "/kvd.conf"
        try "[http]\ncors_origin = https://a.example\u{1}\n".write(toFile: path, atomically: true, encoding: .utf8)
        let result = try ChildProcess.run(try Binaries.path("kvd"), ["-t", "-c", path], timeout: 30)
        #expect(result.status == 78)
        #expect(result.stderr.contains("\(path):2: [http] cors_origin: an HTTP header value takes printable ASCII only"), "\(result.stderr)")
    }
}
