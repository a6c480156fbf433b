// swift-tools-version:6.0
import PackageDescription

/// Settings every Swift target shares: Swift 6 language mode (strict concurrency) is the tools default.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "kvd",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "kvd", targets: ["kvd"]),
        .executable(name: "kvbench", targets: ["kvbench"]),
        .executable(name: "kvload", targets: ["kvload"]),
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
        // The INI file (kvd's own reader: no line limit, both inline comment forms, quoted values) and the typed settings.
        .target(name: "KVDConfig", swiftSettings: swiftSettings),
        // Redis access over hiredis: the only Swift code that touches a redisContext.
        .target(name: "KVDRedis", dependencies: ["CHiredis", "KVDConfig"], swiftSettings: swiftSettings),
        // The HTTP engine: one libmicrohttpd daemon per worker thread, each with its own Redis pipeline.
        .target(
            name: "KVDHTTP",
            dependencies: [
                "CMicroHTTPD", "CKVDShim", "KVDCore", "KVDConfig", "KVDRedis",
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
                "KVDHTTP", "KVDConfig", "KVDRedis", "KVDCore", "KVDSystemd",
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
                "KVDServer", "KVDConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),

        // kvload: streams a data file into Redis (pipelined, constant memory, nothing lost).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Thin wrapper over file descriptors and zlib: the only kvload code that touches C buffers.
        .target(name: "KVLoadInput", dependencies: ["CZlib"], swiftSettings: swiftSettings),
        // Pure Swift: record framing, the seed/csv/tsv/jsonl parsers, RESP batches, the loader.
        .target(name: "KVLoad", dependencies: ["KVLoadInput", "KVDCore", "KVDConfig", "KVDRedis"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "kvload",
            dependencies: [
                "KVLoad", "KVLoadInput", "KVDConfig",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "KVLoadTests", dependencies: ["KVLoad", "KVLoadInput", "KVDTestSupport"], swiftSettings: swiftSettings),
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
        // Linux headers Swift's Glibc module lacks (epoll, timerfd), for KVBenchIO.
        .target(name: "CKVBenchSystem"),
        // The only kvbench code that calls the C library: sockets, epoll, timerfd, clocks, rusage, SIGINT.
        .target(name: "KVBenchIO", dependencies: ["CKVBenchSystem"], swiftSettings: swiftSettings),
        // The load engine: one event loop per thread over non-blocking sockets.
        .target(name: "KVBenchEngine", dependencies: ["KVBench", "KVBenchIO"], swiftSettings: swiftSettings),
        .executableTarget(
            name: "kvbench",
            dependencies: [
                "KVBench", "KVBenchEngine", "KVBenchIO",
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
        .testTarget(name: "KVDConfigTests", dependencies: ["KVDConfig"], swiftSettings: swiftSettings),
        .testTarget(name: "KVDRedisTests", dependencies: ["KVDRedis"], swiftSettings: swiftSettings),
        .testTarget(
            name: "IntegrationTests",
            dependencies: ["KVDTestSupport", "kvd"],
            swiftSettings: swiftSettings
        ),
    ]
)
