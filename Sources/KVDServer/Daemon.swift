import KVDConfig
import KVDHTTP
import KVDRedis
import KVDSystem
import KVDSystemd
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// kvd's life from start to exit: logging, the HTTP workers, signals, reload and shutdown.
public enum Daemon {
    /// Runs kvd until SIGTERM or SIGINT.
    /// - Parameters:
    ///   - configuration: the validated configuration.
    ///   - configPath: the file it came from (nil: built-in defaults), re-read on SIGHUP.
    ///   - overrides: the command line's settings, applied over the file at every reload.
    /// - Returns: how kvd exits: `.ok` after SIGTERM/SIGINT, `.config` for bad socket activation,
    ///   `.unavailable` when it cannot listen, or (Sentinel mode) no sentinel named a master that
    ///   ROLE confirmed within `sentinelStartWaitMs`.
    public static func run(configuration: Configuration, configPath: String?,
                           overrides: ConfigurationOverrides = ConfigurationOverrides(), version: String) -> SysExit {
        // Every thread created from here on inherits this mask; only the main thread takes signals.
        Signals.ignoreBrokenPipe()
        // Big buffers (values, their JSON) straight from mmap, given back to the system when freed:
        // glibc's default threshold rises with every such free, and then freed big values stay in RSS.
        MemoryRelease.mapAllocations(from: 256 * 1024)
        var handled = sigset_t()
        sigemptyset(&handled)
        for number in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&handled, number) }
        pthread_sigmask(SIG_BLOCK, &handled, nil)

        let level = SharedLogLevel(Logger.Level(configuration.log.level))
        let journal = getenv("JOURNAL_STREAM") != nil
        LoggingSystem.bootstrap { label in StderrLogHandler(label: label, level: level, journal: journal) }
        let logger = Logger(label: "kvd")

        let inherited: [Int32]
        do {
            inherited = try ServiceManager.takeListeningSockets()
        } catch {
            logger.critical("cannot start: \(error)")
            return .config
        }
        if inherited.count > 1 {
            logger.warning("the service manager passed \(inherited.count) listening sockets; kvd serves the first (fd \(inherited[0])) and closes the others")
            for descriptor in inherited.dropFirst() { close(descriptor) }
        }
        // Sentinel mode: the workers start on the master the sentinels name (and ROLE confirms).
        var serving = configuration
        var namedBy: NodeAddress?
        if !configuration.redis.sentinels.isEmpty {
            guard let (master, sentinel) = SentinelWatcher.resolveAtStart(configuration.redis, waitMs: sentinelStartWaitMs, logger: logger) else {
                return .unavailable
            }
            serving.redis = master
            namedBy = sentinel
        }
        let server: HTTPServer
        do {
            let accessLog = AccessLog(configuration.log, journal: journal, timestamp: { SystemClock.utcTimestamp() },
                                      write: { StandardStreams.writeError($0) })
            server = try HTTPServer(configuration: serving, logger: logger, inheritedSocket: inherited.first,
                                    accessLog: accessLog)
        } catch {
            logger.critical("cannot start: \(error)")
            return .unavailable
        }
        server.start(startThread: Threads.detach)
        let supervisor = ServiceSupervisor(server: server, redisTarget: serving.redis.targetDescription, logger: logger)
        let watcher = namedBy.map { sentinel in
            SentinelWatcher(server: server, base: configuration.redis, resolved: serving.redis, sentinel: sentinel, logger: logger) { target in
                supervisor.redisTarget.withLock { $0 = target }
            }
        }
        let redis = serving.redis
        let sentinels = redis.sentinels.isEmpty ? "" : " (master '\(redis.masterName ?? "")' from sentinels \(redis.sentinels.map(\.description).joined(separator: ", ")))"
        let storage = switch redis.layout {
        case .hash: "hash '\(redis.hash)'"
        case .string: "string keys, prefix '\(redis.prefix)'"
        case .buckets: "buckets, descriptor '\(redis.descriptorKey)'"
        }
        let cache = configuration.cache
        if cache.enabled {
            let perNode = redis.cluster ? " per node (each worker adds one subscriber connection to every node it reads from)" : ""
            logger.notice("near-cache on: \(cache.maxBytes) bytes (\(cache.bytesPerWorker(threads: configuration.http.threads)) per worker), values up to \(cache.maxValueBytes) bytes\(cache.cacheMissing ? ", missing keys too" : ""); invalidated by Redis client tracking\(perNode)")
        }
        let target = redis.cluster ? "Redis \(redis.targetDescription) (read_from \(redis.readFrom.rawValue))" : "Redis \(redis.targetDescription)\(sentinels) db \(redis.db)"
        logger.notice("kvd \(version) listening on \(server.listenDescription), \(target) (\(storage)), \(configuration.http.threads) threads (\(configuration.http.resolvedPolling.rawValue) polling), config \(configPath ?? "built-in defaults")\(overrides.isEmpty ? "" : " with \(overrides.given.joined(separator: " "))")")
        if redis.cluster && redis.layout == .hash {
            logger.warning("layout = hash on a Redis Cluster: the one hash '\(redis.hash)' lives in one slot, so every read goes to one master (string or buckets spread over the masters)")
        }

        supervisor.start()
        watcher?.start()

        var current = configuration
        while true {
            var received: Int32 = 0
            guard sigwait(&handled, &received) == 0 else { continue }
            switch received {
            case SIGHUP:
                ServiceManager.notify("RELOADING=1\nSTATUS=Reloading \(configPath ?? "built-in defaults")")
                current = reload(current, started: configuration, path: configPath, overrides: overrides, server: server,
                                 sentinelWatcher: watcher, level: level, logger: logger)
                supervisor.redisTarget.withLock { $0 = watcher?.target ?? current.redis.targetDescription }
                ServiceManager.notify("READY=1")
            default:
                // The workers first: they stop accepting while the rest is said.
                server.requestStop()
                logger.notice("received \(received == SIGTERM ? "SIGTERM" : "SIGINT"), stopping: no new connections, finishing requests in flight")
                ServiceManager.notify("STOPPING=1\nSTATUS=Stopping: finishing requests in flight")
                server.stop()
                watcher?.stop()
                supervisor.stop()
                logger.notice("stopped")
                return .ok
            }
        }
    }

    /// How long kvd asks the sentinels for a confirmed master at start before it gives up (exit 69).
    static let sentinelStartWaitMs = 5000

    /// Re-reads the configuration; applies what can change without a restart and names the rest.
    /// An invalid file changes nothing.
    ///
    /// Live: `[log] level`, `access` and `format`, every `[cache]` key (each worker's cache starts
    /// again, empty), every `[redis]` key (tried first on a connection of their own, with
    /// AUTH, SELECT and PING, in Sentinel mode after asking the sentinels for the master and with
    /// ROLE; when that fails they are refused and logged; else each worker switches once its
    /// lookups in flight are answered; turning Sentinel mode on or off needs a restart), `[http] per_ip_connection_limit`, and `[http] connection_limit` up to the
    /// value kvd started with. Everything else is reported as needing a restart.
    /// - Parameters:
    ///   - current: the configuration in force.
    ///   - started: the one kvd started with (it bounds what libmicrohttpd can take live).
    ///   - sentinelWatcher: in Sentinel mode, what resolves and applies new `[redis]` settings (the
    ///     file's host and port are not used there; turning Sentinel mode on or off needs a restart).
    /// - Returns: the configuration in force afterwards.
    static func reload(_ current: Configuration, started: Configuration, path: String?,
                       overrides: ConfigurationOverrides, server: HTTPServer, sentinelWatcher: SentinelWatcher?,
                       level: SharedLogLevel, logger: Logger) -> Configuration {
        let next: Configuration
        do {
            next = overrides.applied(to: try Configuration.load(path: path).0)
        } catch {
            logger.error("reload refused, still running on the previous configuration: \(error)")
            return current
        }
        var applied = current
        var live: [String] = []
        var restartNeeded: [String] = []
        let sentinelToggled = current.redis.sentinels.isEmpty != next.redis.sentinels.isEmpty
        for key in current.changedKeys(to: next) {
            switch key {
            case "log.level":
                applied.log.level = next.log.level
                live.append(key)
            case "log.access", "log.format":
                applied.log.access = next.log.access
                applied.log.format = next.log.format
                live.append(key)
            case "http.per_ip_connection_limit":
                applied.http.perIPConnectionLimit = next.http.perIPConnectionLimit
                live.append(key)
            case "http.connection_limit" where next.http.connectionLimit <= started.http.connectionLimit:
                applied.http.connectionLimit = next.http.connectionLimit
                live.append(key)
            case "http.connection_limit":
                restartNeeded.append("\(key) (above \(started.http.connectionLimit), the value at start)")
            case _ where key.hasPrefix("redis.") && sentinelToggled:
                restartNeeded.append(key == "redis.sentinels" ? "\(key) (turning Sentinel mode on or off)" : key)
            case _ where key.hasPrefix("redis."):
                applied.redis = next.redis
                live.append(key)
            case _ where key.hasPrefix("cache."):
                applied.cache = next.cache
                live.append(key)
            default:
                restartNeeded.append(key)
            }
        }
        if applied.redis != current.redis {
            // Tried before applied: a wrong password or target must not take the service down.
            do throws(RedisError) {
                if let sentinelWatcher {
                    try sentinelWatcher.apply(applied.redis)
                } else {
                    try RedisConnection.checkTarget(applied.redis)
                    server.retargetRedis(applied.redis)
                }
            } catch {
                let target = sentinelWatcher?.target ?? current.redis.targetDescription
                logger.error("reload: the new [redis] settings do not work, still using the previous ones (Redis \(target)): \(error.message)")
                applied.redis = current.redis
                live.removeAll { $0.hasPrefix("redis.") }
            }
        }
        if applied.cache != current.cache {
            // Each worker's cache starts again, empty (a [redis] change flushes it as the worker switches).
            server.reconfigureCache(applied.cache)
        }
        server.accessLog.apply(applied.log)
        if applied.http != current.http {
            server.setConnectionLimits(total: applied.http.connectionLimit, perAddress: applied.http.perIPConnectionLimit)
        }
        var report = "configuration reloaded from \(path ?? "built-in defaults"): "
        report += live.isEmpty ? "nothing to apply" : "applied \(live.joined(separator: ", "))"
        if restartNeeded.isEmpty {
            logger.notice("\(report)")
        } else {
            logger.warning("\(report); needs a restart, still running on the old value: \(restartNeeded.joined(separator: ", "))")
        }
        // After the report, so that it is logged even when the new level is stricter.
        level.level = Logger.Level(applied.log.level)
        return applied
    }
}
