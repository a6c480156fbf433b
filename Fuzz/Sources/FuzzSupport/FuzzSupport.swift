import CFuzzerDriver
import KVLoad

#if canImport(Glibc)
import Glibc
#endif

/// Stops the run with `message` when a property does not hold: libFuzzer reports the abort as a
/// crash and saves the input that caused it.
public func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String) {
    if condition() { return }
    let text = Array("fuzz property failed: \(message())\n".utf8)
    _ = text.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
    abort()
}

/// Runs libFuzzer's driver with the process's arguments, calling the harness's `LLVMFuzzerTestOneInput`
/// (a `@_cdecl` function of the executable) for every input; never returns.
public func runFuzzer() -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, LLVMFuzzerTestOneInput))
}

/// The bytes libFuzzer hands to the harness.
public func fuzzInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> [UInt8] {
    guard let data else { return [] }
    return Array(UnsafeBufferPointer(start: data, count: size))
}

/// Bytes as text for a failure message: printable ASCII as is, everything else as \xNN.
public func describe(_ bytes: some Sequence<UInt8>) -> String {
    var text = ""
    for byte in bytes {
        if byte >= 0x20 && byte < 0x7F && byte != UInt8(ascii: "\\") {
            text.append(Character(UnicodeScalar(byte)))
        } else {
            text += "\\x" + String(byte, radix: 16).leftPadded(to: 2)
        }
    }
    return "\"" + text + "\""
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// Input held in memory, handed out in pieces whose sizes follow `pieceSizes` (cycled), so that
/// readers see records cut at every kind of place.
public struct MemorySource: ByteSource {
    private let bytes: [UInt8]
    private let pieceSizes: [Int]
    private var offset = 0
    private var reads = 0

    public init(_ bytes: [UInt8], pieceSizes: [Int] = [Int.max]) {
        self.bytes = bytes
        self.pieceSizes = pieceSizes.isEmpty ? [Int.max] : pieceSizes.map { max(1, $0) }
    }

    public var bytesConsumed: Int { offset }
    public var totalBytes: Int? { bytes.count }

    public mutating func read(into buffer: inout [UInt8], offset target: Int, count: Int) throws(InputError) -> Int {
        let n = min(count, bytes.count - offset, pieceSizes[reads % pieceSizes.count])
        reads += 1
        for index in 0..<n { buffer[target + index] = bytes[offset + index] }
        offset += n
        return n
    }
}

/// Every record `RecordReader` finds in `bytes`, with its line, read in pieces of `pieceSizes`
/// through a small buffer (so the reader moves and grows it).
public func readRecords(_ bytes: [UInt8], quoteAware: Bool, pieceSizes: [Int] = [Int.max],
                        chunkBytes: Int = 512) -> [(bytes: [UInt8], line: Int)] {
    var reader = RecordReader(source: MemorySource(bytes, pieceSizes: pieceSizes), quoteAware: quoteAware,
                              chunkBytes: chunkBytes, maxRecordBytes: 1 << 30)
    var records: [(bytes: [UInt8], line: Int)] = []
    do {
        while let record = try reader.next() {
            records.append((Array(reader.buffer[record.range]), record.line))
        }
    } catch {
        check(false, "RecordReader threw \(error) on input held in memory")
    }
    return records
}

/// Parses every record of `bytes` with `parser`, calling `accepted` with each record that gave a row.
/// A fatal `RowError` ends the input, as it ends kvload.
public func parseRows<Parser: RowParser>(_ bytes: [UInt8], with parser: inout Parser,
                                         accepted: (_ record: [UInt8], _ row: Row) -> Void) {
    var row = Row()
    for record in readRecords(bytes, quoteAware: parser.quoteAware) {
        do {
            if try parser.parse(record.bytes[...], into: &row) == .row {
                check(!row.key.isEmpty, "accepted a row with an empty key from \(describe(record.bytes))")
                accepted(record.bytes, row)
            }
        } catch {
            if error.isFatal { return }
        }
    }
}

/// Parses `bytes` (one whole input) with a fresh copy of `parser` and returns its rows.
public func rows<Parser: RowParser>(_ bytes: [UInt8], with parser: Parser) -> [Row] {
    var copy = parser
    var found: [Row] = []
    parseRows(bytes, with: &copy) { _, row in found.append(row) }
    return found
}

/// Checks that `line`, written back from the row `record` gave, parses with a fresh `parser` to that row alone.
public func checkParsesBack<Parser: RowParser>(_ line: [UInt8], with parser: Parser, to row: Row, from record: [UInt8]) {
    let again = rows(line, with: parser)
    check(again.count == 1 && again[0].key == row.key && again[0].value == row.value,
          "row \(describe(row.key)) \(describe(row.value)) from \(describe(record)), written back as \(describe(line)), parses as \(again.map { (describe($0.key), describe($0.value)) })")
}

/// A small deterministic generator, seeded from the input, for choices a harness makes.
public struct InputRandom {
    private var state: UInt64

    public init(_ bytes: [UInt8]) {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        state = hash
    }

    public mutating func next(below bound: Int) -> Int {
        state = state &+ 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return Int((z ^ (z >> 31)) % UInt64(max(1, bound)))
    }
}
