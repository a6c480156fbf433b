// Percent-decoding and routing (KVDCore). The first byte picks the method and the key limit; the rest
// is the request path as sent. Properties: a lookup's key is exactly the decoded path, non-empty and
// within the limit; the key percent-encoded byte by byte routes to the same key; decoding output is
// the input less two bytes per escape.
import FuzzSupport
import KVDCore

private let methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "get", "OPTIONS", ""]
private let getPrefix = Array("/get/".utf8)
private let hex = Array("0123456789ABCDEF".utf8)

func fuzzRoute(_ input: [UInt8]) {
    guard let control = input.first else { return }
    let method = methods[Int(control & 7)]
    let router = Router(maxKeyBytes: 1 + Int(control >> 3) * 8)
    let path = Array(input.dropFirst())
    let wantsRaw = control & 0x80 != 0

    let decoded = PercentDecoding.decode(path[...])
    if let decoded {
        let escapes = path.count(where: { $0 == UInt8(ascii: "%") })
        check(decoded.count == path.count - 2 * escapes, "decoded \(describe(path)) to \(decoded.count) bytes")
    }

    let route = router.route(method: method, path: path, wantsRaw: wantsRaw)
    switch route {
    case .lookup(let key, let raw):
        check(method == "GET" || method == "HEAD", "\(method) routed to a lookup")
        check(path.starts(with: getPrefix), "lookup from \(describe(path))")
        check(raw == wantsRaw, "raw flag lost")
        check(!key.isEmpty && key.count <= router.maxKeyBytes, "key of \(key.count) bytes (limit \(router.maxKeyBytes))")
        check(PercentDecoding.decode(path[getPrefix.count...]) == key, "key is not the decoded path")
        var encoded = getPrefix
        for byte in key { encoded += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]] }
        check(router.route(method: method, path: encoded, wantsRaw: wantsRaw) == route,
              "the key percent-encoded routes elsewhere: \(describe(encoded))")
    case .reply(let fixed):
        if fixed == .badPercentEncoding {
            check(path.starts(with: getPrefix) && PercentDecoding.decode(path[getPrefix.count...]) == nil,
                  "bad percent-encoding reported for \(describe(path))")
        }
        _ = router.reply(fixed)
    case .batch:
        check(method == "POST", "\(method) routed to /mget's batch")
    case .readiness, .metrics:
        check(method == "GET" || method == "HEAD", "\(method) routed to \(route)")
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzRoute(fuzzInput(data, size))
    return 0
}
