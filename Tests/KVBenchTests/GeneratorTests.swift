import Foundation
import KVBench
import Testing

@Suite("kvbench: dataset generator, PRNG, Zipf")
struct GeneratorTests {
    func rows(seed: UInt64, count: Int, lengths: ClosedRange<Int> = 1...94) -> [UInt8] {
        var generator = DatasetGenerator(seed: seed, valueLengths: lengths)
        var output: [UInt8] = []
        for _ in 0..<count { generator.appendRow(to: &output) }
        return output
    }

    @Test func sameSeedSameBytesOtherSeedOtherBytes() {
        #expect(rows(seed: 5, count: 1000) == rows(seed: 5, count: 1000))
        #expect(rows(seed: 5, count: 1000) != rows(seed: 6, count: 1000))
    }

    @Test func rowsAreSeedFormatWithUUIDv4KeysAndWordValues() throws {
        let text = String(decoding: rows(seed: 1, count: 2000, lengths: 1...30), as: UTF8.self)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 2001 && lines.last == "")
        let hex = Set("0123456789abcdef")
        for line in lines.dropLast() {
            let key = line.prefix(36)
            let value = line.dropFirst(37)
            let parts = key.split(separator: "-")
            #expect(parts.map(\.count) == [8, 4, 4, 4, 12], "\(line)")
            #expect(key.allSatisfy { $0 == "-" || hex.contains($0) })
            #expect(parts[2].first == "4")
            #expect("89ab".contains(parts[3].first!))
            #expect(line.dropFirst(36).first == " ")
            #expect((1...30).contains(value.utf8.count), "\(line)")
            #expect(value.allSatisfy { $0 == " " || ("a"..."z").contains($0) })
            #expect(value.first != " " && value.last != " " && !value.contains("  "), "\(line)")
        }
        let set = try KeySet(parsing: Array(text.utf8), name: "gen")
        #expect(set.count == 2000 && set.hasAllValues)
    }

    @Test func fixedLengthValues() {
        let text = String(decoding: rows(seed: 2, count: 200, lengths: 7...7), as: UTF8.self)
        #expect(text.split(separator: "\n").allSatisfy { $0.utf8.count == 36 + 1 + 7 })
    }

    @Test func splitMix64KnownSequence() {
        // Reference values of SplitMix64 for seed 0 (Vigna's splitmix64.c).
        var random = SplitMix64(seed: 0)
        #expect(random.next() == 0xE220_A839_7B1D_CDAF)
        #expect(random.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    @Test func zipfRanksFollowThePowerLaw() {
        let count = 10, exponent = 1.2, samples = 200_000
        let sampler = ZipfSampler(count: count, exponent: exponent)
        var random = SplitMix64(seed: 3)
        var histogram = [Int](repeating: 0, count: count)
        for _ in 0..<samples { histogram[sampler.sample(&random)] += 1 }
        let weights = (1...count).map { 1 / pow(Double($0), exponent) }
        let total = weights.reduce(0, +)
        for rank in 0..<count {
            let expected = weights[rank] / total
            let observed = Double(histogram[rank]) / Double(samples)
            #expect(abs(observed - expected) < 0.005, "rank \(rank): \(observed) vs \(expected)")
        }
    }

    @Test func zipfStaysInRangeForLargeSetsAndExponentOne() {
        let sampler = ZipfSampler(count: 10_000_000, exponent: 1)
        var random = SplitMix64(seed: 4)
        var hits0 = 0
        for _ in 0..<100_000 {
            let rank = sampler.sample(&random)
            #expect((0..<10_000_000).contains(rank))
            if rank == 0 { hits0 += 1 }
        }
        // P(rank 0) = 1 / H(10^7) ≈ 0.0595.
        #expect((5_000...7_000).contains(hits0))
    }
}

