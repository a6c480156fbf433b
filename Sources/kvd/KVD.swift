import ArgumentParser
import KVDConfig
import KVDServer
import KVDSystem

/// `kvd`: serves values from Redis over HTTP.
@main
struct KVD: ParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "kvd",
        abstract: "Serve key/value pairs from Redis over HTTP.",
        discussion: """
            Reads its settings from an INI file (default /etc/kvd.conf; built-in defaults when that \
            file does not exist) and serves GET /get/{key} until SIGTERM or SIGINT. SIGHUP re-reads \
            the file.

            Exit codes: 0 stopped cleanly, 69 cannot listen, 78 invalid configuration.
            """,
        version: version
    )

    @Option(name: .long, help: "INI configuration file (default: /etc/kvd.conf).")
    var config: String?

    @Flag(name: .long, help: "Validate the configuration, print the problem if any, and exit 0 (valid) or 78 (invalid).")
    var checkConfig = false

    func run() throws {
        let loaded: Configuration
        let source: String?
        do {
            (loaded, source) = try Configuration.load(path: config)
        } catch {
            StandardStreams.writeError("kvd: \(error)\n")
            throw ExitCode(SysExit.config.rawValue)
        }
        if checkConfig {
            print("kvd: configuration OK (\(source ?? "built-in defaults"))")
            return
        }
        let status = Daemon.run(configuration: loaded, configPath: source, version: Self.version)
        if status != .ok { throw ExitCode(status.rawValue) }
    }
}
