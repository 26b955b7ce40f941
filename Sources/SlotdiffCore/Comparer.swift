import Foundation

/// Counters of one check, kept per kind and per value type; the summary is made from them.
public struct CompareCounts: Sendable, Equatable, Codable {
    public var sourceKeys = 0
    public var targetKeys = 0
    /// Keys present on both sides and compared.
    public var compared = 0
    public var matched = 0
    /// Keys on one side only whose expiry had passed when the other side was read.
    public var expired = 0
    public var differences: [DifferenceKind: Int] = [:]
    public var differencesByType: [String: Int] = [:]

    public init() {}

    public var totalDifferences: Int { differences.values.reduce(0, +) }

    /// What is wrong with these counts, if anything: none is negative, no more keys matched
    /// than were compared, none compared that a side did not hold. A check whose counts break
    /// this has lost track of keys, and its result is not given.
    public var inconsistency: String? {
        let named =
            [
                ("source keys", sourceKeys), ("target keys", targetKeys), ("compared", compared), ("matched", matched),
                ("expired", expired)
            ] + differences.map { ($0.key.rawValue, $0.value) }
        if let (name, n) = named.first(where: { $0.1 < 0 }) { return "\(name) is \(n)" }
        if matched > compared { return "\(matched) keys matched of \(compared) compared" }
        if compared > min(sourceKeys, targetKeys) { return "\(compared) keys compared, but the sides hold \(sourceKeys) and \(targetKeys)" }
        return nil
    }

    public mutating func add(_ d: Difference) {
        differences[d.kind, default: 0] += 1
        let t = (d.source ?? d.target).map { "\($0.type)" } ?? "unknown"
        differencesByType[t, default: 0] += 1
    }

    public static func + (a: CompareCounts, b: CompareCounts) -> CompareCounts {
        var r = a
        r.sourceKeys += b.sourceKeys
        r.targetKeys += b.targetKeys
        r.compared += b.compared
        r.matched += b.matched
        r.expired += b.expired
        r.differences.merge(b.differences, uniquingKeysWith: +)
        r.differencesByType.merge(b.differencesByType, uniquingKeysWith: +)
        return r
    }
}

/// Merges two sides' records, each held as one or more key tables (one per dump file), and
/// emits every difference. A key held twice on one side is reported as `duplicate` and its
/// first occurrence is the one compared.
///
/// A large source table is looked up in parts, one thread each: the lookups wait on memory
/// (random reads of the target tables), and several threads wait at once. Differences come
/// out in the order one thread would give.
public struct Comparer: Sendable {
    public var rule: DifferenceRule
    /// When each side was read (ms): a key present on one side only whose expiry is at or before
    /// the other side's snapshot time has expired, and is not a difference.
    public var sourceSnapshotMs: Int64
    public var targetSnapshotMs: Int64
    /// Live sides: a key listed by two cluster nodes was moving between them (slot migration)
    /// while they were listed; it is compared once and not reported as a duplicate.
    public var liveSides: Set<Side> = []
    /// Threads the lookups may use, and the fewest source keys worth a thread of their own.
    public var threads = ProcessInfo.processInfo.activeProcessorCount
    public var keysPerThread = 1 << 15
    /// Differences a helper thread holds for the caller; past them it stops, and the caller's
    /// thread does the rest of its part (memory stays bounded when nearly every key differs).
    public var heldPerThread = 1 << 14

    public init(rule: DifferenceRule, sourceSnapshotMs: Int64, targetSnapshotMs: Int64) {
        self.rule = rule
        self.sourceSnapshotMs = sourceSnapshotMs
        self.targetSnapshotMs = targetSnapshotMs
    }

    static let matchedFlag: UInt8 = 1
    static let duplicateFlag: UInt8 = 2

