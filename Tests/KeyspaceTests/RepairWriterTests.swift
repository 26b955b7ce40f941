import Foundation
import SlotdiffCore
import TestSupport
import Testing

@testable import Keyspace

/// The repair script writer without servers: batch bounds, string pieces, a key read again from
/// its start, scores and names. (`RepairTests` applies scripts to real servers.)
struct RepairWriterTests {
    let dir = TestPaths.temporaryDirectory()

    func writer(_ keys: [RepairKey], expiryOnly: Set<Int> = []) throws -> (RepairWriter, ScriptFile, String) {
        let path = dir.appendingPathComponent("\(UUID().uuidString).resp").path
        let file = try ScriptFile(path: path, node: nil)
        return (RepairWriter(keys: keys, expiryOnly: expiryOnly) { _ in file }, file, path)
    }

    func key(_ name: String, db: Int = 0, kind: DifferenceKind = .value) -> RepairKey {
        RepairKey(db: db, sourceDb: db, key: Array(name.utf8), kind: kind, logged: nil)
    }

    func names(_ commands: [[[UInt8]]]) -> [String] { commands.map { String(decoding: $0[0], as: UTF8.self) } }

    @Test func collectionsGoInBoundedBatches() throws {
        let (w, file, path) = try writer([key("h"), key("s", db: 3)])
        w.begin(0, .hash)
        for i in 0..<2500 {
            w.item(DecodedValue.Item(parts: [Array("f\(i)".utf8), Array("v".utf8)], fixed: i == 7 ? [4_102_444_800_000] : []))
        }
        w.begin(1, .set)
        // Big members: the byte bound ends a batch before the element bound does.
        let member = [UInt8](repeating: 0x61, count: 300_000)
        for i in 0..<10 { w.item(DecodedValue.Item(parts: [member + Array("\(i)".utf8)])) }
        try w.finish()
        try file.finish()
        let c = try scriptCommands(path)
        #expect(names(c) == ["DEL", "HSET", "HPEXPIREAT", "HSET", "HSET", "SELECT", "DEL", "SADD", "SADD", "SADD"])
        #expect(c.filter { $0[0] == Array("HSET".utf8) }.map(\.count) == [2002, 2002, 1002])
        #expect(c[2].map { String(decoding: $0, as: UTF8.self) } == ["HPEXPIREAT", "h", "4102444800000", "FIELDS", "1", "f7"])
        #expect(c.allSatisfy { $0.count <= RepairWriter.maxArguments })
        #expect(c.filter { $0[0] == Array("SADD".utf8) }.map { $0.count - 2 } == [4, 4, 2])
    }

    @Test func stringsInPiecesAndEmptyStrings() throws {
        let (w, file, path) = try writer([key("big"), key("empty")])
        w.begin(0, .string)
        let piece = [UInt8](repeating: 0x62, count: 700_000)
        for _ in 0..<4 { piece.withUnsafeBytes { w.stringPart($0) } }
        w.begin(1, .string)
        try w.finish()
        try file.finish()
        let c = try scriptCommands(path)
        #expect(names(c) == ["DEL", "SET", "APPEND", "APPEND", "DEL", "SET"])
        #expect(c[1...3].map { $0[2].count } == [1 << 20, 1 << 20, 2_800_000 - 2 << 20])
        #expect(c[5][2].isEmpty)
    }

    /// A key read again from its start (it changed while read): the first attempt's commands
    /// are gone, the second's stand; a key whose expiry only is repaired writes nothing here.
    @Test func aKeyReadAgainIsWrittenOnce() throws {
        let (w, file, path) = try writer([key("a"), key("l"), key("t", kind: .ttl)], expiryOnly: [2])
        w.begin(0, .string)
        Array("first".utf8).withUnsafeBytes { w.stringPart($0) }
        w.begin(1, .list)
        for i in 0..<3 { w.item(DecodedValue.Item(parts: [Array("old\(i)".utf8)])) }
        w.begin(1, .list)
        w.item(DecodedValue.Item(parts: [Array("new".utf8)]))
        w.begin(2, .string)
        Array("unchanged".utf8).withUnsafeBytes { w.stringPart($0) }
        try w.finish()
        try file.finish()
        let c = try scriptCommands(path)
        #expect(names(c) == ["DEL", "SET", "DEL", "RPUSH"])
        #expect(c[3].map { String(decoding: $0, as: UTF8.self) } == ["RPUSH", "l", "new"])
        #expect(file.keys == 2)
    }

    @Test func modulesAreNotWritable() throws {
        let (w, file, path) = try writer([key("m")])
        w.begin(0, .module)
        try w.finish()
        try file.finish()
        #expect(try scriptCommands(path).isEmpty)
        #expect(w.notWritable[0] != nil)
    }

