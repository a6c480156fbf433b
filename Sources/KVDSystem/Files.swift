#if canImport(Glibc)
import Glibc
#endif

/// Whole-file reads straight into a byte array (no intermediate `Data` copy: key files can be gigabytes).
public enum FileContents {
    /// The file's bytes.
    /// - Parameter maxBytes: a larger file (or an endless one, such as /dev/zero) is an error, not read to its end.
    /// - Throws: `SystemError` whose `code` is the errno (ENOENT, EACCES, EISDIR, ...) and whose operation is the path.
    public static func read(path: String, maxBytes: Int = .max) throws(SystemError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError(operation: path, errno: errno) }
        defer { Glibc.close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw SystemError(operation: path, errno: errno) }
        // One byte more than the size, so that reaching the end needs no reallocation.
        var bytes = [UInt8](repeating: 0, count: min(max(Int(status.st_size), 0), maxBytes) + 1)
        var filled = 0
        while true {
            if filled == bytes.count { bytes.append(contentsOf: repeatElement(0, count: max(bytes.count, 65_536))) }
            let count = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError(operation: path, errno: errno)
            }
            if count == 0 { break }
            filled += count
            if filled > maxBytes { throw SystemError(operation: path, message: "larger than \(maxBytes) bytes") }
        }
        bytes.removeSubrange(filled...)
        return bytes
    }

    /// Whether something exists at `path` (F_OK).
    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }
}

/// A file (or standard output) written with plain write(2) calls from a byte array.
public final class FileSink {
    private let fd: Int32
    private let ownsDescriptor: Bool
    /// The name used in error messages.
    public let name: String

    /// Standard output.
    public init() {
        fd = STDOUT_FILENO
        ownsDescriptor = false
        name = "standard output"
    }

    /// Creates or truncates `path` (mode 0644).
    /// - Throws: `SystemError` naming the path.
    public init(path: String) throws(SystemError) {
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError(operation: "open \(path)", errno: errno) }
        ownsDescriptor = true
        name = path
    }

    /// Writes all of `bytes`.
    /// - Throws: `SystemError` naming the file when a write fails (disk full, closed pipe).
    public func write(_ bytes: [UInt8]) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 {
                if errno == EINTR { continue }
                throw SystemError(operation: "write \(name)", errno: errno)
            }
            offset += count
        }
    }

    /// Closes the file, reporting a failure of the final flush to disk (e.g. quota) as an error.
    public func close() throws(SystemError) {
        guard ownsDescriptor else { return }
        if Glibc.close(fd) != 0 { throw SystemError(operation: "close \(name)", errno: errno) }
    }
}

/// A file (or standard input, `-`) read in chunks with plain read(2) calls.
public final class InputFile {
    /// The path as given (`-` for standard input).
    public let path: String
    private let descriptor: Int32
    private let ownsDescriptor: Bool
    /// The file's size when it is a regular file (nil for a pipe, a terminal or standard input from one).
    public let regularFileSize: Int?

    /// Opens `path` for reading; `-` means standard input.
    /// - Throws: `SystemError` whose operation is the path: the errno of open(2), or "is a directory".
    public init(path: String) throws(SystemError) {
        self.path = path
        if path == "-" {
            descriptor = STDIN_FILENO
            ownsDescriptor = false
        } else {
            descriptor = open(path, O_RDONLY | O_CLOEXEC)
            ownsDescriptor = true
            if descriptor < 0 { throw SystemError(operation: path, errno: errno) }
        }
        var info = stat()
        let known = fstat(descriptor, &info) == 0
        regularFileSize = known && (info.st_mode & S_IFMT) == S_IFREG ? Int(info.st_size) : nil
        if known && (info.st_mode & S_IFMT) == S_IFDIR {
            if ownsDescriptor { _ = Glibc.close(descriptor) }
            throw SystemError(operation: path, message: "is a directory")
        }
    }

    /// Waits up to `timeoutMs` for the file to have data (or end-of-file, or an error) to read, so that a
    /// caller blocked on a pipe or a terminal can look at a stop flag between waits. A regular file is
    /// always ready. False when the time ran out or a signal arrived (EINTR).
    public func waitReadable(timeoutMs: Int32) -> Bool {
        if regularFileSize != nil { return true }
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, timeoutMs) > 0
    }

    /// Reads up to `count` bytes into `buffer[offset...]` (the buffer is already that large).
    /// - Returns: the number of bytes read; 0 at the end of the file.
    /// - Throws: `SystemError` with read(2)'s errno.
    public func read(into buffer: inout [UInt8], offset: Int, count: Int) throws(SystemError) -> Int {
        precondition(offset + count <= buffer.count)
        while true {
            let n = buffer.withUnsafeMutableBytes { raw in Glibc.read(descriptor, raw.baseAddress! + offset, count) }
            if n >= 0 { return n }
            if errno != EINTR { throw SystemError(operation: path, errno: errno) }
        }
    }

    deinit {
        if ownsDescriptor { _ = Glibc.close(descriptor) }
    }
}
