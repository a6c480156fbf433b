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

    private var body: [UInt8] = []
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

    public init(mode: WriteMode) { self.mode = mode }

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
            RESP.appendBulk(value, to: &body)
            RESP.appendBulk("EX", to: &body)
            RESP.appendBulk(String(seconds), to: &body)
        }
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
        case .strings:
            RESP.appendArrayHeader(count: 1 + 2 * rows, to: &encoded)
            RESP.appendBulk("MSET", to: &encoded)
            expectedReplies = 1
        case .stringsWithTTL:
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
            RESP.appendArrayHeader(count: 2 + 2 * (end - first), to: &encoded)
            RESP.appendBulk("HSET", to: &encoded)
            RESP.appendBulk(placement.descriptor.bucketName(bucket, generationPrefix: placement.generationPrefix), to: &encoded)
            for index in order[first..<end] {
                let row = windowRows[index]
                Self.appendBulk(body[row.start..<(row.start + row.keyCount)], to: &encoded)
                Self.appendBulk(body[(row.start + row.keyCount)..<(row.start + row.keyCount + row.valueCount)], to: &encoded)
            }
            expectedReplies += 1
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
