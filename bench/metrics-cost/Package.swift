// swift-tools-version:6.0
// What kvd's /metrics adds to each request, in isolation: a swift-metrics Counter increment and a
// Recorder (Prometheus value histogram) observation, as kvd records them, against the clock read
// a request also costs, measured in the same invocation.
//   swift run -c release --package-path bench/metrics-cost
import PackageDescription

let package = Package(
    name: "metrics-cost",
    dependencies: [
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .executableTarget(
            name: "metrics-cost",
            dependencies: [
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
    ]
)
