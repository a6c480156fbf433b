import KVDTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A TCP listener on 127.0.0.1 that plays a Redis server badly on purpose: it answers with the
/// bytes a test scripts, or not at all. Non-blocking, served from the test's own loop (`serve()`),
/// so that no thread and no sleep is involved. The only socket code of these tests.
final class ScriptedServer {
    /// What the server does with a connection once it has received something.
    enum Behaviour {
        /// Reads and never answers (a stalled Redis).
        case silent
        /// Answers `bytes` once, on the first read.
        case answer([UInt8])
    }

    let port: Int
    private let socket: TCPListener
    private let listener: Int32
    private let behaviour: Behaviour
    private var clients: [(descriptor: Int32, answered: Bool)] = []
    /// Connections accepted so far.
    private(set) var accepted = 0
    /// Bytes received so far, over every connection.
    private(set) var received: [UInt8] = []

    /// - Parameter backlog: the listen backlog; with 0 and `accepting` false, connects beyond
    ///   the first one stay in progress (the kernel drops their SYNs).
    init(_ behaviour: Behaviour, backlog: Int32 = 16) throws {
        self.behaviour = behaviour
        socket = try TCPListener(backlog: backlog)
        listener = socket.fd
        port = socket.port
        _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK)
    }

    deinit {
        for client in clients { close(client.descriptor) }
    }

    /// Accepts pending connections, reads what they sent, answers as scripted. Never blocks.
    func serve() {
        while true {
            let descriptor = accept(listener, nil, nil)
            guard descriptor >= 0 else { break }
            _ = fcntl(descriptor, F_SETFL, fcntl(descriptor, F_GETFL) | O_NONBLOCK)
            clients.append((descriptor, false))
            accepted += 1
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        for index in clients.indices {
            let count = buffer.withUnsafeMutableBytes { read(clients[index].descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { continue }
            received += buffer[0..<count]
            if case .answer(let bytes) = behaviour, !clients[index].answered {
                clients[index].answered = true
                _ = bytes.withUnsafeBytes { write(clients[index].descriptor, $0.baseAddress, $0.count) }
            }
        }
    }

    /// Opens a non-blocking connection that nobody will accept, to fill a listen queue.
    func occupyQueue() -> Int32 {
        let descriptor = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        _ = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        return descriptor
    }

    /// Closes a descriptor `occupyQueue` returned.
    func release(_ descriptor: Int32) { close(descriptor) }
}
