import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kvd as operators meet it: its config file, Redis authentication and layouts, limits, logs, reload.
@Suite("kvd: configuration and operations")
struct KVDOperationsTests {
    func runKVD(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try ChildProcess.run(try Binaries.path("kvd"), arguments, timeout: 30)
    }

    func writeConfig(_ text: String) throws -> String {
        let path = try TemporaryDirectory.make(prefix: "conf") + "/kvd.conf"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func badConfigExits78NamingFileLineAndKey() throws {
        let path = try writeConfig("[http]\nport = 8000\n\n[redis]\ncolour = blue\n")
        for arguments in [["--config", path], ["--check-config", "--config", path]] {
            let result = try runKVD(arguments)
            #expect(result.status == 78)
            #expect(result.stderr.contains("\(path):5: unknown key 'colour' in [redis]"))
        }
    }

    @Test func missingExplicitConfigExits78() throws {
        let result = try runKVD(["--config", "/nonexistent/kvd.conf"])
        #expect(result.status == 78)
        #expect(result.stderr.contains("/nonexistent/kvd.conf"))
    }

    @Test func checkConfigAcceptsTheShippedConfig() throws {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/kvd.conf").path
        let result = try runKVD(["--check-config", "--config", shipped])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("configuration OK"))
    }

    @Test func versionIsPrinted() throws {
        let result = try runKVD(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.range(of: #"^\d+\.\d+\.\d+"#, options: .regularExpression) != nil)
    }

    @Test func portInUseExits69() throws {
        // A port held by a socket without SO_REUSEPORT cannot be shared.
        let blocker = try TCPListener()
        let blocked = try writeConfig("[http]\nport = \(blocker.port)\nthreads = 1\n")
        let result = try runKVD(["--config", blocked])
        #expect(result.status == 69)
        #expect(result.stderr.contains("cannot listen on 127.0.0.1:\(blocker.port): port \(blocker.port) is in use by another process"), "\(result.stderr)")
    }

    /// SO_REUSEPORT lets any process of the same user join a port: kvd's workers share theirs with nobody else.
    @Test func aListenerWithSOReusePortIsNotJoined() throws {
        let blocker = try TCPListener(reusePort: true)
        let result = try runKVD(["--config", try writeConfig("[http]\nport = \(blocker.port)\nthreads = 2\n")])
        #expect(result.status == 69)
        #expect(result.stderr.contains("port \(blocker.port) is in use by another process"), "\(result.stderr)")
    }

    /// Two kvds on one port with different Redis targets once answered a mixed series: the second must refuse.
    @Test func aSecondKVDOnTheSamePortIsRefusedAndTheFirstKeepsServing() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "first"])
        let port = try FreePort.find()
        let first = try KVDProcess(config: "[http]\nport = \(port)\nthreads = 2\n" + KVDProcess.redisSection(redis))
        #expect(first.port == port)
        let second = try writeConfig("[http]\nport = \(port)\nthreads = 2\n[redis]\nport = 1\n")
        let result = try runKVD(["--config", second])
        #expect(result.status == 69)
        #expect(result.stderr.contains("cannot listen on 127.0.0.1:\(port): port \(port) is in use by another kvd"), "\(result.stderr)")
        for _ in 0..<20 { #expect(try first.get("/get/k").text == #""first""#) }
    }

    @Test func passwordAndACLUserAreSentAndNeverLogged() throws {
        let redis = try RedisServer(password: "s3cret-pa55")
        try redis.command(["ACL", "SETUSER", "reader", "on", ">reader-pa55", "~*", "+hget", "+auth", "+select", "+ping"])
        try redis.command(["HSET", "data", "k", "v"])
        let plain = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n[log]\nlevel = debug\n" + KVDProcess.redisSection(redis))
        #expect(try plain.get("/get/k").text == #""v""#)
        #expect(!plain.log.contains("s3cret-pa55"))
        let acl = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n[redis]\nport = \(redis.port)\nuser = reader\npassword = reader-pa55\n")
        #expect(try acl.get("/get/k").text == #""v""#)
        let wrong = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n[redis]\nport = \(redis.port)\npassword = wrong\n")
        #expect(try wrong.get("/get/k").status == 503)
        #expect(wrong.log.contains("AUTH"))
        #expect(!wrong.log.contains("password = wrong") && !wrong.log.contains(" wrong"))
    }

