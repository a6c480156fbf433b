import KVDCache
import KVDSettings

#if canImport(Glibc)
import Glibc
#endif

/// What the near-cache did, for metrics and the status line.
public struct CacheCounters: Sendable, Equatable {
    /// The cache's counts (hits, misses, stores, refused stale stores, evictions, keys
    /// invalidated, flushes) since kvd started: the caches a `[cache]` reload replaced included
    /// (each replacement counted as a flush), so that they never go back.
    public var cache = NearCache.Statistics()
    public var bytes = 0
    public var entries = 0
    /// Times tracking was confirmed (the first start and every restart after a loss).
    public var trackingStarts = 0
    public var trackingLosses = 0
    public var tracking = false

    public init() {}
}

/// A `RedisPipeline` with kvd's near-cache in front: the same surface (`lookup`, `ping`, the loop
/// calls), so that everything that looks keys up through it gets the cache. A hit completes the
/// lookup at once, during `lookup`; a miss goes to Redis, and its reply is stored when it comes
/// back if client tracking covered the read (see `ClientTracking`) and no invalidation or flush
/// overtook it (`NearCache`'s tickets).
///
/// With the cache off (`cache` nil) every call goes straight to the pipeline.
public final class CachedLookups {
    public let pipeline: RedisPipeline
    /// The cache and the tracking that feeds it, while `[cache] enabled`.
    public var cache: NearCache? { nearCache }
    public var tracking: ClientTracking? { clientTracking }
    // Stored privately behind public getters: a stored property that other modules can read keeps
    // Swift's dynamic exclusivity checks (a runtime call each) on every access, the hits' too.
    private var nearCache: NearCache?
    private var clientTracking: ClientTracking?
    private var cacheSettings: CacheSettings
    private var threads: Int
    private let complete: (LookupToken, LookupResult) -> Void
    private let observeTracking: (TrackingEvent) -> Void
    /// Lookups sent while tracking was on, by token: what to store their reply under.
    /// (`@exclusivity(unchecked)`: every tracked read; docs/performance.md, "Exclusivity checks".)
    @exclusivity(unchecked) private var pending: [Int: (key: [UInt8], redisKey: [UInt8], ticket: NearCache.Ticket, source: Int, slot: Int)] = [:]
    /// Set while a hit is being delivered: its entry may take an attachment.
    public var delivering: Bool { isDelivering }
    private var isDelivering = false
    /// Whether this loop turn already looked for invalidations before answering a hit.
    private var checkedThisTurn = false
    private var trackingStarts = 0
    private var trackingLosses = 0
    /// Runs a closure on another thread: where the cache's big tables are made, and big memory it
    /// lets go of is freed.
    private let elsewhere: ((@escaping @Sendable () -> Void) -> Void)?

    /// - Parameters:
    ///   - threads: the worker count (each worker's cache holds `max_bytes / threads`).
    ///   - complete: called once per lookup, as the pipeline's.
    ///   - observe: the pipeline's events (a dataset switch or new settings also flush the cache here).
    ///   - observeTracking: tracking's events (for the log; the cache has handled them already).
    ///   - elsewhere: runs what it is given on another thread (kvd: a new one): a whole flush's
    ///     emptied tables, and a cache that a reload replaces or stops, are freed there rather than
    ///     by the worker, which would stop answering meanwhile (~55 ms for a million-bucket index;
    ///     about a microsecond per entry for a whole cache), and the cache's index tables from
    ///     65,536 buckets on are made there ahead of need (11–25 ms for a million buckets).
    ///     Nil: all of it here.
    public init(settings: RedisSettings, cache cacheSettings: CacheSettings, threads: Int,
                elsewhere: ((@escaping @Sendable () -> Void) -> Void)? = nil,
                complete: @escaping (LookupToken, LookupResult) -> Void,
                observe: @escaping (PipelineEvent) -> Void = { _ in },
                observeTracking: @escaping (TrackingEvent) -> Void = { _ in }) {
        self.cacheSettings = cacheSettings
        self.threads = threads
        self.complete = complete
        self.observeTracking = observeTracking
        self.elsewhere = elsewhere
        var received: ((LookupToken, LookupResult) -> Void)?
        var events: ((PipelineEvent) -> Void)?
        pipeline = RedisPipeline(settings: settings) { received?($0, $1) } observe: { events?($0) }
        received = { [unowned self] token, result in replied(token, result) }
        events = { [unowned self] event in
            pipelineEvent(event)
            observe(event)
        }
        if cacheSettings.enabled { startCache() }
    }

    public var settings: RedisSettings { pipeline.settings }

    // MARK: Lookups

