import Foundation
import HashSlots
import SlotdiffCore
import TestSupport
import Testing

/// The explanation of a difference, per type: a pure function of the two values.
@Suite struct ExplainTests {
    func b(_ s: String) -> [UInt8] { Array(s.utf8) }
    func items(_ type: ValueType, _ elements: [String]) -> DecodedValue {
        .items(type, elements.map { .init(parts: [b($0)]) })
    }
    func hash(_ pairs: [(String, String, Int64?)]) -> DecodedValue {
        .items(.hash, pairs.map { .init(parts: [b($0.0), b($0.1)], fixed: $0.2.map { [UInt64(bitPattern: $0)] } ?? []) })
    }
    func zset(_ pairs: [(String, Double)]) -> DecodedValue {
        .items(.zset, pairs.map { .init(parts: [b($0.0)], fixed: [CanonicalDigester.canonicalBits($0.1)]) })
    }
    func strings(_ a: JSONValue?) -> [String] { a?.arrayValue?.compactMap(\.stringValue) ?? [] }

    @Test func hashFieldsChangedMissingExtra() {
        let d = Explain.detail(
            source: hash([("a", "1", nil), ("f3", "val17", nil), ("gone", "x", nil), ("t", "v", 1000)]),
            target: hash([("a", "1", nil), ("f3", "changed", nil), ("new", "y", nil), ("t", "v", 2000)]))
        #expect(d["type"]?.stringValue == "hash")
        #expect(d["source_count"]?.intValue == 4 && d["target_count"]?.intValue == 4)
        let changed = d["changed"]?.arrayValue ?? []
        #expect(changed.count == 2 && d["changed_total"]?.intValue == 2)
        #expect(changed[0] == .object(["field": .string("f3"), "source": .string("val17"), "target": .string("changed")]))
        #expect(
            changed[1]["field"]?.stringValue == "t" && changed[1]["source_expire_ms"]?.intValue == 1000
                && changed[1]["target_expire_ms"]?.intValue == 2000)
        #expect(d["missing"] == .array([.object(["field": .string("gone"), "value": .string("x")])]))
        #expect(d["extra"] == .array([.object(["field": .string("new"), "value": .string("y")])]))
        #expect(Explain.lines(d, limit: 10).first == "field f3: \"val17\" → \"changed\"")
    }

    @Test func setMembersOnEachSide() {
        let d = Explain.detail(source: items(.set, ["a", "b", "c"]), target: items(.set, ["c", "b", "d"]))
        #expect(strings(d["missing"]) == ["a"] && strings(d["extra"]) == ["d"])
        #expect(d["missing_total"]?.intValue == 1 && d["extra_total"]?.intValue == 1 && d["changed"] == nil)
    }

    @Test func zsetScoresAndMembers() {
        let d = Explain.detail(source: zset([("a", 1), ("b", 2), ("x", .infinity)]), target: zset([("a", 1), ("b", 2.5), ("c", 3), ("x", .infinity)]))
        #expect(d["changed"] == .array([.object(["member": .string("b"), "source": .number(2), "target": .number(2.5)])]))
        #expect(d["extra"] == .array([.object(["member": .string("c"), "score": .number(3)])]))
        #expect(d["missing"] == nil)
        let inf = Explain.detail(source: zset([("a", .infinity)]), target: zset([("a", -.infinity)]))
        #expect(inf["changed"]?[0]?["source"] == .string("inf") && inf["changed"]?[0]?["target"] == .string("-inf"))
    }

    @Test func listFirstDifferingIndex() {
        let d = Explain.detail(source: items(.list, ["1", "2", "3", "4"]), target: items(.list, ["1", "3", "2", "4"]))
        #expect(d["index"]?.intValue == 1 && strings(d["source"]) == ["2", "3", "4"] && strings(d["target"]) == ["3", "2", "4"])
        let longer = Explain.detail(source: items(.list, ["a", "b"]), target: items(.list, ["a", "b", "c"]))
        #expect(longer["index"]?.intValue == 2 && strings(longer["source"]).isEmpty && strings(longer["target"]) == ["c"])
        #expect(longer["source_count"]?.intValue == 2 && longer["target_count"]?.intValue == 3)
    }

    @Test func stringOffsetAndWindow() {
        let d = Explain.detail(source: .string(b("hello world")), target: .string(b("hello World")))
        #expect(d["offset"]?.intValue == 6 && d["window_start"]?.intValue == 0)
        #expect(d["source"]?.stringValue == "hello world" && d["target"]?.stringValue == "hello World")
        let long = Explain.detail(
            source: .string(Array(repeating: UInt8(ascii: "z"), count: 5000) + b("a")),
            target: .string(Array(repeating: UInt8(ascii: "z"), count: 5000) + b("b")))
        #expect(long["offset"]?.intValue == 5000 && long["window_start"]?.intValue == 4984)
        #expect(long["source"]?.stringValue == String(repeating: "z", count: 16) + "a" && long["source_length"]?.intValue == 5001)
        let binary = Explain.detail(source: .string([0, 1, 2]), target: .string([0, 1, 3]))
        #expect(binary["source"] == .object(["base64": .string("AAEC"), "length": .int(3)]))
    }

    @Test func valuesAreCut() {
        let long = String(repeating: "é", count: 300)  // 600 bytes
        let v = Explain.blob(b(long))
        #expect(v["length"]?.intValue == 600 && v["text"]?.stringValue == String(repeating: "é", count: 128))
        #expect(Explain.blob(b("tab\there"))["base64"] != nil)
        // At most 100 elements per key, with the totals.
        let d = Explain.detail(source: items(.set, (0..<150).map { "s\($0)" }), target: items(.set, (0..<150).map { "t\($0)" }))
        #expect(d["missing"]?.arrayValue?.count == 100 && d["missing_total"]?.intValue == 150)
        #expect(d["extra"]?.arrayValue?.count == 0 && d["extra_total"]?.intValue == 150)
    }

    @Test func streamEntriesAndGroups() {
        func entry(_ ms: UInt64, _ fv: [String]) -> DecodedValue.Item { .init(parts: fv.map(b), fixed: [ms, 0, UInt64(fv.count / 2)]) }
        var s = DecodedValue.items(.stream, [entry(1, ["f", "a"]), entry(2, ["f", "b"]), entry(3, ["f", "c"])])
        var t = DecodedValue.items(.stream, [entry(1, ["f", "a"]), entry(2, ["f", "CHANGED"]), entry(4, ["f", "d"])])
        s.lastID = (3, 0)
        t.lastID = (4, 0)
        s.groups = [.init(name: b("g"), lastMs: 2, lastSeq: 0, pending: [.init(ms: 1, seq: 0, consumer: b("c"), deliveries: 1)])]
        t.groups = [
            .init(name: b("g"), lastMs: 3, lastSeq: 0, pending: [.init(ms: 1, seq: 0, consumer: b("c"), deliveries: 2)]),
            .init(name: b("h"), lastMs: 0, lastSeq: 0)
        ]
        let d = Explain.detail(source: s, target: t)
        #expect(d["changed"]?[0]?["id"]?.stringValue == "2-0" && strings(d["changed"]?[0]?["target"]) == ["f", "CHANGED"])
        #expect(strings(d["missing"]) == ["3-0"] && strings(d["extra"]) == ["4-0"])
        #expect(d["changed"]?[0]?["fields"] == .array([.object(["field": .string("f"), "source": .string("b"), "target": .string("CHANGED")])]))
        #expect(Explain.lines(d, limit: 10).first == "entry 2-0: field f \"b\" → \"CHANGED\"")
        #expect(d["last_id"] == .object(["source": .string("3-0"), "target": .string("4-0")]))
        let g = d["groups"]?.arrayValue ?? []
        #expect(g.count == 2)
        #expect(g[0]["last_delivered"] == .object(["source": .string("2-0"), "target": .string("3-0")]))
        #expect(g[0]["pending_changed"]?[0]?["target"]?["deliveries"]?.intValue == 2)
        #expect(g[1] == .object(["name": .string("h"), "only": .string("target")]))
    }

    @Test func typesAndBounds() {
        let d = Explain.detail(source: items(.set, ["x"]), target: .string(b("x")))
        #expect(d == .object(["source_type": .string("set"), "target_type": .string("string"), "source_count": .int(1), "target_count": .int(1)]))
        var big = DecodedValue(type: .set)
        big.count = 2_000_000
        big.tooLarge = true
        let t = Explain.detail(source: big, target: items(.set, ["a"]))
        #expect(t["too_large"]?.boolValue == true && t["source_count"]?.intValue == 2_000_000 && t["missing"] == nil)
    }

    /// The capture keeps what the digester is fed, and only up to its bound.
    @Test func captureIsBounded() {
        let d = CanonicalDigester()
        let c = ValueCapture(bound: ExplainBound(elements: 10, bytes: 1 << 20, totalBytes: 1 << 20))
        d.capture = c
        d.begin(.set)
        for i in 0..<5 { Array("m\(i)".utf8).withUnsafeBytes { d.element($0) } }
        let small = c.take()
        #expect(small.count == 5 && !small.tooLarge && small.items.map { String(decoding: $0.parts[0], as: UTF8.self) } == ["m0", "m1", "m2", "m3", "m4"])
        d.begin(.set)
        for i in 0..<50 { Array("m\(i)".utf8).withUnsafeBytes { d.element($0) } }
        let big = c.take()
        #expect(big.count == 50 && big.tooLarge && big.items.isEmpty)
        // Bytes over the bound: a string too.
        let s = ValueCapture(bound: ExplainBound(elements: 10, bytes: 8, totalBytes: 100))
        d.capture = s
        d.begin(.string)
        Array("0123456789".utf8).withUnsafeBytes { d.stringPart($0) }
        let str = s.take()
        // One huge element is let go as it arrives, not at its item's end.
        let h = ValueCapture(bound: ExplainBound(elements: 10, bytes: 8, totalBytes: 100))
        d.capture = h
        d.begin(.hash)
        d.beginItem()
        Array("field".utf8).withUnsafeBytes { d.component($0) }
        d.componentBegin(length: 12)
        Array("0123456789ab".utf8).withUnsafeBytes { d.componentPart($0) }
        #expect(h.value.tooLarge && h.value.items.isEmpty)
        d.endItem()
        #expect(h.take().count == 1)
        #expect(str.tooLarge && str.count == 10)
    }

    /// The detail goes into the log line and comes back the same.
    @Test func logLineRoundTrip() throws {
        let detail = Explain.detail(source: hash([("f3", "val17", nil), ("bin", "\u{1}", 5)]), target: hash([("f3", "changed", nil)]))
        let d = Difference(
            kind: .value, db: 0, slot: 1, key: b("user:42"),
            source: SideState(type: .hash, expireMs: nil, digest: Hash128(low: 1, high: 2)),
            target: SideState(type: .hash, expireMs: 5, digest: Hash128(low: 3, high: 4)), detail: detail)
        let line = d.jsonLine()
        #expect(line.hasSuffix(",\"detail\":" + detail.text + "}"))
        let back = try Difference(jsonLine: Substring(line))
        #expect(back == d && back.jsonLine() == line)
        let changed = Difference(
            kind: .value, db: 0, slot: 1, key: b("k"), source: nil, target: nil, detail: .object(["changed_since_check": .array([.string("target")])]))
        #expect(try Difference(jsonLine: Substring(changed.jsonLine())) == changed)
        // Through the log file.
        let path = TestPaths.temporaryDirectory().appendingPathComponent("x.jsonl.zst").path
        let w = try DiffLogWriter(path: path)
        try w.write(d)
        try w.close()
        var read: [Difference] = []
        try DiffLogReader(path: path).forEach { read.append($0) }
        #expect(read == [d])
    }

    /// A key whose digest read again is not the one the check recorded is marked, not explained.
    @Test func changedSinceTheCheck() {
        let st = SideState(type: .string, expireMs: nil, digest: Hash128(low: 1, high: 1))
        let other = SideState(type: .string, expireMs: nil, digest: Hash128(low: 2, high: 1))
        let d = Difference(kind: .value, db: 0, slot: 0, key: b("k"), source: st, target: st)
        let ok = Explain.detail(for: d, source: .present(st, .string(b("a"))), target: .present(st, .string(b("b"))))
        #expect(ok["offset"]?.intValue == 0)
        let moved = Explain.detail(for: d, source: .present(st, .string(b("a"))), target: .present(other, .string(b("c"))))
        #expect(moved == .object(["changed_since_check": .array([.string("target")])]))
        let gone = Explain.detail(for: d, source: .absent, target: .present(st, .string(b("b"))))
        #expect(gone == .object(["changed_since_check": .array([.string("source")])]))
        let cannot = Explain.detail(for: d, source: .unavailable("no"), target: .absent)
        #expect(cannot == .object(["unavailable": .string("no")]))
    }
}
