import Synchronization

/// A client's IP address as bytes (4 for IPv4, 16 for IPv6), the key of the per-address limit.
struct ClientAddress: Hashable, Sendable {
    let bytes: [UInt8]
}

/// Counts open connections over all workers, in total and per client address, and says whether
/// one more may be accepted. Touched once per connection opened or closed, never per request.
final class ConnectionLimiter: Sendable {
    private struct Counts {
        var total = 0
        var perAddress: [ClientAddress: Int] = [:]
    }

    private let counts = Mutex(Counts())
    let totalLimit: Int
    /// 0: no per-address limit.
    let perAddressLimit: Int

    init(totalLimit: Int, perAddressLimit: Int) {
        self.totalLimit = totalLimit
        self.perAddressLimit = perAddressLimit
    }

    func mayAccept(_ address: ClientAddress) -> Bool {
        counts.withLock { counts in
            guard counts.total < totalLimit else { return false }
            guard perAddressLimit > 0 else { return true }
            return counts.perAddress[address, default: 0] < perAddressLimit
        }
    }

    func opened(_ address: ClientAddress) {
        counts.withLock { counts in
            counts.total += 1
            if perAddressLimit > 0 { counts.perAddress[address, default: 0] += 1 }
        }
    }

    func closed(_ address: ClientAddress) {
        counts.withLock { counts in
            counts.total -= 1
            guard perAddressLimit > 0, let open = counts.perAddress[address] else { return }
            counts.perAddress[address] = open > 1 ? open - 1 : nil
        }
    }

    /// Open connections now, over all workers.
    var openConnections: Int { counts.withLock { $0.total } }
}
