// The only kvload code that calls zlib.

import CZlib

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
