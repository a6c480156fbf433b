import Dispatch
import KVDSettings
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// kvd's HTTP front end: `threads` workers, each a libmicrohttpd daemon in external epoll mode
/// with its own Redis connection, all listening on one port through SO_REUSEPORT.
public final class HTTPServer: Sendable {
    let workers: [Worker]
    private let done: [DispatchSemaphore]
    let limiter: ConnectionLimiter
    /// The access log's switch and format, shared by every worker.
    public let accessLog: AccessLog
    /// Held while kvd runs: no other process may listen on kvd's address.
    private let claim: ListenClaim?
    /// The port the workers listen on (the configured one, or the one chosen for port 0).
    public let port: Int
    /// `host:port` as bound, for log lines.
    public let listenDescription: String

    /// Binds every worker's socket, or adopts `inheritedSocket`; nothing is served until `start()`.
    /// - Parameter inheritedSocket: a listening socket from the service manager (socket activation):
    ///   every worker serves a duplicate of it, and `[http] host` and `port` are not used.
    /// - Throws: `HTTPServerError` when the address cannot be resolved or bound.
    /// - Parameter accessLog: where access-log lines go (default: off whatever `[log] access` says).
    public init(configuration: Configuration, logger: Logger, inheritedSocket: Int32? = nil,
                accessLog: AccessLog? = nil) throws(HTTPServerError) {
        let settings = configuration.http
        let accessLog = accessLog ?? AccessLog(LogSettings(), journal: false, timestamp: { "" }, write: { _ in })
        self.accessLog = accessLog
        limiter = ConnectionLimiter(totalLimit: settings.connectionLimit, perAddressLimit: settings.effectivePerIPConnectionLimit)
        let metrics = ServerMetrics(limiter: limiter)
        let unsent = UnsentAnswers(limit: settings.maxUnsentBytes)
        var address: ListenAddress
        if let inheritedSocket {
            address = try ListenAddress(inheritedSocket: inheritedSocket)
        } else {
            address = try ListenAddress(host: settings.host, port: settings.port)
        }
        // The workers share the port with each other and with nobody else (socket activation:
        // the service manager owns the socket, and every worker adopts it).
        var claim: ListenClaim? = nil
        if inheritedSocket == nil && settings.port != 0 { claim = try ListenClaim(address, probe: true) }
        var workers: [Worker] = []
        for id in 0..<settings.threads {
            let worker = try Worker(id: id, address: address, configuration: configuration, limiter: limiter,
                                    unsent: unsent, metrics: metrics, accessLog: accessLog, logger: logger)
            if id == 0 {
                address = address.with(port: worker.boundPort)
                if inheritedSocket == nil && claim == nil { claim = try ListenClaim(address, probe: false) }
            }
            workers.append(worker)
        }
        self.claim = claim
        self.workers = workers
        done = workers.map { _ in DispatchSemaphore(value: 0) }
        port = Int(workers[0].boundPort)
        if let inheritedSocket {
            listenDescription = "\(address.text) (socket fd \(inheritedSocket) from the service manager)"
            close(inheritedSocket)
        } else {
            listenDescription = address.text
        }
    }

    /// Starts one thread per worker through `startThread(name, body)` (KVDSystem's `Threads.detach`).
    public func start(startThread: (String, @escaping @Sendable () -> Void) -> Void) {
        for (worker, done) in zip(workers, done) {
            startThread("kvd-worker-\(worker.id)") {
                worker.run()
                done.signal()
            }
        }
    }

    /// Stops accepting, lets requests in flight finish (up to the shutdown timeout), and returns
    /// when every worker has closed its connections.
    public func stop() {
        for worker in workers { worker.requestStop() }
        for semaphore in done { semaphore.wait() }
    }

    /// Client connections open now, over all workers.
    public var openConnections: Int { limiter.openConnections }
}

/// At most one log line per interval for one kind of event a client can cause at will (malformed
/// requests, Redis error replies): the lines in between are only counted, and the next line that
/// is written says how many were left out. One per worker, used on its thread.
struct LogThrottle {
    private let intervalMs: Int64
    private var nextMs: Int64 = 0
    private var suppressed = 0

    init(intervalMs: Int64 = 1000) { self.intervalMs = intervalMs }

    /// Whether a line may be written now: nil when not (it is counted), else the text to append
    /// (empty, or how many lines were left out since the last one).
    mutating func admit(nowMs: Int64) -> String? {
        guard nowMs >= nextMs else {
            suppressed += 1
            return nil
        }
        nextMs = nowMs + intervalMs
        defer { suppressed = 0 }
        return suppressed == 0 ? "" : " (\(suppressed) similar lines left out)"
    }
}
