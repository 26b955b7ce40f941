// swift-tools-version:6.1
// Micro-benchmarks of slotdiff's hot kernels, in a package of their own so that the main package
// (one level up) carries no benchmark dependency. Run them with Scripts/bench-kernels.
import PackageDescription

let package = Package(
    name: "slotdiff-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        // Only the MallocInterposer trait: the default set also asks for a runtime interposer
        // (ARC counts on Swift 6.3 Linux) that is not needed for the malloc counts read here.
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(name: "slotdiff", path: "..")
    ],
    targets: [
        .executableTarget(
            name: "Kernels",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "HashSlots", package: "slotdiff"),
                .product(name: "SlotdiffCore", package: "slotdiff"),
                .product(name: "RDB", package: "slotdiff"),
                .product(name: "RESP", package: "slotdiff"),
                .product(name: "Keyspace", package: "slotdiff"),
                .product(name: "NIOCore", package: "swift-nio")
            ],
            path: "Benchmarks/Kernels",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        )
    ]
)
