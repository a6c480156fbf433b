import Foundation
import KVDTestSupport
import Logging
import Testing
@testable import KVDHTTP
import KVDSettings

#if canImport(Glibc)
import Glibc
#endif

/// Issue 9's HTTP defects: descriptors select() cannot hold, slow request heads, the connection
/// limit as the operator reads it, lenient parsing, and what reaches clients and the log.
@Suite("kvd: HTTP hardening")
struct KVDHTTPHardeningTests {
    // MARK: #3 select mode and descriptors ≥ 1024

    /// A select-mode turn must wait on every descriptor it is given, even one select() cannot hold
    /// (≥ FD_SETSIZE): a Redis socket that landed there used to be dropped from the wait, and its
    /// worker answered 504 while Redis was healthy.
    @Test func selectModeWaitsOnADescriptorAbove1024() throws {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        if limit.rlim_cur < 2048 && limit.rlim_max >= 2048 {
            limit.rlim_cur = 2048
            setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        }
        var pipeEnds: [Int32] = [-1, -1]
        try #require(pipe(&pipeEnds) == 0)
        defer { close(pipeEnds[0]); close(pipeEnds[1]) }
        let high = fcntl(pipeEnds[0], F_DUPFD_CLOEXEC, 1500)
        try #require(high >= 1024, "could not place a descriptor above 1024 (RLIMIT_NOFILE \(limit.rlim_cur))")
        defer { close(high) }

        var settings = HTTPSettings()
        settings.port = 0
        settings.polling = .select
        let owner = IdleHandler()
        let engine = try HTTPEngine(address: ListenAddress(host: "127.0.0.1", port: 0), settings: settings, threads: 1,
                                    handler: owner, limiter: ConnectionLimiter(totalLimit: 10, perAddressLimit: 0),
                                    logger: Logger(label: "test"))
        defer { engine.stop() }
        var byte: UInt8 = 1
        _ = write(pipeEnds[1], &byte, 1)
        var descriptors = [pollfd(fd: high, events: Int16(POLLIN), revents: 0)]
        let started = SystemClockForTests.nowMs()
        engine.turn(extra: &descriptors, timeoutMs: 2000)
        #expect(descriptors[0].revents & Int16(POLLIN) != 0, "the readable descriptor \(high) was left out of the wait")
        #expect(SystemClockForTests.nowMs() - started < 1000)
    }

    /// `polling = select` is refused when the connection limit plus kvd's own descriptors per
    /// thread can pass 1024; `auto` then picks epoll.
    @Test func selectModeValidationCountsEachThreadsOwnDescriptors() throws {
        let directory = try TemporaryDirectory.make(prefix: "kvd-select")
        let path = directory + "/kvd.conf"
        try "[http]\nthreads = 64\nconnection_limit = 1000\npolling = select\n".write(toFile: path, atomically: true, encoding: .utf8)
        let refused = try ChildProcess.run(try Binaries.path("kvd"), ["--check-config", "--config", path])
        #expect(refused.status == 78, "\(refused.stderr)")
        #expect(refused.stderr.contains("polling = select holds at most"))

        var settings = HTTPSettings()
        settings.threads = 64
        settings.connectionLimit = 1000
        #expect(settings.resolvedPolling == .epoll)
        settings.threads = 2
        #expect(settings.resolvedPolling == .select)
    }

    // MARK: #9 the connection limit as the operator reads it

    /// With several workers, every connection up to `connection_limit` is served (SO_REUSEPORT
    /// spreads them unevenly, and each worker used to be capped at its share), and the next one is
    /// refused.
    @Test func theConnectionLimitHoldsOverAllWorkersExactly() throws {
        let redis = try RedisServer()
        let kvd = try KVDProcess(config: "[http]\nthreads = 8\nconnection_limit = 24\n" + KVDProcess.redisSection(redis))
        var open: [HTTPConnection] = []
        for index in 0..<24 {
            let connection = try HTTPConnection(port: kvd.port, timeout: 5)
            let status = try? connection.request("GET", "/healthz").status
            #expect(status == 200, "connection \(index + 1) of 24 was refused")
            open.append(connection)
        }
        let beyond = try HTTPConnection(port: kvd.port, timeout: 5)
        try? beyond.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect((try? beyond.readResponse()) == nil, "connection 25 was served beyond the limit of 24")
        open.removeLast()
        #expect(waitUntil(timeout: 5, interval: 0.05) {
            (try? HTTPConnection(port: kvd.port, timeout: 1).request("GET", "/healthz").status) == 200
        })
    }
}

/// Monotonic milliseconds for the tests' own timing.
enum SystemClockForTests {
    static func nowMs() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }
}

/// An engine owner that never gets a request (the engine is only turned).
final class IdleHandler: HTTPRequestHandler {
    func makeRequestState() -> RequestState { RequestState(slot: 0) }
    func handle(_ request: RequestState, method: String, path: [UInt8]) -> HandlerDecision { .suspend }
    func requestCompleted(_ request: RequestState) {}
    func responseQueued(_ request: RequestState, status: UInt32) {}
}
