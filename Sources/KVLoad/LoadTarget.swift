import KVDConfig
import KVDRedis
import KVDSystem

/// Where a load writes and how its rows become visible: straight into the live data, or (`--replace`)
/// into staging data switched in atomically at the end.
protocol LoadTarget: AnyObject {
    /// How rows become Redis commands.
    var writeMode: WriteMode { get }
    /// The settings of the connection that writes (the staging database for a string-layout replace).
    var writeSettings: RedisSettings { get }
    /// Whether the rows go into a hash that was empty when the load began (a `--replace` staging hash, or a
    /// first load): then every row Redis does not report as new repeats a key of the input.
    var intoEmptyTarget: Bool { get }
    /// Checks and readies the target before the first batch.
    func prepare(_ connection: any LoadChannel) throws(LoadFailure)
    /// Makes the loaded rows visible, once every batch is acknowledged.
    /// - Parameter newKeys: the fields HSET reported new (the hash layout).
    func publish(_ connection: any LoadChannel, newKeys: Int) throws(LoadFailure)
    /// After a failed load: deletes the staged data unless the switch has (or may have) happened.
    /// - Returns: whether there was staged data to delete (false for a live load, or after the switch).
    func discardUnpublished(_ connection: any LoadChannel) -> Bool
}

/// The target of a load, chosen from the layout and `--replace`.
/// - Throws: `LoadFailure` (64) for options the layout does not allow.
func makeLoadTarget(settings: RedisSettings, options: LoadOptions, paths: [String], tally: LoadTally) throws(LoadFailure) -> any LoadTarget {
    if options.ttlSeconds != nil && settings.layout != .string {
        throw LoadFailure(.usage, "--ttl applies to the string layout only (the hash layout has no per-field TTL in Redis 7.0)")
    }
    if settings.cluster { try refuseOnCluster(settings: settings, options: options) }
    if settings.usesGenerations { return GenerationTarget(settings: settings, options: options, paths: paths, tally: tally) }
    guard options.replace else { return LiveTarget(settings: settings, options: options) }
    switch settings.layout {
    case .hash:
        return StagingHash(settings: settings)
    case .string:
        guard let staging = options.stagingDB else {
            throw LoadFailure(.usage, "--replace with the string layout needs --staging-db N: an empty database to load into, then swapped with db \(settings.db) (SWAPDB)")
        }
        if staging == settings.db { throw LoadFailure(.usage, "--staging-db must differ from the live db \(settings.db)") }
        return StagingDatabase(settings: settings, options: options, stagingDB: staging)
    case .buckets:
        return GenerationTarget(settings: settings, options: options, paths: paths, tally: tally)
    }
}

/// What a Redis Cluster cannot do (exit 64, usage): another db than 0, a unix socket, and the
/// `--replace` paths that need one server: the hash layout's staging hash (RENAME between keys of
/// different slots) and the string layout's SWAPDB (no databases on a cluster). The dataset
/// generations (`buckets`, `string` with `--generations`) replace atomically on a cluster too.
func refuseOnCluster(settings: RedisSettings, options: LoadOptions) throws(LoadFailure) {
    if settings.db != 0 {
        throw LoadFailure(.usage, "kvload: a Redis Cluster has only db 0 (db \(settings.db) asked)")
    }
    if settings.socket != nil {
        throw LoadFailure(.usage, "kvload: a Redis Cluster is reached over TCP: give its nodes as host:port, not a unix socket")
    }
    if options.stagingDB != nil {
        throw LoadFailure(.usage, "kvload: --staging-db (SWAPDB) is refused on a Redis Cluster, which has only db 0: use --generations (string layout) or layout = buckets for an atomic --replace")
    }
    guard options.replace, !settings.usesGenerations else { return }
    switch settings.layout {
    case .hash:
        throw LoadFailure(.usage, "kvload: --replace with the hash layout is refused on a Redis Cluster: it renames a staging hash over the live one, and the two names live in different slots; use layout = buckets (or string with --generations), which switch a dataset descriptor atomically")
    case .string, .buckets:
        throw LoadFailure(.usage, "kvload: --replace with the string layout swaps databases (SWAPDB), which a Redis Cluster refuses: add --generations (and [redis] generations = yes for kvd) to switch a dataset descriptor atomically")
    }
}

