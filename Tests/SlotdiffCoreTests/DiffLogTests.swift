import Foundation
import Testing
import SlotdiffCore
import TestSupport

@Suite struct DiffLogTests {
    func sample(_ i: Int) -> Difference {
        let key: [UInt8] = i % 3 == 0 ? [0xFF, 0xFE, UInt8(i % 256)] : Array("key:\(i) \"quoted\"\n".utf8)
        return Difference(kind: DifferenceKind.allCases[i % 5], db: i % 4, slot: HashSlot.slot(of: key), key: key,
                          source: i % 5 == 1 ? nil : SideState(type: .hash, expireMs: i % 2 == 0 ? nil : 1_893_456_000_000 + Int64(i),
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
        let d = Difference(kind: .value, db: 0, slot: 5474, key: Array("user:42".utf8),
                           source: SideState(type: .hash, expireMs: 1_893_456_000_000, digest: Hash128(low: 2, high: 1)),
                           target: SideState(type: .hash, expireMs: nil, digest: Hash128(low: 3, high: 1)))
        #expect(d.jsonLine() == """
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

    @Test func notALog() throws {
        let dir = TestPaths.temporaryDirectory()
        let path = dir.appendingPathComponent("x.jsonl.zst").path
        try Data("hello".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: LogError.self) { try DiffLogReader(path: path).forEach { _ in } }
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
