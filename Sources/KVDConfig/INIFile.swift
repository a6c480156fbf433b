import CInih
import KVDSystem

#if canImport(Glibc)
import Glibc
#endif

/// One `name = value` line of an INI file, with the section it sits in and its line number.
public struct INIEntry: Sendable, Equatable {
    public let section: String
    public let name: String
    public let value: String
    public let line: Int

    public init(section: String, name: String, value: String, line: Int) {
        self.section = section
        self.name = name
        self.value = value
        self.line = line
    }
}

/// An INI file as libinih reads it: every entry and every section heading, each with its line number.
///
/// libinih's handler does not receive line numbers in Debian's build, so the file is fed to
/// `ini_parse_stream` one line at a time by a reader that counts the lines it hands out; the
/// count when the handler runs is the line of the entry.
public struct INIFile: Sendable {
    /// The path used in messages (`path:line: …`).
    public let path: String
    public let entries: [INIEntry]
    /// Section headings, `[name]`, in file order with their line numbers.
    public let sections: [(name: String, line: Int)]

    /// Longest line libinih reads whole (its INI_MAX_LINE of 200, less CR, LF and NUL).
    public static let maxLineBytes = 196

    /// Reads and parses the file at `path`.
    /// - Throws: `ConfigError` when the file cannot be read or is not valid INI.
    public static func load(path: String) throws(ConfigError) -> INIFile {
        let bytes: [UInt8]
        do {
            bytes = try FileContents.read(path: path)
        } catch {
            throw ConfigError(path: path, line: nil, message: "cannot read the file: \(error.message)")
        }
        return try parse(bytes, path: path)
    }

    /// Parses INI text held in memory; `path` only names it in messages.
    /// - Throws: `ConfigError` naming the first line that is not valid INI.
    public static func parse(_ text: String, path: String) throws(ConfigError) -> INIFile {
        try parse(Array(text.utf8), path: path)
    }

    static func parse(_ bytes: [UInt8], path: String) throws(ConfigError) -> INIFile {
        let state = ParseState(bytes: bytes)
        // Check line lengths and collect section headings before libinih sees the text.
        var lineNumber = 0
        for var line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.count > maxLineBytes {
                throw ConfigError(path: path, line: lineNumber, message: "line is longer than \(maxLineBytes) bytes")
            }
            let text = String(decoding: line, as: UTF8.self).trimmingASCIIWhitespace()
            if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
                let name = String(text[text.index(after: text.startIndex)..<close]).trimmingASCIIWhitespace()
                state.sections.append((name, lineNumber))
            }
        }
        let result = withExtendedLifetime(state) {
            ini_parse_stream(iniReadLine, Unmanaged.passUnretained(state).toOpaque(), iniHandleEntry,
                             Unmanaged.passUnretained(state).toOpaque())
        }
        if result > 0 {
            throw ConfigError(path: path, line: Int(result), message: "not a valid INI line (expected [section], name = value, or a comment)")
        } else if result < 0 {
            throw ConfigError(path: path, line: nil, message: "libinih could not parse the file (error \(result))")
        }
        return INIFile(path: path, entries: state.entries, sections: state.sections)
    }
}

/// The reader's and handler's shared state while libinih runs.
private final class ParseState {
    let bytes: [UInt8]
    var offset = 0
    var line = 0
    var entries: [INIEntry] = []
    var sections: [(name: String, line: Int)] = []
    init(bytes: [UInt8]) { self.bytes = bytes }
}

/// fgets over `ParseState.bytes`: copies one line (with its LF) into `buffer`, counting lines.
private let iniReadLine: ini_reader = { buffer, size, stream in
    guard let buffer, let stream, size > 1 else { return nil }
    let state = Unmanaged<ParseState>.fromOpaque(stream).takeUnretainedValue()
    guard state.offset < state.bytes.count else { return nil }
    var written = 0
    let capacity = Int(size) - 1
    while written < capacity, state.offset < state.bytes.count {
        let byte = state.bytes[state.offset]
        buffer[written] = CChar(bitPattern: byte)
        written += 1
        state.offset += 1
        if byte == UInt8(ascii: "\n") { break }
    }
    buffer[written] = 0
    state.line += 1
    return buffer
}

private let iniHandleEntry: ini_handler = { user, section, name, value in
    guard let user else { return 0 }
    let state = Unmanaged<ParseState>.fromOpaque(user).takeUnretainedValue()
    state.entries.append(INIEntry(
        section: section.map { String(cString: $0) } ?? "",
        name: name.map { String(cString: $0) } ?? "",
        value: value.map { String(cString: $0) } ?? "",
        line: state.line
    ))
    return 1
}

extension StringProtocol {
    func trimmingASCIIWhitespace() -> String {
        // "\r\n" is one Character, equal to neither "\r" nor "\n": name it too.
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
