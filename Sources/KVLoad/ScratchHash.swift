import KVDRedis
import KVDSystem

/// The per-process hashes of a hash-layout `--replace`, named `<hash>:kvload-<role>:<host>:<pid>` so that a
/// later run can tell whose they are: one whose process no longer runs on this host is an orphan (kvload was
/// killed, e.g. by a second Ctrl-C or SIGKILL, before it could delete it) and is removed at the start of the
/// next `--replace` of the same hash.
enum ScratchHash: String, CaseIterable {
    /// The hash the rows are loaded into before the switch.
    case staging
    /// The old live hash, renamed aside during the switch and then freed (UNLINK).
    case retired

    /// This process's hash of this role for the live hash `hash`.
    func name(for hash: String) -> String {
        "\(prefix(for: hash))\(Self.hostName):\(CurrentProcess.id)"
    }

    /// `<hash>:kvload-<role>:`, what every hash of this role for `hash` starts with.
    func prefix(for hash: String) -> String { "\(hash):kvload-\(rawValue):" }

    /// The host and process id in the name `key` (of this role for `hash`), or nil for another name
    /// (such as the `<hash>:kvload-staging:<pid>` of kvload before hosts were named).
    func owner(of key: String, for hash: String) -> (host: String, pid: Int32)? {
        let prefix = prefix(for: hash)
        guard key.hasPrefix(prefix) else { return nil }
        let rest = key.dropFirst(prefix.count)
        guard let colon = rest.lastIndex(of: ":"), let pid = Int32(rest[rest.index(after: colon)...]), pid > 0 else { return nil }
        let host = String(rest[..<colon])
        return host.isEmpty ? nil : (host, pid)
    }

    /// This machine's host name (the UTS name, as `hostname` prints it), or `localhost` if unreadable.
    static let hostName: String = {
        let bytes = (try? FileContents.read(path: "/proc/sys/kernel/hostname", maxBytes: 256)) ?? []
        let name = String(decoding: bytes, as: UTF8.self).filter { !$0.isWhitespace && $0 != ":" }
        return name.isEmpty ? "localhost" : name
    }()

    /// Whether process `pid` runs on this machine.
    static func isRunning(_ pid: Int32) -> Bool { FileContents.exists("/proc/\(pid)") }

    /// `text` as a SCAN MATCH pattern that matches only itself.
    static func globEscaped(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }

    /// Removes (UNLINK) the staging and retired hashes of `hash` left by kvload processes of this host that no
    /// longer run; reports each removal, and each scratch hash of another host (left alone: its
    /// process may still run), through `report`. Best effort: a failure is reported, not thrown.
    static func removeOrphans(of hash: String, on connection: LoadConnection, report: (String) -> Void) {
        for role in allCases {
            do {
                for key in try connection.scan(matching: globEscaped(role.prefix(for: hash)) + "*") {
                    guard let owner = role.owner(of: key, for: hash) else {
                        report("kvload: note: \(key) looks like a leftover of an older kvload; delete it by hand if no load runs (DEL)")
                        continue
                    }
                    guard owner.host == hostName else {
                        report("kvload: note: \(key) belongs to a kvload on host \(owner.host); left alone (delete it by hand if that load is gone)")
                        continue
                    }
                    guard owner.pid != CurrentProcess.id && !isRunning(owner.pid) else { continue }
                    try expectSuccess(connection.roundTripReconnecting(RedisCommand(["UNLINK", key])), doing: "UNLINK \(key)")
                    report("kvload: removed the orphaned \(role.rawValue) hash \(key) (its kvload, process \(owner.pid), no longer runs)")
                }
            } catch {
                report("kvload: could not remove orphaned \(role.rawValue) hashes of \(hash): \(error)")
            }
        }
    }
}
