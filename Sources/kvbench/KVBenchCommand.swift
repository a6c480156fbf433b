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
