import CKVDShim
import CMicroHTTPD
import KVDCore
import KVDSettings
import KVDSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

// The only Swift file that touches libmicrohttpd. Everything here runs on the thread of the
// worker that owns the daemon (external polling mode): the daemon has no threads of its own.

/// A libmicrohttpd response, built once and queued as often as needed (libmicrohttpd copies the body).
final class PreparedResponse {
    let status: UInt32
    /// Body bytes, for the access log.
    let bodyBytes: Int
    fileprivate let handle: OpaquePointer

    init(_ reply: Reply) {
        status = UInt32(reply.status)
        bodyBytes = reply.body.count
        handle = Self.create(body: reply.body, contentType: reply.contentType)
        addHeaders(reply.headers)
    }

    /// `reply`, plus `Vary: Accept` when its content depends on the request's Accept header.
    convenience init(_ reply: Reply, varyAccept: Bool) {
        self.init(reply)
        if varyAccept { MHD_add_response_header(handle, "Vary", "Accept") }
    }

    /// A 200 response with `body`, for values read from Redis (`varyAccept`: its form depends on
    /// the request's Accept header, raw or JSON).
    init(okBody body: [UInt8], contentType: String, varyAccept: Bool = false) {
        status = 200
        bodyBytes = body.count
        handle = Self.create(body: body, contentType: contentType)
        if varyAccept { MHD_add_response_header(handle, "Vary", "Accept") }
    }

    private static func create(body: [UInt8], contentType: String) -> OpaquePointer {
        let response = body.withUnsafeBytes {
            MHD_create_response_from_buffer($0.count, UnsafeMutableRawPointer(mutating: $0.baseAddress), .RESPMEM_MUST_COPY)
        }
        // Only fails when malloc does; nothing sensible can continue then.
        guard let response else { fatalError("libmicrohttpd could not allocate a response") }
        MHD_add_response_header(response, "Content-Type", contentType)
        return response
    }

    /// A body-less answer (304, 204) with `headers`.
    init(status: UInt32, headers: [HTTPHeader]) {
        self.status = status
        bodyBytes = 0
        guard let response = MHD_create_response_from_buffer(0, nil, .RESPMEM_PERSISTENT) else {
            fatalError("libmicrohttpd could not allocate a response")
        }
        handle = response
        addHeaders(headers)
    }

    /// Adds response headers (kvd's optional ones: ETag, Cache-Control, CORS).
    func addHeaders(_ headers: [HTTPHeader]) {
        for header in headers { MHD_add_response_header(handle, header.name, header.value) }
    }

    /// Adds `Connection: close` (once): while kvd drains, every answer ends its connection.
    fileprivate func closeConnectionAfterSending() {
        if MHD_get_response_header(handle, "Connection") == nil {
            MHD_add_response_header(handle, "Connection", "close")
        }
    }

    deinit { MHD_destroy_response(handle) }
}

/// The per-request state libmicrohttpd carries for us between calls of the access handler.
final class RequestState {
    /// Where the owner keeps this state (it names the request's Redis lookup); fixed for the
    /// state's life, which spans many requests (states are reused).
    let slot: Int
    fileprivate var connection: OpaquePointer?
    /// The answer, once Redis replied; queued when the resumed connection calls the handler again.
    var response: PreparedResponse?
    /// Answer with the exact bytes (application/octet-stream) instead of JSON.
    var raw = false
    /// Suspended in libmicrohttpd, waiting for Redis.
    fileprivate(set) var isSuspended = false
    var startedNs: UInt64 = 0
    /// The `route` label of the request's metrics.
    var routeLabel = RouteLabel.other
    var method = ""
    // `@exclusivity(unchecked)` on the fields every request touches (here and in `HTTPEngine`,
    // `Worker`, `WorkerMetrics`): see docs/performance.md, "Exclusivity checks".
    @exclusivity(unchecked) var path: [UInt8] = []
    /// The request body, for the routes that take one (`POST /mget`); other bodies are dropped.
    @exclusivity(unchecked) var body: [UInt8] = []
    /// The most body bytes kept; nil: the body is read and dropped.
    fileprivate var bodyLimit: Int?
    /// The body went over `bodyLimit` (or, for a body kvd drops, the engine's limit): answered 413
    /// (at once when its Content-Length said so, else once it ended), the rest is dropped.
    fileprivate var bodyRefused = false
    /// Body bytes read so far, kept or dropped (0 until the body's first bytes).
    fileprivate var bodyBytes = 0

