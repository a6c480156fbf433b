import KVDConfig
import KVDDataset
import KVDRedis

/// How rows become Redis commands.
public enum WriteMode: Sendable, Equatable {
    /// `HSET hash k1 v1 k2 v2 …`: one command per batch; its reply counts the new fields.
    case hash(name: String)
    /// `MSET p+k1 v1 p+k2 v2 …`: one command per batch.
    case strings(prefix: String)
    /// `SET p+k v EX ttl`, one command per row, all in the batch's pipeline.
    case stringsWithTTL(prefix: String, seconds: Int)
    /// `SET p+k v`, one command per row (a Redis Cluster: MSET's keys must share a slot).
    case stringsEach(prefix: String)
    /// `HSET <generation prefix><bucket> k1 v1 k2 v2 …`: the batch is a window of many rows
    /// (`bucketWindowRows`, `bucketWindowBytes`), grouped by bucket when sealed into one HSET per
    /// bucket, in the rows' order within each bucket (a later duplicate key still wins); each
    /// reply counts the new fields of its bucket.
    case buckets(BucketPlacement)
}

/// A batch of rows encoded as RESP, kept until Redis acknowledges it (so it can be sent again
/// after a reconnect: every command kvload sends is idempotent).
public struct CommandBatch: Sendable {
    /// The RESP bytes of the batch's commands.
    public private(set) var encoded: [UInt8] = []
    /// Rows in the batch.
    public private(set) var rows = 0
    /// Replies the batch expects (1, or one per row with a TTL).
    public private(set) var expectedReplies = 0
    /// Payload bytes (keys and values) in the batch.
    public private(set) var payloadBytes = 0

    /// Slotted batches (a Redis Cluster): each command of `encoded`, its key's slot and its rows.
    public private(set) var commands: [SlottedCommand] = []

    private var body: [UInt8] = []
    /// Whether `commands` is kept (for a Redis Cluster, where each command goes to its slot's node).
    private let slotted: Bool
    /// `buckets` mode: the window's rows (bucket, and where key and value lie in `body`) until sealed.
    private var windowRows: [WindowRow] = []
    private let mode: WriteMode

    private struct WindowRow {
        var bucket: Int
        var start: Int
        var keyCount: Int
        var valueCount: Int
    }

    /// `buckets` mode: windows sent and not yet acknowledged (one being written by Redis, one
    /// queued): each is large, so two keep Redis busy while the next one fills.
    public static let bucketWindowsInFlight = 2

    /// `buckets` mode: rows in a window, `batchRows × pipeline × 4` (64,000 by default, about 5 MB
    /// of seed-format pairs). Larger windows put more rows in each HSET (about rows ÷ N for N
    /// buckets); memory stays bounded by the windows in flight and the one filling.
    public static func bucketWindowRows(_ options: LoadOptions) -> Int { options.batchRows * options.pipeline * 4 }

    /// `buckets` mode: key and value bytes in a window, `batchBytes × pipeline ÷ 2` (8 MB by
    /// default; a single larger row still goes, alone).
    public static func bucketWindowBytes(_ options: LoadOptions) -> Int { max(1, options.batchBytes * options.pipeline / 2) }

    /// - Parameter slotted: keep `commands` (each command's slot), for a Redis Cluster.
    public init(mode: WriteMode, slotted: Bool = false) {
        self.mode = mode
        self.slotted = slotted
    }

    public var isEmpty: Bool { rows == 0 }

    /// Whether the batch should be sealed and sent: `batchRows` rows or `batchBytes` bytes, or for
    /// the `buckets` layout a full window.
    public func isFull(_ options: LoadOptions) -> Bool {
        if case .buckets = mode {
            return rows >= Self.bucketWindowRows(options) || payloadBytes >= Self.bucketWindowBytes(options)
        }
        return rows >= options.batchRows || payloadBytes >= options.batchBytes
    }

    /// Most batches of this kind in flight: `pipeline`, or for the `buckets` layout's large
    /// windows `bucketWindowsInFlight` (bounding memory to a few windows).
    public func inFlightLimit(pipeline: Int) -> Int {
        if case .buckets = mode { return max(1, min(pipeline, Self.bucketWindowsInFlight)) }
        return pipeline
    }

