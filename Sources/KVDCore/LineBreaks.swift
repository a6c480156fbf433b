extension String {
    /// The same text with every CR and LF replaced by a space: one log event stays on one line.
    ///
    /// Works by Unicode scalar: in Swift `"\r\n"` is one `Character`, equal to neither `"\r"` nor `"\n"`.
    public func replacingLineBreaks() -> String {
        guard unicodeScalars.contains(where: { $0 == "\n" || $0 == "\r" }) else { return self }
        var result = String.UnicodeScalarView()
        for scalar in unicodeScalars { result.append(scalar == "\n" || scalar == "\r" ? " " : scalar) }
        return String(result)
    }
}
