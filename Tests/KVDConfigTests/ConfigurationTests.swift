import KVDConfig
import Testing

@Suite struct ConfigurationTests: ConfigText {
    @Test func emptyFileGivesTheDefaults() throws {
        let config = try parse("")
        #expect(config == Configuration())
        #expect(config.http.host == "127.0.0.1")
        #expect(config.http.port == 8000)
        #expect(config.http.threads == HTTPSettings.processorCount)
        #expect(config.redis.host == "127.0.0.1")
        #expect(config.redis.port == 6379)
        #expect(config.redis.socket == nil)
        #expect(config.redis.db == 0)
        #expect(config.redis.password == nil)
        #expect(config.redis.layout == .hash)
        #expect(config.redis.hash == "data")
        #expect(config.redis.prefix == "")
        #expect(config.redis.keepaliveSeconds == 5)
        #expect(config.log.level == .info)
        #expect(!config.log.access)
    }

    @Test func everyKeyIsRead() throws {
        let config = try parse("""
            ; a comment
            # another
            [http]
            host = 0.0.0.0
            port = 9000
            threads = 3
            connection_limit = 50
            polling = epoll
            per_ip_connection_limit = 4
            idle_timeout_s = 7
            listen_backlog = 64
            max_key_bytes = 100
            shutdown_timeout_ms = 250

            [redis]
            host = redis.internal
            port = 6380
            socket = /run/redis.sock
            db = 2
            user = reader
            password = p@ss word
            layout = string
            hash = other
            prefix = kv:
            connect_timeout_ms = 100
            command_timeout_ms = 200
            reconnect_max_ms = 300
            keepalive_s = 9

            [log]
            level = debug
            access = yes
            """)
        #expect(config.http.host == "0.0.0.0")
        #expect(config.http.port == 9000)
        #expect(config.http.threads == 3)
        #expect(config.http.connectionLimit == 50)
        #expect(config.http.polling == .epoll)
        #expect(config.http.perIPConnectionLimit == 4)
        #expect(config.http.idleTimeoutSeconds == 7)
        #expect(config.http.listenBacklog == 64)
        #expect(config.http.maxKeyBytes == 100)
        #expect(config.http.shutdownTimeoutMs == 250)
        #expect(config.redis.host == "redis.internal")
        #expect(config.redis.port == 6380)
        #expect(config.redis.socket == "/run/redis.sock")
        #expect(config.redis.db == 2)
        #expect(config.redis.user == "reader")
        #expect(config.redis.password == "p@ss word")
        #expect(config.redis.layout == .string)
        #expect(config.redis.hash == "other")
        #expect(config.redis.prefix == "kv:")
        #expect(config.redis.connectTimeoutMs == 100)
        #expect(config.redis.commandTimeoutMs == 200)
        #expect(config.redis.reconnectMaxMs == 300)
        #expect(config.redis.keepaliveSeconds == 9)
        #expect(config.log.level == .debug)
        #expect(config.log.access)
        #expect(config.redis.targetDescription == "unix:/run/redis.sock")
    }

    @Test func crlfLineEndingsAndInlineCommentsWork() throws {
        let config = try parse("[http]\r\nport = 81 ; inline\r\n[log]\r\naccess = off\r\n")
        #expect(config.http.port == 81)
        #expect(!config.log.access)
    }

    @Test func unknownKeyNamesFileLineAndKey() {
        let problem = error("[http]\nport = 1\n\nbogus = 2\n")
        #expect(problem?.description.hasPrefix("test.conf:4: unknown key 'bogus' in [http]") == true)
    }

    @Test func unknownSectionIsRefusedEvenWhenEmpty() {
        #expect(error("[http]\n[extras]\n")?.line == 2)
        #expect(error("[extras]\nkey = 1\n")?.description.contains("unknown section [extras]") == true)
    }

