import Histogram

/// Why a request got no usable response.
public enum ErrorKind: Int, CaseIterable, Sendable {
    /// The TCP connection could not be opened.
    case connect
    /// No complete response within the timeout.
    case timeout
    /// The connection was reset or closed before the response was complete.
    case reset
    /// The bytes received were not an HTTP/1.x response kvbench can read.
    case malformed

    /// The name used in reports and JSON.
    public var name: String {
        switch self {
        case .connect: "connect"
        case .timeout: "timeout"
        case .reset: "reset"
        case .malformed: "malformed"
        }
    }
}

/// What one worker (or, merged, the whole run) observed. Recording allocates nothing.
public struct RunStatistics: Sendable {
    /// Latency in microseconds, 1 µs to one hour, three significant digits.
    public private(set) var latency = Histogram<UInt64>(lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000,
                                                        numberOfSignificantValueDigits: .three)
    /// Responses per status code (index = code, 0...599).
    public private(set) var statusCounts = [Int](repeating: 0, count: 600)
    /// Failed requests per `ErrorKind.rawValue`.
    public private(set) var errorCounts = [Int](repeating: 0, count: ErrorKind.allCases.count)
    /// Response bytes received (heads and bodies).
    public private(set) var bytesReceived = 0
    /// Values received in 200 answers to `POST /mget` (`--batch`: the keys each asked for).
    public private(set) var values = 0
    /// Responses whose status or body disagreed with the key file (`--verify`).
    public private(set) var mismatches = 0
    /// Why the first connect failed (`connect: Connection refused`), kept to tell a user why a run got nothing.
    public private(set) var firstConnectError: String?

    public init() {}

    /// Complete responses.
    public var responses: Int { Int(latency.totalCount) }
    /// Failed requests.
    public var errors: Int { errorCounts.reduce(0, +) }
    /// Responses with a 5xx status.
    public var serverErrors: Int { statusCounts[500...].reduce(0, +) }

    /// Records one complete response.
    @inline(__always)
    public mutating func recordResponse(status: Int, latencyMicroseconds: UInt64, bytes: Int) {
        _ = latency.record(min(latencyMicroseconds, latency.highestTrackableValue))
        statusCounts[min(max(status, 0), 599)] += 1
        bytesReceived += bytes
    }

    /// Records the values of one 200 batch answer.
    @inline(__always)
    public mutating func recordValues(_ count: Int) { values += count }

    /// Records one failed request.
    @inline(__always)
    public mutating func recordError(_ kind: ErrorKind) { errorCounts[kind.rawValue] += 1 }

    /// Records one failed connect and, for the first, its reason.
    public mutating func recordConnectError(_ reason: @autoclosure () -> String) {
        recordError(.connect)
        if firstConnectError == nil { firstConnectError = reason() }
    }

    /// Records one response that failed verification.
    public mutating func recordMismatch() { mismatches += 1 }

    /// Adds everything `other` saw.
    public mutating func merge(_ other: RunStatistics) {
        latency.add(other.latency)
        for index in statusCounts.indices { statusCounts[index] += other.statusCounts[index] }
        for index in errorCounts.indices { errorCounts[index] += other.errorCounts[index] }
        bytesReceived += other.bytesReceived
        values += other.values
        mismatches += other.mismatches
        if firstConnectError == nil { firstConnectError = other.firstConnectError }
    }
}
