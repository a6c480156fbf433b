// The INI reader (KVDConfig.INIFile) and the settings built from it. Properties: a NUL byte anywhere
// is refused (libinih cut values there: issue 9); line numbers lie inside the file; every accepted
// file, written back as `[section]` and `name = "value"` lines (quotes and backslashes escaped),
// reads back to the same entries; building a Configuration never crashes.
import FuzzSupport
import KVDConfig

func fuzzINI(_ input: [UInt8]) {
    let text = String(decoding: input, as: UTF8.self)
    guard let file = try? INIFile.parse(text, path: "fuzz.conf") else { return }
    check(!text.utf8.contains(0), "a file holding a NUL byte was accepted: \(file.entries)")
    let lineCount = text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).count
    for entry in file.entries {
        check((1...lineCount).contains(entry.line), "entry on line \(entry.line) of a \(lineCount)-line file")
    }
    for section in file.sections {
        check((1...lineCount).contains(section.line), "section on line \(section.line) of a \(lineCount)-line file")
    }

    var written = ""
    var section = ""
    for entry in file.entries {
        if entry.section != section {
            written += "[\(entry.section)]\n"
            section = entry.section
        }
        var quoted = ""
        for scalar in entry.value.unicodeScalars {
            if scalar == "\\" || scalar == "\"" { quoted.unicodeScalars.append("\\") }
            quoted.unicodeScalars.append(scalar)
        }
        written += "\(entry.name) = \"\(quoted)\"\n"
    }
    do {
        let again = try INIFile.parse(written, path: "again.conf")
        let pairs = { (f: INIFile) in f.entries.map { [$0.section, $0.name, $0.value] } }
        check(pairs(again) == pairs(file), "entries \(pairs(file)) read back as \(pairs(again)) from \(written.debugDescription)")
    } catch {
        check(false, "accepted entries \(file.entries) written back as \(written.debugDescription) were refused: \(error)")
    }

    // password_file would read whatever file the input names: leave those inputs at the INI level.
    if !file.entries.contains(where: { $0.name == "password_file" }) {
        _ = try? Configuration(ini: file, credentialsDirectory: nil)
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func testOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    fuzzINI(fuzzInput(data, size))
    return 0
}
