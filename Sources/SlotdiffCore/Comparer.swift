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
public struct Comparer {
    public var rule: DifferenceRule
    /// When each side was read (ms): a key present on one side only whose expiry is at or before
    /// the other side's snapshot time has expired, and is not a difference.
    public var sourceSnapshotMs: Int64
    public var targetSnapshotMs: Int64
    /// Live sides: a key listed by two cluster nodes was moving between them (slot migration)
    /// while they were listed; it is compared once and not reported as a duplicate.
    public var liveSides: Set<Side> = []

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
        // Each key is hashed three strides before it is looked up, and what its lookup reads
        // in the target tables fetched into the cache a stride at a time (`KeyTable.prefetch`).
        let stride = 8
        var hashes = [UInt64](repeating: 0, count: 4 * stride)
        for t in source {
            func hash(_ j: Int) { hashes[j % hashes.count] = KeyTable.hash(db: Int(t.entry(j).db), key: t.key(j)) }
            func prefetch(_ i: Int) {
                if i + 3 * stride < t.count { hash(i + 3 * stride) }
                for step in 0..<3 where i + (3 - step) * stride < t.count {
                    let h = hashes[(i + (3 - step) * stride) % hashes.count]
                    for o in target { o.prefetch(hash: h, step: step) }
                }
            }
            for j in 0..<min(3 * stride, t.count) { hash(j) }
            for i in 0..<t.count {
                prefetch(i)
                let h = hashes[i % hashes.count]
                let e = t.entry(i)
                if e.flags & Self.duplicateFlag != 0 { continue }
                counts.sourceKeys += 1
                let key = t.key(i)
                var found: (KeyTable, Int)?
                for o in target {
                    if let j = o.find(db: Int(e.db), key: key, hash: h), o.entry(j).flags & Self.duplicateFlag == 0 {
                        found = (o, j)
                        break
                    }
                }
                guard let (o, j) = found else {
                    if let exp = e.expireMs, exp <= targetSnapshotMs { counts.expired += 1; continue }
                    let d = Difference(kind: .missing, db: Int(e.db), slot: e.slot, key: Array(key), source: e.state, target: nil)
                    counts.add(d)
                    try emit(d)
                    continue
                }
                o.setFlag(j, Self.matchedFlag)
                let te = o.entry(j)
                counts.compared += 1
                if let kind = rule.kind(source: e.state, target: te.state) {
                    let d = Difference(kind: kind, db: Int(e.db), slot: e.slot, key: Array(key), source: e.state, target: te.state)
                    counts.add(d)
                    try emit(d)
                } else {
                    counts.matched += 1
                }
            }
        }
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
