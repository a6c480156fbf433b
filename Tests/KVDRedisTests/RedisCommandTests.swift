@testable import KVDRedis
import Testing

/// RedisCommand builds the exact RESP bytes Redis expects, binary-safe, and is reusable.
@Suite struct RedisCommandTests {
    func encoded(_ command: RedisCommand) -> [UInt8] {
        var out: [UInt8] = []
        command.appendHeader(to: &out)
        return out + command.arguments
    }

    @Test func encodesArgumentsWithTheirLengths() {
        var command = RedisCommand(["HGET", "data"])
        command.add(Array("3479d894-3271-4935-88cf-a06f3cbb80a5".utf8))
        #expect(String(decoding: encoded(command), as: UTF8.self)
            == "*3\r\n$4\r\nHGET\r\n$4\r\ndata\r\n$36\r\n3479d894-3271-4935-88cf-a06f3cbb80a5\r\n")
        #expect(command.argumentCount == 3)
    }

    @Test func bytesAreCarriedUnchangedWhateverTheyAre() {
        var command = RedisCommand()
        let binary: [UInt8] = [0x00, 0x0D, 0x0A, 0xFF, 0x24, 0x2A]
        command.add(binary)
        command.add("")
        #expect(encoded(command) == Array("*2\r\n$6\r\n".utf8) + binary + Array("\r\n$0\r\n\r\n".utf8))
    }

    @Test func lengthsOfManyDigitsAndIntegers() {
        var command = RedisCommand()
        command.add([UInt8](repeating: 0x61, count: 1234))
        command.add(10)
        command.add(0)
        let text = String(decoding: encoded(command), as: UTF8.self)
        #expect(text.hasPrefix("*3\r\n$1234\r\naaa"))
        #expect(text.hasSuffix("\r\n$2\r\n10\r\n$1\r\n0\r\n"))
    }

    @Test func removeAllMakesItReusable() {
        var command = RedisCommand(["SET", "k", "v"])
        command.removeAll()
        command.add("PING")
        #expect(String(decoding: encoded(command), as: UTF8.self) == "*1\r\n$4\r\nPING\r\n")
    }
}
