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
        usage: """
            kvd [-c FILE] [--listen HOST:PORT] [--redis HOST:PORT|SOCKET] [--threads N]
              kvd -t [-c FILE] [overrides]              check the configuration
              kvd --print-config [-c FILE] [overrides]  print the configuration in effect
              kvd -V
            """,
        discussion: """
            Reads its settings from an INI file (default /etc/kvd.conf; built-in defaults when that \
            file does not exist) and serves GET /get/{key} until SIGTERM or SIGINT. SIGHUP re-reads \
            the file. --listen, --redis and --threads apply over the file, at start and on every \
            reload, and are named in the start-up line.

            Exit codes: 0 stopped cleanly, 64 bad command line, 69 cannot listen, 78 invalid configuration.
            """
    )

    @Option(name: [.short, .long], help: ArgumentHelp("INI configuration file (default: /etc/kvd.conf).", valueName: "file"))
    var config: String?

    @Option(help: ArgumentHelp("Listen on this address instead of [http] host and port (IPv6: [::1]:8000).", valueName: "host:port"))
    var listen: String?

    @Option(help: ArgumentHelp("Use this Redis instead of the file's: HOST:PORT, or a unix socket path (anything with a '/').", valueName: "host:port|socket"))
    var redis: String?

    @Option(help: ArgumentHelp("Worker threads instead of [http] threads.", valueName: "n"))
    var threads: String?

    @Flag(name: [.customShort("t"), .long], help: "Validate the configuration (with the overrides), print the problem if any, and exit 0 (valid) or 78 (invalid).")
    var checkConfig = false

    @Flag(name: .long, help: "Print the configuration in effect (file, defaults and overrides) as INI, passwords masked, and exit.")
    var printConfig = false

    @Flag(name: [.customShort("V"), .customLong("version")], help: "Print the version and exit.")
    var showVersion = false

    func run() throws {
        if showVersion {
            print(Self.version)
            return
        }
        let overrides: ConfigurationOverrides
        do {
            overrides = try commandLineOverrides()
        } catch {
            StandardStreams.writeError("kvd: \(error)\n")
            throw ExitCode(SysExit.usage.rawValue)
        }
        let loaded: Configuration
        let source: String?
        do {
            let file: Configuration
            (file, source) = try Configuration.load(path: config)
            loaded = overrides.applied(to: file)
        } catch {
            StandardStreams.writeError("kvd: \(error)\n")
            throw ExitCode(SysExit.config.rawValue)
        }
        let origin = (source ?? "built-in defaults") + (overrides.isEmpty ? "" : " with \(overrides.given.joined(separator: " "))")
        if printConfig {
            print("# kvd \(Self.version): configuration in effect, from \(origin); passwords masked\n")
            print(loaded.renderedINI(), terminator: "")
            return
        }
        if checkConfig {
            print("kvd: configuration OK (\(origin))")
            return
        }
        let status = Daemon.run(configuration: loaded, configPath: source, overrides: overrides, version: Self.version)
        if status != .ok { throw ExitCode(status.rawValue) }
    }

    private func commandLineOverrides() throws(ConfigError) -> ConfigurationOverrides {
        var overrides = ConfigurationOverrides()
        if let listen { try overrides.listen(listen) }
        if let redis { try overrides.redis(redis) }
        if let threads { try overrides.threads(threads) }
        return overrides
    }
}
