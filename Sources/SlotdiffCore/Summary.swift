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
    /// `--db-map` pairs, `SOURCE=TARGET,…`: log lines name the target's database (`db`) and the source's (`source_db`).
    public var databaseMap: String?
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

    /// The summary file: pretty-printed JSON with sorted keys (`Codable` below).
    public func json() -> String {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try! enc.encode(self), as: UTF8.self)
    }

    /// A summary file read back (`report`, tests).
    public init(json data: Data) throws {
        self = try JSONDecoder().decode(Summary.self, from: data)
    }

    public func table() -> String {
        var rows: [(String, String)] = [
            ("source", "\(source.spec) (\(counts.sourceKeys) keys)"),
            ("target", "\(target.spec) (\(counts.targetKeys) keys)"),
            ("compared", "\(counts.compared) keys on both sides, \(counts.matched) equal")
        ]
        if let m = databaseMap { rows.append(("databases", "source=target \(m) (log lines: db is the target's, source_db the source's)")) }
        for k in DifferenceKind.allCases {
            let n = counts.differences[k] ?? 0
            if n > 0 || k != .duplicate { rows.append((k.rawValue, "\(n)")) }
        }
        if let r = recheck, r.firstRound > 0 {
            rows.append(
                ("re-checked", "\(r.firstRound) first-round differences; cleared per round: \(r.resolvedPerRound.map(String.init).joined(separator: ", "))"))
        }
        if counts.expired > 0 { rows.append(("expired", "\(counts.expired) (on one side only, past its expiry: not a difference)")) }
        if filteredOut > 0 { rows.append(("filtered out", "\(filteredOut)")) }
        if emptySkipped > 0 { rows.append(("empty collections", "\(emptySkipped) (not loadable by a server, skipped)")) }
        for (name, side) in [("source", source), ("target", target)] where !side.skipped.isEmpty {
            rows.append(
                (
                    "\(name) skipped",
                    "\(side.skipped.count) entries of its directory, not dump files: "
                        + side.skipped.prefix(3).compactMap { $0["path"].map { ($0 as NSString).lastPathComponent } }.joined(separator: ", ")
                        + (side.skipped.count > 3 ? ", …" : "")
                ))
        }
        // How a side was read, where it is not the default plan (a restricted user, a renamed command).
        for (name, side) in [("source", source), ("target", target)] {
            for read in side.inputs.compactMap({ $0["read"] }) { rows.append(("\(name) read", read)) }
            for throttle in side.inputs.compactMap({ $0["throttle"] }) { rows.append(("\(name) load", throttle)) }
        }
        for w in warnings { rows.append(("WARNING", w)) }
        if let e = sample {
            rows.append(
                (
                    "sample",
                    "\(SlotSample.format(e.percent))% of the slots (seed \(e.seed)): \(e.sampledSlots) of \(e.populationSlots) slots checked, "
                        + "\(e.found) differences in \(e.slotsWithDifferences) of them"
                ))
            rows.append(
                (
                    "ESTIMATE",
                    e.sampledSlots >= e.populationSlots
                        ? "every slot was checked: the counts above are exact"
                        : String(
                            format: "about %.0f differences in all %d slots (95%% interval %.0f to %.0f); an estimate from a sample, not a full check",
                            e.estimate, e.populationSlots, e.low.rounded(.down), e.high.rounded(.up))
                ))
        }
        let inSample = sample.map { $0.sampledSlots < $0.populationSlots } == true ? " in the sampled slots" : ""
        rows.append(("result", counts.totalDifferences == 0 ? "MATCH\(inSample)" : "\(counts.totalDifferences) DIFFERENCES\(inSample)"))
        rows.append(("time", String(format: "%.2f s", seconds)))
        if let log { rows.append(("log", log)) }
        let w = rows.map(\.0.count).max() ?? 0
        return rows.map { $0.0.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + $0.1 }.joined(separator: "\n")
    }
}

/// The summary file's layout: flat counts, each side with its key count, snake_case names.
extension Summary: Codable {
    enum Field: String, CodingKey {
        case result, source, target, compared, matched, expired, differences, log, warnings, mode, passes, recheck, seconds
        case differencesTotal = "differences_total", differencesByType = "differences_by_type", filteredOut = "filtered_out"
        case emptySkipped = "empty_collections_skipped", ttlToleranceMs = "ttl_tolerance_ms", startedAt = "started_at"
        case passesLeft = "passes_left", databaseMap = "database_map", sample
    }

    struct SideFile: Codable {
        var spec: String
        var inputs: [[String: String]]
        var keys: Int
        var skipped: [[String: String]]?
    }

    struct RecheckFile: Codable {
        var rounds: Int
        var firstRound: Int
        var resolvedPerRound: [Int]

