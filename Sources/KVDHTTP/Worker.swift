import Dispatch
import CKVDShim
import KVDCore
import KVDRedis
import KVDSettings
import KVDSystem
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

extension SystemClock {
    /// Milliseconds on CLOCK_MONOTONIC (the unit of the workers' deadlines).
    @inline(__always)
    static func milliseconds() -> Int64 { Int64(nanoseconds() / 1_000_000) }
}

/// An eventfd another thread writes to wake a worker out of `poll`.
final class WakeSignal: Sendable {
    let descriptor: Int32

    init() throws(HTTPServerError) {
        descriptor = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard descriptor >= 0 else { throw HTTPServerError("eventfd failed: \(String(cString: strerror(errno)))") }
    }

    func wake() {
        var one: UInt64 = 1
        _ = write(descriptor, &one, MemoryLayout<UInt64>.size)
    }

    func drain() {
        var value: UInt64 = 0
        _ = read(descriptor, &value, MemoryLayout<UInt64>.size)
    }

    deinit { close(descriptor) }
}

/// One worker thread: its own libmicrohttpd daemon and its own Redis pipeline, driven by one
/// poll loop. Requests that arrive in the same loop turn share one write to Redis; replies resume
/// their connections in order, on the same thread, with no locks on the request path.
final class Worker: HTTPRequestHandler, @unchecked Sendable {
    // @unchecked: after start, everything but `stopRequested` and `wakeSignal` is touched only
    // by the worker's own thread.
    let id: Int
    private let router: Router
    private let logger: Logger
    private let accessLog: AccessLog
    private let shutdownTimeoutMs: Int64
    private var engine: HTTPEngine!
    /// The worker's Redis pipeline, behind its near-cache when `[cache] enabled` (see the Near-cache section).
    private var redis: CachedLookups!
    private let wakeSignal: WakeSignal
    private let stopRequested = Atomic<Bool>(false)
    /// Signalled once the worker has closed its listening socket after `requestStop()`.
    let stoppedListening = DispatchSemaphore(value: 0)
    /// Counters the supervisor and the status line read.
    let activity = WorkerActivity()
    /// Redis settings from a reload, taken by the loop when the wake signal fires.
    private let redisMailbox = Mutex<RedisSettings?>(nil)
    /// Near-cache settings from a reload (with the thread count), taken the same way.
    private let cacheMailbox = Mutex<CacheSettings?>(nil)
    private let threads: Int
    /// The near-cache's counters, published once per loop turn for /metrics and the status line.
    let cacheActivity = CacheActivity()

    /// Every request state the worker made, at its `slot`: a lookup's token is its request's slot.
    /// (`@exclusivity(unchecked)`, as the other fields every request touches: docs/performance.md,
    /// "Exclusivity checks".)
    @exclusivity(unchecked) private var states: [RequestState] = []
    @exclusivity(unchecked) private var freeStates: [RequestState] = []
    private var activeRequests = 0
    private var resumedSinceRun = 0
    /// Where a value's JSON answer is built; given back after a big one (`scratchKeepBytes`).
    private var jsonScratch: [UInt8] = []
    /// Answers to Redis error replies, by error code (at most 32 codes kept).
    private var redisErrorResponses: [String: PreparedResponse] = [:]
    private var redisErrorLog = LogThrottle()
    /// Cluster node failures and map problems: at most a line a second.
    private var clusterLog = LogThrottle()
    /// Scratch capacity kept between answers; a bigger buffer is freed once its answer is built.
    private static let scratchKeepBytes = 1 << 20
    /// Big answers not yet sent, over all workers (`[http] max_unsent_bytes`).
    private let unsent: UnsentAnswers
    /// What each request state's answer holds of `unsent`, at its `slot`, released when the request completes.
    @exclusivity(unchecked) private var unsentBytes: [Int] = []
    /// The answer to a big value while `unsent` is full.
    private let unsentFull: PreparedResponse

