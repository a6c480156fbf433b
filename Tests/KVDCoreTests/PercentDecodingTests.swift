import KVDCore
import Testing

@Suite struct PercentDecodingTests {
    /// The decoder as the definition reads: byte by byte.
    static func reference(_ encoded: [UInt8]) -> [UInt8]? {
        func hex(_ byte: UInt8) -> UInt8? {
            switch byte {
            case 0x30...0x39: byte - 0x30
            case 0x61...0x66: byte - 0x61 + 10
            case 0x41...0x46: byte - 0x41 + 10
            default: nil
            }
        }
        var output: [UInt8] = []
        var index = 0
        while index < encoded.count {
            guard encoded[index] == UInt8(ascii: "%") else {
                output.append(encoded[index])
                index += 1
                continue
            }
            guard index + 2 < encoded.count, let high = hex(encoded[index + 1]), let low = hex(encoded[index + 2]) else { return nil }
            output.append(high << 4 | low)
            index += 3
        }
        return output
    }

    func decode(_ text: String) -> [UInt8]? { PercentDecoding.decode(Array(text.utf8)[...]) }

    @Test func escapesAnywhereDecodeToTheirBytes() {
        #expect(decode("abc") == Array("abc".utf8))
        #expect(decode("") == [])
        #expect(decode("%41") == [0x41])
        #expect(decode("%41bc") == Array("Abc".utf8))
        #expect(decode("ab%43") == Array("abC".utf8))
        #expect(decode("%00%ff%FF%2f") == [0x00, 0xFF, 0xFF, 0x2F])
        #expect(decode("a+b%20c") == Array("a+b c".utf8))
        #expect(decode("%2541") == Array("%41".utf8), "decoded once, not twice")
    }

    @Test func aPercentWithoutTwoHexDigitsIsRefused() {
        for text in ["%", "%4", "%g0", "%0g", "a%2", "ab%", "%41%", "%41%4", "%%41"] {
            #expect(decode(text) == nil, "\(text)")
        }
    }

    /// A slice that does not start at index 0 (the router passes the part after `/get/`).
    @Test func aSliceIsDecodedFromItsOwnStart() {
        let path = Array("/get/a%2Fb".utf8)
        #expect(PercentDecoding.decode(path[5...]) == Array("a/b".utf8))
        #expect(PercentDecoding.decode(path[10...]) == [])
    }

    @Test func randomInputsDecodeAsTheReferenceDoes() {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array("%%%0123456789abcdefABCDEFgz+/ ".utf8) + [0x00, 0xFF]
        for _ in 0..<20_000 {
            let count = Int.random(in: 0...12, using: &generator)
            let input = (0..<count).map { _ in alphabet.randomElement(using: &generator)! }
            let offset = Int.random(in: 0...2, using: &generator)
            let padded = [UInt8](repeating: UInt8(ascii: "x"), count: offset) + input
            #expect(PercentDecoding.decode(padded[offset...]) == Self.reference(input), "\(input)")
        }
    }
}
