import SlotdiffCore

extension LiveSide {
    /// Keys read again at once to explain: a few, so round trips to a distant server overlap.
    static let explainLanes = 4

    /// Given keys read again with the check's own reads (DUMP under the size bound, bounded
    /// chunks above it; redirections followed), each value kept element by element as it is
    /// fed to the digest. No command serializes more than the bound. A few keys are read at a
    /// time, each lane with its share of the bound's total.
    public func values(_ keys: [(db: Int, key: [UInt8])], bound: ExplainBound, sink: (any ValueSink)?) async throws -> [ValueRead] {
        // One database at a time: reads of two databases at once could share a connection,
        // and one's SELECT would then also hold for the other's commands.
        var all = [ValueRead](repeating: .absent, count: keys.count)
        // What the earlier databases' values keep counts against the round's total.
        var left = bound
        for db in Set(keys.map(\.db)).sorted() {
            let which = keys.indices.filter { keys[$0].db == db }
            let (reads, kept) =
                if let sink {
                    try await values(which.map { keys[$0] }, indices: which, sink: sink, bound: left)
                } else {
                    try await values(which.map { keys[$0] }, lanesOf: left)
                }
            for (n, i) in which.enumerated() { all[i] = reads[n] }
            left.totalBytes = max(0, left.totalBytes - kept)
        }
        return all
    }

    /// Keys of one database, one after the other, their elements handed to `sink` under their
    /// `indices` among all the keys asked for; and the bytes their values keep.
    private func values(
        _ keys: [(db: Int, key: [UInt8])], indices: [Int], sink: any ValueSink, bound: ExplainBound
    ) async throws -> ([ValueRead], Int) {
        let capture = ValueCapture(bound: bound, sink: sink)
        var out = [ValueRead](repeating: .absent, count: keys.count)
        for (i, r) in try await read(keys, indices: indices, first: 0, step: 1, through: capture) { out[i] = r }
        return (out, bound.totalBytes - capture.totalLeft)
    }

    /// Keys of one database, a few at a time; and the bytes their values keep.
    private func values(_ keys: [(db: Int, key: [UInt8])], lanesOf bound: ExplainBound) async throws -> ([ValueRead], Int) {
        let lanes = min(Self.explainLanes, max(1, keys.count))
        var share = bound
        share.totalBytes = bound.totalBytes / lanes
        let lane = share
        return try await withThrowingTaskGroup(of: ([(Int, ValueRead)], Int).self) { group in
            for first in 0..<lanes {
                group.addTask {
                    let capture = ValueCapture(bound: lane)
                    let out = try await self.read(keys, indices: Array(keys.indices), first: first, step: lanes, through: capture)
                    return (out, lane.totalBytes - capture.totalLeft)
                }
            }
            var all = [ValueRead](repeating: .absent, count: keys.count)
            var kept = 0
            for try await (part, bytes) in group {
                for (i, r) in part { all[i] = r }
                kept += bytes
            }
            return (all, kept)
        }
    }

    /// Keys `first`, `first + step`, … of `keys`, each read through `capture` (its `index` set to
    /// the key's entry in `indices`); the ones present, by their place in `keys`.
    private func read(
        _ keys: [(db: Int, key: [UInt8])], indices: [Int], first: Int, step: Int, through capture: ValueCapture
    ) async throws -> [(Int, ValueRead)] {
        let d = CanonicalDigester()
        d.capture = capture
        var out: [(Int, ValueRead)] = []
        for i in stride(from: first, to: keys.count, by: step) {
            let k = keys[i]
            // A cluster has only database 0: a key of another database is not there.
            if isCluster && k.db != 0 { continue }
            capture.index = indices[i]
            let node = nodes[nodeFor(key: k.key)]
            let r = try await fetchRouted(node: node, db: isCluster ? nil : k.db, keys: KeyList([k.key]), digester: d)
            let value = capture.take()
            if case .present(let state) = r[0] { out.append((i, .present(state, value))) }
        }
        return out
    }
}
