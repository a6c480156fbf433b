/// The body of a `POST /mget` answer: a JSON array with each key's value as a JSON string, or
/// `null` for a key Redis does not have, in the order of the request's keys.
public struct MgetAnswer {
    public private(set) var body: [UInt8]
    private var count = 0

    public init(capacity: Int = 0) {
        body = []
        body.reserveCapacity(capacity)
        body.append(UInt8(ascii: "["))
    }

    /// Appends the next element: `value` as a JSON string, or `null` for nil.
    /// - Returns: false, leaving the answer as it was, when `value` is not valid UTF-8 (JSON
    ///   cannot carry it; kvd then answers 406 for the whole batch).
    public mutating func append(_ value: [UInt8]?) -> Bool {
        if count > 0 { body.append(UInt8(ascii: ",")) }
        if let value {
            guard JSONString.encode(value, into: &body) else {
                if count > 0 { body.removeLast() }
                return false
            }
        } else {
            body.append(contentsOf: Self.null)
        }
        count += 1
        return true
    }

    /// The finished body (`]` appended).
    public consuming func finish() -> [UInt8] {
        body.append(UInt8(ascii: "]"))
        return body
    }

    private static let null = Array("null".utf8)
}
