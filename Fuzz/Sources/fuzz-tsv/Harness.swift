// kvload's TSV parser (KVLoad.DelimitedParser) over its quote-aware record framing.
// See FuzzSupport.checkDelimited for the properties.
import FuzzSupport

func fuzzTSV(_ input: [UInt8]) {
    checkDelimited(input, delimiter: 0x09)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzTSV(fuzzInput(data, size))
    return 0
}
