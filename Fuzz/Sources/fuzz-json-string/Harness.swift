// kvd's JSON string encoder and the decoder shared by kvbench and kvload (KVDCore.JSONString).
// Encoder: succeeds exactly for valid UTF-8; its output is valid UTF-8 with no raw control byte and
// decodes back to the input (through kvbench's strict decoder too). Decoder: never reads past the
// input; what it decodes, when valid UTF-8, survives encode → decode.
import FuzzSupport
import KVBench
import KVDCore

func fuzzJSONString(_ input: [UInt8]) {
    checkRoundTrip(input)

    for allowControlBytes in [false, true] {
        var decoded: [UInt8] = []
        guard let end = try? JSONString.decode(input[...], from: 0, into: &decoded, allowControlBytes: allowControlBytes) else { continue }
        check(end >= 2 && end <= input.count && input[end - 1] == UInt8(ascii: "\""), "decode ended at \(end) of \(input.count)")
        if !allowControlBytes {
            var strict: [UInt8] = []
            check(JSONStringDecoder.decode(input[..<end], into: &strict) && strict == decoded,
                  "kvbench's decoder disagrees on \(describe(input[..<end]))")
        }
        checkRoundTrip(decoded)
    }
}

/// encode(bytes) succeeds exactly when bytes are valid UTF-8, and then decodes back to them.
private func checkRoundTrip(_ bytes: [UInt8]) {
    var encoded: [UInt8] = [UInt8(ascii: "x")]
    let valid = String(validating: bytes, as: UTF8.self) != nil
    let ok = JSONString.encode(bytes, into: &encoded)
    check(ok == valid, "encode returned \(ok) for \(valid ? "valid" : "invalid") UTF-8 \(describe(bytes))")
    guard ok else {
        check(encoded == [UInt8(ascii: "x")], "a refused encode changed its output")
        return
    }
    let literal = encoded.dropFirst()
    check(String(validating: literal, as: UTF8.self) != nil, "encoded \(describe(bytes)) is not valid UTF-8")
    check(!literal.contains(where: { $0 < 0x20 }), "encoded \(describe(bytes)) holds a raw control byte")
    var decoded: [UInt8] = []
    check(JSONStringDecoder.decode(literal, into: &decoded) && decoded == bytes,
          "\(describe(bytes)) encoded as \(describe(literal)) decodes to \(describe(decoded))")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzJSONString(fuzzInput(data, size))
    return 0
}
