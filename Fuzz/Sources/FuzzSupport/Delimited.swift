import KVLoad

/// The CSV and TSV harnesses. The first byte picks the options (header or not, columns by number or by
/// name); the rest is the file. Property: every accepted row, written back as a two-column record with
/// both fields quoted (quotes doubled), parses back to the same key and value.
public func checkDelimited(_ input: [UInt8], delimiter: UInt8) {
    guard let control = input.first else { return }
    let hasHeader = control & 1 != 0
    let byName = hasHeader && control & 2 != 0
    let keyColumn = 1 + Int(control >> 2 & 3)
    let valueColumn = 1 + Int(control >> 4 & 3)
    let key: ColumnSelector = byName ? .name("key") : .index(keyColumn)
    let value: ColumnSelector = byName ? .name("value") : .index(valueColumn)
    guard var parser = try? DelimitedParser(delimiter: delimiter, hasHeader: hasHeader, key: key, value: value) else {
        check(!byName && keyColumn == valueColumn, "options refused: header \(hasHeader), key \(key), value \(value)")
        return
    }
    guard let plain = try? DelimitedParser(delimiter: delimiter, hasHeader: false, key: .index(1), value: .index(2)) else {
        check(false, "a two-column parser was refused")
        return
    }
    parseRows(Array(input.dropFirst()), with: &parser) { record, row in
        var line = quoted(row.key)
        line.append(delimiter)
        line += quoted(row.value)
        checkParsesBack(line, with: plain, to: row, from: record)
    }
}

private func quoted(_ field: [UInt8]) -> [UInt8] {
    var out: [UInt8] = [0x22]
    for byte in field {
        out.append(byte)
        if byte == 0x22 { out.append(0x22) }
    }
    out.append(0x22)
    return out
}
