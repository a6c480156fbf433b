/// Redis Cluster's key → hash slot function, as the cluster specification defines it:
/// CRC16-XMODEM (polynomial 0x1021, initial value 0) of the key, modulo 16384. When the key holds a
/// `{…}` with at least one byte between the first `{` and the next `}`, only those bytes are hashed.
public enum ClusterSlot {
    public static let count = 16384

    /// The slot of `key`.
    public static func of(_ key: some Collection<UInt8>) -> Int {
        if let open = key.firstIndex(of: UInt8(ascii: "{")) {
            let afterOpen = key.index(after: open)
            if let close = key[afterOpen...].firstIndex(of: UInt8(ascii: "}")), close != afterOpen {
                return Int(crc16(key[afterOpen..<close]) & 0x3fff)
            }
        }
        return Int(crc16(key) & 0x3fff)
    }

    /// CRC16-XMODEM (the variant the cluster specification names), table-driven.
    public static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for byte in bytes {
            crc = (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
        }
        return crc
    }

    private static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}
