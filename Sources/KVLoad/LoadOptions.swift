import KVDSystem

/// The input formats kvload reads.
public enum InputFormat: String, Sendable, CaseIterable {
    case seed, csv, tsv, jsonl
}

/// Everything about one load except where Redis is.
public struct LoadOptions: Sendable {
    public var format: InputFormat = .seed
    /// Refuse keys that are not lower-case UUIDv4.
    public var strictKeys = false
    /// CSV/TSV: the first record names the columns.
    public var header = false
    public var keyColumn = ColumnSelector.index(1)
    public var valueColumn = ColumnSelector.index(2)
    public var keyField = "key"
    public var valueField = "value"
    /// JSON Lines: a value may be a JSON number or boolean, stored as its JSON text.
    public var scalarValues = false
    /// String layout only: `SET … EX seconds`.
    public var ttlSeconds: Int? = nil
    /// Load into staging and switch atomically at the end.
    public var replace = false
    /// String layout with `replace`: the empty database loaded into and then swapped with the live one.
    public var stagingDB: Int? = nil
    /// With `replace`: let an input without a single row replace (empty) the live dataset.
    public var allowEmpty = false
    /// Malformed rows skipped before the load stops.
    public var maxErrors = 0
    /// Parse and validate only.
    public var dryRun = false
    /// Most rows per batch.
    public var batchRows = 1000
    /// Most key and value bytes per batch (a single larger row still goes, alone).
    public var batchBytes = 1 << 20
    /// Most batches sent and not yet acknowledged.
    public var pipeline = 16
    /// How long to keep reconnecting after the connection is lost mid-load.
    public var retrySeconds = 30.0
    /// How long Redis may stay silent while replies are due before the connection counts as lost.
    public var replyTimeoutMs = 10_000
    /// The longest record accepted.
    public var maxLineBytes = 64 << 20
    /// `buckets` layout, new generation: the rows to size it for (nil: estimated from the files, or
    /// `defaultExpectedRows` for standard input).
    public var expectedRows: Int? = nil
    /// `buckets` layout, new generation: fields per bucket to aim at (`--bucket-fields`; nil: kvload's default).
    public var bucketFields: Int? = nil
    /// What a new generation read from standard input is sized for without `expectedRows`.
    public static let defaultExpectedRows = 1_000_000
    /// `buckets` layout: seconds between the switch and the deletion of the replaced generation.
    public var graceSeconds = 5
    /// Polled while loading: a signal number (SIGINT, SIGTERM) once one asked kvload to stop, else 0.
    public var stopSignal: @Sendable () -> Int32 = { 0 }

    public init() {}
}

/// Why a load stopped: the message to print and the status to exit with.
public struct LoadFailure: Error, Sendable, CustomStringConvertible {
    /// The exit code: a sysexits code, or 128 + a signal number.
    public let exitCode: Int32
    public let message: String

    public init(_ status: SysExit, _ message: String) {
        exitCode = status.rawValue
        self.message = message
    }

    private init(exitCode: Int32, message: String) {
        self.exitCode = exitCode
        self.message = message
    }

    public var description: String { message }

    /// Whether the input was malformed (the rows sent before are still confirmed before stopping).
    var isDataError: Bool { exitCode == SysExit.dataError.rawValue }

    /// Stopped by a signal: exit 128 + the signal number, as a shell reports it.
    static func interrupted(by signal: Int32) -> LoadFailure {
        LoadFailure(exitCode: SysExit.interrupted(by: signal), message: "kvload: interrupted by signal \(signal): stopped")
    }

    /// Polls `options.stopSignal`.
    /// - Throws: `interrupted(by:)` once SIGINT or SIGTERM arrived.
    static func checkStopSignal(_ options: LoadOptions) throws(LoadFailure) {
        let signal = options.stopSignal()
        if signal != 0 { throw interrupted(by: signal) }
    }
}
