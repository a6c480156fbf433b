import KVDConfig
import KVDDataset
import KVDRedis
import KVDSystem

/// Where the rows of a `buckets` load go: the generation's key prefix and bucket count.
public struct BucketPlacement: Sendable, Equatable {
    public let descriptor: DatasetDescriptor
    public let generationPrefix: [UInt8]

    public init(descriptor: DatasetDescriptor, datasetPrefix: [UInt8]) {
        self.descriptor = descriptor
        generationPrefix = descriptor.keyPrefix(datasetPrefix: datasetPrefix)
    }

    /// The bucket that holds `key`.
    func bucket(of key: [UInt8]) -> Int {
        descriptor.hash.bucket(of: key, count: descriptor.bucketCount)
    }
}

extension LoadOptions {
    /// Fields per bucket a new generation aims at without `--bucket-fields`: HGET scans a
    /// bucket's listpack, so fewer fields answer faster and cost a little more memory per pair
    /// (docs/performance.md has the measurements that chose it).
    public static let defaultBucketFields = 64
}

/// Redis's compact-hash limits (`hash-max-listpack-entries`, `hash-max-listpack-value`).
struct ListpackLimits: Equatable {
    var entries: Int
    var value: Int
    /// False when CONFIG GET was refused and Redis's compiled-in defaults are assumed.
    var readFromRedis: Bool

    static let redisDefaults = ListpackLimits(entries: 128, value: 64, readFromRedis: false)

    /// Fields per bucket kvload aims at: `requested` (`--bucket-fields`, else the default), at
    /// most half the entries limit, so that the fullest of thousands of buckets (hashing is
    /// uneven: ± a few √N) stays compact.
    func fieldsPerBucket(requested: Int?) -> Int {
        max(1, min(requested ?? LoadOptions.defaultBucketFields, entries / 2))
    }

    /// The bucket count for `rows` rows at `fieldsPerBucket` fields each.
    static func bucketCount(forRows rows: Int, fieldsPerBucket: Int) -> Int {
        max(1, (rows + fieldsPerBucket - 1) / fieldsPerBucket)
    }
}

/// `layout = buckets`, or `layout = string` with `generations = yes`. A first load, or
/// `--replace`, writes a new generation beside the live one, checks it, writes its marker,
/// switches the descriptor to it with one `HSET` (atomic), then deletes the generations it
/// replaced after a grace period. Without `--replace`, rows are merged into the live generation
/// (with its bucket count). String generations are keys `<prefix><generation>:<key>` (MSET).
final class GenerationTarget: LoadTarget {
    private let settings: RedisSettings
    private let options: LoadOptions
    private let paths: [String]
    private let tally: LoadTally
    private let datasetPrefix: [UInt8]
    /// `.buckets`, or `.string` (generations of plain keys).
    private let layout: DatasetDescriptor.Layout
    private(set) var writeMode = WriteMode.buckets(BucketPlacement(
        descriptor: DatasetDescriptor(generation: "none", layout: .buckets, bucketCount: 1, rows: 0, loadedAt: "", source: ""),
        datasetPrefix: []))
    private(set) var intoEmptyTarget = false
    /// The generation written (new, or the live one for a merge).
    private var generation: DatasetDescriptor?
    /// The generation that was live when the load began.
    private var previous: DatasetDescriptor?
    private var limits = ListpackLimits.redisDefaults
    /// Whether this load writes a new generation (else it merges into the live one).
    private var writesNewGeneration = false
    /// Set once the descriptor switch has (or may have) been sent.
    private var switched = false

    init(settings: RedisSettings, options: LoadOptions, paths: [String], tally: LoadTally) {
        self.settings = settings
        self.options = options
        self.paths = paths
        self.tally = tally
        datasetPrefix = Array(settings.prefix.utf8)
        layout = settings.layout == .string ? .string : .buckets
    }

    /// How rows of `descriptor` become commands: HSET into its buckets, or MSET of its string keys.
    private func writeMode(for descriptor: DatasetDescriptor) -> WriteMode {
        switch layout {
        case .buckets: .buckets(BucketPlacement(descriptor: descriptor, datasetPrefix: datasetPrefix))
        case .string: .strings(prefix: String(decoding: descriptor.keyPrefix(datasetPrefix: datasetPrefix), as: UTF8.self),
                               ttlSeconds: options.ttlSeconds, cluster: settings.cluster)
        }
    }

    var writeSettings: RedisSettings { settings }

    private var registryKey: [UInt8] { DatasetDescriptor.registryKey(datasetPrefix: datasetPrefix) }

