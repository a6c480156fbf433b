#if canImport(Glibc)
import Glibc
#endif

/// Why a password file was refused; `reason` never shows the file's content.
public struct SecretError: Error, CustomStringConvertible, Sendable, Equatable {
    public let reason: String
    public var description: String { reason }
}

/// Secrets read from files: kvd's `[redis] password_file` and kvload's `--password-file` follow the same rules.
public enum Secrets {
    /// systemd's `$CREDENTIALS_DIRECTORY`, where `LoadCredential=` puts the unit's secrets (nil when unset or empty).
    public static var credentialsDirectory: String? {
        getenv("CREDENTIALS_DIRECTORY").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Reads a password file: the whole file, without its final line break (LF or CRLF), which must be
    /// one non-empty line of UTF-8. A relative name is looked up in `credentialsDirectory`.
    /// - Returns: the path read and the secret.
    /// - Throws: `SecretError` when the name is relative with no credentials directory, the file cannot be
    ///   read, or it is empty, holds more than one line or is not UTF-8.
    /// The largest password file read (a guard against `password_file = /dev/zero`).
    public static let maxPasswordFileBytes = 64 << 10

    public static func readPasswordFile(_ name: String, credentialsDirectory: String?) throws(SecretError) -> (path: String, secret: String) {
        let path: String
        if name.hasPrefix("/") {
            path = name
        } else if let credentialsDirectory {
            path = credentialsDirectory + "/" + name
        } else {
            throw SecretError(reason: "'\(name)' is relative and $CREDENTIALS_DIRECTORY is not set (give an absolute path, or load it with LoadCredential=)")
        }
        var bytes: [UInt8]
        do {
            bytes = try FileContents.read(path: path, maxBytes: maxPasswordFileBytes)
        } catch {
            throw SecretError(reason: "cannot read '\(path)': \(error.message)")
        }
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !bytes.isEmpty else { throw SecretError(reason: "'\(path)' is empty") }
        guard !bytes.contains(UInt8(ascii: "\n")), let secret = String(validating: bytes, as: UTF8.self) else {
            throw SecretError(reason: "'\(path)' must hold the password alone, on one line, in UTF-8")
        }
        return (path, secret)
    }
}
