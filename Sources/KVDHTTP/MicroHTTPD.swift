import CKVDShim
import CMicroHTTPD
import KVDCore
import KVDSettings
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

    /// A 200 response with `body`, for values read from Redis.
    init(okBody body: [UInt8], contentType: String) {
        status = 200
        bodyBytes = body.count
        handle = Self.create(body: body, contentType: contentType)
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
    var path: [UInt8] = []

    init(slot: Int) { self.slot = slot }

    func reset() {
        connection = nil
        response = nil
        isSuspended = false
        raw = false
        routeLabel = .other
        method = ""
        path.removeAll(keepingCapacity: true)
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
    func handle(_ request: RequestState, method: String, path: [UInt8]) -> HandlerDecision
    func requestCompleted(_ request: RequestState)
    func responseQueued(_ request: RequestState, _ response: PreparedResponse)
}

/// Why the HTTP engine could not start.
public struct HTTPServerError: Error, CustomStringConvertible, Sendable {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// An address to listen on, resolved once for all workers.
struct ListenAddress: @unchecked Sendable {
    fileprivate var storage = sockaddr_storage()
    let isIPv6: Bool
    private(set) var text: String
    /// A listening socket the service manager passed (socket activation): adopted, not bound.
    private(set) var inheritedDescriptor: Int32?

    /// Resolves `host` (a name, an IPv4 or an IPv6 address) for a passive TCP socket.
    init(host: String, port: Int) throws(HTTPServerError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let first = result, let address = first.pointee.ai_addr else {
            throw HTTPServerError("cannot resolve listen address '\(host)': \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(first.pointee.ai_addrlen)))
        }
        isIPv6 = first.pointee.ai_family == AF_INET6
        text = isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    /// The address of a listening socket kvd inherited (socket activation); every worker adopts a duplicate of it.
    init(inheritedSocket descriptor: Int32) throws(HTTPServerError) {
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let status = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard status == 0 else {
            throw HTTPServerError("inherited socket \(descriptor): getsockname failed: \(String(cString: strerror(errno)))")
        }
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var port = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        _ = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &port, socklen_t(port.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        isIPv6 = Int32(storage.ss_family) == AF_INET6
        func string(_ characters: [CChar]) -> String {
            String(decoding: characters.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        text = isIPv6 ? "[\(string(host))]:\(string(port))" : "\(string(host)):\(string(port))"
        inheritedDescriptor = descriptor
        // libmicrohttpd's workers share it from one epoll loop each: accept must never block.
        _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
    }

    /// The port in the address.
    var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            UInt16(bigEndian: raw.load(fromByteOffset: isIPv6 ? MemoryLayout<sockaddr_in6>.offset(of: \.sin6_port)!
                                                              : MemoryLayout<sockaddr_in>.offset(of: \.sin_port)!, as: UInt16.self))
        }
    }

    /// The same address with another port (all workers share the port the first one bound).
    func with(port: UInt16) -> ListenAddress {
        var copy = self
        if let colon = text.lastIndex(of: ":") { copy.text = text[..<colon] + ":\(port)" }
        withUnsafeMutableBytes(of: &copy.storage) { raw in
            if isIPv6 {
                raw.storeBytes(of: port.bigEndian, toByteOffset: MemoryLayout<sockaddr_in6>.offset(of: \.sin6_port)!, as: UInt16.self)
            } else {
                raw.storeBytes(of: port.bigEndian, toByteOffset: MemoryLayout<sockaddr_in>.offset(of: \.sin_port)!, as: UInt16.self)
            }
        }
        return copy
    }
}

/// kvd's exclusive hold on its listening address.
///
/// The workers bind with SO_REUSEPORT so the kernel spreads connections over them evenly, but
/// SO_REUSEPORT would also let any other process of the same user join the port and silently take
/// part of the traffic. Before binding, kvd therefore (1) takes a lock named after the address (an
/// abstract Unix socket, released by the kernel when kvd exits, however it exits): a second kvd on
/// the same address fails here, even when both start at once; and (2) binds a probe socket without
/// SO_REUSEPORT: it fails while any other process listens on the port, with or without SO_REUSEPORT.
final class ListenClaim: Sendable {
    private let lock: Int32

    /// - Parameter probe: false when kvd's own first worker is bound already (port 0: the kernel
    ///   chose a free port, and the probe would collide with kvd's own socket).
    init(_ address: ListenAddress, probe: Bool) throws(HTTPServerError) {
        let lock = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard lock >= 0 else { throw HTTPServerError("cannot listen on \(address.text): socket: \(String(cString: strerror(errno)))") }
        var name = sockaddr_un()
        name.sun_family = sa_family_t(AF_UNIX)
        // Abstract namespace: a leading NUL byte, then the name; no file, nothing to clean up.
        let label = Array("kvd-listen \(address.text)".utf8.prefix(MemoryLayout.size(ofValue: name.sun_path) - 1))
        withUnsafeMutableBytes(of: &name.sun_path) { raw in
            raw[0] = 0
            for (index, byte) in label.enumerated() { raw[index + 1] = byte }
        }
        let length = socklen_t(MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + 1 + label.count)
        let locked = withUnsafePointer(to: &name) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(lock, $0, length) }
        }
        guard locked == 0 else {
            let reason = errno == EADDRINUSE ? "port \(address.port) is in use by another kvd" : String(cString: strerror(errno))
            close(lock)
            throw HTTPServerError("cannot listen on \(address.text): \(reason)")
        }
        if probe {
            let probe = socket(Int32(address.storage.ss_family), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            guard probe >= 0 else { close(lock); throw HTTPServerError("cannot listen on \(address.text): socket: \(String(cString: strerror(errno)))") }
            defer { close(probe) }
            var one: Int32 = 1
            // SO_REUSEADDR: connections of an earlier kvd in TIME_WAIT do not hold the port.
            _ = setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
            var storage = address.storage
            let length = socklen_t(address.isIPv6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(probe, $0, length) }
            }
            guard bound == 0 else {
                let reason = errno == EADDRINUSE ? "port \(address.port) is in use by another process" : String(cString: strerror(errno))
                close(lock)
                throw HTTPServerError("cannot listen on \(address.text): \(reason)")
            }
        }
        self.lock = lock
    }

    deinit { close(lock) }
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
    private var freshConnections = Set<OpaquePointer>()
    /// Set by `stopListening()`: every answer from then on closes its connection.
    private var draining = false

    /// Starts a daemon on `address` (SO_REUSEPORT, so every worker binds the same port).
    /// - Throws: `HTTPServerError` when libmicrohttpd cannot bind or start.
    init(address: ListenAddress, settings: HTTPSettings, threads: Int, handler: any HTTPRequestHandler,
         limiter: ConnectionLimiter, logger: Logger) throws(HTTPServerError) {
        self.handler = handler
        self.limiter = limiter
        self.logger = logger
        polling = settings.resolvedPolling
        var flags = MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_ERROR_LOG.rawValue
        if polling == .epoll { flags |= MHD_USE_EPOLL.rawValue }
        if address.isIPv6 { flags |= MHD_USE_IPv6.rawValue }
        let context = Unmanaged.passUnretained(self).toOpaque()
        var options = ckvd_daemon_options()
        options.flags = flags
        options.listen_fd = address.inheritedDescriptor.map { dup($0) } ?? -1
        options.reuse_port = address.inheritedDescriptor == nil ? 1 : 0
        // A per-daemon cap protects each worker; the exact global limits are the limiter's.
        options.connection_limit = UInt32((settings.connectionLimit + threads - 1) / threads)
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
        var storage = address.storage
        daemon = withUnsafePointer(to: &storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { sockaddrPointer in
                if options.listen_fd < 0 { options.bind_address = sockaddrPointer }
                return ckvd_start_daemon(&options)
            }
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

    fileprivate func access(_ connection: OpaquePointer, url: UnsafePointer<CChar>, method: UnsafePointer<CChar>,
                            uploadSize: UnsafeMutablePointer<Int>,
                            context: UnsafeMutablePointer<UnsafeMutableRawPointer?>) -> MHD_Result {
        guard let stored = context.pointee else {
            // First call: headers are in. Answer on a later call, or libmicrohttpd closes the connection.
            if !freshConnections.isEmpty { freshConnections.remove(connection) }
            let request = handler.makeRequestState()
            request.connection = connection
            context.pointee = Unmanaged.passRetained(request).toOpaque()
            return .YES
        }
        let request = Unmanaged<RequestState>.fromOpaque(stored).takeUnretainedValue()
        if uploadSize.pointee > 0 {
            // kvd takes no request bodies: read and drop them, then answer.
            uploadSize.pointee = 0
            return .YES
        }
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

    fileprivate func completed(_ context: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) {
        guard let context, let stored = context.pointee else { return }
        context.pointee = nil
        handler.requestCompleted(Unmanaged<RequestState>.fromOpaque(stored).takeRetainedValue())
    }

    fileprivate func admit(_ address: UnsafePointer<sockaddr>?) -> Bool {
        limiter.mayAccept(ClientAddress(address))
    }

    fileprivate func connection(_ connection: OpaquePointer, opened: Bool) {
        let address = ClientAddress(ckvd_connection_client_address(connection))
        if opened {
            limiter.opened(address)
            freshConnections.insert(connection)
        } else {
            limiter.closed(address)
            freshConnections.remove(connection)
        }
    }

    fileprivate func log(_ message: String) {
        logger.warning("libmicrohttpd: \(message.trimmingCharacters(in: "\n"))")
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

private let accessHandler: MHD_AccessHandlerCallback = { cls, connection, url, method, _, _, uploadSize, context in
    guard let connection, let url, let method, let uploadSize, let context else { return .NO }
    return engine(cls).access(connection, url: url, method: method, uploadSize: uploadSize, context: context)
}

private let requestCompleted: MHD_RequestCompletedCallback = { cls, _, context, _ in
    engine(cls).completed(context)
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
