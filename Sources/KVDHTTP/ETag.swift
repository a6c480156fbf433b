/// Entity tags for values (`[http] etag`): a 64-bit hash of the value's bytes, in hex, plus `-raw`
/// for the raw representation (the JSON and the raw answer of one value are different bodies,
/// so they need different tags).
///
/// The hash is not xxh64 (KVDDataset's bucket hash; KVDHTTP does not depend on that module) but a
/// cheaper one of the same kind: eight bytes per step (FxHash's rotate-xor-multiply) and
/// MurmurHash3's 64-bit finalizer for avalanche. A tag only has to change when the value
/// changes, and a chance collision between two versions of one key is
/// 2⁻⁶⁴. It is not meant to resist someone who chooses values to collide.
enum ETag {
    /// `"0123456789abcdef"` or `"0123456789abcdef-raw"`, quotes included (as the header carries it).
    static func make(_ value: [UInt8], raw: Bool) -> String {
        let hash = hash(value)
        // Built in one small-string initialisation: this runs once per value answer.
        return String(unsafeUninitializedCapacity: raw ? 22 : 18) { buffer in
            buffer[0] = UInt8(ascii: "\"")
            for index in 0..<16 {
                let nibble = UInt8(truncatingIfNeeded: hash >> UInt64(60 - 4 * index)) & 0xF
                buffer[index + 1] = nibble < 10 ? nibble + UInt8(ascii: "0") : nibble - 10 + UInt8(ascii: "a")
            }
            var end = 17
            if raw {
                for byte in "-raw".utf8 {
                    buffer[end] = byte
                    end += 1
                }
            }
            buffer[end] = UInt8(ascii: "\"")
            return end + 1
        }
    }

    static func hash(_ bytes: [UInt8]) -> UInt64 {
        bytes.withUnsafeBytes { buffer in
            var hash: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(buffer.count)
            var offset = 0
            while offset + 8 <= buffer.count {
                let word = UInt64(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                hash = (hash.rotatedLeft(5) ^ word) &* 0x517C_C1B7_2722_0A95
                offset += 8
            }
            if offset < buffer.count {
                var tail: UInt64 = 0
                for index in offset..<buffer.count { tail = tail << 8 | UInt64(buffer[index]) }
                hash = (hash.rotatedLeft(5) ^ tail) &* 0x517C_C1B7_2722_0A95
            }
            // MurmurHash3's fmix64.
            hash ^= hash >> 33
            hash &*= 0xFF51_AFD7_ED55_8CCD
            hash ^= hash >> 33
            hash &*= 0xC4CE_B9FE_1A85_EC53
            hash ^= hash >> 33
            return hash
        }
    }

    /// Whether an `If-None-Match` header names `tag`: `*`, or a comma-separated list compared
    /// weakly (a `W/` prefix is ignored), as RFC 9110 §13.1.2 says for GET and HEAD.
    static func matches(ifNoneMatch header: String, _ tag: String) -> Bool {
        for candidate in header.split(separator: ",") {
            var candidate = candidate.drop { $0 == " " || $0 == "\t" }
            while candidate.last == " " || candidate.last == "\t" { candidate = candidate.dropLast() }
            if candidate == "*" { return true }
            if candidate.hasPrefix("W/") { candidate = candidate.dropFirst(2) }
            if candidate == tag { return true }
        }
        return false
    }
}

private extension UInt64 {
    func rotatedLeft(_ count: UInt64) -> UInt64 { self << count | self >> (64 - count) }
}
