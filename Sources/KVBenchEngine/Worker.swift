import KVBench
import KVDSystem
import Synchronization

/// Counters a worker publishes for the live progress line (relaxed stores of its own totals).
final class WorkerProgress: Sendable {
    let responses = Atomic<Int>(0)
    let errors = Atomic<Int>(0)

    init() {}
}

/// One client connection slot: a socket (or none, between requests without keep-alive) and the request on it.
final class Connection {
    enum State {
        /// No request; the socket (if any) is idle.
        case idle
        /// A non-blocking connect is in progress; the request goes out when it completes.
        case connecting
        /// The request is (partly) written; `written` bytes are out.
        case writing
        /// Waiting for (the rest of) the response.
        case reading
    }

    let token: Int
    var fd: Int32 = -1
    var state = State.idle
    /// The request bytes of the current request.
    var output: [UInt8] = []
    var written = 0
    /// Received bytes of the current response.
    var input = [UInt8](repeating: 0, count: 4096)
    var filled = 0
    /// The key index of the current request; -1 for a key not in the file.
    var keyIndex = 0
    /// `--batch`: the key indexes of the current request, in order (-1: a key not in the file).
    var batchKeys: [Int] = []
    /// When latency counting started (the scheduled time in an open-loop run), and when the request really began.
    var latencyStart: UInt64 = 0
    var issuedAt: UInt64 = 0
    /// Whether the socket has carried a complete response (a reused connection the server may have closed).
    var reused = false
    /// Whether epoll watches the socket for writability (connecting, or a write that did not fit) rather than input.
    var watchingWritable = false

    init(token: Int) { self.token = token }
}

/// One thread's share of a run: its connections, one epoll loop, its own statistics. Nothing is shared with
/// other workers while running except the relaxed progress counters.
final class Worker {
    private let plan: LoadPlan
    private let poll: EventPoll
    private let timer: DeadlineTimer
    private let connections: [Connection]
    private let progress: WorkerProgress
    private var statistics = RunStatistics()
    private var random: SplitMix64
    private let zipf: ZipfSampler?

    /// Requests this worker may issue (nil: until the deadline).
    private let quota: Int?
    private var issued = 0
    private var inFlight = 0
    private var sequentialCursor: Int
    private var endTime: UInt64 = .max

    /// Open loop: nanoseconds between scheduled sends, and the start they count from.
    private let interval: Double?
    private var scheduleStart: UInt64 = 0
    private var idleSlots: [Int] = []
    /// Closed loop: connections whose request is done, given their next one after the loop has handled every
    /// event of the current epoll_wait (the server then gets its next requests in one burst, as from wrk).
    private var readySlots: [Int] = []
    private var sendingSlots: [Int] = []

    private let requestHead: [UInt8]
    private let requestTail: [UInt8]
    /// `--batch`: the request up to the Content-Length value, and the body being built.
    private let batchHead: [UInt8]
    private var batchBody: [UInt8] = []
    private var batchValues: [[UInt8]?] = []
    private var missingKey: [UInt8] = []
    private var decoded: [UInt8] = []
    /// The data of the last chunked body (other bodies are read in place).
    private var chunkedBody: [UInt8] = []
    private var generator: DatasetGenerator

    private static let timerToken = -1

    init(plan: LoadPlan, index: Int, connectionCount: Int, quota: Int?, firstSequentialKey: Int, progress: WorkerProgress) throws(SystemError) {
        self.plan = plan
        poll = try EventPoll(capacity: max(64, connectionCount + 1))
        timer = try DeadlineTimer()
        connections = (0..<connectionCount).map { Connection(token: $0) }
        self.progress = progress
        self.quota = quota
        sequentialCursor = firstSequentialKey % plan.keys.count
        random = SplitMix64(seed: plan.seed &+ 0x5EED &* UInt64(index + 1))
        generator = DatasetGenerator(seed: plan.seed ^ 0xABCD_EF01 &+ UInt64(index))
        if case .zipf(let exponent) = plan.order {
            zipf = ZipfSampler(count: plan.keys.count, exponent: exponent)
        } else {
            zipf = nil
        }
        if let rate = plan.rate {
            let share = rate * Double(connectionCount) / Double(plan.connections)
            interval = 1e9 / share
        } else {
            interval = nil
        }
        requestHead = Array("GET \(plan.fixedPath ?? plan.pathPrefix)".utf8)
        var tail = " HTTP/1.1\r\n"
        if !plan.headers.contains(where: { $0.lowercased().hasPrefix("host:") }) { tail += "Host: \(plan.host)\r\n" }
        for header in plan.headers { tail += header + "\r\n" }
        if !plan.keepAlive { tail += "Connection: close\r\n" }
        requestTail = Array((tail + "\r\n").utf8)
        batchHead = Array(("POST \(plan.batchPath)" + tail + "Content-Type: application/json\r\nContent-Length: ").utf8)
        poll.add(timer.fd, token: Self.timerToken, readable: true, writable: false)
    }

