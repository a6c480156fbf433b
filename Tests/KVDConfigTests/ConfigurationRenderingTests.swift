@testable import KVDConfig
import Testing

@Suite("Configuration written back as INI")
struct ConfigurationRenderingTests {
    @Test func everyKeyOfTheSchemaIsWritten() {
        let schema = ConfigSchema.keys.flatMap { section, keys in keys.keys.map { "\(section).\($0)" } }
        #expect(Set(Configuration.renderedKeys) == Set(schema))
        #expect(Configuration.renderedKeys.count == schema.count)
    }

    @Test func renderedTextReadsBackToTheSameConfiguration() throws {
        var config = Configuration()
        config.http.host = "::1"
        config.http.threads = 3
        config.redis.hash = "h ;1"
        config.redis.prefix = " \"odd\\ "
        config.redis.socket = "/run/redis/redis.sock"
        config.log.access = true
        let back = try Configuration(ini: INIFile.parse(config.renderedINI(), path: "rendered"), credentialsDirectory: nil)
        #expect(back == config)
    }

    @Test func aPasswordIsMasked() throws {
        var config = Configuration()
        config.redis.user = "app"
        config.redis.password = "secret"
        let text = config.renderedINI()
        #expect(!text.contains("secret"))
        #expect(text.contains("\npassword = \(Configuration.maskedPassword)\n"))
        var back = try Configuration(ini: INIFile.parse(text, path: "rendered"), credentialsDirectory: nil)
        back.redis.password = "secret"
        #expect(back == config)
    }
}