    /// Every fixed answer, built once, at its `FixedReply.rawValue`.
    private let fixedResponses: [PreparedResponse]
    /// `[http] etag`: tag value answers, answer 304 to a matching `If-None-Match`.
    private let etag: Bool
    /// CORS headers (`[http] cors_origin`) for answers built per request; empty when off.
    private let corsHeaders: [HTTPHeader]
    /// Headers of every value answer (`[http] cache_control`, then CORS); empty when both are off.
    private let valueHeaders: [HTTPHeader]
    /// The answer to a CORS preflight (`OPTIONS`), when CORS is on.
    private let preflight: PreparedResponse?
    private let serverMetrics: ServerMetrics
    private let metrics: WorkerMetrics
    /// Each request state's `POST /mget` in flight, at its `slot`.
    private var batches: [BatchLookup?] = []
    /// `[http] mget_max_answer_bytes`.
    private let mgetMaxAnswerBytes: Int

    /// Starts the worker's daemon (bound, not yet serving: `run()` serves).
    init(id: Int, address: ListenAddress, configuration: Configuration, limiter: ConnectionLimiter,
         unsent: UnsentAnswers, metrics serverMetrics: ServerMetrics, accessLog: AccessLog, logger: Logger) throws(HTTPServerError) {
        self.id = id
        self.unsent = unsent
        unsentFull = PreparedResponse(.detail(503, "Too many big answers waiting to be sent; retry later",
                                              headers: [HTTPHeader("Retry-After", "1")]))
        self.serverMetrics = serverMetrics
        metrics = serverMetrics.forWorker(id)
        var logger = logger
        logger[metadataKey: "worker"] = "\(id)"
        self.logger = logger
        router = Router(maxKeyBytes: configuration.http.maxKeyBytes, mgetMaxKeys: configuration.http.mgetMaxKeys,
                        mgetMaxBodyBytes: configuration.http.mgetMaxBodyBytes)
        self.accessLog = accessLog
        shutdownTimeoutMs = Int64(configuration.http.shutdownTimeoutMs)
        wakeSignal = try WakeSignal()
        etag = configuration.http.etag
        mgetMaxAnswerBytes = configuration.http.mgetMaxAnswerBytes
        var cors: [HTTPHeader] = []
        if let origin = configuration.http.corsOrigin {
            cors.append(HTTPHeader("Access-Control-Allow-Origin", origin))
            if etag { cors.append(HTTPHeader("Access-Control-Expose-Headers", "ETag")) }
        }
        corsHeaders = cors
        valueHeaders = (configuration.http.cacheControl.map { [HTTPHeader("Cache-Control", $0)] } ?? []) + cors
        preflight = cors.isEmpty ? nil : PreparedResponse(status: 204, headers: cors + [
            // POST: /mget, whose JSON body (Content-Type: application/json) needs a preflight too.
            HTTPHeader("Access-Control-Allow-Methods", "GET, HEAD, POST, OPTIONS"),
            HTTPHeader("Access-Control-Allow-Headers", "Accept, Content-Type, If-None-Match"),
            HTTPHeader("Access-Control-Max-Age", "86400"),
        ])
        // 406 (not UTF-8) would be 200 with another Accept.
        fixedResponses = FixedReply.allCases.map { [router] in
            let response = PreparedResponse(router.reply($0), varyAccept: $0 == .notUTF8)
            response.addHeaders(cors)
            return response
        }
        threads = configuration.http.threads
        redis = CachedLookups(settings: configuration.redis, cache: configuration.cache, threads: threads,
                              elsewhere: { Threads.detachOrRunHere(name: "kvd-tables", $0) }) { [unowned self] token, result in
            self.lookupCompleted(token, result)
        } observe: { [unowned self] event in
            self.redisEvent(event)
        } observeTracking: { [unowned self] event in
            self.trackingEvent(event)
        }
        serverMetrics.register(cacheActivity, worker: id)
        engine = try HTTPEngine(address: address, settings: configuration.http, handler: self, limiter: limiter,
                                metrics: metrics, logger: logger)
    }

    var boundPort: UInt16 { engine.boundPort }

    /// Asks the loop to stop: no new connections, requests in flight finish (bounded by the shutdown timeout).
    func requestStop() {
        stopRequested.store(true, ordering: .releasing)
        wakeSignal.wake()
    }

    /// Wakes the loop for one turn (the watchdog's liveness probe).
    func probe() { wakeSignal.wake() }

    /// Hands the worker new Redis settings (a reload); it switches once its lookups in flight are answered.
    func retargetRedis(_ settings: RedisSettings) {
        redisMailbox.withLock { $0 = settings }
        wakeSignal.wake()
    }

