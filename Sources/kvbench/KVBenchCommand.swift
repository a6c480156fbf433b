import ArgumentParser

/// `kvbench`: load and correctness client for kvd (or any server with the seed's HTTP contract).
@main
struct KVBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvbench",
        abstract: "Measure how long a client waits for GET /get/{key}, and whether the answer is right.",
        subcommands: [RunCommand.self, GenerateCommand.self]
    )
}

/// Exit codes (sysexits where one applies).
enum ExitStatus {
    /// The run finished but failed its criteria: error rate above `--max-error-rate`, or mismatches.
    static let failedCriteria: Int32 = 1
    static let dataError: Int32 = 65
    static let noInput: Int32 = 66
    static let unavailable: Int32 = 69
    static let ioError: Int32 = 74
}
