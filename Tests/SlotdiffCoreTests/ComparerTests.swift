import HashSlots
import SlotdiffCore
import Testing

@Suite struct ComparerTests {
    func table(_ origin: String, _ keys: [(String, UInt64)]) -> KeyTable {
        let t = KeyTable(origin: origin)
        for (k, v) in keys {
            let bytes = Array(k.utf8)
            _ = bytes.withUnsafeBytes {
                t.insert(db: 0, key: $0, slot: HashSlot.slot(of: bytes), type: .string, expireMs: nil, digest: Hash128(low: v, high: 0))
            }
        }
        return t
    }

    /// A key in two tables of one side: a duplicate for dump files; for a live side (a key
    /// caught on two cluster nodes while its slot moved) it is compared once, not reported.
    @Test func keysListedTwice() throws {
        for live in [false, true] {
            let source = [table("a", [("k1", 1), ("k2", 2)]), table("b", [("k2", 2), ("k3", 3)])]
            let target = [table("c", [("k1", 1), ("k2", 2), ("k3", 30)])]
            var c = Comparer(rule: DifferenceRule(), sourceSnapshotMs: 0, targetSnapshotMs: 0)
            if live { c.liveSides = [.source] }
            var found: [Difference] = []
            let counts = try c.compare(source: source, target: target) { found.append($0) }
            let kinds = found.map { "\($0.kind) \($0.displayKey)" }.sorted()
            #expect(kinds == (live ? ["value k3"] : ["duplicate k2", "value k3"]))
            #expect(counts.sourceKeys == 3 && counts.compared == 3 && counts.matched == 2)
        }
    }
}
