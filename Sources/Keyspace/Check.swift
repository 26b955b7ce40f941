import Foundation
import HashSlots
import Logging
import RDB
import RESP
import SlotdiffCore

public struct CheckOptions: Sendable {
    public var filter = KeyFilter()
    public var rule = DifferenceRule()
    public var mode: CompareMode = .digest
    public var workers = ProcessInfo.processInfo.activeProcessorCount
    /// Re-check rounds for live sides, and the pause before each.
    public var rounds = 3
    public var roundDelayMs: Int64 = 2000
    /// Passes over the slot space (nil: one pass per `keysPerPass` keys on the largest live
    /// side, so memory stays bounded as the keyspace grows; dump files alone: one pass).
    public var passes: Int?
    public var keysPerPass = 250_000
    /// Counters for a progress display, updated as the check goes.
    public var progress: CheckProgress?
    /// Passes already done (a resumed run) with their results: skipped, their results added.
    public var donePasses: [Int: CheckResult] = [:]
    /// A check in which neither side held a key (after the filters) is a match; without this,
    /// it is an error: a wrong URL, database or filter would otherwise pass as a match.
    public var allowEmpty = false
    /// The source's databases compared with other numbers on the target (`--db-map`).
    public var databaseMap = DatabaseMap()
    /// `value` and `type` differences explained element by element (`Explain`), the first
    /// this many of the run; 0: none. Only when values are digested (`--mode digest`).
    public var explain = 1000
    /// What an explanation may keep in memory.
    public var explainBound = ExplainBound()

    /// Sizes the passes for these sides: explicit, or one per `keysPerPass` keys of the largest
    /// side that knows its size before reading — a live side, a digest file (dump files alone:
    /// one pass).
    public func passCount(source: any KeyspaceSource, target: any KeyspaceSource) async throws -> Int {
        if let passes { return passes }
        var keys = 0
        for side in [source, target] { keys = max(keys, try await side.keyCount() ?? 0) }
        return max(1, min(1024, (keys + keysPerPass - 1) / keysPerPass))
    }

    public init() {}
}

public struct CheckResult: Codable, Sendable {
    public var counts: CompareCounts
    public var sourceInputs: [[String: String]]
    public var targetInputs: [[String: String]]
    public var filteredOut = 0
    public var emptySkipped = 0
    /// Differences found in the first round (before any re-check), and how many each re-check round cleared.
    public var firstRoundDifferences = 0
    public var resolvedPerRound: [Int] = []
    public var passes = 1
    /// Passes left undone because a stop was asked for (Ctrl-C); 0 for a complete check.
    public var passesLeft = 0
    /// A sampled check (`--sample`): differences reported per slot (slots without any left
    /// out), from which the estimate for the whole keyspace is made. Nil otherwise.
    public var slotDifferences: [Int: Int]?

    public mutating func add(_ o: CheckResult) {
        counts = counts + o.counts
        filteredOut += o.filteredOut
        emptySkipped += o.emptySkipped
        firstRoundDifferences += o.firstRoundDifferences
        if let more = o.slotDifferences { slotDifferences = (slotDifferences ?? [:]).merging(more, uniquingKeysWith: +) }
        for (i, v) in o.resolvedPerRound.enumerated() {
            if i < resolvedPerRound.count { resolvedPerRound[i] += v } else { resolvedPerRound.append(v) }
        }
    }
}

/// Runs one check: reads both sides (dump files parsed in parallel, live sides listed and
/// fetched), compares them with the one comparer, re-checks differences on live sides in
/// later rounds, and hands every difference that persists to `emit`.
/// Operator-visible events of explanations (`--log-level info`: each round of reads).
let explainLogger = Logger(label: "slotdiff.explain")

