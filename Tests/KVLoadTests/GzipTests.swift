import Foundation
import KVLoad
import KVDTestSupport
import Testing

@Suite struct GzipSourceTests {
    @Test func decompressesConcatenatedMembersOnTheFly() throws {
        let directory = NSTemporaryDirectory() + "kvload-gzip-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let plain = (0..<20_000).map { "key\($0) value \($0)\n" }.joined()
        try plain.write(toFile: directory + "/a", atomically: true, encoding: .utf8)
        try "extra tail\n".write(toFile: directory + "/b", atomically: true, encoding: .utf8)
        let gzip = try ChildProcess.run("/bin/sh", ["-c", "cd \"$0\" && gzip -c a > data.gz && gzip -c b >> data.gz", directory])
        #expect(gzip.status == 0, "\(gzip.stderr)")
        var source = try openInput(path: directory + "/data.gz")
        var buffer = [UInt8](repeating: 0, count: 4096)
        var output: [UInt8] = []
        while true {
            let n = try source.read(into: &buffer, offset: 0, count: buffer.count)
            if n == 0 { break }
            output += buffer[..<n]
        }
        #expect(String(decoding: output, as: UTF8.self) == plain + "extra tail\n")
    }

    @Test func truncatedGzipIsAnError() throws {
        let directory = NSTemporaryDirectory() + "kvload-gzip-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/t.gz"
        // A gzip header and the start of a deflate stream, cut off.
        try Data([0x1F, 0x8B, 0x08, 0x00, 0, 0, 0, 0, 0, 0x03, 0x4B, 0x4C]).write(to: URL(fileURLWithPath: path))
        var source = try openInput(path: path)
        var buffer = [UInt8](repeating: 0, count: 64)
        #expect(throws: InputError.self) {
            while try source.read(into: &buffer, offset: 0, count: buffer.count) > 0 {}
        }
    }
}
