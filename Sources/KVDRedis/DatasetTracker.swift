import KVDDataset
import KVDSettings

/// What a `buckets` (or `string` with generations) pipeline learned about the live dataset generation, for its owner's log.
/// Each is reported once per change, not once per poll.
public enum DatasetEvent: Sendable, Equatable {
    /// A generation serves lookups: read for the first time, switched to by kvload, or usable
    /// again after a problem; `previous` is the generation it replaced, if any.
    case live(DatasetDescriptor, previous: String?)
    /// No usable generation: lookups and `/readyz` answer 503 with this detail.
    case unusable(String)
    /// The descriptor cannot be read (Redis down, too slow): lookups keep using `keeping`.
    case unreadable(keeping: String, reason: String)
    /// The descriptor can be read again after `.unreadable`; `generation` is still live.
    case readable(generation: String)
}

/// The dataset part of a `buckets` pipeline (or a `string` one with `generations = yes`): which
/// generation lookups use, and the poll that follows kvload's switches.
///
/// About once a second it sends `HGETALL <descriptor>` and `EXISTS <marker of the live
/// generation>` behind the lookups in flight; a descriptor naming another generation is switched
/// to once that generation's marker exists (`EXISTS` again). Switches happen between lookups:
/// each lookup's `HGET` names one generation, chosen when it is submitted. Lookups submitted
/// before the first descriptor is known wait for it (they are held, then submitted again).
final class DatasetTracker {
    /// How often the descriptor is read: under a second, so that a switch (this poll, then the new
    /// generation's marker check) is followed within one second.
    static let pollIntervalMs: Int64 = 900
    // Tokens of the tracker's own commands (clients' tokens are request slots, never negative).
    static let descriptorToken = LookupToken(-1)
    static let liveMarkerToken = LookupToken(-2)
    static let candidateMarkerToken = LookupToken(-3)

    enum Readiness {
        /// Nothing known yet: hold the lookup until the descriptor is read.
        case waiting
        case unusable(String)
        case live
    }

    private typealias Held = RedisPipeline.Held

    private(set) var active = false
    /// The layout the descriptor must name (kvd's configured one).
    private var layout = DatasetDescriptor.Layout.buckets
    private var datasetPrefix: [UInt8] = []
    private var descriptorKey: [UInt8] = []
    private var descriptorName = ""
    /// The generation lookups use, and its key prefix `<prefix><generation>:`.
    private var live: DatasetDescriptor?
    private var livePrefix: [UInt8] = []
    /// Why no generation is usable (the 503 detail); nil while `live` serves or nothing is known.
    private var problem: String?
    /// The last detail or generation reported, so each change is reported once.
    private var reportedProblem: String?
    private var reportedUnreadable = false
    /// Internal commands sent and not yet answered (one poll round at a time).
    private var outstanding = 0
    /// The descriptor read in this round when it names the live generation (its marker check follows).
    private var confirming: DatasetDescriptor?
    /// A descriptor naming another generation, switched to once its marker exists.
    private var candidate: DatasetDescriptor?
    /// Why the last round could not read the descriptor (for lookups held while nothing is known).
    private var lastFailure: LookupFailure = .unavailable
    private var nextPollMs: Int64 = 0
    private var lastNowMs: Int64 = 0
    private var held: [Held] = []
    /// The Redis key of the last lookup built (cluster mode routes by its slot).
    private(set) var lastRedisKey: [UInt8] = []

    private let deliver: (LookupToken, LookupResult) -> Void
    private let observe: (PipelineEvent) -> Void
    /// The pipeline that owns this tracker (set once by it; the tracker is used only through it).
    /// Unowned, not weak: a weak reference gives the pipeline a side table that LeakSanitizer
    /// reported as leaked at kvd's exit in the longer near-cache tests (scripts/sanitize.sh).
    unowned var pipeline: RedisPipeline?

    init(deliver: @escaping (LookupToken, LookupResult) -> Void, observe: @escaping (PipelineEvent) -> Void) {
        self.deliver = deliver
        self.observe = observe
    }

