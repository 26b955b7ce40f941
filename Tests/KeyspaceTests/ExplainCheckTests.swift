import Foundation
import HashSlots
import NIOConcurrencyHelpers
import SlotdiffCore
import TestSupport
import Testing

@testable import Keyspace

/// A side whose values, read again to explain, are given: what the explanation read sees.
final class ValueSource: KeyspaceSource {
    let isLive: Bool
    var isCluster: Bool { false }
    let held: [String: (SideState, DecodedValue)]
    /// What `values` answers (missing: as held).
    let later: [String: ValueRead]
    private let asked = NIOLockedValueBox<[[String]]>([])

    init(live: Bool, _ held: [String: (SideState, DecodedValue)], later: [String: ValueRead] = [:]) {
        isLive = live
        self.held = held
        self.later = later
    }

    var valueReads: [[String]] { asked.withLockedValue { $0 } }

    func keyCount() async throws -> Int? { held.count }
    func databases() async throws -> [Int]? { [0] }
    func readOnce(passes: [SlotRange], _ read: ReadContext) async throws -> (any KeptPasses)? { nil }
    func records(_ read: ReadContext, kept: (any KeptPasses)?) async throws -> SideRecords {
        let table = KeyTable(origin: "memory")
        for (k, h) in held {
            let key = Array(k.utf8)
            _ = key.withUnsafeBytes { table.insert(db: 0, key: $0, slot: HashSlot.slot(of: key), type: h.0.type, expireMs: h.0.expireMs, digest: h.0.digest) }
        }
        return SideRecords(tables: [table], inputs: [])
    }
    func reread(_ keys: [(db: Int, key: [UInt8])], first: [SideState?]) async throws -> [SideState?] { first }
    func values(_ keys: [(db: Int, key: [UInt8])], bound: ExplainBound, sink: (any ValueSink)?) async throws -> [ValueRead] {
        let names = keys.map { String(decoding: $0.key, as: UTF8.self) }
        asked.withLockedValue { $0.append(names) }
        return names.map { n in later[n] ?? held[n].map { .present($0.0, $0.1) } ?? .absent }
    }
    func close() async {}
}

