import Foundation
import KVDConfig
import Testing

/// `[redis] password_file`: the secret from a file, or from systemd's credentials directory.
@Suite struct PasswordFileTests {
    let directory: String

    init() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("kvd-secret-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ content: String) throws -> String {
        let path = directory + "/" + name
        try content.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func parse(_ text: String, credentials: String? = nil) throws(ConfigError) -> Configuration {
        try Configuration(ini: INIFile.parse(text, path: "test.conf"), credentialsDirectory: credentials)
    }

    func error(_ text: String, credentials: String? = nil) -> ConfigError? {
        do {
            _ = try parse(text, credentials: credentials)
            return nil
        } catch {
            return error
        }
    }

    @Test func absolutePathIsReadWithoutItsLineBreak() throws {
        let path = try write("pw", "s3cret pass\n")
        let config = try parse("[redis]\npassword_file = \(path)\n")
        #expect(config.redis.password == "s3cret pass")
        #expect(config.redis.passwordFile == path)
    }

    @Test func relativeNameIsLookedUpInTheCredentialsDirectory() throws {
        _ = try write("redis-password", "from-credentials\r\n")
        let config = try parse("[redis]\npassword_file = redis-password\n", credentials: directory)
        #expect(config.redis.password == "from-credentials")
        #expect(config.redis.passwordFile == directory + "/redis-password")
    }

    @Test func relativeNameWithoutCredentialsDirectoryIsRefused() {
        let error = error("[redis]\n\npassword_file = redis-password\n")
        #expect(error?.line == 3)
        #expect(error?.message.contains("$CREDENTIALS_DIRECTORY is not set") == true)
    }

    @Test func missingFileIsRefusedWithItsPathAndLine() {
        let error = error("[redis]\npassword_file = /nonexistent/pw\n")
        #expect(error?.description == "test.conf:2: [redis] password_file: cannot read '/nonexistent/pw': No such file or directory")
    }

    @Test func emptyOrMultiLineFilesAreRefusedWithoutShowingTheirContent() throws {
        let empty = try write("empty", "\n")
        #expect(error("[redis]\npassword_file = \(empty)\n")?.message.contains("is empty") == true)
        let twoLines = try write("two", "first-secret\nsecond-secret\n")
        let message = error("[redis]\npassword_file = \(twoLines)\n")?.message ?? ""
        #expect(message.contains("on one line"))
        #expect(!message.contains("secret\n") && !message.contains("first-secret"))
    }

    @Test func passwordAndPasswordFileTogetherAreRefused() throws {
        let path = try write("pw", "x")
        let error = error("[redis]\npassword = y\npassword_file = \(path)\n")
        #expect(error?.line == 3)
        #expect(error?.message.contains("both set") == true)
    }

    @Test func userWithAPasswordFileIsAccepted() throws {
        let path = try write("pw", "reader-pass")
        let config = try parse("[redis]\nuser = reader\npassword_file = \(path)\n")
        #expect(config.redis.user == "reader")
        #expect(config.redis.password == "reader-pass")
    }
}
