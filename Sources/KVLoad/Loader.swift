import KVDConfig
import KVDCore

/// Streams input files into Redis: reads records, parses rows, fills batches and hands them to the
/// `LoadConnection` (which pipelines, counts acknowledgements, reconnects and resends); a `LoadTarget` decides
/// where the rows go and, with `--replace`, switches them in at the end.
public final class Loader {
    private let settings: RedisSettings
    private let options: LoadOptions
    private let tally: LoadTally
    private var target: (any LoadTarget)?
    private var connection: (any LoadChannel)?
    /// Bytes of the input files already loaded.
    private var finishedBytes = 0

    public init(settings: RedisSettings, options: LoadOptions, progress: ProgressReporter) {
        self.settings = settings
        self.options = options
        tally = LoadTally(progress: progress)
    }

    /// What the final summary reports.
    public var summary: LoadSummary { tally.summary }
    /// Whether HSET replies are counted (the summary's new/updated split).
    public var countsNewKeys: Bool { settings.layout != .string && !options.dryRun }
    /// Whether the rows go into a hash that was empty when the load began (a `--replace` staging
    /// hash, or a first load): then every row Redis does not report as new repeats a key of the input.
    public var intoEmptyTarget: Bool { target?.intoEmptyTarget ?? false }

    /// Loads every file in order (`-` is standard input).
    /// - Throws: `LoadFailure` with the exit code and message; `summary` then holds what was confirmed.
    public func run(paths: [String]) throws(LoadFailure) {
        defer { finish() }
        let target = try makeLoadTarget(settings: settings, options: options, paths: paths, tally: tally)
        self.target = target
        let connection = try makeLoadChannel(settings: target.writeSettings, options: options, tally: tally, countsNewKeys: countsNewKeys)
        self.connection = connection
        try checkInputsExist(paths)
        if !options.dryRun {
            try connection.connectFirstTime()
            if options.replace && settings.layout == .hash, let connection = connection as? LoadConnection {
                ScratchHash.removeOrphans(of: settings.hash, on: connection) { connection.note($0) }
            }
            try target.prepare(connection)
        }
        do {
            for path in paths { try load(path: path, into: connection, mode: target.writeMode) }
            try refuseEmptyReplace()
            if !options.dryRun {
                try connection.drain()
                try connection.confirm()
                try target.publish(connection, newKeys: tally.summary.newKeys)
            }
        } catch {
            tally.progress.finish()
            if !options.dryRun && target.discardUnpublished(connection) {
                tally.summary.stagingDiscarded = true
            } else if !options.dryRun && error.isDataError {
                // The rows sent before the bad one are still confirmed (and counted) before stopping.
                try? connection.drain()
            }
            throw error
        }
    }

    /// An input without a single row would replace the live dataset with nothing: a failed export fed to a
    /// nightly `--replace` must not wipe production. Refused (65) unless `--allow-empty`.
    private func refuseEmptyReplace() throws(LoadFailure) {
        let summary = tally.summary
        guard options.replace && !options.allowEmpty && summary.rowsRead - summary.skippedRows == 0 else { return }
        let why = summary.rowsRead == 0 ? "the input holds no rows" : "every row of the input was skipped (\(summary.skippedRows) malformed)"
        throw LoadFailure(.dataError, "kvload: --replace: \(why): refusing to replace the live dataset with an empty one; the live data is untouched (--allow-empty to empty it on purpose)")
    }

    private func finish() {
        tally.summary.elapsedSeconds = tally.progress.elapsedSeconds
        tally.progress.finish()
        connection?.close()
    }

    /// Fails before touching Redis when an input cannot be opened (exit 66).
    private func checkInputsExist(_ paths: [String]) throws(LoadFailure) {
        for path in paths where path != "-" {
            do {
                _ = try FileSource(path: path)
            } catch {
                throw LoadFailure(.noInput, "kvload: \(error)")
            }
        }
    }

    private func makeParser() throws(LoadFailure) -> any RowParser {
        switch options.format {
        case .seed:
            return SeedParser()
        case .jsonl:
            return JSONLinesParser(keyField: options.keyField, valueField: options.valueField, scalarValues: options.scalarValues)
        case .csv, .tsv:
            do {
                return try DelimitedParser(delimiter: options.format == .csv ? 0x2C : 0x09, hasHeader: options.header,
                                           key: options.keyColumn, value: options.valueColumn)
            } catch {
                throw LoadFailure(.usage, error.reason)
            }
        }
    }

