import KVLoad
import Testing

/// An in-memory byte source that hands out at most `chunk` bytes per read (to exercise refills).
final class MemorySource: ByteSource {
    private let bytes: [UInt8]
    private let chunk: Int
    private(set) var bytesConsumed = 0
    var totalBytes: Int? { bytes.count }

    init(_ bytes: [UInt8], chunk: Int = 3) {
        self.bytes = bytes
        self.chunk = chunk
    }

    func read(into buffer: inout [UInt8], offset: Int, count: Int) throws(InputError) -> Int {
        let n = min(count, chunk, bytes.count - bytesConsumed)
        for index in 0..<n { buffer[offset + index] = bytes[bytesConsumed + index] }
        bytesConsumed += n
        return n
    }
}

/// A parsed record: the pair (or the error reason) and its line.
struct Parsed: Equatable, CustomStringConvertible {
    var key: [UInt8]
    var value: [UInt8]
    var error: String?
    var line: Int

    static func pair(_ key: String, _ value: String, line: Int) -> Parsed {
        Parsed(key: Array(key.utf8), value: Array(value.utf8), error: nil, line: line)
    }

    static func failure(_ reason: String, line: Int) -> Parsed { Parsed(key: [], value: [], error: reason, line: line) }

    var description: String {
        if let error { return "\(line): error \(error)" }
        return "\(line): \(String(decoding: key, as: UTF8.self)) = \(String(decoding: value, as: UTF8.self))"
    }
}

func parseAll(_ input: [UInt8], _ parser: some RowParser, chunk: Int = 3, chunkBytes: Int = 4, maxRecordBytes: Int = 1 << 20) throws -> [Parsed] {
    var parser = parser
    var reader = RecordReader(source: MemorySource(input, chunk: chunk), quoteAware: parser.quoteAware,
                              chunkBytes: chunkBytes, maxRecordBytes: maxRecordBytes)
    var results: [Parsed] = []
    var row = Row()
    while let record = try reader.next() {
        do {
            if try parser.parse(reader.buffer[record.range], into: &row) == .row {
                results.append(Parsed(key: row.key, value: row.value, error: nil, line: record.line))
            }
        } catch {
            results.append(.failure(error.reason, line: record.line))
        }
    }
    return results
}

func parseAll(_ text: String, _ parser: some RowParser) throws -> [Parsed] { try parseAll(Array(text.utf8), parser) }

@Suite struct SeedParserTests {
    /// A tab-separated line in the seed format: the error says which format reads it.
    @Test func aTabSeparatedLineHintsAtTSV() throws {
        #expect(try parseAll("k1\tvalue\n", SeedParser()) == [
            .failure("missing separator: no space after the key (the line holds a tab: for tab-separated data use --format tsv)", line: 1),
        ])
    }

    @Test func keyOneSpaceValueToEndOfLine() throws {
        #expect(try parseAll("k1 this is a value\nk2 1234\n", SeedParser()) == [
            .pair("k1", "this is a value", line: 1), .pair("k2", "1234", line: 2),
        ])
    }

    @Test func crlfLineEndingsAreDropped() throws {
        #expect(try parseAll("k1 a\r\nk2 b\r\n", SeedParser()) == [.pair("k1", "a", line: 1), .pair("k2", "b", line: 2)])
    }

    @Test func emptyValueAndSpacesInValueAreKept() throws {
        #expect(try parseAll("k1 \nk2  two  spaces \n", SeedParser()) == [
            .pair("k1", "", line: 1), .pair("k2", " two  spaces ", line: 2),
        ])
    }

    @Test func missingSeparatorEmptyLineAndEmptyKeyAreErrorsWithLineNumbers() throws {
        #expect(try parseAll("k1 a\nnospace\n\n value\nk5 e\n", SeedParser()) == [
            .pair("k1", "a", line: 1),
            .failure("missing separator: no space after the key", line: 2),
            .failure("empty line", line: 3),
            .failure("empty key (the line starts with a space)", line: 4),
            .pair("k5", "e", line: 5),
        ])
    }

    @Test func noFinalNewline() throws {
        #expect(try parseAll("k1 a\nk2 last", SeedParser()) == [.pair("k1", "a", line: 1), .pair("k2", "last", line: 2)])
    }

    @Test func veryLongLinesAcrossManyRefills() throws {
        let long = String(repeating: "x", count: 200_000)
        #expect(try parseAll(Array("k1 \(long)\nk2 b\n".utf8), SeedParser(), chunk: 4096) == [
            .pair("k1", long, line: 1), .pair("k2", "b", line: 2),
        ])
    }

    @Test func lineOverTheLimitIsRefused() throws {
        let long = String(repeating: "x", count: 5000)
        let error = #expect(throws: RecordError.self) {
            try parseAll(Array("k1 \(long)\n".utf8), SeedParser(), chunk: 512, maxRecordBytes: 1024)
        }
        guard case .tooLong(let tooLong)? = error else {
            Issue.record("expected RecordError.tooLong, got \(String(describing: error))")
            return
        }
        #expect(tooLong == RecordTooLong(line: 1, limit: 1024))
    }

    @Test func invalidUTF8PassesThroughAsBytes() throws {
        let input: [UInt8] = Array("k1 ".utf8) + [0xFF, 0xFE, 0x00, 0xC3] + [0x0A]
        #expect(try parseAll(input, SeedParser()) == [Parsed(key: Array("k1".utf8), value: [0xFF, 0xFE, 0x00, 0xC3], error: nil, line: 1)])
    }

    @Test func utf8ByteOrderMarkAtTheStartIsSkipped() throws {
        let input: [UInt8] = [0xEF, 0xBB, 0xBF] + Array("k1 a\nk2 \u{FEFF}b\n".utf8)
        #expect(try parseAll(input, SeedParser()) == [.pair("k1", "a", line: 1), .pair("k2", "\u{FEFF}b", line: 2)])
    }

    @Test func uuidV4Check() {
        #expect(KeyRules.isUUIDv4(Array("3479d894-3271-4935-88cf-a06f3cbb80a5".utf8)[...]))
        #expect(!KeyRules.isUUIDv4(Array("3479D894-3271-4935-88cf-a06f3cbb80a5".utf8)[...]))
        #expect(!KeyRules.isUUIDv4(Array("3479d894-3271-1935-88cf-a06f3cbb80a5".utf8)[...]))
        #expect(!KeyRules.isUUIDv4(Array("3479d894-3271-4935-c8cf-a06f3cbb80a5".utf8)[...]))
        #expect(!KeyRules.isUUIDv4(Array("not-a-uuid".utf8)[...]))
    }
}

