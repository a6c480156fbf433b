/// The counts kvload reports at the end (and in progress lines).
public struct LoadSummary: Sendable, Equatable {
    /// Records read from the input (good and bad, headers excluded).
    public var rowsRead = 0
    /// Rows Redis acknowledged without an error reply.
    public var rowsWritten = 0
    /// Fields `HSET` reported as new (hash layout only).
    public var newKeys = 0
    /// Malformed rows skipped (each printed as FILE:LINE: reason).
    public var skippedRows = 0
    /// Input bytes consumed (compressed bytes for gzip input).
    public var bytesRead = 0
    public var elapsedSeconds = 0.0
    /// A failed `--replace` deleted its staging data: the rows written there were thrown away.
    public var stagingDiscarded = false

    public init() {}

    /// The summary block printed at the end.
    /// - Parameters:
    ///   - countsNewKeys: whether `HSET` replies were counted (hash layout, not a dry run).
    ///   - intoEmptyTarget: the hash was empty when the load began (a `--replace` staging hash, or a
    ///     first load): every non-new row is a duplicate in the input.
    public func render(countsNewKeys: Bool, intoEmptyTarget: Bool, dryRun: Bool) -> String {
        let seconds = max(elapsedSeconds, 1e-9)
        var lines = [
            "rows read:      \(rowsRead)",
            dryRun ? "rows written:   0 (dry run: parsed and validated only)" : "rows written:   \(rowsWritten)",
        ]
        if stagingDiscarded {
            lines[1] = "rows kept:      0 (the \(rowsWritten) rows written to the staging data were discarded; the live data is untouched)"
        } else if countsNewKeys {
            if intoEmptyTarget {
                lines.append("new keys:       \(newKeys)")
                lines.append("duplicate keys in the input: \(rowsWritten - newKeys)")
            } else {
                lines.append("new keys:       \(newKeys)")
                lines.append("updated keys:   \(rowsWritten - newKeys) (already in Redis or repeated in the input)")
            }
        } else if !dryRun {
            lines.append("new/updated:    not reported for the string layout (SET/MSET do not say)")
        }
        lines.append("skipped rows:   \(skippedRows)")
        lines.append("elapsed:        " + Self.fixed(elapsedSeconds, 3) + " s")
        let rows = dryRun ? rowsRead : rowsWritten
        lines.append("rate:           \(Int(Double(rows) / seconds)) rows/s, " + Self.fixed(Double(bytesRead) / seconds / 1_000_000, 1) + " MB/s")
        return lines.joined(separator: "\n")
    }

    /// `value` with `digits` decimals, without Foundation.
    static func fixed(_ value: Double, _ digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let scaled = Int((value * scale).rounded())
        let whole = scaled / Int(scale)
        var fraction = String(scaled % Int(scale))
        while fraction.count < digits { fraction = "0" + fraction }
        return digits == 0 ? String(whole) : "\(whole).\(fraction)"
    }
}