    /// Hands the worker new near-cache settings (a reload): its cache starts again, empty.
    func reconfigureCache(_ settings: CacheSettings) {
        cacheMailbox.withLock { $0 = settings }
        wakeSignal.wake()
    }

    /// The worker's loop; returns after `requestStop()` once its requests are answered.
    func run() {
        var descriptors: [pollfd] = []
        descriptors.reserveCapacity(4)
        var stopDeadlineMs: Int64?
        redis.connectEarly(nowMs: SystemClock.milliseconds())
        while true {
            activity.turned()
            var nowMs = SystemClock.milliseconds()
            if stopDeadlineMs == nil, stopRequested.load(ordering: .acquiring) {
                engine.stopListening()
                stoppedListening.signal()
                stopDeadlineMs = nowMs + shutdownTimeoutMs
            }
            if let deadline = stopDeadlineMs {
                if activeRequests == 0 && !engine.hasFreshConnections { break }
                if nowMs >= deadline {
                    redis.abandon()
                    runEngine()
                    break
                }
            }
            var timeout = 1000
            if let deadline = redis.nextDeadlineMs() { timeout = min(timeout, Int(max(0, deadline - nowMs))) }
            if let poll = redis.nextDatasetPollMs { timeout = min(timeout, Int(max(0, poll - nowMs))) }
            if let deadline = stopDeadlineMs { timeout = min(timeout, Int(max(0, deadline - nowMs)), 50) }
            descriptors.removeAll(keepingCapacity: true)
            descriptors.append(pollfd(fd: wakeSignal.descriptor, events: Int16(POLLIN), revents: 0))
            redis.appendPollDescriptors(to: &descriptors)
            engine.turn(extra: &descriptors, timeoutMs: timeout)
            nowMs = SystemClock.milliseconds()
            if descriptors[0].revents != 0 {
                wakeSignal.drain()
                if let settings = redisMailbox.withLock({ $0.take() }) { redis.retarget(settings, nowMs: nowMs) }
                if let settings = cacheMailbox.withLock({ $0.take() }) { reconfigureCacheNow(settings) }
            }
            redis.handle(descriptors[1...], nowMs: nowMs)
            redis.checkDeadlines(nowMs: nowMs)
            redis.pollDataset(nowMs: nowMs)
            runEngine()
            if redis.cache != nil { cacheActivity.publish(redis.counters) }
        }
        engine.stop()
    }

    /// Answers the requests resumed since the last call, then sends the turn's lookups to Redis
    /// in one write.
    private func runEngine() {
        if resumedSinceRun > 0 {
            resumedSinceRun = 0
            engine.answerResumed()
        }
        redis.flush(nowMs: SystemClock.milliseconds())
    }

    // MARK: HTTPRequestHandler

    func makeRequestState() -> RequestState {
        activeRequests += 1
        let state = freeStates.popLast() ?? newRequestState()
        state.startedNs = SystemClock.nanoseconds()
        return state
    }

    private func newRequestState() -> RequestState {
        let state = RequestState(slot: states.count)
        states.append(state)
        unsentBytes.append(0)
        batches.append(nil)
        return state
    }

    func handle(_ request: RequestState, method: String, path: [UInt8]) -> HandlerDecision {
        if accessLog.isOn {
            request.method = method
            request.path = path
        }
        if let preflight, method == "OPTIONS" { return .respond(preflight) }
        let route = router.route(method: method, path: path,
                                 wantsRaw: Router.wantsRaw(accept: engine.header("Accept", of: request),
                                                           format: engine.queryArgument("format", of: request)))
        switch route {
        case .reply(let fixed):
            if fixed == .healthy { request.routeLabel = .healthz }
            return .respond(self.fixed(fixed))
        case .lookup(let key, let raw):
            request.routeLabel = .get
            request.raw = raw
            // A hit whose prepared answer fits this request needs no copy of its value.
            redis.lookup(key: key, token: LookupToken(request.slot), nowMs: SystemClock.milliseconds(),
                         attachmentSuffices: usesPreparedAnswers(request))
            // An immediate failure already set the response; answer it without suspending.
            if let response = request.response {
                request.response = nil
                return .respond(response)
            }
            return .suspend
        case .metrics:
            request.routeLabel = .metrics
            let metrics = PreparedResponse(okBody: serverMetrics.exposition(), contentType: "text/plain; version=0.0.4; charset=utf-8")
            metrics.addHeaders(corsHeaders)
            return .respond(metrics)
        case .batch:
            request.routeLabel = .mget
            return startBatch(request)
        case .readiness:
            request.routeLabel = .readyz
            redis.ping(token: LookupToken(request.slot), nowMs: SystemClock.milliseconds())
            if let response = request.response {
                request.response = nil
                return .respond(response)
            }
            return .suspend
        }
    }

