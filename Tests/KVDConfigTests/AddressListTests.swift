@testable import KVDConfig
import Testing

/// `[redis] nodes` (cluster seeds) and `[redis] sentinels` read one list form, with one set of rules.
@Suite("[redis] address lists: nodes and sentinels")
struct AddressListTests: ConfigText {
    /// Each list key, with the lines its neighbours need to read.
    static let keys: [(name: String, before: String, after: String)] = [
        ("nodes", "cluster = yes\n", ""),
        ("sentinels", "master_name = m\n", ""),
    ]

    @Test func everyAddressFormReadsTheSameForBothKeys() throws {
        for key in Self.keys {
            let config = try parse("[redis]\n\(key.before)\(key.name) = 10.0.0.1:7000,  redis.internal:7001 , [::1]:7002, fe80::2:7003\n")
            let list = key.name == "nodes" ? config.redis.nodes : config.redis.sentinels
            #expect(list.map(\.description) == ["10.0.0.1:7000", "redis.internal:7001", "[::1]:7002", "[fe80::2]:7003"], "\(key.name)")
        }
    }

    @Test func emptyItemsDuplicatesAndBadAddressesAreRefusedWithTheirLine() {
        for key in Self.keys {
            for value in ["10.0.0.1", "10.0.0.1:0", "10.0.0.1:70000", ":7000", "a:1,,b:2", "a:1, ", "a:1, a:1", "a:1, [a]:1", "a:x", "a b:1"] {
                let found = error("[redis]\n\(key.before)\(key.name) = \(value)\n")
                #expect(found?.line == 3, "\(key.name) = \(value)")
                #expect(found?.message.contains("[redis] \(key.name)") == true, "\(key.name) = \(value): \(String(describing: found))")
            }
            #expect(error("[redis]\n\(key.before)\(key.name) = a:1, a:1\n")?.message.contains("a:1 is listed twice") == true)
        }
    }
}
