#if canImport(Glibc)
import Glibc
#endif

/// Unbuffered writes to the standard streams (progress lines, log lines, messages from worker threads).
public enum StandardStreams {
    /// Whether standard error is a terminal (a progress bar redrawn in place) or not (periodic lines).
    public static var errorIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }

    /// Writes `text` to standard error as it is (no newline added), in one write(2) call where possible.
    public static func writeError(_ text: String) { write(STDERR_FILENO, text) }

    /// Writes `text` to standard output as it is, bypassing `print`'s buffer.
    public static func writeOutput(_ text: String) { write(STDOUT_FILENO, text) }

    private static func write(_ fd: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let count = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if count < 0 && errno == EINTR { continue }
                guard count > 0 else { return }
                offset += count
            }
        }
    }
}
