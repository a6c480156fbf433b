import Foundation
import KVDTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// kvd's command line as redis-server's and nginx's users expect it (issue 14 item 1): short
/// options, overrides over the file, and `--print-config`.
@Suite("kvd: command line")
struct KVDCommandLineTests {
    /// The operations suite's helpers: run kvd to completion, write a config file.
    let operations = KVDOperationsTests()

    func runKVD(_ arguments: [String]) throws -> (status: Int32, stdout: String, stderr: String) {
        try operations.runKVD(arguments)
    }

    func writeConfig(_ text: String) throws -> String { try operations.writeConfig(text) }

    /// Starts kvd with `arguments` and waits for its start-up line.
    func startKVD(_ arguments: [String]) throws -> (ChildProcess, startLine: String) {
        let child = try ChildProcess(try Binaries.path("kvd"), arguments)
        var line: String?
        _ = waitUntil(timeout: 20) {
            line = child.standardError.split(separator: "\n").first { $0.contains("listening on ") }.map(String.init)
            return line != nil || !child.isRunning
        }
        guard let line else {
            child.stop(grace: 1)
            throw TestSupportError("kvd did not start: \(child.standardError)")
        }
        return (child, line)
    }

    @Test func shortAndLongVersion() throws {
        for flag in ["-V", "--version"] {
            let result = try runKVD([flag])
            #expect(result.status == 0)
            #expect(result.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, "\(result.stdout)")
        }
    }

