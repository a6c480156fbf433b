/// Which settings differ between two configurations, named as in the file (`section.key`), for
/// reload messages. Values are never part of it (a password may be among them).
extension Configuration {
    /// The `section.key` names whose value differs in `other`, in file order.
    public func changedKeys(to other: Configuration) -> [String] {
        Self.comparisons.compactMap { name, differs in differs(self, other) ? name : nil }
    }

    private static func field<T: Equatable>(_ path: KeyPath<Configuration, T> & Sendable) -> @Sendable (Configuration, Configuration) -> Bool {
        { $0[keyPath: path] != $1[keyPath: path] }
    }

    private static let comparisons: [(String, @Sendable (Configuration, Configuration) -> Bool)] = [
        ("http.host", field(\.http.host)),
        ("http.port", field(\.http.port)),
        ("http.threads", field(\.http.threads)),
        ("http.connection_limit", field(\.http.connectionLimit)),
        ("http.per_ip_connection_limit", field(\.http.perIPConnectionLimit)),
        ("http.idle_timeout_s", field(\.http.idleTimeoutSeconds)),
        ("http.listen_backlog", field(\.http.listenBacklog)),
        ("http.max_key_bytes", field(\.http.maxKeyBytes)),
        ("http.connection_memory_bytes", field(\.http.connectionMemoryBytes)),
        ("http.shutdown_timeout_ms", field(\.http.shutdownTimeoutMs)),
        ("redis.host", field(\.redis.host)),
        ("redis.port", field(\.redis.port)),
        ("redis.socket", field(\.redis.socket)),
        ("redis.db", field(\.redis.db)),
        ("redis.user", field(\.redis.user)),
        ("redis.password", field(\.redis.password)),
        ("redis.password_file", field(\.redis.passwordFile)),
        ("redis.layout", field(\.redis.layout)),
        ("redis.hash", field(\.redis.hash)),
        ("redis.prefix", field(\.redis.prefix)),
        ("redis.connect_timeout_ms", field(\.redis.connectTimeoutMs)),
        ("redis.command_timeout_ms", field(\.redis.commandTimeoutMs)),
        ("redis.reconnect_max_ms", field(\.redis.reconnectMaxMs)),
        ("log.level", field(\.log.level)),
        ("log.access", field(\.log.access)),
    ]
}
