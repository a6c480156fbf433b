import Foundation
import KVDTestSupport
import Testing

/// kvd against a real redis-server: the seed's HTTP contract and kvd's additions to it.
@Suite("kvd: HTTP contract")
struct KVDContractTests {
    let redis: RedisServer
    let kvd: KVDProcess

    init() throws {
        redis = try RedisServer()
        try redis.command(["HSET", "data", "3479d894-3271-4935-88cf-a06f3cbb80a5", "this is a value",
                           "plain", "lpkrp", "a/b c", "slash", "café", "unicode key"])
        kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\nmax_key_bytes = 64\n" + KVDProcess.redisSection(redis))
    }

    @Test func foundKeyAnswersTheValueAsAJSONString() throws {
        let response = try kvd.get("/get/3479d894-3271-4935-88cf-a06f3cbb80a5")
        #expect(response.status == 200)
        #expect(response.header("Content-Type") == "application/json")
        #expect(response.text == #""this is a value""#)
        #expect(response.header("Content-Length") == String(response.body.count))
    }

    @Test func missingKeyAnswers404WithTheSeedBody() throws {
        let response = try kvd.get("/get/non_existing_key")
        #expect(response.status == 404)
        #expect(response.text == #"{"detail":"Key not found"}"#)
        #expect(response.header("Content-Type") == "application/json")
    }

