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

    /// Lookups are hashed strides ahead (prefetching): at every table size around the strides,
    /// each key is found with its own hash, and exactly the changed and missing ones reported.
    @Test func everyKeyFoundAtEveryTableSize() throws {
        for n in [0, 1, 7, 8, 9, 23, 24, 25, 31, 32, 33, 100, 3000] {
            let keys = (0..<n).map { ("key:\($0)", UInt64($0)) }
            // Changed every 7th, missing every 11th (a key both changed and missing is missing).
            let targetKeys = keys.filter { Int($0.1) % 11 != 10 }.map { ($0.0, Int($0.1) % 7 == 3 ? $0.1 + 1 : $0.1) }
            var found: [Difference] = []
            let c = Comparer(rule: DifferenceRule(), sourceSnapshotMs: 0, targetSnapshotMs: 0)
            let counts = try c.compare(source: [table("s", keys)], target: [table("t", targetKeys.reversed())]) { found.append($0) }
            let missing = (0..<n).filter { $0 % 11 == 10 }.count
            let changed = (0..<n).filter { $0 % 11 != 10 && $0 % 7 == 3 }.count
            #expect(found.filter { $0.kind == .missing }.count == missing, "\(n) keys")
            #expect(found.filter { $0.kind == .value }.count == changed, "\(n) keys")
            #expect(counts.matched == n - missing - changed && counts.compared == n - missing, "\(n) keys")
        }
    }

    /// A size hint far past what arrives (a corrupt RESIZEDB) still leaves a table that finds
    /// its keys; the index it makes ahead of them is bounded.
    @Test func hugeSizeHintStillFindsKeys() {
        let t = KeyTable(origin: "hint")
        t.reserve(1 << 24)
        let keys = (0..<1000).map { Array("k\($0)".utf8) }
        for k in keys {
            k.withUnsafeBytes { _ = t.insert(db: 0, key: $0, slot: 0, type: .string, expireMs: nil, digest: .zero) }
        }
        for k in keys {
            #expect(k.withUnsafeBytes { t.find(db: 0, key: $0, hash: KeyTable.hash(db: 0, key: $0)) } != nil)
        }
        #expect(t.count == 1000)
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
