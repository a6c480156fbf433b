import KVDSettings

extension RedisConnection {
    /// Tries `settings` on a connection of its own: connect (within `connectTimeoutMs`), AUTH and
    /// SELECT, then a PING (replies within `commandTimeoutMs`), and closes it. A reload tries new
    /// settings this way before it applies them. Blocks the caller, at most for both timeouts.
    /// `LOADING` or `BUSY` to the PING passes: the settings work, Redis is only not ready yet.
    /// - Throws: `RedisError` saying why the settings do not work (never the password).
    public static func check(_ settings: RedisSettings) throws(RedisError) {
        let connection = try RedisConnection(settings: settings)
        defer { connection.close() }
        let connectDeadline = ContinuousClock.now + .milliseconds(settings.connectTimeoutMs)
        while try !connection.finishConnect() {
            guard ContinuousClock.now < connectDeadline else {
                throw RedisError(.connect, "cannot connect to Redis at \(settings.targetDescription): timed out after \(settings.connectTimeoutMs) ms")
            }
            _ = connection.waitEvents(write: true, timeoutMs: 10)
        }
        connection.append(RedisCommand(["PING"]))
        let replyDeadline = ContinuousClock.now + .milliseconds(settings.commandTimeoutMs)
        while true {
            if let reply = try connection.nextReply() {
                if case .error(let message) = reply, !RedisReply.isTemporaryRefusal(message) {
                    throw RedisError(.handshake, "Redis at \(settings.targetDescription) refused PING: \(message)")
                }
                return
            }
            guard ContinuousClock.now < replyDeadline else {
                throw RedisError(.timeout, "Redis at \(settings.targetDescription) did not answer within \(settings.commandTimeoutMs) ms")
            }
            let (readable, writable) = connection.waitEvents(write: connection.wantsWrite, timeoutMs: 10)
            if writable { try connection.flush() }
            if readable { try connection.read() }
        }
    }
}
