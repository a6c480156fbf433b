extension ClusterSlot {
    /// `of(_:)` for byte arrays and slices, compiled for them here: called from another module,
    /// the generic `of(_:)` walks the bytes through unspecialised generic code (kvload computes a
    /// slot per row, and spent a fifth of its time there).
    public static func ofBytes(_ key: ArraySlice<UInt8>) -> Int { of(key) }

    public static func ofBytes(_ key: [UInt8]) -> Int { of(key) }
}