@Suite struct DelimitedParserTests {
    func csv(header: Bool = false, key: String = "1", value: String = "2") throws -> DelimitedParser {
        try DelimitedParser(delimiter: 0x2C, hasHeader: header, key: ColumnSelector(key), value: ColumnSelector(value))
    }

    @Test func quotingPerRFC4180() throws {
        let input = "k1,\"a, \"\"quoted\"\" value\"\n\"k,2\",plain\nk3,\"\"\n"
        #expect(try parseAll(input, csv()) == [
            .pair("k1", "a, \"quoted\" value", line: 1), .pair("k,2", "plain", line: 2), .pair("k3", "", line: 3),
        ])
    }

    @Test func quotedLineBreaksStayInTheValueAndLineNumbersFollow() throws {
        let input = "k1,\"line one\r\nline two\"\r\nk2,b\r\nk3\n"
        #expect(try parseAll(input, csv()) == [
            .pair("k1", "line one\r\nline two", line: 1), .pair("k2", "b", line: 3),
            .failure("expected at least 2 columns, found 1", line: 4),
        ])
    }

    @Test func headerSelectsColumnsByName() throws {
        let input = "name,id,extra\nalice,k1,x\nbob,k2,y"
        #expect(try parseAll(input, csv(header: true, key: "id", value: "name")) == [
            .pair("k1", "alice", line: 2), .pair("k2", "bob", line: 3),
        ])
    }

    @Test func unknownHeaderNameIsAnError() throws {
        let results = try parseAll("a,b\n1,2\n", csv(header: true, key: "id", value: "b"))
        #expect(results.first?.error?.hasPrefix("no column named 'id'") == true)
    }

    @Test func malformedQuotesAreErrors() throws {
        #expect(try parseAll("k1,\"open\nk2,b\"x\nk3,ab\"c\n", csv()) == [
            .failure("field 2: unexpected character after the closing quote", line: 1),
            .failure("field 2: quote inside an unquoted field", line: 3),
        ])
    }

    @Test func tsvUsesTabs() throws {
        let parser = try DelimitedParser(delimiter: 0x09, hasHeader: false, key: .index(2), value: .index(1))
        #expect(try parseAll("v1\tk1\n\"v\t2\"\tk2\n", parser) == [.pair("k1", "v1", line: 1), .pair("k2", "v\t2", line: 2)])
    }

    @Test func namesNeedAHeader() {
        #expect(throws: RowError.self) {
            try DelimitedParser(delimiter: 0x2C, hasHeader: false, key: .name("id"), value: .index(2))
        }
    }
}

