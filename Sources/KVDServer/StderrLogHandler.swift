import KVDConfig
import KVDCore
import KVDSystem
import Logging
import Synchronization

/// The level every `StderrLogHandler` reads, so a reload changes it live for all loggers.
public final class SharedLogLevel: Sendable {
    private let raw: Atomic<UInt8>

    public init(_ level: Logger.Level) { raw = Atomic(Self.index(level)) }

    public var level: Logger.Level {
        get { Logger.Level.allCases[Int(raw.load(ordering: .relaxed))] }
        set { raw.store(Self.index(newValue), ordering: .relaxed) }
    }

    private static func index(_ level: Logger.Level) -> UInt8 {
        UInt8(Logger.Level.allCases.firstIndex(of: level)!)
    }
}

extension Logger.Level {
    /// swift-log's level for a configured one (the names are the same).
    public init(_ level: LogLevel) { self = Logger.Level(rawValue: level.rawValue)! }

    /// sd-daemon(3) priority: what the journal files the line under.
    var syslogPriority: Int {
        switch self {
        case .trace, .debug: return 7
        case .info: return 6
        case .notice: return 5
        case .warning: return 4
        case .error: return 3
        case .critical: return 2
        }
    }
}

/// One line per event on stderr. Under systemd (`JOURNAL_STREAM` set) each line starts with a
/// `<N>` priority prefix and carries no timestamp (the journal adds its own); elsewhere it starts
/// with an ISO 8601 time and the level name.
public struct StderrLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let shared: SharedLogLevel
    private let journal: Bool

    public init(label: String, level: SharedLogLevel, journal: Bool) {
        self.label = label
        self.shared = level
        self.journal = journal
    }

    public var logLevel: Logger.Level {
        get { shared.level }
        set { shared.level = newValue }
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line = journal ? "<\(event.level.syslogPriority)>" : "\(SystemClock.utcTimestamp()) \(event.level) "
        line += "\(label): \(event.message)"
        let merged = event.metadata.map { metadata.merging($0) { $1 } } ?? metadata
        for key in merged.keys.sorted() {
            line += " \(key)=\(merged[key]!)"
        }
        StandardStreams.writeError(line.replacingLineBreaks() + "\n")
    }
}
