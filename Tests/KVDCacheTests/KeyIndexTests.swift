@testable import KVDCache
import Testing

@Suite("Near-cache key index")
struct KeyIndexTests {
    /// Random inserts, replacements and removals against a Dictionary, with hashes forced into few
    /// buckets so that runs wrap around and deletions shift entries back.
    @Test func agreesWithADictionaryUnderRandomChurn() {
        var index = KeyIndex()
        var model: [Int: Int] = [:]           // key -> position
        var generator = SystemRandomNumberGenerator()
        func hash(_ key: Int) -> UInt64 { UInt64(key % 37) &* 0x9E37_79B9_7F4A_7C15 | 1 }
        for step in 0..<20_000 {
            let key = Int.random(in: 0..<300, using: &generator)
            if Bool.random(using: &generator) {
                let replaced = index.set(hash(key), step, matches: { model[key] == $0 })
                #expect(replaced == model[key])
                model[key] = step
            } else if let position = model[key] {
                index.remove(hash(key), position: position)
                model[key] = nil
            }
            if step % 97 == 0 {
                #expect(index.count == model.count)
                for probe in 0..<300 {
                    #expect(index.find(hash(probe), matches: { model[probe] == $0 }) == model[probe])
                }
            }
        }
    }
}
