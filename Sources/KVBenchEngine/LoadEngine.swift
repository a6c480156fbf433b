import Foundation
import KVBench
import KVDSystem
import Synchronization

/// Runs a `LoadPlan` on its own threads (one event loop each) and merges what they saw.
public enum LoadEngine {
    /// What a finished run hands back.
    public struct Outcome: Sendable {
        public let statistics: RunStatistics
        /// From the start until the last worker finished.
        public let durationSeconds: Double
        /// This process's user + system CPU time during the run.
        public let cpuMicroseconds: UInt64
        public let threads: Int
    }

    /// Runs the plan and blocks until every worker is done. `onProgress` is called about once a second on the
    /// calling thread with (seconds elapsed, responses, errors) so far.
    /// - Throws: `SystemError` when a worker cannot create its epoll or timer descriptor.
    public static func run(_ plan: LoadPlan, onProgress: (Double, Int, Int) -> Void = { _, _, _ in }) throws(SystemError) -> Outcome {
        let threads = max(1, min(plan.threads, plan.connections))
        var connectionShares = [Int](repeating: plan.connections / threads, count: threads)
        for index in 0..<(plan.connections % threads) { connectionShares[index] += 1 }
        // Requests in proportion to connections; sequential order gives each worker its own stretch of keys.
        var quotas: [Int?] = Array(repeating: nil, count: threads)
        var firstKeys = [Int](repeating: 0, count: threads)
        if case .requests(let total) = plan.stop {
            var assigned = 0
            for index in 0..<threads {
                let share = index == threads - 1 ? total - assigned : total * connectionShares[index] / plan.connections
                quotas[index] = share
                firstKeys[index] = assigned
                assigned += share
            }
        } else {
            var keyStart = 0
            for index in 0..<threads {
                firstKeys[index] = keyStart
                keyStart += plan.keys.count * connectionShares[index] / plan.connections
            }
        }

        let progress = (0..<threads).map { _ in WorkerProgress() }
        let results = Mutex<[Result<(RunStatistics, UInt64), SystemError>?]>(Array(repeating: nil, count: threads))
        // Signalled by each worker as it finishes; the caller's thread waits on it between progress reports.
        let finished = NSCondition()
        let cpuBefore = SystemClock.processCPUMicroseconds()
        let startTime = SystemClock.nanoseconds()
        for index in 0..<threads {
            let share = connectionShares[index], quota = quotas[index], firstKey = firstKeys[index], counters = progress[index]
            let thread = Thread {
                let result: Result<(RunStatistics, UInt64), SystemError>
                do throws(SystemError) {
                    let worker = try Worker(plan: plan, index: index, connectionCount: share, quota: quota,
                                            firstSequentialKey: firstKey, progress: counters)
                    let statistics = worker.run(startTime: startTime)
                    result = .success((statistics, SystemClock.nanoseconds()))
                } catch {
                    result = .failure(error)
                }
                results.withLock { $0[index] = result }
                finished.lock()
                finished.signal()
                finished.unlock()
            }
            thread.name = "kvbench-\(index)"
            thread.start()
        }

        var nextReport = Date() + 1
        finished.lock()
        while results.withLock({ $0.contains { $0 == nil } }) {
            if !finished.wait(until: nextReport) {
                nextReport += 1
                let responses = progress.reduce(0) { $0 + $1.responses.load(ordering: .relaxed) }
                let errors = progress.reduce(0) { $0 + $1.errors.load(ordering: .relaxed) }
                onProgress(Double(SystemClock.nanoseconds() - startTime) / 1e9, responses, errors)
            }
        }
        finished.unlock()
        let cpuAfter = SystemClock.processCPUMicroseconds()

        var merged = RunStatistics()
        var lastEnd = startTime
        for result in results.withLock({ $0 }) {
            let (statistics, end) = try result!.get()
            merged.merge(statistics)
            lastEnd = max(lastEnd, end)
        }
        return Outcome(
            statistics: merged,
            durationSeconds: Double(lastEnd - startTime) / 1e9,
            cpuMicroseconds: (cpuAfter.user + cpuAfter.system) - (cpuBefore.user + cpuBefore.system),
            threads: threads
        )
    }
}
