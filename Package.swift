// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "slotdiff",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "slotdiff", targets: ["slotdiff"]),
        .library(name: "HashSlots", targets: ["HashSlots"]),
        .library(name: "SlotdiffCore", targets: ["SlotdiffCore"]),
        .library(name: "RDB", targets: ["RDB"]),
        .library(name: "RESP", targets: ["RESP"]),
        .library(name: "Keyspace", targets: ["Keyspace"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1")
    ],
    targets: [
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        // The hash slot, at the bottom: the cluster client and the engine share it.
        .target(name: "HashSlots"),
        // Byte kernels in C: CRC64 (carry-less multiply where the CPU has it), LZF, and XXH3-128
        // of short inputs (libxxhash's header inlined).
        .target(name: "CKernels"),
        // Swift's global executor handed to the event loops, in every kind of build.
        .target(name: "CGlobalExecutor"),
        .target(name: "SlotdiffCore", dependencies: ["HashSlots", "CXXHash", "CZstd", "CKernels"]),
        .target(name: "RDB", dependencies: ["SlotdiffCore", "CZstd", "CKernels"]),
        .target(
            name: "RESP",
            dependencies: [
                "HashSlots",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio")
            ]),
        .target(
            name: "Keyspace",
            dependencies: [
                "HashSlots", "SlotdiffCore", "RDB", "RESP", "CZstd",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio")
            ]),
        .executableTarget(
            name: "slotdiff",
            dependencies: [
                "HashSlots", "SlotdiffCore", "RDB", "Keyspace", "RESP", "CKernels", "CGlobalExecutor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio")
            ]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "SlotdiffCoreTests", dependencies: ["HashSlots", "SlotdiffCore", "TestSupport"]),
        .testTarget(name: "RDBTests", dependencies: ["HashSlots", "RDB", "SlotdiffCore", "TestSupport"]),
        .testTarget(
            name: "RESPTests",
            dependencies: [
                "HashSlots", "RESP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio")
            ]),
        // ExplainCheckTests also runs the binary (next to in-process sides): it is kept current.
        .testTarget(
            name: "KeyspaceTests",
            dependencies: [
                "HashSlots", "Keyspace", "RDB", "RESP", "SlotdiffCore", "TestSupport", "slotdiff",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio")
            ]),
        // Suites that run the binary as an operator does; depending on it keeps it from being stale.
        .testTarget(name: "EndToEndTests", dependencies: ["HashSlots", "Keyspace", "RESP", "SlotdiffCore", "TestSupport", "slotdiff"])
    ]
)
