// kvload's record framing (KVLoad.RecordReader), line mode and CSV's quote-aware mode. Properties: the
// records and their line numbers match a plain reference splitter, whatever the read sizes and however
// small the starting buffer (so the reader moves and grows it).
import FuzzSupport

func fuzzRecords(_ input: [UInt8]) {
    var random = InputRandom(input)
    let pieces = (0..<4).map { _ in 1 + random.next(below: 64) }
    let chunkBytes = 1 + random.next(below: 16)
    for quoteAware in [false, true] {
        let expected = referenceRecords(input, quoteAware: quoteAware)
        for (pieceSizes, chunk) in [([Int.max], input.count + 1), (pieces, chunkBytes)] {
            let found = readRecords(input, quoteAware: quoteAware, pieceSizes: pieceSizes, chunkBytes: chunk)
            check(found.map(\.bytes) == expected.map(\.bytes) && found.map(\.line) == expected.map(\.line),
                  "quoteAware \(quoteAware), pieces \(pieceSizes), buffer \(chunk): records \(found.map { describe($0.bytes) }) at lines \(found.map(\.line)), expected \(expected.map { describe($0.bytes) }) at \(expected.map(\.line)) in \(describe(input))")
        }
    }
}

/// The framing rules, written as simply as possible: a leading UTF-8 BOM is skipped; a record ends at
/// an LF (outside double quotes in quote-aware mode), one CR before it is dropped; the last record needs
/// no LF; a record's line is 1 + the LFs before it.
private func referenceRecords(_ input: [UInt8], quoteAware: Bool) -> [(bytes: [UInt8], line: Int)] {
    var bytes = input[...]
    if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { bytes = bytes.dropFirst(3) }
    var records: [(bytes: [UInt8], line: Int)] = []
    var current: [UInt8] = []
    var line = 1, startLine = 1
    var inQuotes = false
    for byte in bytes {
        if byte == 0x22 && quoteAware { inQuotes.toggle() }
        if byte == 0x0A {
            line += 1
            if !inQuotes {
                if current.last == 0x0D { current.removeLast() }
                records.append((current, startLine))
                current = []
                startLine = line
                continue
            }
        }
        current.append(byte)
    }
    if !current.isEmpty {
        if current.last == 0x0D { current.removeLast() }
        records.append((current, startLine))
    }
    return records
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzRecords(fuzzInput(data, size))
    return 0
}
