import Foundation
import KVDTestSupport
import Testing

/// `POST /mget` with the near-cache on: a batch mixing cached and uncached keys answers each in
/// order, cached keys cost Redis nothing, and a write's invalidation reaches batch answers too.
@Suite("kvd: POST /mget with the near-cache")
struct KVDMgetCacheTests {
    @Test func aBatchMixesCachedAndUncachedKeysAndSeesInvalidations() throws {
        let redis = try RedisServer()
        for index in 0..<8 { try redis.command(["SET", "k\(index)", "v\(index)"]) }
        let kvd = try KVDProcess(config: KVDCacheTests.config(redis))
        #expect(KVDCacheTests.waitTracking(kvd))
        let connection = try HTTPConnection(port: kvd.port)
        // k0..k3 read twice (a key is cached from its second read on); k4..k7 never read.
        for _ in 0..<2 {
            for index in 0..<4 { #expect(try connection.request("GET", "/get/k\(index)").status == 200) }
        }
        let hits = KVDCacheTests.metric(kvd, "kvd_cache_hits_total")
        let misses = KVDCacheTests.metric(kvd, "kvd_cache_misses_total")
        let keys = ["k4", "k0", "nope", "k5", "k1", "k0", "k6", "k2", "k7", "k3"]
        let answer = try KVDMgetTests.mget(connection, keys)
        #expect(answer.status == 200)
        #expect(try KVDMgetTests.values(answer) == ["v4", "v0", nil, "v5", "v1", "v0", "v6", "v2", "v7", "v3"])
        // The four cached keys were hits (k0, named twice, is looked up once); the five others went to Redis.
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_hits_total") == hits + 4)
        #expect(KVDCacheTests.metric(kvd, "kvd_cache_misses_total") == misses + 5)
        // A write to a cached key: once its invalidation has arrived, batches serve the new value.
        try redis.command(["SET", "k1", "changed"])
        #expect(waitUntil(timeout: 10, interval: 0.01) {
            (try? KVDMgetTests.values(KVDMgetTests.mget(connection, ["k0", "k1"]))) == ["v0", "changed"]
        })
        // And never the old one again.
        for _ in 0..<20 { #expect(try KVDMgetTests.values(KVDMgetTests.mget(connection, ["k1", "k0"])) == ["changed", "v0"]) }
    }
}
