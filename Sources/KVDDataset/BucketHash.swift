/// The hash that spreads keys over the buckets of the `buckets` layout.
///
/// Stable forever for a given name: kvd and kvload must choose the same bucket for a key, and a
/// dataset loaded today must be readable by every later kvd. The dataset descriptor records the
/// name, so a future function can be added under a new name without breaking old datasets.
public enum BucketHash: String, Sendable, CaseIterable {
    /// xxHash64 (seed 0) over the key's bytes, as its specification defines it: fast on keys of
    /// any length and with full avalanche, so every bit of the result depends on every input byte.
    /// (FNV-1a was tried first: its high bits barely depend on the last bytes, and sequential keys
    /// left buckets empty.)
    case xxh64 = "xxh64"

    /// The 64-bit hash of `key`'s bytes.
    @inlinable
    public func hash(_ key: some Collection<UInt8>) -> UInt64 {
        switch self {
        case .xxh64: return XXH64.hash(key)
        }
    }

    /// The bucket, in `0..<count`, that holds `key`: the high word of `hash × count`
    /// (Lemire's multiply-shift range reduction: no division, and the high bits of a good hash).
    @inlinable
    public func bucket(of key: some Collection<UInt8>, count: Int) -> Int {
        precondition(count > 0, "a dataset has at least one bucket")
        return Int(hash(key).multipliedFullWidth(by: UInt64(count)).high)
    }
}

/// xxHash64 with seed 0 (https://github.com/Cyan4973/xxHash, doc/xxhash_spec.md).
@usableFromInline
enum XXH64 {
    @usableFromInline static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    @usableFromInline static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    @usableFromInline static let prime3: UInt64 = 0x1656_67B1_9E37_79F9
    @usableFromInline static let prime4: UInt64 = 0x85EB_CA77_C2B2_AE63
    @usableFromInline static let prime5: UInt64 = 0x27D4_EB2F_1656_67C5

    @inlinable
    static func hash(_ key: some Collection<UInt8>) -> UInt64 {
        if let result = key.withContiguousStorageIfAvailable({ hash(UnsafeRawBufferPointer($0)) }) { return result }
        return Array(key).withUnsafeBytes { hash($0) }
    }

    @inlinable
    static func round(_ accumulator: UInt64, _ lane: UInt64) -> UInt64 {
        (accumulator &+ lane &* prime2).rotatedLeft(31) &* prime1
    }

    @inlinable
    static func merge(_ accumulator: UInt64, _ lane: UInt64) -> UInt64 {
        (accumulator ^ round(0, lane)) &* prime1 &+ prime4
    }

    @inlinable
    static func hash(_ bytes: UnsafeRawBufferPointer) -> UInt64 {
        let length = bytes.count
        var offset = 0
        var result: UInt64
        if length >= 32 {
            var v1 = prime1 &+ prime2, v2 = prime2, v3: UInt64 = 0, v4 = 0 &- prime1
            while offset + 32 <= length {
                v1 = round(v1, load64(bytes, offset))
                v2 = round(v2, load64(bytes, offset + 8))
                v3 = round(v3, load64(bytes, offset + 16))
                v4 = round(v4, load64(bytes, offset + 24))
                offset += 32
            }
            result = v1.rotatedLeft(1) &+ v2.rotatedLeft(7) &+ v3.rotatedLeft(12) &+ v4.rotatedLeft(18)
            result = merge(result, v1)
            result = merge(result, v2)
            result = merge(result, v3)
            result = merge(result, v4)
        } else {
            result = prime5
        }
        result &+= UInt64(length)
        while offset + 8 <= length {
            result ^= round(0, load64(bytes, offset))
            result = result.rotatedLeft(27) &* prime1 &+ prime4
            offset += 8
        }
        if offset + 4 <= length {
            result ^= UInt64(load32(bytes, offset)) &* prime1
            result = result.rotatedLeft(23) &* prime2 &+ prime3
            offset += 4
        }
        while offset < length {
            result ^= UInt64(bytes[offset]) &* prime5
            result = result.rotatedLeft(11) &* prime1
            offset += 1
        }
        result ^= result >> 33
        result = result &* prime2
        result ^= result >> 29
        result = result &* prime3
        result ^= result >> 32
        return result
    }

    @inlinable
    static func load64(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt64 {
        UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    @inlinable
    static func load32(_ bytes: UnsafeRawBufferPointer, _ offset: Int) -> UInt32 {
        UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }
}

extension UInt64 {
    @inlinable
    func rotatedLeft(_ count: UInt64) -> UInt64 { (self << count) | (self >> (64 - count)) }
}