    func prepare(_ connection: any LoadChannel) throws(LoadFailure) {
        if layout == .buckets { limits = try Self.readListpackLimits(connection) }
        let current = try GenerationStore(connection: connection, settings: settings).liveDescriptor()
        switch current {
        case .live(let live) where !options.replace:
            generation = live
            previous = live
            writesNewGeneration = false
            writeMode = writeMode(for: live)
            return
        case .invalid(let problem) where !options.replace:
            throw LoadFailure(.usage, "kvload: \(problem): nothing to merge into; --replace writes a new generation and switches to it")
        case .live(let live):
            previous = live
        case .missing, .invalid:
            break
        }
        let name = "g" + SystemClock.utcTimestamp().filter(\.isNumber) + "-" + String(CurrentProcess.id)
        guard layout == .buckets else {
            let fresh = DatasetDescriptor(generation: name, layout: .string, bucketCount: 1, rows: 0, loadedAt: "", source: paths.joined(separator: " "))
            try register(fresh, entry: 0, connection)
            writeMode = writeMode(for: fresh)
            tally.progress.note("kvload: writing generation '\(name)': string keys '\(settings.prefix)\(name):…'")
            return
        }
        let rows = try expectedRows()
        let perBucket = limits.fieldsPerBucket(requested: options.bucketFields)
        if let requested = options.bucketFields, requested > perBucket {
            tally.progress.note("kvload: --bucket-fields \(requested) is over half of hash-max-listpack-entries \(limits.entries): aiming at \(perBucket) fields per bucket so the buckets stay compact (raise hash-max-listpack-entries to allow more)")
        }
        let count = ListpackLimits.bucketCount(forRows: rows, fieldsPerBucket: perBucket)
        let fresh = DatasetDescriptor(generation: name, layout: .buckets, bucketCount: count, rows: 0,
                                      loadedAt: "", source: paths.joined(separator: " "))
        try register(fresh, entry: count, connection)
        intoEmptyTarget = true
        writeMode = writeMode(for: fresh)
        tally.progress.note("kvload: writing generation '\(name)': \(count) buckets for about \(rows) rows (\(perBucket) per bucket; hash-max-listpack-entries \(limits.entries)\(limits.readFromRedis ? "" : ", assumed: CONFIG GET refused"))")
    }

    /// Registers a new generation before its first row, so `--gc` can find it if this run is
    /// killed: the registry maps it to its bucket count (0: string keys, found by SCAN).
    private func register(_ fresh: DatasetDescriptor, entry: Int, _ connection: any LoadChannel) throws(LoadFailure) {
        let reply = try connection.call(["HSET", String(decoding: registryKey, as: UTF8.self), fresh.generation, String(entry)])
        try expectSuccess(reply, doing: "registering generation \(fresh.generation)")
        generation = fresh
        writesNewGeneration = true
    }

    /// Rows expected in the input: `--expected-rows`, else estimated from the files' sizes and a sample.
    private func expectedRows() throws(LoadFailure) -> Int {
        if let given = options.expectedRows { return given }
        var total = 0
        for path in paths {
            guard path != "-", let estimate = RowEstimate.rows(in: path, options: options) else {
                tally.progress.note("kvload: the size of standard input is unknown: sizing the new generation for \(LoadOptions.defaultExpectedRows) rows (pass --expected-rows N to size it for N)")
                return max(total, LoadOptions.defaultExpectedRows)
            }
            total += estimate
        }
        return total
    }

