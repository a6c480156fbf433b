import KVDSystem

/// A configuration problem, located as precisely as it can be: `path:line: message`.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public let path: String
    public let line: Int?
    public let message: String

    public init(path: String, line: Int?, message: String) {
        self.path = path
        self.line = line
        self.message = message
    }

    public var description: String {
        if let line { return "\(path):\(line): \(message)" }
        return "\(path): \(message)"
    }

    /// sysexits' EX_CONFIG: the exit code of every tool that stops on a bad configuration.
    public static let exitCode: Int32 = SysExit.config.rawValue
}
