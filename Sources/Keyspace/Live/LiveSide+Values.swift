import SlotdiffCore

extension LiveSide {
    /// Keys read again at once to explain: a few, so round trips to a distant server overlap.
    static let explainLanes = 4

    /// Given keys read again with the check's own reads (DUMP under the size bound, bounded
    /// chunks above it; redirections followed), each value kept element by element as it is
    /// fed to the digest. No command serializes more than the bound. A few keys are read at a
    /// time, each lane with its share of the bound's total.
    public func values(_ keys: [(db: Int, key: [UInt8])], bound: ExplainBound) async throws -> [ValueRead] {
        let lanes = min(Self.explainLanes, max(1, keys.count))
        var share = bound
        share.totalBytes = bound.totalBytes / lanes
        let lane = share
        return try await withThrowingTaskGroup(of: [(Int, ValueRead)].self) { group in
            for first in 0..<lanes {
                group.addTask {
                    let capture = ValueCapture(bound: lane)
                    let d = CanonicalDigester()
                    d.capture = capture
                    var out: [(Int, ValueRead)] = []
                    for i in stride(from: first, to: keys.count, by: lanes) {
                        let k = keys[i]
                        // A cluster has only database 0: a key of another database is not there.
                        if self.isCluster && k.db != 0 { continue }
                        let node = self.nodes[self.nodeFor(key: k.key)]
                        let r = try await self.fetchRouted(node: node, db: self.isCluster ? nil : k.db, keys: [k.key], digester: d)
                        let value = capture.take()
                        if case .present(let state) = r[0] { out.append((i, .present(state, value))) }
                    }
                    return out
                }
            }
            var all = [ValueRead](repeating: .absent, count: keys.count)
            for try await part in group {
                for (i, r) in part { all[i] = r }
            }
            return all
        }
    }
}
