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
        var diffs: [Difference] = []
        var summary: [String: Any] = [:]
        if r.status == 0 || r.status == 1 {
            try DiffLogReader(path: log).forEach { diffs.append($0) }
            summary = (try? JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]) ?? [:]
        }
        return CheckRun(run: r, diffs: diffs, summary: summary)
    }
}
