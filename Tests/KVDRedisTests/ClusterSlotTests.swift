import KVDRedis
import Testing

@Suite("Cluster hash slots")
struct ClusterSlotTests {
    /// The specification's test vector: CRC16("123456789") = 0x31C3.
    @Test func specificationVector() {
        #expect(ClusterSlot.crc16(Array("123456789".utf8)) == 0x31C3)
    }

    /// Values Redis 7.0's CLUSTER KEYSLOT gives (the integration suite checks random keys against a live cluster).
    @Test(arguments: [("foo", 12182), ("bar", 5061), ("", 0)])
    func knownSlots(key: String, slot: Int) {
        #expect(ClusterSlot.of(Array(key.utf8)) == slot)
    }

    @Test func hashTagsHashOnlyTheTag() {
        let tagged = ClusterSlot.of(Array("{user1000}.following".utf8))
        #expect(tagged == ClusterSlot.of(Array("user1000".utf8)))
        #expect(tagged == ClusterSlot.of(Array("{user1000}.followers".utf8)))
        // The first `{` and the next `}`: "foo{bar}{zap}" hashes "bar".
        #expect(ClusterSlot.of(Array("foo{bar}{zap}".utf8)) == ClusterSlot.of(Array("bar".utf8)))
        // `{}` is empty: the whole key is hashed; `{{bar}}` hashes "{bar".
        #expect(ClusterSlot.of(Array("foo{}{bar}".utf8)) == Int(ClusterSlot.crc16(Array("foo{}{bar}".utf8)) & 0x3fff))
        #expect(ClusterSlot.of(Array("foo{{bar}}zap".utf8)) == ClusterSlot.of(Array("{bar".utf8)))
        // No closing brace: the whole key.
        #expect(ClusterSlot.of(Array("foo{bar".utf8)) == Int(ClusterSlot.crc16(Array("foo{bar".utf8)) & 0x3fff))
    }
}