public enum Check {
    /// Runs every pass (see `CheckOptions.passes`), skipping `donePasses`. After each pass
    /// `passDone(i, result)` is told (a checkpoint is written there); before each, `stop()` is
    /// asked, and a check asked to stop returns what it has with `passesLeft` set.
    public static func run(
        source: any KeyspaceSource, target: any KeyspaceSource, options: CheckOptions,
        passDone: (Int, CheckResult) throws -> Void = { _, _ in },
        stop: @escaping @Sendable () -> Bool = { false },
        emit: @escaping (Difference) throws -> Void
    ) async throws -> CheckResult {
        try await checkDatabases(source: source, target: target, filter: options.filter)
        let all = options.filter.slots ?? SlotRange.all
        let width = Int(all.upper) - Int(all.lower) + 1
        let passes = min(try await options.passCount(source: source, target: target), width)
        options.progress?.setPasses(passes)
        let progress = options.progress
        let emit: (Difference) throws -> Void = { d in
            progress?.addDifference()
            try emit(d)
        }
        func range(_ i: Int) -> SlotRange {
            SlotRange(UInt16(Int(all.lower) + width * i / passes), UInt16(Int(all.lower) + width * (i + 1) / passes - 1))
        }
        // In several passes, dump files and standalone servers (which cannot be read one slot
        // range at a time) are read once, their records kept per pass in temporary files.
        let todo = (0..<passes).filter { options.donePasses[$0] == nil }.map(range)
        let sides: [any KeyspaceSource] = [source, target]
        // The keys left to read, for the time left: both sides live, no filter that makes SCAN
        // skip keys (--match, --db); keys assumed spread evenly over the slots.
        if let progress, sides.allSatisfy(\.isLive), options.filter.match == nil, options.filter.dbs == nil {
            var keys = 0
            for side in sides { keys += try await side.keyCount() ?? 0 }
            progress.setExpectedKeys(keys * width / HashSlot.count * todo.count / max(1, passes))
        }
        let read = ReadContext(filter: options.filter, mode: options.mode, workers: options.workers, progress: options.progress, stop: stop)
        // What the sides kept per pass; its temporary files are deleted when it is let go.
        var kept: [(any KeptPasses)?] = [nil, nil]
        if passes > 1, !todo.isEmpty, !stop() {
            // Both at once; a side stopped early keeps nothing, and every pass is left undone.
            let (s, t) = try await both({ try await source.readOnce(passes: todo, read) }, { try await target.readOnce(passes: todo, read) })
            kept = [s, t]
        }
        var total: CheckResult?
        var left = 0
        var explainLeft = options.mode == .digest ? max(0, options.explain) : 0
        for i in 0..<passes {
            let r: CheckResult
            if let done = options.donePasses[i] {
                r = done
            } else if stop() {
                left += 1
                continue
            } else {
                var o = options
                o.filter.pass = passes > 1 ? range(i) : nil
                r = try await runPass(source: source, target: target, options: o, kept: kept, stop: stop, explainLeft: &explainLeft, emit: emit)
                try passDone(i, r)
            }
            options.progress?.passDone()
            if total == nil { total = r } else { total!.add(r) }
        }
        var result = total ?? CheckResult(counts: CompareCounts(), sourceInputs: [], targetInputs: [])
        result.passes = passes
        result.passesLeft = left
        if let wrong = result.counts.inconsistency {
            throw SlotdiffError(.inconsistent, "the check lost track of keys (\(wrong)); its result cannot be trusted")
        }
        if left == 0 && !options.allowEmpty && result.counts.sourceKeys == 0 && result.counts.targetKeys == 0 {
            let filtered = result.filteredOut > 0 ? " (\(result.filteredOut) left out by the filters)" : ""
            throw SlotdiffError(
                .nothingCompared,
                "nothing was compared: neither side holds a key that passes the filters\(filtered); "
                    + "check the URLs, --db, --match, --type and --slots, or pass --allow-empty if an empty check is a match")
        }
        return result
    }

    /// A cluster has only database 0. Asking it for another (`--db`) is a usage error; a
    /// standalone server with keys in other databases compared to a cluster cannot be checked
    /// (those keys have no place to be on the cluster, and a re-check would look for them in
    /// database 0): both end the check before anything is read.
    static func checkDatabases(source: any KeyspaceSource, target: any KeyspaceSource, filter: KeyFilter) async throws {
        let sides: [(Side, any KeyspaceSource)] = [(.source, source), (.target, target)]
        guard let cluster = sides.first(where: { $0.1.isCluster }) else { return }
        if let dbs = filter.dbs, dbs.contains(where: { $0 != 0 }) {
            throw SlotdiffError(
                .usage, "--db \(dbs.sorted().map(String.init).joined(separator: ",")): the \(cluster.0) is a cluster, which has only database 0")
        }
        for (side, other) in sides where side != cluster.0 && !other.isCluster {
            guard var dbs = try await other.databases() else { continue }
            if let want = filter.dbs { dbs = dbs.filter { want.contains($0) } }
            let others = dbs.filter { $0 != 0 }
            if !others.isEmpty {
                throw SlotdiffError(
                    .usage,
                    "the \(side) holds keys in database\(dbs.count > 1 ? "s" : "") \(dbs.map(String.init).joined(separator: ", ")), "
                        + "but the \(cluster.0) is a cluster, which has only database 0: check database 0 with --db 0 "
                        + "(a database other than 0 cannot be compared with a cluster)")
            }
        }
    }