    func publish(_ connection: any LoadChannel, newKeys: Int) throws(LoadFailure) {
        guard let generation else { return }
        let store = GenerationStore(connection: connection, settings: settings)
        if layout == .buckets { adviseOnLimits(fields: newKeys, buckets: generation.bucketCount) }
        // String keys: MSET does not say which keys are new, so `rows` counts the rows acknowledged.
        let added = layout == .buckets ? newKeys : tally.summary.rowsWritten
        guard writesNewGeneration else {
            // A merge: the live generation's row count grows by the new fields.
            try expectSuccess(connection.call(["HINCRBY", settings.descriptorKey, "rows", String(added)]),
                              doing: "updating the descriptor's row count")
            return
        }
        let fields = layout == .buckets ? try store.fieldCount(of: generation) : added
        // A resent batch may report fewer new fields, never more; more fields than rows written is impossible.
        guard fields >= newKeys, fields <= tally.summary.rowsWritten else {
            throw LoadFailure(.temporaryFailure, "kvload: generation '\(generation.generation)' holds \(fields) fields but Redis acknowledged \(newKeys) distinct keys of \(tally.summary.rowsWritten) rows: Redis lost data during the load; the live generation was left untouched")
        }
        try LoadFailure.checkStopSignal(options)
        var live = generation
        live.rows = fields
        live.loadedAt = SystemClock.utcTimestamp()
        try expectSuccess(connection.call(["SET", store.markerName(live.generation), String(fields)]),
                          doing: "writing generation \(live.generation)'s marker")
        try LoadFailure.checkStopSignal(options)
        // The switch: one HSET of every field, atomic in Redis.
        var command = RedisCommand()
        command.add("HSET")
        command.add(settings.descriptorKey)
        for (name, value) in live.fields {
            command.add(name)
            command.add(value)
        }
        switched = true
        try expectSuccess(connection.call(command, key: Array(settings.descriptorKey.utf8)), doing: "the switch to generation \(live.generation) (HSET \(settings.descriptorKey))")
        let retired = previous.map { " replacing '\($0.generation)'" } ?? ""
        tally.progress.finish()
        tally.progress.note("kvload: generation '\(live.generation)' is live\(retired) (\(live.bucketCount) buckets, \(fields) keys)")
        retireOldGenerations(store, live: live.generation)
    }

    /// After the switch: waits the grace period (kvd follows the descriptor within about a second,
    /// and lookups already sent name the old generation), then deletes every registered generation
    /// but the live one: the one replaced and any a killed run left.
    private func retireOldGenerations(_ store: GenerationStore, live: String) {
        do {
            let others = try store.registeredGenerations().filter { $0.name != live }
            guard !others.isEmpty else { return }
            let names = others.map { "'\($0.name)'" }.joined(separator: ", ")
            tally.progress.note("kvload: deleting generation \(names) in \(options.graceSeconds) s (grace period for lookups in flight)")
            var waitedMs = 0
            while waitedMs < options.graceSeconds * 1000 {
                if options.stopSignal() != 0 {
                    tally.progress.note("kvload: interrupted during the grace period: generation \(names) not deleted; the new generation is live; run kvload --gc to delete them")
                    return
                }
                SystemClock.sleep(milliseconds: 50)
                waitedMs += 50
            }
            for generation in others { try store.delete(generation) }
        } catch {
            tally.progress.note("kvload: the new generation is live, but deleting the old ones failed (\(error)): run kvload --gc")
        }
    }

    /// Says once, after the load, when the data does not fit Redis's compact-hash limits.
    private func adviseOnLimits(fields: Int, buckets: Int) {
        let longest = tally.longestElement
        if longest > limits.value {
            let suggested = (longest + 7) / 8 * 8
            tally.progress.note("kvload: the longest key or value is \(longest) bytes, over Redis's hash-max-listpack-value \(limits.value): the buckets holding such pairs use Redis's larger hashtable encoding (answers are still correct). To keep them compact, add this line to redis.conf (and CONFIG SET it, then reload with --replace):\n  hash-max-listpack-value \(suggested)")
        }
        let average = fields / max(1, buckets)
        if average > limits.entries * 3 / 4 {
            tally.progress.note("kvload: the buckets hold \(average) fields on average, near or over hash-max-listpack-entries \(limits.entries): reload with --replace --expected-rows \(tally.summary.rowsWritten) to size the generation for this input")
        }
    }

    func discardUnpublished(_ connection: any LoadChannel) -> Bool {
        guard writesNewGeneration, !switched, let generation else { return false }
        let live = previous.map { "the live generation '\($0.generation)' is untouched" } ?? "no generation was live before, and none is now"
        do {
            try connection.abandonInFlight()
            try GenerationStore(connection: connection, settings: settings).delete((generation.generation, layout == .buckets ? generation.bucketCount : 0))
            tally.progress.note("kvload: nothing was switched: \(live); the partial generation '\(generation.generation)' was deleted")
        } catch {
            tally.progress.note("kvload: nothing was switched: \(live); the partial generation '\(generation.generation)' could not be deleted (\(error)): run kvload --gc")
        }
        return true
    }

