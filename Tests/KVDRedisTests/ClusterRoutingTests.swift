@testable import KVDRedis
import Testing

/// The cluster pipeline's pure decisions: what a reply means, how many redirects a lookup
/// follows, when the slot map is read again.
@Suite("Cluster routing decisions")
struct ClusterRoutingTests {
    let nodeB = NodeAddress(host: "127.0.0.1", port: 7001)

    @Test func redirectsAreFollowedAtMostFiveTimes() {
        for redirects in 0..<ClusterRouting.maxRedirects {
            #expect(ClusterRouting.action(for: .error("MOVED 42 127.0.0.1:7001"), redirects: redirects) == .moved(slot: 42, node: nodeB))
            #expect(ClusterRouting.action(for: .error("ASK 42 127.0.0.1:7001"), redirects: redirects) == .ask(nodeB))
        }
        #expect(ClusterRouting.action(for: .error("MOVED 42 127.0.0.1:7001"), redirects: 5) == .tooManyRedirects)
        #expect(ClusterRouting.action(for: .error("ASK 42 127.0.0.1:7001"), redirects: 5) == .tooManyRedirects)
        // A lookup's redirect count grows with each resend.
        var job = ClusterJob.lookup(key: [1], redirects: 0, startedMs: 7)
        for _ in 0..<5 { job = job.redirected }
        guard case .lookup(_, let redirects, let started) = job else { Issue.record("\(job)"); return }
        #expect(redirects == 5 && started == 7)
    }

    @Test func ipv6RedirectTargets() {
        #expect(ClusterRouting.action(for: .error("MOVED 1 ::1:7005"), redirects: 0) == .moved(slot: 1, node: NodeAddress(host: "::1", port: 7005)))
        #expect(ClusterRouting.action(for: .error("ASK 16383 [fe80::2]:6379"), redirects: 0) == .ask(NodeAddress(host: "fe80::2", port: 6379)))
    }

    @Test func retriesRefusalsAndPlainAnswers() {
        #expect(ClusterRouting.action(for: .error("TRYAGAIN Multiple keys request during rehashing of slot"), redirects: 0) == .retry(refreshMap: false))
        #expect(ClusterRouting.action(for: .error("CLUSTERDOWN The cluster is down"), redirects: 0) == .retry(refreshMap: true))
        #expect(ClusterRouting.action(for: .error("CLUSTERDOWN Hash slot not served"), redirects: 3) == .retry(refreshMap: true))
        #expect(ClusterRouting.action(for: .error("LOADING Redis is loading the dataset in memory"), redirects: 0) == .refused)
        #expect(ClusterRouting.action(for: .error("WRONGTYPE Operation against a key holding the wrong kind of value"), redirects: 0) == .deliver)
        #expect(ClusterRouting.action(for: .error("MOVED nonsense"), redirects: 0) == .deliver)
        #expect(ClusterRouting.action(for: .bulk([1, 2]), redirects: 0) == .deliver)
        #expect(ClusterRouting.action(for: .null, redirects: 5) == .deliver)
        // Retried until command_timeout_ms after the lookup started.
        #expect(ClusterRouting.mayRetry(startedMs: 1000, nowMs: 1000, commandTimeoutMs: 1000))
        #expect(ClusterRouting.mayRetry(startedMs: 1000, nowMs: 1900, commandTimeoutMs: 1000))
        #expect(!ClusterRouting.mayRetry(startedMs: 1000, nowMs: 1950, commandTimeoutMs: 1000))
    }

    @Test func movedPatchesOneSlotAndKeepsTheRest() throws {
        let slots = RedisReply.array([
            .array([.integer(0), .integer(8191), .array([.bulk(Array("a".utf8)), .integer(1)])]),
            .array([.integer(8192), .integer(16383), .array([.bulk(Array("b".utf8)), .integer(2)])]),
        ])
        var map = try ClusterSlotMap(clusterSlots: slots, answeredBy: NodeAddress(host: "a", port: 1))
        map.move(slot: 100, to: NodeAddress(host: "b", port: 2))
        #expect(map.shard(forSlot: 100) == 1)
        #expect(map.shard(forSlot: 99) == 0 && map.shard(forSlot: 101) == 0)
        #expect(map.shards.count == 2 && map.coversEverySlot)
        #expect(ClusterTopologySummary(map).description == "2 masters (a:1, b:2), 0 replicas (), all 16384 slots covered")
    }

    @Test func oneRefreshInFlightAtATime() {
        var schedule = MapRefreshSchedule(periodMs: 10_000)
        // The first map is wanted at once.
        #expect(schedule.isDue(nowMs: 0))
        schedule.started(nowMs: 0)
        // However many MOVED replies ask meanwhile, none starts while one is in flight.
        for _ in 0..<10 { schedule.request() }
        #expect(!schedule.isDue(nowMs: 50_000) && schedule.nextDueMs() == nil)
        schedule.finished(gotMap: true, changed: true)
        // The requests made during the refresh make one more, at least the minimum gap after the last.
        #expect(schedule.nextDueMs() == MapRefreshSchedule.minimumGapMs)
        schedule.started(nowMs: 200)
        schedule.finished(gotMap: true, changed: false)
        // Nothing asked: the periodic one.
        #expect(schedule.nextDueMs() == 10_200)
        #expect(!schedule.isDue(nowMs: 10_199) && schedule.isDue(nowMs: 10_200))
    }

    @Test func afterANodeFailureTheMapIsReadUntilItChanges() {
        var schedule = MapRefreshSchedule(periodMs: 10_000)
        schedule.started(nowMs: 0)
        schedule.finished(gotMap: true, changed: true)
        schedule.requestUntilChange(nowMs: 1000)
        var time: Int64 = 1000
        for _ in 0..<5 {
            #expect(schedule.isDue(nowMs: time))
            schedule.started(nowMs: time)
            schedule.finished(gotMap: true, changed: false)
            time += MapRefreshSchedule.minimumGapMs
        }
        schedule.started(nowMs: time)
        schedule.finished(gotMap: true, changed: true)
        #expect(schedule.nextDueMs() == time + 10_000)
        // A failed refresh (node down) asks again soon.
        schedule.started(nowMs: time + 1)
        schedule.finished(gotMap: false, changed: false)
        #expect(schedule.nextDueMs() == time + 1 + MapRefreshSchedule.minimumGapMs)
    }

    @Test func untilChangeGivesUpAfterItsLimit() {
        var schedule = MapRefreshSchedule(periodMs: 10_000)
        schedule.requestUntilChange(nowMs: 0)
        var time: Int64 = 0
        while time <= MapRefreshSchedule.untilChangeLimitMs {
            schedule.started(nowMs: time)
            schedule.finished(gotMap: true, changed: false)
            time += MapRefreshSchedule.minimumGapMs
        }
        #expect(schedule.untilChangeEndsMs == nil)
        #expect(schedule.nextDueMs() == time - MapRefreshSchedule.minimumGapMs + 10_000)
    }
}