    /// Runs until the quota or the deadline is reached and nothing is in flight.
    func run(startTime: UInt64) -> RunStatistics {
        if case .duration(let length) = plan.stop { endTime = startTime + length }
        scheduleStart = startTime
        if interval == nil {
            for connection in connections where mayIssue(at: startTime) { issue(on: connection, scheduledAt: nil) }
        } else {
            idleSlots = connections.map(\.token).reversed()
            dispatchScheduled(now: SystemClock.nanoseconds())
        }
        var nextTimeoutCheck = startTime + 10_000_000
        while true {
            let count = poll.wait(timeoutMilliseconds: 10)
            for eventIndex in 0..<count {
                let event = poll.event(at: eventIndex)
                if event.token == Self.timerToken {
                    timer.acknowledge()
                } else {
                    handle(event, on: connections[event.token])
                }
            }
            let now = SystemClock.nanoseconds()
            if interval != nil { dispatchScheduled(now: now) }
            if now >= nextTimeoutCheck {
                expireTimeouts(now: now)
                nextTimeoutCheck = now + 10_000_000
            }
            // A refused connect puts its slot straight back into readySlots: swap, so that it waits for the next turn.
            swap(&readySlots, &sendingSlots)
            for slot in sendingSlots where mayIssue(at: now) { issue(on: connections[slot], scheduledAt: nil) }
            sendingSlots.removeAll(keepingCapacity: true)
            if inFlight == 0 && !mayIssue(at: now) { break }
        }
        for connection in connections where connection.fd >= 0 { TCPSocket.close(connection.fd) }
        return statistics
    }

    private func mayIssue(at now: UInt64) -> Bool {
        if FirstSignal.received != 0 { return false }
        if let quota { return issued < quota }
        return now < endTime
    }

    // MARK: Open loop

    /// The scheduled time of the next request of an open-loop run.
    private var nextScheduled: UInt64 { scheduleStart + UInt64(Double(issued) * interval!) }

    /// Sends every request whose scheduled time has come, while idle connections last; then arms the timer
    /// for the next one. Latency counts from the scheduled time, so queueing behind slow responses is measured
    /// (coordinated omission corrected, as wrk2 does).
    private func dispatchScheduled(now: UInt64) {
        while let slot = idleSlots.last {
            let scheduled = nextScheduled
            guard mayIssue(at: scheduled), scheduled <= now else { break }
            idleSlots.removeLast()
            issue(on: connections[slot], scheduledAt: scheduled)
        }
        if !idleSlots.isEmpty, mayIssue(at: nextScheduled) { timer.arm(at: max(nextScheduled, 1)) }
    }

    // MARK: Requests

    /// Picks a key, builds the request and starts sending it (connecting first if needed). Latency counts from
    /// `scheduledAt` in an open-loop run, else from now (this request's own start, as wrk does).
    private func issue(on connection: Connection, scheduledAt: UInt64?) {
        issued += 1
        inFlight += 1
        connection.output.removeAll(keepingCapacity: true)
        if let batch = plan.batch {
            buildBatch(batch, on: connection)
        } else {
            buildGet(on: connection)
        }
        connection.written = 0
        connection.filled = 0
        connection.issuedAt = SystemClock.nanoseconds()
        connection.latencyStart = scheduledAt ?? connection.issuedAt
        if connection.fd < 0 {
            switch TCPSocket.connect(to: plan.address) {
            case .success(let fd):
                connection.fd = fd
                connection.reused = false
                connection.state = .connecting
                connection.watchingWritable = true
                poll.add(fd, token: connection.token, readable: false, writable: true)
            case .failure(let error):
                // Not `fail`, which closes a socket there is not.
                statistics.recordConnectError(error.description)
                progress.errors.store(statistics.errors, ordering: .relaxed)
                inFlight -= 1
                connection.state = .idle
                next(after: connection)
            }
            return
        }
        connection.state = .writing
        writeRequest(connection)
    }