    /// `CONFIG GET hash-max-listpack-*`, or Redis's defaults when CONFIG is refused (renamed, ACL).
    static func readListpackLimits(_ connection: any LoadChannel) throws(LoadFailure) -> ListpackLimits {
        var limits = ListpackLimits.redisDefaults
        for (name, keyPath) in [("hash-max-listpack-entries", \ListpackLimits.entries), ("hash-max-listpack-value", \ListpackLimits.value)] {
            let reply = try connection.call(RedisCommand(["CONFIG", "GET", name]), key: nil)
            guard case .array(let items) = reply, items.count == 2, case .bulk(let text) = items[1],
                  let value = Int(String(decoding: text, as: UTF8.self)) else { return .redisDefaults }
            limits[keyPath: keyPath] = value
        }
        limits.readFromRedis = true
        return limits
    }
}

/// The generations of a `buckets` dataset in Redis: the descriptor, kvload's registry, markers and buckets.
struct GenerationStore {
    let connection: any LoadChannel
    let settings: RedisSettings
    /// Keys per UNLINK and per HLEN script call.
    static let chunk = 1000

    enum Live {
        case missing
        case invalid(String)
        case live(DatasetDescriptor)
    }

    private var datasetPrefix: [UInt8] { Array(settings.prefix.utf8) }

    func markerName(_ generation: String) -> String {
        String(decoding: DatasetDescriptor.markerKey(generation: generation, datasetPrefix: datasetPrefix), as: UTF8.self)
    }

    private var registryName: String { String(decoding: DatasetDescriptor.registryKey(datasetPrefix: datasetPrefix), as: UTF8.self) }

    /// What the descriptor says.
    func liveDescriptor() throws(LoadFailure) -> Live {
        let reply = try connection.call(["HGETALL", settings.descriptorKey])
        guard case .array(let items) = reply else {
            if case .error(let message) = reply { return .invalid("the dataset descriptor '\(settings.descriptorKey)' cannot be read: \(message)") }
            return .invalid("the dataset descriptor '\(settings.descriptorKey)' cannot be read")
        }
        if items.isEmpty { return .missing }
        do {
            let descriptor = try DatasetDescriptor(fields: Self.pairs(items))
            guard descriptor.layout.rawValue == settings.layout.rawValue else { return .invalid("the dataset descriptor '\(settings.descriptorKey)' describes a '\(descriptor.layout.rawValue)' generation") }
            return .live(descriptor)
        } catch {
            return .invalid("\(error.description) (key '\(settings.descriptorKey)')")
        }
    }

    /// The generations kvload registered (name and bucket count).
    func registeredGenerations() throws(LoadFailure) -> [(name: String, buckets: Int)] {
        let reply = try connection.call(["HGETALL", registryName])
        try expectSuccess(reply, doing: "HGETALL \(registryName)")
        guard case .array(let items) = reply else { return [] }
        return Self.pairs(items).compactMap { pair in
            Int(String(decoding: pair.value, as: UTF8.self)).map { (String(decoding: pair.name, as: UTF8.self), $0) }
        }
    }

    /// The fields of every bucket of `generation` (HLEN summed by a script over up to `chunk` buckets
    /// of one slot per call; the calls pipelined).
    func fieldCount(of generation: DatasetDescriptor) throws(LoadFailure) -> Int {
        let script = "local n = 0 for _, k in ipairs(KEYS) do n = n + redis.call('HLEN', k) end return n"
        let prefix = generation.keyPrefix(datasetPrefix: datasetPrefix)
        let buckets = (0..<generation.bucketCount).map { generation.bucketName($0, generationPrefix: prefix) }
        var total = 0
        for replies in try callEach(buckets, { group in
            var command = RedisCommand(["EVAL", script, String(group.count)])
            for key in group { command.add(key) }
            return command
        }) {
            try expectSuccess(replies, doing: "counting the fields of generation \(generation.generation)")
            if case .integer(let count) = replies { total += Int(count) }
        }
        return total
    }

    /// One command per group of `keys` (`keyGroups`: `chunk` keys at most, one slot on a cluster),
    /// sent `chunk` commands at a time; the replies in order.
    private func callEach(_ keys: [[UInt8]], _ make: ([[UInt8]]) -> RedisCommand) throws(LoadFailure) -> [RedisReply] {
        let commands = connection.keyGroups(keys, limit: Self.chunk).map { (command: make($0), key: Optional($0[0])) }
        var replies: [RedisReply] = []
        for start in stride(from: 0, to: commands.count, by: Self.chunk) {
            replies += try connection.callAll(Array(commands[start..<min(start + Self.chunk, commands.count)]))
        }
        return replies
    }

    /// `UNLINK` of `keys`, grouped as `callEach` does.
    private func unlink(_ keys: [[UInt8]], what: String) throws(LoadFailure) {
        for reply in try callEach(keys, { group in
            var command = RedisCommand(["UNLINK"])
            for key in group { command.add(key) }
            return command
        }) {
            try expectSuccess(reply, doing: "UNLINK of \(what)")
        }
    }

