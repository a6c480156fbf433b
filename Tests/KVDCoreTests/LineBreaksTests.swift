import KVDCore
import Testing

@Suite("One log event, one line")
struct LineBreaksTests {
    @Test func crlfLfAndCrAllBecomeSpaces() {
        #expect("a\r\nb\nc\rd".replacingLineBreaks() == "a  b c d")
        #expect("MOVED 1 127.0.0.1:7000\r\n".replacingLineBreaks() == "MOVED 1 127.0.0.1:7000  ")
        #expect("plain".replacingLineBreaks() == "plain")
    }
}
