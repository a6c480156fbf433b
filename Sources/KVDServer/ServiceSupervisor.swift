import Dispatch
import KVDCore
import KVDHTTP
import KVDSystem
import KVDSystemd
import Logging
import Synchronization

/// Keeps systemd informed while kvd runs (Type=notify): a `STATUS=` line with Redis's state and the
/// request rate every few seconds, and `WATCHDOG=1` only while every worker loop still turns.
///
/// Liveness is a heartbeat, not a timer: each worker bumps a counter once per loop turn; after each
/// check the supervisor wakes every worker, so an idle one turns before the next check. A worker
/// whose counter stands still between two checks is wedged; the pings stop and systemd restarts kvd
/// after `WatchdogSec=`.
final class ServiceSupervisor: Sendable {
    private let server: HTTPServer
    private let logger: Logger
    private let stopSignal = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private let watchdogMicroseconds: UInt64?
    /// Seconds between two checks: a third of the watchdog timeout (at most 5).
    let period: Double
    /// `host:port` of Redis, for the status line (a reload may change it).
    let redisTarget: Mutex<String>

    init(server: HTTPServer, redisTarget: String, logger: Logger) {
        self.server = server
        self.logger = logger
        self.redisTarget = Mutex(redisTarget)
        watchdogMicroseconds = ServiceManager.watchdogTimeoutMicroseconds
        period = watchdogMicroseconds.map { min(Double($0) / 3_000_000, 5) } ?? 5
    }

    /// Tells systemd kvd is ready, then reports on its own thread until `stop()`.
    func start() {
        ServiceManager.notify("READY=1\nSTATUS=\(status(server.activity, requestsPerSecond: 0))")
        if let watchdogMicroseconds {
            logger.info("systemd watchdog armed: \(watchdogMicroseconds / 1000) ms; liveness checked every \(Int(period * 1000)) ms")
        }
        Threads.detach(name: "kvd-supervisor") { [self] in
            report()
            finished.signal()
        }
    }

    /// Ends the reports (the caller has sent STOPPING=1).
    func stop() {
        stopSignal.signal()
        finished.wait()
    }

    private func report() {
        var monitor = HeartbeatMonitor()
        var previous = server.activity
        var previousCache = server.cacheLookups
        var previousTime = DispatchTime.now()
        var stallReported = false
        while stopSignal.wait(timeout: .now() + period) == .timedOut {
            let current = server.activity
            let now = DispatchTime.now()
            let stalled = monitor.stalledWorkers(current.loopTurns)
            server.probeWorkers()
            let seconds = Double(now.uptimeNanoseconds - previousTime.uptimeNanoseconds) / 1e9
            let rate = seconds > 0 ? Double(current.requests &- previous.requests) / seconds : 0
            let ping = watchdogMicroseconds != nil && stalled.isEmpty
            let cache = server.cacheLookups
            ServiceManager.notify("STATUS=\(status(current, requestsPerSecond: rate, cache: Self.hitRate(cache, since: previousCache)))" + (ping ? "\nWATCHDOG=1" : ""))
            previousCache = cache
            // Logged after the notification: a wedge can be a blocked log write (a stalled journal).
            if watchdogMicroseconds != nil {
                if stalled.isEmpty && stallReported {
                    logger.notice("every worker loop turns again; watchdog pings resumed")
                    stallReported = false
                } else if !stalled.isEmpty && !stallReported {
                    logger.critical("worker \(stalled.map(String.init).joined(separator: ", ")) made no progress for \(Int(period * 1000)) ms: watchdog pings withheld, systemd will restart kvd")
                    stallReported = true
                }
            }
            previous = current
            previousTime = now
        }
    }

    /// The near-cache's hit rate between two readings, as the status line shows it (nil: cache off).
    static func hitRate(_ now: (hits: Int, misses: Int)?, since before: (hits: Int, misses: Int)?) -> String? {
        guard let now else { return nil }
        let hits = now.hits - (before?.hits ?? 0)
        let lookups = hits + now.misses - (before?.misses ?? 0)
        guard lookups > 0, hits >= 0 else { return "cache on, no lookups" }
        return "cache hit rate \(Int((Double(hits) * 100 / Double(lookups)).rounded()))%"
    }

    private func status(_ activity: EngineActivity, requestsPerSecond: Double, cache: String? = nil) -> String {
        let target = redisTarget.withLock { $0 }
        let redis = activity.workersWithRedis == activity.workers
            ? "Redis \(target) up"
            : "Redis \(target) DOWN for \(activity.workers - activity.workersWithRedis)/\(activity.workers) workers"
        return "\(redis); \(Int(requestsPerSecond.rounded())) req/s; \(server.openConnections) open connections" + (cache.map { "; \($0)" } ?? "")
    }
}
