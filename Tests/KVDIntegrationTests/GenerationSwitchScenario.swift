import Foundation
import KVDTestSupport
import Synchronization
import Testing

/// A suite of tests on a layout with dataset generations: its scratch directory and key prefix.
protocol GenerationSuite {
    var kvload: String { get }
    var directory: String { get }
    static var prefix: String { get }
    /// kvload's layout options for this suite (after `--port`).
    var kvloadArguments: [String] { get }
}

extension GenerationSuite {
    /// Runs kvload with the suite's layout against `redis`.
    @discardableResult
    func load(_ redis: RedisServer, _ arguments: [String], expectStatus: Int32 = 0) throws -> (stdout: String, stderr: String) {
        let result = try ChildProcess.run(kvload, ["--port", String(redis.port)] + kvloadArguments + arguments, timeout: 120)
        #expect(result.status == expectStatus, "kvload \(arguments): \(result.stderr)")
        return (result.stdout, result.stderr)
    }

    /// Writes a seed-format file into the suite's directory.
    func seedFile(_ name: String, _ pairs: [(String, String)]) throws -> String {
        let path = directory + "/" + name
        try pairs.map { "\($0.0) \($0.1)\n" }.joined().write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// The generation the descriptor `<prefix>meta` names.
    func liveGeneration(_ redis: RedisServer) throws -> String {
        try redis.command(["HGET", Self.prefix + "meta", "generation"])
    }
}

/// What the readers of the switch test share.
final class ReaderState: Sendable {
    let stop = Atomic<Bool>(false)
    let finished = Atomic<Int>(0)
    let tally = Mutex<(answers: Int, a: Int, b: Int, bad: [String])>((0, 0, 0, []))
    /// The monotonic seconds of the last answer from A, to bound the switch's delay.
    let lastA = Mutex<Double>(0)
}

/// The atomic-switch scenario shared by the layouts with dataset generations: readers hammer kvd
/// while `kvload --replace` switches between datasets A and B (same keys, values
/// `A-value-of-<key>` and `B-value-of-<key>-longer`): every answer is A's or B's value for its
/// key, never an error or a 404; once the last switch to B is made, every answer is B's within a
/// second, and readers keep going past the grace period.
/// - Parameters:
///   - replace: runs `kvload --replace --grace-seconds G PATH` to completion.
///   - startReplace: starts `kvload --replace --grace-seconds 3 PATH` and returns it.
///   - liveGeneration: the generation the descriptor names.
func checkSwitchesUnderLoad(kvdPort port: Int, keys: [String], pathB: String, switches: [String],
                            replace: (String) throws -> Void, startReplace: (String) throws -> ChildProcess,
                            liveGeneration: () throws -> String) throws {
    let shared = ReaderState()
    let readers = 3
    for reader in 0..<readers {
        Thread.detachNewThread {
            defer { shared.finished.add(1, ordering: .releasing) }
            do {
                let connection = try HTTPConnection(port: port)
                var index = reader
                while !shared.stop.load(ordering: .acquiring) {
                    let key = keys[index % keys.count]
                    index += 7
                    let response = try connection.request("GET", "/get/" + key)
                    let text = response.text
                    shared.tally.withLock { state in
                        state.answers += 1
                        if response.status == 200 && text == "\"A-value-of-\(key)\"" {
                            state.a += 1
                            shared.lastA.withLock { $0 = ProcessInfo.processInfo.systemUptime }
                        } else if response.status == 200 && text == "\"B-value-of-\(key)-longer\"" {
                            state.b += 1
                        } else if state.bad.count < 10 {
                            state.bad.append("\(key): \(response.status) \(text)")
                        }
                    }
                }
            } catch {
                shared.tally.withLock { $0.bad.append("reader \(reader): \(error)") }
            }
        }
    }
    for path in switches { try replace(path) }
    let before = try liveGeneration()
    let last = try startReplace(pathB)
    var switchedAt = 0.0
    #expect(waitUntil(timeout: 60, interval: 0.002) {
        guard (try? liveGeneration()) != before else { return false }
        switchedAt = ProcessInfo.processInfo.systemUptime
        return true
    })
    let afterSwitch = shared.tally.withLock { $0.answers }
    _ = last.waitForExit(timeout: 60)
    #expect(last.exitStatus == 0, "\(last.standardError)")
    // Readers keep going past the grace period: the old generation's deletion must not show.
    #expect(waitUntil(timeout: 30) { shared.tally.withLock { $0.answers } > afterSwitch + 2000 })
    shared.stop.store(true, ordering: .releasing)
    #expect(waitUntil(timeout: 10) { shared.finished.load(ordering: .acquiring) == readers })

    let state = shared.tally.withLock { $0 }
    #expect(state.bad.isEmpty, "\(state.bad)")
    #expect(state.a > 0 && state.b > 0)
    let delay = shared.lastA.withLock { $0 } - switchedAt
    #expect(delay < 1.0, "last answer from A came \(delay) s after the switch")
}
