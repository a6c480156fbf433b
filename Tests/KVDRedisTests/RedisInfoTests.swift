import KVDRedis
import Testing

@Suite("INFO text fields")
struct RedisInfoTests {
    /// Redis ends INFO lines with CRLF: a Character-based split on "\r" or "\n" finds none of them.
    @Test func fieldsOfCRLFText() {
        let text = Array("# Server\r\nredis_version:7.0.15\r\nrun_id:0123abcd\r\ntcp_port:6379\r\n".utf8)
        #expect(RedisInfo.value(of: "run_id", in: text) == "0123abcd")
        #expect(RedisInfo.value(of: "tcp_port", in: text) == "6379")
        #expect(RedisInfo.value(of: "redis_version", in: text) == "7.0.15")
    }

    @Test func missingFieldAndPrefixOfAnotherName() {
        let text = Array("run_id_extra:x\r\nrun:y\nrun_id:z".utf8)
        #expect(RedisInfo.value(of: "run_id", in: text) == "z")
        #expect(RedisInfo.value(of: "absent", in: text) == nil)
        #expect(RedisInfo.value(of: "run_id", in: [UInt8]()) == nil)
    }
}
