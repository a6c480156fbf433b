@testable import KVDHTTP
import KVDRedis
import Testing

/// `POST /mget`'s bookkeeping inside a worker, without a server: tokens, completions in any
/// order, and the answer's precedence of failures.
@Suite("kvd: batch lookup assembly")
struct BatchLookupTests {
    static func value(_ text: String) -> LookupResult { .reply(.bulk(Array(text.utf8))) }

    func answer(_ outcome: BatchOutcome) -> String? {
        guard case .values(let body) = outcome else { return nil }
        return String(decoding: body, as: UTF8.self)
    }

    @Test func tokensCarryTheSlotAndTheIndex() {
        #expect(LookupTokens.split(LookupTokens.single(slot: 7)) == (7, nil))
        #expect(LookupTokens.split(LookupTokens.batch(slot: 7, index: 0)) == (7, 0))
        #expect(LookupTokens.split(LookupTokens.batch(slot: 123_456, index: 99_999)) == (123_456, 99_999))
        #expect(LookupTokens.batch(slot: 0, index: 0).value > 0, "negative tokens stay the pipeline's own")
    }

    @Test func answeredOnlyOnceEverySubLookupCompletedAndSubmitted() {
        let batch = BatchLookup(count: 3)
        #expect(!batch.complete(2, Self.value("c")))
        #expect(!batch.complete(0, .reply(.null)))
        // Completions may all arrive while the keys are still being submitted.
        #expect(!batch.complete(1, Self.value("b")))
        #expect(!batch.complete(1, Self.value("again")), "a second completion is ignored")
        #expect(batch.submitted())
        #expect(answer(batch.outcome()) == #"[null,"b","c"]"#)

        let late = BatchLookup(count: 1)
        #expect(!late.submitted())
        #expect(late.complete(0, Self.value("x")))
        #expect(answer(late.outcome()) == #"["x"]"#)

        let empty = BatchLookup(count: 0)
        #expect(empty.submitted())
        #expect(answer(empty.outcome()) == "[]")
    }

    @Test func aLookupWithoutAReplyWinsOverARedisErrorWhichWinsOverNotUTF8() {
        let notUTF8: LookupResult = .reply(.bulk([0xFF]))
        let error: LookupResult = .reply(.error("WRONGTYPE Operation against a key"))
        #expect(BatchLookup.outcome([Self.value("a"), notUTF8, error, .failed(.timedOut), .failed(.unavailable)])
                == .failed(index: 3, .failed(.timedOut)))
        #expect(BatchLookup.outcome([notUTF8, .reply(.integer(1)), error]) == .failed(index: 1, .reply(.integer(1))))
        #expect(BatchLookup.outcome([Self.value("a"), .reply(.null), notUTF8, notUTF8]) == .notUTF8(index: 2))
        #expect(answer(BatchLookup.outcome([Self.value("é\n"), .reply(.null), Self.value("")])) == #"["é\n",null,""]"#)
    }
}
