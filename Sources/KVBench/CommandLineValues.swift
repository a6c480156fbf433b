import Foundation

/// A run length: plain seconds, or a number with `ms`, `s` or `m` (`--duration`).
public struct RunLength: Sendable, Equatable {
    public let seconds: Double

    /// Nil for anything but a positive number with an optional unit.
    public init?(parsing text: String) {
        let units: [(String, Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        var number = Substring(text), scale = 1.0
        for (suffix, factor) in units where number.hasSuffix(suffix) {
            number = number.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value > 0, value.isFinite else { return nil }
        seconds = value * scale
    }
}

/// The parts of an `http://host[:port][/path]` URL kvbench uses (`--url`).
public struct ServerURL: Sendable, Equatable {
    /// The host to resolve: a name, or an address without brackets.
    public let host: String
    public let port: Int
    /// The Host header: `host:port` (IPv6 addresses in brackets).
    public let hostHeader: String
    /// `/path/get/`: the URL's path without its trailing slashes, then `/get/`.
    public let pathPrefix: String
    /// The URL's path without its trailing slashes (empty for `http://host:port`).
    public let basePath: String

    /// Nil unless `text` is an http URL with a host.
    public init?(_ text: String) {
        guard let components = URLComponents(string: text), components.scheme == "http",
              let host = components.host, !host.isEmpty else { return nil }
        // URLComponents keeps the brackets of an IPv6 literal; getaddrinfo wants the bare address.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        port = components.port ?? 80
        let bracketed = self.host.contains(":") ? "[\(self.host)]" : self.host
        hostHeader = "\(bracketed):\(port)"
        var path = components.percentEncodedPath
        while path.hasSuffix("/") { path.removeLast() }
        basePath = path
        pathPrefix = path + "/get/"
    }
}

/// An extra request header, `Name: value` (`-H`), refused when it could break the request (a line break, no
/// name).
public struct HeaderLine: Sendable, Equatable {
    public let line: String

    /// Nil unless `text` is `Name: value` with a token name and no CR or LF.
    public init?(parsing text: String) {
        guard let colon = text.firstIndex(of: ":"), colon > text.startIndex,
              !text.contains(where: { $0 == "\r" || $0 == "\n" || $0 == "\r\n" }),
              text[..<colon].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "!#$%&'*+-.^_`|~".contains($0)) }) else { return nil }
        line = text
    }
}

/// A value length range, `MIN-MAX` or one number `N` (`--value-bytes`); values are at least one byte.
public struct ByteRange: Sendable, Equatable {
    public let range: ClosedRange<Int>

    public init(_ range: ClosedRange<Int>) { self.range = range }

    /// Nil unless `1 <= MIN <= MAX`.
    public init?(parsing text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count <= 2, let low = Int(parts[0]), let high = Int(parts[parts.count - 1]), low >= 1, low <= high else {
            return nil
        }
        range = low...high
    }
}
