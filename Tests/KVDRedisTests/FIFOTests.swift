@testable import KVDRedis
import Testing

/// The queue of commands a connection owes replies to. Under a steady pipeline it is never empty
/// (new commands join before the last ones are answered), so it must drop what it consumed
/// without waiting to be empty, and keep the order.
@Suite struct FIFOTests {
    @Test func keepsOrderAndCountAcrossCompaction() {
        var queue = FIFO<Int>()
        #expect(queue.isEmpty && queue.count == 0 && queue.first == nil)
        var next = 0, expected = 0
        // Always a few in the queue: appended 3 at a time, popped 2 at a time, 50,000 rounds.
        for _ in 0..<50_000 {
            for _ in 0..<3 { queue.append(next); next += 1 }
            for _ in 0..<2 {
                #expect(queue.popFirst() == expected)
                expected += 1
            }
            #expect(queue.count == next - expected)
            #expect(queue.first == expected)
        }
        while let value = queue.popFirst() {
            #expect(value == expected)
            expected += 1
        }
        #expect(expected == next && queue.isEmpty)
    }

    @Test func doesNotGrowWithWhatItConsumed() {
        var queue = FIFO<Int>()
        // Never empty: one in, one out, a million times. The storage must stay near what is queued.
        queue.append(0)
        for value in 1...1_000_000 {
            queue.append(value)
            #expect(queue.popFirst() == value - 1)
        }
        #expect(queue.count == 1)
        #expect(queue.storageCount <= 4096, "the queue kept \(queue.storageCount) elements for 1 queued")
        let rest = queue.removeAll()
        #expect(rest == [1_000_000] && queue.isEmpty)
    }
}
