// Redis Cluster pieces (KVDRedis): hash slots, node addresses, MOVED/ASK redirections. Properties: a
// key's slot is the CRC16 of its hash tag (the bytes between the first '{' and the first '}' after
// it, when not empty) or of the whole key, mod 16384, as a plain reference computes it; an address
// that parses prints as text that parses back to it; a redirection that parses has a slot below
// 16384 and names a node that prints back the same way.
import FuzzSupport
import KVDRedis

func fuzzCluster(_ input: [UInt8]) {
    let slot = ClusterSlot.of(input)
    check(slot == Int(ClusterSlot.crc16(referenceTag(input))) % 16384, "slot \(slot) of \(describe(input))")
    check(ClusterSlot.ofBytes(input[...]) == slot, "the slice form disagrees on \(describe(input))")

    let text = String(decoding: input, as: UTF8.self)
    if let address = NodeAddress(text) {
        check((1...65535).contains(address.port) && !address.host.isEmpty, "\(text) parsed to \(address)")
        check(NodeAddress(address.description) == address, "\(address) does not read back")
    }
    if let redirect = ClusterRedirect(errorText: text) {
        check((0..<ClusterSlot.count).contains(redirect.slot), "slot \(redirect.slot) from \(text)")
        check(NodeAddress(redirect.node.description) == redirect.node, "\(redirect.node) does not read back")
    }
}

/// The bytes a key's slot is computed from, as the cluster specification words it.
private func referenceTag(_ key: [UInt8]) -> ArraySlice<UInt8> {
    guard let open = key.firstIndex(of: UInt8(ascii: "{")),
          let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1 else { return key[...] }
    return key[(open + 1)..<close]
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzCluster(fuzzInput(data, size))
    return 0
}
