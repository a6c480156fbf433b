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

/// An INI file: every entry and every section heading, each with its line number.
///
/// The syntax is the one Debian's configuration files use, read by kvd's own parser (libinih, used
/// before, caps lines at 200 bytes in Debian's build, cuts values at a NUL byte, and knows only `;`
/// inline comments):
/// - `[section]` headings; `name = value` (or `name: value`) entries; spaces and tabs around names
///   and values are ignored; a trailing CR is dropped; a UTF-8 byte order mark is skipped.
/// - A line whose first non-blank character is `;` or `#` is a comment, and so is everything from
///   a `;` or `#` that follows a space or tab (` ; note`, ` # note`). A `;` or `#` inside a word
///   (`pa#ss`) is part of the value.
/// - A value in double quotes is taken as written, comment characters and outer spaces included;
///   inside the quotes `\"` is a quote and `\\` a backslash. This is how a password holding ` ;`
///   or ` #` is written.
/// - No line-length limit; a NUL byte anywhere is an error (it would silently end a C string).
public struct INIFile: Sendable {
    /// The path used in messages (`path:line: …`).
    public let path: String
    public let entries: [INIEntry]
    /// Section headings, `[name]`, in file order with their line numbers.
    public let sections: [(name: String, line: Int)]

    /// The largest configuration file read (a guard against pointing `--config` at a device).
    public static let maxFileBytes = 1 << 20

    /// Reads and parses the file at `path`.
    /// - Throws: `ConfigError` when the file cannot be read or is not valid INI.
    public static func load(path: String) throws(ConfigError) -> INIFile {
        let bytes: [UInt8]
        do {
            bytes = try FileContents.read(path: path, maxBytes: maxFileBytes)
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
        var entries: [INIEntry] = []
        var sections: [(name: String, line: Int)] = []
        var section = ""
        var body = bytes[...]
        if body.starts(with: [0xEF, 0xBB, 0xBF]) { body = body.dropFirst(3) }
        var lineNumber = 0
        for var line in body.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            func fail(_ message: String) -> ConfigError { ConfigError(path: path, line: lineNumber, message: message) }
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            if line.contains(0) { throw fail("the line holds a NUL byte") }
            line = line.trimmingBlanks()
            guard let first = line.first, first != UInt8(ascii: ";"), first != UInt8(ascii: "#") else { continue }
            if first == UInt8(ascii: "[") {
                guard let close = line.firstIndex(of: UInt8(ascii: "]")) else { throw fail("a section heading needs a closing ']'") }
                guard line[line.index(after: close)...].trimmingBlanks().isCommentOrEmpty else {
                    throw fail("unexpected text after the section heading")
                }
                section = String(decoding: line[line.index(after: line.startIndex)..<close].trimmingBlanks(), as: UTF8.self)
                sections.append((section, lineNumber))
                continue
            }
            guard let equals = line.firstIndex(where: { $0 == UInt8(ascii: "=") || $0 == UInt8(ascii: ":") }) else {
                throw fail("not a valid INI line (expected [section], name = value, or a comment)")
            }
            let name = line[..<equals].trimmingBlanks()
            guard !name.isEmpty else { throw fail("not a valid INI line (no name before '=')") }
            // Key names are plain words: a stray byte order mark, a bracket or a space in a name
            // would make a line that reads back differently (found by the fuzz-ini harness).
            guard name.allSatisfy(Self.isNameByte) else {
                throw fail("a key name may hold only letters, digits, '_', '-' and '.'")
            }
            let value: String
            switch parseValue(line[line.index(after: equals)...].trimmingBlanks()) {
            case .success(let parsed): value = parsed
            case .failure(let reason): throw fail(reason.text)
            }
            entries.append(INIEntry(section: section, name: String(decoding: name, as: UTF8.self), value: value, line: lineNumber))
        }
        return INIFile(path: path, entries: entries, sections: sections)
    }

    private struct ValueProblem: Error { let text: String }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
    }

    /// A value as written after `=`: quoted, or up to an inline comment.
    private static func parseValue(_ raw: ArraySlice<UInt8>) -> Result<String, ValueProblem> {
        if raw.first == UInt8(ascii: "\"") {
            var result: [UInt8] = []
            var index = raw.index(after: raw.startIndex)
            while index < raw.endIndex {
                let byte = raw[index]
                if byte == UInt8(ascii: "\\") {
                    let next = raw.index(after: index)
                    guard next < raw.endIndex, raw[next] == UInt8(ascii: "\"") || raw[next] == UInt8(ascii: "\\") else {
                        return .failure(ValueProblem(text: "in a quoted value, a backslash must be followed by \\\" or \\\\"))
                    }
                    result.append(raw[next])
                    index = raw.index(after: next)
                } else if byte == UInt8(ascii: "\"") {
                    guard raw[raw.index(after: index)...].trimmingBlanks().isCommentOrEmpty else {
                        return .failure(ValueProblem(text: "unexpected text after the closing quote"))
                    }
                    return .success(String(decoding: result, as: UTF8.self))
                } else {
                    result.append(byte)
                    index = raw.index(after: index)
                }
            }
            return .failure(ValueProblem(text: "the quoted value has no closing quote"))
        }
        var end = raw.endIndex
        var previous: UInt8 = UInt8(ascii: " ")
        for index in raw.indices {
            let byte = raw[index]
            if (byte == UInt8(ascii: ";") || byte == UInt8(ascii: "#")) && (previous == UInt8(ascii: " ") || previous == UInt8(ascii: "\t")) {
                end = index
                break
            }
            previous = byte
        }
        return .success(String(decoding: raw[..<end].trimmingBlanks(), as: UTF8.self))
    }
}

private extension ArraySlice<UInt8> {
    /// Without leading and trailing spaces and tabs.
    func trimmingBlanks() -> ArraySlice<UInt8> {
        let isBlank = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
        guard let first = firstIndex(where: { !isBlank($0) }), let last = lastIndex(where: { !isBlank($0) }) else { return [] }
        return self[first...last]
    }

    /// Empty, or a comment (what may follow a heading or a closing quote).
    var isCommentOrEmpty: Bool { isEmpty || first == UInt8(ascii: ";") || first == UInt8(ascii: "#") }
}
