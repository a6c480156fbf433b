
/// One record's place in the reader's buffer and the line it starts on.
public struct RecordLocation: Sendable {
    /// The record's bytes in `RecordReader.buffer`, without its line ending.
    public var range: Range<Int>
    /// The 1-based line number the record starts on.
    public var line: Int
}

/// A record longer than the limit: the input is refused rather than buffered without bound.
public struct RecordTooLong: Error, Sendable, Equatable {
    /// The line the record starts on.
    public let line: Int
    /// `maxRecordBytes`.
    public let limit: Int

    public init(line: Int, limit: Int) {
        self.line = line
        self.limit = limit
    }
}

/// Why `RecordReader.next()` gave no record.
public enum RecordError: Error, Sendable {
    /// The input could not be read (or its gzip data is corrupt).
    case input(InputError)
    /// A record is longer than `maxRecordBytes`.
    case tooLong(RecordTooLong)
}

/// Splits a byte stream into records, in constant memory: a record ends at LF (a CR before it is dropped).
///
/// With `quoteAware` (CSV, TSV) an LF inside a double-quoted field does not end the record.
/// A UTF-8 byte-order mark at the start of the input is skipped. The last record needs no final newline.
public struct RecordReader {
    private var source: any ByteSource
    /// The bytes read and not yet consumed; records are ranges into it.
    public private(set) var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var sourceEnded = false
    private var nextLine = 1
    private var atStart = true
    private let quoteAware: Bool
    private let maxRecordBytes: Int

    /// - Parameters:
    ///   - chunkBytes: how much is read at a time.
    ///   - maxRecordBytes: the longest record accepted (the buffer never grows past it plus a chunk).
    public init(source: any ByteSource, quoteAware: Bool, chunkBytes: Int = 1 << 20, maxRecordBytes: Int = 64 << 20) {
        self.source = source
        self.quoteAware = quoteAware
        self.maxRecordBytes = maxRecordBytes
        buffer = [UInt8](repeating: 0, count: chunkBytes)
    }

    /// Bytes of the underlying file consumed so far.
    public var bytesConsumed: Int { source.bytesConsumed }

    /// The next record, or nil at the end of the input.
    /// - Throws: `RecordError.input` when reading fails, `.tooLong` past `maxRecordBytes`.
    public mutating func next() throws(RecordError) -> RecordLocation? {
        var scan = start
        var inQuotes = false
        var newlines = 0
        while true {
            if atStart {
                if end - start < 3 && !sourceEnded { try fill(); continue }
                if end - start >= 3 && buffer[start] == 0xEF && buffer[start + 1] == 0xBB && buffer[start + 2] == 0xBF {
                    start += 3
                    scan = start
                }
                atStart = false
            }
            if let newline = findRecordEnd(from: &scan, inQuotes: &inQuotes, newlines: &newlines) {
                var stop = newline
                if stop > start && buffer[stop - 1] == 0x0D { stop -= 1 }
                let record = RecordLocation(range: start..<stop, line: nextLine)
                nextLine += newlines + 1
                start = newline + 1
                return record
            }
            if sourceEnded {
                if start == end { return nil }
                var stop = end
                if buffer[stop - 1] == 0x0D { stop -= 1 }
                let record = RecordLocation(range: start..<stop, line: nextLine)
                nextLine += newlines
                start = end
                return record
            }
            if end - start >= maxRecordBytes { throw .tooLong(RecordTooLong(line: nextLine, limit: maxRecordBytes)) }
            let consumed = start
            try fill()
            scan -= consumed
        }
    }

    private func findRecordEnd(from scan: inout Int, inQuotes: inout Bool, newlines: inout Int) -> Int? {
        if !quoteAware {
            if let index = buffer[scan..<end].firstIndex(of: 0x0A) { return index }
            scan = end
            return nil
        }
        while scan < end {
            let byte = buffer[scan]
            if byte == 0x22 {
                inQuotes.toggle()
            } else if byte == 0x0A {
                if !inQuotes { return scan }
                newlines += 1
            }
            scan += 1
        }
        return nil
    }

    /// Moves the unconsumed bytes to the front (growing the buffer when they fill it) and reads more.
    private mutating func fill() throws(RecordError) {
        if start > 0 {
            let pending = end - start
            for index in 0..<pending { buffer[index] = buffer[start + index] }
            start = 0
            end = pending
        }
        if end == buffer.count {
            buffer.append(contentsOf: repeatElement(0, count: buffer.count))
        }
        let n: Int
        do {
            n = try source.read(into: &buffer, offset: end, count: buffer.count - end)
        } catch {
            throw .input(error)
        }
        if n == 0 { sourceEnded = true }
        end += n
    }
}
