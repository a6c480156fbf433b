import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The first SIGINT or SIGTERM, recorded so that a tool can stop cleanly (kvload deletes its staging data,
/// kvbench finishes the requests in flight and still reports); a second one kills as usual (SA_RESETHAND).
public enum FirstSignal {
    private static let number = Atomic<Int32>(0)

    /// The signal that arrived since `install`, or 0.
    @inline(__always)
    public static var received: Int32 { number.load(ordering: .relaxed) }

    /// Records the first of `signals` instead of dying of it. Interrupted system calls restart (SA_RESTART).
    public static func install(_ signals: [Int32]) {
        for signal in signals {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { signal in FirstSignal.number.store(signal, ordering: .relaxed) }
            action.sa_flags = Int32(bitPattern: SA_RESETHAND) | SA_RESTART
            sigemptyset(&action.sa_mask)
            sigaction(signal, &action, nil)
        }
    }
}

/// Process-wide signal dispositions.
public enum Signals {
    /// Ignores SIGPIPE, so that writing to a connection the peer closed fails with EPIPE instead of killing the process.
    public static func ignoreBrokenPipe() {
        signal(SIGPIPE, SIG_IGN)
    }
}
