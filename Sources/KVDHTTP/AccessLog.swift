import KVDSettings
import Synchronization

/// kvd's access log: one line per answered request, like nginx's (client address, method, path
/// with query, status, body bytes, microseconds, user agent), as text or JSON.
///
/// One switch for all workers, read once per request (a relaxed atomic load: nothing else is
/// paid while the log is off); a reload turns it on or off, or changes the format, live.
/// Lines go straight to their sink, whatever `[log] level` is (as nginx's access_log does not
/// depend on its error_log level).
///
/// Every byte of the request that reaches a line is escaped, so that no request can forge a
/// line or smuggle terminal control sequences into the log: in text lines `\xHH` for control
/// bytes, space (in the path), `"`, `\` and bytes ≥ 0x7F; in JSON lines the same bytes as
/// `\u00HH` (`"` and `\` as `\"` and `\\`), so each line is valid, pure-ASCII JSON.
public final class AccessLog: Sendable {
    private static let off: UInt8 = 0
    private let state: Atomic<UInt8>
    private let journal: Bool
    private let timestamp: @Sendable () -> String
    private let write: @Sendable (String) -> Void

    /// - Parameters:
    ///   - journal: stderr is the journal: lines start with a `<6>` priority and carry no
    ///     timestamp of their own in text form (the journal adds one).
    ///   - timestamp: the time of a line (ISO 8601, UTC), as the other log lines show it.
    ///   - write: where a finished line (newline included) goes.
    public init(_ settings: LogSettings, journal: Bool, timestamp: @escaping @Sendable () -> String,
                write: @escaping @Sendable (String) -> Void) {
        state = Atomic(Self.state(settings))
        self.journal = journal
        self.timestamp = timestamp
        self.write = write
    }

    /// Applies `[log] access` and `format` (a reload).
    public func apply(_ settings: LogSettings) {
        state.store(Self.state(settings), ordering: .relaxed)
    }

    private static func state(_ settings: LogSettings) -> UInt8 {
        guard settings.access else { return off }
        return UInt8(LogFormat.allCases.firstIndex(of: settings.format)! + 1)
    }

    /// Whether requests are logged now.
    @inline(__always)
    var isOn: Bool { state.load(ordering: .relaxed) != Self.off }

    /// Writes the line for one request (nothing when the log is off).
    func record(_ entry: AccessLogEntry) {
        let current = state.load(ordering: .relaxed)
        guard current != Self.off else { return }
        switch LogFormat.allCases[Int(current) - 1] {
        case .text:
            write((journal ? "<6>kvd: " : "\(timestamp()) info kvd: ") + entry.text + "\n")
        case .json:
            write((journal ? "<6>" : "") + entry.json(time: timestamp()) + "\n")
        }
    }
}

/// What the access log says about one request.
struct AccessLogEntry {
    var client: String
    var method: String
    /// The path as sent (escapes kept), with `?query` when there was one.
    var target: [UInt8]
    var status: UInt32
    /// Body bytes of the answer (0 for HEAD).
    var bytes: Int
    var microseconds: UInt64
    var userAgent: String?

    /// `127.0.0.1 GET /get/k?format=raw 200 5 87us "curl/8.0"` (`"-"` without a user agent).
    var text: String {
        var line = client + " "
        Self.escapeText(Array(method.utf8), escapingSpace: true, into: &line)
        line += " "
        Self.escapeText(target, escapingSpace: true, into: &line)
        line += " \(status) \(bytes) \(microseconds)us \""
        if let userAgent { Self.escapeText(Array(userAgent.utf8), escapingSpace: false, into: &line) } else { line += "-" }
        return line + "\""
    }

    /// `{"time":"…","client":"127.0.0.1","method":"GET","path":"/get/k","status":200,"bytes":5,"us":87,"user_agent":"curl/8.0"}`
    func json(time: String) -> String {
        var line = "{\"time\":\"\(time)\",\"client\":\"\(client)\",\"method\":"
        Self.jsonString(Array(method.utf8), into: &line)
        line += ",\"path\":"
        Self.jsonString(target, into: &line)
        line += ",\"status\":\(status),\"bytes\":\(bytes),\"us\":\(microseconds),\"user_agent\":"
        if let userAgent { Self.jsonString(Array(userAgent.utf8), into: &line) } else { line += "null" }
        return line + "}"
    }

    private static let hexDigits = Array("0123456789abcdef".unicodeScalars)

    private static func appendHex(_ byte: UInt8, into line: inout String) {
        line.unicodeScalars.append(hexDigits[Int(byte >> 4)])
        line.unicodeScalars.append(hexDigits[Int(byte & 0xF)])
    }

    /// nginx's escaping: `\xHH` for control bytes, `"`, `\`, bytes ≥ 0x7F (and space in
    /// space-separated fields).
    static func escapeText(_ bytes: [UInt8], escapingSpace: Bool, into line: inout String) {
        for byte in bytes {
            if byte < 0x20 || byte >= 0x7F || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\")
                || (escapingSpace && byte == UInt8(ascii: " ")) {
                line += "\\x"
                appendHex(byte, into: &line)
            } else {
                line.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
    }

    /// A JSON string of pure ASCII: control bytes and bytes ≥ 0x7F as `\u00HH`, one per byte.
    static func jsonString(_ bytes: [UInt8], into line: inout String) {
        line += "\""
        for byte in bytes {
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") {
                line += "\\"
                line.unicodeScalars.append(Unicode.Scalar(byte))
            } else if byte < 0x20 || byte >= 0x7F {
                line += "\\u00"
                appendHex(byte, into: &line)
            } else {
                line.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        line += "\""
    }
}
