@testable import KVDCache
import Testing

@Suite("Near-cache frequency sketch")
struct FrequencySketchTests {
    /// A count-min sketch never under-counts (up to its 4-bit ceiling): collisions only add.
    @Test func neverCountsLessThanTheReadsUpToFifteen() {
        var sketch = FrequencySketch(expectedEntries: 1024)
        var generator = SystemRandomNumberGenerator()
        var truth: [UInt64: Int] = [:]
        for _ in 0..<5_000 {
            let hash = UInt64.random(in: 1...UInt64(400), using: &generator) &* 0x9E37_79B9_7F4A_7C15
            truth[hash, default: 0] += 1
            sketch.increment(hash)
        }
        #expect(sketch.halvings == 0)
        for (hash, count) in truth { #expect(sketch.frequency(hash) >= min(count, 15)) }
        // Mostly exact for a table this size: over-counts are collisions, and rare.
        let exact = truth.filter { sketch.frequency($0.key) == min($0.value, 15) }.count
        #expect(exact * 10 >= truth.count * 9)
    }

    @Test func countersSaturateAtFifteenAndHalveAfterTheSample() {
        var sketch = FrequencySketch(expectedEntries: 16)
        let hot: UInt64 = 0xDEAD_BEEF_1234_5678
        for _ in 0..<40 { sketch.increment(hot) }
        #expect(sketch.frequency(hot) == 15)
        var other: UInt64 = 1
        while sketch.halvings == 0 {
            other = other &* 6364136223846793005 &+ 1442695040888963407
            sketch.increment(other | 1)
        }
        #expect(sketch.frequency(hot) == 7)
        #expect(sketch.sampleSize == 160)
    }

    /// The doorkeeper: far more keys read once than the table is sized for still count 1 each
    /// (the first read of a key does not reach the counters, so they do not overflow into each
    /// other), and keys read again are told apart from them.
    @Test func keysReadOnceDoNotFillTheCounters() {
        var sketch = FrequencySketch(expectedEntries: 1 << 14)
        var generator = SystemRandomNumberGenerator()
        let once = (0..<60_000).map { _ in UInt64.random(in: 1...UInt64.max, using: &generator) }
        let twice = (0..<500).map { _ in UInt64.random(in: 1...UInt64.max, using: &generator) }
        for hash in once { sketch.increment(hash) }
        for hash in twice + twice { sketch.increment(hash) }
        #expect(sketch.halvings == 0)
        let exact = once.filter { sketch.frequency($0) == 1 }.count
        // Measured: 94.5% with the doorkeeper, 49% without it (four counters a key, 1.8 keys a counter).
        #expect(exact * 100 >= once.count * 85, "\(exact) of \(once.count) keys read once estimated at 1")
        #expect(twice.allSatisfy { sketch.frequency($0) >= 2 })
    }
}
