import Foundation
import KVDTestSupport
import Testing

/// Both ways a worker can wait for its sockets (`[http] polling`) serve the same contract:
/// lookups from many connections at once, pipelined requests, and recovery after Redis returns.
@Suite("kvd: polling modes")
struct KVDPollingModeTests {
    @Test(arguments: ["epoll", "select"])
    func servesConcurrentPipelinedLookupsAndRecovers(polling: String) async throws {
        let redis = try RedisServer()
        let pairs = (0..<200).map { ("key-\($0)", "value \($0)") }
        try redis.command(["HSET", "data"] + pairs.flatMap { [$0.0, $0.1] })
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\npolling = \(polling)\n"
            + KVDProcess.redisSection(redis, extra: "connect_timeout_ms = 200\nreconnect_max_ms = 100\n"))
        let port = kvd.port

        let allAnswered = try await withThrowingTaskGroup(of: Bool.self) { group in
            for client in 0..<12 {
                group.addTask {
                    let connection = try HTTPConnection(port: port)
                    for round in 0..<10 {
                        let batch = (0..<8).map { pairs[(client * 17 + round * 8 + $0) % pairs.count] }
                        try connection.send(batch.map { "GET /get/\($0.0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
                        for pair in batch where try connection.readResponse().text != "\"\(pair.1)\"" { return false }
                    }
                    return true
                }
            }
            return try await group.allSatisfy { $0 }
        }
        #expect(allAnswered)

        redis.kill()
        #expect(try kvd.get("/get/key-1").status == 503)
        try redis.restart()
        try redis.command(["HSET", "data", "key-1", "back"])
        #expect(waitUntil(timeout: 5, interval: 0.05) {
            (0..<8).allSatisfy { _ in (try? kvd.get("/get/key-1").text) == "\"back\"" }
        })
    }
}