    /// Runs `a` and `b` at the same time. The first to fail ends both (the other is cancelled):
    /// a side that fails (a stopped server) is told at once, not after the other side's
    /// whole read.
    static func both<A: Sendable, B: Sendable>(
        _ a: @escaping @Sendable () async throws -> A,
        _ b: @escaping @Sendable () async throws -> B
    ) async throws -> (A, B) {
        try await withThrowingTaskGroup(of: (A?, B?).self) { group in
            group.addTask { (try await a(), nil) }
            group.addTask { (nil, try await b()) }
            var ra: A?, rb: B?
            for try await r in group {
                if let v = r.0 { ra = v }
                if let v = r.1 { rb = v }
            }
            return (ra!, rb!)
        }
    }

    /// One pass: every key whose slot is in `options.filter.pass` (all keys without one).
    static func runPass(
        source: any KeyspaceSource, target: any KeyspaceSource, options: CheckOptions, kept: [(any KeptPasses)?],
        stop: @escaping @Sendable () -> Bool, explainLeft: inout Int,
        emit report: @escaping (Difference) throws -> Void
    ) async throws -> CheckResult {
        // A sampled check counts what it reports per slot, for its estimate.
        var perSlot: [Int: Int]? = options.filter.sample == nil ? nil : [:]
        let emit: (Difference) throws -> Void = { d in
            perSlot?[Int(d.slot), default: 0] += 1
            try report(d)
        }
        let read = ReadContext(filter: options.filter, mode: options.mode, workers: options.workers, progress: options.progress, stop: stop)
        // Both sides are read at the same time: less time between the two reads of a key.
        let (keptSource, keptTarget) = (kept[0], kept[1])
        let (src, dst) = try await both({ try await source.records(read, kept: keptSource) }, { try await target.records(read, kept: keptTarget) })
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        func sided(_ duplicates: [Difference], _ s: Side) -> [Difference] {
            duplicates.map { d in
                var d = d
                d.side = s
                if s == .target { (d.source, d.target) = (nil, d.source) } else { d.target = nil }
                return d
            }
        }
        var comparer = Comparer(rule: options.rule, sourceSnapshotMs: src.snapshotMs ?? now, targetSnapshotMs: dst.snapshotMs ?? now)
        // The lookups take no more threads than the operator allows workers (`--workers`).
        comparer.threads = min(comparer.threads, max(1, options.workers))
        if source.isLive { comparer.liveSides.insert(.source) }
        if target.isLive { comparer.liveSides.insert(.target) }
        let anyLive = source.isLive || target.isLive
        var found: [Difference] = []
        // Keys both sides held in the first round that differed: `matched` is what is left of
        // `compared` once those still different are taken away.
        var comparedFirst = Set<[UInt8]>()
        // Sides that do not change: value and type differences are held back to be explained
        // once the pass is compared (one more read of each side for all of them).
        var held: [Difference] = []
        let budget = explainLeft
        var counts = try comparer.compare(
            source: src.tables, target: dst.tables,
            inFileDuplicates: sided(src.duplicates, .source) + sided(dst.duplicates, .target)
        ) { d in
            if anyLive {
                found.append(d)
                if d.kind == .type || d.kind == .value || d.kind == .ttl { comparedFirst.insert(Self.identity(d)) }
            } else if Self.explains(d), held.count < budget {
                held.append(d)
            } else {
                try emit(d)
            }
        }
        if !anyLive {
            for d in try await explained(held, source: source, target: target, options: options, left: &explainLeft) { try emit(d) }
        }
        var result = CheckResult(counts: counts, sourceInputs: src.inputs, targetInputs: dst.inputs)
        result.filteredOut = src.filteredOut + dst.filteredOut
        result.emptySkipped = src.emptySkipped + dst.emptySkipped
        result.firstRoundDifferences = counts.totalDifferences
        guard anyLive else {
            result.slotDifferences = perSlot
            return result
        }

        // Re-check rounds: a difference is reported only if it is still there in every round.
        for _ in 0..<options.rounds where found.contains(where: { $0.kind != .duplicate }) {
            try await Task.sleep(nanoseconds: UInt64(max(0, options.roundDelayMs)) * 1_000_000)
            let duplicates = found.filter { $0.kind == .duplicate }
            found = found.filter { $0.kind != .duplicate }
            let keys = found.map { (db: $0.db, key: $0.key) }
            let s = try await source.reread(keys, first: found.map(\.source))
            let t = try await target.reread(keys, first: found.map(\.target))
            var still: [Difference] = duplicates
            var cleared = 0
            let nowMs = Int64(Date().timeIntervalSince1970 * 1000)
            for (i, d) in found.enumerated() {
                if let kind = kind(s[i], t[i], options.rule) {
                    var n = d
                    n.kind = kind
                    n.source = s[i]
                    n.target = t[i]
                    still.append(n)
                } else {
                    cleared += 1
                    // Gone from both sides since: expired (or deleted) during the check.
                    if s[i] == nil && t[i] == nil, (d.source ?? d.target)?.expireMs.map({ $0 <= nowMs }) == true {
                        counts.expired += 1
                    }
                }
            }
            result.resolvedPerRound.append(cleared)
            found = still
        }
        // Counts of what is reported.
        var final = counts
        final.differences = [:]
        final.differencesByType = [:]
        found = try await explained(found, source: source, target: target, options: options, left: &explainLeft)
        for d in found {
            final.add(d)
            try emit(d)
        }
        final.matched = counts.compared - found.filter { $0.kind != .duplicate && comparedFirst.contains(Self.identity($0)) }.count
        result.counts = final
        result.slotDifferences = perSlot
        return result
    }

