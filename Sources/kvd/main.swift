import ArgumentParser
import KVDConfig

/// `kvd`: serves values from Redis over HTTP.
struct KVD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvd",
        abstract: "Serve key/value pairs from Redis over HTTP.",
        version: "0.1.0"
    )

    @Option(name: .long, help: "INI configuration file (default: /etc/kvd.conf; defaults apply when it does not exist).")
    var config: String?

    @Flag(name: .long, help: "Validate the configuration, print the problem if any, and exit 0 (valid) or 78 (invalid).")
    var checkConfig = false

    func run() throws {
        do {
            let (_, source) = try Configuration.load(path: config)
            if checkConfig {
                print("kvd: configuration OK (\(source ?? "built-in defaults"))")
                return
            }
        } catch {
            StandardError.write("kvd: \(error)")
            throw ExitCode(ConfigError.exitCode)
        }
    }
}

KVD.main()
