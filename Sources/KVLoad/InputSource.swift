import KVDSystem

/// A failure reading an input file: `path: message` (exit code 66 when it cannot be opened, 74 when a read fails).
public struct InputError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, which decides the exit code.
    public enum Kind: Sendable { case cannotOpen, readFailed, corruptGzip, interrupted }
    public let kind: Kind
    public let path: String
    public let message: String

    public init(_ kind: Kind, path: String, _ message: String) {
        self.kind = kind
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// A stream of input bytes, read in chunks into a caller-owned buffer.
public protocol ByteSource {
    /// Reads up to `count` bytes into `buffer[offset...]` (the buffer is already that large).
    /// - Returns: the number of bytes read; 0 at the end of the input.
    mutating func read(into buffer: inout [UInt8], offset: Int, count: Int) throws(InputError) -> Int
    /// Bytes of the underlying file consumed so far (compressed bytes for gzip), for progress.
    var bytesConsumed: Int { get }
    /// The size of the underlying file when it is a regular file, for progress and ETA.
    var totalBytes: Int? { get }
}

/// Reads a file (or standard input, `-`) through KVDSystem's `InputFile`.
///
/// While a read from a pipe or a terminal waits for data, `stopSignal` is polled (every 100 ms): a SIGINT
/// then ends the wait (`InputError.Kind.interrupted`) instead of being ignored until the writer sends more.
public final class FileSource: ByteSource {
    private let file: InputFile
    private let stopSignal: @Sendable () -> Int32
    public private(set) var bytesConsumed = 0
    public var totalBytes: Int? { file.regularFileSize }
    public var path: String { file.path }

    /// Opens `path` for reading; `-` means standard input.
    /// - Parameter stopSignal: nonzero once the read should give up waiting (a stop signal arrived).
    /// - Throws: `InputError.cannotOpen` when the file cannot be opened (or is a directory).
    public init(path: String, stopSignal: @escaping @Sendable () -> Int32 = { 0 }) throws(InputError) {
        self.stopSignal = stopSignal
        do {
            file = try InputFile(path: path)
        } catch {
            throw InputError(.cannotOpen, path: path, error.message)
        }
    }

    public func read(into buffer: inout [UInt8], offset: Int, count: Int) throws(InputError) -> Int {
        while !file.waitReadable(timeoutMs: 100) {
            if stopSignal() != 0 { throw InputError(.interrupted, path: path, "interrupted while waiting for input") }
        }
        let n: Int
        do {
            n = try file.read(into: &buffer, offset: offset, count: count)
        } catch {
            throw InputError(.readFailed, path: path, "read failed: \(error.message)")
        }
        bytesConsumed += n
        return n
    }
}

/// Bytes already read from a source (to look at them) followed by the rest of that source.
final class PrefixedSource: ByteSource {
    private var prefix: [UInt8]
    private var rest: any ByteSource

    init(prefix: [UInt8], rest: any ByteSource) {
        self.prefix = prefix
        self.rest = rest
    }

    var bytesConsumed: Int { rest.bytesConsumed - prefix.count }
    var totalBytes: Int? { rest.totalBytes }

    func read(into buffer: inout [UInt8], offset: Int, count: Int) throws(InputError) -> Int {
        if prefix.isEmpty { return try rest.read(into: &buffer, offset: offset, count: count) }
        let n = min(count, prefix.count)
        for index in 0..<n { buffer[offset + index] = prefix[index] }
        prefix.removeFirst(n)
        return n
    }
}

/// Opens `path` (`-`: standard input) as a byte source, decompressing it on the fly when it is
/// gzip data (recognised by its magic bytes, 1f 8b, whatever the name).
/// - Parameter stopSignal: polled while a pipe or terminal has no data (see `FileSource`).
public func openInput(path: String, stopSignal: @escaping @Sendable () -> Int32 = { 0 }) throws(InputError) -> any ByteSource {
    let file = try FileSource(path: path, stopSignal: stopSignal)
    var head = [UInt8](repeating: 0, count: 2)
    var got = 0
    while got < 2 {
        let n = try file.read(into: &head, offset: got, count: 2 - got)
        if n == 0 { break }
        got += n
    }
    head.removeLast(2 - got)
    let source = PrefixedSource(prefix: head, rest: file)
    if head == [0x1F, 0x8B] { return try GzipSource(source, path: path) }
    return source
}
