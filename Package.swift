// swift-tools-version:6.0
import PackageDescription

/// Settings every Swift target shares: Swift 6 language mode (strict concurrency) is the tools default.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "kvd",
    products: [
        .executable(name: "kvd", targets: ["kvd"]),
        .executable(name: "kvbench", targets: ["kvbench"]),
        .executable(name: "kvload", targets: ["kvload"]),
        // For Fuzz/ (its own package, depending on this one by path): the modules its harnesses feed.
        .library(name: "KVDCore", targets: ["KVDCore"]),
        .library(name: "KVDConfig", targets: ["KVDConfig"]),
        .library(name: "KVDRedis", targets: ["KVDRedis"]),
        .library(name: "KVLoad", targets: ["KVLoad"]),
        .library(name: "KVBench", targets: ["KVBench"]),
        // For bench/cache-sharing: per-worker near-caches against one shared behind a lock.
        .library(name: "KVDCache", targets: ["KVDCache"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.0"),
        // kvd's /metrics (issue 5): swift-metrics API, Prometheus text exposition.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // kvbench: latency histograms.
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        // System libraries, from Debian's -dev packages.
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd", providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // The C shim: only what Swift cannot call well (libmicrohttpd's variadic start call).
        .target(name: "CKVDShim", dependencies: ["CMicroHTTPD"]),

        // Pure Swift: routing, key decoding, JSON encoding, error bodies.
        .target(name: "KVDCore", swiftSettings: swiftSettings),
        // Where a pair lives in Redis: layouts, buckets, dataset generations (pure Swift, shared by kvd and kvload).
        .target(name: "KVDDataset", swiftSettings: swiftSettings),
        // The near-cache: values read from Redis, bounded in bytes, invalidated by Redis (pure Swift).
        .target(name: "KVDCache", swiftSettings: swiftSettings),
        // The system layer of all three tools: clocks, standard streams, files, secrets, signals, exit statuses,
        // sockets, epoll and timerfd. The only Swift code that calls the C library directly (outside the
        // wrappers of libmicrohttpd, hiredis, zlib and libsystemd).
        .target(name: "KVDSystem", dependencies: ["CKVDSystem"], swiftSettings: swiftSettings),
        // Linux headers Swift's Glibc module lacks (epoll, timerfd, TCP_NODELAY), for KVDSystem.
        .target(name: "CKVDSystem"),
        // The settings of every tool as plain values with their defaults; depends on nothing.
        .target(name: "KVDSettings", swiftSettings: swiftSettings),
        // The INI file (kvd's own reader: no line limit, both inline comment forms, quoted values):
        // parsing, validating and reading secrets into KVDSettings' types.
        .target(name: "KVDConfig", dependencies: ["KVDSettings", "KVDSystem"], swiftSettings: swiftSettings),
        // The Redis client over hiredis (the only Swift code that touches a redisContext) and
        // kvd's pipeline of lookups; knows nothing of HTTP.
        .target(name: "KVDRedis", dependencies: ["CHiredis", "KVDSettings", "KVDDataset", "KVDCache"], swiftSettings: swiftSettings),
        // kvd's HTTP engine and workers: one libmicrohttpd daemon per worker thread, each with its
        // own Redis pipeline; turns requests into lookups and lookup results into answers.
        .target(
            name: "KVDHTTP",
            dependencies: [
                "CMicroHTTPD", "CKVDShim", "KVDCore", "KVDSettings", "KVDRedis", "KVDSystem",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        // The daemon's life: logging set-up, workers, signals, shutdown.
        .target(
            name: "KVDServer",
            dependencies: [
                "KVDHTTP", "KVDConfig", "KVDCore", "KVDSystem", "KVDSystemd",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),

        // systemd integration (issue 5): sd_notify, the watchdog and socket activation through libsystemd.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(name: "KVDSystemd", dependencies: ["CSystemd"], swiftSettings: swiftSettings),

        .executableTarget(
            name: "kvd",
            dependencies: [
                "KVDServer", "KVDConfig", "KVDSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        // kvload: streams a data file into Redis (pipelined, constant memory, nothing lost).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // The loader: input files (gzip through zlib, in GzipSource.swift), record framing, the seed/csv/tsv/jsonl
        // parsers, RESP batches, the pipelined pump with reconnect and resend, and the --replace strategies.
        .target(name: "KVLoad", dependencies: ["CZlib", "KVDCore", "KVDConfig", "KVDRedis", "KVDSystem", "KVDDataset"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "kvload",
            dependencies: [
                "KVLoad", "KVDConfig", "KVDSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "KVLoadTests", dependencies: ["KVLoad", "KVDTestSupport"], swiftSettings: swiftSettings),
        .testTarget(
            name: "KVLoadIntegrationTests",
            dependencies: ["KVDTestSupport", "kvload"],
            swiftSettings: swiftSettings
        ),

        // kvbench: the load client (issue 4).
        // Pure Swift: key files, Zipf sampling, dataset generation, HTTP response parsing, JSON strings, reports.
        .target(
            name: "KVBench",
            dependencies: ["KVDCore", .product(name: "Histogram", package: "hdrhistogram-swift")],
            swiftSettings: swiftSettings
        ),
        // The load engine: one event loop per thread over non-blocking sockets.
        .target(name: "KVBenchEngine", dependencies: ["KVBench", "KVDSystem"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "kvbench",
            dependencies: [
                "KVBench", "KVBenchEngine", "KVDSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        // KVDCore: responses encoded by kvd's own JSON encoder are decoded back by kvbench's decoder.
        .testTarget(name: "KVBenchTests", dependencies: ["KVBench", "KVDCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "KVBenchIntegrationTests",
            dependencies: ["KVDTestSupport", "KVBench", "kvbench", "kvd", "kvload"],
            swiftSettings: swiftSettings
        ),

        // Test harness: free ports, a real redis-server, child processes, a raw HTTP client.
        .target(name: "KVDTestSupport", swiftSettings: swiftSettings),

        .testTarget(name: "KVDCoreTests", dependencies: ["KVDCore"], swiftSettings: swiftSettings),
        .testTarget(name: "KVDDatasetTests", dependencies: ["KVDDataset"], swiftSettings: swiftSettings),
        // KVDRedis and KVDTestSupport: the read/invalidate race driven step by step against a real Redis.
        .testTarget(name: "KVDCacheTests", dependencies: ["KVDCache", "KVDRedis", "KVDTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "KVDSystemTests", dependencies: ["KVDSystem"], swiftSettings: swiftSettings),
        .testTarget(name: "KVDConfigTests", dependencies: ["KVDConfig"], swiftSettings: swiftSettings),
        .testTarget(name: "KVDRedisTests", dependencies: ["KVDRedis", "KVDTestSupport"], swiftSettings: swiftSettings),
        // kvd end to end; kvload too, for its systemd units (KVDUnitFileTests).
        .testTarget(
            name: "KVDIntegrationTests",
            dependencies: ["KVDTestSupport", "kvd", "kvload"],
            swiftSettings: swiftSettings
        ),
    ]
)
