#if canImport(Glibc)
import Glibc
#endif

/// Monotonic time, process CPU time and the wall clock.
public enum SystemClock {
    /// Nanoseconds on CLOCK_MONOTONIC.
    @inline(__always)
    public static func nanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// User and system CPU time this process has used so far, in microseconds.
    public static func processCPUMicroseconds() -> (user: UInt64, system: UInt64) {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func micros(_ time: timeval) -> UInt64 { UInt64(time.tv_sec) * 1_000_000 + UInt64(time.tv_usec) }
        return (micros(usage.ru_utime), micros(usage.ru_stime))
    }

    /// The current UTC time in ISO 8601 with milliseconds, e.g. `2026-11-30T08:15:02.123Z` (for log lines).
    public static func utcTimestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var parts = tm()
        gmtime_r(&now.tv_sec, &parts)
        let millis = now.tv_nsec / 1_000_000
        func pad(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return "\(parts.tm_year + 1900)-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }
}

extension SystemClock {
    /// Blocks the calling thread for `milliseconds` (a reconnect pause; never on an event loop).
    public static func sleep(milliseconds: Int) {
        usleep(UInt32(milliseconds * 1000))
    }
}

/// This process.
public enum CurrentProcess {
    /// The process id (names per-process scratch keys, e.g. kvload's staging hash).
    public static var id: Int32 { getpid() }
}
