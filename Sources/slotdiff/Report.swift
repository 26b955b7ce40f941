import ArgumentParser
import Foundation
import Keyspace
import SlotdiffCore

extension Slotdiff {
    struct Report: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read, merge, filter and summarise diff logs.")

        @Argument(help: "Diff logs (.jsonl.zst) written by compare.") var logs: [String]

        @Option(help: "Only this kind (repeatable): missing, extra, type, value, ttl, duplicate.")
        var kind: [DifferenceKind] = []

        @Option(help: "Only this database (repeatable).") var db: [Int] = []
        @Option(help: "Only keys matching this glob.") var match: String?
        @Option(help: "Output: table, json (one document) or jsonl (the log lines).")
        var format: Format = .table
        @Option(help: "Show at most this many differences in the table (0: all).") var limit: Int = 100
        @Option(help: "Also write a self-contained HTML page: summary, heat map of differences per hash slot, first keys per kind.")
        var html: String?

        @Flag(help: "Read logs without a closing record (a run interrupted, killed or failed) too, with a warning, instead of refusing them.")
        var allowIncomplete = false

        enum Format: String, ExpressibleByArgument { case table, json, jsonl }

        func validate() throws {
            if limit < 0 { throw ValidationError("--limit \(limit): must be 0 (all) or more") }
        }

        /// Nil when the log may be shown; otherwise why not (or, with --allow-incomplete, a warning).
        func incomplete(_ r: DiffLogReader) throws -> String? {
            do { return try r.incompleteness(allowIncomplete: allowIncomplete) } catch let e as SlotdiffError { throw fail(e.description) }
        }

        func run() throws {
            // Nothing is read before the page is known to be writable, and not over a log.
            if let html {
                do {
                    try Outputs.checkDistinct(
                        [OutputFile(what: "the page (--html)", path: html)],
                        inputs: logs.map { ("the diff log", $0) } + logs.map { ("a summary", CheckOutputs.summaryPath(forLog: $0)) })
                    try Outputs.checkWritable(OutputFile(what: "the page (--html)", path: html))
                } catch let e as SlotdiffError {
                    throw fail(e.description)
                }
            }
            let filter = DifferenceFilter(kinds: kind, dbs: db, match: match.map(GlobPattern.init))
            var rows: [Difference] = []
            var counts: [DifferenceKind: Int] = [:]
            var warnings: [String] = []
            var page = HTMLReport(title: "slotdiff report", sources: logs)
            do {
                // Lines go out as they are read: every log is known complete first.
                if format == .jsonl {
                    for path in logs {
                        let r = DiffLogReader(path: path)
                        try r.scan()
                        _ = try incomplete(r)
                    }
                }
                for path in logs {
                    let r = DiffLogReader(path: path)
                    try r.forEach { d in
                        if !filter.admits(d) { return }
                        counts[d.kind, default: 0] += 1
                        page.add(d)
                        if format == .jsonl { print(d.jsonLine()); return }
                        if format == .json || limit == 0 || rows.count < limit { rows.append(d) }
                    }
                    if let w = try incomplete(r) { warnings.append(w) }
                }
            } catch let e as SlotdiffError {
                throw fail(e.description)
            }
            for w in warnings {
                FileHandle.standardError.write(Data("slotdiff: warning: \(w)\n".utf8))
            }
            if let html {
                do { try Outputs.write(Data(page.html().utf8), to: html) } catch let e as SlotdiffError {
                    throw fail(e.description)
                }
            }
            let total = counts.values.reduce(0, +)
            let merged = Self.mergedSummaries(logs)
            switch format {
            case .jsonl: break
            case .json:
                let lines = rows.map { $0.jsonLine() }.joined(separator: ",\n  ")
                let c = DifferenceKind.allCases.map { "\"\($0.rawValue)\":\(counts[$0] ?? 0)" }.joined(separator: ",")
                let runs =
                    merged.map { m in
                        let fields = [
                            "runs": m.runs, "source_keys": m.counts.sourceKeys, "target_keys": m.counts.targetKeys,
                            "compared": m.counts.compared, "matched": m.counts.matched, "expired": m.counts.expired
                        ]
                        return ",\"runs\":{" + fields.map { "\"\($0.key)\":\($0.value)" }.sorted().joined(separator: ",") + "}"
                    } ?? ""
                print("{\"total\":\(total),\"counts\":{\(c)}\(runs),\"differences\":[\n  \(lines)\n]}")
            case .table:
                print(Self.table(rows))
                if total > rows.count { print("… \(total - rows.count) more (use --limit 0 or --format jsonl)") }
                let c = DifferenceKind.allCases.compactMap { k in counts[k].map { "\(k.rawValue) \($0)" } }.joined(separator: ", ")
                print("\(total) differences" + (c.isEmpty ? "" : ": \(c)"))
                if let m = merged, logs.count > 1 {
                    print(
                        "\(m.runs) runs merged: \(m.counts.sourceKeys) source keys, \(m.counts.targetKeys) target keys, "
                            + "\(m.counts.compared) compared, \(m.counts.matched) equal, \(m.counts.expired) expired")
                }
            }
        }

        /// The summaries written beside the logs (NAME.summary.json), added up: one result for the
        /// runs of a check split with --shard. Nil when any is missing or unreadable.
        static func mergedSummaries(_ logs: [String]) -> (runs: Int, counts: CompareCounts)? {
            var total = CompareCounts()
            for log in logs {
                guard let data = FileManager.default.contents(atPath: CheckOutputs.summaryPath(forLog: log)),
                    let s = try? Summary(json: data)
                else { return nil }
                total = total + s.counts
            }
            return (logs.count, total)
        }

        static func table(_ rows: [Difference]) -> String {
            func side(_ s: SideState?) -> String {
                guard let s else { return "-" }
                let exp = s.expireMs.map { "exp " + iso($0) } ?? "no expiry"
                return "\(s.type), \(exp), \(s.digest.description.prefix(8))"
            }
            var cells = [["KIND", "DB", "SLOT", "KEY", "SOURCE", "TARGET"]]
            // What differs goes under its row, indented, not into a column.
            var details: [Int: [String]] = [:]
            for d in rows {
                cells.append([d.kind.rawValue, "\(d.db)", "\(d.slot)", d.displayKey, side(d.source), side(d.target)])
                if let detail = d.detail { details[cells.count - 1] = Explain.lines(detail) }
            }
            let widths = (0..<6).map { c in min(48, cells.map { $0[c].count }.max() ?? 0) }
            return cells.enumerated().map { n, row in
                let line = row.enumerated().map { i, v in
                    let t = v.count > widths[i] ? String(v.prefix(widths[i] - 1)) + "…" : v
                    return t.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                }.joined(separator: "  ")
                return ([line] + (details[n] ?? []).map { "    " + $0 }).joined(separator: "\n")
            }.joined(separator: "\n")
        }

        static func iso(_ ms: Int64) -> String {
            let f = ISO8601DateFormatter()
            f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            return f.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
        }
    }
}
