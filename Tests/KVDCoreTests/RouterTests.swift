import KVDCore
import Testing

@Suite struct RouterTests {
    let router = Router(maxKeyBytes: 8)

    func route(_ path: String, raw: Bool = false) -> Route { route("GET", path, raw: raw) }

    func route(_ method: String, _ path: String, raw: Bool = false) -> Route {
        router.route(method: method, path: Array(path.utf8), wantsRaw: raw)
    }

    @Test func getAndHeadLookUpTheRestOfThePath() {
        #expect(route("/get/abc") == .lookup(key: Array("abc".utf8), raw: false))
        #expect(route("HEAD", "/get/abc") == .lookup(key: Array("abc".utf8), raw: false))
        #expect(route("/get/a/b/") == .lookup(key: Array("a/b/".utf8), raw: false))
        #expect(route("/get/abc", raw: true) == .lookup(key: Array("abc".utf8), raw: true))
    }

    @Test func keysArePercentDecodedBytes() {
        #expect(route("/get/a%2Fb%20") == .lookup(key: Array("a/b ".utf8), raw: false))
        #expect(route("/get/%00%ff") == .lookup(key: [0x00, 0xFF], raw: false))
        #expect(route("/get/a+b") == .lookup(key: Array("a+b".utf8), raw: false))
    }

    @Test func emptyKeyAndUnknownPathsAreNotFound() {
        for path in ["/get/", "/get", "/", "/gett/x", "/healthz/", ""] {
            #expect(route(path) == .reply(.notFound), "\(path)")
        }
    }

    @Test func anAbsoluteFormTargetIsRoutedByItsPath() {
        #expect(route("http://kvd.example:8000/get/abc") == .lookup(key: Array("abc".utf8), raw: false))
        #expect(route("HTTPS://kvd/get/a%2Fb") == .lookup(key: Array("a/b".utf8), raw: false))
        #expect(route("http://kvd/healthz") == .reply(.healthy))
        #expect(route("POST", "http://kvd/mget") == .batch)
        #expect(Router.takesBody(method: "POST", path: Array("http://kvd/mget".utf8)))
        #expect(route("http://kvd") == .reply(.notFound))
        #expect(Router.originForm(Array("http://kvd".utf8)) == Array("/".utf8))
        // Not a scheme kvd knows, or not absolute form: the target as it is (404).
        for target in ["ftp://kvd/get/abc", "http:/kvd/get/abc", "kvd/get/abc", "*", "http\u{1A}//kvd/get/abc"] {
            #expect(route(target) == .reply(.notFound), "\(target)")
            #expect(Router.originForm(Array(target.utf8)) == Array(target.utf8), "\(target)")
        }
        #expect(Router.originForm(Array("/get/x".utf8)) == Array("/get/x".utf8))
    }

    @Test func otherMethodsOnKnownPathsAre405() {
        #expect(route("POST", "/get/abc") == .reply(.methodNotAllowed))
        #expect(route("DELETE", "/healthz") == .reply(.methodNotAllowed))
        #expect(route("get", "/get/abc") == .reply(.methodNotAllowed))
        #expect(route("POST", "/elsewhere") == .reply(.notFound))
    }

    @Test func everyFixedReplyHasItsAnswer() {
        #expect(FixedReply.allCases.map { router.reply($0).status } == [404, 405, 200, 400, 414, 404, 406, 502, 503, 504, 503, 200, 503, 405, 413, 413])
    }

    @Test func theRedisAnswersAreTheSeedsAndKvdsOwn() {
        #expect(router.reply(.keyNotFound) == .keyNotFound)
        #expect(router.reply(.notUTF8) == .notUTF8)
        #expect(router.reply(.unexpectedRedisReply) == .unexpectedRedisReply)
        #expect(router.reply(.redisUnavailable) == .redisUnavailable)
        #expect(router.reply(.redisTimeout) == .redisTimeout)
        #expect(router.reply(.shuttingDown) == .shuttingDown)
        #expect(router.reply(.ready) == .ready)
        #expect(router.reply(.notReady) == .notReady)
    }

    @Test func theRawRuleIsConsultedForLookupsOnly() {
        var asked = 0
        func wantsRaw() -> Bool { asked += 1; return true }
        for path in ["/healthz", "/readyz", "/metrics", "/nowhere", "/get/"] {
            _ = router.route(method: "GET", path: Array(path.utf8), wantsRaw: wantsRaw())
        }
        #expect(asked == 0)
        #expect(router.route(method: "GET", path: Array("/get/k".utf8), wantsRaw: wantsRaw()) == .lookup(key: [UInt8(ascii: "k")], raw: true))
        #expect(asked == 1)
    }

    @Test func readyzAsksRedis() {
        #expect(route("/readyz") == .readiness)
        #expect(route("HEAD", "/readyz") == .readiness)
        #expect(route("POST", "/readyz") == .reply(.methodNotAllowed))
        #expect(route("/readyz/") == .reply(.notFound))
    }

    @Test func metricsRoute() {
        #expect(route("/metrics") == .metrics)
        #expect(route("DELETE", "/metrics") == .reply(.methodNotAllowed))
    }

    @Test func healthz() {
        #expect(route("/healthz") == .reply(.healthy))
        #expect(route("HEAD", "/healthz") == .reply(.healthy))
    }

    @Test func keyLengthIsCheckedAfterDecoding() {
        #expect(route("/get/12345678") == .lookup(key: Array("12345678".utf8), raw: false))
        #expect(route("/get/123456789") == .reply(.keyTooLong))
        #expect(router.reply(.keyTooLong) == .keyTooLong(limit: 8))
        #expect(route("/get/%31%32%33%34%35%36%37%38") == .lookup(key: Array("12345678".utf8), raw: false))
    }

    @Test func badEscapesAre400() {
        for path in ["/get/%", "/get/%4", "/get/%g0", "/get/a%2"] {
            #expect(route(path) == .reply(.badPercentEncoding), "\(path)")
        }
    }

    @Test func rawModeIsChosenByAcceptOrQuery() {
        #expect(Router.wantsRaw(accept: "application/octet-stream", format: nil))
        #expect(Router.wantsRaw(accept: "text/plain, application/octet-stream;q=0.5", format: nil))
        #expect(Router.wantsRaw(accept: nil, format: "raw"))
        #expect(!Router.wantsRaw(accept: "application/json", format: nil))
        #expect(!Router.wantsRaw(accept: nil, format: "json"))
        #expect(!Router.wantsRaw(accept: nil, format: nil))
    }

    @Test func errorBodiesMatchTheSeed() {
        #expect(String(decoding: Reply.keyNotFound.body, as: UTF8.self) == #"{"detail":"Key not found"}"#)
        #expect(String(decoding: Reply.notFound.body, as: UTF8.self) == #"{"detail":"Not Found"}"#)
        #expect(String(decoding: Reply.methodNotAllowed.body, as: UTF8.self) == #"{"detail":"Method Not Allowed"}"#)
        #expect(String(decoding: Reply.redisError("ERR \"quoted\"").body, as: UTF8.self) == #"{"detail":"Redis error: ERR \"quoted\""}"#)
    }
}
