import Foundation
@testable import KVDConfig
import Testing

@Suite("INI syntax")
struct INIFileTests {
    func entries(_ text: String) throws -> [String: String] {
        let file = try INIFile.parse(text, path: "t.conf")
        return Dictionary(file.entries.map { ("\($0.section).\($0.name)", $0.value) }, uniquingKeysWith: { $1 })
    }

    func problem(_ text: String) -> ConfigError? {
        do { _ = try INIFile.parse(text, path: "t.conf"); return nil } catch { return error }
    }

    @Test func bothInlineCommentFormsAreComments() throws {
        let values = try entries("[http]\nport = 8000 # note\nthreads = 2 ; note\nhost = a;b#c\n\tidle_timeout_s=5\t;x\n")
        #expect(values["http.port"] == "8000")
        #expect(values["http.threads"] == "2")
        #expect(values["http.host"] == "a;b#c")
        #expect(values["http.idle_timeout_s"] == "5")
    }

    @Test func quotedValuesKeepCommentCharactersAndSpaces() throws {
        let values = try entries(#"""
            [redis]
            password = "abc ;def # ghi "  ; the comment
            user = "say \"hi\" \\ bye"
            empty = ""
            """#)
        #expect(values["redis.password"] == "abc ;def # ghi ")
        #expect(values["redis.user"] == #"say "hi" \ bye"#)
        #expect(values["redis.empty"] == "")
    }

    @Test func commentLinesHeadingsCRLFAndBOM() throws {
        let file = try INIFile.parse("\u{FEFF}; c\r\n# c\r\n[ http ] ; c\r\nport: 9000\r\n\r\n[redis]\r\nhost=h\r\n", path: "t.conf")
        #expect(file.sections.map(\.name) == ["http", "redis"])
        #expect(file.sections.map(\.line) == [3, 6])
        #expect(file.entries == [
            INIEntry(section: "http", name: "port", value: "9000", line: 4),
            INIEntry(section: "redis", name: "host", value: "h", line: 7),
        ])
    }

    /// `port = 180<NUL>93` once read as 180: a NUL byte ends a C string.
    @Test func aNULByteIsRefusedNamingTheLine() {
        let error = problem("[http]\nport = 180\u{0}93\n")
        #expect(error?.line == 2)
        #expect(error?.message.contains("NUL") == true)
    }

    @Test(arguments: [
        ("[http\n", "closing ']'"),
        ("[http] port\n", "after the section heading"),
        ("port 8000\n", "not a valid INI line"),
        (" = 8000\n", "no name"),
        ("\u{FEFF}[ port = log ]\n".replacingOccurrences(of: "\u{FEFF}", with: "x\u{FEFF}"), "key name"),
        ("a b = 1\n", "key name"),
        ("a = \"open\n", "no closing quote"),
        ("a = \"x\" y\n", "after the closing quote"),
        ("a = \"\\n\"\n", "backslash"),
    ])
    func malformedLinesAreRefused(text: String, reason: String) {
        let error = problem(text)
        #expect(error?.line == 1)
        #expect(error?.message.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func aHugeFileIsRefused() throws {
        let path = "/tmp/kvd-ini-\(getpid()).conf"
        let text = "; " + String(repeating: "x", count: INIFile.maxFileBytes) + "\n"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        defer { unlink(path) }
        #expect(throws: ConfigError.self) { try INIFile.load(path: path) }
    }
}
