extension RedisCommand {
    /// The whole command as RESP bytes (header and arguments), for a client that keeps commands
    /// to send them again (kvload resends after a cluster redirection or a reconnect).
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(arguments.count + 8)
        appendHeader(to: &out)
        out.append(contentsOf: arguments)
        return out
    }
}
