import KVDCore
import Testing

@Suite("HeartbeatMonitor")
struct HeartbeatMonitorTests {
    @Test func firstCheckNeverStalls() {
        var monitor = HeartbeatMonitor()
        #expect(monitor.stalledWorkers([0, 0]).isEmpty)
    }

    @Test func workersThatAdvancedAreAlive() {
        var monitor = HeartbeatMonitor()
        _ = monitor.stalledWorkers([5, 9])
        #expect(monitor.stalledWorkers([6, 100]).isEmpty)
    }

    @Test func aCounterThatStandsStillIsAStall() {
        var monitor = HeartbeatMonitor()
        _ = monitor.stalledWorkers([5, 9, 3])
        #expect(monitor.stalledWorkers([6, 9, 3]) == [1, 2])
        // It recovers as soon as it moves again.
        #expect(monitor.stalledWorkers([7, 10, 4]).isEmpty)
    }

    @Test func wrappingCountersStillCountAsProgress() {
        var monitor = HeartbeatMonitor()
        _ = monitor.stalledWorkers([UInt64.max])
        #expect(monitor.stalledWorkers([0]).isEmpty)
    }
}