    /// `inFileDuplicates` are keys a single input holds twice (its loader found them); they are
    /// counted and logged with the others.
    public func compare(
        source: [KeyTable], target: [KeyTable], inFileDuplicates: [Difference] = [],
        emit: (Difference) throws -> Void
    ) throws -> CompareCounts {
        var counts = CompareCounts()
        for d in inFileDuplicates {
            counts.add(d)
            try emit(d)
        }
        try reportDuplicates(source, side: .source, counts: &counts, emit: emit)
        try reportDuplicates(target, side: .target, counts: &counts, emit: emit)
        for t in source { try lookUpAll(t, in: target, counts: &counts, emit: emit) }
        for t in target {
            for i in 0..<t.count {
                let e = t.entry(i)
                if e.flags & Self.duplicateFlag != 0 { continue }
                counts.targetKeys += 1
                if e.flags & Self.matchedFlag != 0 { continue }
                if let exp = e.expireMs, exp <= sourceSnapshotMs { counts.expired += 1; continue }
                let d = Difference(kind: .extra, db: Int(e.db), slot: e.slot, key: t.keyArray(i), source: nil, target: e.state)
                counts.add(d)
                try emit(d)
            }
        }
        return counts
    }

    /// Target entries a part of the lookups matched, per target table (4 bytes each). With
    /// parts on several threads they are marked once all are done, so that no thread writes an
    /// entry another may be reading; a lookup on one thread marks them as it goes (`direct`).
    struct Matches {
        var entries: [[UInt32]]
        var direct: [KeyTable]?

        init(tables: Int) { entries = Array(repeating: [], count: tables) }
        init(entries: [[UInt32]]) { self.entries = entries }
        init(direct: [KeyTable]) {
            entries = []
            self.direct = direct
        }

        mutating func note(_ table: Int, _ j: Int) {
            if let direct { direct[table].setFlag(j, Comparer.matchedFlag) } else { entries[table].append(UInt32(truncatingIfNeeded: j)) }
        }

        func mark(_ target: [KeyTable]) {
            for (t, list) in zip(target, entries) {
                for j in list { t.setFlag(Int(j), Comparer.matchedFlag) }
            }
        }
    }

    /// What a helper thread hands back: its counts, its differences in order, and where it
    /// stopped when it held as many as it may.
    struct Part: Sendable {
        var counts = CompareCounts()
        var differences: [Difference] = []
        var matches: [[UInt32]] = []
        var stoppedAt: Int?
    }

    final class PartBox: @unchecked Sendable {
        // Written by its thread before it leaves the group; read after the group is waited on.
        var part = Part()
    }

    /// Looks up every entry of source table `t` in the target tables, in parts on several
    /// threads when it is large; the caller's thread takes the first part and emits as it goes.
    func lookUpAll(_ t: KeyTable, in target: [KeyTable], counts: inout CompareCounts, emit: (Difference) throws -> Void) throws {
        let n = max(1, min(threads, t.count / max(1, keysPerThread)))
        let bounds = (0...n).map { t.count * $0 / n }
        let boxes = (0..<n).map { _ in PartBox() }
        let group = DispatchGroup()
        for p in 1..<n {
            let (box, range, limit) = (boxes[p], bounds[p]..<bounds[p + 1], heldPerThread)
            group.enter()
            DispatchQueue.global().async {
                var m = Matches(tables: target.count)
                var counts = CompareCounts()
                var held: [Difference] = []
                let stoppedAt = self.lookUp(t, range, in: target, counts: &counts, matches: &m) { d in
                    held.append(d)
                    return held.count < limit
                }
                box.part = Part(counts: counts, differences: held, matches: m.entries, stoppedAt: stoppedAt)
                group.leave()
            }
        }
        var m = n == 1 ? Matches(direct: target) : Matches(tables: target.count)
        var failure: Error?
        do {
            _ = try lookUp(t, bounds[0]..<bounds[1], in: target, counts: &counts, matches: &m) { d in
                try emit(d)
                return true
            }
        } catch { failure = error }
        // The helpers read the tables: none is left running, also when emitting failed.
        group.wait()
        if let failure { throw failure }
        m.mark(target)
        for p in 1..<n {
            let part = boxes[p].part
            Matches(entries: part.matches).mark(target)
            counts = counts + part.counts
            for d in part.differences { try emit(d) }
            guard let rest = part.stoppedAt else { continue }
            var m = Matches(direct: target)
            _ = try lookUp(t, rest..<bounds[p + 1], in: target, counts: &counts, matches: &m) { d in
                try emit(d)
                return true
            }
        }
    }

