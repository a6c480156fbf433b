/// What a load has counted so far, shared by the record loop, the connection that writes the batches and
/// the replace strategies; the progress display reads it.
final class LoadTally {
    var summary = LoadSummary()
    /// The size of the files finished plus the current one's, when known (for the percentage and ETA).
    var totalBytes: Int?
    let progress: ProgressReporter
    /// The longest key or value sent (the `buckets` layout compares it with hash-max-listpack-value).
    var longestElement = 0

    init(progress: ProgressReporter) { self.progress = progress }

    /// Shows progress by rows Redis acknowledged (if enough time passed since the last update).
    func showWritten() {
        progress.update(bytes: summary.bytesRead, totalBytes: totalBytes, rows: summary.rowsWritten)
    }

    /// The line that ends every failure after rows were sent: how many Redis confirmed.
    /// - Parameter inFlightRows: rows sent and not acknowledged.
    func confirmedLine(inFlightRows: Int) -> String {
        "kvload: Redis confirmed \(summary.rowsWritten) of \(summary.rowsRead - summary.skippedRows) rows read; \(inFlightRows) rows in flight were not acknowledged"
    }
}
