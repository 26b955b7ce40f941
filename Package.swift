// swift-tools-version:6.0
import PackageDescription


let package = Package(
    name: "slotdiff",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "slotdiff", targets: ["slotdiff"]),
        .library(name: "SlotdiffCore", targets: ["SlotdiffCore"]),
        .library(name: "RDB", targets: ["RDB"]),
        .library(name: "RESP", targets: ["RESP"]),
        .library(name: "Keyspace", targets: ["Keyspace"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-collections", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "SlotdiffCore", dependencies: ["CXXHash", "CZstd"]),
        // Byte kernels in C: CRC64 (carry-less multiply where the CPU has it) and LZF.
        .target(name: "CKernels"),
        .target(name: "RDB", dependencies: ["SlotdiffCore", "CZstd", "CKernels"]),
        .target(name: "RESP", dependencies: [
            "SlotdiffCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
            .product(name: "DequeModule", package: "swift-collections"),
        ]),
        .target(name: "Keyspace", dependencies: [
            "SlotdiffCore", "RDB", "RESP", "CZstd",
            .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .executableTarget(name: "slotdiff", dependencies: [
            "SlotdiffCore", "RDB", "Keyspace", "RESP",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
        ]),
        .target(name: "TestSupport", path: "Tests/TestSupport"),
        .testTarget(name: "SlotdiffCoreTests", dependencies: ["SlotdiffCore", "TestSupport"]),
        .testTarget(name: "RDBTests", dependencies: ["RDB", "SlotdiffCore", "TestSupport"]),
        .testTarget(name: "RESPTests", dependencies: ["RESP"]),
        .testTarget(name: "KeyspaceTests", dependencies: [
            // The end-to-end suites run the binary: depending on it keeps it from being stale.
            "Keyspace", "RDB", "RESP", "SlotdiffCore", "TestSupport", "slotdiff",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
        ]),
        .testTarget(name: "CLITests", dependencies: ["SlotdiffCore", "TestSupport", "slotdiff"]),
    ]
)
