/// Decides whether every worker loop is still turning, from counters each loop bumps once per turn.
///
/// The supervisor wakes every worker right after each check, so an idle worker turns at least
/// once before the next one: a counter that did not move between two checks means that worker is
/// wedged (stuck in a handler, a system call or a lock), not merely idle.
public struct HeartbeatMonitor: Sendable {
    private var previous: [UInt64]?

    public init() {}

    /// Compares `counters` with those of the previous check.
    /// - Returns: the indices of the workers whose counter did not move (none on the first check).
    public mutating func stalledWorkers(_ counters: [UInt64]) -> [Int] {
        defer { previous = counters }
        guard let previous, previous.count == counters.count else { return [] }
        return counters.indices.filter { counters[$0] == previous[$0] }
    }
}
