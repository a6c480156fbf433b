/// The dataset descriptor: a small Redis hash (default `<prefix>meta`) naming the live generation
/// of a dataset and how its pairs are stored. kvload writes a new generation beside the live one,
/// then switches this hash to it in one command; kvd reads it and follows the switch.
///
/// Fields (all values ASCII text): `format` (1), `generation`, `layout` (`buckets` or `string`),
/// `buckets` (N, buckets only), `hash` (the bucket hash's name), `rows`, `loaded_at`, `source`.
public struct DatasetDescriptor: Sendable, Equatable {
    /// How pairs of a generation are stored.
    public enum Layout: String, Sendable {
        /// `HGET <prefix><generation>:<bucket> <key>`, bucket = hash(key) over N buckets.
        case buckets
        /// `GET <prefix><generation>:<key>`.
        case string
    }

    /// The descriptor format this code writes and reads.
    public static let format = 1

    /// Names one load: letters, digits, `-` and `_` only (it is part of Redis key names).
    public var generation: String
    public var layout: Layout
    /// Buckets in the generation (1 for the string layout, where it is not used).
    public var bucketCount: Int
    public var hash: BucketHash
    /// Rows Redis acknowledged for the generation when it was switched in.
    public var rows: Int
    /// When the load finished, ISO 8601 UTC.
    public var loadedAt: String
    /// What was loaded (file names, or `-` for standard input).
    public var source: String

    public init(generation: String, layout: Layout, bucketCount: Int, hash: BucketHash = .xxh64,
                rows: Int, loadedAt: String, source: String) {
        self.generation = generation
        self.layout = layout
        self.bucketCount = bucketCount
        self.hash = hash
        self.rows = rows
        self.loadedAt = loadedAt
        self.source = source
    }

    /// Why a descriptor cannot be used: the text goes into kvd's 503 detail and its log.
    public struct Problem: Error, Sendable, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }

    /// Reads a descriptor from `HGETALL`'s field/value pairs.
    /// - Throws: `Problem` naming the first missing or invalid field.
    public init(fields: [(name: [UInt8], value: [UInt8])]) throws(Problem) {
        var map: [String: String] = [:]
        for (name, value) in fields { map[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self) }
        func field(_ name: String) throws(Problem) -> String {
            guard let value = map[name] else { throw Problem("the dataset descriptor has no '\(name)' field") }
            return value
        }
        func number(_ name: String, minimum: Int) throws(Problem) -> Int {
            let text = try field(name)
            guard let value = Int(text), value >= minimum else { throw Problem("the dataset descriptor's '\(name)' is not a number ≥ \(minimum): '\(text)'") }
            return value
        }
        guard map.isEmpty == false else { throw Problem("the dataset descriptor is missing (no dataset loaded with generations yet)") }
        let format = try number("format", minimum: 1)
        guard format == Self.format else { throw Problem("the dataset descriptor has format \(format); this kvd reads format \(Self.format)") }
        generation = try field("generation")
        guard Self.isValidGeneration(generation) else { throw Problem("the dataset descriptor's generation '\(generation)' is not a valid name") }
        let layoutName = try field("layout")
        guard let layout = Layout(rawValue: layoutName) else { throw Problem("the dataset descriptor names an unknown layout '\(layoutName)'") }
        self.layout = layout
        let hashName = try field("hash")
        guard let hash = BucketHash(rawValue: hashName) else { throw Problem("the dataset descriptor names an unknown hash function '\(hashName)'") }
        self.hash = hash
        bucketCount = layout == .buckets ? try number("buckets", minimum: 1) : 1
        rows = try number("rows", minimum: 0)
        loadedAt = map["loaded_at"] ?? ""
        source = map["source"] ?? ""
    }

    /// The field/value pairs to store (`HSET descriptor …`), in a fixed order.
    public var fields: [(name: String, value: String)] {
        [("format", String(Self.format)), ("generation", generation), ("layout", layout.rawValue),
         ("buckets", String(bucketCount)), ("hash", hash.rawValue), ("rows", String(rows)),
         ("loaded_at", loadedAt), ("source", source)]
    }

    /// Generation names are part of Redis key names and of log lines: keep them plain.
    public static func isValidGeneration(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64 && name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }

    /// What every Redis key of this generation starts with: `<prefix><generation>:`.
    public func keyPrefix(datasetPrefix: [UInt8]) -> [UInt8] {
        datasetPrefix + Array(generation.utf8) + [UInt8(ascii: ":")]
    }

    /// The Redis key that holds `key` (a bucket hash, or the string key), appended to `output`.
    /// `generationPrefix` is `keyPrefix(datasetPrefix:)`, computed once per generation.
    @inlinable
    public func appendRedisKey(for key: some Collection<UInt8>, generationPrefix: [UInt8], to output: inout [UInt8]) {
        output.append(contentsOf: generationPrefix)
        switch layout {
        case .buckets: appendDecimal(hash.bucket(of: key, count: bucketCount), to: &output)
        case .string: output.append(contentsOf: key)
        }
    }

    /// The generation's marker, `<prefix><generation>` (no `:`, so no bucket or string key can
    /// have its name): kvload writes it once every row of the generation is acknowledged, before
    /// the switch; kvd treats a generation without it as gone.
    public static func markerKey(generation: String, datasetPrefix: [UInt8]) -> [UInt8] {
        datasetPrefix + Array(generation.utf8)
    }

    /// kvload's list of the generations it wrote, `<prefix>generations`: a hash of generation →
    /// bucket count, registered before the first row is written, so `kvload --gc` can remove
    /// exactly what a killed run left (and nothing it did not write).
    public static func registryKey(datasetPrefix: [UInt8]) -> [UInt8] {
        datasetPrefix + Array("generations".utf8)
    }

    /// The name of bucket `index` (what kvload writes and `--gc` deletes).
    public func bucketName(_ index: Int, generationPrefix: [UInt8]) -> [UInt8] {
        var name = generationPrefix
        appendDecimal(index, to: &name)
        return name
    }
}

@inlinable
func appendDecimal(_ value: Int, to output: inout [UInt8]) {
    // A small String: no heap allocation for up to 15 digits.
    output.append(contentsOf: String(value).utf8)
}