    /// `GET <prefix><key>` (or `--path`).
    private func buildGet(on connection: Connection) {
        connection.keyIndex = nextKeyIndex()
        connection.output.append(contentsOf: requestHead)
        if plan.fixedPath != nil {
            // --path: the same URL every time; no key.
        } else if connection.keyIndex >= 0 {
            appendPercentEncoded(plan.keys.key(connection.keyIndex), to: &connection.output)
        } else {
            missingKey.removeAll(keepingCapacity: true)
            generator.appendUUID(to: &missingKey)
            connection.output.append(contentsOf: missingKey)
        }
        connection.output.append(contentsOf: requestTail)
    }

    /// `POST /mget` with `count` keys drawn as single GETs draw theirs (missing ones: random UUIDs).
    private func buildBatch(_ count: Int, on connection: Connection) {
        connection.batchKeys.removeAll(keepingCapacity: true)
        batchBody.removeAll(keepingCapacity: true)
        batchBody.append(UInt8(ascii: "["))
        for position in 0..<count {
            if position > 0 { batchBody.append(UInt8(ascii: ",")) }
            let index = nextKeyIndex()
            connection.batchKeys.append(index)
            if index >= 0 {
                batchBody.append(contentsOf: plan.keyLiterals!.literal(index))
            } else {
                batchBody.append(UInt8(ascii: "\""))
                generator.appendUUID(to: &batchBody)
                batchBody.append(UInt8(ascii: "\""))
            }
        }
        batchBody.append(UInt8(ascii: "]"))
        connection.output.append(contentsOf: batchHead)
        connection.output.append(contentsOf: String(batchBody.count).utf8)
        connection.output.append(contentsOf: [13, 10, 13, 10])
        connection.output.append(contentsOf: batchBody)
    }

    private func nextKeyIndex() -> Int {
        if plan.missingRatio > 0, random.nextUnitDouble() < plan.missingRatio { return -1 }
        switch plan.order {
        case .sequential:
            let index = sequentialCursor
            sequentialCursor += 1
            if sequentialCursor == plan.keys.count { sequentialCursor = 0 }
            return index
        case .uniform:
            return random.nextIndex(below: plan.keys.count)
        case .zipf:
            return zipf!.sample(&random)
        }
    }

    /// RFC 3986 unreserved bytes pass; everything else becomes %XX.
    @inline(__always)
    private func appendPercentEncoded(_ key: ArraySlice<UInt8>, to output: inout [UInt8]) {
        // Most keys need no escape: one copy instead of an append (and its uniqueness and capacity
        // checks) per byte. Byte by byte, building a GET cost the client ~1,100 instructions, a
        // third of what kvd spends on a near-cache hit over `/healthz` (docs/cache.md, 19th session).
        if key.allSatisfy(Self.isUnreserved) {
            output.append(contentsOf: key)
            return
        }
        for byte in key {
            if Self.isUnreserved(byte) {
                output.append(byte)
            } else {
                output.append(UInt8(ascii: "%"))
                output.append(Self.hexDigits[Int(byte >> 4)])
                output.append(Self.hexDigits[Int(byte & 0xF)])
            }
        }
    }

    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// RFC 3986's unreserved characters: sent as they are.
    @inline(__always)
    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    private func writeRequest(_ connection: Connection) {
        while connection.written < connection.output.count {
            switch TCPSocket.write(connection.fd, connection.output, connection.written..<connection.output.count) {
            case .bytes(let count):
                connection.written += count
            case .wouldBlock:
                if !connection.watchingWritable {
                    connection.watchingWritable = true
                    poll.modify(connection.fd, token: connection.token, readable: false, writable: true)
                }
                return
            case .failed(let code):
                fail(connection, TCPSocket.isReset(code) || connection.reused ? .reset : .connect,
                     reason: SystemError(operation: "connect to \(plan.host)", errno: code).description)
                return
            case .endOfStream:
                fail(connection, .reset)
                return
            }
        }
        connection.state = .reading
        if connection.watchingWritable {
            connection.watchingWritable = false
            poll.modify(connection.fd, token: connection.token, readable: true, writable: false)
        }
    }

