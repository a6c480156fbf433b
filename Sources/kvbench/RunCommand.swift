import ArgumentParser
import Foundation
import KVBench
import KVBenchEngine
import KVDSystem

/// `kvbench run`: concurrent GETs with exact latency percentiles and optional verification.
struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Send GET /get/{key} from many connections and report throughput, latency percentiles and errors.",
        discussion: """
            Closed loop (default): every connection sends its next request as soon as the previous answer is in.
            Open loop (--rate): requests are scheduled at a fixed rate and latency counts from the scheduled time.
            Ctrl-C stops sending, waits for the requests in flight and prints the report.

            What the seed's client.py did (100 keys, 5 workers, a connection per request, bodies printed):
              kvbench run --url http://127.0.0.1:8000 --keys data.txt --concurrency 5 --requests 100 --sequential --no-keep-alive --print-bodies
            """
    )

    @Option(help: "Base URL of the server (http only); requests go to <URL path>/get/<key>.")
    var url: String

    @Option(help: "Request this path under the URL's (e.g. --path /healthz) instead of /get/<key>; needs no keys.")
    var path: String?

    @Option(name: [.customShort("H"), .customLong("header")], help: "Extra request header 'Name: value' (repeatable), e.g. -H 'Accept: text/plain'.")
    var headers: [HeaderLine] = []

    @Option(help: "Key file: seed format (KEY VALUE per line) or one key per line.")
    var keys: String?

    @Option(help: "Use the N pairs `kvbench gen --count N` writes for the same --seed and --value-bytes, instead of a file.")
    var random: Int?

    @Option(name: [.customShort("c"), .long], help: "Connections open at once.")
    var concurrency: Int = 10

    @Option(name: [.customShort("t"), .long], help: "Event-loop threads (at most one per connection).")
    var threads: Int = 1

    @Option(name: [.customShort("d"), .long], help: "Run for this long: seconds, or with a unit (500ms, 10s, 2m); the default without --requests: 10s.")
    var duration: RunLength?

    @Option(name: [.customShort("n"), .long], help: "Send this many requests in total (instead of --duration).")
    var requests: Int?

    @Option(name: [.customShort("R"), .long], help: "Open loop: requests per second over all connections (latency from the scheduled send time).")
    var rate: Double?

    @Flag(name: .customLong("no-keep-alive"), help: "Open a new connection for every request (as the seed's client did).")
    var noKeepAlive = false

    @Option(name: .customLong("missing-ratio"), help: "Share (0-1) of requests for keys that are not in the key file.")
    var missingRatio: Double = 0

    @Option(help: "Zipf exponent: the first keys of the file are the hottest (default: uniform).")
    var zipf: Double?

    @Flag(help: "Request the keys in file order (each once, for --requests equal to the number of keys).")
    var sequential = false

    @Option(help: "Batch mode: every request is POST <URL path>/mget with N keys (a JSON array), drawn as single GETs draw theirs; reports values/s too.")
    var batch: Int?

    @Flag(help: "Check every 200 body against the key file's value, and expect 404 for keys not in it (--batch: each element, null for keys not in it).")
    var verify = false

    @Flag(help: "Print one JSON object instead of the text report.")
    var json = false

    @Flag(name: .customLong("print-bodies"), help: "Print each response body (or 'Error: STATUS - BODY'), as the seed's client did.")
    var printBodies = false

    @Option(name: .customLong("max-error-rate"), help: "Exit 1 when (errors + 5xx responses) / requests exceeds this.")
    var maxErrorRate: Double = 0

    @Option(name: .customLong("max-404-rate"), help: "Exit 1 when 404 responses / responses exceeds this (e.g. 0.5: fail when the keys were not loaded); default: only warn when most answers are 404.")
    var max404Rate: Double?

    @Option(help: "Seconds without a complete response before a request counts as a timeout (a connect that slow: a connect error).")
    var timeout: Double = 5

    @Option(help: "Seed for key choice, missing keys and --random data.")
    var seed: UInt64 = 1

    @Option(name: .customLong("value-bytes"), help: "Value length range of --random data, MIN-MAX.")
    var valueBytes: ByteRange = ByteRange(1...94)

    func validate() throws {
        if let path {
            guard path.hasPrefix("/") else { throw ValidationError("--path must start with '/', e.g. --path /healthz") }
            guard keys == nil && random == nil && !verify && missingRatio == 0 && zipf == nil && !sequential else {
                throw ValidationError("--path requests one fixed URL: it takes no --keys, --random, --verify, --missing-ratio, --zipf or --sequential")
            }
        } else {
            guard (keys == nil) != (random == nil) else { throw ValidationError("give exactly one of --keys FILE and --random N (or --path)") }
        }
        if let batch {
            guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
            guard path == nil else { throw ValidationError("--batch and --path exclude each other") }
        }
        guard duration == nil || requests == nil else { throw ValidationError("give at most one of --duration and --requests (default: --duration 10s)") }
        guard concurrency >= 1 else { throw ValidationError("--concurrency must be at least 1") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        if let random { guard random >= 1 else { throw ValidationError("--random must be at least 1") } }
        if let requests { guard requests >= 1 else { throw ValidationError("--requests must be at least 1") } }
        if let rate { guard rate > 0 else { throw ValidationError("--rate must be positive") } }
        if let zipf { guard zipf > 0 else { throw ValidationError("--zipf must be positive") } }
        guard zipf == nil || !sequential else { throw ValidationError("--zipf and --sequential exclude each other") }
        guard (0...1).contains(missingRatio) else { throw ValidationError("--missing-ratio must be between 0 and 1") }
        if let max404Rate { guard (0...1).contains(max404Rate) else { throw ValidationError("--max-404-rate must be between 0 and 1") } }
        guard maxErrorRate >= 0 else { throw ValidationError("--max-error-rate must not be negative") }
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        guard ServerURL(url) != nil else {
            throw ValidationError("--url must be an http:// URL with a host, e.g. http://127.0.0.1:8000")
        }
    }

    func run() throws {
        let target = ServerURL(url)!
        let keySet = try loadKeys()
        if verify && !keySet.hasAllValues {
            throw ExitCode(reporting: "kvbench: --verify needs a key file with values (seed format: KEY VALUE)", status: .usage)
        }
        let address: SocketAddress
        do {
            address = try SocketAddress(host: target.host, port: target.port)
        } catch {
            throw ExitCode(reporting: "kvbench: \(error)", status: .unavailable)
        }
        let order: KeyOrder = sequential ? .sequential : zipf.map { .zipf($0) } ?? .uniform
        let stop: StopCondition = requests.map { .requests($0) } ?? .duration(UInt64((duration?.seconds ?? Self.defaultSeconds) * 1e9))
        var plan = LoadPlan(
            address: address, host: target.hostHeader, pathPrefix: target.pathPrefix, keys: keySet, order: order,
            missingRatio: missingRatio, connections: concurrency, threads: threads, stop: stop, rate: rate,
            keepAlive: !noKeepAlive, verify: verify, timeout: UInt64(timeout * 1e9), seed: seed, printBodies: printBodies
        )
        plan.fixedPath = path.map { target.basePath + $0 }
        plan.headers = headers.map(\.line)
        if let batch {
            plan.batch = batch
            plan.batchPath = target.basePath + "/mget"
            do {
                plan.keyLiterals = try JSONKeyLiterals(keySet, name: keys ?? "--random")
            } catch {
                throw ExitCode(reporting: "kvbench: \(error)", status: .dataError)
            }
        }
        FirstSignal.install([SIGINT])
        let showProgress = StandardStreams.errorIsTerminal && !printBodies
        let outcome: LoadEngine.Outcome
        do {
            outcome = try LoadEngine.run(plan) { elapsed, responses, errors in
                guard showProgress else { return }
                let line = String(format: "\r\u{1B}[K%6.1f s  %10d responses  %9.0f req/s  %d errors",
                                  elapsed, responses, Double(responses) / max(elapsed, 1e-9), errors)
                StandardStreams.writeError(line)
            }
        } catch {
            throw ExitCode(reporting: "kvbench: \(error)", status: .unavailable)
        }
        if showProgress { StandardStreams.writeError("\r\u{1B}[K") }
        let report = Report(statistics: outcome.statistics, durationSeconds: outcome.durationSeconds,
                            cpuMicroseconds: outcome.cpuMicroseconds, connections: concurrency,
                            threads: outcome.threads, targetRate: rate, batch: batch)
        StandardStreams.writeOutput((json ? report.json() : report.text()) + "\n")
        // Most answers 404 although few requests were meant to miss: the data is probably not where kvd looks.
        if report.notFoundRate > 0.5 && missingRatio < 0.5 {
            StandardStreams.writeError("kvbench: warning: \(Int(report.notFoundRate * 100))% of the answers were 404: keys not loaded? "
                                       + "(check kvload's target against kvd's [redis] section)\n")
        }
        if let max404Rate, report.notFoundRate > max404Rate {
            StandardStreams.writeError("kvbench: failed: 404 rate \(report.notFoundRate) (max \(max404Rate))\n")
            throw ExitCode(SysExit.failedCriteria)
        }
        if report.errorRate > maxErrorRate || report.mismatches > 0 {
            if !json {
                StandardStreams.writeError("kvbench: failed: error rate \(report.errorRate) (max \(maxErrorRate)), \(report.mismatches) mismatches\n")
            }
            throw ExitCode(SysExit.failedCriteria)
        }
    }

    /// The run length without --duration or --requests (as wrk and oha).
    static let defaultSeconds = 10.0

    private func loadKeys() throws -> KeySet {
        let bytes: [UInt8]
        let name: String
        if path != nil {
            // --path names no key; the engine still wants a key set to draw from.
            bytes = Array("unused\n".utf8)
            name = "--path"
        } else if let random {
            var generator = DatasetGenerator(seed: seed, valueLengths: valueBytes.range)
            var data: [UInt8] = []
            data.reserveCapacity(random * (38 + valueBytes.range.upperBound))
            for _ in 0..<random { generator.appendRow(to: &data) }
            bytes = data
            name = "--random"
        } else {
            name = keys!
            do {
                bytes = try FileContents.read(path: name)
            } catch {
                throw ExitCode(reporting: "kvbench: \(error)", status: .noInput)
            }
        }
        do {
            return try KeySet(parsing: bytes, name: name)
        } catch {
            throw ExitCode(reporting: "kvbench: \(error)", status: .dataError)
        }
    }
}

extension HeaderLine: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

extension RunLength: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}
