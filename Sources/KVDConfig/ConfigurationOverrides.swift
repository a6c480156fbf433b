/// Settings given on kvd's command line (`--listen`, `--redis`, `--threads`), applied over the
/// file's: at start, on every reload, for `--check-config` and `--print-config`.
///
/// Each one is checked by the same rules as the key it sets in the file, so `--threads 0` is
/// refused exactly as `threads = 0` would be.
public struct ConfigurationOverrides: Sendable, Equatable {
    /// `(section, key, value)` in the order given, as they would be written in the file.
    private var assignments: [(section: String, key: String, value: String)] = []
    /// The options as given (`--listen 0.0.0.0:80`), for the start-up line.
    public private(set) var given: [String] = []

    public init() {}

    public static func == (lhs: Self, rhs: Self) -> Bool { lhs.given == rhs.given }

    public var isEmpty: Bool { given.isEmpty }

    /// `--listen HOST:PORT` (`[::1]:8000` for IPv6): `[http] host` and `port`.
    public mutating func listen(_ text: String) throws(ConfigError) {
        guard let (host, port) = Self.splitHostPort(text) else {
            throw Self.error("--listen", "expected HOST:PORT (e.g. 127.0.0.1:8000, [::1]:8000), got '\(text)'")
        }
        try set("--listen", text, [("http", "host", host), ("http", "port", port)])
    }

    /// `--redis HOST:PORT`, or a unix socket path (anything with a `/`): `[redis] host` and `port`,
    /// or `socket`. Either form replaces the other one set in the file, and turns Sentinel mode
    /// off (`sentinels`, `master_name`): an address given on the command line is used as given.
    public mutating func redis(_ text: String) throws(ConfigError) {
        let noSentinel = [("redis", "sentinels", ""), ("redis", "master_name", "")]
        if text.contains("/") {
            try set("--redis", text, [("redis", "socket", text)] + noSentinel)
            return
        }
        guard let (host, port) = Self.splitHostPort(text) else {
            throw Self.error("--redis", "expected HOST:PORT or a unix socket path, got '\(text)'")
        }
        try set("--redis", text, [("redis", "host", host), ("redis", "port", port), ("redis", "socket", "")] + noSentinel)
    }

    /// `--threads N`: `[http] threads`.
    public mutating func threads(_ text: String) throws(ConfigError) {
        try set("--threads", text, [("http", "threads", text)])
    }

    /// `configuration` with every override applied. (Each value was checked when given, and
    /// none of them takes part in a rule between keys.)
    public func applied(to configuration: Configuration) -> Configuration {
        var result = configuration
        for assignment in assignments {
            try? ConfigSchema.keys[assignment.section]![assignment.key]!(&result, assignment.value)
        }
        return result
    }

    private mutating func set(_ option: String, _ text: String, _ values: [(String, String, String)]) throws(ConfigError) {
        // Checked now, so a bad value is reported against its option before any file is read.
        var probe = Configuration()
        for (section, key, value) in values {
            do {
                try ConfigSchema.keys[section]![key]!(&probe, value)
            } catch {
                throw Self.error(option, "[\(section)] \(key): \(error.reason)")
            }
            assignments.append((section, key, value))
        }
        given.append("\(option) \(text)")
    }

    private static func error(_ option: String, _ message: String) -> ConfigError {
        ConfigError(path: "command line", line: nil, message: "\(option): \(message)")
    }

    /// `host:port` or `[v6-address]:port`; the port after the last colon.
    static func splitHostPort(_ text: String) -> (String, String)? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = Substring(text[..<colon])
        let port = String(text[text.index(after: colon)...])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        guard !host.isEmpty, !port.isEmpty else { return nil }
        return (String(host), port)
    }
}
