import ArgumentParser
import KVDConfig
import KVLoad
import KVDRedis
import KVDSystem

#if canImport(Glibc)
import Glibc
#endif

/// `kvload`: streams data files into Redis, where kvd reads them.
@main
struct KVLoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvload",
        abstract: "Stream key/value data files into Redis (pipelined, constant memory, nothing lost).",
        discussion: """
            Reads the Redis target and the storage layout from the same INI file as kvd ([redis] \
            section of --config, default /etc/kvd.conf), so loader and server agree on where data \
            lives; the flags below override it.

            Examples (seed format, CSV by column names, atomic replace, standard input):
              kvload --config /etc/kvd.conf data.txt
              kvload --format csv --header --key-column id --value-column name p.csv.gz
              kvload --replace --strict-keys data.txt
              kvload --port 6380 - < data.txt.gz

            --replace: the hash layout loads into <hash>:kvload-staging:<pid> and renames it over \
            the live hash (atomic; the old hash is freed in the background); the string layout loads into --staging-db (must be empty) and \
            SWAPDBs it with the live db, then flushes the old data; layout = buckets writes a new \
            generation, checks it, switches the dataset descriptor to it in one command, and \
            deletes the old generation after --grace-seconds (a first buckets load does the same; \
            without --replace, rows merge into the live generation). A failed load leaves the live \
            data untouched, and so does an input without a single row (unless --allow-empty).

            --cluster (or [redis] cluster = yes): rows are grouped by the master serving their \
            slot and pipelined to each; redirections (MOVED, ASK), TRYAGAIN, CLUSTERDOWN and lost \
            connections are followed and the unacknowledged commands resent; at the end each \
            master WAITs for a replica. --replace on a cluster needs the dataset generations \
            (layout = buckets, or string with --generations): the hash layout's staging RENAME \
            and the string layout's --staging-db/SWAPDB are refused (64).

            Exit codes (sysexits): 0 every row acknowledged; 64 usage (or a path a Redis \
            Cluster refuses); 65 malformed input \
            (more than --max-errors bad rows, corrupt gzip, line too long, \
            a --replace input without a single row and no --allow-empty); 66 input file \
            missing or --password-file unusable; 69 Redis unreachable at the start; 74 read error; 75 \
            connection lost mid-load and not restored within --retry-for (the message says how \
            many rows Redis confirmed); 76 Redis answered an error (e.g. WRONGTYPE, OOM); 78 \
            invalid configuration file; 130/143 stopped by SIGINT/SIGTERM (a second signal kills \
            at once).
            """
    )

    @Argument(help: "Input files, loaded in order; '-' reads standard input; gzip data (.gz) is recognised and decompressed on the fly.")
    var files: [String] = []

    @OptionGroup(title: "Input")
    var input: InputOptions

    @OptionGroup(title: "Redis")
    var redis: RedisOptions

    @OptionGroup(title: "Replace")
    var replacing: ReplaceOptions

    @OptionGroup(title: "Generations (layout = buckets, or string with --generations)")
    var generations: GenerationOptions

    @OptionGroup(title: "Output")
    var output: OutputOptions

    func validate() throws {
        if files.isEmpty && !generations.gc { throw ValidationError("Missing expected argument '<files> ...'") }
        if !files.isEmpty && generations.gc { throw ValidationError("--gc takes no input files") }
    }

    func run() throws {
        // A connection Redis closed must surface as a write error (then reconnect), not kill the process.
        Signals.ignoreBrokenPipe()
        // The first SIGINT or SIGTERM stops the load cleanly (a --replace load then deletes its staging data and
        // the summary gives the honest counts); a second one kills as usual.
        FirstSignal.install([SIGINT, SIGTERM])

        var settings = try redis.settings()
        if generations.generations { settings.generations = true }
        var options = LoadOptions()
        input.apply(to: &options)
        redis.apply(to: &options)
        replacing.apply(to: &options)
        options.stopSignal = { FirstSignal.received }
        generations.apply(to: &options)
        if generations.gc { return try collectGenerations(settings: settings, options: options) }

        let style: ProgressStyle = output.quiet ? .off : (StandardStreams.errorIsTerminal ? .bar : .log)
        let loader = Loader(settings: settings, options: options, progress: ProgressReporter(style: style))
        var failure: LoadFailure?
        do {
            try loader.run(paths: files)
        } catch {
            failure = error
        }
        let dryRun = input.dryRun
        if let failure, loader.summary.rowsRead == 0 {
            // Nothing was read (input missing, Redis unreachable, bad options, an empty --replace): the error alone.
            StandardStreams.writeError(failure.message + "\n")
            throw ExitCode(failure.exitCode)
        }
        let target = switch settings.layout {
        case .hash: "hash '\(settings.hash)'"
        case .string: "string keys '\(settings.prefix)…'"
        case .buckets: "buckets of descriptor '\(settings.descriptorKey)'"
        }
        let at = settings.cluster ? "the Redis Cluster at \((settings.nodes.isEmpty ? ["\(settings.host):\(settings.port)"] : settings.nodes.map(\.description)).joined(separator: ", "))" : "\(settings.targetDescription) db \(settings.db)"
        let outcome = failure == nil ? (dryRun ? "dry run for" : "loaded into") : "stopped loading into"
        print("kvload: \(outcome) \(target) at \(at)")
        print(loader.summary.render(countsNewKeys: loader.countsNewKeys, intoEmptyTarget: loader.intoEmptyTarget, dryRun: dryRun))
        if let failure {
            StandardStreams.writeError(failure.message + "\n")
            throw ExitCode(failure.exitCode)
        }
        if replacing.replace && !dryRun { print("replaced:       the new dataset is live (atomic switch)") }
    }
}

