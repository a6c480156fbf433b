// swift-tools-version:6.0
// What the near-cache costs per request on its own, at the benchmark's sizes: one worker's cache
// (128 MiB of seed-like pairs), warmed as bench/cache-bench.sh warms it, then GETs of uniform and
// of Zipf(0.99) keys over 1M, each miss offered to the cache as kvd offers it (admits, store).
// Between two lookups it reads POLLUTE_KB (16) KiB of other memory, as the rest of a request
// does (the HTTP and Redis work evicts the cache's lines from the CPU's caches); that time is
// measured alone and taken off. Nanoseconds per request, median of ROUNDS.
//   swift run -c release --package-path bench/cache-lookup
import PackageDescription

let package = Package(
    name: "cache-lookup",
    dependencies: [.package(name: "kvd", path: "../..")],
    targets: [
        .executableTarget(name: "cache-lookup", dependencies: [
            .product(name: "KVDCache", package: "kvd"),
            .product(name: "KVBench", package: "kvd"),
        ]),
    ]
)
