import Foundation

/// The result of one check: written as JSON beside the diff log and printed as a table.
public struct Summary: Sendable {
    public struct SideInfo: Sendable {
        public var spec: String
        public var inputs: [[String: String]]
        /// Entries of a directory side that were not read, each with `path` and `reason`.
        public var skipped: [[String: String]]
        public init(spec: String, inputs: [[String: String]], skipped: [[String: String]] = []) {
            self.spec = spec
            self.inputs = inputs
            self.skipped = skipped
        }
    }

    public var source: SideInfo
    public var target: SideInfo
    public var counts: CompareCounts
    public var filteredOut = 0
    public var emptySkipped = 0
    public var seconds: Double = 0
    public var log: String?
    public var ttlToleranceMs: Int64 = 1000
    public var startedAt = Date()
    public var mode = "digest"
    public var passes = 1
    /// Set when the run was stopped (Ctrl-C) with passes left: a partial result.
    public var interruptedPassesLeft: Int?
    /// A sampled check (`--sample`): its estimate for the whole keyspace.
    public var sample: SampleEstimate?

    /// Live checks: differences of the first pass, and how many each re-check round cleared.
    public struct Recheck: Sendable {
        public var rounds: Int
        public var firstRound: Int
        public var resolvedPerRound: [Int]
        public init(rounds: Int, firstRound: Int, resolvedPerRound: [Int]) {
            self.rounds = rounds
            self.firstRound = firstRound
            self.resolvedPerRound = resolvedPerRound
        }
    }
    public var recheck: Recheck?

    public init(source: SideInfo, target: SideInfo, counts: CompareCounts) {
        self.source = source
        self.target = target
        self.counts = counts
    }

    /// What an operator must look at before trusting the result: a side that lists no key
    /// while the other lists some is more often a wrong URL, database or permission than a
    /// migration that moved nothing.
    public var warnings: [String] {
        var w: [String] = []
        for (name, mine, other) in [("source", counts.sourceKeys, counts.targetKeys), ("target", counts.targetKeys, counts.sourceKeys)]
        where mine == 0 && other > 0 {
            w.append("the \(name) lists no keys while the other side lists \(other): check its URL, database, filters and the user's permissions")
        }
        return w
    }

    /// 0 the sides match, 1 differences were found.
    public var exitCode: Int32 { counts.totalDifferences == 0 ? 0 : 1 }
    public var result: String {
        interruptedPassesLeft != nil ? "interrupted" : counts.totalDifferences == 0 ? "match" : "differences"
    }

    public func json() -> String {
        var o: [String: Any] = [
            "result": result,
            "source": ["spec": source.spec, "inputs": source.inputs, "keys": counts.sourceKeys],
            "target": ["spec": target.spec, "inputs": target.inputs, "keys": counts.targetKeys],
            "compared": counts.compared,
            "matched": counts.matched,
            "expired": counts.expired,
            "differences": Dictionary(uniqueKeysWithValues: DifferenceKind.allCases.map { ($0.rawValue, counts.differences[$0] ?? 0) }),
            "differences_total": counts.totalDifferences,
            "differences_by_type": counts.differencesByType,
            "filtered_out": filteredOut,
            "empty_collections_skipped": emptySkipped,
            "ttl_tolerance_ms": ttlToleranceMs,
            "started_at": ISO8601DateFormatter().string(from: startedAt),
            "seconds": (seconds * 1000).rounded() / 1000,
        ]
        for (name, side) in [("source", source), ("target", target)] where !side.skipped.isEmpty {
            var d = o[name] as! [String: Any]
            d["skipped"] = side.skipped
            o[name] = d
        }
        if let log { o["log"] = log }
        o["warnings"] = warnings
        o["mode"] = mode
        o["passes"] = passes
        if let left = interruptedPassesLeft { o["passes_left"] = left }
        if let sample { o["sample"] = sample.json }
        if let r = recheck {
            o["recheck"] = ["rounds": r.rounds, "first_round_differences": r.firstRound, "resolved_per_round": r.resolvedPerRound]
        }
        let data = try! JSONSerialization.data(withJSONObject: o, options: [.prettyPrinted, .sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }

    public func table() -> String {
        var rows: [(String, String)] = [
            ("source", "\(source.spec) (\(counts.sourceKeys) keys)"),
            ("target", "\(target.spec) (\(counts.targetKeys) keys)"),
            ("compared", "\(counts.compared) keys on both sides, \(counts.matched) equal"),
        ]
        for k in DifferenceKind.allCases {
            let n = counts.differences[k] ?? 0
            if n > 0 || k != .duplicate { rows.append((k.rawValue, "\(n)")) }
        }
        if let r = recheck, r.firstRound > 0 {
            rows.append(("re-checked", "\(r.firstRound) first-round differences; cleared per round: \(r.resolvedPerRound.map(String.init).joined(separator: ", "))"))
        }
        if counts.expired > 0 { rows.append(("expired", "\(counts.expired) (on one side only, past its expiry: not a difference)")) }
        if filteredOut > 0 { rows.append(("filtered out", "\(filteredOut)")) }
        if emptySkipped > 0 { rows.append(("empty collections", "\(emptySkipped) (not loadable by a server, skipped)")) }
        for (name, side) in [("source", source), ("target", target)] where !side.skipped.isEmpty {
            rows.append(("\(name) skipped", "\(side.skipped.count) entries of its directory, not dump files: "
                         + side.skipped.prefix(3).compactMap { $0["path"].map { ($0 as NSString).lastPathComponent } }.joined(separator: ", ")
                         + (side.skipped.count > 3 ? ", …" : "")))
        }
        for w in warnings { rows.append(("WARNING", w)) }
        if let e = sample {
            rows.append(("sample", "\(SlotSample.format(e.percent))% of the slots (seed \(e.seed)): \(e.sampledSlots) of \(e.populationSlots) slots checked, "
                         + "\(e.found) differences in \(e.slotsWithDifferences) of them"))
            rows.append(("ESTIMATE", e.sampledSlots >= e.populationSlots ? "every slot was checked: the counts above are exact"
                         : String(format: "about %.0f differences in all %d slots (95%% interval %.0f to %.0f); an estimate from a sample, not a full check",
                                  e.estimate, e.populationSlots, e.low.rounded(.down), e.high.rounded(.up))))
        }
        let inSample = sample.map { $0.sampledSlots < $0.populationSlots } == true ? " in the sampled slots" : ""
        rows.append(("result", counts.totalDifferences == 0 ? "MATCH\(inSample)" : "\(counts.totalDifferences) DIFFERENCES\(inSample)"))
        rows.append(("time", String(format: "%.2f s", seconds)))
        if let log { rows.append(("log", log)) }
        let w = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}
