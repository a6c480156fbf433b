import KVDCore

/// JSON Lines: one object per line, `{"key": "…", "value": "…"}` (field names configurable).
/// Both fields must be JSON strings; their escapes are decoded to UTF-8 bytes. Other fields are skipped.
/// With `scalarValues`, a value may also be a JSON number or boolean, stored as its JSON text (`42`, `true`).
public struct JSONLinesParser: RowParser {
    private let keyField: [UInt8]
    private let valueField: [UInt8]
    private let scalarValues: Bool
    private var name: [UInt8] = []
    private var scratch: [UInt8] = []

    public init(keyField: String = "key", valueField: String = "value", scalarValues: Bool = false) {
        self.keyField = Array(keyField.utf8)
        self.valueField = Array(valueField.utf8)
        self.scalarValues = scalarValues
    }

    public var quoteAware: Bool { false }

    public mutating func parse(_ record: ArraySlice<UInt8>, into row: inout Row) throws(RowError) -> ParseOutcome {
        var cursor = JSONCursor(bytes: record)
        cursor.skipSpace()
        guard cursor.take(0x7B) else { throw RowError(record.isEmpty ? "empty line" : "expected a JSON object") }
        var haveKey = false
        var haveValue = false
        cursor.skipSpace()
        if !cursor.take(0x7D) {
            while true {
                cursor.skipSpace()
                try cursor.string(into: &name)
                cursor.skipSpace()
                guard cursor.take(0x3A) else { throw RowError("expected ':' after a field name") }
                cursor.skipSpace()
                if name == valueField && scalarValues && cursor.peek != 0x22 {
                    let start = cursor.position
                    try cursor.skipValue(depth: 0)
                    let text = record[start..<cursor.position]
                    guard JSONScalar.isNumberOrBoolean(text) else {
                        throw RowError("field '\(String(decoding: name, as: UTF8.self))' must be a JSON string, number or boolean (--scalar-values)")
                    }
                    row.value.removeAll(keepingCapacity: true)
                    row.value.append(contentsOf: text)
                    haveValue = true
                } else if name == keyField || name == valueField {
                    let isKey = name == keyField
                    guard cursor.peek == 0x22 else {
                        throw RowError("field '\(String(decoding: name, as: UTF8.self))' must be a JSON string")
                    }
                    try cursor.string(into: &scratch)
                    if isKey { row.key.removeAll(keepingCapacity: true); row.key.append(contentsOf: scratch); haveKey = true }
                    else { row.value.removeAll(keepingCapacity: true); row.value.append(contentsOf: scratch); haveValue = true }
                } else {
                    try cursor.skipValue(depth: 0)
                }
                cursor.skipSpace()
                if cursor.take(0x2C) { continue }
                if cursor.take(0x7D) { break }
                throw RowError("expected ',' or '}' in the object")
            }
        }
        cursor.skipSpace()
        if !cursor.atEnd { throw RowError("unexpected text after the JSON object") }
        if !haveKey { throw RowError("no '\(String(decoding: keyField, as: UTF8.self))' field") }
        if !haveValue { throw RowError("no '\(String(decoding: valueField, as: UTF8.self))' field") }
        if row.key.isEmpty { throw RowError("empty key") }
        return .row
    }
}

/// JSON scalars kvload can store as their text.
enum JSONScalar {
    /// `true`, `false`, or a number as JSON's grammar writes it (`-0.5`, `12e3`; not `01`, `.5`, `+1`, `NaN`).
    static func isNumberOrBoolean(_ text: ArraySlice<UInt8>) -> Bool {
        if text.elementsEqual("true".utf8) || text.elementsEqual("false".utf8) { return true }
        var index = text.startIndex
        func digits() -> Int {
            let start = index
            while index < text.endIndex, (0x30...0x39).contains(text[index]) { index += 1 }
            return index - start
        }
        if index < text.endIndex && text[index] == 0x2D { index += 1 }
        let leading = index
        let whole = digits()
        if whole == 0 || (whole > 1 && text[leading] == 0x30) { return false }
        if index < text.endIndex && text[index] == 0x2E {
            index += 1
            if digits() == 0 { return false }
        }
        if index < text.endIndex && (text[index] == 0x65 || text[index] == 0x45) {
            index += 1
            if index < text.endIndex && (text[index] == 0x2B || text[index] == 0x2D) { index += 1 }
            if digits() == 0 { return false }
        }
        return index == text.endIndex
    }
}

/// A position in one line of JSON.
struct JSONCursor {
    let bytes: ArraySlice<UInt8>
    var position: Int

    init(bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    var atEnd: Bool { position >= bytes.endIndex }
    var peek: UInt8? { atEnd ? nil : bytes[position] }

    mutating func take(_ byte: UInt8) -> Bool {
        if peek == byte { position += 1; return true }
        return false
    }

    mutating func skipSpace() {
        while let byte = peek, byte == 0x20 || byte == 0x09 || byte == 0x0D || byte == 0x0A { position += 1 }
    }

    /// Decodes a JSON string at the cursor into `out` (UTF-8 bytes; raw bytes are kept as they are).
    mutating func string(into out: inout [UInt8]) throws(RowError) {
        do {
            position = try JSONString.decode(bytes, from: position, into: &out, allowControlBytes: true)
        } catch {
            throw RowError(error.reason)
        }
    }

    /// Skips any JSON value (fields that are neither key nor value).
    mutating func skipValue(depth: Int) throws(RowError) {
        guard depth < 64 else { throw RowError("JSON nested too deeply") }
        skipSpace()
        guard let byte = peek else { throw RowError("expected a JSON value") }
        switch byte {
        case 0x22:
            var ignored: [UInt8] = []
            try string(into: &ignored)
        case 0x7B, 0x5B:
            let close: UInt8 = byte == 0x7B ? 0x7D : 0x5D
            position += 1
            skipSpace()
            if take(close) { return }
            while true {
                if byte == 0x7B {
                    skipSpace()
                    var ignored: [UInt8] = []
                    try string(into: &ignored)
                    skipSpace()
                    guard take(0x3A) else { throw RowError("expected ':' after a field name") }
                }
                try skipValue(depth: depth + 1)
                skipSpace()
                if take(0x2C) { continue }
                if take(close) { return }
                throw RowError("malformed JSON array or object")
            }
        default:
            // A number, true, false or null: up to the next delimiter.
            let start = position
            while let next = peek, next != 0x2C, next != 0x7D, next != 0x5D, next != 0x20, next != 0x09 { position += 1 }
            if position == start { throw RowError("expected a JSON value") }
        }
    }
}
