import KVDCore
import KVDRedis

/// What a lookup token names: a single lookup's token is its request state's slot; a batch's
/// sub-lookup carries its index in the batch above the slot (`(index + 1) << 32 | slot`), so
/// every key of a `POST /mget` goes through the same lookup entry point and completion callback
/// as a `GET /get/{key}`, and its result finds its request and its place in the answer.
/// Negative tokens stay the pipeline's own (the dataset tracker's).
enum LookupTokens {
    private static let indexShift = 32
    private static let slotMask = (1 << indexShift) - 1

    static func single(slot: Int) -> LookupToken { LookupToken(slot) }

    static func batch(slot: Int, index: Int) -> LookupToken { LookupToken((index + 1) << indexShift | slot) }

    /// The request state's slot, and the index in its batch for a batch's sub-lookup.
    static func split(_ token: LookupToken) -> (slot: Int, index: Int?) {
        let index = token.value >> indexShift
        return (token.value & slotMask, index == 0 ? nil : index - 1)
    }
}

/// One `POST /mget` in flight: its keys' results as they complete, in any order (Redis's replies,
/// or answers that never reach Redis). Its answer is built once every sub-lookup has completed,
/// so no completion can arrive for a request already answered (or a reused request state).
final class BatchLookup {
    private var results: [LookupResult?]
    /// Sub-lookups not completed yet, plus one while they are being submitted (so a batch whose
    /// lookups all complete at once, from a cache or on a refusal, is answered only after the last
    /// one was submitted).
    private(set) var pending: Int
    /// The most bytes the answer may have (`mget_max_answer_bytes`).
    let maxAnswerBytes: Int
    /// The values' bytes held so far, each with its quotes and comma: what the answer will have
    /// at least. Past `maxAnswerBytes` the batch is refused and later values are not kept, so a
    /// batch of many big values (or one big value asked for many times) holds no more than that.
    private var valueBytes = 0
    /// The later places of a key named more than once, by the place of its first: the key is
    /// looked up once, and its result fills them all.
    private var duplicates: [Int: [Int]] = [:]

    init(count: Int, maxAnswerBytes: Int = Int.max) {
        results = Array(repeating: nil, count: count)
        pending = count + 1
        self.maxAnswerBytes = maxAnswerBytes
    }

    var count: Int { results.count }

    /// Records sub-lookup `index`'s result; true when it was the last one outstanding. A second
    /// completion for the same index (never expected) is ignored.
    func complete(_ index: Int, _ result: LookupResult) -> Bool {
        guard index < results.count, results[index] == nil else { return false }
        if !duplicates.isEmpty, let later = duplicates.removeValue(forKey: index) {
            for place in later { _ = complete(place, result) }
        }
        if case .reply(.bulk(let value)) = result {
            valueBytes += value.count + 3
            // Over the limit: the answer will be refused; the value is not kept.
            results[index] = valueBytes > maxAnswerBytes ? .reply(.null) : result
        } else {
            results[index] = result
        }
        pending -= 1
        return pending == 0
    }

    /// Place `index` names the same key as place `first`, which was submitted for lookup: it takes
    /// `first`'s result (at once when that has completed already) instead of a lookup of its own.
    /// A request naming one big value a thousand times then costs Redis one read, not a thousand.
    func duplicate(_ index: Int, of first: Int) {
        if let result = results[first] {
            _ = complete(index, result)
        } else {
            duplicates[first, default: []].append(index)
        }
    }

    /// Every sub-lookup was submitted; true when all have completed too.
    func submitted() -> Bool {
        pending -= 1
        return pending == 0
    }

    /// What the whole request is answered, once `pending` is 0.
    func outcome() -> BatchOutcome {
        precondition(pending == 0, "a batch answered before its last sub-lookup completed")
        return Self.outcome(results, tooLarge: valueBytes > maxAnswerBytes, maxAnswerBytes: maxAnswerBytes)
    }

    /// The batch's answer from its results, in order. A lookup that got no reply (Redis unavailable,
    /// timed out, shutting down, no dataset) fails the whole request as it fails a single GET;
    /// then a Redis error or an unexpected reply (502 as for GET); then a value JSON cannot carry
    /// (406 naming its index). Each kind: the first index in order. An answer that would be
    /// longer than `maxAnswerBytes` (escapes included), or a batch `tooLarge` already, is refused
    /// (413) after failures and error replies, before a value JSON cannot carry.
    static func outcome(_ results: [LookupResult?], tooLarge: Bool = false, maxAnswerBytes: Int = Int.max) -> BatchOutcome {
        var answer = MgetAnswer(capacity: tooLarge ? 0 : min(results.count * 16, maxAnswerBytes))
        var replyProblem: Int?
        var notUTF8: Int?
        var tooLarge = tooLarge
        for (index, result) in results.enumerated() {
            switch result! {
            case .failed(let failure):
                return .failed(index: index, .failed(failure))
            case .reply(.bulk(let value)):
                if !tooLarge, notUTF8 == nil, replyProblem == nil {
                    if !answer.append(value) { notUTF8 = index }
                    // With its closing `]`, the answer would be longer than the limit.
                    tooLarge = answer.body.count >= maxAnswerBytes
                }
            case .reply(.null):
                if !tooLarge, notUTF8 == nil, replyProblem == nil {
                    _ = answer.append(nil)
                    tooLarge = answer.body.count >= maxAnswerBytes
                }
            case .reply:
                if replyProblem == nil { replyProblem = index }
            }
        }
        if let replyProblem { return .failed(index: replyProblem, results[replyProblem]!) }
        if tooLarge { return .tooLarge(limit: maxAnswerBytes) }
        if let notUTF8 { return .notUTF8(index: notUTF8) }
        return .values(answer.finish())
    }
}

/// How a `POST /mget` is answered.
enum BatchOutcome: Equatable {
    /// 200: the JSON array of values.
    case values([UInt8])
    /// The lookup at `index` failed: the whole request gets the answer a single GET would.
    case failed(index: Int, LookupResult)
    /// The value at `index` is not valid UTF-8 (406).
    case notUTF8(index: Int)
    /// The answer would be longer than `limit` bytes (413).
    case tooLarge(limit: Int)
}
