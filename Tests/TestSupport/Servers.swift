import Foundation

/// Real servers for the integration tests, started and stopped with `Scripts/servers`
/// (Redis 7.0 from Debian, Valkey 8.1 and Redis 8.2 from the wheels in .venv).
public enum TestServers {
    public enum Kind: String, Sendable { case redis7, valkey8, redis8 }

    static let script = TestPaths.root.appendingPathComponent("Scripts/servers").path

    /// True when the server binaries are installed. With CI=true the tests run regardless
    /// (and fail if a server cannot start): they are never skipped there.
    public static var available: Bool {
        if TestPaths.mustRunServerTests { return true }
        let venv = TestPaths.root.appendingPathComponent(".venv/bin/python").path
        return FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server") && FileManager.default.isExecutableFile(atPath: venv)
    }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
        public init(description: String) { self.description = description }
    }

    @discardableResult
    static func servers(_ args: [String], timeout: TimeInterval = 180) throws -> String {
        let r = try run("/bin/bash", [script] + args, timeout: timeout)
        if r.status != 0 { throw Failure(description: "Scripts/servers \(args.joined(separator: " ")) failed: \(r.stderr)\(r.stdout)") }
        return r.stdout
    }

    /// Starts a standalone server, optionally loaded from a dump file.
    public static func start(_ name: String, _ kind: Kind, port: Int, load: String? = nil, args: [String] = []) throws {
        if let load {
            try servers(["load", name, kind.rawValue, "\(port)", load] + args)
        } else {
            try servers(["start", name, kind.rawValue, "\(port)"] + args)
        }
    }

    /// Starts a cluster of `n` primaries on base...base+n-1 (bus ports +10000).
    public static func cluster(_ name: String, _ kind: Kind, base: Int, n: Int) throws {
        try servers(["cluster", name, kind.rawValue, "\(base)", "\(n)"])
    }

    /// Adds a replica of the cluster node on port `of` to cluster `name`, on `port`, in sync when this returns.
    public static func clusterReplica(_ name: String, port: Int, of primary: Int) throws {
        try servers(["cluster-replica", name, "\(port)", "\(primary)"])
    }

    /// Starts a stopped or killed server (or cluster node, by its port) again in place: its
    /// files (dump.rdb, nodes.conf) and the arguments it was first started with.
    public static func revive(_ name: String, port: Int? = nil) throws {
        try servers(["revive", name] + (port.map { ["\($0)"] } ?? []))
    }

    public static func stop(_ name: String) {
        _ = try? servers(["stop", name])
    }

    /// How many times the server ran a command since its stats were last reset
    /// (INFO commandstats; 0 when never).
    public static func calls(port: Int, _ command: String) throws -> Int {
        let stats = try cli(port: port, ["INFO", "commandstats"])
        let line = stats.split(whereSeparator: \.isNewline).first { $0.hasPrefix("cmdstat_\(command):") }
        return line.flatMap { $0.split(separator: "=").dropFirst().first?.split(separator: ",").first }.flatMap { Int($0) } ?? 0
    }

    /// redis-cli against a port (for test set-up only: the product never writes).
    @discardableResult
    public static func cli(port: Int, _ args: [String], cluster: Bool = false) throws -> String {
        let r = try run("/usr/bin/redis-cli", ["-p", "\(port)"] + (cluster ? ["-c"] : []) + args)
        if r.status != 0 { throw Failure(description: "redis-cli \(args) failed: \(r.stderr)") }
        return r.stdout
    }
}

/// Test hosts in network namespaces (`Scripts/test-host`): a server behind a link of its own,
/// which a test can cut (a partition) or slow down.
public enum TestHosts {
    static let script = TestPaths.root.appendingPathComponent("Scripts/test-host").path

    /// Why this machine cannot make test hosts (not root, no veth, no tc), or nil when it can:
    /// the tests that need them are then skipped with this reason, printed.
    public static let unavailable: String? = {
        guard let r = try? run("/bin/bash", [script, "check"], timeout: 60) else { return "Scripts/test-host check did not run" }
        return r.status == 0 ? nil : (r.stdout + r.stderr).trimmingCharacters(in: .whitespacesAndNewlines)
    }()

    @discardableResult
    public static func host(_ args: [String]) throws -> String {
        let r = try run("/bin/bash", [script] + args, timeout: 120)
        if r.status != 0 { throw TestServers.Failure(description: "Scripts/test-host \(args.joined(separator: " ")) failed: \(r.stderr)\(r.stdout)") }
        return r.stdout
    }

    /// Starts test host `name` (10.77.`net`.2) with a `kind` server on `port`; its address.
    public static func up(_ name: String, net: Int, _ kind: TestServers.Kind, port: Int) throws -> String {
        try host(["up", name, "\(net)"])
        try host(["serve", name, kind.rawValue, "\(port)"])
        return "10.77.\(net).2:\(port)"
    }

    public static func down(_ name: String) { _ = try? host(["down", name]) }
}
