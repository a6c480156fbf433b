import CZlib

#if canImport(Glibc)
import Glibc
#endif

/// A failure reading an input file: `path: message` (exit code 66 when it cannot be opened, 74 when a read fails).
public struct InputError: Error, Sendable, CustomStringConvertible {
    /// What went wrong, which decides the exit code.
    public enum Kind: Sendable { case cannotOpen, readFailed, corruptGzip }
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

/// Reads a file (or standard input, `-`) with plain `read(2)` calls.
public final class FileSource: ByteSource {
    public let path: String
    private var descriptor: Int32
    private let ownsDescriptor: Bool
    public private(set) var bytesConsumed = 0
    public let totalBytes: Int?

    /// Opens `path` for reading; `-` means standard input.
    /// - Throws: `InputError.cannotOpen` when the file cannot be opened.
    public init(path: String) throws(InputError) {
        self.path = path
        if path == "-" {
            descriptor = STDIN_FILENO
            ownsDescriptor = false
        } else {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            ownsDescriptor = true
            if descriptor < 0 {
                throw InputError(.cannotOpen, path: path, String(cString: strerror(errno)))
            }
        }
        var info = stat()
        if fstat(descriptor, &info) == 0 && (info.st_mode & S_IFMT) == S_IFREG {
            totalBytes = Int(info.st_size)
        } else {
            totalBytes = nil
        }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            if ownsDescriptor { _ = Glibc.close(descriptor) }
            throw InputError(.cannotOpen, path: path, "is a directory")
        }
    }

    public func read(into buffer: inout [UInt8], offset: Int, count: Int) throws(InputError) -> Int {
        precondition(offset + count <= buffer.count)
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in
                Glibc.read(descriptor, raw.baseAddress! + offset, count)
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw InputError(.readFailed, path: path, "read failed: \(String(cString: strerror(errno)))")
            }
            bytesConsumed += n
            return n
        }
    }

    deinit {
        if ownsDescriptor && descriptor >= 0 { _ = Glibc.close(descriptor) }
    }
}

/// Decompresses gzip input on the fly (concatenated gzip members too), in constant memory.
public final class GzipSource: ByteSource {
    private var compressed: any ByteSource
    private let path: String
    private var stream = z_stream()
    private var input: [UInt8]
    private var inputStart = 0
    private var inputEnd = 0
    private var inputEnded = false
    private var streamEnded = false

    public var bytesConsumed: Int { compressed.bytesConsumed }
    public var totalBytes: Int? { compressed.totalBytes }

    /// Wraps `compressed`, whose bytes are gzip data.
    public init(_ compressed: any ByteSource, path: String, chunkBytes: Int = 1 << 18) throws(InputError) {
        self.compressed = compressed
        self.path = path
        input = [UInt8](repeating: 0, count: chunkBytes)
        // 15 + 16: a gzip wrapper (not zlib), the largest window.
        let status = inflateInit2_(&stream, 15 + 16, zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        if status != Z_OK { throw InputError(.corruptGzip, path: path, "zlib initialisation failed (\(status))") }
    }

    public func read(into buffer: inout [UInt8], offset: Int, count: Int) throws(InputError) -> Int {
        precondition(offset + count <= buffer.count)
        while true {
            if inputStart == inputEnd && !inputEnded {
                inputStart = 0
                inputEnd = try compressed.read(into: &input, offset: 0, count: input.count)
                if inputEnd == 0 { inputEnded = true }
            }
            if inputStart == inputEnd && inputEnded {
                if !streamEnded { throw InputError(.corruptGzip, path: path, "gzip data ends early (truncated file)") }
                return 0
            }
            if streamEnded {
                // Another gzip member follows (as `cat a.gz b.gz` makes): start over.
                guard inflateReset(&stream) == Z_OK else { throw InputError(.corruptGzip, path: path, "zlib reset failed") }
                streamEnded = false
            }
            let (status, produced, used) = input.withUnsafeMutableBytes { inRaw in
                buffer.withUnsafeMutableBytes { outRaw in
                    stream.next_in = inRaw.baseAddress!.assumingMemoryBound(to: Bytef.self) + inputStart
                    stream.avail_in = uInt(inputEnd - inputStart)
                    stream.next_out = outRaw.baseAddress!.assumingMemoryBound(to: Bytef.self) + offset
                    stream.avail_out = uInt(count)
                    let status = inflate(&stream, Z_NO_FLUSH)
                    let produced = count - Int(stream.avail_out)
                    let used = (inputEnd - inputStart) - Int(stream.avail_in)
                    stream.next_in = nil
                    stream.next_out = nil
                    return (status, produced, used)
                }
            }
            inputStart += used
            switch status {
            case Z_STREAM_END:
                streamEnded = true
            case Z_OK, Z_BUF_ERROR:
                break
            default:
                let reason = stream.msg.map { String(cString: $0) } ?? "error \(status)"
                throw InputError(.corruptGzip, path: path, "corrupt gzip data: \(reason)")
            }
            if produced > 0 { return produced }
        }
    }

    deinit { inflateEnd(&stream) }
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
public func openInput(path: String) throws(InputError) -> any ByteSource {
    let file = try FileSource(path: path)
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
