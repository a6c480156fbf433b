import KVDSettings

// Redis Sentinel, from the client's side (https://redis.io/docs/reference/sentinel-clients/):
// ask the sentinels in order for the master's address (`SENTINEL get-master-addr-by-name`),
// confirm it with `ROLE`, ask again after every lost connection, and listen for `+switch-master`
// as a hint. Everything here blocks its caller, bounded by the connect and command timeouts: it
// runs on kvd's Sentinel watcher thread (and kvload's start), never on a worker's loop.

extension RedisReply {
    /// Checks a `ROLE` reply: `["master", offset, replicas]` passes; anything else is refused.
    /// - Throws: `.handshake` naming the role the server has (a replica after a failover, a sentinel).
    public static func confirmMasterRole(_ reply: RedisReply, target: String) throws(RedisError) {
        switch reply {
        case .array(let items) where items.first == .bulk(Array("master".utf8)):
            return
        case .array(let items):
            let role = items.first.flatMap { item -> String? in
                if case .bulk(let bytes) = item { return String(decoding: bytes, as: UTF8.self) }
                return nil
            } ?? "unknown"
            throw RedisError(.handshake, "Redis at \(target) is not the master (ROLE: \(role)): Sentinel mode reads only from the master; a failover may be under way")
        case .error(let message):
            throw RedisError(.handshake, "Redis at \(target) refused ROLE: \(message)")
        default:
            throw RedisError(.handshake, "Redis at \(target) answered ROLE with no role")
        }
    }
}

/// One connection used synchronously: a command, then wait for its reply (or a pushed message)
/// with a deadline. For the Sentinel watcher's thread; workers never block.
public final class BlockingRedisConnection {
    private let connection: RedisConnection
    /// `host:port`, for messages.
    public let target: String

    /// Connects within `settings.connectTimeoutMs` and queues the handshake (AUTH, SELECT, ROLE).
    /// - Parameter role: what the server is, for messages ("Redis", "sentinel").
    public init(settings: RedisSettings, role: String = "Redis") throws(RedisError) {
        target = settings.targetDescription
        connection = try RedisConnection(settings: settings)
        let deadline = ContinuousClock.now + .milliseconds(settings.connectTimeoutMs)
        while try !connection.finishConnect() {
            let left = Self.milliseconds(until: deadline)
            guard left > 0 else {
                connection.close()
                throw RedisError(.connect, "cannot connect to \(role) at \(target): timed out after \(settings.connectTimeoutMs) ms")
            }
            _ = connection.waitEvents(write: true, timeoutMs: left)
        }
    }

    deinit { connection.close() }

    /// Sends `command` and waits for its reply (an error reply is returned, not thrown).
    /// - Throws: `.timeout` after `timeoutMs` with no reply; `.io` or `.handshake` as `RedisConnection` does.
    public func call(_ command: RedisCommand, timeoutMs: Int) throws(RedisError) -> RedisReply {
        connection.append(command)
        guard let reply = try nextReply(timeoutMs: timeoutMs) else {
            throw RedisError(.timeout, "\(target) did not answer within \(timeoutMs) ms")
        }
        return reply
    }

    /// The next reply or pushed message, waiting at most `timeoutMs` (writing queued commands meanwhile).
    /// - Returns: nil when nothing complete arrived in time.
    public func nextReply(timeoutMs: Int) throws(RedisError) -> RedisReply? {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while true {
            if let reply = try connection.nextReply() { return reply }
            let left = Self.milliseconds(until: deadline)
            guard left > 0 else { return nil }
            let (readable, writable) = connection.waitEvents(write: connection.wantsWrite, timeoutMs: left)
            if writable { try connection.flush() }
            if readable { try connection.read() }
        }
    }

    /// Whole milliseconds left until `deadline` (at least 1 while any time is left; 0 after it).
    static func milliseconds(until deadline: ContinuousClock.Instant) -> Int {
        let left = deadline - ContinuousClock.now
        guard left > .zero else { return 0 }
        return max(1, Int(left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000))
    }
}

/// A `+switch-master` event: `<name> <old-ip> <old-port> <new-ip> <new-port>`.
public struct MasterSwitch: Sendable, Equatable {
    public let masterName: String
    public let previous: NodeAddress
    public let current: NodeAddress

    /// Parses the message's text; nil when it is not five fields with valid ports.
    public init?(payload: String) {
        let fields = payload.split(separator: " ")
        guard fields.count == 5, let oldPort = Int(fields[2]), let newPort = Int(fields[4]),
              (1...65535).contains(oldPort), (1...65535).contains(newPort) else { return nil }
        masterName = String(fields[0])
        previous = NodeAddress(host: String(fields[1]), port: oldPort)
        current = NodeAddress(host: String(fields[3]), port: newPort)
    }
}

/// Asking sentinels where the master is.
public enum Sentinel {
    /// The settings for talking to the sentinel at `address`: its password, the Redis timeouts,
    /// database 0, no ROLE check.
    public static func settings(forSentinel address: NodeAddress, of redis: RedisSettings) -> RedisSettings {
        var sentinel = RedisSettings()
        sentinel.host = address.host
        sentinel.port = address.port
        sentinel.password = redis.sentinelPassword
        sentinel.connectTimeoutMs = redis.connectTimeoutMs
        sentinel.commandTimeoutMs = redis.commandTimeoutMs
        sentinel.keepaliveSeconds = redis.keepaliveSeconds
        return sentinel
    }

