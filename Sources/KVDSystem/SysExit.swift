/// The exit statuses of kvd, kvload and kvbench: sysexits(3) codes where one applies.
public enum SysExit: Int32, Sendable, CaseIterable {
    /// Done, and every promise kept.
    case ok = 0
    /// kvbench: the run finished but failed its criteria (error rate above `--max-error-rate`, or mismatches).
    case failedCriteria = 1
    /// EX_USAGE: options that contradict each other or the configuration.
    case usage = 64
    /// EX_DATAERR: malformed input.
    case dataError = 65
    /// EX_NOINPUT: an input file is missing or unreadable.
    case noInput = 66
    /// EX_UNAVAILABLE: Redis or the server is unreachable, or the listen address cannot be bound.
    case unavailable = 69
    /// EX_SOFTWARE: an internal error.
    case software = 70
    /// EX_IOERR: a read or write failed.
    case ioError = 74
    /// EX_TEMPFAIL: the connection was lost and not restored; trying again may work.
    case temporaryFailure = 75
    /// EX_PROTOCOL: the peer answered with an error.
    case protocolError = 76
    /// EX_CONFIG: the configuration is invalid.
    case config = 78

    /// Stopped by `signal`: 128 + the signal number, as a shell reports it.
    public static func interrupted(by signal: Int32) -> Int32 { 128 + signal }
}
