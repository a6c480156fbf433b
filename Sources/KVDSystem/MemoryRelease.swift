#if canImport(Glibc)
import Glibc
#endif

/// How the C allocator gives memory back to the system.
public enum MemoryRelease {
    /// Serves every allocation of `bytes` or more straight from mmap, so that it goes back to the
    /// system when freed. glibc's default threshold (128 KiB) rises to the size of each such block
    /// freed, up to 32 MiB: after one big value, later big values come from the heap and stay in
    /// RSS once freed. Setting the threshold keeps it fixed. (glibc's `mallopt`, looked up at run
    /// time: Swift's Glibc module does not export `<malloc.h>`.)
    /// - Returns: false when the allocator has no such setting.
    @discardableResult
    public static func mapAllocations(from bytes: Int) -> Bool {
        typealias MallOpt = @convention(c) (Int32, Int32) -> Int32
        guard let symbol = dlsym(nil, "mallopt") else { return false }
        let mallopt = unsafeBitCast(symbol, to: MallOpt.self)
        let mmapThreshold: Int32 = -3  // M_MMAP_THRESHOLD in <malloc.h>
        return mallopt(mmapThreshold, Int32(clamping: bytes)) == 1
    }
}
