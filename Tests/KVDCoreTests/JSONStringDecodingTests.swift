import KVDCore
import Testing

/// The shared JSON string decoder: where a literal ends, what it stands for, and why it fails.
@Suite struct JSONStringDecodingTests {
    func decode(_ text: String, from offset: Int = 0, allowControlBytes: Bool = false) -> (end: Int, bytes: [UInt8])? {
        let bytes = ArraySlice(Array(text.utf8))
        var output: [UInt8] = [0xFF]
        guard let end = try? JSONString.decode(bytes, from: offset, into: &output, allowControlBytes: allowControlBytes) else { return nil }
        return (end, output)
    }

    @Test func returnsTheIndexPastTheClosingQuote() {
        let decoded = decode(#"x"a\"b" tail"#, from: 1)
        #expect(decoded?.end == 7)
        #expect(decoded?.bytes == Array(#"a"b"#.utf8))
    }

    @Test func everyEscapeAndSurrogatePairsDecode() {
        #expect(decode(#""\b\f\n\r\t\/\\ \u00e9 \ud83d\ude00""#)?.bytes == Array("\u{8}\u{c}\n\r\t/\\ é 😀".utf8))
    }

    @Test func rawControlBytesOnlyWhenAllowed() {
        #expect(decode("\"a\tb\"") == nil)
        #expect(decode("\"a\tb\"", allowControlBytes: true)?.bytes == Array("a\tb".utf8))
    }

    @Test func failuresSayWhy() {
        func reason(_ text: String) -> String? {
            var output: [UInt8] = []
            do {
                _ = try JSONString.decode(ArraySlice(Array(text.utf8)), from: 0, into: &output, allowControlBytes: false)
                return nil
            } catch {
                return error.reason
            }
        }
        #expect(reason("abc") == "expected a JSON string")
        #expect(reason(#""abc"#) == "JSON string is not closed")
        #expect(reason(#""\q""#) == #"invalid escape '\q' in a JSON string"#)
        #expect(reason(#""\u12"#) == #"short \u escape"#)
        #expect(reason(#""\u12zz""#) == #"invalid \u escape"#)
        #expect(reason(#""\ud83d x""#) == #"unpaired UTF-16 surrogate in a \u escape"#)
        #expect(reason(#""\ude00""#) == #"unpaired UTF-16 surrogate in a \u escape"#)
    }
}
