@_exported import KVDSettings
import KVDSystem

#if canImport(Glibc)
import Glibc
#endif

extension Configuration {
    /// Where kvd and kvload look when no `--config` is given.
    public static let defaultPath = "/etc/kvd.conf"

    /// Builds the configuration from a parsed INI file: every key must be known and every value valid.
    /// - Parameter credentialsDirectory: where a relative `password_file` is looked up: systemd's
    ///   `$CREDENTIALS_DIRECTORY` (`LoadCredential=`) by default.
    /// - Throws: `ConfigError` at the first unknown section or key, duplicate key, or bad value.
    public init(ini: INIFile, credentialsDirectory: String? = Configuration.credentialsDirectory) throws(ConfigError) {
        self.init()
        for heading in ini.sections where ConfigSchema.keys[heading.name] == nil {
            throw ConfigError(path: ini.path, line: heading.line,
                              message: "unknown section [\(heading.name)] (known: \(ConfigSchema.sectionList))")
        }
        var seen: [String: Int] = [:]
        for entry in ini.entries {
            guard let section = ConfigSchema.keys[entry.section] else {
                let what = entry.section.isEmpty ? "key '\(entry.name)' outside any section" : "unknown section [\(entry.section)]"
                throw ConfigError(path: ini.path, line: entry.line, message: "\(what) (known sections: \(ConfigSchema.sectionList))")
            }
            guard let apply = section[entry.name] else {
                throw ConfigError(path: ini.path, line: entry.line,
                                  message: "unknown key '\(entry.name)' in [\(entry.section)] (known: \(section.keys.sorted().joined(separator: ", ")))")
            }
            let qualified = "\(entry.section).\(entry.name)"
            if let first = seen[qualified] {
                throw ConfigError(path: ini.path, line: entry.line,
                                  message: "[\(entry.section)] \(entry.name) is set twice (first on line \(first))")
            }
            seen[qualified] = entry.line
            do {
                try apply(&self, entry.value)
            } catch {
                throw ConfigError(path: ini.path, line: entry.line, message: "[\(entry.section)] \(entry.name): \(error.reason)")
            }
        }
        (redis.password, redis.passwordFile) = try Self.secret(ini, "password", redis.password, file: redis.passwordFile,
                                                               credentialsDirectory: credentialsDirectory)
        (redis.sentinelPassword, redis.sentinelPasswordFile) = try Self.secret(
            ini, "sentinel_password", redis.sentinelPassword, file: redis.sentinelPasswordFile, credentialsDirectory: credentialsDirectory)
        try checkSentinel(ini)
        if redis.user != nil && redis.password == nil {
            let line = ini.entries.first { $0.section == "redis" && $0.name == "user" }?.line
            throw ConfigError(path: ini.path, line: line, message: "[redis] user needs a password")
        }
        if cache.maxValueBytes > cache.bytesPerWorker(threads: http.threads) {
            let line = ini.entries.first { $0.section == "cache" && $0.name == "max_value_bytes" }?.line
                ?? ini.entries.first { $0.section == "cache" && $0.name == "max_bytes" }?.line
            throw ConfigError(path: ini.path, line: line,
                              message: "[cache] max_value_bytes (\(cache.maxValueBytes)) is more than one worker's share of max_bytes (\(cache.maxBytes) / \(http.threads) threads = \(cache.bytesPerWorker(threads: http.threads)))")
        }
        try validateCluster(ini)
        let selectCeiling = HTTPSettings.selectConnectionCeiling(threads: http.threads)
        if http.polling == .select && http.connectionLimit > selectCeiling {
            let line = ini.entries.first { $0.section == "http" && $0.name == "polling" }?.line
            throw ConfigError(path: ini.path, line: line,
                              message: "[http] polling = select holds at most \(selectCeiling) connections, but connection_limit is \(http.connectionLimit) (every descriptor must stay below \(HTTPSettings.fdSetSize), and each of the \(http.threads) threads keeps \(HTTPSettings.descriptorsPerThread) of its own; use epoll or auto, or fewer threads)")
        }
    }

    /// A `[redis]` secret given as `<key>` or `<key>_file`: both set is an error; the file is read now.
    /// - Returns: the secret and the path it was read from (nil when given in the file itself).
    private static func secret(_ ini: INIFile, _ key: String, _ value: String?, file: String?,
                               credentialsDirectory: String?) throws(ConfigError) -> (String?, String?) {
        guard let file else { return (value, nil) }
        let line = ini.line(of: "redis", key + "_file")
        if value != nil {
            throw ConfigError(path: ini.path, line: line, message: "[redis] \(key) and \(key)_file are both set; keep one")
        }
        do {
            let (path, secret) = try readSecret(file, credentialsDirectory: credentialsDirectory)
            return (secret, path)
        } catch {
            throw ConfigError(path: ini.path, line: line, message: "[redis] \(key)_file: \(error.reason)")
        }
    }