    /// Deletes a generation: its marker first (kvd then stops using it), its buckets (UNLINK, `chunk`
    /// at a time, freed in the background) or, for string keys (0 buckets), the keys `SCAN` finds
    /// under its prefix, then its registry entry.
    func delete(_ generation: (name: String, buckets: Int)) throws(LoadFailure) {
        try expectSuccess(connection.call(["UNLINK", markerName(generation.name)]), doing: "UNLINK of a marker")
        if generation.buckets == 0 { try deleteStringKeys(of: generation.name) }
        let descriptor = DatasetDescriptor(generation: generation.name, layout: .buckets, bucketCount: generation.buckets, rows: 0, loadedAt: "", source: "")
        let prefix = descriptor.keyPrefix(datasetPrefix: datasetPrefix)
        try unlink((0..<generation.buckets).map { descriptor.bucketName($0, generationPrefix: prefix) }, what: "generation \(generation.name)'s buckets")
        try expectSuccess(connection.call(["HDEL", registryName, generation.name]), doing: "HDEL \(registryName)")
    }

    /// UNLINKs every key `<prefix><generation>:…` (`SCAN … MATCH` on every master, the prefix's glob
    /// characters escaped).
    private func deleteStringKeys(of generation: String) throws(LoadFailure) {
        var pattern = ""
        for character in settings.prefix + generation + ":" {
            if "*?[]\\".contains(character) { pattern.append("\\") }
            pattern.append(character)
        }
        try connection.scanEach(matching: pattern + "*") { keys throws(LoadFailure) in
            try unlink(keys, what: "generation \(generation)'s keys")
        }
    }

    static func pairs(_ items: [RedisReply]) -> [(name: [UInt8], value: [UInt8])] {
        var fields: [(name: [UInt8], value: [UInt8])] = []
        var index = 0
        while index + 1 < items.count {
            if case .bulk(let name) = items[index], case .bulk(let value) = items[index + 1] { fields.append((name, value)) }
            index += 2
        }
        return fields
    }
}

/// `kvload --gc`: deletes every generation kvload registered except the live one (what killed
/// runs left). Refuses when no valid descriptor names a live generation.
/// - Returns: the generations deleted.
public func collectOldGenerations(settings: RedisSettings, options: LoadOptions) throws(LoadFailure) -> [String] {
    guard settings.usesGenerations else { throw LoadFailure(.usage, "kvload: --gc applies to layout = buckets, or layout = string with generations") }
    if settings.cluster { try refuseOnCluster(settings: settings, options: options) }
    let connection = try makeLoadChannel(settings: settings, options: options, tally: LoadTally(progress: ProgressReporter(style: .off)), countsNewKeys: false)
    defer { connection.close() }
    try connection.connectFirstTime()
    let store = GenerationStore(connection: connection, settings: settings)
    let live: String
    switch try store.liveDescriptor() {
    case .live(let descriptor): live = descriptor.generation
    case .missing: throw LoadFailure(.usage, "kvload: --gc: the dataset descriptor '\(settings.descriptorKey)' is missing, so no generation is known to be live: nothing deleted")
    case .invalid(let problem): throw LoadFailure(.usage, "kvload: --gc: \(problem): nothing deleted")
    }
    let others = try store.registeredGenerations().filter { $0.name != live }
    for generation in others { try store.delete(generation) }
    return others.map(\.name)
}

extension RedisSettings {
    /// Whether the dataset lives in generations named by the descriptor: `buckets`, or `string` with `generations`.
    var usesGenerations: Bool { layout == .buckets || (layout == .string && generations) }
}

/// Estimates a file's rows from its size and a sample of its first records.
enum RowEstimate {
    static let sampleBytes = 4 << 20

    /// Rows in `path`, or nil when its size is unknown (a pipe).
    static func rows(in path: String, options: LoadOptions) -> Int? {
        guard let source = try? openInput(path: path), let total = source.totalBytes else { return nil }
        var reader = RecordReader(source: source, quoteAware: options.format == .csv, chunkBytes: 64 << 10, maxRecordBytes: options.maxLineBytes)
        var records = 0
        while reader.bytesConsumed < sampleBytes {
            do {
                guard try reader.next() != nil else { return records }
            } catch {
                return nil
            }
            records += 1
        }
        return Int(Double(records) / Double(max(1, reader.bytesConsumed)) * Double(total))
    }
}