    func responseQueued(_ request: RequestState, _ response: PreparedResponse) {
        let nanoseconds = SystemClock.nanoseconds() - request.startedNs
        metrics.request(request.routeLabel, status: response.status, nanoseconds: nanoseconds)
        // `method` is set when the log was on as the request arrived.
        guard !request.method.isEmpty, accessLog.isOn else { return }
        accessLog.record(AccessLogEntry(
            client: engine.clientAddress(of: request), method: request.method,
            target: engine.target(of: request, path: request.path), status: response.status,
            bytes: request.method == "HEAD" ? 0 : response.bodyBytes, microseconds: nanoseconds / 1000,
            userAgent: engine.header("User-Agent", of: request)))
    }

    func requestCompleted(_ request: RequestState) {
        activeRequests -= 1
        activity.requests.wrappingAdd(1, ordering: .relaxed)
        if unsentBytes[request.slot] > 0 {
            unsent.release(unsentBytes[request.slot])
            unsentBytes[request.slot] = 0
        }
        request.reset()
        freeStates.append(request)
    }

    /// Every lookup's completion (the pipeline's callback): to its request, or to its place in a batch.
    private func lookupCompleted(_ token: LookupToken, _ result: LookupResult) {
        let (slot, index) = LookupTokens.split(token)
        if let index {
            batchLookupCompleted(states[slot], index, result)
        } else {
            finishLookup(states[slot], result)
        }
    }

    /// Answers a request from its lookup's result: the one place where a Redis outcome becomes
    /// an HTTP answer.
    private func finishLookup(_ request: RequestState, _ result: LookupResult) {
        let response: PreparedResponse
        if request.routeLabel == .readyz {
            if case .failed(.noDataset(let detail)) = result {
                response = datasetResponse(detail, readiness: true)
            } else {
                response = fixed(result == .reply(.status("PONG")) ? .ready : .notReady)
            }
        } else if case .reply(.bulk(let value)) = result {
            response = redis.delivering ? cachedValueResponse(value, for: request) : valueResponse(value, for: request)
        } else {
            response = noValueResponse(result)
        }
        answer(request, response)
    }

    /// Sets a request's answer, and resumes it when it waits for one.
    private func answer(_ request: RequestState, _ response: PreparedResponse) {
        request.response = response
        if request.isSuspended {
            engine.resume(request)
            resumedSinceRun += 1
        }
    }

    /// The answer to a lookup that gave no value (GET's, and a whole batch's when one of its keys got it).
    private func noValueResponse(_ result: LookupResult) -> PreparedResponse {
        switch result {
        case .reply(.null): fixed(.keyNotFound)
        case .reply(.error(let message)): redisErrorResponse(message)
        case .reply: fixed(.unexpectedRedisReply)
        case .failed(.unavailable): fixed(.redisUnavailable)
        case .failed(.timedOut): fixed(.redisTimeout)
        case .failed(.shuttingDown): fixed(.shuttingDown)
        case .failed(.noDataset(let detail)): datasetResponse(detail, readiness: false)
        }
    }

    /// A value's answer: 200 with the value (raw, or as a JSON string), 406 when JSON cannot
    /// carry it, or 304 when the request's `If-None-Match` names its tag. The optional headers
    /// cost nothing when they are off.
    /// 304 with the tag and the value answer's headers, when `If-None-Match` names `tag`.
    private func notModified(_ tag: String, _ request: RequestState) -> PreparedResponse? {
        guard let condition = engine.header("If-None-Match", of: request), ETag.matches(ifNoneMatch: condition, tag) else {
            return nil
        }
        return PreparedResponse(status: 304, headers: [HTTPHeader("ETag", tag)] + valueHeaders)
    }

    private func fixed(_ reply: FixedReply) -> PreparedResponse { fixedResponses[reply.rawValue] }

