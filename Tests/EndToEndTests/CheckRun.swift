import Foundation
import SlotdiffCore
import TestSupport

/// One `slotdiff compare` run as the suites read it: the process, the differences in its log
/// and the summary it printed (`--json`).
struct CheckRun {
    var run: RunResult
    var diffs: [Difference]
    var summary: [String: Any]

    /// "kind db key" per difference, sorted.
    var kinds: [String] { diffs.map { "\($0.kind.rawValue) \($0.db) \($0.displayKey)" }.sorted() }
    /// "kind key" per difference, sorted (one database).
    var kindsByKey: [String] { diffs.map { "\($0.kind.rawValue) \($0.displayKey)" }.sorted() }
    var sourceKeys: Int? { keys("source") }
    var targetKeys: Int? { keys("target") }
    func keys(_ side: String) -> Int? { (summary[side] as? [String: Any])?["keys"] as? Int }
    /// How a side was read, where not by the default plan (`inputs[].read`).
    func read(_ side: String) -> String? {
        ((summary[side] as? [String: Any])?["inputs"] as? [[String: Any]])?.first?["read"] as? String
    }

    /// Runs `compare a b` with its log in `dir`; the log and summary are read when it ran (exit 0 or 1).
    static func compare(
        _ a: String, _ b: String, _ extra: [String] = [], in dir: URL, env: [String: String]? = nil,
        timeout: TimeInterval = 300
    ) throws -> CheckRun {
        let log = dir.appendingPathComponent("run-\(UUID().uuidString).jsonl.zst").path
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env ?? [:] { environment[k] = v }
        let r = try TestSupport.run(
            TestPaths.slotdiffBinary, ["compare", a, b, "--out", log, "--round-delay", "50ms", "--json", "--quiet"] + extra,
            timeout: timeout, environment: environment)
        return try read(r, log: log)
    }

    /// A run that ended (`--json` on standard output, its log at `log`): the log and summary
    /// are read when it ran (exit 0 or 1).
    static func read(_ r: RunResult, log: String) throws -> CheckRun {
        var diffs: [Difference] = []
        var summary: [String: Any] = [:]
        if r.status == 0 || r.status == 1 {
            try DiffLogReader(path: log).forEach { diffs.append($0) }
            summary = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        }
        return CheckRun(run: r, diffs: diffs, summary: summary)
    }

    /// The exact result on the planted data (`Planted`): exit 1 and the 30 keys only the source
    /// holds missing, nothing else.
    var foundThePlantedKeys: Bool {
        run.status == 1 && diffs.count == Planted.onSourceOnly
            && diffs.allSatisfy { $0.kind == .missing && $0.displayKey.hasPrefix("only-on-source:") }
    }
}

/// The data of the fault tests: the same keys on both sides, and `onSourceOnly` keys
/// (`only-on-source:N`) on the source alone, so an exact check finds exactly those missing.
enum Planted {
    static let onSourceOnly = 30

    /// `keys` keys through the cluster at `clusterPort` and on the server at `serverPort`, and
    /// the planted ones on the cluster; with `replicated`, waits until the primary on that port
    /// has its writes on a replica.
    static func fill(cluster clusterPort: Int, server serverPort: Int, keys: Int = 30000, replicated: Int? = nil) throws {
        let python = TestPaths.root.appendingPathComponent(".venv/bin/python").path
        let wait = replicated.map { "assert redis.Redis(port=\($0)).execute_command(\"WAIT\", 1, 10000) == 1" } ?? ""
        let script = """
            import redis
            from redis.cluster import RedisCluster
            c = RedisCluster(host="127.0.0.1", port=\(clusterPort))
            s = redis.Redis(host="127.0.0.1", port=\(serverPort))
            for start in range(0, \(keys), 1000):
                batch = {f"key:{i}": f"value:{i}" for i in range(start, min(start + 1000, \(keys)))}
                c.mset_nonatomic(batch)
                s.mset(batch)
            c.mset_nonatomic({f"only-on-source:{i}": i for i in range(\(onSourceOnly))})
            \(wait)
            """
        let r = try run(python, ["-c", script], timeout: 120)
        if r.status != 0 { throw TestServers.Failure(description: "filling the planted data failed: \(r.stderr)") }
    }

    /// The same on two standalone servers (`fill` Lua script: `k:N` strings and `h:N` hashes).
    static let onSource = "for i = 1, \(onSourceOnly) do redis.call('SET', 'only-on-source:' .. i, i) end return 1"
}