    /// Sentinel mode's rules between keys: `sentinels` and `master_name` go together; the master's
    /// address comes from the sentinels, so `host`, `port` and `socket` must not be set, and
    /// Sentinel does not manage a Redis Cluster (`cluster = yes`).
    private func checkSentinel(_ ini: INIFile) throws(ConfigError) {
        if redis.sentinels.isEmpty {
            if redis.masterName != nil {
                throw ConfigError(path: ini.path, line: ini.line(of: "redis", "master_name"),
                                  message: "[redis] master_name needs sentinels (host:port, …)")
            }
            return
        }
        let line = ini.line(of: "redis", "sentinels")
        if redis.masterName == nil {
            throw ConfigError(path: ini.path, line: line, message: "[redis] sentinels needs master_name (the name the sentinels monitor)")
        }
        for key in ["host", "port", "socket"] {
            guard let entry = ini.entries.first(where: { $0.section == "redis" && $0.name == key }),
                  key != "socket" || !entry.value.isEmpty else { continue }
            throw ConfigError(path: ini.path, line: entry.line,
                              message: "[redis] \(key) cannot be set with sentinels: the sentinels name the master's address (remove \(key))")
        }
        // Read from the file, not a property, so the rule holds whichever module defines the key.
        if let entry = ini.entries.first(where: { $0.section == "redis" && $0.name == "cluster" }),
           (try? ConfigSchema.boolean(entry.value)) == true {
            throw ConfigError(path: ini.path, line: entry.line,
                              message: "[redis] cluster = yes cannot be used with sentinels: Sentinel serves one master and its replicas, a cluster fails over by itself")
        }
    }

    /// `[redis] cluster`, `nodes` and `read_from` belong together; a cluster has only database 0
    /// and is reached over TCP.
    private func validateCluster(_ ini: INIFile) throws(ConfigError) {
        func line(_ name: String) -> Int? { ini.entries.first { $0.section == "redis" && $0.name == name }?.line }
        if redis.cluster {
            if redis.nodes.isEmpty {
                throw ConfigError(path: ini.path, line: line("cluster"), message: "[redis] cluster = yes needs nodes = host:port, … (any reachable node of the cluster)")
            }
            if redis.db != 0 {
                throw ConfigError(path: ini.path, line: line("db"), message: "[redis] db = \(redis.db): Redis Cluster has only database 0")
            }
            if redis.socket != nil {
                throw ConfigError(path: ini.path, line: line("socket"), message: "[redis] socket cannot be used with cluster = yes: cluster nodes are reached over TCP (nodes = host:port, …)")
            }
        } else {
            if !redis.nodes.isEmpty {
                throw ConfigError(path: ini.path, line: line("nodes"), message: "[redis] nodes is for cluster = yes; a single Redis is host and port")
            }
            if redis.readFrom != .master {
                throw ConfigError(path: ini.path, line: line("read_from"), message: "[redis] read_from = \(redis.readFrom.rawValue) needs cluster = yes; to read from a plain replica, point host and port at it")
            }
        }
    }

    /// systemd's `$CREDENTIALS_DIRECTORY`, where `LoadCredential=` puts the unit's secrets.
    public static var credentialsDirectory: String? { Secrets.credentialsDirectory }

    /// Reads a secret with the rules of `Secrets.readPasswordFile` (one line; relative names in `credentialsDirectory`).
    /// - Returns: the path read and the secret.
    static func readSecret(_ name: String, credentialsDirectory: String?) throws(ValueError) -> (String, String) {
        do {
            return try Secrets.readPasswordFile(name, credentialsDirectory: credentialsDirectory)
        } catch {
            throw ValueError(reason: error.reason)
        }
    }

    /// Loads `path`, or the default path when `path` is nil.
    ///
    /// A missing default file is not an error: kvd then runs on defaults. A missing file that was
    /// named explicitly is.
    /// - Returns: the configuration and the path it came from (nil: defaults only).
    /// - Throws: `ConfigError` for an unreadable or invalid file.
    public static func load(path: String?) throws(ConfigError) -> (Configuration, source: String?) {
        let chosen = path ?? defaultPath
        if path == nil && !FileContents.exists(chosen) {
            return (Configuration(), nil)
        }
        return (try Configuration(ini: INIFile.load(path: chosen)), chosen)
    }
}

