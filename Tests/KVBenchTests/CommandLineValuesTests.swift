import KVBench
import Testing

@Suite("kvbench: --url and --duration values")
struct CommandLineValuesTests {
    @Test func urls() {
        #expect(ServerURL("http://127.0.0.1:8000") == ServerURL("http://127.0.0.1:8000/"))
        let plain = ServerURL("http://127.0.0.1:8000")
        #expect(plain?.host == "127.0.0.1" && plain?.port == 8000)
        #expect(plain?.hostHeader == "127.0.0.1:8000" && plain?.pathPrefix == "/get/")
        let prefixed = ServerURL("http://kv.example/api/v1//")
        #expect(prefixed?.port == 80 && prefixed?.pathPrefix == "/api/v1/get/")
        let ipv6 = ServerURL("http://[::1]:8000")
        #expect(ipv6?.host == "::1" && ipv6?.hostHeader == "[::1]:8000")
        for bad in ["https://127.0.0.1", "127.0.0.1:8000", "http://", "ftp://x", ""] {
            #expect(ServerURL(bad) == nil, "\(bad)")
        }
    }

    @Test func runLengths() {
        #expect(RunLength(parsing: "10")?.seconds == 10)
        #expect(RunLength(parsing: "2.5s")?.seconds == 2.5)
        #expect(RunLength(parsing: "500ms")?.seconds == 0.5)
        #expect(RunLength(parsing: "2m")?.seconds == 120)
        for bad in ["", "0", "-1", "s", "10h", "abc", "inf"] {
            #expect(RunLength(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func byteRanges() {
        #expect(ByteRange(parsing: "1-94") == ByteRange(1...94))
        #expect(ByteRange(parsing: "7") == ByteRange(7...7))
        for bad in ["", "0-5", "5-4", "-3", "1-", "a-b", "1-2-3"] {
            #expect(ByteRange(parsing: bad) == nil, "\(bad)")
        }
    }
}