    /// The `buckets` layout's 503 while no dataset generation is usable, built once per detail.
    private var datasetResponses: (detail: String, lookup: PreparedResponse, readiness: PreparedResponse)?

    private func datasetResponse(_ detail: String, readiness: Bool) -> PreparedResponse {
        if let cached = datasetResponses, cached.detail == detail { return readiness ? cached.readiness : cached.lookup }
        let retry = [HTTPHeader("Retry-After", "1")]
        let built = (detail: detail,
                     lookup: PreparedResponse(Reply.detail(503, "Dataset unavailable: \(detail)", headers: retry)),
                     readiness: PreparedResponse(Reply.detail(503, "Not ready: \(detail)", headers: retry)))
        datasetResponses = built
        return readiness ? built.readiness : built.lookup
    }

    /// The answer to a Redis error reply: 502 naming only the error's code (`WRONGTYPE`, `MOVED`,
    /// `NOPERM`…), never its text, which can name hosts, ports, users or keys; the text goes to the
    /// log (at most a line a second). Built once per code.
    private func redisErrorResponse(_ message: String) -> PreparedResponse {
        metrics.redisError(kind: "reply")
        if let suffix = redisErrorLog.admit(nowMs: SystemClock.milliseconds()) {
            logger.warning("Redis answered an error: \(message)\(suffix)", metadata: ["redis": "\(redis.settings.targetDescription)"])
        }
        let code = Self.redisErrorCode(message)
        if let response = redisErrorResponses[code] { return response }
        let response = PreparedResponse(.redisError(code))
        response.addHeaders(corsHeaders)
        if redisErrorResponses.count < 32 { redisErrorResponses[code] = response }
        return response
    }