    // MARK: Events

    private func handle(_ event: Readiness, on connection: Connection) {
        switch connection.state {
        case .idle:
            // An idle keep-alive socket became readable: the server closed it (or sent garbage). Drop it.
            closeSocket(connection)
        case .connecting:
            let code = TCPSocket.pendingError(connection.fd)
            guard code == 0, !event.failed || event.writable else {
                fail(connection, .connect, reason: SystemError(operation: "connect to \(plan.host)", errno: code).description)
                return
            }
            connection.state = .writing
            writeRequest(connection)
        case .writing:
            if event.failed && !event.writable {
                fail(connection, .reset)
                return
            }
            writeRequest(connection)
        case .reading:
            readResponse(connection)
        }
    }

    private func readResponse(_ connection: Connection) {
        while true {
            if connection.filled == connection.input.count {
                guard connection.input.count < 64 << 20 else {
                    fail(connection, .malformed)
                    return
                }
                connection.input.append(contentsOf: repeatElement(0, count: connection.input.count))
            }
            switch TCPSocket.read(connection.fd, into: &connection.input, from: connection.filled) {
            case .bytes(let count):
                connection.filled += count
                if examineResponse(connection, atEndOfStream: false) { return }
            case .wouldBlock:
                return
            case .endOfStream:
                if !examineResponse(connection, atEndOfStream: true) { fail(connection, .reset) }
                return
            case .failed(let code):
                fail(connection, TCPSocket.isReset(code) ? .reset : .malformed)
                return
            }
        }
    }

    /// Completes or fails the request when the bytes received so far decide it.
    /// - Returns: whether they did (false: more bytes are needed).
    private func examineResponse(_ connection: Connection, atEndOfStream: Bool) -> Bool {
        switch HTTPResponseParser.parseHead(connection.input, count: connection.filled) {
        case .incomplete:
            return false
        case .malformed:
            fail(connection, .malformed)
            return true
        case .head(let head):
            switch head.framing {
            case .length(let length):
                let end = head.headLength + length
                guard connection.filled >= end else { return false }
                complete(connection, head: head, body: connection.input[head.headLength..<end], end: end)
            case .chunked:
                switch ChunkedBody.scan(connection.input, from: head.headLength, count: connection.filled, into: &chunkedBody) {
                case .incomplete:
                    return false
                case .malformed:
                    fail(connection, .malformed)
                case .complete(let end):
                    complete(connection, head: head, body: chunkedBody[...], end: end)
                }
            case .untilClose:
                guard atEndOfStream else { return false }
                complete(connection, head: head, body: connection.input[head.headLength..<connection.filled], end: connection.filled)
            }
            return true
        }
    }

    /// Records a response whose bytes end at `end` of the input buffer.
    private func complete(_ connection: Connection, head: ResponseHead, body: ArraySlice<UInt8>, end: Int) {
        let now = SystemClock.nanoseconds()
        statistics.recordResponse(status: head.status, latencyMicroseconds: (now &- connection.latencyStart) / 1000, bytes: end)
        if let batch = plan.batch, head.status == 200 { statistics.recordValues(batch) }
        if plan.verify {
            if plan.batch != nil {
                verifyBatch(connection, status: head.status, body: body)
            } else {
                verify(connection, status: head.status, body: body)
            }
        }
        if plan.printBodies { printBody(status: head.status, body: body) }
        inFlight -= 1
        progress.responses.store(statistics.responses, ordering: .relaxed)
        connection.state = .idle
        connection.reused = true
        if head.closesConnection || !plan.keepAlive || connection.filled > end { closeSocket(connection) }
        next(after: connection)
    }

