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

    /// Lookups split across threads give what one thread gives: the same differences in the
    /// same order and the same counts. Also when a helper holds as many differences as it may
    /// and the caller looks up the rest of its part, and with the target in two tables (each
    /// part's matches marked in the table that holds them, or they come out as extra keys).
    @Test func lookupsInPartsGiveWhatOneThreadGives() throws {
        let n = 5000
        let keys = (0..<n).map { ("key:\($0)", UInt64($0)) }
        // Every 13th key missing, every 7th changed; 50 keys only the target holds.
        let kept = keys.filter { $0.1 % 13 != 5 }.map { ($0.0, $0.1 % 7 == 2 ? $0.1 + 1 : $0.1) }
        let extra = (0..<50).map { ("extra:\($0)", UInt64($0)) }
        func run(threads: Int, held: Int) throws -> ([String], CompareCounts) {
            var c = Comparer(rule: DifferenceRule(), sourceSnapshotMs: 0, targetSnapshotMs: 0)
            c.threads = threads
            c.keysPerThread = 300
            c.heldPerThread = held
            let target = [table("t1", Array(kept[..<2000].reversed()) + extra), table("t2", Array(kept[2000...]))]
            var found: [String] = []
            let counts = try c.compare(source: [table("s", keys)], target: target) { found.append("\($0.kind) \($0.displayKey)") }
            return (found, counts)
        }
        let (one, oneCounts) = try run(threads: 1, held: 1 << 14)
        let missing = (0..<n).filter { $0 % 13 == 5 }.count
        let changed = (0..<n).filter { $0 % 13 != 5 && $0 % 7 == 2 }.count
        #expect(one.count == missing + changed + extra.count)
        #expect(oneCounts.matched == n - missing - changed && oneCounts.targetKeys == n - missing + extra.count)
        for (threads, held) in [(4, 1 << 14), (4, 3), (3, 1), (16, 2)] {
            let (parts, counts) = try run(threads: threads, held: held)
            #expect(parts == one, "\(threads) threads holding \(held)")
            #expect(counts == oneCounts, "\(threads) threads holding \(held)")
        }
    }

    /// A table that grows past the size its blocks are remapped at (2 MiB of entries, ~44k)
    /// keeps every entry as it was: moved, not copied, several times over.
    @Test func entriesKeptAsTheTableGrows() {
        let t = KeyTable(origin: "grow", expectedCount: 16)
        let n = 120_000
        for i in 0..<n {
            let k = Array("key:\(i)".utf8)
            k.withUnsafeBytes {
                _ = t.insert(db: i % 3, key: $0, slot: UInt16(i % 16384), type: .hash, expireMs: Int64(i), digest: Hash128(low: UInt64(i), high: ~UInt64(i)))
            }
        }
        var wrong = 0
        for i in 0..<n {
            let k = Array("key:\(i)".utf8)
            guard let j = k.withUnsafeBytes({ t.find(db: i % 3, key: $0, hash: KeyTable.hash(db: i % 3, key: $0)) }) else { wrong += 1; continue }
            let e = t.entry(j)
            if e.digest != Hash128(low: UInt64(i), high: ~UInt64(i)) || e.expireMs != Int64(i) || e.slot != UInt16(i % 16384) || t.keyArray(j) != k {
                wrong += 1
            }
        }
        #expect(wrong == 0 && t.count == n)
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