        enum CodingKeys: String, CodingKey {
            case rounds
            case firstRound = "first_round_differences"
            case resolvedPerRound = "resolved_per_round"
        }
    }

    static func timestamp() -> ISO8601DateFormatter { ISO8601DateFormatter() }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Field.self)
        try c.encode(result, forKey: .result)
        try c.encode(
            SideFile(spec: source.spec, inputs: source.inputs, keys: counts.sourceKeys, skipped: source.skipped.isEmpty ? nil : source.skipped), forKey: .source
        )
        try c.encode(
            SideFile(spec: target.spec, inputs: target.inputs, keys: counts.targetKeys, skipped: target.skipped.isEmpty ? nil : target.skipped), forKey: .target
        )
        try c.encode(counts.compared, forKey: .compared)
        try c.encode(counts.matched, forKey: .matched)
        try c.encode(counts.expired, forKey: .expired)
        try c.encode(Dictionary(uniqueKeysWithValues: DifferenceKind.allCases.map { ($0.rawValue, counts.differences[$0] ?? 0) }), forKey: .differences)
        try c.encode(counts.totalDifferences, forKey: .differencesTotal)
        try c.encode(counts.differencesByType, forKey: .differencesByType)
        try c.encode(filteredOut, forKey: .filteredOut)
        try c.encode(emptySkipped, forKey: .emptySkipped)
        try c.encode(ttlToleranceMs, forKey: .ttlToleranceMs)
        try c.encode(Self.timestamp().string(from: startedAt), forKey: .startedAt)
        try c.encode((seconds * 1000).rounded() / 1000, forKey: .seconds)
        try c.encodeIfPresent(log, forKey: .log)
        try c.encode(warnings, forKey: .warnings)
        try c.encode(mode, forKey: .mode)
        try c.encode(passes, forKey: .passes)
        try c.encodeIfPresent(interruptedPassesLeft, forKey: .passesLeft)
        try c.encodeIfPresent(databaseMap, forKey: .databaseMap)
        try c.encodeIfPresent(sample, forKey: .sample)
        try c.encodeIfPresent(
            recheck.map { RecheckFile(rounds: $0.rounds, firstRound: $0.firstRound, resolvedPerRound: $0.resolvedPerRound) },
            forKey: .recheck)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Field.self)
        let s = try c.decode(SideFile.self, forKey: .source)
        let t = try c.decode(SideFile.self, forKey: .target)
        var counts = CompareCounts()
        counts.sourceKeys = s.keys
        counts.targetKeys = t.keys
        counts.compared = try c.decode(Int.self, forKey: .compared)
        counts.matched = try c.decode(Int.self, forKey: .matched)
        counts.expired = try c.decode(Int.self, forKey: .expired)
        for (name, n) in try c.decode([String: Int].self, forKey: .differences) where n > 0 {
            guard let kind = DifferenceKind(rawValue: name) else {
                throw DecodingError.dataCorruptedError(forKey: .differences, in: c, debugDescription: "unknown kind of difference \(name)")
            }
            counts.differences[kind] = n
        }
        counts.differencesByType = try c.decode([String: Int].self, forKey: .differencesByType)
        self.init(
            source: SideInfo(spec: s.spec, inputs: s.inputs, skipped: s.skipped ?? []),
            target: SideInfo(spec: t.spec, inputs: t.inputs, skipped: t.skipped ?? []), counts: counts)
        filteredOut = try c.decode(Int.self, forKey: .filteredOut)
        emptySkipped = try c.decode(Int.self, forKey: .emptySkipped)
        ttlToleranceMs = try c.decode(Int64.self, forKey: .ttlToleranceMs)
        let started = try c.decode(String.self, forKey: .startedAt)
        guard let date = Self.timestamp().date(from: started) else {
            throw DecodingError.dataCorruptedError(forKey: .startedAt, in: c, debugDescription: "not an ISO 8601 time: \(started)")
        }
        startedAt = date
        seconds = try c.decode(Double.self, forKey: .seconds)
        log = try c.decodeIfPresent(String.self, forKey: .log)
        mode = try c.decode(String.self, forKey: .mode)
        passes = try c.decode(Int.self, forKey: .passes)
        interruptedPassesLeft = try c.decodeIfPresent(Int.self, forKey: .passesLeft)
        databaseMap = try c.decodeIfPresent(String.self, forKey: .databaseMap)
        sample = try c.decodeIfPresent(SampleEstimate.self, forKey: .sample)
        recheck = try c.decodeIfPresent(RecheckFile.self, forKey: .recheck).map {
            Recheck(rounds: $0.rounds, firstRound: $0.firstRound, resolvedPerRound: $0.resolvedPerRound)
        }
    }
}