    /// The first word of a Redis error when it is an error code (capital letters), else `ERR`.
    static func redisErrorCode(_ message: String) -> String {
        let word = message.utf8.prefix { $0 != UInt8(ascii: " ") }
        guard (1...32).contains(word.count), word.allSatisfy({ (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }) else { return "ERR" }
        return String(decoding: word, as: UTF8.self)
    }

    /// The 200 answer carrying `value` (its bytes, or a JSON string), or 503 when big answers not
    /// yet sent already hold `max_unsent_bytes`. A big answer's bytes stay counted in `unsent`
    /// until its request completes (sent, or the connection closed).
    private func valueResponse(_ value: [UInt8], for request: RequestState) -> PreparedResponse {
        let tag: String? = etag ? ETag.make(value, raw: request.raw) : nil
        if let tag, let notModified = notModified(tag, request) { return notModified }
        let counted = value.count >= UnsentAnswers.countedBytes
        if counted {
            // Checked before the answer is built: a refused one costs no memory.
            guard unsent.reserve(value.count) else { return unsentFull }
            unsentBytes[request.slot] = value.count
        }
        let response: PreparedResponse
        if request.raw {
            response = PreparedResponse(okBody: value, contentType: "application/octet-stream", varyAccept: true)
        } else {
            jsonScratch.removeAll(keepingCapacity: true)
            let encoded = JSONString.encode(value, into: &jsonScratch)
            if encoded {
                response = PreparedResponse(okBody: jsonScratch, contentType: "application/json", varyAccept: true)
                if counted {
                    unsent.add(jsonScratch.count - value.count)
                    unsentBytes[request.slot] = jsonScratch.count
                }
            } else {
                response = fixed(.notUTF8)
                if counted {
                    unsent.release(value.count)
                    unsentBytes[request.slot] = 0
                }
            }
            if jsonScratch.capacity > Self.scratchKeepBytes { jsonScratch = [] }
            guard encoded else { return response }
        }
        if let tag { response.addHeaders([HTTPHeader("ETag", tag)]) }
        if !valueHeaders.isEmpty { response.addHeaders(valueHeaders) }
        return response
    }

    // MARK: POST /mget (the batch's bookkeeping and answer: BatchLookup.swift)

    func bodyLimit(_ request: RequestState, method: String, path: [UInt8]) -> Int? {
        guard Router.takesBody(method: method, path: path) else { return nil }
        request.routeLabel = .mget
        if accessLog.isOn {
            request.method = method
            request.path = path
        }
        return router.mgetMaxBodyBytes
    }

    func bodyTooLarge(_ request: RequestState) -> PreparedResponse { fixed(.mgetBodyTooLarge) }

    /// Submits every key of a `POST /mget` through the single lookup entry point, each with its
    /// own token (`LookupTokens.batch`); answers at once when they all completed already.
    private func startBatch(_ request: RequestState) -> HandlerDecision {
        let keys: [[UInt8]]
        switch router.mgetKeys(request.body) {
        case .keys(let parsed): keys = parsed
        case .refused(let reply): return .respond(fixed(reply))
        case .invalid(let reply):
            let response = PreparedResponse(reply)
            response.addHeaders(corsHeaders)
            return .respond(response)
        }
        request.body = []
        metrics.mgetLookups(keys.count)
        let batch = BatchLookup(count: keys.count, maxAnswerBytes: mgetMaxAnswerBytes)
        batches[request.slot] = batch
        let nowMs = SystemClock.milliseconds()
        // Each key is looked up once, however often the request names it.
        let mayRepeat = keys.count > 1
        var firstPlaces: [[UInt8]: Int] = [:]
        if mayRepeat { firstPlaces.reserveCapacity(keys.count) }
        for (index, key) in keys.enumerated() {
            if mayRepeat {
                if let first = firstPlaces[key] {
                    batch.duplicate(index, of: first)
                    continue
                }
                firstPlaces[key] = index
            }
            redis.lookup(key: key, token: LookupTokens.batch(slot: request.slot, index: index), nowMs: nowMs)
        }
        if batch.submitted() { finishBatch(request, batch) }
        if let response = request.response {
            request.response = nil
            return .respond(response)
        }
        return .suspend
    }

    private func batchLookupCompleted(_ request: RequestState, _ index: Int, _ result: LookupResult) {
        guard let batch = batches[request.slot] else { return }
        if batch.complete(index, result) { finishBatch(request, batch) }
    }

    private func finishBatch(_ request: RequestState, _ batch: BatchLookup) {
        batches[request.slot] = nil
        let response: PreparedResponse
        switch batch.outcome() {
        case .failed(_, let result):
            response = noValueResponse(result)
        case .notUTF8(let index):
            response = PreparedResponse(.mgetNotUTF8(index: index))
            response.addHeaders(corsHeaders)
        case .tooLarge(let limit):
            response = PreparedResponse(.mgetAnswerTooLarge(limit: limit))
            response.addHeaders(corsHeaders)
        case .values(let body):
            // A big answer counts against `max_unsent_bytes` as a big value does.
            if body.count >= UnsentAnswers.countedBytes {
                guard unsent.reserve(body.count) else { return answer(request, unsentFull) }
                unsentBytes[request.slot] = body.count
            }
            response = PreparedResponse(okBody: body, contentType: "application/json")
            response.addHeaders(corsHeaders)
        }
        answer(request, response)
    }

    /// The Redis connection's events, for the log, the metrics and the supervisor.
    private func redisEvent(_ event: PipelineEvent) {
        switch event {
        case .connecting(let reconnect):
            if reconnect { metrics.redisReconnect() }
        case .timedOut:
            metrics.redisTimeout()
        case .connectionFailed(let error):
            metrics.redisError(kind: "\(error.kind)")
        case .redisDown(let error):
            activity.redisAvailable.store(false, ordering: .relaxed)
            logger.error("Redis unavailable: \(error)", metadata: ["redis": "\(redis.settings.targetDescription)"])
        case .redisRestored:
            activity.redisAvailable.store(true, ordering: .relaxed)
            logger.notice("Redis connection restored", metadata: ["redis": "\(redis.settings.targetDescription)"])
        case .dataset(let change):
            datasetEvent(change)
        case .cluster(let change):
            clusterEvent(change)
        case .settingsApplied(let previous):
            let target = redis.settings.targetDescription
            logger.info("Redis settings applied\(target != previous.targetDescription ? " (now \(target))" : "")")
        }
    }

    // MARK: Near-cache

    /// A value the near-cache holds (a hit): its JSON answer (no ETag, not counted as big) is built
    /// once the entry has been read often lately (`NearCache.attachmentFrequency`) and queued again
    /// for every later hit, as `/healthz` queues its prebuilt answer.
    private func cachedValueResponse(_ value: [UInt8], for request: RequestState) -> PreparedResponse {
        guard usesPreparedAnswers(request), value.count < UnsentAnswers.countedBytes else { return valueResponse(value, for: request) }
        if let answer = redis.attachment { return unsafeDowncast(answer, to: PreparedResponse.self) }
        let response = valueResponse(value, for: request)
        if response.status == 200 { redis.attach(response, bytes: response.bodyBytes + Self.preparedAnswerOverhead) }
        return response
    }

    /// Whether a hit for `request` is answered by its entry's prepared answer when it has one (an
    /// entry that has one then comes without its value: `CachedLookups.lookup(…attachmentSuffices:)`).
    private func usesPreparedAnswers(_ request: RequestState) -> Bool { !request.raw && !etag }

    /// What a prepared answer costs besides its body: libmicrohttpd's response and its header
    /// objects (name and value copies), the Swift object, the allocator's rounding (measured: ~510).
    static let preparedAnswerOverhead = 512

    private func reconfigureCacheNow(_ settings: CacheSettings) {
        let was = redis.cache != nil
        redis.reconfigure(settings, threads: threads)
        if redis.cache == nil { cacheActivity.publish(CacheCounters(), enabled: false) }
        if was || settings.enabled {
            logger.info("near-cache \(settings.enabled ? "restarted empty, \(settings.bytesPerWorker(threads: threads)) bytes" : "off")")
        }
    }

    /// Client tracking's events, for the log (the cache has acted on them already).
    private func trackingEvent(_ event: TrackingEvent) {
        switch event {
        case .started(let subscriber):
            logger.info("near-cache: Redis client tracking on (invalidations to client \(subscriber))")
        case .lost(let reason, _):
            logger.warning("near-cache: what was read through a lost tracking is dropped, reading through there until tracking is back: \(reason)")
        case .refused(let message):
            logger.error("near-cache off: Redis refused CLIENT TRACKING (Redis 6 or later is needed): \(message)")
        case .flushedAll:
            logger.info("near-cache: Redis was flushed (FLUSHALL/FLUSHDB), what was read there is dropped")
        case .invalidated:
            break
        }
    }

    /// Cluster mode: the slot map (logged once per change, whichever worker reads it first),
    /// redirects, map refreshes and node failures (counted per node).
    private func clusterEvent(_ change: ClusterEvent) {
        switch change {
        case .topology(let summary):
            guard serverMetrics.topologyChanged(summary.description) else { return }
            if summary.coveredSlots < ClusterSlot.count {
                logger.warning("Redis Cluster topology: \(summary)")
            } else {
                logger.notice("Redis Cluster topology: \(summary)")
            }
        case .slotsMoved:
            break // The near-cache has dropped their keys; `.topology` logs the new map.
        case .mapRefresh:
            metrics.clusterMapRefresh()
        case .redirected(let kind):
            metrics.clusterRedirect(kind == .moved ? "moved" : "ask")
        case .nodeFailed(let node, let error):
            metrics.nodeError(node: node.description)
            if let suffix = clusterLog.admit(nowMs: SystemClock.milliseconds()) {
                logger.warning("Redis Cluster node \(node) failed, its lookups answer 503 until the map moves its slots: \(error)\(suffix)")
            }
        case .mapUnavailable(let reason):
            if let suffix = clusterLog.admit(nowMs: SystemClock.milliseconds()) {
                logger.error("Redis Cluster slot map unavailable: \(reason)\(suffix)")
            }
        }
    }

    /// The `buckets` layout's dataset changes: one log line each (the tracker reports changes only).
    private func datasetEvent(_ change: DatasetEvent) {
        switch change {
        case .live(let descriptor, let previous):
            let from = previous.map { " (was '\($0)')" } ?? ""
            logger.notice("dataset generation '\(descriptor.generation)' live\(from): \(descriptor.bucketCount) buckets, \(descriptor.rows) rows, loaded \(descriptor.loadedAt) from \(descriptor.source)")
        case .unusable(let detail):
            logger.error("dataset unavailable, answering 503: \(detail)")
        case .unreadable(let generation, let reason):
            logger.warning("dataset descriptor '\(redis.settings.descriptorKey)' cannot be read (\(reason)): still serving generation '\(generation)'")
        case .readable(let generation):
            logger.notice("dataset descriptor readable again: generation '\(generation)' still live")
        }
    }
}
