import Foundation
import HashSlots
import SlotdiffCore
import TestSupport
import Testing

@Suite struct DiffLogTests {
    func sample(_ i: Int) -> Difference {
        let key: [UInt8] = i % 3 == 0 ? [0xFF, 0xFE, UInt8(i % 256)] : Array("key:\(i) \"quoted\"\n".utf8)
        return Difference(
            kind: DifferenceKind.allCases[i % 5], db: i % 4, slot: HashSlot.slot(of: key), key: key,
            source: i % 5 == 1
                ? nil
                : SideState(
                    type: .hash, expireMs: i % 2 == 0 ? nil : 1_893_456_000_000 + Int64(i),
                    digest: Hash128(low: UInt64(i), high: 7)),
            target: i % 5 == 0 ? nil : SideState(type: .zset, expireMs: nil, digest: Hash128(low: 9, high: UInt64(i))))
    }

    @Test func roundTrip() throws {
        let dir = TestPaths.temporaryDirectory()
        let path = dir.appendingPathComponent("log.jsonl.zst").path
        let w = try DiffLogWriter(path: path)
        let written = (0..<5000).map(sample)
        for d in written { try w.write(d) }
        try w.close()
        var read: [Difference] = []
        let r = DiffLogReader(path: path)
        try r.forEach { read.append($0) }
        #expect(read == written)
        #expect(!r.truncated)
    }

    @Test func lineFormat() {
        let d = Difference(
            kind: .value, db: 0, slot: 5474, key: Array("user:42".utf8),
            source: SideState(type: .hash, expireMs: 1_893_456_000_000, digest: Hash128(low: 2, high: 1)),
            target: SideState(type: .hash, expireMs: nil, digest: Hash128(low: 3, high: 1)))
        #expect(
            d.jsonLine() == """
                {"kind":"value","db":0,"slot":5474,"key":"user:42","source":{"type":"hash","expire_ms":1893456000000,"digest":"00000000000000010000000000000002"},"target":{"type":"hash","expire_ms":null,"digest":"00000000000000010000000000000003"}}
                """)
        let binary = Difference(kind: .missing, db: 1, slot: 0, key: [0xFF, 0x00], source: nil, target: nil)
        #expect(binary.jsonLine().contains("\"key_base64\":\"/wA=\""))
    }

    /// A run killed mid-write leaves complete frames readable.
    @Test func truncatedLogKeepsCompleteFrames() throws {
        let dir = TestPaths.temporaryDirectory()
        let path = dir.appendingPathComponent("log.jsonl.zst").path
        let w = try DiffLogWriter(path: path)
        for i in 0..<3000 { try w.write(sample(i)) }
        try w.flush()
        for i in 3000..<6000 { try w.write(sample(i)) }
        try w.close()
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        let cut = whole.prefix(whole.count - 100)
        try cut.write(to: URL(fileURLWithPath: path))
        var n = 0
        let r = DiffLogReader(path: path)
        try r.forEach { d in
            #expect(d == sample(n))
            n += 1
        }
        #expect(r.truncated)
        #expect(n >= 3000 && n < 6000)
    }

    /// A finished log ends with its closing record: not a difference, read into `end`. A log
    /// continued after its last pass (--resume) is cut before it and ends with one again.
    @Test func closingRecord() throws {
        let dir = TestPaths.temporaryDirectory()
        let path = dir.appendingPathComponent("log.jsonl.zst").path
        var counts = CompareCounts()
        counts.sourceKeys = 10
        counts.targetKeys = 12
        counts.compared = 8
        counts.matched = 5
        counts.expired = 1
        let w = try DiffLogWriter(path: path)
        for i in 0..<40 {
            try w.write(sample(i))
            counts.add(sample(i))
        }
        try w.flush()
        let kept = w.size()
        let end = DiffLogEnd(counts: counts, passes: 3)
        try w.finish(end)
        #expect(end.jsonLine().hasPrefix(DiffLogEnd.prefix) && !end.jsonLine().contains("\n"))
        #expect(try DiffLogEnd(jsonLine: Substring(end.jsonLine())) == end)
        var read: [Difference] = []
        let r = DiffLogReader(path: path)
        try r.forEach { read.append($0) }
        #expect(read == (0..<40).map(sample))
        #expect(r.end == end && r.complete && r.consistent && r.differenceLines == 40)
        #expect(r.end?.result == "differences" && r.end?.differencesTotal == 40 && r.end?.passes == 3)
        let scanned = DiffLogReader(path: path)
        try scanned.scan()
        #expect(scanned.end == end && scanned.differenceLines == 40)

        // Resumed after the 40 lines: the old closing record is cut off.
        let again = try DiffLogWriter(path: path, appendAfter: kept)
        try again.write(sample(40))
        counts.add(sample(40))
        try again.finish(DiffLogEnd(counts: counts, passes: 3))
        let r2 = DiffLogReader(path: path)
        var n = 0
        try r2.forEach { _ in n += 1 }
        #expect(n == 41 && r2.complete && r2.consistent && r2.end?.differencesTotal == 41)

        // Without one: incomplete.
        let open = dir.appendingPathComponent("open.jsonl.zst").path
        let w3 = try DiffLogWriter(path: open)
        try w3.write(sample(1))
        try w3.close()
        let r3 = DiffLogReader(path: open)
        try r3.forEach { _ in }
        #expect(r3.end == nil && !r3.complete && !r3.truncated)
        // An empty match.
        let empty = dir.appendingPathComponent("empty.jsonl.zst").path
        try DiffLogWriter(path: empty).finish(DiffLogEnd(counts: CompareCounts(), passes: 1))
        let r4 = DiffLogReader(path: empty)
        try r4.forEach { _ in Issue.record("a difference") }
        #expect(r4.end?.result == "match" && r4.complete && r4.consistent)
        // A closing record that contradicts itself is an error.
        #expect(throws: SlotdiffError.self) {
            try DiffLogEnd(jsonLine: Substring(end.jsonLine().replacingOccurrences(of: "\"differences_total\":40", with: "\"differences_total\":4")))
        }
    }

    @Test func notALog() throws {
        let dir = TestPaths.temporaryDirectory()
        let path = dir.appendingPathComponent("x.jsonl.zst").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: SlotdiffError.self) { try DiffLogReader(path: path).forEach { _ in } }
    }
}

@Suite struct RuleTests {
    let rule = DifferenceRule(ttlToleranceMs: 1000)
    let h = Hash128(low: 1, high: 1)

    @Test func kinds() {
        let a = SideState(type: .string, expireMs: nil, digest: h)
        #expect(rule.kind(source: a, target: a) == nil)
        #expect(rule.kind(source: a, target: SideState(type: .list, expireMs: nil, digest: h)) == .type)
        #expect(rule.kind(source: a, target: SideState(type: .string, expireMs: nil, digest: Hash128(low: 2, high: 1))) == .value)
        #expect(rule.kind(source: a, target: SideState(type: .string, expireMs: 5, digest: h)) == .ttl)
        let e1 = SideState(type: .string, expireMs: 10_000, digest: h)
        #expect(rule.kind(source: e1, target: SideState(type: .string, expireMs: 11_000, digest: h)) == nil)
        #expect(rule.kind(source: e1, target: SideState(type: .string, expireMs: 11_001, digest: h)) == .ttl)
    }
}
