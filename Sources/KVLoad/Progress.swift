import KVDSystem

/// How progress is shown while loading.
public enum ProgressStyle: Sendable {
    /// A bar redrawn in place on a terminal (standard error).
    case bar
    /// A log line every few seconds (standard error is not a terminal).
    case log
    /// Nothing (`--quiet`).
    case off
}

/// Draws the progress bar or prints the periodic log lines; cheap to call often.
public final class ProgressReporter {
    private let style: ProgressStyle
    private let started = ContinuousClock.now
    private var lastShown = ContinuousClock.now
    private var drewBar = false
    /// Where the bar, the progress lines and the notes go (standard error).
    private let output: (String) -> Void

    public init(style: ProgressStyle, output: @escaping (String) -> Void = { StandardStreams.writeError($0) }) {
        self.style = style
        self.output = output
    }

    /// Seconds since the reporter was made (the load's start).
    public var elapsedSeconds: Double { Self.seconds(ContinuousClock.now - started) }

    /// Shows progress if enough time passed since the last update.
    public func update(bytes: Int, totalBytes: Int?, rows: Int) {
        if style == .off { return }
        let now = ContinuousClock.now
        let interval: Duration = style == .bar ? .milliseconds(200) : .seconds(5)
        guard now - lastShown >= interval else { return }
        lastShown = now
        let elapsed = max(Self.seconds(now - started), 1e-9)
        let rate = Int(Double(rows) / elapsed)
        var eta = ""
        var percent = ""
        if let totalBytes, totalBytes > 0 {
            let fraction = min(1, Double(bytes) / Double(totalBytes))
            percent = " " + LoadSummary.fixed(fraction * 100, 1) + "%"
            if fraction > 0 { eta = " ETA " + LoadSummary.fixed(elapsed / fraction - elapsed, 0) + " s" }
        }
        let megabytes = LoadSummary.fixed(Double(bytes) / 1_000_000, 1)
        let total = totalBytes.map { " / " + LoadSummary.fixed(Double($0) / 1_000_000, 1) } ?? ""
        switch style {
        case .bar:
            var bar = ""
            if let totalBytes, totalBytes > 0 {
                let filled = min(30, Int(30 * Double(bytes) / Double(totalBytes)))
                bar = "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled) + "] "
            }
            output("\r\u{1B}[K\(bar)\(megabytes)\(total) MB\(percent), \(rows) rows, \(rate) rows/s\(eta)")
            drewBar = true
        case .log:
            output("kvload: \(megabytes)\(total) MB\(percent), \(rows) rows, \(rate) rows/s\(eta)\n")
        case .off:
            break
        }
    }

    /// Clears the bar so that later output starts on a fresh line.
    public func finish() {
        if drewBar { output("\r\u{1B}[K") }
        drewBar = false
    }

    /// Prints one line (a warning, an error) on a line of its own: the bar is cleared first and redrawn by
    /// the next update.
    public func note(_ message: String) {
        finish()
        output(message + "\n")
    }

    static func seconds(_ duration: Duration) -> Double {
        let parts = duration.components
        return Double(parts.seconds) + Double(parts.attoseconds) / 1e18
    }
}