    /// The sentinels of `redis`, `first` moved to the front: the one that answered last is asked
    /// first, so a dead sentinel early in the list costs its connect timeout once, not on every ask.
    public static func addresses(of redis: RedisSettings, first: NodeAddress? = nil) -> [NodeAddress] {
        let all = redis.sentinels
        guard let first, all.contains(first) else { return all }
        return [first] + all.filter { $0 != first }
    }

    /// Asks each sentinel in order, until one names the master.
    /// - Returns: the master's address and the sentinel that named it.
    /// - Throws: `.connect` saying what every sentinel answered, when none named it.
    public static func masterAddress(_ redis: RedisSettings, askingFirst first: NodeAddress? = nil) throws(RedisError)
        -> (master: NodeAddress, sentinel: NodeAddress) {
        let name = redis.masterName ?? ""
        var problems: [String] = []
        for address in addresses(of: redis, first: first) {
            do throws(RedisError) {
                let connection = try BlockingRedisConnection(settings: settings(forSentinel: address, of: redis), role: "sentinel")
                let reply = try connection.call(RedisCommand(["SENTINEL", "get-master-addr-by-name", name]),
                                                timeoutMs: redis.commandTimeoutMs)
                switch reply {
                case .array(let items) where items.count == 2:
                    if case .bulk(let host) = items[0], case .bulk(let port) = items[1],
                       let portNumber = Int(String(decoding: port, as: UTF8.self)), (1...65535).contains(portNumber), !host.isEmpty {
                        return (NodeAddress(host: String(decoding: host, as: UTF8.self), port: portNumber), address)
                    }
                    problems.append("\(address): unreadable answer")
                case .null:
                    problems.append("\(address): does not monitor '\(name)'")
                case .error(let message):
                    problems.append("\(address): \(message)")
                default:
                    problems.append("\(address): unreadable answer")
                }
            } catch {
                problems.append(error.message)
            }
        }
        throw RedisError(.connect, "no sentinel named the master '\(name)': \(problems.joined(separator: "; "))")
    }

    /// Finds the master and confirms it: a sentinel names it, then a connection of its own with
    /// AUTH, SELECT, ROLE (must be `master`) and PING (`RedisConnection.check`).
    /// - Returns: `redis` pointed at the master (host and port set, no socket) and the sentinel that named it.
    public static func resolve(_ redis: RedisSettings, askingFirst first: NodeAddress? = nil) throws(RedisError)
        -> (settings: RedisSettings, sentinel: NodeAddress) {
        let (master, sentinel) = try masterAddress(redis, askingFirst: first)
        var resolved = redis
        resolved.host = master.host
        resolved.port = master.port
        resolved.socket = nil
        try RedisConnection.check(resolved)
        return (resolved, sentinel)
    }
}

/// A subscription to one sentinel's `+switch-master` channel.
public final class SentinelSubscription {
    private let connection: BlockingRedisConnection
    private let masterName: String
    /// The sentinel subscribed to.
    public let sentinel: NodeAddress

    /// Subscribes to the first sentinel of `redis` that accepts.
    /// - Throws: `.connect` saying what each sentinel answered, when none accepted.
    public init(_ redis: RedisSettings, tryingFirst first: NodeAddress? = nil) throws(RedisError) {
        masterName = redis.masterName ?? ""
        var problems: [String] = []
        for address in Sentinel.addresses(of: redis, first: first) {
            do throws(RedisError) {
                let connection = try BlockingRedisConnection(settings: Sentinel.settings(forSentinel: address, of: redis), role: "sentinel")
                let reply = try connection.call(RedisCommand(["SUBSCRIBE", "+switch-master"]), timeoutMs: redis.commandTimeoutMs)
                guard case .array(let items) = reply, items.first == .bulk(Array("subscribe".utf8)) else {
                    problems.append("\(address): SUBSCRIBE refused: \(reply)")
                    continue
                }
                self.connection = connection
                self.sentinel = address
                return
            } catch {
                problems.append(error.message)
            }
        }
        throw RedisError(.connect, "cannot subscribe to +switch-master on any sentinel: \(problems.joined(separator: "; "))")
    }

    /// Waits up to `timeoutMs` for a `+switch-master` of this master (other masters' are skipped).
    /// - Returns: the switch, or nil when none came in time.
    /// - Throws: when the connection to the sentinel failed (subscribe again, elsewhere).
    public func nextSwitch(timeoutMs: Int) throws(RedisError) -> MasterSwitch? {
        let deadline = ContinuousClock.now + .milliseconds(timeoutMs)
        while true {
            let left = BlockingRedisConnection.milliseconds(until: deadline)
            guard let message = try connection.nextReply(timeoutMs: left) else { return nil }
            guard case .array(let items) = message, items.count == 3, items[0] == .bulk(Array("message".utf8)),
                  case .bulk(let payload) = items[2],
                  let event = MasterSwitch(payload: String(decoding: payload, as: UTF8.self)) else { continue }
            if event.masterName == masterName { return event }
        }
    }
}