    /// Looks `key` up: from the cache when it holds it (completed before this returns), else from Redis.
    /// - Parameter attachmentSuffices: the owner answers a hit from its `attachment` when the entry
    ///   has one; such a hit is then delivered as `.bulk([])`, its value not copied out of the cache
    ///   (`NearCache.lookup(_:attachmentSuffices:)`).
    public func lookup(key: [UInt8], token: LookupToken, nowMs: Int64, attachmentSuffices: Bool = false) {
        if let cache, var entry = cache.lookup(key, attachmentSuffices: attachmentSuffices) {
            if !checkedThisTurn, let tracking {
                // The owner polled its HTTP sockets and the subscriber's together: invalidations
                // that arrived with this turn's requests are applied before its first hit is answered.
                checkedThisTurn = true
                let before = cache.changes
                tracking.handleArrived(nowMs: nowMs)
                if cache.changes != before {
                    guard let still = cache.lookup(key, attachmentSuffices: attachmentSuffices) else {
                        pipeline.lookup(key: key, token: token, nowMs: nowMs)
                        return
                    }
                    entry = still
                }
            }
            isDelivering = true
            switch entry {
            case .value(let value): complete(token, .reply(.bulk(value)))
            case .missing: complete(token, .reply(.null))
            }
            isDelivering = false
            return
        }
        pipeline.lookup(key: key, token: token, nowMs: nowMs)
    }

    public func ping(token: LookupToken, nowMs: Int64) { pipeline.ping(token: token, nowMs: nowMs) }

    /// The owner's prepared form of the entry being delivered (see `delivering`).
    public var attachment: AnyObject? { delivering ? cache?.attachment : nil }

    /// Keeps `object` with the entry being delivered, counting `bytes` in the cache's bound.
    public func attach(_ object: AnyObject, bytes: Int) {
        guard delivering else { return }
        cache?.attach(object, bytes: bytes)
    }

    /// A lookup goes out; `tracked`: on a link that tracks now, and not resent after a redirect.
    /// - Returns: whether its reply may be stored (Redis is then asked to track the read).
    private func sent(_ token: LookupToken, key: [UInt8], command: RedisCommand, source: Int, tracked: Bool) -> Bool {
        // A key is offered from its second recent read on, and to a full cache only if it was read
        // more often than what it would replace (`NearCache.admits`): one read costs a counter, not an entry.
        guard tracked, let cache, cache.admits(key) else {
            // Cluster mode: a resend (redirect, retry) replaces what the first send recorded.
            if !pending.isEmpty { pending.removeValue(forKey: token.value) }
            return false
        }
        // The ticket is taken now: an invalidation or flush from any node after this refuses the reply.
        let redisKey = command.firstKey
        // Cluster mode: the entry's slot, so that the keys of a slot that moves can be dropped alone.
        let slot = pipeline.settings.cluster ? ClusterSlot.ofBytes(redisKey) : 0
        pending[token.value] = (key, redisKey, cache.ticket(), source, slot)
        return true
    }

    private func replied(_ token: LookupToken, _ result: LookupResult) {
        guard let read = pending.removeValue(forKey: token.value), let cache else {
            complete(token, result)
            return
        }
        switch result {
        case .reply(.bulk(let value)) where value.count <= cacheSettings.maxValueBytes:
            cache.store(read.key, .value(value), redisKey: read.redisKey, ticket: read.ticket, source: read.source, group: read.slot)
        case .reply(.null) where cacheSettings.cacheMissing && !pipeline.settings.cluster:
            // Not on a cluster: a key that does not exist may be created on another node after its
            // slot moved, and the node that answered "missing" has nothing to invalidate then.
            cache.store(read.key, .missing, redisKey: read.redisKey, ticket: read.ticket, source: read.source, group: read.slot)
        default:
            break
        }
        // Not `delivering`: an entry takes its prepared answer at a hit once it is read often
        // (`NearCache.attachmentFrequency`), so that entries read now and then (a uniform load's,
        // a skewed load's tail) cost the cache no answer (about 560 bytes each).
        complete(token, result)
    }

    // MARK: Cache life

    private func startCache() {
        nearCache = newCache()
        let tracking = ClientTracking(pipeline: pipeline) { [unowned self] event in trackingEvent(event) }
        tracking.onLookupSent { [unowned self] token, key, command, source, tracked in
            sent(token, key: key, command: command, source: source, tracked: tracked)
        }
        clientTracking = tracking
    }

    private func stopCache() {
        tracking?.stop()
        clientTracking = nil
        dropCache()
        pending.removeAll()
    }

    private func newCache() -> NearCache {
        let cache = NearCache(maxBytes: cacheSettings.bytesPerWorker(threads: threads), statistics: earlier)
        cache.elsewhere = elsewhere
        return cache
    }

    /// What the cache that a reload replaced or stopped had counted (with those before it): where
    /// the next cache's counts start, so that they never go back.
    private var earlier = NearCache.Statistics()