/// Why a single value was refused (the caller adds file, line and key).
struct ValueError: Error {
    let reason: String
}

/// The known sections and keys, each with the function that parses its value into a `Configuration`.
enum ConfigSchema {
    typealias Apply = @Sendable (inout Configuration, String) throws(ValueError) -> Void

    static let keys: [String: [String: Apply]] = [
        "http": [
            "host": { c, v throws(ValueError) in c.http.host = try nonEmpty(v) },
            "port": { c, v throws(ValueError) in c.http.port = try integer(v, 0...65535) },
            "threads": { c, v throws(ValueError) in c.http.threads = try integer(v, 1...1024) },
            "connection_limit": { c, v throws(ValueError) in c.http.connectionLimit = try integer(v, 1...1_000_000) },
            "polling": { c, v throws(ValueError) in c.http.polling = try choice(v) },
            // Empty: the default, half of connection_limit (what --print-config writes for it).
            "per_ip_connection_limit": { c, v throws(ValueError) in c.http.perIPConnectionLimit = v.isEmpty ? nil : try integer(v, 0...1_000_000) },
            "idle_timeout_s": { c, v throws(ValueError) in c.http.idleTimeoutSeconds = try integer(v, 0...86_400) },
            "request_head_timeout_s": { c, v throws(ValueError) in c.http.requestHeadTimeoutSeconds = try integer(v, 0...3_600) },
            "request_body_timeout_s": { c, v throws(ValueError) in c.http.requestBodyTimeoutSeconds = try integer(v, 0...3_600) },
            "listen_backlog": { c, v throws(ValueError) in c.http.listenBacklog = try integer(v, 1...65_535) },
            "max_key_bytes": { c, v throws(ValueError) in c.http.maxKeyBytes = try integer(v, 1...16_384) },
            "mget_max_keys": { c, v throws(ValueError) in c.http.mgetMaxKeys = try integer(v, 1...100_000) },
            "mget_max_body_bytes": { c, v throws(ValueError) in c.http.mgetMaxBodyBytes = try integer(v, 2...(64 << 20)) },
            "mget_max_answer_bytes": { c, v throws(ValueError) in c.http.mgetMaxAnswerBytes = try integer(v, 2...(16 << 30)) },
            "connection_memory_bytes": { c, v throws(ValueError) in c.http.connectionMemoryBytes = try integer(v, 4096...1_048_576) },
            "shutdown_timeout_ms": { c, v throws(ValueError) in c.http.shutdownTimeoutMs = try integer(v, 0...600_000) },
            "max_unsent_bytes": { c, v throws(ValueError) in c.http.maxUnsentBytes = try integer(v, (1 << 20)...(1 << 40)) },
            "etag": { c, v throws(ValueError) in c.http.etag = try boolean(v) },
            "cache_control": { c, v throws(ValueError) in c.http.cacheControl = try headerValue(v) },
            "cors_origin": { c, v throws(ValueError) in c.http.corsOrigin = try headerValue(v) },
        ],
        "redis": [
            "host": { c, v throws(ValueError) in c.redis.host = try nonEmpty(v) },
            "port": { c, v throws(ValueError) in c.redis.port = try integer(v, 1...65535) },
            "socket": { c, v in c.redis.socket = v.isEmpty ? nil : v },
            "db": { c, v throws(ValueError) in c.redis.db = try integer(v, 0...65_535) },
            "user": { c, v in c.redis.user = v.isEmpty ? nil : v },
            "password": { c, v in c.redis.password = v.isEmpty ? nil : v },
            "password_file": { c, v in c.redis.passwordFile = v.isEmpty ? nil : v },
            "layout": { c, v throws(ValueError) in c.redis.layout = try choice(v) },
            "hash": { c, v throws(ValueError) in c.redis.hash = try nonEmpty(v) },
            "prefix": { c, v in c.redis.prefix = v },
            "descriptor": { c, v in c.redis.descriptor = v.isEmpty ? nil : v },
            "generations": { c, v throws(ValueError) in c.redis.generations = try boolean(v) },
            "connect_timeout_ms": { c, v throws(ValueError) in c.redis.connectTimeoutMs = try integer(v, 1...600_000) },
            "command_timeout_ms": { c, v throws(ValueError) in c.redis.commandTimeoutMs = try integer(v, 1...600_000) },
            "reconnect_max_ms": { c, v throws(ValueError) in c.redis.reconnectMaxMs = try integer(v, 10...60_000) },
            "keepalive_s": { c, v throws(ValueError) in c.redis.keepaliveSeconds = try integer(v, 1...7_200) },
            "sentinels": { c, v throws(ValueError) in c.redis.sentinels = try addressList(v, example: "10.0.0.1:26379, [::1]:26379") },
            "master_name": { c, v in c.redis.masterName = v.isEmpty ? nil : v },
            "sentinel_password": { c, v in c.redis.sentinelPassword = v.isEmpty ? nil : v },
            "sentinel_password_file": { c, v in c.redis.sentinelPasswordFile = v.isEmpty ? nil : v },
            "cluster": { c, v throws(ValueError) in c.redis.cluster = try boolean(v) },
            "nodes": { c, v throws(ValueError) in c.redis.nodes = try addressList(v, example: "10.0.0.1:7000, [::1]:7001") },
            "read_from": { c, v throws(ValueError) in c.redis.readFrom = try choice(v) },
            "cluster_refresh_ms": { c, v throws(ValueError) in c.redis.clusterRefreshMs = try integer(v, 100...3_600_000) },
        ],
        "cache": [
            "enabled": { c, v throws(ValueError) in c.cache.enabled = try boolean(v) },
            "max_bytes": { c, v throws(ValueError) in c.cache.maxBytes = try integer(v, (1 << 16)...(1 << 40)) },
            "max_value_bytes": { c, v throws(ValueError) in c.cache.maxValueBytes = try integer(v, 0...(1 << 30)) },
            "cache_missing": { c, v throws(ValueError) in c.cache.cacheMissing = try boolean(v) },
        ],
        "log": [
            "level": { c, v throws(ValueError) in c.log.level = try choice(v) },
            "access": { c, v throws(ValueError) in c.log.access = try boolean(v) },
            "format": { c, v throws(ValueError) in c.log.format = try choice(v) },
        ],
    ]

