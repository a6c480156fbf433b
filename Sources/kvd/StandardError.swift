#if canImport(Glibc)
import Glibc
#endif

/// Plain lines to stderr before logging is set up (configuration errors).
enum StandardError {
    static func write(_ line: String) {
        var text = line + "\n"
        text.withUTF8 { _ = Glibc.write(STDERR_FILENO, $0.baseAddress, $0.count) }
    }
}