/// What to read and how to parse it.
struct InputOptions: ParsableArguments {
    @Option(help: "Input format: seed (KEY VALUE), csv, tsv or jsonl.")
    var format: InputFormat = .seed

    @Flag(help: "Refuse keys that are not lower-case UUIDv4 (as the seed contract requires).")
    var strictKeys = false

    @Flag(help: "csv/tsv: the first record names the columns.")
    var header = false

    @Option(help: "csv/tsv: key column, 1-based index or header name, e.g. --key-column id.")
    var keyColumn: String = "1"

    @Option(help: "csv/tsv: value column, 1-based index or header name, e.g. --value-column 3.")
    var valueColumn: String = "2"

    @Option(help: "jsonl: name of the key field, e.g. --key-field id.")
    var keyField: String = "key"

    @Option(help: "jsonl: name of the value field, e.g. --value-field payload.")
    var valueField: String = "value"

    @Flag(help: "jsonl: accept a value that is a JSON number or boolean and store its JSON text as written, e.g. 42, -1.5e3, true (null, arrays and objects are still refused).")
    var scalarValues = false

    @Option(help: "Malformed rows to skip (each printed as FILE:LINE: reason) before stopping, e.g. --max-errors 10.")
    var maxErrors: Int = 0

    @Option(help: "Longest line (record) accepted, in bytes, e.g. --max-line-bytes 67108864.")
    var maxLineBytes: Int = 64 << 20

    @Flag(help: "Parse and validate only; write nothing.")
    var dryRun = false

    func validate() throws {
        if maxErrors < 0 { throw ValidationError("--max-errors must not be negative") }
        if maxLineBytes < 1024 { throw ValidationError("--max-line-bytes must be at least 1024") }
    }

    func apply(to options: inout LoadOptions) {
        options.format = format
        options.strictKeys = strictKeys
        options.header = header
        options.keyColumn = ColumnSelector(keyColumn)
        options.valueColumn = ColumnSelector(valueColumn)
        options.keyField = keyField
        options.valueField = valueField
        options.scalarValues = scalarValues
        options.maxErrors = maxErrors
        options.maxLineBytes = maxLineBytes
        options.dryRun = dryRun
    }
}

/// Where Redis is, how the data is laid out there, and how hard to push it.
struct RedisOptions: ParsableArguments {
    @Option(help: "kvd's INI file; its [redis] section gives the target and layout (default: /etc/kvd.conf, skipped if absent).")
    var config: String?

    @Option(name: [.customShort("u"), .long], help: "Redis URI as redis-cli takes it, over the config file and under the flags below: redis://[[user]:password@]host[:port][/db] or unix://[[user]:password@]/path[?db=N], e.g. -u redis://10.0.0.5:6380/2 (a password here shows in ps: prefer --password-file).")
    var uri: String?

    @Option(help: "Redis host (overrides [redis] host), e.g. --host 10.0.0.5.")
    var host: String?

    @Option(help: "Redis port (overrides [redis] port), e.g. --port 6380.")
    var port: Int?

    @Option(help: "Redis unix socket path (overrides host and port), e.g. --socket /run/redis/redis.sock.")
    var socket: String?

    @Option(help: "Redis database number, e.g. --db 2.")
    var db: Int?

    @Option(help: "A Redis Sentinel to ask for the master (repeat for several; over [redis] sentinels), e.g. --sentinel 10.0.0.1:26379. kvload asks once at the start and confirms the master with ROLE.")
    var sentinel: [String] = []

    @Option(help: "The master's name as the sentinels know it (over [redis] master_name), e.g. --master-name mymaster.")
    var masterName: String?

    @Option(help: "Redis ACL user (Redis 6+; overrides [redis] user); needs a password (--password-file, the URI or the config), e.g. --user loader.")
    var user: String?

    @Option(help: "File holding the Redis password alone on one line, as kvd's [redis] password_file (a relative name is looked up in $CREDENTIALS_DIRECTORY), e.g. --password-file /etc/kvd/redis.pass.")
    var passwordFile: String?