    /// Takes the settings in force (a reload may change the prefix, the descriptor or the layout):
    /// what was known is forgotten and read again.
    func configure(_ settings: RedisSettings) {
        let nextPrefix = Array(settings.prefix.utf8)
        let nextDescriptor = Array(settings.descriptorKey.utf8)
        let nextActive = settings.layout == .buckets || (settings.layout == .string && settings.generations)
        let nextLayout: DatasetDescriptor.Layout = settings.layout == .string ? .string : .buckets
        guard nextActive != active || nextLayout != layout || nextPrefix != datasetPrefix || nextDescriptor != descriptorKey else { return }
        active = nextActive
        layout = nextLayout
        datasetPrefix = nextPrefix
        descriptorKey = nextDescriptor
        descriptorName = settings.descriptorKey
        live = nil
        livePrefix = []
        problem = nil
        reportedProblem = nil
        reportedUnreadable = false
        confirming = nil
        candidate = nil
        nextPollMs = 0
    }

    var readiness: Readiness {
        if let problem { return .unusable(problem) }
        return live == nil ? .waiting : .live
    }

    /// Adds the lookup's arguments after `HGET`: the bucket of `key` in the live generation, then
    /// `key`; or after `GET` (`string` layout): `<prefix><generation>:<key>`.
    func addLookupArguments(for key: [UInt8], to command: inout RedisCommand) {
        guard let live else { return }
        lastRedisKey.removeAll(keepingCapacity: true)
        live.appendRedisKey(for: key, generationPrefix: livePrefix, to: &lastRedisKey)
        command.add(lastRedisKey)
        if live.layout == .buckets { command.add(key) }
    }

    // MARK: Polling

    /// When `poll` has something to do next.
    var nextPollDeadlineMs: Int64? { active && outstanding == 0 ? nextPollMs : nil }

    /// Starts a poll round when one is due and none is in flight.
    func poll(nowMs: Int64) {
        lastNowMs = nowMs
        guard active, outstanding == 0, nowMs >= nextPollMs else { return }
        startRound(nowMs: nowMs)
    }

    private func startRound(nowMs: Int64) {
        guard let pipeline else { return }
        nextPollMs = nowMs + Self.pollIntervalMs
        confirming = nil
        candidate = nil
        outstanding = 1
        var command = RedisCommand()
        command.add("HGETALL")
        command.add(descriptorKey)
        pipeline.sendInternal(command, key: descriptorKey, token: Self.descriptorToken, nowMs: nowMs)
        // The descriptor's answer (a failure may have come at once) decides whether the marker is checked.
        if outstanding > 0, let live {
            sendMarkerCheck(live, token: Self.liveMarkerToken, nowMs: nowMs)
        }
    }

    private func sendMarkerCheck(_ descriptor: DatasetDescriptor, token: LookupToken, nowMs: Int64) {
        outstanding += 1
        var command = RedisCommand()
        let marker = DatasetDescriptor.markerKey(generation: descriptor.generation, datasetPrefix: datasetPrefix)
        command.add("EXISTS")
        command.add(marker)
        pipeline?.sendInternal(command, key: marker, token: token, nowMs: nowMs)
    }

    // MARK: Holding lookups until the descriptor is known

    /// Keeps `request` until the descriptor is read (a round starts if none is under way).
    func hold(_ request: RedisPipeline.Held, nowMs: Int64) {
        held.append(request)
        lastNowMs = nowMs
        if outstanding == 0 { startRound(nowMs: nowMs) }
    }

    /// Submits the held lookups again once something is known, or fails them with why nothing is.
    private func releaseHeld() {
        guard !held.isEmpty, let pipeline else { return }
        let waiting = held
        held.removeAll()
        for entry in waiting {
            switch readiness {
            case .waiting:
                deliver(entry.token, .failed(lastFailure))
            case .live, .unusable:
                switch entry {
                case .lookup(let token, let key): pipeline.lookup(key: key, token: token, nowMs: lastNowMs)
                case .ping(let token): pipeline.ping(token: token, nowMs: lastNowMs)
                }
            }
        }
    }

    /// Completes every held lookup with `.shuttingDown`.
    func abandonHeld() {
        let waiting = held
        held.removeAll()
        for entry in waiting {
            deliver(entry.token, .failed(.shuttingDown))
        }
    }

    // MARK: Replies

