@testable import KVDConfig
import Foundation
import Testing

@Suite("[redis] sentinels and master_name")
struct SentinelConfigurationTests: ConfigText {
    @Test func sentinelsAndMasterNameAreRead() throws {
        let config = try parse("""
            [redis]
            sentinels = 10.0.0.1:26379,  sentinel.internal:26380 , [::1]:26381, fe80::2:26382
            master_name = mymaster
            sentinel_password = s3cret
            """)
        #expect(config.redis.sentinels.map(\.description) == ["10.0.0.1:26379", "sentinel.internal:26380", "[::1]:26381", "[fe80::2]:26382"])
        #expect(config.redis.masterName == "mymaster")
        #expect(config.redis.sentinelPassword == "s3cret")
        #expect(config.redis.requiresMasterRole)
        #expect(!Configuration().redis.requiresMasterRole)
        #expect(Configuration().redis.sentinels.isEmpty)
    }

    @Test func badSentinelListsAreRefusedWithTheirLine() {
        for value in ["10.0.0.1", "10.0.0.1:0", "10.0.0.1:70000", ":26379", "a:1,,b:2", "a:1, a:1", "a:x"] {
            let found = error("[redis]\nmaster_name = m\nsentinels = \(value)\n")
            #expect(found?.line == 3, "\(value)")
            #expect(found?.message.contains("[redis] sentinels") == true, "\(value)")
        }
    }

    @Test func sentinelsNeedMasterNameAndTheReverse() {
        let missingName = error("[redis]\nsentinels = 127.0.0.1:26379\n")
        #expect(missingName?.line == 2)
        #expect(missingName?.message.contains("master_name") == true)
        let missingSentinels = error("[redis]\n\nmaster_name = m\n")
        #expect(missingSentinels?.line == 3)
        #expect(missingSentinels?.message.contains("needs sentinels") == true)
    }

    @Test func hostPortOrSocketWithSentinelsIsRefused() {
        for (key, value) in [("host", "10.0.0.9"), ("port", "6380"), ("socket", "/run/redis.sock")] {
            let found = error("[redis]\nsentinels = 127.0.0.1:26379\nmaster_name = m\n\(key) = \(value)\n")
            #expect(found?.line == 4, "\(key)")
            #expect(found?.message.contains("[redis] \(key) cannot be set with sentinels") == true, "\(key)")
        }
        // An empty socket is the default, not a second address.
        #expect(error("[redis]\nsentinels = 127.0.0.1:26379\nmaster_name = m\nsocket =\n") == nil)
        #expect(ConfigError.exitCode == 78)
    }

    @Test func sentinelPasswordAndItsFileAreExclusiveAndTheFileIsRead() throws {
        let directory = NSTemporaryDirectory() + "kvd-sentinel-conf-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "from-file\n".write(toFile: directory + "/sentinel-password", atomically: true, encoding: .utf8)
        let base = "[redis]\nsentinels = 127.0.0.1:26379\nmaster_name = m\n"
        let config = try parse(base + "sentinel_password_file = sentinel-password\n", credentialsDirectory: directory)
        #expect(config.redis.sentinelPassword == "from-file")
        #expect(config.redis.sentinelPasswordFile == directory + "/sentinel-password")
        let both = error(base + "sentinel_password = x\nsentinel_password_file = /nonexistent\n")
        #expect(both?.line == 5)
        #expect(both?.message.contains("sentinel_password and sentinel_password_file are both set") == true)
    }

    @Test func renderedSentinelConfigurationReadsBackAndMasksThePassword() throws {
        var config = Configuration()
        config.redis.sentinels = [NodeAddress(host: "127.0.0.1", port: 26379), NodeAddress(host: "::1", port: 26380)]
        config.redis.masterName = "mymaster"
        config.redis.sentinelPassword = "hidden-7"
        let text = config.renderedINI()
        #expect(!text.contains("hidden-7"))
        #expect(text.contains("\nsentinels = 127.0.0.1:26379, [::1]:26380\n"))
        #expect(!text.contains("\nhost = 127.0.0.1\n[log]") && !text.contains("\nport = 6379\n"))
        var back = try parse(text)
        back.redis.sentinelPassword = "hidden-7"
        #expect(back == config)
    }

    @Test func redisOnTheCommandLineTurnsSentinelModeOff() throws {
        let file = try parse("[redis]\nsentinels = 127.0.0.1:26379\nmaster_name = m\n")
        for target in ["10.0.0.7:6380", "/run/redis.sock"] {
            var overrides = ConfigurationOverrides()
            try overrides.redis(target)
            let applied = overrides.applied(to: file)
            #expect(applied.redis.sentinels.isEmpty && applied.redis.masterName == nil, "\(target)")
            #expect(!applied.redis.requiresMasterRole)
        }
    }

    @Test func sentinelKeysAreNamedInReloadChanges() {
        var next = Configuration()
        next.redis.sentinels = [NodeAddress(host: "a", port: 1)]
        next.redis.masterName = "m"
        next.redis.sentinelPassword = "p"
        next.redis.sentinelPasswordFile = "/f"
        #expect(Configuration().changedKeys(to: next)
            == ["redis.sentinels", "redis.master_name", "redis.sentinel_password", "redis.sentinel_password_file"])
    }
}
