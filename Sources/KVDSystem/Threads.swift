#if canImport(Glibc)
import Glibc
#endif

/// Long-lived threads of their own (kvd's workers and supervisor), started with pthreads: what
/// Foundation's `Thread` did, without linking Foundation (and its ICU data) into kvd.
public enum Threads {
    /// Starts `body` on a new detached thread named `name` (at most 15 bytes are kept, the
    /// kernel's limit; shown by `top -H` and `ps -L`). The thread inherits the caller's signal mask.
    public static func detach(name: String, _ body: @escaping @Sendable () -> Void) {
        let status = start(name: name, body)
        guard status == 0 else { fatalError("cannot start thread \(name): \(String(cString: strerror(status)))") }
    }

    /// Starts `body` on a new detached thread when the system allows one more; when it does not
    /// (a thread limit reached), runs it on the calling thread instead. For work that may run
    /// anywhere but had better not run on the caller's (freeing big memory, say).
    public static func detachOrRunHere(name: String, _ body: @escaping @Sendable () -> Void) {
        if start(name: name, body) != 0 { body() }
    }

    /// `pthread_create`'s status: 0 when the thread runs `body`.
    private static func start(name: String, _ body: @escaping @Sendable () -> Void) -> Int32 {
        let box = Unmanaged.passRetained(ThreadBody(name: name, body: body)).toOpaque()
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { context in
            let start = Unmanaged<ThreadBody>.fromOpaque(context!).takeRetainedValue()
            nameThisThread(start.name)
            start.body()
            return nil
        }, box)
        guard status == 0 else {
            Unmanaged<ThreadBody>.fromOpaque(box).release()
            return status
        }
        pthread_detach(thread)
        return 0
    }
}

/// Names the calling thread: `/proc/thread-self/comm` is what `pthread_setname_np` writes (which
/// Swift's Glibc module does not declare, being a GNU extension).
private func nameThisThread(_ name: String) {
    let descriptor = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard descriptor >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
}

private final class ThreadBody: Sendable {
    let name: String
    let body: @Sendable () -> Void

    init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
    }
}
