/// A first-in, first-out queue over an array, for the lookups a Redis connection owes replies to.
struct FIFO<Element> {
    private var storage: [Element] = []
    private var head = 0

    var isEmpty: Bool { head == storage.count }
    var count: Int { storage.count - head }
    /// Elements held, consumed ones included (tests: the queue must not grow with its history).
    var storageCount: Int { storage.count }
    var first: Element? { isEmpty ? nil : storage[head] }

    mutating func append(_ element: Element) { storage.append(element) }

    mutating func popFirst() -> Element? {
        guard !isEmpty else { return nil }
        let element = storage[head]
        head += 1
        if head == storage.count {
            storage.removeAll(keepingCapacity: true)
            head = 0
        } else if head >= 1024 && head * 2 >= storage.count {
            // Never empty under a steady pipeline: drop the consumed front now and then.
            storage.removeSubrange(0..<head)
            head = 0
        }
        return element
    }

    mutating func removeAll() -> [Element] {
        let rest = Array(storage[head...])
        storage.removeAll(keepingCapacity: true)
        head = 0
        return rest
    }
}