    @Test func scoresReadBackToTheSameDouble() {
        for d in [0.1, 1.0 / 3, -2.5e-300, 1e300, .leastNonzeroMagnitude, 42, -0.0, .infinity, -.infinity, .greatestFiniteMagnitude] {
            let text = String(decoding: RepairWriter.scoreText(CanonicalDigester.canonicalBits(d)), as: UTF8.self)
            let back = text == "+inf" ? Double.infinity : text == "-inf" ? -Double.infinity : Double(text)
            #expect(back.map(CanonicalDigester.canonicalBits) == CanonicalDigester.canonicalBits(d), "\(d) → \(text)")
        }
    }

    @Test func scriptNamesPerNode() {
        #expect(Repair.scriptPath("/x/fix.resp", node: "10.0.0.5:6379") == "/x/fix.10.0.0.5-6379.resp")
        #expect(Repair.scriptPath("fix", node: "[::1]:7000") == "fix.::1-7000")
        #expect(Repair.scriptPath("fix.resp", node: "node-a.internal:7001") == "fix.node-a.internal-7001.resp")
    }

    @Test func streamTails() {
        var v = DecodedValue(type: .stream)
        v.count = 2
        v.lastID = (9, 1)
        v.groups = [.init(name: Array("g".utf8), lastMs: 5, lastSeq: 0, pending: [.init(ms: 5, seq: 0, consumer: Array("c".utf8), deliveries: 3)])]
        let tail = Repair.streamTail(Array("s".utf8), v).map { $0.map { String(decoding: $0, as: UTF8.self) }.joined(separator: " ") }
        #expect(tail == ["XSETID s 9-1", "XGROUP CREATE s g 5-0", "XCLAIM s g c 0 5-0 FORCE RETRYCOUNT 3 JUSTID"])
        var empty = DecodedValue(type: .stream)
        empty.lastID = (0, 0)
        #expect(Repair.streamTail(Array("e".utf8), empty).count == 2)
        empty.lastID = (7, 0)
        #expect(Repair.streamTail(Array("e".utf8), empty).map { String(decoding: $0[0], as: UTF8.self) } == ["XADD"])
    }
}

/// Elements spilled to disk to explain values over the bound, without servers.
struct ElementSpillTests {
    let dir = TestPaths.temporaryDirectory()

    @Test func stringsDifferAtAnOffsetPastTheFirstChunk() throws {
        let s = try ElementSpill(directory: dir, name: "s", buckets: 1)
        let t = try ElementSpill(directory: dir, name: "t", buckets: 1)
        defer { s.close(); t.close() }
        var a = [UInt8](repeating: 0x61, count: 200_000)
        s.begin(0, .string)
        t.begin(0, .string)
        a.withUnsafeBytes { s.stringPart($0) }
        a[150_000] = 0x62
        a.append(0x63)
        // In pieces of another size on the other side: only the bytes count.
        for piece in stride(from: 0, to: a.count, by: 7_001) { a[piece..<min(a.count, piece + 7_001)].withUnsafeBytes { t.stringPart($0) } }
        try s.finish()
        try t.finish()
        var o: [String: JSONValue] = [:]
        Explain.firstDifference(source: s, target: t, &o)
        #expect(o["offset"]?.intValue == 150_000)
        #expect(o["window_start"]?.intValue == 150_000 - Explain.stringBefore)
        #expect(o["target"]?.stringValue == String(repeating: "a", count: 16) + "b" + String(repeating: "a", count: 47))
    }

    @Test func bucketsHoldEachElementWithItsCounterpart() throws {
        let s = try ElementSpill(directory: dir, name: "hs", buckets: 8)
        let t = try ElementSpill(directory: dir, name: "ht", buckets: 8)
        defer { s.close(); t.close() }
        // A first attempt is forgotten when the key is read again from its start.
        s.begin(0, .hash)
        s.item(DecodedValue.Item(parts: [Array("stale".utf8), Array("x".utf8)]))
        s.begin(0, .hash)
        t.begin(0, .hash)
        for i in 0..<5000 {
            s.item(DecodedValue.Item(parts: [Array("f\(i)".utf8), Array("v".utf8)]))
            if i != 10 { t.item(DecodedValue.Item(parts: [Array("f\(i)".utf8), Array(i == 4000 ? "w".utf8 : "v".utf8)])) }
        }
        try s.finish()
        try t.finish()
        var o: [String: JSONValue] = [:]
        Explain.partitioned(.hash, buckets: 8, read: { (s.items(bucket: $0), t.items(bucket: $0)) }, &o)
        #expect(o["changed_total"]?.intValue == 1 && o["missing_total"]?.intValue == 1 && o["extra_total"] == nil, "\(o)")
        #expect(o["changed"]?[0]?["field"] == .string("f4000"))
        #expect(o["missing"]?[0]?["field"] == .string("f10"))
    }
}
