/// The configuration written back as an INI file (`kvd --print-config`): every key with the value in
/// effect, defaults included, in the order of the shipped config/kvd.conf. kvd reads the text back
/// to the same configuration, except a password given in the file, which is masked.
extension Configuration {
    /// What a password written in the file is shown as.
    public static let maskedPassword = "********"

    /// INI text of every setting. A password read from `password_file` is shown as that file's
    /// path (reading the text back reads the file again); one written in the file is masked.
    public func renderedINI() -> String {
        var text = ""
        var section = ""
        for (qualified, value) in Self.renderers {
            let dot = qualified.firstIndex(of: ".")!
            let name = qualified[qualified.index(after: dot)...]
            if qualified[..<dot] != section {
                section = String(qualified[..<dot])
                text += (text.isEmpty ? "" : "\n") + "[\(section)]\n"
            }
            guard let rendered = value(self) else { continue }
            text += "\(name) = \(Self.iniValue(rendered))\n"
        }
        return text
    }

    /// The `section.key` names `renderedINI` writes (tests check they cover the schema).
    static var renderedKeys: [String] { renderers.map(\.0) }

    /// A value as INI text: bare when it reads back unchanged, else in double quotes.
    static func iniValue(_ value: String) -> String {
        let needsQuotes = value.contains { $0 == ";" || $0 == "#" || $0 == "\"" || $0 == "\\" }
            || value.first == " " || value.first == "\t" || value.last == " " || value.last == "\t"
        guard needsQuotes else { return value }
        var quoted = "\""
        for character in value {
            if character == "\"" || character == "\\" { quoted.append("\\") }
            quoted.append(character)
        }
        return quoted + "\""
    }

    /// Each key and its value in effect; nil leaves the key out.
    private static let renderers: [(String, @Sendable (Configuration) -> String?)] = [
        ("http.host", { $0.http.host }),
        ("http.port", { "\($0.http.port)" }),
        ("http.threads", { "\($0.http.threads)" }),
        ("http.connection_limit", { "\($0.http.connectionLimit)" }),
        ("http.polling", { $0.http.polling.rawValue }),
        ("http.per_ip_connection_limit", { $0.http.perIPConnectionLimit.map { "\($0)" } ?? "" }),
        ("http.idle_timeout_s", { "\($0.http.idleTimeoutSeconds)" }),
        ("http.request_head_timeout_s", { "\($0.http.requestHeadTimeoutSeconds)" }),
        ("http.request_body_timeout_s", { "\($0.http.requestBodyTimeoutSeconds)" }),
        ("http.listen_backlog", { "\($0.http.listenBacklog)" }),
        ("http.max_key_bytes", { "\($0.http.maxKeyBytes)" }),
        ("http.mget_max_keys", { "\($0.http.mgetMaxKeys)" }),
        ("http.mget_max_body_bytes", { "\($0.http.mgetMaxBodyBytes)" }),
        ("http.mget_max_answer_bytes", { "\($0.http.mgetMaxAnswerBytes)" }),
        ("http.connection_memory_bytes", { "\($0.http.connectionMemoryBytes)" }),
        ("http.shutdown_timeout_ms", { "\($0.http.shutdownTimeoutMs)" }),
        ("http.max_unsent_bytes", { "\($0.http.maxUnsentBytes)" }),
        ("http.etag", { $0.http.etag ? "yes" : "no" }),
        ("http.cache_control", { $0.http.cacheControl ?? "" }),
        ("http.cors_origin", { $0.http.corsOrigin ?? "" }),
        // Sentinel mode: the sentinels name the master; the file must not.
        ("redis.host", { $0.redis.sentinels.isEmpty ? $0.redis.host : nil }),
        ("redis.port", { $0.redis.sentinels.isEmpty ? "\($0.redis.port)" : nil }),
        ("redis.socket", { $0.redis.socket ?? "" }),
        ("redis.db", { "\($0.redis.db)" }),
        ("redis.user", { $0.redis.user ?? "" }),
        ("redis.password", { c in c.redis.passwordFile != nil ? nil : c.redis.password == nil ? "" : maskedPassword }),
        ("redis.password_file", { $0.redis.passwordFile ?? "" }),
        ("redis.layout", { $0.redis.layout.rawValue }),
        ("redis.hash", { $0.redis.hash }),
        ("redis.prefix", { $0.redis.prefix }),
        ("redis.descriptor", { $0.redis.descriptor ?? "" }),
        ("redis.generations", { $0.redis.generations ? "yes" : "no" }),
        ("redis.connect_timeout_ms", { "\($0.redis.connectTimeoutMs)" }),
        ("redis.command_timeout_ms", { "\($0.redis.commandTimeoutMs)" }),
        ("redis.reconnect_max_ms", { "\($0.redis.reconnectMaxMs)" }),
        ("redis.keepalive_s", { "\($0.redis.keepaliveSeconds)" }),
        ("redis.sentinels", { $0.redis.sentinels.map(\.description).joined(separator: ", ") }),
        ("redis.master_name", { $0.redis.masterName ?? "" }),
        ("redis.sentinel_password", { c in
            c.redis.sentinelPasswordFile != nil ? nil : c.redis.sentinelPassword == nil ? "" : maskedPassword }),
        ("redis.sentinel_password_file", { $0.redis.sentinelPasswordFile ?? "" }),
        ("cache.enabled", { $0.cache.enabled ? "yes" : "no" }),
        ("cache.max_bytes", { "\($0.cache.maxBytes)" }),
        ("cache.max_value_bytes", { "\($0.cache.maxValueBytes)" }),
        ("cache.cache_missing", { $0.cache.cacheMissing ? "yes" : "no" }),
        ("redis.cluster", { $0.redis.cluster ? "yes" : "no" }),
        ("redis.nodes", { $0.redis.nodes.map(\.description).joined(separator: ", ") }),
        ("redis.read_from", { $0.redis.readFrom.rawValue }),
        ("redis.cluster_refresh_ms", { "\($0.redis.clusterRefreshMs)" }),
        ("log.level", { $0.log.level.rawValue }),
        ("log.access", { $0.log.access ? "yes" : "no" }),
        ("log.format", { $0.log.format.rawValue }),
    ]
}
