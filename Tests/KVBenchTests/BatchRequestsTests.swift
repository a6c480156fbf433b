import KVBench
import Testing

@Suite("kvbench: --batch request bodies and answers")
struct BatchRequestsTests {
    func decode(_ text: String) -> [String?]? {
        var values: [[UInt8]?] = [[1]]
        guard MgetResponseDecoder.decode(Array(text.utf8)[...], into: &values) else { return nil }
        return values.map { $0.map { String(decoding: $0, as: UTF8.self) } }
    }

    @Test func keysBecomeJSONStringLiterals() throws {
        let keys = try KeySet(parsing: Array("plain 1\nwith\"quote 2\ncafé 3\n".utf8), name: "keys.txt")
        let literals = try JSONKeyLiterals(keys, name: "keys.txt")
        #expect(Array(literals.literal(0)) == Array(#""plain""#.utf8))
        #expect(Array(literals.literal(1)) == Array(#""with\"quote""#.utf8))
        #expect(Array(literals.literal(2)) == Array(#""café""#.utf8))
    }

    @Test func aKeyThatIsNotUTF8IsRefused() throws {
        let keys = try KeySet(parsing: [0x61, 0x0A, 0xFF, 0x0A], name: "keys.txt")
        #expect(throws: KeyFileError.self) { try JSONKeyLiterals(keys, name: "keys.txt") }
    }

    @Test func answersDecodeToValuesAndNulls() {
        #expect(decode("[]") == [])
        #expect(decode(" [ ] ") == [])
        #expect(decode(#"["a",null,"\u00e9\n", "b" ]"#) == ["a", nil, "é\n", "b"])
        #expect(decode("[null]") == [nil])
    }

    @Test func malformedAnswersAreRefused() {
        for text in ["", "[", #"["a""#, #"["a",]"#, "[nul]", "[1]", #"["a"] x"#, #"{"detail":"x"}"#, #"["a" "b"]"#] {
            #expect(decode(text) == nil, "\(text)")
        }
    }
}
