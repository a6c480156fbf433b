/// Which settings differ between two configurations, named as in the file (`section.key`), for
/// reload messages. Values are never part of it (a password may be among them).
extension Configuration {
    /// The `section.key` names whose value differs in `other`, in file order.
    public func changedKeys(to other: Configuration) -> [String] {
        Self.comparisons.compactMap { name, differs in differs(self, other) ? name : nil }
    }

    /// The names `changedKeys` compares (tests check they cover the schema).
    static var comparedKeys: [String] { comparisons.map(\.0) }

    private static let comparisons: [(String, @Sendable (Configuration, Configuration) -> Bool)] = [
        ("http.host", { $0.http.host != $1.http.host }),
        ("http.port", { $0.http.port != $1.http.port }),
        ("http.threads", { $0.http.threads != $1.http.threads }),
        ("http.connection_limit", { $0.http.connectionLimit != $1.http.connectionLimit }),
        ("http.per_ip_connection_limit", { $0.http.perIPConnectionLimit != $1.http.perIPConnectionLimit }),
        ("http.idle_timeout_s", { $0.http.idleTimeoutSeconds != $1.http.idleTimeoutSeconds }),
        ("http.request_head_timeout_s", { $0.http.requestHeadTimeoutSeconds != $1.http.requestHeadTimeoutSeconds }),
        ("http.request_body_timeout_s", { $0.http.requestBodyTimeoutSeconds != $1.http.requestBodyTimeoutSeconds }),
        ("http.listen_backlog", { $0.http.listenBacklog != $1.http.listenBacklog }),
        ("http.max_key_bytes", { $0.http.maxKeyBytes != $1.http.maxKeyBytes }),
        ("http.mget_max_keys", { $0.http.mgetMaxKeys != $1.http.mgetMaxKeys }),
        ("http.mget_max_body_bytes", { $0.http.mgetMaxBodyBytes != $1.http.mgetMaxBodyBytes }),
        ("http.mget_max_answer_bytes", { $0.http.mgetMaxAnswerBytes != $1.http.mgetMaxAnswerBytes }),
        ("http.connection_memory_bytes", { $0.http.connectionMemoryBytes != $1.http.connectionMemoryBytes }),
        ("http.shutdown_timeout_ms", { $0.http.shutdownTimeoutMs != $1.http.shutdownTimeoutMs }),
        ("http.polling", { $0.http.polling != $1.http.polling }),
        ("http.max_unsent_bytes", { $0.http.maxUnsentBytes != $1.http.maxUnsentBytes }),
        ("http.etag", { $0.http.etag != $1.http.etag }),
        ("http.cache_control", { $0.http.cacheControl != $1.http.cacheControl }),
        ("http.cors_origin", { $0.http.corsOrigin != $1.http.corsOrigin }),
        ("redis.host", { $0.redis.host != $1.redis.host }),
        ("redis.port", { $0.redis.port != $1.redis.port }),
        ("redis.socket", { $0.redis.socket != $1.redis.socket }),
        ("redis.db", { $0.redis.db != $1.redis.db }),
        ("redis.user", { $0.redis.user != $1.redis.user }),
        ("redis.password", { $0.redis.password != $1.redis.password }),
        ("redis.password_file", { $0.redis.passwordFile != $1.redis.passwordFile }),
        ("redis.layout", { $0.redis.layout != $1.redis.layout }),
        ("redis.hash", { $0.redis.hash != $1.redis.hash }),
        ("redis.prefix", { $0.redis.prefix != $1.redis.prefix }),
        ("redis.descriptor", { $0.redis.descriptor != $1.redis.descriptor }),
        ("redis.generations", { $0.redis.generations != $1.redis.generations }),
        ("redis.connect_timeout_ms", { $0.redis.connectTimeoutMs != $1.redis.connectTimeoutMs }),
        ("redis.command_timeout_ms", { $0.redis.commandTimeoutMs != $1.redis.commandTimeoutMs }),
        ("redis.reconnect_max_ms", { $0.redis.reconnectMaxMs != $1.redis.reconnectMaxMs }),
        ("redis.keepalive_s", { $0.redis.keepaliveSeconds != $1.redis.keepaliveSeconds }),
        ("redis.sentinels", { $0.redis.sentinels != $1.redis.sentinels }),
        ("redis.master_name", { $0.redis.masterName != $1.redis.masterName }),
        ("redis.sentinel_password", { $0.redis.sentinelPassword != $1.redis.sentinelPassword }),
        ("redis.sentinel_password_file", { $0.redis.sentinelPasswordFile != $1.redis.sentinelPasswordFile }),
        ("cache.enabled", { $0.cache.enabled != $1.cache.enabled }),
        ("cache.max_bytes", { $0.cache.maxBytes != $1.cache.maxBytes }),
        ("cache.max_value_bytes", { $0.cache.maxValueBytes != $1.cache.maxValueBytes }),
        ("cache.cache_missing", { $0.cache.cacheMissing != $1.cache.cacheMissing }),
        ("redis.cluster", { $0.redis.cluster != $1.redis.cluster }),
        ("redis.nodes", { $0.redis.nodes != $1.redis.nodes }),
        ("redis.read_from", { $0.redis.readFrom != $1.redis.readFrom }),
        ("redis.cluster_refresh_ms", { $0.redis.clusterRefreshMs != $1.redis.clusterRefreshMs }),
        ("log.level", { $0.log.level != $1.log.level }),
        ("log.access", { $0.log.access != $1.log.access }),
        ("log.format", { $0.log.format != $1.log.format }),
    ]
}
