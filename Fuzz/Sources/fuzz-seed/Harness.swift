// kvload's seed format (`key value`, KVLoad.SeedParser) over its record framing. Properties: an
// accepted row's key has no space, and `key + " " + value` is the record exactly; that line, ended
// with CR LF (one CR is dropped, so a value may end in CR), parses back to the same row.
import FuzzSupport
import KVLoad

func fuzzSeed(_ input: [UInt8]) {
    var parser = SeedParser()
    parseRows(input, with: &parser) { record, row in
        check(!row.key.contains(0x20), "key \(describe(row.key)) holds a space")
        let line = row.key + [0x20] + row.value
        check(line == record, "row \(describe(row.key)) \(describe(row.value)) from \(describe(record))")
        checkParsesBack(line + [0x0D, 0x0A], with: SeedParser(), to: row, from: record)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzSeed(fuzzInput(data, size))
    return 0
}