    @Test func selectsTheConfiguredDatabase() throws {
        let redis = try RedisServer()
        try redis.command(["-n", "3", "HSET", "data", "k", "in db 3"])
        try redis.command(["HSET", "data", "k", "in db 0"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: "db = 3\n"))
        #expect(try kvd.get("/get/k").text == #""in db 3""#)
    }

    @Test func hashNameIsConfigurable() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "catalogue", "k", "from catalogue"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: "hash = catalogue\n"))
        #expect(try kvd.get("/get/k").text == #""from catalogue""#)
    }

    @Test func stringLayoutReadsPrefixedKeys() throws {
        let redis = try RedisServer()
        try redis.command(["SET", "kv:k", "string value"])
        try redis.command(["SET", "k", "unprefixed"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n" + KVDProcess.redisSection(redis, extra: "layout = string\nprefix = kv:\n"))
        #expect(try kvd.get("/get/k").text == #""string value""#)
        #expect(try kvd.get("/get/absent").status == 404)
    }

    @Test func unixSocketConnection() throws {
        let directory = try TemporaryDirectory.make(prefix: "sock")
        let redis = try RedisServer(extraArguments: ["--unixsocket", directory + "/redis.sock"])
        try redis.command(["HSET", "data", "k", "over a socket"])
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n[redis]\nsocket = \(directory)/redis.sock\n")
        #expect(try kvd.get("/get/k").text == #""over a socket""#)
        #expect(kvd.log.contains("unix:\(directory)/redis.sock"))
    }

    @Test func perAddressConnectionLimit() throws {
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 2\nper_ip_connection_limit = 2\n")
        let first = try HTTPConnection(port: kvd.port)
        let second = try HTTPConnection(port: kvd.port)
        #expect(try first.request("GET", "/healthz").status == 200)
        #expect(try second.request("GET", "/healthz").status == 200)
        let third = try HTTPConnection(port: kvd.port)
        #expect((try? third.request("GET", "/healthz")) == nil)
        // Closing one frees a place.
        _ = consume first
        #expect(waitUntil(timeout: 5) { (try? HTTPConnection(port: kvd.port).request("GET", "/healthz").status) == 200 })
    }

    @Test func idleConnectionsAreClosedAfterTheTimeout() throws {
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\nidle_timeout_s = 1\n")
        let connection = try HTTPConnection(port: kvd.port)
        #expect(try connection.request("GET", "/healthz").status == 200)
        let started = Date()
        #expect(connection.isClosedByPeer(timeout: 5))
        #expect(Date().timeIntervalSince(started) < 4)
    }

    @Test func accessLogIsOffByDefaultAndOnWhenAsked() throws {
        let quiet = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n")
        _ = try quiet.get("/healthz")
        let loud = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n[log]\naccess = yes\n")
        _ = try loud.get("/healthz")
        #expect(waitUntil(timeout: 5) { loud.log.contains("GET /healthz 200") })
        #expect(!quiet.log.contains("GET /healthz"))
    }

    @Test func journalPrefixesWhenStderrIsTheJournal() throws {
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n", environment: ["JOURNAL_STREAM": "8:12345"])
        let lines = kvd.log.split(separator: "\n")
        #expect(!lines.isEmpty)
        #expect(lines.allSatisfy { $0.range(of: #"^<[0-7]>kvd: "#, options: .regularExpression) != nil }, "\(lines)")
    }

    @Test func sighupReloadsTheLogLevelAndKeepsRunningOnABadFile() throws {
        let kvd = try KVDProcess(config: "[http]\nport = 0\nthreads = 1\n[log]\nlevel = info\n")
        try "[http]\nport = 0\nthreads = 1\n[log]\nlevel = warning\n".write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 5) { kvd.log.contains("configuration reloaded") })
        try "[http]\nport = 0\nthreads = 1\nbogus = 1\n".write(toFile: kvd.configPath, atomically: true, encoding: .utf8)
        kvd.process.signal(SIGHUP)
        #expect(waitUntil(timeout: 5) { kvd.log.contains("reload refused") && kvd.log.contains(":4: unknown key 'bogus'") })
        #expect(try kvd.get("/healthz").status == 200)
        #expect(kvd.process.isRunning)
    }
}
