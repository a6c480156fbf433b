import KVBench
import Testing

@Suite("kvbench: key files")
struct KeySetTests {
    func keys(_ text: String) throws -> KeySet { try KeySet(parsing: Array(text.utf8), name: "keys.txt") }

    @Test func seedFormatGivesKeysAndValuesWithSpaces() throws {
        let set = try keys("3479d894-3271-4935-88cf-a06f3cbb80a5 this is a value\nf8a24bb8-eff8-41dc-929b-10b4c3e49e05 1234\n")
        #expect(set.count == 2)
        #expect(set.hasAllValues)
        #expect(String(decoding: set.key(0), as: UTF8.self) == "3479d894-3271-4935-88cf-a06f3cbb80a5")
        #expect(set.value(0).map { String(decoding: $0, as: UTF8.self) } == "this is a value")
        #expect(set.value(1).map { String(decoding: $0, as: UTF8.self) } == "1234")
    }

    @Test func oneKeyPerLineHasNoValues() throws {
        let set = try keys("alpha\nbeta")
        #expect(set.count == 2)
        #expect(!set.hasAllValues)
        #expect(set.value(1) == nil)
        #expect(String(decoding: set.key(1), as: UTF8.self) == "beta")
    }

    @Test func emptyValueCRLFAndBlankLines() throws {
        let set = try keys("a \r\n\nb x y \r\n")
        #expect(set.count == 2)
        #expect(set.value(0)?.isEmpty == true)
        #expect(set.value(1).map { String(decoding: $0, as: UTF8.self) } == "x y ")
    }

    func error(_ text: String) -> String? {
        do {
            _ = try keys(text)
            return nil
        } catch {
            return (error as? KeyFileError)?.description
        }
    }

    @Test func lineStartingWithSpaceIsAnErrorNamingTheLine() {
        #expect(error("a 1\nb 2\n c\n") == "keys.txt:3: line starts with a space: no key")
    }

    @Test func emptyFileIsAnError() {
        #expect(error("\n\n") == "keys.txt: no keys in the file")
    }
}