    init(slot: Int) { self.slot = slot }

    func reset() {
        connection = nil
        response = nil
        isSuspended = false
        raw = false
        routeLabel = .other
        method = ""
        path.removeAll(keepingCapacity: true)
        if bodyLimit != nil || bodyBytes != 0 || bodyRefused {
            // A big body's buffer is not kept for the next request of this state.
            if body.capacity > 64 << 10 { body = [] } else { body.removeAll(keepingCapacity: true) }
            bodyLimit = nil
            bodyRefused = false
            bodyBytes = 0
        }
    }
}

/// What the engine's owner decided for a request.
enum HandlerDecision {
    case respond(PreparedResponse)
    /// The owner will set `response` and call `resume` later.
    case suspend
}

/// The engine's owner: a worker, called on its own thread from inside `HTTPEngine.run()`.
protocol HTTPRequestHandler: AnyObject {
    func makeRequestState() -> RequestState
    /// Called once the head of a `POST` request is in: the most body bytes to keep for `handle`
    /// (in `request.body`), or nil to read and drop the body (as every other request's).
    func bodyLimit(_ request: RequestState, method: String, path: [UInt8]) -> Int?
    /// The answer to a body over its limit (413; libmicrohttpd closes the connection after it).
    func bodyTooLarge(_ request: RequestState) -> PreparedResponse
    func handle(_ request: RequestState, method: String, path: [UInt8]) -> HandlerDecision
    func requestCompleted(_ request: RequestState)
    func responseQueued(_ request: RequestState, _ response: PreparedResponse)
}

extension HTTPRequestHandler {
    /// Handlers that keep no bodies: every body is read and dropped.
    func bodyLimit(_ request: RequestState, method: String, path: [UInt8]) -> Int? { nil }
    func bodyTooLarge(_ request: RequestState) -> PreparedResponse { PreparedResponse(.detail(413, "Request body too large")) }
}

/// Why the HTTP engine could not start.
public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// An address to listen on, resolved once for all workers.
struct ListenAddress: Sendable {
    private(set) var socketAddress: SocketAddress
    var isIPv6: Bool { socketAddress.isIPv6 }
    private(set) var text: String
    /// A listening socket the service manager passed (socket activation): adopted, not bound.
    private(set) var inheritedDescriptor: Int32?