@Suite struct JSONLinesParserTests {
    @Test func keyAndValueWithEscapes() throws {
        let input = #"{"key":"k1","value":"a \"b\" \u00e9 \ud83d\ude00 \n"}"# + "\n" + #" { "value" : "v2", "other": [1, {"x": null}], "key": "k2" } "#
        #expect(try parseAll(input, JSONLinesParser()) == [
            .pair("k1", "a \"b\" é 😀 \n", line: 1), .pair("k2", "v2", line: 2),
        ])
    }

    @Test func configurableFieldNames() throws {
        #expect(try parseAll(#"{"id":"k1","v":"x"}"#, JSONLinesParser(keyField: "id", valueField: "v")) == [.pair("k1", "x", line: 1)])
    }

    /// `--scalar-values`: numbers and booleans are stored as their JSON text, exactly as written.
    @Test func scalarValuesAreStoredAsTheirJSONText() throws {
        let input = #"""
            {"key":"n","value":42}
            {"value": -1.5e3 , "key":"f"}
            {"key":"t","value":true}
            {"key":"s","value":"text"}
            {"key":"z","value":null}
            {"key":"o","value":01}
            {"key":"a","value":[1]}
            {"key":42,"value":"v"}
            """#
        let bad = "field 'value' must be a JSON string, number or boolean (--scalar-values)"
        #expect(try parseAll(input, JSONLinesParser(scalarValues: true)) == [
            .pair("n", "42", line: 1), .pair("f", "-1.5e3", line: 2), .pair("t", "true", line: 3), .pair("s", "text", line: 4),
            .failure(bad, line: 5), .failure(bad, line: 6), .failure(bad, line: 7),
            .failure("field 'key' must be a JSON string", line: 8),
        ])
        #expect(try parseAll(#"{"key":"n","value":42}"#, JSONLinesParser()) == [.failure("field 'value' must be a JSON string", line: 1)])
    }

    @Test func errors() throws {
        let input = "{\"key\":\"k1\"}\n{\"key\":\"k2\",\"value\":3}\nnot json\n{\"key\":\"k4\",\"value\":\"v\"} x\n"
        #expect(try parseAll(input, JSONLinesParser()) == [
            .failure("no 'value' field", line: 1),
            .failure("field 'value' must be a JSON string", line: 2),
            .failure("expected a JSON object", line: 3),
            .failure("unexpected text after the JSON object", line: 4),
        ])
    }
}

@Suite struct CommandBatchTests {
    @Test func hashBatchIsOneHSET() {
        var batch = CommandBatch(mode: .hash(name: "data"))
        batch.add(key: Array("k1".utf8), value: Array("v 1".utf8))
        batch.add(key: Array("k2".utf8), value: [])
        batch.seal()
        #expect(String(decoding: batch.encoded, as: UTF8.self) == "*6\r\n$4\r\nHSET\r\n$4\r\ndata\r\n$2\r\nk1\r\n$3\r\nv 1\r\n$2\r\nk2\r\n$0\r\n\r\n")
        #expect(batch.expectedReplies == 1)
        #expect(batch.rows == 2)
    }

    @Test func stringsWithTTLAreOneSETPerRow() {
        var batch = CommandBatch(mode: .stringsWithTTL(prefix: "p:", seconds: 60))
        batch.add(key: Array("k".utf8), value: Array("v".utf8))
        batch.seal()
        #expect(String(decoding: batch.encoded, as: UTF8.self) == "*5\r\n$3\r\nSET\r\n$3\r\np:k\r\n$1\r\nv\r\n$2\r\nEX\r\n$2\r\n60\r\n")
        #expect(batch.expectedReplies == 1)
    }

    @Test func stringsAreOneMSET() {
        var batch = CommandBatch(mode: .strings(prefix: ""))
        for index in 0..<12 { batch.add(key: Array("k\(index)".utf8), value: Array("v".utf8)) }
        batch.seal()
        #expect(String(decoding: batch.encoded.prefix(21), as: UTF8.self) == "*25\r\n$4\r\nMSET\r\n$2\r\nk0")
    }
}

/// `-u`: the URIs redis-cli takes, and `unix://` sockets.
@Suite struct RedisURITests {
    @Test func redisURIs() throws {
        #expect(try RedisURI(parsing: "redis://10.0.0.5:6380/2") == RedisURI(host: "10.0.0.5", port: 6380, db: 2))
        #expect(try RedisURI(parsing: "redis://localhost") == RedisURI(host: "localhost"))
        #expect(try RedisURI(parsing: "redis://loader:p%40ss%3Aword@h:7000/0")
                == RedisURI(host: "h", port: 7000, db: 0, user: "loader", password: "p@ss:word"))
        #expect(try RedisURI(parsing: "redis://:secret@h") == RedisURI(host: "h", password: "secret"))
        #expect(try RedisURI(parsing: "redis://secret@h") == RedisURI(host: "h", password: "secret"))
        #expect(try RedisURI(parsing: "redis://[::1]:6390/3") == RedisURI(host: "::1", port: 6390, db: 3))
    }

    @Test func unixURIs() throws {
        #expect(try RedisURI(parsing: "unix:///run/redis/redis.sock") == RedisURI(socket: "/run/redis/redis.sock"))
        #expect(try RedisURI(parsing: "unix://u:pw@/tmp/r.sock?db=4") == RedisURI(socket: "/tmp/r.sock", db: 4, user: "u", password: "pw"))
    }

    @Test func refusals() {
        for text in ["rediss://h", "http://h", "redis://h:0", "redis://h:port", "redis://h/x", "redis://h?db=1",
                     "unix://relative.sock", "unix:///s?timeout=1", "redis://[::1", "redis://a:%zz@h"] {
            #expect(throws: RedisURI.Invalid.self, "\(text)") { try RedisURI(parsing: text) }
        }
    }
}
