// swift-tools-version:6.0
// Per-worker near-caches or one shared cache behind a lock: what a hit costs either way, with the
// worker threads kvd runs (2 here) hitting at once, measured in the same invocation. kvd's
// NearCache (KVDCache) is the cache in both; a hit writes (the CLOCK reference bit, statistics),
// so a shared one needs an exclusive lock.
//   swift run -c release --package-path bench/cache-sharing [THREADS]
import PackageDescription

let package = Package(
    name: "cache-sharing",
    dependencies: [.package(name: "kvd", path: "../..")],
    targets: [
        .executableTarget(name: "cache-sharing", dependencies: [.product(name: "KVDCache", package: "kvd")]),
    ]
)