    /// Looks up source entries `range` of `t`: counts them, gives each difference to `emit`
    /// and notes each matched target entry in `matches`. When `emit` returns false, stops
    /// after that key and returns the index of the next.
    func lookUp(
        _ t: KeyTable, _ range: Range<Int>, in target: [KeyTable], counts: inout CompareCounts, matches: inout Matches,
        emit: (Difference) throws -> Bool
    ) rethrows -> Int? {
        // Each key is hashed three strides before it is looked up, and what its lookup reads
        // in the target tables fetched into the cache a stride at a time (`KeyTable.prefetch`).
        let stride = 8
        var hashes = [UInt64](repeating: 0, count: 4 * stride)
        func hash(_ j: Int) { hashes[j % hashes.count] = KeyTable.hash(db: Int(t.entry(j).db), key: t.key(j)) }
        func prefetch(_ i: Int) {
            if i + 3 * stride < range.upperBound { hash(i + 3 * stride) }
            for step in 0..<3 where i + (3 - step) * stride < range.upperBound {
                let h = hashes[(i + (3 - step) * stride) % hashes.count]
                for o in target { o.prefetch(hash: h, step: step) }
            }
        }
        for j in range.prefix(3 * stride) { hash(j) }
        for i in range {
            prefetch(i)
            let h = hashes[i % hashes.count]
            let e = t.entry(i)
            if e.flags & Self.duplicateFlag != 0 { continue }
            counts.sourceKeys += 1
            let key = t.key(i)
            var found: (Int, Int)?
            for (ti, o) in target.enumerated() {
                if let j = o.find(db: Int(e.db), key: key, hash: h), o.entry(j).flags & Self.duplicateFlag == 0 {
                    found = (ti, j)
                    break
                }
            }
            guard let (ti, j) = found else {
                if let exp = e.expireMs, exp <= targetSnapshotMs { counts.expired += 1; continue }
                let d = Difference(kind: .missing, db: Int(e.db), slot: e.slot, key: Array(key), source: e.state, target: nil)
                counts.add(d)
                if try !emit(d) { return i + 1 }
                continue
            }
            matches.note(ti, j)
            let te = target[ti].entry(j)
            counts.compared += 1
            if let kind = rule.kind(source: e.state, target: te.state) {
                let d = Difference(kind: kind, db: Int(e.db), slot: e.slot, key: Array(key), source: e.state, target: te.state)
                counts.add(d)
                if try !emit(d) { return i + 1 }
            } else {
                counts.matched += 1
            }
        }
        return nil
    }

    /// Keys that appear in more than one table of the same side.
    func reportDuplicates(_ tables: [KeyTable], side: Side, counts: inout CompareCounts, emit: (Difference) throws -> Void) throws {
        guard tables.count > 1 else { return }
        for (ti, t) in tables.enumerated() where ti > 0 {
            for i in 0..<t.count {
                let e = t.entry(i)
                let key = t.key(i)
                let h = KeyTable.hash(db: Int(e.db), key: key)
                for earlier in tables[0..<ti] {
                    guard let j = earlier.find(db: Int(e.db), key: key, hash: h) else { continue }
                    t.setFlag(i, Self.duplicateFlag)
                    if liveSides.contains(side) { break }
                    let first = earlier.entry(j)
                    let d = Difference(
                        kind: .duplicate, db: Int(e.db), slot: e.slot, key: Array(key),
                        source: side == .source ? first.state : nil,
                        target: side == .target ? first.state : nil,
                        side: side, origins: [earlier.origin, t.origin])
                    counts.add(d)
                    try emit(d)
                    break
                }
            }
        }
    }
}