    /// RFC 9112 section 3.2.2: a server must accept a target in absolute form (what a client
    /// configured to use kvd as a proxy sends); it is routed by its path.
    @Test func absoluteFormTargetsAreRoutedByTheirPath() throws {
        let connection = try HTTPConnection(port: kvd.port)
        let found = try connection.request("GET", "http://localhost:\(kvd.port)/get/a%2Fb%20c")
        #expect(found.status == 200)
        #expect(found.text == #""slash""#)
        let batch = try connection.request("POST", "HTTP://localhost/mget", body: Array(#"["plain","nope"]"#.utf8))
        #expect(batch.status == 200)
        #expect(batch.text == #"["lpkrp",null]"#)
        #expect(try connection.request("GET", "http://localhost/healthz").status == 200)
        #expect(try connection.request("GET", "ftp://localhost/get/plain").status == 404)
    }

    @Test func unknownPathsAnswerNotFound() throws {
        for target in ["/", "/get", "/get/", "/nothing/here", "/GET/plain"] {
            let response = try kvd.get(target)
            #expect(response.status == 404, "\(target)")
            #expect(response.text == #"{"detail":"Not Found"}"#, "\(target)")
        }
    }

    @Test(arguments: ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
    func otherMethodsOnGetAnswer405WithAllow(method: String) throws {
        let response = try kvd.get("/get/plain", method: method)
        #expect(response.status == 405)
        #expect(response.text == #"{"detail":"Method Not Allowed"}"#)
        #expect(response.header("Allow") == "GET, HEAD")
    }

    @Test func postWithABodyIsRefusedAndTheServerKeepsServing() throws {
        let connection = try HTTPConnection(port: kvd.port)
        let response = try connection.request("POST", "/get/plain", body: Array(repeating: UInt8(ascii: "x"), count: 100_000))
        #expect(response.status == 405)
        #expect(try kvd.get("/get/plain").text == #""lpkrp""#)
    }

    @Test func headAnswersLikeGetWithoutABody() throws {
        let connection = try HTTPConnection(port: kvd.port)
        let head = try connection.request("HEAD", "/get/plain")
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "7")
        #expect(head.body.isEmpty)
        // The connection is still in step: the next response is the GET's, not a stray body.
        let get = try connection.request("GET", "/get/plain")
        #expect(get.text == #""lpkrp""#)
        #expect(try connection.request("HEAD", "/get/absent").status == 404)
    }

    @Test func healthzAnswersWithoutRedis() throws {
        let response = try kvd.get("/healthz")
        #expect(response.status == 200)
        #expect(response.text == #"{"status":"ok"}"#)
        redis.kill()
        #expect(try kvd.get("/healthz").status == 200)
    }

    @Test func keysArePercentDecoded() throws {
        #expect(try kvd.get("/get/a%2Fb%20c").text == #""slash""#)
        #expect(try kvd.get("/get/a/b%20c").text == #""slash""#)
        #expect(try kvd.get("/get/caf%C3%A9").text == #""unicode key""#)
        #expect(try kvd.get("/get/pl%61in").text == #""lpkrp""#)
    }

    @Test func aNulByteDoesNotCutTheKey() throws {
        // "plain" exists; "plain\0x" does not, and must not be read as "plain".
        #expect(try kvd.get("/get/plain%00x").status == 404)
    }

    @Test func badPercentEncodingAnswers400() throws {
        for target in ["/get/%zz", "/get/abc%2", "/get/%"] {
            let response = try kvd.get(target)
            #expect(response.status == 400, "\(target)")
            #expect(response.text == #"{"detail":"Invalid percent-encoding in path"}"#)
        }
    }

    @Test func oversizedKeyAnswers414() throws {
        let response = try kvd.get("/get/" + String(repeating: "k", count: 65))
        #expect(response.status == 414)
        #expect(response.text == #"{"detail":"Key longer than 64 bytes"}"#)
        // Exactly at the limit is a normal lookup.
        #expect(try kvd.get("/get/" + String(repeating: "k", count: 64)).status == 404)
        // Escapes count after decoding: 64 bytes written as 192 characters.
        #expect(try kvd.get("/get/" + String(repeating: "%6B", count: 64)).status == 404)
    }

    @Test func oversizedRequestHeadIsRefusedAndTheServerKeepsServing() throws {
        let connection = try HTTPConnection(port: kvd.port)
        let response = try connection.request("GET", "/get/plain", headers: ["X-Padding": String(repeating: "p", count: 20_000)])
        #expect([414, 431].contains(response.status), "\(response.status)")
        #expect(try kvd.get("/get/plain").text == #""lpkrp""#)
    }

    @Test func valuesAreJSONEscapedExactlyAsPythonDid() throws {
        let value: [UInt8] = Array("q\"b\\s/n\nr\rt\tb\u{8}f\u{c}c\u{1}d\u{1f}e\u{7f}é€😀".utf8)
        _ = try redis.command(["-x", "HSET", "data", "escapes"], input: Data(value))
        let response = try kvd.get("/get/escapes")
        #expect(response.status == 200)
        #expect(response.text == #""q\"b\\s/n\nr\rt\tb\bf\fc\u0001d\u001fe"# + "\u{7f}é€😀\"")
    }

    @Test func invalidUTF8Answers406InJSONModeAndExactBytesInRawMode() throws {
        let value: [UInt8] = [0x61, 0xFF, 0x00, 0xC3, 0x28, 0x0A]
        _ = try redis.command(["-x", "HSET", "data", "binary"], input: Data(value))
        let json = try kvd.get("/get/binary")
        #expect(json.status == 406)
        #expect(json.text.contains("not valid UTF-8"))
        let byHeader = try kvd.get("/get/binary", headers: ["Accept": "application/octet-stream"])
        #expect(byHeader.status == 200)
        #expect(byHeader.header("Content-Type") == "application/octet-stream")
        #expect(byHeader.body == value)
        let byQuery = try kvd.get("/get/binary?format=raw")
        #expect(byQuery.body == value)
        // Raw mode works for any value, not only invalid UTF-8.
        #expect(try kvd.get("/get/plain?format=raw").text == "lpkrp")
    }

    @Test func emptyValueIsAnEmptyJSONString() throws {
        try redis.command(["HSET", "data", "empty", ""])
        let response = try kvd.get("/get/empty")
        #expect(response.status == 200)
        #expect(response.text == #""""#)
    }

    @Test func keepAliveServesManyRequestsOnOneConnection() throws {
        let connection = try HTTPConnection(port: kvd.port)
        for _ in 0..<200 {
            let response = try connection.request("GET", "/get/plain")
            #expect(response.status == 200)
            #expect(response.header("Connection")?.lowercased() != "close")
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let connection = try HTTPConnection(port: kvd.port)
        let targets = ["/get/plain", "/get/absent", "/healthz", "/get/a%2Fb%20c", "/nope", "/get/plain"]
        try connection.send(targets.map { "GET \($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        let bodies = try targets.map { _ in try connection.readResponse().text }
        #expect(bodies == [#""lpkrp""#, #"{"detail":"Key not found"}"#, #"{"status":"ok"}"#, #""slash""#,
                           #"{"detail":"Not Found"}"#, #""lpkrp""#])
    }

    @Test func http10IsAnsweredAndClosed() throws {
        let connection = try HTTPConnection(port: kvd.port)
        let response = try connection.request("GET", "/get/plain", version: "HTTP/1.0")
        #expect(response.status == 200)
        #expect(response.text == #""lpkrp""#)
        #expect(connection.isClosedByPeer())
    }

    @Test func http10KeepAliveIsHonoured() throws {
        let connection = try HTTPConnection(port: kvd.port)
        let first = try connection.request("GET", "/get/plain", headers: ["Connection": "keep-alive"], version: "HTTP/1.0")
        #expect(first.status == 200)
        let second = try connection.request("GET", "/get/plain", headers: ["Connection": "keep-alive"], version: "HTTP/1.0")
        #expect(second.text == #""lpkrp""#)
    }

    @Test func malformedRequestsGetAnErrorAndTheServerKeepsServing() throws {
        for garbage in ["GARBAGE\r\n\r\n", "GET /get/plain HTTP/9.9\r\n\r\n", "GET /get/plain HTTP/1.1\r\nNoColonHeader\r\n\r\n"] {
            let connection = try HTTPConnection(port: kvd.port)
            try connection.send(garbage)
            let response = try? connection.readResponse()
            #expect(response.map { $0.status >= 400 } ?? connection.isClosedByPeer(), "\(garbage)")
        }
        #expect(try kvd.get("/get/plain").status == 200)
    }

    @Test func concurrentClientsAllGetTheirOwnAnswers() async throws {
        let port = kvd.port
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for worker in 0..<16 {
                group.addTask {
                    let connection = try HTTPConnection(port: port)
                    for i in 0..<50 {
                        let useFound = (worker + i) % 2 == 0
                        let response = try connection.request("GET", useFound ? "/get/plain" : "/get/missing-\(worker)-\(i)")
                        if response.status != (useFound ? 200 : 404) { return false }
                    }
                    return true
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}