    static var sectionList: String { keys.keys.sorted().map { "[\($0)]" }.joined(separator: ", ") }

    static func integer(_ text: String, _ range: ClosedRange<Int>) throws(ValueError) -> Int {
        guard let value = Int(text), range.contains(value) else {
            throw ValueError(reason: "expected a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'")
        }
        return value
    }

    static func boolean(_ text: String) throws(ValueError) -> Bool {
        switch text.lowercased() {
        case "yes", "true", "on", "1": return true
        case "no", "false", "off", "0": return false
        default: throw ValueError(reason: "expected yes or no, got '\(text)'")
        }
    }

    /// An HTTP header value (empty: no header): visible ASCII, spaces and tabs.
    static func headerValue(_ text: String) throws(ValueError) -> String? {
        guard !text.isEmpty else { return nil }
        guard text.utf8.allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == 0x09 }) else {
            throw ValueError(reason: "an HTTP header value takes printable ASCII only, got '\(text)'")
        }
        return text
    }

    /// `host:port, …` (IPv6: `[::1]:7000` or `::1:7000`), the cluster's seed nodes or the
    /// sentinels; empty: none. An empty item or an address listed twice is refused (a typo, most
    /// likely, and a sentinel listed twice would be asked twice).
    static func addressList(_ text: String, example: String) throws(ValueError) -> [NodeAddress] {
        guard !text.trimmingWhitespace.isEmpty else { return [] }
        var addresses: [NodeAddress] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let trimmed = item.trimmingWhitespace
            guard let address = NodeAddress(trimmed) else {
                throw ValueError(reason: "expected host:port, … (e.g. \(example)), got '\(trimmed)'")
            }
            guard !addresses.contains(address) else { throw ValueError(reason: "\(address) is listed twice") }
            addresses.append(address)
        }
        return addresses
    }

    static func nonEmpty(_ text: String) throws(ValueError) -> String {
        guard !text.isEmpty else { throw ValueError(reason: "must not be empty") }
        return text
    }

    static func choice<T: RawRepresentable & CaseIterable>(_ text: String) throws(ValueError) -> T where T.RawValue == String {
        guard let value = T(rawValue: text) else {
            throw ValueError(reason: "expected one of \(T.allCases.map(\.rawValue).joined(separator: ", ")), got '\(text)'")
        }
        return value
    }
}

extension INIFile {
    /// The line of `[section] name`, if the file sets it.
    func line(of section: String, _ name: String) -> Int? {
        entries.first { $0.section == section && $0.name == name }?.line
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    var trimmingWhitespace: String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else { return "" }
        return String(self[first...last])
    }
}
