// swift-tools-version:6.0
// libFuzzer harnesses for kvd's parsers: a package of its own, so that `swift build` and `swift test`
// of the main package never see them. It depends on the main package by path, through the library
// products that Package.swift declares for it. The harnesses define `LLVMFuzzerTestOneInput` and no
// a main.swift that hands control to libFuzzer's driver, so they build only with the fuzzer flag;
// `make fuzz` (scripts/fuzz.sh) builds them into ../.build-fuzz:
//
//   swift build --package-path Fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address
//
// Each harness checks properties of what the parser accepts (round trips, re-serialisation, agreement
// with a reference), not only that it does not crash. Seed inputs: Corpus/<harness>/.
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// One executable per harness: Sources/<name>/Harness.swift (the checks) and main.swift (the driver).
let harnesses: [(name: String, dependencies: [Target.Dependency])] = [
    ("fuzz-ini", [.product(name: "KVDConfig", package: "kvd")]),
    ("fuzz-route", [.product(name: "KVDCore", package: "kvd")]),
    ("fuzz-mget", [.product(name: "KVDCore", package: "kvd")]),
    ("fuzz-json-string", [.product(name: "KVDCore", package: "kvd"), .product(name: "KVBench", package: "kvd")]),
    ("fuzz-records", [.product(name: "KVLoad", package: "kvd")]),
    ("fuzz-seed", [.product(name: "KVLoad", package: "kvd")]),
    ("fuzz-csv", [.product(name: "KVLoad", package: "kvd")]),
    ("fuzz-tsv", [.product(name: "KVLoad", package: "kvd")]),
    ("fuzz-jsonl", [.product(name: "KVLoad", package: "kvd"), .product(name: "KVDCore", package: "kvd")]),
    ("fuzz-resp", [.product(name: "KVDRedis", package: "kvd")]),
    ("fuzz-cluster", [.product(name: "KVDRedis", package: "kvd")]),
    ("fuzz-http-response", [.product(name: "KVBench", package: "kvd")]),
    ("fuzz-cache", [.product(name: "KVDCache", package: "kvd")]),
]

let package = Package(
    name: "kvd-fuzz",
    platforms: [.macOS(.v13)],
    dependencies: [.package(name: "kvd", path: "..")],
    targets: [
        // Shared by the harnesses: the failure report, an in-memory ByteSource, record splitting.
        .target(name: "CFuzzerDriver"),
        .target(
            name: "FuzzSupport",
            dependencies: ["CFuzzerDriver", .product(name: "KVLoad", package: "kvd")],
            swiftSettings: swiftSettings
        ),
    ] + harnesses.map { harness in
        .executableTarget(name: harness.name, dependencies: ["FuzzSupport"] + harness.dependencies, swiftSettings: swiftSettings)
    }
)
