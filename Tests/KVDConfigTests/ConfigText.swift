import KVDConfig

/// Suites that read configurations from text: `parse` and `error` for a file named `test.conf`.
protocol ConfigText {}

extension ConfigText {
    /// The configuration `text` reads to (secrets' relative names looked up in `credentialsDirectory`).
    func parse(_ text: String, credentialsDirectory: String? = nil) throws(ConfigError) -> Configuration {
        try Configuration(ini: INIFile.parse(text, path: "test.conf"), credentialsDirectory: credentialsDirectory)
    }

    /// The error `text` gives; nil when it reads.
    func error(_ text: String) -> ConfigError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            return error
        }
    }
}
