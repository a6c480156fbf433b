import KVDCore
import Testing

@Suite struct JSONStringTests {
    func encode(_ bytes: [UInt8]) -> String? {
        var output: [UInt8] = []
        return JSONString.encode(bytes, into: &output) ? String(decoding: output, as: UTF8.self) : nil
    }

    func encode(_ text: String) -> String? { encode(Array(text.utf8)) }

    @Test func plainTextIsQuoted() {
        #expect(encode("this is a value") == #""this is a value""#)
        #expect(encode("") == #""""#)
    }

    @Test func quoteAndBackslashAreEscaped() {
        #expect(encode(#"a"b\c"#) == #""a\"b\\c""#)
    }

    @Test func shortEscapesMatchPython() {
        #expect(encode("\u{8}\u{c}\n\r\t") == #""\b\f\n\r\t""#)
    }

    @Test func otherControlCharactersUseLowercaseUnicodeEscapes() {
        #expect(encode([0x00, 0x01, 0x1b, 0x1f]) == #""\u0000\u0001\u001b\u001f""#)
    }

    @Test func deleteSlashAndNonASCIIPassThrough() {
        #expect(encode("/\u{7f}é€😀\u{2028}") == "\"/\u{7f}é€😀\u{2028}\"")
    }

    @Test(arguments: [
        [0xFF], [0xC3], [0xC3, 0x28], [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80],
        [0xF4, 0x90, 0x80, 0x80], [0xF0, 0x9F, 0x98], [0x80], [0x61, 0xFE, 0x62],
    ] as [[UInt8]])
    func invalidUTF8IsRefusedAndLeavesTheOutputAlone(bytes: [UInt8]) {
        var output: [UInt8] = Array("prefix".utf8)
        #expect(!JSONString.encode(bytes, into: &output))
        #expect(output == Array("prefix".utf8))
    }

    @Test func appendsToExistingOutput() {
        var output: [UInt8] = Array("x".utf8)
        #expect(JSONString.encode(Array("y".utf8), into: &output))
        #expect(String(decoding: output, as: UTF8.self) == #"x"y""#)
    }
}
