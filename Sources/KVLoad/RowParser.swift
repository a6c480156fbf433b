/// One parsed pair; the parser reuses its storage for every row.
public struct Row: Sendable {
    public var key: [UInt8] = []
    public var value: [UInt8] = []

    public init() {}

    mutating func set(key: ArraySlice<UInt8>, value: ArraySlice<UInt8>) {
        self.key.removeAll(keepingCapacity: true)
        self.key.append(contentsOf: key)
        self.value.removeAll(keepingCapacity: true)
        self.value.append(contentsOf: value)
    }
}

/// Why a row was refused; printed as `FILE:LINE: reason`.
public struct RowError: Error, Sendable, Equatable {
    public let reason: String
    /// The whole input is unusable (e.g. a header without the named column): stop, whatever `--max-errors` says.
    public let isFatal: Bool

    public init(_ reason: String, isFatal: Bool = false) {
        self.reason = reason
        self.isFatal = isFatal
    }
}

/// What a parser made of one record.
public enum ParseOutcome: Sendable, Equatable {
    /// `row` holds a pair.
    case row
    /// The record is a header and holds no pair.
    case header
}

/// Turns one record (a line, or a CSV record) into a key and a value, byte for byte.
public protocol RowParser {
    /// Whether an LF inside double quotes belongs to the record (CSV, TSV).
    var quoteAware: Bool { get }
    /// Parses `record` into `row`.
    /// - Throws: `RowError` with the reason the record is malformed.
    mutating func parse(_ record: ArraySlice<UInt8>, into row: inout Row) throws(RowError) -> ParseOutcome
}

/// The seed format: key, one space, value to the end of the line.
public struct SeedParser: RowParser {
    public init() {}

    public var quoteAware: Bool { false }

    public mutating func parse(_ record: ArraySlice<UInt8>, into row: inout Row) throws(RowError) -> ParseOutcome {
        guard let space = record.firstIndex(of: 0x20) else {
            if record.isEmpty { throw RowError("empty line") }
            if record.contains(0x09) {
                throw RowError("missing separator: no space after the key (the line holds a tab: for tab-separated data use --format tsv)")
            }
            throw RowError("missing separator: no space after the key")
        }
        let key = record[record.startIndex..<space]
        if key.isEmpty { throw RowError("empty key (the line starts with a space)") }
        row.set(key: key, value: record[(space + 1)...])
        return .row
    }
}

/// Key checks and safe printing of bytes in error messages.
public enum KeyRules {
    /// True for `xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx`, lower-case hex.
    public static func isUUIDv4(_ key: ArraySlice<UInt8>) -> Bool {
        guard key.count == 36 else { return false }
        for (offset, byte) in key.enumerated() {
            switch offset {
            case 8, 13, 18, 23:
                if byte != 0x2D { return false }
            case 14:
                if byte != 0x34 { return false }
            case 19:
                if !(byte == 0x38 || byte == 0x39 || byte == 0x61 || byte == 0x62) { return false }
            default:
                if !((0x30...0x39).contains(byte) || (0x61...0x66).contains(byte)) { return false }
            }
        }
        return true
    }

    /// The bytes as text for an error message: at most 60 bytes, invalid UTF-8 replaced.
    public static func printable(_ bytes: ArraySlice<UInt8>) -> String {
        let text = String(decoding: bytes.prefix(60), as: UTF8.self)
        return "'" + text + (bytes.count > 60 ? "…'" : "'")
    }
}

/// Where a CSV/TSV column is: its 1-based position or its header name.
public enum ColumnSelector: Sendable, Equatable {
    case index(Int)
    case name(String)

    /// `"3"` is the third column; anything else is a header name.
    public init(_ text: String) {
        if let number = Int(text), number >= 1 { self = .index(number) } else { self = .name(text) }
    }
}

