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

    /// An answer longer than its limit is refused (413) at the exact boundary, escapes included;
    /// after failures and error replies, before a value JSON cannot carry.
    @Test func anAnswerOverItsLimitIsRefused() {
        // ["abc",null] is 12 bytes; "\u0001" escapes to 6.
        let results = [Self.value("abc"), LookupResult.reply(.null)]
        #expect(answer(BatchLookup.outcome(results, maxAnswerBytes: 12)) == #"["abc",null]"#)
        #expect(BatchLookup.outcome(results, maxAnswerBytes: 11) == .tooLarge(limit: 11))
        #expect(answer(BatchLookup.outcome([Self.value("\u{1}")], maxAnswerBytes: 10)) == #"["\u0001"]"#)
        #expect(BatchLookup.outcome([Self.value("\u{1}")], maxAnswerBytes: 9) == .tooLarge(limit: 9))
        let notUTF8: LookupResult = .reply(.bulk([0xFF]))
        #expect(BatchLookup.outcome([Self.value("abcdef"), notUTF8], maxAnswerBytes: 5) == .tooLarge(limit: 5))
        #expect(BatchLookup.outcome([Self.value("abcdef"), .reply(.error("ERR x"))], maxAnswerBytes: 5)
                == .failed(index: 1, .reply(.error("ERR x"))))
        #expect(BatchLookup.outcome([Self.value("abcdef"), .failed(.unavailable)], maxAnswerBytes: 5)
                == .failed(index: 1, .failed(.unavailable)))
    }

    /// Values that arrive once the batch is over its limit are not kept; a failure still decides
    /// the answer.
    @Test func valuesPastTheLimitAreNotKept() {
        let batch = BatchLookup(count: 3, maxAnswerBytes: 10)
        #expect(!batch.complete(0, Self.value("abcd")))
        #expect(!batch.complete(1, Self.value("efgh")))
        #expect(!batch.complete(2, Self.value("ijkl")))
        #expect(batch.submitted())
        #expect(batch.outcome() == .tooLarge(limit: 10))

        let failing = BatchLookup(count: 2, maxAnswerBytes: 4)
        #expect(!failing.complete(0, Self.value("abcdefgh")))
        #expect(!failing.complete(1, .failed(.timedOut)))
        #expect(failing.submitted())
        #expect(failing.outcome() == .failed(index: 1, .failed(.timedOut)))

        let fits = BatchLookup(count: 2, maxAnswerBytes: 15)
        #expect(!fits.complete(1, Self.value("efgh")))
        #expect(!fits.complete(0, Self.value("abcd")))
        #expect(fits.submitted())
        #expect(answer(fits.outcome()) == #"["abcd","efgh"]"#)
    }

    /// A key named more than once is looked up once: its later places take its result, whether
    /// it completed before they were submitted (a cache hit) or after; each still counts toward
    /// the answer's size.
    @Test func duplicatesTakeTheirFirstPlacesResult() {
        let batch = BatchLookup(count: 5)
        #expect(!batch.complete(0, Self.value("a")))
        batch.duplicate(2, of: 0)  // "a" completed already
        batch.duplicate(3, of: 1)  // "b" not yet
        batch.duplicate(4, of: 1)
        #expect(batch.pending == 4, "the submission, b, and the two places waiting for b")
        #expect(!batch.complete(1, Self.value("b")))
        #expect(batch.submitted())
        #expect(answer(batch.outcome()) == #"["a","b","a","b","b"]"#)

        let failing = BatchLookup(count: 3)
        failing.duplicate(1, of: 0)
        failing.duplicate(2, of: 0)
        #expect(!failing.complete(0, .failed(.timedOut)))
        #expect(failing.submitted())
        #expect(failing.outcome() == .failed(index: 0, .failed(.timedOut)))

        // One value of 4 bytes named three times makes an answer of 22 bytes.
        let big = BatchLookup(count: 3, maxAnswerBytes: 21)
        big.duplicate(1, of: 0)
        big.duplicate(2, of: 0)
        #expect(!big.complete(0, Self.value("abcd")))
        #expect(big.submitted())
        #expect(big.outcome() == .tooLarge(limit: 21))
        let fits = BatchLookup(count: 3, maxAnswerBytes: 22)
        fits.duplicate(1, of: 0)
        fits.duplicate(2, of: 0)
        #expect(!fits.complete(0, Self.value("abcd")))
        #expect(fits.submitted())
        #expect(answer(fits.outcome()) == #"["abcd","abcd","abcd"]"#)
    }
}
