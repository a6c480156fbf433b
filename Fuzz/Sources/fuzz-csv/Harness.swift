// kvload's CSV parser (KVLoad.DelimitedParser) over its quote-aware record framing.
// See FuzzSupport.checkDelimited for the properties.
import FuzzSupport

func fuzzCSV(_ input: [UInt8]) {
    checkDelimited(input, delimiter: UInt8(ascii: ","))
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzCSV(fuzzInput(data, size))
    return 0
}