/// CSV (`,`) or TSV (tab) with RFC 4180 quoting: `"a ""b"""` is `a "b"`; quoted fields may hold the
/// delimiter, quotes and line breaks.
public struct DelimitedParser: RowParser {
    public let delimiter: UInt8
    public let hasHeader: Bool
    private let keySelector: ColumnSelector
    private let valueSelector: ColumnSelector
    private var keyColumn: Int?
    private var valueColumn: Int?
    private var headerSeen = false
    private var field: [UInt8] = []

    /// - Throws: `RowError` when a column is named but there is no header.
    public init(delimiter: UInt8, hasHeader: Bool, key: ColumnSelector, value: ColumnSelector) throws(RowError) {
        self.delimiter = delimiter
        self.hasHeader = hasHeader
        keySelector = key
        valueSelector = value
        if case .index(let k) = key { keyColumn = k - 1 }
        if case .index(let v) = value { valueColumn = v - 1 }
        if !hasHeader && (keyColumn == nil || valueColumn == nil) {
            throw RowError("columns can be chosen by name only with --header")
        }
        if keyColumn != nil && keyColumn == valueColumn { throw RowError("the key and value columns are the same") }
    }

    public var quoteAware: Bool { true }

    public mutating func parse(_ record: ArraySlice<UInt8>, into row: inout Row) throws(RowError) -> ParseOutcome {
        if hasHeader && !headerSeen {
            headerSeen = true
            var names: [String] = []
            try forEachField(record) { _, bytes in names.append(String(decoding: bytes, as: UTF8.self)) }
            keyColumn = try resolve(keySelector, names)
            valueColumn = try resolve(valueSelector, names)
            if keyColumn == valueColumn { throw RowError("the key and value columns are the same", isFatal: true) }
            return .header
        }
        guard let keyIndex = keyColumn, let valueIndex = valueColumn else {
            throw RowError("the header did not name the key and value columns", isFatal: true)
        }
        var found = 0
        row.key.removeAll(keepingCapacity: true)
        row.value.removeAll(keepingCapacity: true)
        var count = 0
        try forEachField(record) { index, bytes in
            count = index + 1
            if index == keyIndex { row.key.append(contentsOf: bytes); found += 1 }
            if index == valueIndex { row.value.append(contentsOf: bytes); found += 1 }
        }
        if found < 2 {
            throw RowError("expected at least \(max(keyIndex, valueIndex) + 1) columns, found \(count)")
        }
        if row.key.isEmpty { throw RowError("empty key") }
        return .row
    }

    private func resolve(_ selector: ColumnSelector, _ names: [String]) throws(RowError) -> Int {
        switch selector {
        case .index(let number):
            return number - 1
        case .name(let name):
            guard let index = names.firstIndex(of: name) else {
                throw RowError("no column named '\(name)' in the header (columns: \(names.joined(separator: ", ")))", isFatal: true)
            }
            return index
        }
    }

    /// Calls `body` with each field's index and unquoted bytes.
    private mutating func forEachField(_ record: ArraySlice<UInt8>, _ body: (Int, ArraySlice<UInt8>) -> Void) throws(RowError) {
        var index = 0
        var position = record.startIndex
        let end = record.endIndex
        while true {
            if position < end && record[position] == 0x22 {
                field.removeAll(keepingCapacity: true)
                position += 1
                var closed = false
                while position < end {
                    let byte = record[position]
                    if byte == 0x22 {
                        if position + 1 < end && record[position + 1] == 0x22 {
                            field.append(0x22)
                            position += 2
                            continue
                        }
                        position += 1
                        closed = true
                        break
                    }
                    field.append(byte)
                    position += 1
                }
                if !closed { throw RowError("field \(index + 1): quoted field is not closed") }
                if position < end && record[position] != delimiter {
                    throw RowError("field \(index + 1): unexpected character after the closing quote")
                }
                body(index, field[...])
            } else {
                var stop = position
                while stop < end && record[stop] != delimiter {
                    if record[stop] == 0x22 { throw RowError("field \(index + 1): quote inside an unquoted field") }
                    stop += 1
                }
                body(index, record[position..<stop])
                position = stop
            }
            if position >= end { return }
            position += 1  // the delimiter
            index += 1
        }
    }
}