/// Explanations in a check: the drift pair live (Redis 7.0 → Valkey 8.1) and from its two dump
/// files, every value difference's detail exact; a key changed between the check and its
/// explanation marked; `--explain` bounds how many are explained.
@Suite(.serialized)
struct ExplainCheckTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }

    static func state(_ n: UInt64, _ type: ValueType = .string) -> SideState { SideState(type: type, expireMs: nil, digest: Hash128(low: n, high: 1)) }

    func run(_ s: any KeyspaceSource, _ t: any KeyspaceSource, explain: Int = 1000) async throws -> [Difference] {
        var o = CheckOptions()
        o.roundDelayMs = 0
        o.rounds = 1
        o.explain = explain
        let found = NIOLockedValueBox<[Difference]>([])
        _ = try await Check.run(source: s, target: t, options: o) { d in found.withLockedValue { $0.append(d) } }
        return found.withLockedValue { $0 }.sorted { $0.displayKey < $1.displayKey }
    }

    /// In-process: the value read to explain is diffed; a key whose digest read again is not
    /// the one the check recorded is marked, not explained; a side that cannot read values
    /// says so; only the first `explain` differences are read.
    @Test func changedKeyIsMarked() async throws {
        for live in [false, true] {
            let s = ValueSource(
                live: live,
                [
                    "a": (Self.state(1), .string(Array("hello".utf8))), "b": (Self.state(2), .string(Array("x".utf8))),
                    "c": (Self.state(5), .string(Array("same".utf8)))
                ])
            let t = ValueSource(
                live: live,
                [
                    "a": (Self.state(3), .string(Array("help!".utf8))), "b": (Self.state(4), .string(Array("y".utf8))),
                    "c": (Self.state(5), .string(Array("same".utf8)))
                ],
                later: ["b": .present(Self.state(9), .string(Array("z".utf8)))])
            let diffs = try await run(s, t)
            #expect(diffs.map(\.displayKey) == ["a", "b"])
            #expect(diffs[0].detail?["offset"]?.intValue == 3 && diffs[0].detail?["target"]?.stringValue == "help!", "\(live)")
            #expect(diffs[1].detail == .object(["changed_since_check": .array([.string("target")])]), "\(live)")
            #expect(s.valueReads.count == 1 && Set(s.valueReads[0]) == ["a", "b"], "both keys read again in one go")
            let limited = try await run(
                ValueSource(live: live, ["a": (Self.state(1), .string([1])), "b": (Self.state(2), .string([2]))]),
                ValueSource(live: live, ["a": (Self.state(3), .string([3])), "b": (Self.state(4), .string([4]))]), explain: 1)
            #expect(limited.filter { $0.detail != nil }.count == 1)
            let off = try await run(
                ValueSource(live: live, ["a": (Self.state(1), .string([1]))]), ValueSource(live: live, ["a": (Self.state(3), .string([3]))]), explain: 0)
            #expect(off.count == 1 && off[0].detail == nil)
        }
        let memory = MemorySource(live: false, [(0, "a", Self.state(1))])
        let diffs = try await run(memory, ValueSource(live: false, ["a": (Self.state(2), .string([2]))]))
        #expect(diffs[0].detail == .object(["unavailable": .string("this side cannot read values again")]))
    }

    /// A dump side that cannot be read again (a pipe, standard input) says so at once: it
    /// never waits on a pipe for a writer that is gone.
    @Test func pipesCannotBeReadAgain() async throws {
        let fifo = path("pipe.rdb")
        #expect(mkfifo(fifo, 0o600) == 0)
        for spec in [fifo, "-"] {
            let side = DumpFileSource(try DumpFiles(spec: spec))
            let reads = try await side.values([(db: 0, key: Array("k".utf8))], bound: ExplainBound())
            guard case .unavailable(let why)? = reads.first else { Issue.record("\(spec): \(reads)"); continue }
            #expect(why.contains(spec == "-" ? "standard input" : "not a regular file"), "\(why)")
        }
    }

    // MARK: the drift pair

    func diffs(_ a: String, _ b: String, _ extra: [String] = [], log: String) throws -> [String: Difference] {
        let r = try slotdiff(["compare", a, b, "--out", path(log), "--round-delay", "50ms"] + extra, timeout: 300)
        #expect(r.status == 1, "\(r.stderr)")
        var out: [String: Difference] = [:]
        try DiffLogReader(path: path(log)).forEach { out["\($0.db) \($0.displayKey)"] = $0 }
        return out
    }

    /// What the drift pair's value and type differences are, exactly (Fixtures/README.md).
    func checkDrift(_ all: [String: Difference], _ label: String) {
        func d(_ key: String, db: Int = 0) -> JSONValue {
            guard let x = all["\(db) \(key)"] else { Issue.record("\(label): \(key) not reported"); return .null }
            guard let detail = x.detail else { Issue.record("\(label): \(key) has no detail"); return .null }
            return detail
        }
        func s(_ v: String) -> JSONValue { .string(v) }
        func strings(_ v: JSONValue?) -> [String] { v?.arrayValue?.compactMap(\.stringValue) ?? [] }
        let explained = all.values.filter { $0.kind == .value || $0.kind == .type }
        #expect(
            explained.count == 23 && explained.allSatisfy { $0.detail != nil && $0.detail?["changed_since_check"] == nil && $0.detail?["unavailable"] == nil },
            "\(label)")
        #expect(all.values.filter { $0.kind != .value && $0.kind != .type }.allSatisfy { $0.detail == nil }, "\(label)")
        // Strings: both lengths, the first differing offset, a window of both.
        let str = d("val:string")
        #expect(
            str["offset"]?.intValue == 6 && str["source"] == s("hello world") && str["target"] == s("hello World")
                && str["source_length"]?.intValue == 11 && str["target_length"]?.intValue == 11, "\(label) \(str.text)")
        let longer = d("val:string:longer")
        #expect(
            longer["offset"]?.intValue == 3 && longer["source"] == s("abc") && longer["target"] == s("abcd") && longer["target_length"]?.intValue == 4,
            "\(label)")
        let int = d("val:int")
        #expect(int["offset"]?.intValue == 2 && int["source"] == s("100") && int["target"] == s("101"), "\(label) \(int.text)")
        let lzf = d("val:string:lzf")
        #expect(
            lzf["offset"]?.intValue == 5000 && lzf["window_start"]?.intValue == 4984 && lzf["source_length"]?.intValue == 5001
                && lzf["source"] == s(String(repeating: "z", count: 16) + "a") && lzf["target"] == s(String(repeating: "z", count: 16) + "b"), "\(label)")
        #expect(d("val:and-ttl")["offset"]?.intValue == 1 && d("val:and-ttl")["target"] == s("v2"), "\(label)")
        // Lists: the first differing index, both elements and a few after.
        let order = d("val:list:order")
        #expect(
            order["index"]?.intValue == 1 && strings(order["source"]) == ["2", "3", "4"] && strings(order["target"]) == ["3", "2", "4"],
            "\(label) \(order.text)")
        let more = d("val:list:longer")
        #expect(
            more["index"]?.intValue == 2 && strings(more["source"]).isEmpty && strings(more["target"]) == ["c"]
                && more["source_count"]?.intValue == 2 && more["target_count"]?.intValue == 3, "\(label)")
        // Sets: members on one side only.
        for (key, gone, new) in [("val:set", "c", "d"), ("val:set:big", "member:1199", "member:changed"), ("val:set:int", "3", "4")] {
            let x = d(key)
            #expect(strings(x["missing"]) == [gone] && strings(x["extra"]) == [new] && x["changed"] == nil, "\(label) \(key) \(x.text)")
        }
        #expect(d("val:set:big")["source_count"]?.intValue == 1200, "\(label)")
        // Sorted sets: the member whose score differs with both scores; members on one side.
        #expect(d("val:zset:score")["changed"] == .array([.object(["member": s("b"), "source": .number(2), "target": .number(2.5)])]), "\(label)")
        #expect(
            d("val:zset:ulp")["changed"] == .array([.object(["member": s("a"), "source": .number(0.30000000000000004), "target": .number(0.3)])]), "\(label)")
        #expect(
            d("val:zset:big")["changed"] == .array([.object(["member": s("p1099"), "source": .number(3297), "target": .number(-1)])])
                && d("val:zset:big")["missing"] == nil, "\(label)")
        let member = d("val:zset:member")
        #expect(
            member["missing"] == .array([.object(["member": s("b"), "score": .number(2)])])
                && member["extra"] == .array([.object(["member": s("c"), "score": .number(2)])]) && member["changed"] == nil, "\(label)")
        // Hashes: fields changed with both values, fields on one side.
        #expect(d("val:hash")["changed"] == .array([.object(["field": s("b"), "source": s("2"), "target": s("3")])]), "\(label)")
        #expect(
            d("val:hash:big")["changed"]
                == .array([
                    .object([
                        "field": s("f500"), "source": s("value-500-" + String(repeating: "x", count: 70)),
                        "target": s("changed")
                    ])
                ]) && d("val:hash:big")["changed_total"]?.intValue == 1, "\(label)")
        let field = d("val:hash:field")
        #expect(
            field["missing"] == .array([.object(["field": s("b"), "value": s("2")])])
                && field["extra"] == .array([.object(["field": s("c"), "value": s("2")])]), "\(label)")
        #expect(d("db2:hash:changed", db: 2)["changed"] == .array([.object(["field": s("f"), "source": s("1"), "target": s("2")])]), "\(label)")
        // Streams: the entry whose field changed; the consumer group's state.
        let stream = d("val:stream")
        #expect(
            stream["changed_total"]?.intValue == 1 && stream["missing"] == nil && stream["extra"] == nil && stream["last_id"] == nil
                && strings(stream["changed"]?[0]?["target"]).last == "CHANGED"
                && stream["changed"]?[0]?["fields"]?.arrayValue?.count == 1 && stream["changed"]?[0]?["fields"]?[0]?["target"] == s("CHANGED"),
            "\(label) \(stream.text)")
        let group = d("val:stream:group")["groups"]?[0]
        #expect(
            group?["name"] == s("g") && group?["last_delivered"] != nil && group?["pending_extra_total"]?.intValue == 1
                && group?["pending_missing"] == nil
                && group?["pending_extra"]?[0]?["id"] == group?["last_delivered"]?["target"], "\(label) \(group?.text ?? "-")")
        // Types: both, briefly.
        #expect(
            d("morph:string-list") == .object(["source_type": s("string"), "target_type": s("list"), "source_count": .int(5), "target_count": .int(1)]),
            "\(label)")
        #expect(d("morph:hash-zset")["target_type"] == s("zset") && d("morph:set-string-and-ttl")["source_type"] == s("set"), "\(label)")
    }

    @Test func driftDumpFilesAreExplained() throws {
        let all = try diffs(TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"), log: "dump.jsonl.zst")
        checkDrift(all, "dump files")
        // Off: no detail at all.
        let off = try diffs(TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"), ["--explain", "0"], log: "off.jsonl.zst")
        #expect(off.values.allSatisfy { $0.detail == nil })
        // report: the short form in the table, the object in JSON.
        let table = try slotdiff(["report", path("dump.jsonl.zst"), "--match", "val:hash"])
        #expect(table.stdout.contains("field b: \"2\" → \"3\""), "\(table.stdout)")
        let json = try slotdiff(["report", path("dump.jsonl.zst"), "--format", "json", "--match", "val:hash", "--html", path("r.html")])
        #expect(json.stdout.contains("\"detail\":{\"changed\":[{\"field\":\"b\",\"source\":\"2\",\"target\":\"3\"}]"), "\(json.stdout)")
        let jsonl = try slotdiff(["report", path("dump.jsonl.zst"), "--format", "jsonl", "--match", "val:hash"])
        #expect(try Difference(jsonLine: Substring(jsonl.stdout.trimmingCharacters(in: .newlines))).detail == all["0 val:hash"]?.detail)
        let page = try String(contentsOfFile: path("r.html"), encoding: .utf8)
        #expect(page.contains("field b: &quot;2&quot; → &quot;3&quot;"))
    }

    @Test(.enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
    func driftLiveIsExplained() async throws {
        try await offPool { [self] in
            try TestServers.start("ex-src", .redis7, port: 17731, load: TestPaths.fixture("drift-source.rdb"))
            try TestServers.start("ex-dst", .valkey8, port: 17732, load: TestPaths.fixture("drift-target.rdb"))
            defer { TestServers.stop("ex-src"); TestServers.stop("ex-dst") }
            checkDrift(try diffs("redis://127.0.0.1:17731", "redis://127.0.0.1:17732", log: "live.jsonl.zst"), "live")
            // Every value read again in bounded chunks (nothing is DUMPed): the same details.
            checkDrift(try diffs("redis://127.0.0.1:17731", "redis://127.0.0.1:17732", ["--big-key-threshold", "1"], log: "chunked.jsonl.zst"), "chunked")
            // A dump file against a live server.
            checkDrift(try diffs(TestPaths.fixture("drift-source.rdb"), "redis://127.0.0.1:17732", log: "mixed.jsonl.zst"), "file against live")
        }
    }

    /// Redis 8.2 with hash-field TTLs: a field whose own expiry moved is explained with both
    /// expiries (through DUMP and through HSCAN + HPEXPIRETIME). A set and a list over the
    /// capture's bound (150,000 members, 105,000 elements) are explained exactly all the same,
    /// through their elements spilled to disk.
    @Test(.enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
    func fieldExpiriesAndBigKeys() async throws {
        try await offPool { [self] in
            try TestServers.start("ex-h", .redis8, port: 17733, load: TestPaths.fixture("hfe-redis8.rdb"))
            try TestServers.start("ex-e", .valkey8, port: 17734)
            defer { TestServers.stop("ex-h"); TestServers.stop("ex-e") }
            let keys = try TestServers.cli(port: 17733, ["--scan", "--pattern", "hfe:*"]).split(separator: "\n").map(String.init)
            let hashKey = try #require(keys.first { (try? TestServers.cli(port: 17733, ["TYPE", $0]))?.hasPrefix("hash") == true })
            let field = try TestServers.cli(port: 17733, ["HRANDFIELD", hashKey]).trimmingCharacters(in: .whitespacesAndNewlines)
            let value = try TestServers.cli(port: 17733, ["HGET", hashKey, field]).trimmingCharacters(in: .whitespacesAndNewlines)
            let before = try TestServers.cli(port: 17733, ["HPEXPIRETIME", hashKey, "FIELDS", "1", field]).trimmingCharacters(in: .whitespacesAndNewlines)
            try TestServers.cli(port: 17733, ["HPEXPIREAT", hashKey, "4200000000000", "FIELDS", "1", field])
            for extra in [[], ["--big-key-threshold", "1"]] {
                let all = try diffs(TestPaths.fixture("hfe-redis8.rdb"), "redis://127.0.0.1:17733", extra, log: "hfe.jsonl.zst")
                let d = try #require(all["0 \(hashKey)"]?.detail, "\(extra)")
                let old: JSONValue = Int(before).map { $0 < 0 ? .null : .int($0) } ?? .null
                #expect(
                    d["changed"]
                        == .array([
                            .object([
                                "field": .string(field), "source": .string(value), "target": .string(value),
                                "source_expire_ms": old, "target_expire_ms": .int(4_200_000_000_000)
                            ])
                        ]),
                    "\(extra): \(d.text)")
            }
            let script =
                "for i = 1, tonumber(ARGV[1]) do redis.call('SADD', KEYS[1], 'member:' .. i) end if ARGV[2] ~= '' then redis.call('SADD', KEYS[1], ARGV[2]) end"
            try TestServers.cli(port: 17733, ["EVAL", script, "1", "big:set", "150000", ""])
            try TestServers.cli(port: 17734, ["EVAL", script, "1", "big:set", "149999", "member:changed"])
            let list = "for i = 1, 105000 do redis.call('RPUSH', KEYS[1], 'e' .. i) end"
            for port in [17733, 17734] { try TestServers.cli(port: port, ["EVAL", list, "1", "big:list"]) }
            try TestServers.cli(port: 17734, ["LSET", "big:list", "104320", "changed"])
            let all = try diffs("redis://127.0.0.1:17733", "redis://127.0.0.1:17734", ["--match", "big:*", "--rounds", "0"], log: "big.jsonl.zst")
            #expect(
                all["0 big:set"]?.detail
                    == .object([
                        "type": .string("set"), "source_count": .int(150_000), "target_count": .int(150_000), "partitioned": .bool(true),
                        "missing": .array([.string("member:150000")]), "missing_total": .int(1),
                        "extra": .array([.string("member:changed")]), "extra_total": .int(1)
                    ]), "\(all["0 big:set"]?.detail?.text ?? "-")")
            let l = try #require(all["0 big:list"]?.detail)
            #expect(l["partitioned"]?.boolValue == true && l["index"]?.intValue == 104_320, "\(l.text)")
            #expect(l["source"] == .array(["e104321", "e104322", "e104323", "e104324", "e104325"].map { .string($0) }), "\(l.text)")
            #expect(l["target"]?[0] == .string("changed") && l["target"]?.arrayValue?.count == 5, "\(l.text)")
        }
    }
}