    /// Lets go of the cache, freeing it on another thread when `elsewhere` allows; its counts
    /// carry over (`earlier`), its emptying counted as a flush.
    private func dropCache() {
        if let cache {
            earlier = cache.statistics
            earlier.flushes += 1
        }
        guard let elsewhere, let dropped = nearCache.take() else {
            nearCache = nil
            return
        }
        let disposal = Disposal(consume dropped)
        elsewhere { disposal.free() }
    }

    /// New `[cache]` settings (a reload): the cache starts empty (or stops).
    public func reconfigure(_ next: CacheSettings, threads: Int) {
        guard next != cacheSettings || threads != self.threads else { return }
        cacheSettings = next
        self.threads = threads
        let wasOn = cache != nil
        if wasOn && next.enabled {
            // Tracking stays; only the cache is replaced (in-flight reads were sent for the old one).
            pending.removeAll()
            dropCache()
            nearCache = newCache()
        } else if wasOn {
            stopCache()
        } else if next.enabled {
            startCache()
        }
    }

    private func trackingEvent(_ event: TrackingEvent) {
        guard let cache else { return }
        switch event {
        case .started:
            trackingStarts += 1
        case .lost(_, let source):
            // Only what was read there: other nodes' tracking still covers the rest (cluster mode).
            trackingLosses += 1
            cache.flush(source: source)
        case .refused:
            trackingLosses += 1
            cache.flush()
        case .invalidated(let keys):
            for key in keys { cache.invalidate(redisKey: key) }
        case .flushedAll(let source):
            cache.flush(source: source)
        }
        observeTracking(event)
    }

    private func pipelineEvent(_ event: PipelineEvent) {
        switch event {
        case .settingsApplied:
            // Another server, database, layout or prefix: nothing cached is known to be right.
            cache?.flush()
            if cache == nil, cacheSettings.enabled {
                startCache()
            } else {
                tracking?.retarget(pipeline.settings)
            }
        case .dataset(.live):
            // A new generation: the same keys now read other Redis keys.
            cache?.flush()
        case .cluster(.slotsMoved(let slots)):
            // A key cached from a slot's old node may now be written on another, whose invalidations
            // kvd's tracking there does not cover: the keys of those slots go, the rest stay.
            cache?.flush(groups: slots.contains)
        default:
            break
        }
    }

    /// What the cache did so far.
    public var counters: CacheCounters {
        var counters = CacheCounters()
        guard let cache else { return counters }
        counters.cache = cache.statistics
        counters.bytes = cache.bytes
        counters.entries = cache.count
        counters.trackingStarts = trackingStarts
        counters.trackingLosses = trackingLosses
        counters.tracking = tracking?.isTracking ?? false
        return counters
    }

    // MARK: The owner's loop

    public func retarget(_ next: RedisSettings, nowMs: Int64) { pipeline.retarget(next, nowMs: nowMs) }

    public func appendPollDescriptors(to descriptors: inout [pollfd]) {
        pipeline.appendPollDescriptors(to: &descriptors)
        tracking?.appendPollDescriptors(to: &descriptors)
    }

    public func handle(_ descriptors: ArraySlice<pollfd>, nowMs: Int64) {
        // Invalidations first: a reply they overtake is refused rather than stored and dropped.
        checkedThisTurn = false
        tracking?.handle(descriptors, nowMs: nowMs)
        pipeline.handle(descriptors, nowMs: nowMs)
    }

    public func flush(nowMs: Int64) {
        pipeline.flush(nowMs: nowMs)
        tracking?.flush(nowMs: nowMs)
    }

    public func checkDeadlines(nowMs: Int64) {
        pipeline.checkDeadlines(nowMs: nowMs)
        tracking?.checkDeadlines(nowMs: nowMs)
        // What a flush dropped is freed a batch per turn, not in one long stall.
        if let cache, cache.hasPendingWork { cache.doPendingWork() }
    }

    public func nextDeadlineMs() -> Int64? {
        // Entries left to drop or memory to free: the next turn comes at once, even with nothing else to do.
        if cache?.hasPendingWork == true { return 0 }
        return switch (pipeline.nextDeadlineMs(), tracking?.nextDeadlineMs) {
        case (let a?, let b?): min(a, b)
        case (let a, let b): a ?? b
        }
    }

    public func connectEarly(nowMs: Int64) { pipeline.connectEarly(nowMs: nowMs) }
    public func pollDataset(nowMs: Int64) { pipeline.pollDataset(nowMs: nowMs) }
    public var nextDatasetPollMs: Int64? { pipeline.nextDatasetPollMs }

    public func abandon() {
        pipeline.abandon()
        tracking?.stop()
    }
}
