@testable import KVDConfig
import Testing

@Suite struct ConfigurationChangeTests {
    @Test func identicalConfigurationsDifferNowhere() {
        #expect(Configuration().changedKeys(to: Configuration()).isEmpty)
    }

    @Test func changedKeysAreNamedAsInTheFileInFileOrder() {
        var next = Configuration()
        next.log.level = .debug
        next.redis.port = 6380
        next.http.port = 9000
        next.redis.password = "secret"
        #expect(Configuration().changedKeys(to: next) == ["http.port", "redis.port", "redis.password", "log.level"])
    }

    @Test func everyKeyOfTheSchemaIsCompared() {
        let schema = ConfigSchema.keys.flatMap { section, keys in keys.keys.map { "\(section).\($0)" } }
        #expect(Set(Configuration.comparedKeys) == Set(schema))
        #expect(Configuration.comparedKeys.count == schema.count)
    }

    @Test func everyComparisonSeesItsField() {
        // One change per key: the list of names must cover every settable key.
        var next = Configuration()
        next.http.host = "::1"; next.http.port = 1; next.http.threads = 99; next.http.connectionLimit = 7
        next.http.perIPConnectionLimit = 3; next.http.idleTimeoutSeconds = 2; next.http.listenBacklog = 5
        next.http.maxKeyBytes = 4; next.http.connectionMemoryBytes = 5000; next.http.shutdownTimeoutMs = 6
        next.http.polling = .epoll
        next.redis.host = "r"; next.redis.port = 2; next.redis.socket = "/s"; next.redis.db = 1; next.redis.user = "u"
        next.redis.password = "p"; next.redis.passwordFile = "/f"; next.redis.layout = .string; next.redis.hash = "h"
        next.redis.prefix = "x"; next.redis.connectTimeoutMs = 1; next.redis.commandTimeoutMs = 1; next.redis.reconnectMaxMs = 11
        next.log.level = .error; next.log.access = true
        #expect(Configuration().changedKeys(to: next).count == 26)
    }
}
