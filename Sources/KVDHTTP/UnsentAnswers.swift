import Synchronization

/// The bytes of big answers kvd has built and not finished sending, over all workers, bounded by
/// `[http] max_unsent_bytes`: clients that ask for big values and do not read them cannot make
/// kvd hold more than that (plus one answer), however many they are.
///
/// Answers under `countedBytes` are not counted (the connection limit bounds them), so the usual
/// small GET never touches the shared counter.
final class UnsentAnswers: Sendable {
    /// Answers from this size on are counted.
    static let countedBytes = 16 * 1024

    let limit: Int
    private let held = Atomic<Int>(0)

    init(limit: Int) { self.limit = limit }

    /// Bytes held now.
    var bytes: Int { held.load(ordering: .relaxed) }

    /// Reserves `bytes` for an answer about to be built, if they fit under the limit. Nothing
    /// held: any one answer fits, so a value bigger than the limit is still served, one at a time.
    /// - Returns: false when the answer must be refused.
    func reserve(_ bytes: Int) -> Bool {
        var current = held.load(ordering: .relaxed)
        while true {
            if current > 0 && current + bytes > limit { return false }
            let (exchanged, original) = held.compareExchange(expected: current, desired: current + bytes, ordering: .relaxed)
            if exchanged { return true }
            current = original
        }
    }

    /// Adds `bytes` to what is held without asking (the answer is built already).
    func add(_ bytes: Int) { held.wrappingAdd(bytes, ordering: .relaxed) }

    /// Gives back what an answer held, once it was sent or its connection closed.
    func release(_ bytes: Int) { held.wrappingSubtract(bytes, ordering: .relaxed) }
}
