import KVDConfig

/// How rows become Redis commands.
public enum WriteMode: Sendable, Equatable {
    /// `HSET hash k1 v1 k2 v2 …`: one command per batch; its reply counts the new fields.
    case hash(name: String)
    /// `MSET p+k1 v1 p+k2 v2 …`: one command per batch.
    case strings(prefix: String)
    /// `SET p+k v EX ttl`, one command per row, all in the batch's pipeline.
    case stringsWithTTL(prefix: String, seconds: Int)
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
    private let mode: WriteMode

    public init(mode: WriteMode) { self.mode = mode }

    public var isEmpty: Bool { rows == 0 }

    /// Adds one row.
    public mutating func add(key: [UInt8], value: [UInt8]) {
        rows += 1
        payloadBytes += key.count + value.count
        switch mode {
        case .hash:
            Self.bulk(key, into: &body)
            Self.bulk(value, into: &body)
        case .strings(let prefix):
            Self.bulk(prefix: prefix, key, into: &body)
            Self.bulk(value, into: &body)
        case .stringsWithTTL(let prefix, let seconds):
            body.append(contentsOf: "*5\r\n$3\r\nSET\r\n".utf8)
            Self.bulk(prefix: prefix, key, into: &body)
            Self.bulk(value, into: &body)
            Self.bulk(Array("EX".utf8), into: &body)
            Self.bulk(Array(String(seconds).utf8), into: &body)
        }
    }

    /// Finishes the batch: `encoded` then holds the complete commands.
    public mutating func seal() {
        encoded.removeAll(keepingCapacity: true)
        switch mode {
        case .hash(let name):
            Self.header(count: 2 + 2 * rows, into: &encoded)
            Self.bulk(Array("HSET".utf8), into: &encoded)
            Self.bulk(Array(name.utf8), into: &encoded)
            expectedReplies = 1
        case .strings:
            Self.header(count: 1 + 2 * rows, into: &encoded)
            Self.bulk(Array("MSET".utf8), into: &encoded)
            expectedReplies = 1
        case .stringsWithTTL:
            expectedReplies = rows
        }
        encoded.append(contentsOf: body)
        body.removeAll(keepingCapacity: true)
    }

    private static func header(count: Int, into out: inout [UInt8]) {
        out.append(0x2A)
        decimal(count, into: &out)
        out.append(0x0D)
        out.append(0x0A)
    }

    private static func bulk(_ bytes: [UInt8], into out: inout [UInt8]) {
        out.append(0x24)
        decimal(bytes.count, into: &out)
        out.append(0x0D)
        out.append(0x0A)
        out.append(contentsOf: bytes)
        out.append(0x0D)
        out.append(0x0A)
    }

    private static func bulk(prefix: String, _ bytes: [UInt8], into out: inout [UInt8]) {
        out.append(0x24)
        decimal(prefix.utf8.count + bytes.count, into: &out)
        out.append(0x0D)
        out.append(0x0A)
        out.append(contentsOf: prefix.utf8)
        out.append(contentsOf: bytes)
        out.append(0x0D)
        out.append(0x0A)
    }

    /// Appends `value` (≥ 0) in decimal ASCII without allocating.
    static func decimal(_ value: Int, into out: inout [UInt8]) {
        if value < 10 { out.append(0x30 + UInt8(value)); return }
        var divisor = 1
        while divisor <= value / 10 { divisor *= 10 }
        var rest = value
        while divisor > 0 {
            out.append(0x30 + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
    }
}
