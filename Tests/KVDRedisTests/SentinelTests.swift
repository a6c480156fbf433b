import KVDRedis
import KVDSettings
import KVDTestSupport
import Testing

@Suite("Sentinel: asking for the master, confirming it with ROLE")
struct SentinelTests {
    @Test func switchMasterMessagesParse() {
        let event = MasterSwitch(payload: "mymaster 10.0.0.1 6379 fe80::2 6380")
        #expect(event?.masterName == "mymaster")
        #expect(event?.previous == NodeAddress(host: "10.0.0.1", port: 6379))
        #expect(event?.current == NodeAddress(host: "fe80::2", port: 6380))
        #expect(event?.current.description == "[fe80::2]:6380")
        for bad in ["", "mymaster 10.0.0.1 6379 10.0.0.2", "m a 1 b x", "m a 1 b 0", "m a 1 b 2 extra"] {
            #expect(MasterSwitch(payload: bad) == nil, "\(bad)")
        }
    }

    @Test func theSentinelThatAnsweredLastIsAskedFirst() {
        let settings = RedisSettingsForTests.make(sentinels: ["a:1", "[::1]:2", "c:3"], masterName: "m")
        #expect(Sentinel.addresses(of: settings).map(\.description) == ["a:1", "[::1]:2", "c:3"])
        #expect(Sentinel.addresses(of: settings, first: NodeAddress(host: "::1", port: 2)).map(\.description) == ["[::1]:2", "a:1", "c:3"])
        // One no longer listed (a reload removed it) is not asked.
        #expect(Sentinel.addresses(of: settings, first: NodeAddress(host: "gone", port: 9)).count == 3)
    }

    @Test func roleRepliesOtherThanMasterAreRefused() throws {
        try RedisReply.confirmMasterRole(.array([.bulk(Array("master".utf8)), .integer(0), .array([])]), target: "t")
        let replica = RedisReply.array([.bulk(Array("slave".utf8)), .bulk(Array("127.0.0.1".utf8)), .integer(6379)])
        for reply in [replica, .array([.bulk(Array("sentinel".utf8)), .array([])]), .error("NOPERM"), .null, .array([])] {
            #expect(throws: RedisError.self) { try RedisReply.confirmMasterRole(reply, target: "t") }
        }
    }

    /// One deployment for the checks below (they only read): a master, a replica, one sentinel.
    @Test func aSentinelNamesTheMasterAndROLERefusesTheReplica() throws {
        let deployment = try RedisSentinel()
        let master = deployment.servers[0], replica = deployment.servers[1]
        let unreachable = try FreePort.find()
        var settings = RedisSettingsForTests.make(sentinels: ["127.0.0.1:\(unreachable)", deployment.address],
                                                  masterName: deployment.masterName)

        // The first sentinel refuses connections: the second is asked, and names the master.
        let (resolved, sentinel) = try Sentinel.resolve(settings)
        #expect(resolved.port == master.port && resolved.host == "127.0.0.1" && resolved.socket == nil)
        #expect(sentinel.port == deployment.port)

        // A connection in Sentinel mode refuses a server whose ROLE is not master.
        settings.port = replica.port
        do throws(RedisError) {
            try RedisConnection.check(settings)
            Issue.record("the replica passed the ROLE check")
        } catch {
            #expect(error.kind == .handshake)
            #expect(error.message.contains("127.0.0.1:\(replica.port) is not the master (ROLE: slave)"), "\(error.message)")
        }
        settings.port = master.port
        try RedisConnection.check(settings)
        // Without sentinels no ROLE is sent: pointing kvd at a replica on purpose still works.
        var plain = settings
        plain.sentinels = []
        plain.port = replica.port
        try RedisConnection.check(plain)

        // A name the sentinel does not monitor is reported as such, with each sentinel's answer.
        settings.masterName = "no-such-master"
        do throws(RedisError) {
            _ = try Sentinel.masterAddress(settings)
            Issue.record("an unknown master name was resolved")
        } catch {
            #expect(error.message.contains("no sentinel named the master 'no-such-master'"))
            #expect(error.message.contains("does not monitor 'no-such-master'"))
            #expect(error.message.contains("127.0.0.1:\(unreachable)"))
        }
    }

    @Test func aSentinelWithAPasswordNeedsSentinelPassword() throws {
        let deployment = try RedisSentinel(password: "sentinel-secret-3")
        var settings = RedisSettingsForTests.make(sentinels: [deployment.address], masterName: deployment.masterName)
        do throws(RedisError) {
            _ = try Sentinel.masterAddress(settings)
            Issue.record("a sentinel with requirepass answered without AUTH")
        } catch {
            #expect(error.message.contains("NOAUTH"), "\(error.message)")
        }
        settings.sentinelPassword = "sentinel-secret-3"
        let (master, _) = try Sentinel.masterAddress(settings)
        #expect(master.port == deployment.servers[0].port)
        // The master has no password: the sentinel's is not sent to it.
        let (resolved, _) = try Sentinel.resolve(settings)
        #expect(resolved.password == nil)
        let subscription = try SentinelSubscription(settings)
        #expect(subscription.sentinel.port == deployment.port)
        #expect(try subscription.nextSwitch(timeoutMs: 10) == nil)
    }
}

enum RedisSettingsForTests {
    static func make(sentinels: [String], masterName: String) -> RedisSettings {
        var settings = RedisSettings()
        settings.sentinels = sentinels.map { NodeAddress($0)! }  // fixed, valid addresses
        settings.masterName = masterName
        settings.connectTimeoutMs = 300
        settings.commandTimeoutMs = 1000
        return settings
    }
}