    private func verify(_ connection: Connection, status: Int, body: ArraySlice<UInt8>) {
        // A 5xx says the server failed, not that it disagrees with the key file: it counts as an error (the
        // error rate, `server_errors`) whether or not the key is in the file, never as a mismatch.
        if status >= 500 { return }
        guard connection.keyIndex >= 0 else {
            if status != 404 { recordMismatch("a key not in the file answered \(status), expected 404") }
            return
        }
        // The key is turned into a String only for a mismatch: verifying allocates nothing.
        var key: String { String(decoding: plan.keys.key(connection.keyIndex), as: UTF8.self) }
        guard status == 200 else {
            recordMismatch("\(key): \(status), expected 200")
            return
        }
        guard JSONStringDecoder.decode(body, into: &decoded) else {
            recordMismatch("\(key): body is not a JSON string: \(String(decoding: body.prefix(200), as: UTF8.self))")
            return
        }
        if let expected = plan.keys.value(connection.keyIndex), !decoded.elementsEqual(expected) {
            recordMismatch("\(key): value \(String(decoding: decoded.prefix(200), as: UTF8.self)), "
                           + "expected \(String(decoding: expected.prefix(200), as: UTF8.self))")
        }
    }

    /// A batch answer: 200 with one element per key, in order: the key file's value, or null for a
    /// key not in it. Counted as one mismatch per answer, however many elements differ.
    private func verifyBatch(_ connection: Connection, status: Int, body: ArraySlice<UInt8>) {
        if status >= 500 { return }
        guard status == 200 else {
            recordMismatch("POST /mget with \(connection.batchKeys.count) keys: \(status), expected 200: \(String(decoding: body.prefix(200), as: UTF8.self))")
            return
        }
        guard MgetResponseDecoder.decode(body, into: &batchValues), batchValues.count == connection.batchKeys.count else {
            recordMismatch("POST /mget: not a JSON array of \(connection.batchKeys.count) values: \(String(decoding: body.prefix(200), as: UTF8.self))")
            return
        }
        for (position, index) in connection.batchKeys.enumerated() {
            let value = batchValues[position]
            let expected = index >= 0 ? plan.keys.value(index) : nil
            let matches = switch (value, expected) {
            case (nil, nil): true
            case (let value?, let expected?): value.elementsEqual(expected)
            // A key in the file without a value (a key-only file) only needs a value.
            case (_?, nil): index >= 0
            case (nil, _?): false
            }
            guard matches else {
                let key = index >= 0 ? String(decoding: plan.keys.key(index), as: UTF8.self) : "(a key not in the file)"
                recordMismatch("POST /mget element \(position), \(key): \(value.map { String(decoding: $0.prefix(200), as: UTF8.self) } ?? "null"), "
                               + "expected \(expected.map { String(decoding: $0.prefix(200), as: UTF8.self) } ?? "null")")
                return
            }
        }
    }

    /// The first mismatches are printed to standard error; all are counted.
    private func recordMismatch(_ description: String) {
        statistics.recordMismatch()
        if statistics.mismatches <= Self.mismatchesPrinted {
            StandardStreams.writeError("mismatch: \(description)\n")
        }
    }

    private static let mismatchesPrinted = 10

    private func printBody(status: Int, body: ArraySlice<UInt8>) {
        let text = String(decoding: body, as: UTF8.self)
        // One write(2) per line: the report goes out the same way, so nothing interleaves through stdio buffers.
        StandardStreams.writeOutput((status == 200 ? text : "Error: \(status) - \(text)") + "\n")
    }

    /// - Parameter reason: for a connect error, why it failed (the report shows the first).
    private func fail(_ connection: Connection, _ kind: ErrorKind, reason: @autoclosure () -> String? = nil) {
        if kind == .connect, let reason = reason() {
            statistics.recordConnectError(reason)
        } else {
            statistics.recordError(kind)
        }
        inFlight -= 1
        progress.errors.store(statistics.errors, ordering: .relaxed)
        closeSocket(connection)
        connection.state = .idle
        next(after: connection)
    }

    private func next(after connection: Connection) {
        if interval != nil {
            idleSlots.append(connection.token)
        } else {
            readySlots.append(connection.token)
        }
    }

    private func closeSocket(_ connection: Connection) {
        guard connection.fd >= 0 else { return }
        // Without keep-alive, reset instead of FIN: a connection per request would otherwise leave
        // tens of thousands of sockets in TIME_WAIT and run out of local ports.
        TCPSocket.close(connection.fd, reset: !plan.keepAlive)
        connection.fd = -1
    }

    private func expireTimeouts(now: UInt64) {
        for connection in connections where connection.state != .idle && now > connection.issuedAt + plan.timeout {
            fail(connection, connection.state == .connecting ? .connect : .timeout,
                 reason: "connect to \(plan.host): no answer within \(plan.timeout / 1_000_000_000) s (--timeout)")
        }
    }
}
