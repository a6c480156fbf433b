import ArgumentParser
import KVBench
import KVDSystem

/// `kvbench gen`: a seed-format dataset, the same bytes for the same seed.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gen",
        abstract: "Write COUNT pairs in the seed format (UUIDv4 key, one space, lower-case words), deterministic per seed."
    )

    @Option(help: "Number of pairs to write.")
    var count: Int

    @Option(name: .customLong("value-bytes"), help: "Value length range in bytes, MIN-MAX (or one number).")
    var valueBytes: ByteRange = ByteRange(1...94)

    @Option(help: "Seed of the generator: the same seed gives the same file.")
    var seed: UInt64 = 1

    @Option(name: .shortAndLong, help: "Output file (default: standard output).")
    var output: String?

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative") }
    }

    func run() throws {
        let sink: FileSink
        do {
            sink = try output.map { try FileSink(path: $0) } ?? FileSink()
        } catch {
            throw ExitCode(reporting: "kvbench gen: \(error)", status: .ioError)
        }
        var generator = DatasetGenerator(seed: seed, valueLengths: valueBytes.range)
        let flushAt = 1 << 20
        var buffer: [UInt8] = []
        buffer.reserveCapacity(flushAt + 128 + valueBytes.range.upperBound)
        do {
            for _ in 0..<count {
                generator.appendRow(to: &buffer)
                if buffer.count >= flushAt {
                    try sink.write(buffer)
                    buffer.removeAll(keepingCapacity: true)
                }
            }
            try sink.write(buffer)
            try sink.close()
        } catch {
            throw ExitCode(reporting: "kvbench gen: \(error)", status: .ioError)
        }
    }
}

extension ByteRange: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }

    public var defaultValueDescription: String { "\(range.lowerBound)-\(range.upperBound)" }
}

extension ExitCode {
    /// Prints `message` to standard error and gives the exit code `status`.
    init(reporting message: String, status: SysExit) {
        StandardStreams.writeError(message + "\n")
        self.init(status.rawValue)
    }

    /// Exits with `status` and no message.
    init(_ status: SysExit) { self.init(status.rawValue) }
}
