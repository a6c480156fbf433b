// Linux-only: epoll and timerfd, for kvbench's event loop.

import CKVDSystem

#if canImport(Glibc)
import Glibc
#endif

/// Readiness flags of one epoll event.
public struct Readiness: Sendable {
    public let token: Int
    public let readable: Bool
    public let writable: Bool
    /// EPOLLERR or EPOLLHUP.
    public let failed: Bool
}

/// An epoll instance (level-triggered) with a fixed event array; tokens are caller-chosen integers.
public final class EventPoll {
    private let fd: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private let capacity: Int

    /// - Throws: `SystemError` when epoll_create1 fails.
    public init(capacity: Int = 256) throws(SystemError) {
        fd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard fd >= 0 else { throw SystemError(operation: "epoll_create1", errno: errno) }
        self.capacity = capacity
        events = .allocate(capacity: capacity)
    }

    deinit {
        events.deallocate()
        Glibc.close(fd)
    }

    private func control(_ operation: Int32, _ target: Int32, token: Int, readable: Bool, writable: Bool) {
        var event = epoll_event()
        var mask: UInt32 = 0
        if readable { mask |= EPOLLIN.rawValue }
        if writable { mask |= EPOLLOUT.rawValue }
        event.events = mask
        event.data.u64 = UInt64(bitPattern: Int64(token))
        epoll_ctl(fd, operation, target, &event)
    }

    /// Starts watching `target`.
    public func add(_ target: Int32, token: Int, readable: Bool, writable: Bool) {
        control(EPOLL_CTL_ADD, target, token: token, readable: readable, writable: writable)
    }

    /// Changes what `target` is watched for.
    public func modify(_ target: Int32, token: Int, readable: Bool, writable: Bool) {
        control(EPOLL_CTL_MOD, target, token: token, readable: readable, writable: writable)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) and returns how many events `event(at:)` can read.
    public func wait(timeoutMilliseconds: Int32) -> Int {
        let count = epoll_wait(fd, events, Int32(capacity), timeoutMilliseconds)
        return count < 0 ? 0 : Int(count)
    }

    /// The `index`-th event of the last `wait`.
    @inline(__always)
    public func event(at index: Int) -> Readiness {
        let event = events[index]
        let mask = event.events
        return Readiness(
            token: Int(Int64(bitPattern: event.data.u64)),
            readable: mask & EPOLLIN.rawValue != 0,
            writable: mask & EPOLLOUT.rawValue != 0,
            failed: mask & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
        )
    }
}

/// A timerfd on CLOCK_MONOTONIC that becomes readable at an absolute time, with nanosecond resolution
/// (epoll_wait's timeout has only milliseconds).
public final class DeadlineTimer {
    /// The descriptor, to register with an `EventPoll`.
    public let fd: Int32
    private var armedAt: UInt64 = 0

    /// - Throws: `SystemError` when timerfd_create fails.
    public init() throws(SystemError) {
        fd = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK) | Int32(TFD_CLOEXEC))
        guard fd >= 0 else { throw SystemError(operation: "timerfd_create", errno: errno) }
    }

    deinit { Glibc.close(fd) }

    /// Fires at `deadline` (CLOCK_MONOTONIC nanoseconds); a second call with the same deadline does nothing.
    public func arm(at deadline: UInt64) {
        guard deadline != armedAt else { return }
        armedAt = deadline
        var spec = itimerspec()
        spec.it_value.tv_sec = Int(deadline / 1_000_000_000)
        spec.it_value.tv_nsec = Int(deadline % 1_000_000_000)
        timerfd_settime(fd, Int32(TFD_TIMER_ABSTIME), &spec, nil)
    }

    /// Consumes the expiry so that the descriptor is no longer readable.
    public func acknowledge() {
        var expirations: UInt64 = 0
        _ = Glibc.read(fd, &expirations, MemoryLayout<UInt64>.size)
        armedAt = 0
    }
}
