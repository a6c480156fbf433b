import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The access log (issue 14 item 3, issue 9 #13): nginx's fields, escaping of request bytes,
/// the JSON form, and switching it on and off by a reload.
@Suite("kvd: access log")
struct KVDAccessLogTests {
    func accessLines(_ kvd: KVDProcess) -> [String] {
        kvd.log.split(separator: "\n").map(String.init).filter { $0.contains(" kvd: 127.0.0.1 ") || $0.hasPrefix("{\"time\"") }
    }

    @Test func textLineHasNginxFields() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "hello"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n[log]\naccess = yes\n" + KVDProcess.redisSection(redis))
        #expect(try kvd.get("/get/k?format=raw&x", headers: ["User-Agent": "probe/1.0 (test)"]).status == 200)
        #expect(try kvd.get("/get/missing").status == 404)
        #expect(try kvd.get("/healthz", method: "HEAD").status == 200)
        #expect(waitUntil(timeout: 5) { accessLines(kvd).count >= 3 })
        let lines = accessLines(kvd)
        #expect(lines.contains { $0.range(of: #"^\S+ info kvd: 127\.0\.0\.1 GET /get/k\?format=raw&x 200 5 \d+us "probe/1\.0 \(test\)"$"#, options: .regularExpression) != nil }, "\(lines)")
        #expect(lines.contains { $0.range(of: #"kvd: 127\.0\.0\.1 GET /get/missing 404 26 \d+us "-"$"#, options: .regularExpression) != nil }, "\(lines)")
        #expect(lines.contains { $0.range(of: #"kvd: 127\.0\.0\.1 HEAD /healthz 200 0 \d+us"#, options: .regularExpression) != nil }, "\(lines)")
    }

    /// Control bytes, quotes and bytes above 0x7F from the request never reach the log as they are.
    @Test func requestBytesAreEscaped() throws {
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n[log]\naccess = yes\n")
        let connection = try HTTPConnection(port: kvd.port)
        var request = Array("GET /nope/a".utf8) + [0x1B] + Array("[31m\"b\\".utf8) + [0xC3, 0xA9, 0x7F]
        request += Array(" HTTP/1.1\r\nHost: x\r\nUser-Agent: evil\u{1B}[2J\"ua\r\n\r\n".utf8)
        try connection.send(request)
        _ = try connection.readResponse()
        #expect(waitUntil(timeout: 5) { accessLines(kvd).count >= 1 })
        let line = try #require(accessLines(kvd).first)
        #expect(line.contains(#"GET /nope/a\x1b[31m\x22b\x5c\xc3\xa9\x7f 404 "#), "\(line)")
        #expect(line.hasSuffix(#""evil\x1b[2J\x22ua""#), "\(line)")
        let raw = try Data(contentsOf: URL(fileURLWithPath: kvd.process.stderrPath))
        #expect(!raw.contains(0x1B) && !raw.contains(0x7F) && !raw.contains(0xC3))
    }

    @Test func jsonLinesAreJSONWithEveryField() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "hello"])
        let kvd = try KVDProcess(config: "[http]\nthreads = 1\n[log]\naccess = yes\nformat = json\n" + KVDProcess.redisSection(redis))
        #expect(try kvd.get("/get/k", headers: ["User-Agent": "probe\u{1}/2"]).status == 200)
        let connection = try HTTPConnection(port: kvd.port)
        try connection.send(Array("GET /get/\u{1B}\"x?q=1 HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        _ = try connection.readResponse()
        #expect(waitUntil(timeout: 5) { accessLines(kvd).count >= 2 })
        let objects = try accessLines(kvd).map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
        let first = try #require(objects.first { $0["path"] as? String == "/get/k" })
        #expect(first["client"] as? String == "127.0.0.1")
        #expect(first["method"] as? String == "GET")
        #expect(first["status"] as? Int == 200)
        #expect(first["bytes"] as? Int == 7)
        #expect((first["us"] as? Int).map { $0 >= 0 } == true)
        #expect(first["user_agent"] as? String == "probe\u{1}/2")
        #expect((first["time"] as? String)?.isEmpty == false)
        let second = try #require(objects.first { ($0["path"] as? String)?.hasPrefix("/get/\u{1B}") == true })
        #expect(second["path"] as? String == "/get/\u{1B}\"x?q=1")
        #expect(second["user_agent"] is NSNull)
        #expect(accessLines(kvd).allSatisfy { $0.unicodeScalars.allSatisfy { $0.value >= 0x20 && $0.value < 0x7F } })
    }

    @Test func reloadSwitchesTheAccessLogOnAndOff() throws {
        let base = "[http]\nport = 0\nthreads = 2\n"
        let kvd = try KVDProcess(config: base)
        #expect(try kvd.get("/healthz?before").status == 200)

        try (base + "[log]\naccess = yes\n").write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 5) { kvd.log.contains("applied log.access") })
        #expect(try kvd.get("/healthz?during").status == 200)
        #expect(waitUntil(timeout: 5) { kvd.log.contains("GET /healthz?during 200") })

        try (base + "[log]\naccess = no\n").write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 5) { kvd.log.components(separatedBy: "applied log.access").count == 3 })
        // A request's line is written before its answer is sent: none can come later.
        #expect(try kvd.get("/healthz?after").status == 200)
        #expect(!kvd.log.contains("/healthz?before"))
        #expect(!kvd.log.contains("/healthz?after"))
        #expect(!kvd.log.contains("needs a restart"))
    }
}