    /// Takes the reply (or failure) of one of the tracker's own commands.
    func receive(_ token: LookupToken, _ result: LookupResult) {
        outstanding = max(0, outstanding - 1)
        switch token {
        case Self.descriptorToken: descriptorRead(result)
        case Self.liveMarkerToken: liveMarkerChecked(result)
        case Self.candidateMarkerToken: candidateMarkerChecked(result)
        default: break
        }
        if outstanding == 0 { releaseHeld() }
    }

    private func descriptorRead(_ result: LookupResult) {
        let items: [RedisReply]
        switch result {
        case .failed(let failure):
            return unreadable(failure, reason: failure == .timedOut ? "Redis did not answer in time" : "Redis is unavailable")
        case .reply(.error(let message)):
            return unusable("the dataset descriptor '\(descriptorName)' cannot be read: \(message)")
        case .reply(.array(let array)):
            items = array
        case .reply:
            return unusable("the dataset descriptor '\(descriptorName)' cannot be read: unexpected reply to HGETALL")
        }
        var fields: [(name: [UInt8], value: [UInt8])] = []
        var index = 0
        while index + 1 < items.count {
            if case .bulk(let name) = items[index], case .bulk(let value) = items[index + 1] { fields.append((name, value)) }
            index += 2
        }
        let descriptor: DatasetDescriptor
        do {
            descriptor = try DatasetDescriptor(fields: fields)
        } catch {
            return unusable("\(error.description) (key '\(descriptorName)')")
        }
        guard descriptor.layout == layout else {
            return unusable("the dataset descriptor '\(descriptorName)' describes a '\(descriptor.layout.rawValue)' generation; kvd is configured with layout = \(layout.rawValue)")
        }
        if let live, live.generation == descriptor.generation, live.bucketCount == descriptor.bucketCount, live.hash == descriptor.hash {
            confirming = descriptor
        } else {
            candidate = descriptor
            sendMarkerCheck(descriptor, token: Self.candidateMarkerToken, nowMs: lastNowMs)
        }
    }

    private func liveMarkerChecked(_ result: LookupResult) {
        if let confirming { markerChecked(result, for: confirming) }
    }

    private func candidateMarkerChecked(_ result: LookupResult) {
        if let candidate { markerChecked(result, for: candidate) }
    }

    /// The generation's marker exists: use it; it does not: the generation is gone.
    private func markerChecked(_ result: LookupResult, for descriptor: DatasetDescriptor) {
        switch result {
        case .reply(.integer(let count)) where count > 0:
            use(descriptor)
        case .reply(.integer):
            unusable(goneDetail(descriptor))
        case .failed(let failure):
            unreadable(failure, reason: "Redis is unavailable")
        case .reply(let other):
            unusable("EXISTS of generation '\(descriptor.generation)''s marker answered \(other)")
        }
    }

    private func goneDetail(_ descriptor: DatasetDescriptor) -> String {
        let marker = String(decoding: DatasetDescriptor.markerKey(generation: descriptor.generation, datasetPrefix: datasetPrefix), as: UTF8.self)
        return "the dataset generation '\(descriptor.generation)' named by '\(descriptorName)' is gone: its marker key '\(marker)' does not exist (deleted, or the load never finished)"
    }

    // MARK: State changes

    private func use(_ descriptor: DatasetDescriptor) {
        let previous = live?.generation
        let changed = previous != descriptor.generation || problem != nil || live == nil || live?.bucketCount != descriptor.bucketCount
        live = descriptor
        livePrefix = descriptor.keyPrefix(datasetPrefix: datasetPrefix)
        problem = nil
        reportedProblem = nil
        if reportedUnreadable {
            reportedUnreadable = false
            if !changed { observe(.dataset(.readable(generation: descriptor.generation))) }
        }
        if changed { observe(.dataset(.live(descriptor, previous: previous))) }
    }

    private func unusable(_ detail: String) {
        live = nil
        livePrefix = []
        problem = detail
        reportedUnreadable = false
        if reportedProblem != detail {
            reportedProblem = detail
            observe(.dataset(.unusable(detail)))
        }
    }

    /// The descriptor could not be read: the live generation (if any) keeps serving.
    private func unreadable(_ failure: LookupFailure, reason: String) {
        lastFailure = failure
        guard let live, problem == nil else { return }
        if !reportedUnreadable {
            reportedUnreadable = true
            observe(.dataset(.unreadable(keeping: live.generation, reason: reason)))
        }
    }
}