    /// Resolves `host` (a name, an IPv4 or an IPv6 address) for a TCP socket.
    init(host: String, port: Int) throws(HTTPServerError) {
        do {
            socketAddress = try SocketAddress(host: host, port: port)
        } catch {
            throw HTTPServerError("cannot resolve listen address '\(host)': \(error.message)")
        }
        text = socketAddress.isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The address of a listening socket kvd inherited (socket activation); every worker adopts a duplicate of it.
    init(inheritedSocket descriptor: Int32) throws(HTTPServerError) {
        do {
            socketAddress = try SocketAddress(boundTo: descriptor)
        } catch {
            throw HTTPServerError("inherited socket \(descriptor): \(error)")
        }
        let host = socketAddress.numericHost
        text = socketAddress.isIPv6 ? "[\(host)]:\(socketAddress.port)" : "\(host):\(socketAddress.port)"
        inheritedDescriptor = descriptor
        // libmicrohttpd's workers share it from one epoll loop each: accept must never block.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    }

    /// The port in the address.
    var port: UInt16 { socketAddress.port }

    /// The same address with another port (all workers share the port the first one bound).
    func with(port: UInt16) -> ListenAddress {
        var copy = self
        if let colon = text.lastIndex(of: ":") { copy.text = text[..<colon] + ":\(port)" }
        copy.socketAddress = socketAddress.with(port: port)
        return copy
    }
}

/// kvd's exclusive hold on its listening address (see `AddressClaim`): the workers share the port
/// through SO_REUSEPORT, and nobody else may join it.
final class ListenClaim: Sendable {
    private let claim: AddressClaim

    /// - Parameter probe: false when kvd's own first worker is bound already (port 0: the kernel
    ///   chose a free port, and the probe would collide with kvd's own socket).
    init(_ address: ListenAddress, probe: Bool) throws(HTTPServerError) {
        do {
            claim = try AddressClaim(name: "kvd-listen \(address.text)", address: address.socketAddress, probe: probe)
        } catch {
            let reason = switch error {
            case .claimedElsewhere: "port \(address.port) is in use by another kvd"
            case .inUse: "port \(address.port) is in use by another process"
            case .failed(let failure): failure.description
            }
            throw HTTPServerError("cannot listen on \(address.text): \(reason)")
        }
    }
}

/// Request heads kvd refuses although libmicrohttpd 0.9.75 would serve them: framing that a proxy
/// in front could read differently (request smuggling), and HTTP/1.1 without Host. Answered 400
/// with `{"detail": …}` and `Connection: close`.
enum FramingProblem: Int, CaseIterable {
    case lengthAndChunked, conflictingLengths, unsupportedTransferEncoding, missingHost

    var reply: Reply { Reply.detail(400, message, headers: [HTTPHeader("Connection", "close")]) }

    var message: String {
        switch self {
        case .lengthAndChunked: "Content-Length and Transfer-Encoding together"
        case .conflictingLengths: "Conflicting Content-Length headers"
        case .unsupportedTransferEncoding: "Transfer-Encoding other than chunked"
        case .missingHost: "HTTP/1.1 request without Host"
        }
    }

    /// The problem with a request head, if any: three header look-ups (no allocation) for a
    /// request without a body; the Content-Length headers are walked only when there is one.
    static func check(_ connection: OpaquePointer, version: UnsafePointer<CChar>) -> FramingProblem? {
        let transferEncoding = MHD_lookup_connection_value(connection, .HEADER_KIND, "Transfer-Encoding")
        let contentLength = MHD_lookup_connection_value(connection, .HEADER_KIND, "Content-Length")
        if transferEncoding != nil && contentLength != nil { return .lengthAndChunked }
        if let transferEncoding, !isChunked(transferEncoding) { return .unsupportedTransferEncoding }
        if let contentLength {
            var walk = ContentLengthWalk(first: contentLength)
            _ = withUnsafeMutablePointer(to: &walk) { MHD_get_connection_values(connection, .HEADER_KIND, differentContentLength, $0) }
            if walk.conflict { return .conflictingLengths }
        }
        if strcmp(version, "HTTP/1.1") == 0 && MHD_lookup_connection_value(connection, .HEADER_KIND, "Host") == nil {
            return .missingHost
        }
        return nil
    }

    /// Whether a Transfer-Encoding value is just `chunked`, the only coding libmicrohttpd 0.9.75
    /// decodes (with `gzip, chunked` it would wait for the body until the client closes).
    private static func isChunked(_ value: UnsafePointer<CChar>) -> Bool {
        let bytes = UnsafeRawBufferPointer(start: value, count: strlen(value))
        var end = bytes.count
        while end > 0 && (bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09) { end -= 1 }
        let word = Array("chunked".utf8)
        guard end == word.count else { return false }
        for index in 0..<word.count where bytes[index] | 0x20 != word[index] { return false }
        return true
    }
}

private struct ContentLengthWalk {
    let first: UnsafePointer<CChar>
    var conflict = false
}

/// Stops the walk at a Content-Length header whose value differs from the first one's.
private let differentContentLength: MHD_KeyValueIterator = { cls, _, key, value in
    guard let cls, let key, let value, strcasecmp(key, "Content-Length") == 0 else { return .YES }
    let walk = cls.assumingMemoryBound(to: ContentLengthWalk.self)
    guard strcmp(walk.pointee.first, value) != 0 else { return .YES }
    walk.pointee.conflict = true
    return .NO
}

/// One libmicrohttpd daemon in external polling mode (epoll or select), driven by its owner's loop.
final class HTTPEngine {
    private var daemon: OpaquePointer?
    private let polling: PollingMode
    private unowned let handler: any HTTPRequestHandler
    private let limiter: ConnectionLimiter
    private let logger: Logger
    /// Connections accepted whose first request has not arrived yet: shutdown waits for them, so
    /// a client that connected just before the listening socket was closed still gets its answer.
    @exclusivity(unchecked) private var freshConnections = Set<OpaquePointer>()
    /// Set by `stopListening()`: every answer from then on closes its connection.
    private var draining = false
    /// A connection's deadline: for its next request head, or for the rest of a body it is sending.
    private struct Deadline {
        /// Monotonic ms; `Int64.max`: none (a request being answered, or no timeout set).
        var ms: Int64
        /// For a body (`request_body_timeout_s`), not a head.
        var body = false
    }
    /// When each open connection must have sent its next request head, or the rest of the body it
    /// is sending. Changed in place per request (no allocation); entries come and go with
    /// connections. Kept only when a head or body timeout is set.
    @exclusivity(unchecked) private var deadlines: [OpaquePointer: Deadline] = [:]
    private let keepsDeadlines: Bool
    /// `request_head_timeout_s` in ms (0: no deadline).
    private let headTimeoutMs: Int64
    /// `request_body_timeout_s` in ms (0: no deadline).
    private let bodyTimeoutMs: Int64
    /// The largest body a request that keeps none may send (read and dropped); past it, 413.
    private let dropLimit: Int
    /// From the end of an answer to the end of the next request head on a kept-alive connection:
    /// the idle timeout plus the head timeout (`Int64.max` when either is off).
    private let nextHeadTimeoutMs: Int64
    private var nextHeadCheckMs: Int64 = 0
    private let metrics: WorkerMetrics
    private var logThrottle = LogThrottle()
    /// Connections kvd shut down itself (an overdue head or body, a body past its limit) that
    /// libmicrohttpd has not closed yet. It logs such a close as "closed by remote side", which is
    /// not what happened (kvd logs its own line), so while any is pending that message is neither
    /// logged nor counted as malformed (usually within the same loop turn).
    private var shutDownConnections = Set<OpaquePointer>()
    /// The answers to `FramingProblem`s, at their raw values.
    private let framingResponses = FramingProblem.allCases.map { PreparedResponse($0.reply) }
    /// Places the limiter gave for connections being accepted in this turn; libmicrohttpd
    /// reports each as opened within the same turn, or never (it refused it after the accept policy).
    private var admitted: [ClientAddress] = []

    /// Starts a daemon on `address` (SO_REUSEPORT, so every worker binds the same port).
    /// - Throws: `HTTPServerError` when libmicrohttpd cannot bind or start.
    init(address: ListenAddress, settings: HTTPSettings, handler: any HTTPRequestHandler,
         limiter: ConnectionLimiter, metrics: WorkerMetrics, logger: Logger) throws(HTTPServerError) {
        self.handler = handler
        self.limiter = limiter
        self.metrics = metrics
        self.logger = logger
        headTimeoutMs = Int64(settings.requestHeadTimeoutSeconds) * 1000
        bodyTimeoutMs = Int64(settings.requestBodyTimeoutSeconds) * 1000
        keepsDeadlines = headTimeoutMs > 0 || bodyTimeoutMs > 0
        dropLimit = settings.mgetMaxBodyBytes
        nextHeadTimeoutMs = settings.requestHeadTimeoutSeconds == 0 || settings.idleTimeoutSeconds == 0
            ? Int64.max : Int64(settings.idleTimeoutSeconds + settings.requestHeadTimeoutSeconds) * 1000
        polling = settings.resolvedPolling
        var flags = MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_ERROR_LOG.rawValue
        if polling == .epoll { flags |= MHD_USE_EPOLL.rawValue }
        if address.isIPv6 { flags |= MHD_USE_IPv6.rawValue }
        let context = Unmanaged.passUnretained(self).toOpaque()
        var options = ckvd_daemon_options()
        options.flags = flags
        options.listen_fd = address.inheritedDescriptor.map { dup($0) } ?? -1
        options.reuse_port = address.inheritedDescriptor == nil ? 1 : 0
        // The limiter is the authority on the limits, over all workers: SO_REUSEPORT spreads
        // connections unevenly, so a per-worker share would refuse clients below the limit.
        options.connection_limit = UInt32(settings.connectionLimit)
        options.connection_timeout_s = UInt32(settings.idleTimeoutSeconds)
        options.listen_backlog = UInt32(settings.listenBacklog)
        options.connection_memory_limit = settings.connectionMemoryBytes
        options.accept_policy = acceptPolicy
        options.accept_policy_cls = context
        options.handler = accessHandler
        options.handler_cls = context
        options.completed = requestCompleted
        options.completed_cls = context
        options.notify_connection = connectionNotification
        options.notify_connection_cls = context
        options.unescape = keepEscapes
        options.logger = daemonLog
        options.logger_cls = context
        daemon = address.socketAddress.bytes.withUnsafeBytes { raw in
            if options.listen_fd < 0 { options.bind_address = raw.baseAddress!.assumingMemoryBound(to: sockaddr.self) }
            return ckvd_start_daemon(&options)
        }
        guard daemon != nil else {
            throw HTTPServerError("cannot listen on \(address.text): \(String(cString: strerror(errno)))")
        }
    }

    /// The port the daemon is bound to.
    var boundPort: UInt16 { daemon.map { ckvd_daemon_port($0) } ?? 0 }

    /// Waits until the engine's sockets or one of `extra` (the owner's descriptors, poll-style)
    /// are ready, for at most `timeoutMs` (less when libmicrohttpd has a timeout due), then
    /// processes the engine's ready sockets: accepts, reads, calls handlers, writes.
    func turn(extra: inout [pollfd], timeoutMs: Int) {
        guard let daemon else { return }
        switch polling {
        case .select:
            _ = extra.withUnsafeMutableBufferPointer {
                ckvd_select_turn(daemon, $0.baseAddress, Int32($0.count), Int32(clamping: timeoutMs))
            }
        case .epoll, .auto:
            var timeout = timeoutMs
            var daemonTimeout: UInt64 = 0
            if MHD_get_timeout(daemon, &daemonTimeout) == .YES { timeout = min(timeout, Int(clamping: daemonTimeout)) }
            extra.append(pollfd(fd: ckvd_daemon_epoll_fd(daemon), events: Int16(POLLIN), revents: 0))
            _ = poll(&extra, nfds_t(extra.count), Int32(clamping: timeout))
            extra.removeLast()
            _ = MHD_run(daemon)
        }
        settleAdmissions()
        if keepsDeadlines && !deadlines.isEmpty { closeOverdue() }
    }

    /// Ends the connections whose request head or body is overdue (at most every 100 ms).
    /// libmicrohttpd has no such deadline (any byte resets its idle timer) and no call to close a
    /// connection: shutting the socket down makes its next read end the connection, through libmicrohttpd.
    private func closeOverdue() {
        let nowMs = Self.nowMs()
        guard nowMs >= nextHeadCheckMs else { return }
        nextHeadCheckMs = nowMs + 100
        var index = deadlines.startIndex
        while index != deadlines.endIndex {
            if deadlines.values[index].ms <= nowMs {
                deadlines.values[index].ms = Int64.max
                shutDown(deadlines.keys[index])
                let body = deadlines.values[index].body
                if body { metrics.slowBody() } else { metrics.slowHead() }
                if let suffix = logThrottle.admit(nowMs: nowMs) {
                    let seconds = (body ? bodyTimeoutMs : headTimeoutMs) / 1000
                    logger.warning("closed a connection whose request \(body ? "body" : "head") was not complete within \(seconds) s\(suffix)")
                }
            }
            index = deadlines.index(after: index)
        }
    }

    /// Ends `connection`: shutting its socket down makes libmicrohttpd's next read close it.
    private func shutDown(_ connection: OpaquePointer) {
        let fd = ckvd_connection_fd(connection)
        guard fd >= 0, shutdown(fd, Int32(SHUT_RDWR)) == 0 else { return }
        shutDownConnections.insert(connection)
    }

    /// Sets `connection`'s deadline (in place when it has an entry).
    private func setDeadline(_ connection: OpaquePointer, ms: Int64, body: Bool = false) {
        if let index = deadlines.index(forKey: connection) {
            deadlines.values[index] = Deadline(ms: ms, body: body)
        } else {
            deadlines[connection] = Deadline(ms: ms, body: body)
        }
    }

    private static func nowMs() -> Int64 { SystemClock.milliseconds() }

    /// Gives back the places of connections the accept policy admitted but libmicrohttpd did not open.
    private func settleAdmissions() {
        guard !admitted.isEmpty else { return }
        for address in admitted { limiter.closed(address) }
        admitted.removeAll(keepingCapacity: true)
    }

    /// After `resume` calls: lets the resumed requests queue their answers and writes them,
    /// without waiting (libmicrohttpd writes a response queued on a resumed connection only on
    /// the pass after the one that called its handler).
    func answerResumed() {
        guard let daemon else { return }
        switch polling {
        case .select:
            ckvd_select_answer_resumed(daemon)
        case .epoll, .auto:
            _ = MHD_run(daemon)
            _ = MHD_run(daemon)
        }
        settleAdmissions()
    }

    /// Whether some accepted connection has not sent its first request yet.
    var hasFreshConnections: Bool { !freshConnections.isEmpty }

    /// Stops accepting new connections; connections already open get one more answer, with
    /// `Connection: close`.
    func stopListening() {
        draining = true
        guard let daemon else { return }
        let fd = MHD_quiesce_daemon(daemon)
        if fd >= 0 { close(fd) }
    }

    /// The value of the request header `name` (the first one, when sent more than once), or nil.
    func header(_ name: String, of request: RequestState) -> String? {
        value(of: name, kind: .HEADER_KIND, request)
    }

    /// The value of the query argument `name` (`?name=value`, as sent), or nil.
    func queryArgument(_ name: String, of request: RequestState) -> String? {
        value(of: name, kind: .GET_ARGUMENT_KIND, request)
    }

    private func value(of name: String, kind: MHD_ValueKind, _ request: RequestState) -> String? {
        guard let connection = request.connection else { return nil }
        return MHD_lookup_connection_value(connection, kind, name).map { String(cString: $0) }
    }

    /// The client's address as text (`127.0.0.1`, `::1`), for the access log.
    func clientAddress(of request: RequestState) -> String {
        guard let connection = request.connection, let address = ckvd_connection_client_address(connection) else { return "-" }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let family = Int32(address.pointee.sa_family)
        let written: UnsafePointer<CChar>?
        switch family {
        case AF_INET:
            var ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            written = inet_ntop(family, &ip, &text, socklen_t(text.count))
        case AF_INET6:
            var ip = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            written = inet_ntop(family, &ip, &text, socklen_t(text.count))
        default:
            written = nil
        }
        guard written != nil else { return "-" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `path` with the request's query rebuilt from its arguments (`?a=1&b`, escapes as sent;
    /// libmicrohttpd has turned a `+` into a space), for the access log.
    func target(of request: RequestState, path: [UInt8]) -> [UInt8] {
        guard let connection = request.connection else { return path }
        var target = path
        _ = withUnsafeMutablePointer(to: &target) { pointer in
            MHD_get_connection_values(connection, .GET_ARGUMENT_KIND, appendArgument, pointer)
        }
        return target
    }

    /// Hands a suspended request back to libmicrohttpd; its handler runs again on the next `run()`.
    func resume(_ request: RequestState) {
        guard request.isSuspended, let connection = request.connection else { return }
        request.isSuspended = false
        MHD_resume_connection(connection)
    }

    /// Closes every connection and frees the daemon. No request may be suspended.
    func stop() {
        if let daemon { MHD_stop_daemon(daemon) }
        daemon = nil
    }

    deinit { stop() }

    /// The request's Content-Length, when it sent one (libmicrohttpd refused a malformed one already).
    private static func contentLength(_ connection: OpaquePointer) -> UInt64? {
        guard let text = MHD_lookup_connection_value(connection, .HEADER_KIND, "Content-Length") else { return nil }
        var value: UInt64 = 0
        for byte in UnsafeRawBufferPointer(start: text, count: strlen(text)) {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { continue }
            let (product, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { return UInt64.max }
            let (sum, carry) = product.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !carry else { return UInt64.max }
            value = sum
        }
        return value
    }

    fileprivate func access(_ connection: OpaquePointer, url: UnsafePointer<CChar>, method: UnsafePointer<CChar>,
                            version: UnsafePointer<CChar>, uploadData: UnsafePointer<CChar>?, uploadSize: UnsafeMutablePointer<Int>,
                            context: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> MHD_Result {
        guard let stored = context.pointee else {
            // First call: headers are in. Answer on a later call, or libmicrohttpd closes the connection.
            if !freshConnections.isEmpty { freshConnections.remove(connection) }
            if keepsDeadlines { setDeadline(connection, ms: Int64.max) }
            let request = handler.makeRequestState()
            request.connection = connection
            context.pointee = Unmanaged.passRetained(request).toOpaque()
            if let problem = FramingProblem.check(connection, version: version) {
                // Answered at once (before any body): libmicrohttpd then closes the connection.
                metrics.malformedRequest()
                if let suffix = logThrottle.admit(nowMs: Self.nowMs()) {
                    logger.warning("refused a request head (400): \(problem.message)\(suffix)")
                }
                return queue(framingResponses[problem.rawValue], on: connection, request)
            }
            // Only a POST may have its body kept: other requests pay no handler call (and no allocation) here.
            if strcmp(method, "POST") == 0 {
                request.bodyLimit = handler.bodyLimit(request, method: "POST", path: Array(UnsafeRawBufferPointer(start: url, count: strlen(url))))
            }
            if let length = Self.contentLength(connection) {
                // A body kept or dropped, too large to read: refused before any of it is read
                // (libmicrohttpd then closes the connection).
                guard length <= UInt64(request.bodyLimit ?? dropLimit) else {
                    request.bodyRefused = true
                    return queue(handler.bodyTooLarge(request), on: connection, request)
                }
                if request.bodyLimit != nil { request.body.reserveCapacity(Int(length)) }
            }
            return .YES
        }
        let request = Unmanaged<RequestState>.fromOpaque(stored).takeUnretainedValue()
        if uploadSize.pointee > 0 {
            let size = uploadSize.pointee
            uploadSize.pointee = 0
            if request.bodyBytes == 0 && bodyTimeoutMs > 0 {
                // The rest of the body is due within request_body_timeout_s of its first bytes.
                setDeadline(connection, ms: Self.nowMs() + bodyTimeoutMs, body: true)
            }
            request.bodyBytes += size
            // Most routes take no body: read and drop it, then answer. A body kvd keeps is kept
            // up to its limit; past it (a chunked body, which has no Content-Length) the rest is
            // dropped as it arrives, and answered 413 once it ended: libmicrohttpd 0.9.75 takes
            // an answer only before the body or after it. A body that goes on past twice the
            // limit has its connection closed, unanswered: no client sends a body that long in
            // good faith, and one that never ends would hold the connection for good. (Shut down,
            // as an overdue head is: returning MHD_NO would log an "internal error".)
            let limit = request.bodyLimit ?? dropLimit
            if request.bodyBytes - limit > limit {
                // Cut once, when this call's bytes crossed twice the limit.
                if request.bodyBytes - size - limit <= limit {
                    metrics.bodyCut()
                    if let suffix = logThrottle.admit(nowMs: Self.nowMs()) {
                        logger.warning("closed a connection whose request body went on past \(2 * limit) bytes\(suffix)")
                    }
                    shutDown(connection)
                }
                return .YES
            }
            if request.bodyBytes > limit {
                if !request.bodyRefused {
                    request.bodyRefused = true
                    request.body = []
                }
                return .YES
            }
            if request.bodyLimit != nil, let uploadData {
                request.body.append(contentsOf: UnsafeRawBufferPointer(start: uploadData, count: size))
            }
            return .YES
        }
        if request.bodyBytes != 0 && bodyTimeoutMs > 0 {
            // The body is in: no deadline while the request is answered.
            setDeadline(connection, ms: Int64.max)
        }
        if request.bodyRefused { return queue(handler.bodyTooLarge(request), on: connection, request) }
        if let response = request.response {
            request.response = nil
            return queue(response, on: connection, request)
        }
        let path = UnsafeRawBufferPointer(start: url, count: strlen(url))
        switch handler.handle(request, method: String(cString: method), path: Array(path)) {
        case .respond(let response):
            return queue(response, on: connection, request)
        case .suspend:
            request.isSuspended = true
            MHD_suspend_connection(connection)
            return .YES
        }
    }

    private func queue(_ response: PreparedResponse, on connection: OpaquePointer, _ request: RequestState) -> MHD_Result {
        handler.responseQueued(request, response)
        if draining { response.closeConnectionAfterSending() }
        return MHD_queue_response(connection, response.status, response.handle)
    }

    fileprivate func completed(_ connection: OpaquePointer?, _ context: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) {
        if keepsDeadlines, let connection, let index = deadlines.index(forKey: connection) {
            deadlines.values[index] = Deadline(ms: nextHeadTimeoutMs == Int64.max ? Int64.max : Self.nowMs() + nextHeadTimeoutMs)
        }
        guard let context, let stored = context.pointee else { return }
        context.pointee = nil
        handler.requestCompleted(Unmanaged<RequestState>.fromOpaque(stored).takeRetainedValue())
    }

    fileprivate func admit(_ address: UnsafePointer<sockaddr>?) -> Bool {
        let client = ClientAddress(address)
        guard limiter.reserve(client) else { return false }
        admitted.append(client)
        return true
    }

    fileprivate func connection(_ connection: OpaquePointer, opened: Bool) {
        let address = ClientAddress(ckvd_connection_client_address(connection))
        if opened {
            // The accept policy took its place already.
            if let index = admitted.lastIndex(of: address) {
                admitted.remove(at: index)
            } else {
                limiter.opened(address)
            }
            freshConnections.insert(connection)
            if keepsDeadlines { deadlines[connection] = Deadline(ms: headTimeoutMs > 0 ? Self.nowMs() + headTimeoutMs : Int64.max) }
        } else {
            limiter.closed(address)
            freshConnections.remove(connection)
            if keepsDeadlines { deadlines.removeValue(forKey: connection) }
            if !shutDownConnections.isEmpty { shutDownConnections.remove(connection) }
        }
    }

    /// libmicrohttpd's messages are about clients (a malformed or cut request, a head too large):
    /// counted, and logged at most once a second per worker, since any client can cause them at will.
    fileprivate func log(_ message: String) {
        if !shutDownConnections.isEmpty && message.hasPrefix("Connection was closed by remote side") { return }
        metrics.malformedRequest()
        guard let suffix = logThrottle.admit(nowMs: Self.nowMs()) else { return }
        logger.warning("libmicrohttpd: \(message.trimmingCharacters(in: "\n"))\(suffix)")
    }
}

extension ClientAddress {
    /// The address bytes of an IPv4 or IPv6 socket address (empty for anything else).
    init(_ address: UnsafePointer<sockaddr>?) {
        guard let address else { self.init(bytes: []); return }
        switch Int32(address.pointee.sa_family) {
        case AF_INET:
            let ip = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            self.init(bytes: withUnsafeBytes(of: ip) { Array($0) })
        case AF_INET6:
            let ip = address.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            self.init(bytes: withUnsafeBytes(of: ip) { Array($0) })
        default:
            self.init(bytes: [])
        }
    }
}

private extension String {
    func trimmingCharacters(in set: Character) -> String {
        var text = Substring(self)
        while text.last == set { text = text.dropLast() }
        return String(text)
    }
}

private func engine(_ pointer: UnsafeMutableRawPointer?) -> HTTPEngine {
    Unmanaged<HTTPEngine>.fromOpaque(pointer!).takeUnretainedValue()
}

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, version, uploadData, uploadSize, context in
    guard let connection, let url, let method, let version, let uploadSize, let context else { return .NO }
    return engine(cls).access(connection, url: url, method: method, version: version, uploadData: uploadData,
                              uploadSize: uploadSize, context: context)
}

private let requestCompleted: MHD_RequestCompletedCallback = { cls, connection, context, _ in
    engine(cls).completed(connection, context)
}

private let acceptPolicy: MHD_AcceptPolicyCallback = { cls, address, _ in
    engine(cls).admit(address) ? .YES : .NO
}

private let connectionNotification: MHD_NotifyConnectionCallback = { cls, connection, _, code in
    guard let connection else { return }
    engine(cls).connection(connection, opened: code == .CONNECTION_NOTIFY_STARTED)
}

/// Leaves escapes in place: kvd decodes the path itself, byte for byte (libmicrohttpd's own
/// decoding would cut a key at `%00`).
private let keepEscapes: ckvd_unescape_callback = { _, _, text in
    text.map { strlen($0) } ?? 0
}

/// Appends `?key=value` (`&` after the first) to the `[UInt8]` at `cls`.
private let appendArgument: MHD_KeyValueIterator = { cls, _, key, value in
    guard let cls, let key else { return .YES }
    let target = cls.assumingMemoryBound(to: [UInt8].self)
    target.pointee.append(target.pointee.contains(UInt8(ascii: "?")) ? UInt8(ascii: "&") : UInt8(ascii: "?"))
    target.pointee.append(contentsOf: UnsafeRawBufferPointer(start: key, count: strlen(key)))
    if let value {
        target.pointee.append(UInt8(ascii: "="))
        target.pointee.append(contentsOf: UnsafeRawBufferPointer(start: value, count: strlen(value)))
    }
    return .YES
}

private let daemonLog: MHD_LogCallback = { cls, format, arguments in
    guard let format, let arguments else { return }
    var buffer = [CChar](repeating: 0, count: 512)
    _ = vsnprintf(&buffer, buffer.count, format, arguments)
    let text = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
    engine(cls).log(String(decoding: text, as: UTF8.self))
}
