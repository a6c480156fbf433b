import Synchronization

/// A client's IP address as bytes (4 for IPv4, 16 for IPv6), the key of the per-address limit.
struct ClientAddress: Hashable, Sendable {
    let bytes: [UInt8]
}

/// Counts open connections over all workers, in total and per client address, and says whether
/// one more may be accepted. It is the only authority on the limits (libmicrohttpd's own per-worker
/// cap is the whole limit). Touched once per connection opened or closed, never per request.
final class ConnectionLimiter: Sendable {
    private struct Counts {
        var total = 0
        /// Kept even without a per-address limit, so that a reload can set one.
        var perAddress: [ClientAddress: Int] = [:]
        var totalLimit: Int
        /// 0: no per-address limit.
        var perAddressLimit: Int
    }

    private let counts: Mutex<Counts>

    init(totalLimit: Int, perAddressLimit: Int) {
        counts = Mutex(Counts(totalLimit: totalLimit, perAddressLimit: perAddressLimit))
    }

    /// New limits (a reload); connections open beyond them stay open, new ones wait for room.
    func setLimits(total: Int, perAddress: Int) {
        counts.withLock { counts in
            counts.totalLimit = total
            counts.perAddressLimit = perAddress
        }
    }

    /// Takes a place for a connection from `address` if the limits leave one: the check and the
    /// count are one step, so workers accepting at the same moment cannot pass the limit together.
    /// The place is given back with `closed`, also when the connection never opened.
    func reserve(_ address: ClientAddress) -> Bool {
        counts.withLock { counts in
            guard counts.total < counts.totalLimit else { return false }
            let open = counts.perAddress[address, default: 0]
            guard counts.perAddressLimit == 0 || open < counts.perAddressLimit else { return false }
            counts.total += 1
            counts.perAddress[address] = open + 1
            return true
        }
    }

    /// Counts a connection that opened without a reservation.
    func opened(_ address: ClientAddress) {
        counts.withLock { counts in
            counts.total += 1
            counts.perAddress[address, default: 0] += 1
        }
    }

    func closed(_ address: ClientAddress) {
        counts.withLock { counts in
            counts.total -= 1
            guard let open = counts.perAddress[address] else { return }
            counts.perAddress[address] = open > 1 ? open - 1 : nil
        }
    }

    /// Open connections now, over all workers.
    var openConnections: Int { counts.withLock { $0.total } }
}
