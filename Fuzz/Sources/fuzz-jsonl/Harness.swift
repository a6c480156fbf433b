// kvload's JSON Lines parser (KVLoad.JSONLinesParser) over its record framing. Property: an accepted
// row whose key and value are valid UTF-8, written back as `{"key":…,"value":…}` by kvd's encoder,
// parses back to the same row.
import FuzzSupport
import KVDCore
import KVLoad

func fuzzJSONLines(_ input: [UInt8]) {
    var parser = JSONLinesParser()
    parseRows(input, with: &parser) { record, row in
        var line = Array(#"{"key":"#.utf8)
        guard JSONString.encode(row.key, into: &line) else { return }
        line += Array(#","value":"#.utf8)
        guard JSONString.encode(row.value, into: &line) else { return }
        line.append(UInt8(ascii: "}"))
        checkParsesBack(line, with: JSONLinesParser(), to: row, from: record)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzJSONLines(fuzzInput(data, size))
    return 0
}
