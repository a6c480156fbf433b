import KVBench
import KVDCore
import Testing

@Suite("kvbench: JSON string decoding")
struct JSONStringDecoderTests {
    func decode(_ literal: String) -> String? {
        var output: [UInt8] = []
        guard JSONStringDecoder.decode(ArraySlice(Array(literal.utf8)), into: &output) else { return nil }
        return String(decoding: output, as: UTF8.self)
    }

    @Test func plainAndEscaped() {
        #expect(decode(#""this is a value""#) == "this is a value")
        #expect(decode(#""""#) == "")
        #expect(decode(#""a\"b\\c\/d\b\f\n\r\t""#) == "a\"b\\c/d\u{8}\u{C}\n\r\t")
        #expect(decode(#""caf\u00e9 \u00E9""#) == "café é")
        #expect(decode(#""\ud83d\ude00""#) == "😀")
        #expect(decode("\"café 😀\"") == "café 😀")
    }

    @Test func malformedLiterals() {
        for literal in ["", "\"", "abc", "\"abc", "\"a\\x\"", "\"\\u12\"", "\"\\ud83d\"", "\"\\ude00\"", "\"a\u{1}b\"", "\"a\"b\""] {
            #expect(decode(literal) == nil, "\(literal)")
        }
    }

    @Test func decodesWhatKvdEncodes() {
        var random = SplitMix64(seed: 9)
        let samples: [[UInt8]] = (0..<500).map { _ in
            (0..<random.nextIndex(below: 40)).map { _ in UInt8(random.nextIndex(below: 128)) }
        } + [Array("naïve — ünïcödé 😀".utf8)]
        for value in samples {
            var literal: [UInt8] = []
            #expect(JSONString.encode(value, into: &literal))
            var decoded: [UInt8] = []
            #expect(JSONStringDecoder.decode(ArraySlice(literal), into: &decoded))
            #expect(decoded == value)
        }
    }
}