    static func explains(_ d: Difference) -> Bool { d.kind == .value || d.kind == .type }

    /// The differences with the first `left` value and type differences explained: their keys
    /// read again from both sides at once after the check decided they persist, each diffed
    /// element by element; `left` goes down by those explained.
    static func explained(
        _ ds: [Difference], source: any KeyspaceSource, target: any KeyspaceSource, options: CheckOptions,
        left: inout Int
    ) async throws -> [Difference] {
        var picked: [Int] = []
        for (i, d) in ds.enumerated() where picked.count < left && explains(d) { picked.append(i) }
        if picked.isEmpty { return ds }
        let keys = picked.map { (db: ds[$0].db, key: ds[$0].key) }
        // A dump side is read through once more for these keys: seen as time, so said.
        explainLogger.info(
            "reading \(keys.count) key\(keys.count == 1 ? "" : "s") again to explain \(keys.count == 1 ? "its difference" : "their differences")")
        async let s = source.values(keys, bound: options.explainBound)
        async let t = target.values(keys, bound: options.explainBound)
        let (sv, tv) = try await (s, t)
        var out = ds
        var large = 0
        for (n, i) in picked.enumerated() {
            out[i].detail = Explain.detail(for: ds[i], source: sv[n], target: tv[n])
            // Past the bound in memory: through spilled elements, a few keys a pass.
            guard out[i].detail?["too_large"]?.boolValue == true, ds[i].kind == .value, let type = ds[i].source?.type, spillable(type),
                large < largeExplanationsPerPass, case .present(_, let s) = sv[n], case .present(_, let t) = tv[n]
            else { continue }
            large += 1
            explainLogger.info("reading \(ds[i].displayKey) again, its elements spilled to disk, to explain its difference")
            if let detail = try await explainLarge(ds[i], source: source, target: target, count: max(s.count, t.count)) {
                out[i].detail = detail
            }
        }
        left -= picked.count
        for (name, reads) in [("source", sv), ("target", tv)] {
            if case .unavailable(let why)? = reads.first(where: { if case .unavailable = $0 { return true } else { return false } }) {
                explainLogger.warning("differences not explained: the \(name) cannot read values again (\(why))")
            }
        }
        return out
    }

    /// A key and its database as one value (the database as two leading bytes).
    static func identity(_ d: Difference) -> [UInt8] {
        [UInt8(truncatingIfNeeded: d.db >> 8), UInt8(truncatingIfNeeded: d.db)] + d.key
    }

    static func kind(_ s: SideState?, _ t: SideState?, _ rule: DifferenceRule) -> DifferenceKind? {
        switch (s, t) {
        case (nil, nil): return nil
        case (_?, nil): return .missing
        case (nil, _?): return .extra
        case let (a?, b?): return rule.kind(source: a, target: b)
        }
    }
}
