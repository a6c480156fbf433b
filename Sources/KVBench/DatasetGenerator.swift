/// Rows in the seed format (`UUIDv4 VALUE\n`), values of lower-case words separated by single spaces,
/// like the seed's example file. The rows depend only on the seed and the value length range.
public struct DatasetGenerator: Sendable {
    /// Shortest and longest value, in bytes.
    public let valueLengths: ClosedRange<Int>
    private var random: SplitMix64

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
    /// The longest word; words are 1 to this many letters.
    private static let longestWord = 10

    /// - Precondition: `valueLengths.lowerBound >= 1`.
    public init(seed: UInt64, valueLengths: ClosedRange<Int> = 1...94) {
        precondition(valueLengths.lowerBound >= 1, "values are at least one byte")
        self.valueLengths = valueLengths
        random = SplitMix64(seed: seed)
    }

    /// Appends one row, newline included.
    public mutating func appendRow(to output: inout [UInt8]) {
        appendUUID(to: &output)
        output.append(UInt8(ascii: " "))
        appendValue(to: &output)
        output.append(UInt8(ascii: "\n"))
    }

    /// A random (version 4, RFC 4122 variant) UUID in lower-case hex, 36 bytes.
    public mutating func appendUUID(to output: inout [UInt8]) {
        var high = random.next()
        var low = random.next()
        high = (high & 0xFFFF_FFFF_FFFF_0FFF) | 0x0000_0000_0000_4000
        low = (low & 0x3FFF_FFFF_FFFF_FFFF) | 0x8000_0000_0000_0000
        appendHex(high >> 32, digits: 8, to: &output)
        output.append(UInt8(ascii: "-"))
        appendHex(high >> 16, digits: 4, to: &output)
        output.append(UInt8(ascii: "-"))
        appendHex(high, digits: 4, to: &output)
        output.append(UInt8(ascii: "-"))
        appendHex(low >> 48, digits: 4, to: &output)
        output.append(UInt8(ascii: "-"))
        appendHex(low, digits: 12, to: &output)
    }

    @inline(__always)
    private func appendHex(_ value: UInt64, digits: Int, to output: inout [UInt8]) {
        var shift = (digits - 1) * 4
        while shift >= 0 {
            output.append(Self.hexDigits[Int((value >> UInt64(shift)) & 0xF)])
            shift -= 4
        }
    }

    /// Words of 1...10 letters separated by one space; never starts or ends with a space.
    private mutating func appendValue(to output: inout [UInt8]) {
        let length = valueLengths.lowerBound + random.nextIndex(below: valueLengths.count)
        var remaining = length
        var bits = random.next()
        var bitsLeft = 64
        while remaining > 0 {
            if remaining != length {
                // A space only when at least one letter can follow it.
                if remaining == 1 { appendLetter(&bits, &bitsLeft, to: &output); remaining -= 1; break }
                output.append(UInt8(ascii: " "))
                remaining -= 1
            }
            let word = min(remaining, 1 + random.nextIndex(below: Self.longestWord))
            for _ in 0..<word { appendLetter(&bits, &bitsLeft, to: &output) }
            remaining -= word
        }
    }

    /// One letter from 32 random bits (multiply-shift into 0..<26).
    @inline(__always)
    private mutating func appendLetter(_ bits: inout UInt64, _ bitsLeft: inout Int, to output: inout [UInt8]) {
        if bitsLeft < 32 { bits = random.next(); bitsLeft = 64 }
        let letter = ((bits & 0xFFFF_FFFF) &* 26) >> 32
        bits >>= 32
        bitsLeft -= 32
        output.append(UInt8(ascii: "a") + UInt8(letter))
    }
}
