import SlotdiffCore

extension LiveSide {
    /// Given keys read again one at a time with the check's own reads (DUMP under the size
    /// bound, bounded chunks above it; redirections followed), each value kept element by
    /// element as it is fed to the digest. No command serializes more than the bound.
    public func values(_ keys: [(db: Int, key: [UInt8])], bound: ExplainBound) async throws -> [ValueRead] {
        var out = [ValueRead](repeating: .absent, count: keys.count)
        let capture = ValueCapture(bound: bound)
        let d = CanonicalDigester()
        d.capture = capture
        for (i, k) in keys.enumerated() {
            // A cluster has only database 0: a key of another database is not there.
            if isCluster && k.db != 0 { continue }
            let node = nodes[nodeFor(key: k.key)]
            let r = try await fetchRouted(node: node, db: isCluster ? nil : k.db, keys: [k.key], digester: d)
            let value = capture.take()
            if case .present(let state) = r[0] { out[i] = .present(state, value) }
        }
        return out
    }
}