    @Flag(help: "Load a Redis Cluster (as [redis] cluster = yes): rows go to the master serving their slot, seeded from --node, [redis] nodes, or --host/--port.")
    var cluster = false

    @Option(name: .customLong("node"), help: "A Redis Cluster node to read the slot map from, host:port (repeatable; implies --cluster; replaces [redis] nodes), e.g. --node 10.0.0.5:7000.")
    var clusterNodes: [String] = []

    @Option(help: "Storage layout: hash (all pairs in one hash), string (one key per pair) or buckets (many small hashes of a generation named by the dataset descriptor).")
    var layout: StorageLayout?

    @Option(help: "The hash of the hash layout, e.g. --hash data.")
    var hash: String?

    @Option(help: "Key prefix of the string layout, e.g. --prefix kv:.")
    var prefix: String?

    @Option(help: "String layout: expire keys after this many seconds (SET … EX), e.g. --ttl 3600.")
    var ttl: Int?

    @Option(help: "Rows per HSET/MSET batch, e.g. --batch 1000 (--batch 1 --pipeline 1: one round trip per row).")
    var batch: Int = 1000

    @Option(help: "Most batches in flight (sent, not yet acknowledged), e.g. --pipeline 16.")
    var pipeline: Int = 16

    @Option(help: "Seconds to keep reconnecting after losing Redis mid-load, e.g. --retry-for 30.")
    var retryFor: Double = 30

    func validate() throws {
        if let uri {
            do {
                _ = try RedisURI(parsing: uri)
            } catch {
                throw ValidationError("-u/--uri: \(error)")
            }
        }
        if batch < 1 { throw ValidationError("--batch must be at least 1") }
        for node in clusterNodes where node.split(separator: ":").count < 2 || Int(node.split(separator: ":").last!) == nil {
            throw ValidationError("--node \(node): expected host:port, e.g. --node 10.0.0.5:7000")
        }
        if pipeline < 1 { throw ValidationError("--pipeline must be at least 1") }
        if let ttl, ttl < 1 { throw ValidationError("--ttl must be at least 1 second") }
        for address in sentinel where NodeAddress(address) == nil {
            throw ValidationError("--sentinel: expected HOST:PORT (e.g. 10.0.0.1:26379, [::1]:26379), got '\(address)'")
        }
    }

    /// The `[redis]` section of `--config` with the flags applied over it.
    /// - Throws: `ExitCode` 78 for an invalid configuration, 66 for an unusable `--password-file`.
    func settings() throws -> RedisSettings {
        var settings: RedisSettings
        do {
            settings = try Configuration.load(path: config).0.redis
        } catch {
            StandardStreams.writeError("kvload: \(error)\n")
            throw ExitCode(SysExit.config.rawValue)
        }
        if let uri, let parsed = try? RedisURI(parsing: uri) {
            parsed.apply(to: &settings)
            if parsed.password != nil {
                StandardStreams.writeError("kvload: warning: a password on the command line (-u) may be seen by other users (ps); --password-file keeps it private\n")
            }
        }
        // The flags, over the URI: the same rules (a host or a port clears a socket).
        RedisURI(host: host, port: port, socket: socket, db: db, user: user).apply(to: &settings)
        if cluster || !clusterNodes.isEmpty { settings.cluster = true }
        if !clusterNodes.isEmpty {
            var nodes: [NodeAddress] = []
            for text in clusterNodes {
                guard let node = NodeAddress(text) else {
                    throw ValidationError("--node '\(text)' is not host:port (IPv6: [::1]:7000)")
                }
                nodes.append(node)
            }
            settings.nodes = nodes
        }
        if settings.cluster && (host != nil || port != nil) && clusterNodes.isEmpty {
            // --host/--port name the seed.
            settings.nodes = []
        }
        if let layout { settings.layout = layout }
        if let hash { settings.hash = hash }
        if let prefix { settings.prefix = prefix }
        if let passwordFile {
            do {
                settings.password = try Secrets.readPasswordFile(passwordFile, credentialsDirectory: Secrets.credentialsDirectory).secret
            } catch {
                StandardStreams.writeError("kvload: --password-file: \(error)\n")
                throw ExitCode(SysExit.noInput.rawValue)
            }
        }
        if let name = settings.user, settings.password == nil {
            StandardStreams.writeError("kvload: the Redis user \(name) needs a password: --password-file, the URI (user:password@) or [redis] password\n")
            throw ExitCode(SysExit.usage.rawValue)
        }
        return try resolvingSentinel(settings)
    }

