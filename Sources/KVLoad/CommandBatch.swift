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
    /// `HSET <generation prefix><bucket> k v`, one command per row (the rows of a batch rarely
    /// share a bucket), all in the batch's pipeline; each reply is 1 for a new field.
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
    private var scratch: [UInt8] = []
    private let mode: WriteMode

    public init(mode: WriteMode) { self.mode = mode }

    public var isEmpty: Bool { rows == 0 }

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
            RESP.appendArrayHeader(count: 4, to: &body)
            RESP.appendBulk("HSET", to: &body)
            placement.appendBucketName(for: key, to: &scratch)
            RESP.appendBulk(scratch, to: &body)
            RESP.appendBulk(key, to: &body)
            RESP.appendBulk(value, to: &body)
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
        case .stringsWithTTL, .buckets:
            expectedReplies = rows
        }
        encoded.append(contentsOf: body)
        body.removeAll(keepingCapacity: true)
    }
}
