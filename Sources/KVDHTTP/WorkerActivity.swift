import Dispatch
import KVDSettings
import Synchronization

/// What a worker publishes for the threads that watch it (watchdog, status, metrics): written by
/// the worker's own thread with relaxed atomics, read by anyone.
final class WorkerActivity: Sendable {
    /// Bumped once per loop turn: the watchdog's heartbeat.
    let loopTurns = Atomic<UInt64>(0)
    /// Requests answered.
    let requests = Atomic<UInt64>(0)
    /// Whether the worker's last exchange with Redis succeeded.
    let redisAvailable = Atomic<Bool>(true)

    func turned() { loopTurns.wrappingAdd(1, ordering: .relaxed) }
}

/// What the service supervisor reads from the HTTP engine (see `Daemon`).
public struct EngineActivity: Sendable, Equatable {
    /// Per worker, loop turns so far.
    public var loopTurns: [UInt64]
    /// Requests answered so far, over all workers.
    public var requests: UInt64
    /// Workers whose last exchange with Redis succeeded.
    public var workersWithRedis: Int
    public var workers: Int { loopTurns.count }
}

extension HTTPServer {
    /// A snapshot of every worker's counters.
    public var activity: EngineActivity {
        var snapshot = EngineActivity(loopTurns: [], requests: 0, workersWithRedis: 0)
        for worker in workers {
            snapshot.loopTurns.append(worker.activity.loopTurns.load(ordering: .relaxed))
            snapshot.requests &+= worker.activity.requests.load(ordering: .relaxed)
            if worker.activity.redisAvailable.load(ordering: .relaxed) { snapshot.workersWithRedis += 1 }
        }
        return snapshot
    }

    /// Wakes every worker loop once, so that an idle worker proves it still turns.
    public func probeWorkers() {
        for worker in workers { worker.probe() }
    }
}

extension HTTPServer {
    /// Points every worker at new Redis settings (a reload). Each switches once the lookups it
    /// already sent are answered; no request fails because of the switch.
    public func retargetRedis(_ settings: RedisSettings) {
        for worker in workers { worker.retargetRedis(settings) }
    }

    /// New connection limits (a reload). libmicrohttpd's own per-worker cap, fixed at start,
    /// still bounds `total` from above.
    /// - Parameter perAddress: `[http] per_ip_connection_limit` (nil: not set, half of `total`).
    public func setConnectionLimits(total: Int, perAddress: Int?) {
        limiter.setLimits(total: total, perAddress: HTTPSettings.perAddressLimit(configured: perAddress, total: total))
    }
}

extension HTTPServer {
    /// Tells every worker to stop accepting and to finish its requests, and returns once each has
    /// closed its listening socket (or after `listeningGraceSeconds`, for a wedged worker), so that
    /// "stopping" in the log means new connections are refused. `stop()` waits for the requests.
    public func requestStop() {
        for worker in workers { worker.requestStop() }
        for worker in workers { _ = worker.stoppedListening.wait(timeout: .now() + Self.listeningGraceSeconds) }
    }

    static let listeningGraceSeconds = 2.0
}
