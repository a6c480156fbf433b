import KVDSettings

extension RedisConnection {
    /// `check` for any `[redis]` settings: a single Redis as `check` does; a cluster through its
    /// seeds, the first that connects, authenticates and answers `PING` will do (any reachable node
    /// gives kvd the slot map).
    /// - Throws: `RedisError` naming why no seed works (never the password).
    public static func checkTarget(_ settings: RedisSettings) throws(RedisError) {
        guard settings.cluster else { return try check(settings) }
        var failures: [String] = []
        for node in settings.nodes {
            var seed = settings
            seed.cluster = false
            seed.nodes = []
            seed.host = node.host
            seed.port = node.port
            do throws(RedisError) {
                try check(seed)
                return
            } catch {
                failures.append(error.message)
            }
        }
        throw RedisError(.connect, "no cluster node answers: \(failures.joined(separator: "; "))")
    }
}