    @Test func shortConfigAndCheckFlags() throws {
        let good = try writeConfig("[http]\nport = 8123\n")
        let ok = try runKVD(["-t", "-c", good])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("configuration OK (\(good))"))
        let bad = try writeConfig("[http]\nport = 99999\n")
        let refused = try runKVD(["-t", "-c", bad])
        #expect(refused.status == 78)
        #expect(refused.stderr.contains("\(bad):2: [http] port"))
    }

    @Test func badOverridesExit64NamingTheOption() throws {
        let cases: [([String], String)] = [
            (["--threads", "0"], "--threads: [http] threads: expected a whole number from 1 to 1024, got '0'"),
            (["--listen", "8000"], "--listen: expected HOST:PORT"),
            (["--listen", "127.0.0.1:70000"], "--listen: [http] port: expected a whole number from 0 to 65535"),
            (["--redis", "localhost"], "--redis: expected HOST:PORT or a unix socket path"),
        ]
        for (arguments, message) in cases {
            let result = try runKVD(["-t", "-c", "/nonexistent.conf"] + arguments)
            #expect(result.status == 64, "\(arguments)")
            #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
        }
    }

    /// The overrides win over the file, show in the start-up line, and survive a reload.
    @Test func overridesApplyOverTheFileAndSurviveAReload() throws {
        let redis = try RedisServer()
        try redis.command(["HSET", "data", "k", "from the override's Redis"])
        let port = try FreePort.find()
        // The file points at a Redis that is not there and a port kvd must not use.
        let file = "[http]\nhost = 127.0.0.2\nport = 1\nthreads = 3\n[redis]\nport = 1\n"
        let config = try writeConfig(file)
        let (kvd, line) = try startKVD(["-c", config, "--listen", "127.0.0.1:\(port)",
                                        "--redis", "127.0.0.1:\(redis.port)", "--threads", "2"])
        defer { kvd.stop() }
        #expect(line.contains("listening on 127.0.0.1:\(port)"), "\(line)")
        #expect(line.contains("Redis 127.0.0.1:\(redis.port)"), "\(line)")
        #expect(line.contains("2 threads"), "\(line)")
        #expect(line.contains("with --listen 127.0.0.1:\(port) --redis 127.0.0.1:\(redis.port) --threads 2"), "\(line)")
        #expect(try httpRequest(port: port, "GET", "/get/k").text == #""from the override's Redis""#)

        try (file + "[log]\nlevel = info\n").write(toFile: config, atomically: true, encoding: .utf8)
        kvd.signal(SIGHUP)
        #expect(waitUntil(timeout: 5) { kvd.standardError.contains("configuration reloaded") })
        #expect(!kvd.standardError.contains("needs a restart"), "\(kvd.standardError)")
        #expect(try httpRequest(port: port, "GET", "/get/k").text == #""from the override's Redis""#)
    }

    @Test func redisOverrideTakesASocketPath() throws {
        let directory = try TemporaryDirectory.make(prefix: "sock")
        let socket = directory + "/redis.sock"
        let redis = try RedisServer(extraArguments: ["--unixsocket", socket, "--unixsocketperm", "700"])
        try redis.command(["HSET", "data", "k", "over the socket"])
        let port = try FreePort.find()
        let (kvd, line) = try startKVD(["--config", try writeConfig("[redis]\nport = 1\n"),
                                        "--listen", "127.0.0.1:\(port)", "--redis", socket, "--threads", "1"])
        defer { kvd.stop() }
        #expect(line.contains("Redis unix:\(socket)"), "\(line)")
        #expect(try httpRequest(port: port, "GET", "/get/k").text == #""over the socket""#)
    }

    /// `--print-config` shows every key with the value in effect, masks the password, and kvd
    /// reads its output back to the same configuration.
    @Test func printConfigShowsEverythingAndReadsBack() throws {
        let config = try writeConfig("""
            [http]
            port = 8123 # a note
            [redis]
            password = "s3cret ;with #marks \\"quoted\\""
            hash = "h #1"
            prefix = "  spaced  "
            [log]
            level = warning
            """)
        let printed = try runKVD(["--print-config", "-c", config, "--threads", "3", "--listen", "[::1]:9000"])
        #expect(printed.status == 0, "\(printed.stderr)")
        let text = printed.stdout
        #expect(!text.contains("s3cret"))
        for line in ["host = ::1", "port = 9000", "threads = 3", "password = ********", "hash = \"h #1\"",
                     "prefix = \"  spaced  \"", "level = warning", "connection_limit = 1000", "access = no"] {
            #expect(text.contains("\n\(line)\n"), "missing '\(line)' in:\n\(text)")
        }
        // Every key of the shipped, commented config appears.
        #expect(shippedKeys().count > 20)
        for key in shippedKeys() {
            #expect(text.range(of: "\n\(key) = ") != nil, "missing key \(key)")
        }
        // Read back: the same configuration (the masked password aside).
        let again = try runKVD(["--print-config", "-c", try writeConfig(text)])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(body(again.stdout) == body(text))
    }

    @Test func printConfigNamesThePasswordFileAndReadsItBack() throws {
        let directory = try TemporaryDirectory.make(prefix: "secret")
        try "file-secret\n".write(toFile: directory + "/pw", atomically: true, encoding: .utf8)
        let config = try writeConfig("[redis]\nuser = app\npassword_file = \(directory)/pw\n")
        let printed = try runKVD(["--print-config", "-c", config])
        #expect(printed.status == 0, "\(printed.stderr)")
        #expect(!printed.stdout.contains("file-secret"))
        #expect(printed.stdout.contains("\npassword_file = \(directory)/pw\n"))
        #expect(!printed.stdout.contains("\npassword = "))
        let again = try runKVD(["--print-config", "-c", try writeConfig(printed.stdout)])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(body(again.stdout) == body(printed.stdout))
    }

    /// The output without its first (comment) line, which names the file it came from.
    func body(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).drop { $0.hasPrefix("#") }.joined(separator: "\n")
    }

    /// The keys config/kvd.conf documents (its `# key = default` lines).
    func shippedKeys() -> [String] {
        let shipped = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("config/kvd.conf").path
        let text = (try? String(contentsOfFile: shipped, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { line in
            guard let match = line.firstMatch(of: /^# ([a-z_]+) =/) else { return nil }
            return String(match.1)
        }
    }
}
