/// Fields of Redis's `INFO` text (`name:value` lines ended by CRLF).
///
/// Works on bytes, not `Character`s: in Swift `"\r\n"` is one `Character`, equal to neither
/// `"\r"` nor `"\n"`, so a split on either character finds no line at all.
public enum RedisInfo {
    /// The value of `field` in `text`, or nil when no line names it.
    public static func value(of field: String, in text: some Collection<UInt8>) -> String? {
        let name = Array(field.utf8) + [UInt8(ascii: ":")]
        var line: [UInt8] = []
        var result: String?
        func finish() {
            if result == nil, line.count >= name.count, line.starts(with: name) {
                result = String(decoding: line.dropFirst(name.count), as: UTF8.self)
            }
            line.removeAll(keepingCapacity: true)
        }
        for byte in text {
            if byte == UInt8(ascii: "\r") || byte == UInt8(ascii: "\n") { finish() } else { line.append(byte) }
        }
        finish()
        return result
    }
}