extension WriteMode {
    /// The string layout's SET/MSET, with `SET … EX` when a TTL is given; on a cluster one `SET` per
    /// row (MSET's keys would have to share a slot).
    static func strings(prefix: String, ttlSeconds: Int?, cluster: Bool) -> WriteMode {
        if let ttlSeconds { return .stringsWithTTL(prefix: prefix, seconds: ttlSeconds) }
        return cluster ? .stringsEach(prefix: prefix) : .strings(prefix: prefix)
    }
}

/// Rows written straight into the live hash or keys (no `--replace`).
final class LiveTarget: LoadTarget {
    private let settings: RedisSettings
    let writeMode: WriteMode
    private(set) var intoEmptyTarget = false

    init(settings: RedisSettings, options: LoadOptions) {
        self.settings = settings
        writeMode = settings.layout == .hash ? .hash(name: settings.hash)
            : .strings(prefix: settings.prefix, ttlSeconds: options.ttlSeconds, cluster: settings.cluster)
    }

    var writeSettings: RedisSettings { settings }

    func prepare(_ connection: any LoadChannel) throws(LoadFailure) {
        if settings.layout == .hash, case .integer(0) = try connection.call(["EXISTS", settings.hash]) {
            intoEmptyTarget = true
        }
    }

    func publish(_ connection: any LoadChannel, newKeys: Int) throws(LoadFailure) {}

    func discardUnpublished(_ connection: any LoadChannel) -> Bool { false }
}

/// `--replace`, hash layout: the rows go into `<hash>:kvload-staging:<host>:<pid>`, which then takes the live hash's name.
final class StagingHash: LoadTarget {
    private let settings: RedisSettings
    /// The hash the load writes before the switch.
    let stagingHash: String
    /// Where the old live hash goes during the switch, to be freed in the background (UNLINK).
    let retiredHash: String
    let writeMode: WriteMode
    let intoEmptyTarget = true
    /// Set once the switch has (or may have) happened: from then on the staging data is not deleted.
    private var switched = false

    init(settings: RedisSettings) {
        self.settings = settings
        stagingHash = ScratchHash.staging.name(for: settings.hash)
        retiredHash = ScratchHash.retired.name(for: settings.hash)
        writeMode = .hash(name: stagingHash)
    }

    var writeSettings: RedisSettings { settings }