    /// Adds one row.
    public mutating func add(key: [UInt8], value: [UInt8]) {
        rows += 1
        payloadBytes += key.count + value.count
        let start = body.count
        switch mode {
        case .hash:
            RESP.appendBulk(key, to: &body)
            RESP.appendBulk(value, to: &body)
        case .strings(let prefix):
            RESP.appendBulk(prefix: prefix, key, to: &body)
            RESP.appendBulk(value, to: &body)
        case .buckets(let placement):
            windowRows.append(WindowRow(bucket: placement.bucket(of: key), start: body.count, keyCount: key.count, valueCount: value.count))
            body.append(contentsOf: key)
            body.append(contentsOf: value)
        case .stringsWithTTL(let prefix, let seconds):
            RESP.appendArrayHeader(count: 5, to: &body)
            RESP.appendBulk("SET", to: &body)
            RESP.appendBulk(prefix: prefix, key, to: &body)
            let keyEnd = body.count - 2
            RESP.appendBulk(value, to: &body)
            RESP.appendBulk("EX", to: &body)
            RESP.appendBulk(String(seconds), to: &body)
            noteRowCommand(key: (keyEnd - prefix.utf8.count - key.count)..<keyEnd, from: start)
        case .stringsEach(let prefix):
            RESP.appendArrayHeader(count: 3, to: &body)
            RESP.appendBulk("SET", to: &body)
            RESP.appendBulk(prefix: prefix, key, to: &body)
            let keyEnd = body.count - 2
            RESP.appendBulk(value, to: &body)
            noteRowCommand(key: (keyEnd - prefix.utf8.count - key.count)..<keyEnd, from: start)
        }
    }

    /// Slotted batches: the row's own command (`SET`), from `start` to the end of `body`, its
    /// Redis key (prefix and key) at `key` in `body`.
    private mutating func noteRowCommand(key: Range<Int>, from start: Int) {
        guard slotted else { return }
        commands.append(SlottedCommand(range: start..<body.count, slot: ClusterSlot.ofBytes(body[key]), rows: 1))
    }

    /// Finishes the batch: `encoded` then holds the complete commands.
    public mutating func seal() {
        encoded.removeAll(keepingCapacity: true)
        switch mode {
        case .hash(let name):
            RESP.appendArrayHeader(count: 2 + 2 * rows, to: &encoded)
            RESP.appendBulk("HSET", to: &encoded)
            RESP.appendBulk(name, to: &encoded)
            expectedReplies = 1
            if slotted { commands = [SlottedCommand(range: 0..<(encoded.count + body.count), slot: ClusterSlot.ofBytes(Array(name.utf8)), rows: rows)] }
        case .strings:
            RESP.appendArrayHeader(count: 1 + 2 * rows, to: &encoded)
            RESP.appendBulk("MSET", to: &encoded)
            expectedReplies = 1
        case .stringsWithTTL, .stringsEach:
            expectedReplies = rows
        case .buckets(let placement):
            sealWindow(placement)
            body = []
            return
        }
        encoded.append(contentsOf: body)
        body.removeAll(keepingCapacity: true)
    }

    /// One `HSET bucket k1 v1 …` per bucket of the window, the rows of a bucket in input order.
    private mutating func sealWindow(_ placement: BucketPlacement) {
        // (bucket, position) is unique, so this order keeps the input order within a bucket.
        let order = windowRows.indices.sorted { a, b in
            (windowRows[a].bucket, a) < (windowRows[b].bucket, b)
        }
        encoded.reserveCapacity(body.count + rows * 16)
        expectedReplies = 0
        var first = 0
        while first < order.count {
            let bucket = windowRows[order[first]].bucket
            var end = first + 1
            while end < order.count && windowRows[order[end]].bucket == bucket { end += 1 }
            let commandStart = encoded.count
            let bucketName = placement.descriptor.bucketName(bucket, generationPrefix: placement.generationPrefix)
            RESP.appendArrayHeader(count: 2 + 2 * (end - first), to: &encoded)
            RESP.appendBulk("HSET", to: &encoded)
            RESP.appendBulk(bucketName, to: &encoded)
            for index in order[first..<end] {
                let row = windowRows[index]
                Self.appendBulk(body[row.start..<(row.start + row.keyCount)], to: &encoded)
                Self.appendBulk(body[(row.start + row.keyCount)..<(row.start + row.keyCount + row.valueCount)], to: &encoded)
            }
            expectedReplies += 1
            if slotted { commands.append(SlottedCommand(range: commandStart..<encoded.count, slot: ClusterSlot.ofBytes(bucketName), rows: end - first)) }
            first = end
        }
        windowRows = []
    }

    /// `$<length>\r\n<bytes>\r\n` for part of the window's storage.
    private static func appendBulk(_ bytes: ArraySlice<UInt8>, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "$"))
        out.append(contentsOf: String(bytes.count).utf8)
        out.append(contentsOf: [0x0D, 0x0A])
        out.append(contentsOf: bytes)
        out.append(contentsOf: [0x0D, 0x0A])
    }
}

/// One command of a slotted batch: where it lies in `CommandBatch.encoded`, its key's slot, its rows.
public struct SlottedCommand: Sendable, Equatable {
    public let range: Range<Int>
    public let slot: Int
    public let rows: Int
}