    @Test func keyOutsideASectionIsRefused() {
        let problem = error("port = 8000\n")
        #expect(problem?.line == 1)
        #expect(problem?.message.contains("outside any section") == true)
    }

    @Test func duplicateKeyNamesBothLines() {
        let problem = error("[http]\nport = 1\nport = 2\n")
        #expect(problem?.line == 3)
        #expect(problem?.message.contains("first on line 2") == true)
    }

    @Test(arguments: [
        ("[http]\nport = eighty\n", "expected a whole number from 0 to 65535, got 'eighty'"),
        ("[http]\nport = 70000\n", "expected a whole number from 0 to 65535, got '70000'"),
        ("[http]\nthreads = 0\n", "expected a whole number from 1 to 1024, got '0'"),
        ("[http]\nhost =\n", "must not be empty"),
        ("[redis]\nport = -1\n", "expected a whole number from 1 to 65535"),
        ("[redis]\nlayout = list\n", "expected one of hash, string, buckets, got 'list'"),
        ("[redis]\nhash =\n", "must not be empty"),
        ("[redis]\nkeepalive_s = 0\n", "expected a whole number from 1 to 7200, got '0'"),
        ("[log]\nlevel = loud\n", "expected one of trace, debug, info, notice, warning, error, critical, got 'loud'"),
        ("[log]\naccess = maybe\n", "expected yes or no, got 'maybe'"),
        ("[http]\npolling = kqueue\n", "expected one of auto, epoll, select, got 'kqueue'"),
    ])
    func badValuesNameTheKeyAndTheProblem(text: String, expected: String) {
        let problem = error(text)
        #expect(problem?.line == 2)
        #expect(problem?.message.contains(expected) == true, "\(String(describing: problem))")
    }

    @Test func autoPollingUsesSelectOnlyWhileDescriptorsFitUnder1024() throws {
        #expect(try parse("[http]\nthreads = 2\n").http.resolvedPolling == .select)
        #expect(try parse("[http]\nthreads = 2\nconnection_limit = 1000\n").http.resolvedPolling == .select)
        #expect(try parse("[http]\nconnection_limit = 1001\n").http.resolvedPolling == .epoll)
        #expect(try parse("[http]\npolling = epoll\n").http.resolvedPolling == .epoll)
    }

    @Test func selectPollingRefusesMoreConnectionsThanItCanHold() {
        let problem = error("[http]\npolling = select\nthreads = 2\nconnection_limit = 5000\n")
        #expect(problem?.line == 2)
        #expect(problem?.message.contains("polling = select holds at most 1000 connections, but connection_limit is 5000") == true,
                "\(String(describing: problem))")
    }

    @Test func userWithoutPasswordIsRefused() {
        let problem = error("[redis]\nuser = reader\n")
        #expect(problem?.line == 2)
        #expect(problem?.message == "[redis] user needs a password")
    }

    @Test func malformedLineIsRefused() {
        let problem = error("[http]\nport 8000\n")
        #expect(problem?.line == 2)
        #expect(problem?.message.contains("not a valid INI line") == true)
    }

    /// libinih's 200-byte line buffer once capped passwords at ~185 characters.
    @Test func longLinesAreRead() throws {
        let password = String(repeating: "x", count: 5000)
        let config = try parse("[redis]\npassword = \(password)\n")
        #expect(config.redis.password == password)
    }

    /// `password_file = /dev/zero` was once read without limit (2 GB in 3 s).
    @Test func anEndlessPasswordFileIsRefused() {
        let problem = error("[redis]\npassword_file = /dev/zero\n")
        #expect(problem?.line == 2)
        #expect(problem?.message.contains("larger than") == true, "\(String(describing: problem))")
    }

    @Test func missingNamedFileIsAnError() {
        #expect(throws: ConfigError.self) { try Configuration.load(path: "/nonexistent/kvd.conf") }
    }

    @Test func exitCodeIsExConfig() {
        #expect(ConfigError.exitCode == 78)
    }
}