    /// The hash switch, atomic in Redis: the live hash is renamed aside (O(1)) before the staging
    /// hash takes its name, so Redis never frees the old hash inside the switch (a plain
    /// `RENAME staging live` would, blocking every reader for the whole free: ~0.3 s per million
    /// fields). Returns 0 when the staging hash is gone already (a resent switch that was done).
    static let switchScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
        if redis.call('EXISTS', KEYS[2]) == 1 then redis.call('RENAME', KEYS[2], KEYS[3]) end
        redis.call('RENAME', KEYS[1], KEYS[2])
        return 1
        """

    func prepare(_ connection: any LoadChannel) throws(LoadFailure) {
        try expectSuccess(connection.call(["DEL", stagingHash]), doing: "DEL \(stagingHash)")
    }

    func publish(_ connection: any LoadChannel, newKeys: Int) throws(LoadFailure) {
        let length = try connection.call(["HLEN", stagingHash])
        guard case .integer(let fields) = length else {
            try expectSuccess(length, doing: "HLEN \(stagingHash)")
            throw LoadFailure(.protocolError, "kvload: HLEN \(stagingHash) did not answer a number; the live data was left untouched")
        }
        // Every field HSET reported new must be there (a resent batch may report fewer new fields, never more).
        guard Int(fields) >= newKeys else {
            throw LoadFailure(.temporaryFailure, "kvload: the staging hash holds \(fields) fields but Redis acknowledged \(newKeys) distinct keys: Redis lost data during the load; the live data was left untouched")
        }
        if fields == 0 {
            try expectSuccess(connection.call(["UNLINK", settings.hash]), doing: "UNLINK \(settings.hash)")
        } else {
            let reply = try connection.call(RedisCommand(["EVAL", Self.switchScript, "3", stagingHash, settings.hash, retiredHash]), key: nil)
            try expectSuccess(reply, doing: "the switch to the new data (EVAL)")
            switched = true
            try expectSuccess(connection.call(["UNLINK", retiredHash]), doing: "UNLINK \(retiredHash)")
        }
        switched = true
    }

    func discardUnpublished(_ connection: any LoadChannel) -> Bool {
        guard !switched else { return false }
        discardStaging(connection, command: RedisCommand(["DEL", stagingHash]), naming: "hash \(stagingHash)")
        return true
    }
}

/// `--replace`, string layout: the rows go into an empty staging database, then SWAPDB exchanges it with the
/// live one and the old data (now in the staging database) is flushed.
final class StagingDatabase: LoadTarget {
    private let settings: RedisSettings
    private let stagingDB: Int
    let writeMode: WriteMode
    let intoEmptyTarget = false
    /// Set once SWAPDB has (or may have) happened: from then on the staging database is not flushed.
    private var switched = false

    init(settings: RedisSettings, options: LoadOptions, stagingDB: Int) {
        self.settings = settings
        self.stagingDB = stagingDB
        writeMode = .strings(prefix: settings.prefix, ttlSeconds: options.ttlSeconds, cluster: false)
    }

    var writeSettings: RedisSettings {
        var chosen = settings
        chosen.db = stagingDB
        return chosen
    }

    func prepare(_ channel: any LoadChannel) throws(LoadFailure) {
        let connection = try singleServer(channel)
        let size: RedisReply
        do {
            size = try connection.roundTrip(RedisCommand(["DBSIZE"]))
        } catch {
            throw LoadFailure(.unavailable, "kvload: Redis failed while setting up the load: \(error.message)")
        }
        if case .integer(let count) = size, count > 0 {
            throw LoadFailure(.usage, "kvload: staging db \(stagingDB) holds \(count) keys: --replace needs it empty (it receives the old data after the swap and is then flushed)")
        }
    }

    func publish(_ channel: any LoadChannel, newKeys: Int) throws(LoadFailure) {
        let connection = try singleServer(channel)
        let swap: RedisReply
        do {
            swap = try connection.roundTrip(RedisCommand(["SWAPDB", String(settings.db), String(stagingDB)]))
        } catch {
            // SWAPDB is not idempotent: sending it again could swap back.
            switched = true
            throw LoadFailure(.temporaryFailure, "kvload: the connection broke during SWAPDB (\(error.message)): the swap may or may not have happened; check db \(settings.db) and db \(stagingDB)")
        }
        try expectSuccess(swap, doing: "SWAPDB")
        switched = true
        // The connection's database (the staging number) now holds the old data.
        try expectSuccess(connection.roundTripReconnecting(RedisCommand(["FLUSHDB", "ASYNC"])), doing: "FLUSHDB ASYNC of the old data in the staging db")
    }

    func discardUnpublished(_ connection: any LoadChannel) -> Bool {
        guard !switched else { return false }
        discardStaging(connection, command: RedisCommand(["FLUSHDB", "ASYNC"]), naming: "db \(stagingDB)")
        return true
    }
}

/// The one server behind `channel`: the staging paths (RENAME, SWAPDB) are refused on a cluster.
private func singleServer(_ channel: any LoadChannel) throws(LoadFailure) -> LoadConnection {
    guard let connection = channel as? LoadConnection else {
        throw LoadFailure(.software, "kvload: this --replace path needs one Redis server, not a cluster")
    }
    return connection
}

/// Deletes the staging data after a failed `--replace` load, with `command` sent after the batches still in
/// flight, so none of them can write staging data after it.
private func discardStaging(_ channel: any LoadChannel, command: RedisCommand, naming staging: String) {
    do {
        let connection = try singleServer(channel)
        let reply: RedisReply
        do {
            reply = try connection.abandonInFlight(sending: command)
        } catch {
            throw LoadFailure(.unavailable, error.message)
        }
        try expectSuccess(reply, doing: "deleting the staging data")
        channel.note("kvload: --replace: nothing was switched; the live data is untouched")
    } catch {
        channel.note("kvload: --replace: nothing was switched; the live data is untouched, but the staging \(staging) could not be removed (\(error)): delete it by hand")
    }
}