    /// Sentinel mode (`--sentinel`, or `[redis] sentinels` when no flag names a target): the master
    /// a sentinel names, confirmed with ROLE; every connection kvload opens checks ROLE again.
    /// - Throws: `ExitCode` 64 without a master name, 69 when no sentinel names a confirmed master.
    private func resolvingSentinel(_ given: RedisSettings) throws -> RedisSettings {
        var settings = given
        if !sentinel.isEmpty {
            settings.sentinels = sentinel.compactMap { NodeAddress($0) }  // checked in validate()
        } else if uri != nil || host != nil || port != nil || socket != nil {
            settings.sentinels = []  // an explicit target: no Sentinel, no ROLE check
        }
        if let masterName { settings.masterName = masterName }
        guard !settings.sentinels.isEmpty else { return settings }
        guard let name = settings.masterName else {
            StandardStreams.writeError("kvload: Sentinel mode needs the master's name: --master-name or [redis] master_name\n")
            throw ExitCode(SysExit.usage.rawValue)
        }
        do {
            let (resolved, sentinel) = try Sentinel.resolve(settings)
            StandardStreams.writeError("kvload: Sentinel: master '\(name)' is \(resolved.targetDescription) (named by sentinel \(sentinel), ROLE master)\n")
            return resolved
        } catch {
            StandardStreams.writeError("kvload: Sentinel: \(error.message)\n")
            throw ExitCode(SysExit.unavailable.rawValue)
        }
    }

    func apply(to options: inout LoadOptions) {
        options.ttlSeconds = ttl
        options.batchRows = batch
        options.pipeline = pipeline
        options.retrySeconds = retryFor
    }
}

/// `--replace`: the new dataset becomes visible atomically and completely, or not at all.
struct ReplaceOptions: ParsableArguments {
    @Flag(help: "Make the new dataset visible atomically and completely, or not at all (method: see above).")
    var replace = false

    @Option(help: "String layout with --replace: an empty database to load into before SWAPDB, e.g. --staging-db 15.")
    var stagingDb: Int?

    @Flag(help: "With --replace: an input without a single row (empty, header only, or every row skipped) empties the live dataset; without this flag it is refused (exit 65) and the live data is untouched.")
    var allowEmpty = false

    func validate() throws {
        if allowEmpty && !replace { throw ValidationError("--allow-empty applies to --replace only") }
    }

    func apply(to options: inout LoadOptions) {
        options.replace = replace
        options.stagingDB = stagingDb
        options.allowEmpty = allowEmpty
    }
}

/// What kvload shows while it works.
struct OutputOptions: ParsableArguments {
    @Flag(name: .shortAndLong, help: "No progress bar or progress lines (the summary and errors are still printed).")
    var quiet = false
}

extension InputFormat: ExpressibleByArgument {}

extension StorageLayout: ExpressibleByArgument {}

extension KVLoadCommand {
    /// `--gc`: deletes the generations other than the live one.
    func collectGenerations(settings: RedisSettings, options: LoadOptions) throws {
        do {
            let deleted = try collectOldGenerations(settings: settings, options: options)
            print(deleted.isEmpty ? "kvload: --gc: no generation other than the live one" : "kvload: --gc: deleted generation \(deleted.joined(separator: ", "))")
        } catch {
            StandardStreams.writeError(error.message + "\n")
            throw ExitCode(error.exitCode)
        }
    }
}

/// The `buckets` layout's generations: sizing a new one, the grace period, removing leftovers.
struct GenerationOptions: ParsableArguments {
    @Option(help: "Rows to size a new generation for (default: estimated from the files; \(LoadOptions.defaultExpectedRows) for standard input), e.g. --expected-rows 50000000.")
    var expectedRows: Int?

    @Option(help: "Seconds between the switch to a new generation and the deletion of the old one (lookups in flight finish), e.g. --grace-seconds 5.")
    var graceSeconds: Int = 5

    @Option(help: "Fields per bucket a new generation aims at (default \(LoadOptions.defaultBucketFields); at most half of Redis's hash-max-listpack-entries): fewer answer GETs faster, more take less memory, e.g. --bucket-fields 64.")
    var bucketFields: Int?

    @Flag(help: "String layout: keys in dataset generations, <prefix><generation>:<key>, named by the descriptor (as [redis] generations = yes; kvd needs the same setting): --replace then switches atomically with no --staging-db.")
    var generations = false

    @Flag(help: "Delete the generations other than the live one (what a killed load left), then exit; takes no files.")
    var gc = false

    func validate() throws {
        if let expectedRows, expectedRows < 1 { throw ValidationError("--expected-rows must be at least 1") }
        if graceSeconds < 0 { throw ValidationError("--grace-seconds must not be negative") }
        if let bucketFields, bucketFields < 1 { throw ValidationError("--bucket-fields must be at least 1") }
    }

    func apply(to options: inout LoadOptions) {
        options.expectedRows = expectedRows
        options.graceSeconds = graceSeconds
        options.bucketFields = bucketFields
    }
}
