import KVDCore
import Testing

/// `POST /mget`'s pure parts: the JSON array of keys, the key rules, the answer's body.
@Suite struct JSONStringArrayTests {
    func parse(_ text: String, max: Int = .max) throws(JSONArrayParseError) -> [String] {
        try JSONStringArray.parse(Array(text.utf8), maxElements: max).map { String(decoding: $0, as: UTF8.self) }
    }

    func reason(_ text: String) -> JSONArrayError? {
        do {
            _ = try parse(text)
            return nil
        } catch {
            guard case .malformed(let problem) = error else { return nil }
            return problem
        }
    }

    @Test func stringsInOrderWithDuplicatesAndWhitespace() throws {
        #expect(try parse(#"["a","b","a"]"#) == ["a", "b", "a"])
        #expect(try parse(" \t\r\n[ \"x\" ,\n\"y\"\t] \n") == ["x", "y"])
        #expect(try parse("[]") == [])
        #expect(try parse(" [ \n ] ") == [])
        #expect(try parse(#"[""]"#) == [""])
    }

    @Test func escapesAndSurrogatePairsDecode() throws {
        #expect(try parse(#"["a\"b","\\","\/","\n\t","\u00e9","\ud83d\ude00","é"]"#) == ["a\"b", "\\", "/", "\n\t", "é", "😀", "é"])
        let bytes = try JSONStringArray.parse(Array(#"["\u0000"]"#.utf8))
        #expect(bytes == [[0]])
    }

    /// Keys are bytes, as a GET's percent-decoded path is: bytes that are not UTF-8 inside a string
    /// (no JSON escape can write them) are taken as they are, so a binary key can be batched.
    @Test func bytesThatAreNotUTF8AreKeptAsTheyAre() throws {
        let body: [UInt8] = Array(#"["a"#.utf8) + [0xFF, 0xC3] + Array(#"b","é"]"#.utf8)
        #expect(try JSONStringArray.parse(body) == [[0x61, 0xFF, 0xC3, 0x62], [0xC3, 0xA9]])
    }

    @Test func nonStringsAndNestingAreRefusedNamingTheElement() {
        #expect(reason(#"["a",1]"#) == JSONArrayError("expected a string, found a number", index: 1))
        #expect(reason(#"[["a"]]"#) == JSONArrayError("expected a string, found a nested array", index: 0))
        #expect(reason(#"[{"a":1}]"#) == JSONArrayError("expected a string, found an object", index: 0))
        #expect(reason(#"["a",null]"#) == JSONArrayError("expected a string, found null", index: 1))
        #expect(reason(#"[true]"#) == JSONArrayError("expected a string, found a boolean", index: 0))
        #expect(reason(#"["a",]"#) == JSONArrayError("expected a string, found ']' after ','", index: 1))
    }

    @Test func malformedJSONIsRefused() {
        for text in ["", " ", "{}", #""a""#, "[", #"["a""#, #"["a" "b"]"#, #"["a"]]"#, #"["a"] x"#, #"["a"],"#,
                     #"["a\q"]"#, #"["\ud83d"]"#, "[\"a\u{1}\"]", #"["a"#, "[,]", "null"] {
            #expect(reason(text) != nil, "\(text)")
        }
        #expect(reason(#"["a"] x"#) == JSONArrayError("unexpected bytes after the array"))
        #expect(reason(#"["ok","\ud83d"]"#)?.index == 1)
        #expect(reason(#"["ok","\ud83d"]"#)?.message == "element 1: unpaired UTF-16 surrogate in a \\u escape")
    }

    @Test func tooManyElementsStopEarly() {
        #expect(throws: JSONArrayParseError.tooMany(limit: 2)) { try parse(#"["a","b","c"]"#, max: 2) }
        #expect((try? parse(#"["a","b"]"#, max: 2)) == ["a", "b"])
        // Counted before the rest is read: garbage after the limit is not reached.
        #expect(throws: JSONArrayParseError.tooMany(limit: 1)) { try parse(#"["a","b", garbage"#, max: 1) }
    }
}

@Suite struct MgetRouteTests {
    let router = Router(maxKeyBytes: 4, mgetMaxKeys: 3, mgetMaxBodyBytes: 100)

    @Test func postMgetIsABatchOtherMethodsAre405WithAllowPost() {
        #expect(router.route(method: "POST", path: Array("/mget".utf8), wantsRaw: false) == .batch)
        for method in ["GET", "HEAD", "PUT", "DELETE"] {
            #expect(router.route(method: method, path: Array("/mget".utf8), wantsRaw: false) == .reply(.mgetMethodNotAllowed))
        }
        #expect(router.reply(.mgetMethodNotAllowed).headers == [HTTPHeader("Allow", "POST")])
        #expect(router.route(method: "POST", path: Array("/mget/".utf8), wantsRaw: false) == .reply(.notFound))
        #expect(Router.takesBody(method: "POST", path: Array("/mget".utf8)))
        #expect(!Router.takesBody(method: "POST", path: Array("/get/a".utf8)))
        #expect(!Router.takesBody(method: "PUT", path: Array("/mget".utf8)))
    }

    @Test func keysFollowTheGetRulesAndTheLimits() {
        #expect(router.mgetKeys(Array(#"["a","abcd","a"]"#.utf8)) == .keys([[97], Array("abcd".utf8), [97]]))
        #expect(router.mgetKeys(Array("[]".utf8)) == .keys([]))
        #expect(router.mgetKeys(Array(#"["a","b","c","d"]"#.utf8)) == .refused(.mgetTooManyKeys))
        #expect(router.mgetKeys(Array(#"["a","abcde"]"#.utf8)) == .invalid(.detail(400, "Invalid key at index 1: longer than 4 bytes")))
        #expect(router.mgetKeys(Array(#"["a",""]"#.utf8)) == .invalid(.detail(400, "Invalid key at index 1: empty")))
        #expect(router.mgetKeys(Array(#"["a",2]"#.utf8))
                == .invalid(.detail(400, "Invalid JSON array of keys: element 1: expected a string, found a number")))
        #expect(router.reply(.mgetTooManyKeys) == .detail(413, "More than 3 keys in one request"))
        #expect(router.reply(.mgetBodyTooLarge).status == 413)
    }
}

@Suite struct MgetAnswerTests {
    func body(_ values: [[UInt8]?]) -> String? {
        var answer = MgetAnswer()
        for value in values where !answer.append(value) { return nil }
        return String(decoding: answer.finish(), as: UTF8.self)
    }

    @Test func valuesAsJSONStringsAndNullInOrder() {
        #expect(body([]) == "[]")
        #expect(body([nil]) == "[null]")
        #expect(body([Array("a".utf8), nil, Array("\"é\n".utf8), Array("a".utf8)]) == #"["a",null,"\"é\n","a"]"#)
        #expect(body([[0x01]]) == #"["\u0001"]"#)
    }

    @Test func aValueJSONCannotCarryLeavesTheAnswerAsItWas() {
        var answer = MgetAnswer()
        let appended = [answer.append(Array("a".utf8)), answer.append([0x78, 0xFF]), answer.append(nil)]
        #expect(appended == [true, false, true])
        #expect(String(decoding: answer.finish(), as: UTF8.self) == #"["a",null]"#)
        var first = MgetAnswer()
        let refused = !first.append([0xC0])
        #expect(refused)
        #expect(String(decoding: first.finish(), as: UTF8.self) == "[]")
    }
}

/// The run-at-a-time JSON string encoder and decoder against a byte-at-a-time reference, on random
/// bytes (plain ASCII runs, escapes, valid and invalid UTF-8).
@Suite struct JSONStringRunCopyTests {
    /// Byte at a time: the encoder as it was before runs were copied at once.
    static func reference(_ value: [UInt8]) -> [UInt8]? {
        guard String(validating: value, as: UTF8.self) != nil else { return nil }
        var output: [UInt8] = [0x22]
        for scalar in String(decoding: value, as: UTF8.self).unicodeScalars {
            switch scalar {
            case "\"": output += Array(#"\""#.utf8)
            case "\\": output += Array(#"\\"#.utf8)
            case "\u{8}": output += Array(#"\b"#.utf8)
            case "\u{C}": output += Array(#"\f"#.utf8)
            case "\n": output += Array(#"\n"#.utf8)
            case "\r": output += Array(#"\r"#.utf8)
            case "\t": output += Array(#"\t"#.utf8)
            case "\u{0}"..."\u{1F}":
                let hex = Array("0123456789abcdef".utf8)
                output += Array(#"\u00"#.utf8) + [hex[Int(scalar.value >> 4)], hex[Int(scalar.value & 0xF)]]
            default: output += Array(String(scalar).utf8)
            }
        }
        return output + [0x22]
    }

    @Test func encodeMatchesTheReferenceAndDecodesBack() {
        var generator = SystemRandomNumberGenerator()
        let pieces: [[UInt8]] = [Array("plain words ".utf8), [0x22], [0x5C], [0x0A], [0x01], [0x7F], Array("é".utf8),
                                 Array("😀".utf8), [0xFF], [0xC3], [0xED, 0xA0, 0x80], Array("/".utf8)]
        for _ in 0..<2000 {
            var value: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &generator) { value += pieces.randomElement(using: &generator)! }
            var encoded: [UInt8] = Array("prefix".utf8)
            let ok = JSONString.encode(value, into: &encoded)
            let expected = Self.reference(value)
            #expect(ok == (expected != nil), "\(value)")
            #expect(encoded == Array("prefix".utf8) + (expected ?? []), "\(value)")
            guard ok else { continue }
            var decoded: [UInt8] = []
            let end = try? JSONString.decode(encoded[...], from: 6, into: &decoded, allowControlBytes: false)
            #expect(end == encoded.count)
            #expect(decoded == value, "\(value)")
        }
    }
}