    /// Reads, parses and sends one file; malformed rows are skipped up to `maxErrors`.
    private func load(path: String, into connection: any LoadChannel, mode: WriteMode) throws(LoadFailure) {
        let source: any ByteSource
        do {
            source = try openInput(path: path, stopSignal: options.stopSignal)
        } catch {
            try LoadFailure.checkStopSignal(options)
            throw LoadFailure(error.kind == .cannotOpen ? .noInput : .ioError, "kvload: \(error)")
        }
        var parser = try makeParser()
        var reader = RecordReader(source: source, quoteAware: parser.quoteAware, maxRecordBytes: options.maxLineBytes)
        tally.totalBytes = source.totalBytes.map { $0 + finishedBytes }
        var row = Row()
        var batch = CommandBatch(mode: mode, slotted: connection.isCluster)
        var batchOrigin = ""
        var sinceUpdate = 0
        /// The empty lines since the last record that was not empty: where they start and how many.
        var emptyLines: (first: Int, count: Int)?
        do throws(LoadFailure) {
            while true {
                let record: RecordLocation
                do {
                    guard let next = try reader.next() else { break }
                    record = next
                } catch {
                    switch error {
                    case .input(let error):
                        try LoadFailure.checkStopSignal(options)
                        throw LoadFailure(error.kind == .cannotOpen ? .noInput : (error.kind == .corruptGzip ? .dataError : .ioError), "kvload: \(error)")
                    case .tooLong(let error):
                        let hint = parser.quoteAware ? "; an unclosed double quote makes the record run on" : ""
                        throw LoadFailure(.dataError, "\(path):\(error.line): record longer than \(error.limit) bytes (--max-line-bytes)\(hint)")
                    }
                }
                // Empty lines at the end of a file (an editor's or an export's trailing newline) are ignored; one
                // that a row follows is malformed, reported (and counted) when that row arrives.
                if record.range.isEmpty {
                    if emptyLines == nil { emptyLines = (record.line, 0) }
                    emptyLines!.count += 1
                    continue
                }
                if let run = emptyLines {
                    emptyLines = nil
                    for line in run.first..<run.first + run.count {
                        tally.summary.rowsRead += 1
                        try skip(RowError("empty line (only empty lines at the end of a file are ignored)"), at: "\(path):\(line)")
                    }
                }
                tally.summary.rowsRead += 1
                do throws(RowError) {
                    if try parser.parse(reader.buffer[record.range], into: &row) == .header {
                        tally.summary.rowsRead -= 1
                        continue
                    }
                    if options.strictKeys && !KeyRules.isUUIDv4(row.key[...]) {
                        throw RowError("key is not a lower-case UUIDv4: \(KeyRules.printable(row.key[...]))")
                    }
                } catch {
                    try skip(error, at: "\(path):\(record.line)")
                    continue
                }
                sinceUpdate += 1
                if sinceUpdate >= 4096 {
                    sinceUpdate = 0
                    try LoadFailure.checkStopSignal(options)
                    tally.summary.bytesRead = finishedBytes + reader.bytesConsumed
                    tally.progress.update(bytes: tally.summary.bytesRead, totalBytes: tally.totalBytes,
                                          rows: options.dryRun ? tally.summary.rowsRead : tally.summary.rowsWritten)
                }
                if options.dryRun { continue }
                if batch.isEmpty { batchOrigin = "\(path):\(record.line)" }
                batch.add(key: row.key, value: row.value)
                tally.longestElement = max(tally.longestElement, row.key.count, row.value.count)
                if batch.isFull(options) {
                    batch.seal()
                    try connection.send(batch, origin: batchOrigin)
                    batch = CommandBatch(mode: mode, slotted: connection.isCluster)
                }
            }
        } catch {
            // A merge keeps what it can: the rows read before the bad one (or the interruption) still go to
            // Redis, and the caller waits for their acknowledgement before stopping. A --replace discards them anyway.
            if error.isDataError && !options.replace && !batch.isEmpty {
                batch.seal()
                try? connection.send(batch, origin: batchOrigin)
            }
            throw error
        }
        if !batch.isEmpty {
            batch.seal()
            try connection.send(batch, origin: batchOrigin)
        }
        finishedBytes += reader.bytesConsumed
        tally.summary.bytesRead = finishedBytes
    }

    /// Reports a malformed row at `location` (FILE:LINE) and counts it as skipped.
    /// - Throws: `LoadFailure` (65) when the row makes the whole input unusable or `maxErrors` is exceeded.
    private func skip(_ error: RowError, at location: String) throws(LoadFailure) {
        if error.isFatal { throw LoadFailure(.dataError, "\(location): \(error.reason)") }
        tally.summary.skippedRows += 1
        tally.progress.note("\(location): \(error.reason)")
        if tally.summary.skippedRows > options.maxErrors {
            throw LoadFailure(.dataError, options.maxErrors == 0
                ? "kvload: stopped at the first malformed row (--max-errors 0)"
                : "kvload: stopped: more than \(options.maxErrors) malformed rows (--max-errors)")
        }
    }
}
