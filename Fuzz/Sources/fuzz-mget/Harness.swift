// The body of POST /mget (KVDCore.JSONStringArray). Properties: an accepted body's strings, written
// back as a JSON array by kvd's own encoder, parse to the same strings; a limit one below the count
// is refused as too many, never as malformed; a body parsed with a limit either gives the same
// strings or is refused; the strings hold no byte a JSON string cannot carry unescaped-decoded wrongly
// (each decodes from its own encoding).
import FuzzSupport
import KVDCore

func fuzzMget(_ input: [UInt8]) {
    let parsed: [[UInt8]]
    do {
        parsed = try JSONStringArray.parse(input)
    } catch {
        // Whatever the whole body's fault, a limit can only change it into "too many".
        if case .malformed = error, let again = try? JSONStringArray.parse(input, maxElements: 1) {
            check(false, "a refused body parsed with a limit: \(again.count) strings from \(describe(input))")
        }
        return
    }
    // Written back: "[" + each string encoded + "]", with the encoder GET's answers use.
    var written: [UInt8] = [UInt8(ascii: "[")]
    var writable = true
    for (index, element) in parsed.enumerated() {
        if index > 0 { written.append(UInt8(ascii: ",")) }
        // A decoded string that is not UTF-8 (a lone surrogate escape) cannot be written back.
        if !JSONString.encode(element, into: &written) { writable = false; break }
    }
    written.append(UInt8(ascii: "]"))
    if writable {
        let again = try? JSONStringArray.parse(written)
        check(again == parsed, "\(describe(input)) parsed to \(parsed.count) strings, written back as \(describe(written)) reads \(again.map { "\($0.count) strings" } ?? "as an error")")
    }
    // Limits: at the count, the same strings; one below, "too many".
    check((try? JSONStringArray.parse(input, maxElements: parsed.count)) == parsed, "the limit at the count changed the answer")
    if !parsed.isEmpty {
        do {
            _ = try JSONStringArray.parse(input, maxElements: parsed.count - 1)
            check(false, "\(parsed.count) strings accepted with a limit of \(parsed.count - 1)")
        } catch {
            check(error == .tooMany(limit: parsed.count - 1), "a limit below the count gave \(error)")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzMget(fuzzInput(data, size))
    return 0
}
