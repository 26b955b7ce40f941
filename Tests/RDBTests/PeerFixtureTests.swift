import Foundation
import RDB
import SlotdiffCore
import TestSupport
import Testing

struct ParsedKey {
    var db: Int
    var key: [UInt8]
    var type: ValueType
    var expireMs: Int64?
    var digest: Hash128?
}

func parseAll(_ path: String) throws -> (keys: [ParsedKey], info: RDBFileInfo) {
    let p = try RDBFileParser(path: path)
    var keys: [ParsedKey] = []
    try p.parse(digester: CanonicalDigester()) { ev in
        keys.append(ParsedKey(db: ev.db, key: Array(ev.key), type: ev.type, expireMs: ev.expireMs, digest: ev.digest))
    }
    return (keys, p.info)
}

let peersDir = TestPaths.root.appendingPathComponent("Fixtures/peers")

func peerFiles(_ suffix: String) -> [String] {
    guard let e = FileManager.default.enumerator(atPath: peersDir.path) else { return [] }
    return e.compactMap { $0 as? String }.filter { $0.hasSuffix(suffix) }.sorted()
}

/// Peer dump files that must be refused, with the reason the error must give.
let expectedPeerFailures: [String: String] = [
    "leonchen83__redis-replicator/src__test__resources__module.rdb": "type 6",
    "redis__librdb/test__dumps__future_v19.rdb": "RDB version 99 is not supported",
    "redis__librdb/test__dumps__invalid_chksum_v8.rdb": "checksum mismatch",
    "redis__librdb/test__dumps__redis_ent_opcode_ram_lru.rdb": "Redis Enterprise",
    "redis__redis/tests__assets__corrupt_ziplist.rdb": "ziplist",
    // Captured from a diskless replication stream: the dump (checksum 0) is followed by the
    // 40-byte "$EOF:" mark of that protocol, which is not part of a dump file. Bytes after a
    // dump's end are refused; `dumpBeforeADisklessEOFMark` reads the dump without the mark.
    "sripathikrishnan__redis-rdb-tools/tests__dumps__redis_40_with_module.rdb": "at offset 248: 40 bytes after the end of the dump",
    "valkey-io__valkey/tests__assets__corrupt_ziplist.rdb": "ziplist"
]

@Suite struct PeerFixtureTests {
    @Test func peerFixturesArePresent() {
        #expect(peerFiles(".rdb").count >= 150, "Fixtures/peers should hold the peer dump files")
    }

    /// Every peer dump either decodes to its end (checksum verified where it has one) or is
    /// refused with the error listed above.
    @Test(arguments: peerFiles(".rdb"))
    func decodesOrFailsClearly(_ name: String) throws {
        let path = peersDir.appendingPathComponent(name).path
        if let reason = expectedPeerFailures[name] {
            do {
                _ = try parseAll(path)
                Issue.record("\(name) should be refused (\(reason))")
            } catch let e as RDBError {
                #expect(e.description.contains(reason), "\(e)")
                #expect(e.description.contains(path))
                #expect(e.offset >= 0)
            }
            return
        }
        let (keys, info) = try parseAll(path)
        #expect(info.keys == keys.count)
        if info.version >= 5 { #expect(info.checksum != .absent) }
    }

    /// The one peer dump with bytes after its end (a diskless-replication capture): without
    /// its 40-byte EOF mark it is a dump like any other.
    @Test func dumpBeforeADisklessEOFMark() throws {
        let path = peersDir.appendingPathComponent("sripathikrishnan__redis-rdb-tools/tests__dumps__redis_40_with_module.rdb").path
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let mark = bytes.suffix(40)
        #expect(bytes.count == 288 && mark.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) })
        let input = bytes.dropLast(40).withUnsafeBytes { RDBInput(name: path, bytes: $0) }
        let p = RDBFileParser(input: input)
        var types: [ValueType] = []
        try p.parse(digester: CanonicalDigester()) { types.append($0.type) }
        #expect(types.count == 2 && types.contains(.module) && p.info.checksum == .disabled)
    }

    /// Where a peer ships the expected contents (JSON), the digest of those contents, fed
    /// through the same digester, equals the digest decoded from the dump.
    @Test(arguments: expectedOutputPairs())
    func matchesExpectedOutput(_ pair: ExpectedPair) throws {
        let (keys, _) = try parseAll(peersDir.appendingPathComponent(pair.rdb).path)
        let expected = try ExpectedValues.load(peersDir.appendingPathComponent(pair.json).path)
        let latin1 = pair.json.hasPrefix("badboy__")  // that peer writes each byte as one \u00XX character
        var byName: [[UInt8]: [ParsedKey]] = [:]
        for k in keys { byName[k.key, default: []].append(k) }
        var checked = 0
        var checkable = 0
        var modules = 0
        for (name, value) in expected {
            guard let found = byName[ExpectedValues.bytes(name, latin1: latin1)], let type = found.first?.type else {
                Issue.record("\(pair.rdb): key \(name) of \(pair.json) is not in the dump")
                continue
            }
            if type == .module { modules += 1 }
            guard let d = ExpectedValues.digest(value, as: type, latin1: latin1) else { continue }
            checkable += 1
            // A key may exist in several databases: one of them must hold this value.
            if found.contains(where: { $0.digest == d }) { checked += 1; continue }
            if ExpectedValues.lossy(value) { continue }
            Issue.record("\(pair.rdb): key \(name) (\(type)) does not match \(pair.json)")
        }
        // Every pair checks something: values, or (module values are opaque bytes, an empty
        // database has no key) that the dump holds exactly the keys the peer lists.
        if expected.isEmpty || modules == expected.count {
            #expect(Set(keys.map(\.key)) == Set(expected.map { ExpectedValues.bytes($0.0, latin1: latin1) }), "\(pair.rdb)")
        } else {
            #expect(checked > 0, "\(pair.rdb): no key could be checked against \(pair.json) (\(checkable) comparable)")
        }
    }
}

struct ExpectedPair: Sendable, CustomStringConvertible {
    var rdb: String
    var json: String
    var description: String { rdb }
}

func expectedOutputPairs() -> [ExpectedPair] {
    var out: [ExpectedPair] = []
    let all = Set(peerFiles(""))
    for j in all where j.hasSuffix(".json") {
        var candidates: [String] = []
        if j.contains("__json__") { candidates.append(j.replacingOccurrences(of: "__json__", with: "__").replacingOccurrences(of: ".json", with: ".rdb")) }
        if j.hasSuffix("_data.json") {
            let base = String(j.dropLast("_data.json".count))
            candidates.append(base + ".rdb")
            candidates.append(base + "_v6.rdb")
        }
        if let r = candidates.first(where: { all.contains($0) }), expectedPeerFailures[r] == nil {
            out.append(ExpectedPair(rdb: r, json: j))
        }
    }
    for j in all where j.hasSuffix(".rdb.jsonl") {
        let r = String(j.dropLast(".jsonl".count))
        if all.contains(r) { out.append(ExpectedPair(rdb: r, json: j)) }
    }
    return out.sorted { $0.rdb < $1.rdb }
}

/// Expected contents in the peers' JSON shapes: `{key: value}` objects (optionally in a list
/// per database), librdb's fragments without braces, and redis-rdb-cli's JSON Lines.
enum ExpectedValues {
    static func load(_ path: String) throws -> [(String, Any)] {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        if path.hasSuffix(".jsonl") {
            var seen: [String: Int] = [:]
            var out: [(String, Any)] = []
            for line in text.split(separator: "\n") {
                guard let o = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    let k = o["key"] as? String, let v = o["value"]
                else { continue }
                seen[k, default: 0] += 1
                out.append((k, v))
            }
            return out.filter { seen[$0.0] == 1 }
        }
        let parsed: Any
        if let p = try? JSONSerialization.jsonObject(with: Data(text.utf8)) {
            parsed = p
        } else {
            parsed = try JSONSerialization.jsonObject(with: Data("{\(text)}".utf8))
        }
        var out: [(String, Any)] = []
        func add(_ o: Any) {
            if let d = o as? [String: Any] { for (k, v) in d where !k.hasPrefix("__") { out.append((k, v)) } }
            if let a = o as? [Any] { a.forEach(add) }
        }
        add(parsed)
        return out
    }

    static func lossy(_ v: Any) -> Bool { "\(v)".contains("\u{FFFD}") }

    static func bytes(_ s: String, latin1: Bool) -> [UInt8] {
        if latin1, s.unicodeScalars.allSatisfy({ $0.value < 256 }) { return s.unicodeScalars.map { UInt8($0.value) } }
        return Array(s.utf8)
    }

    static func digest(_ v: Any, as type: ValueType, latin1: Bool) -> Hash128? {
        let d = CanonicalDigester()
        d.begin(type)
        func text(_ x: Any) -> [UInt8]? {
            if let s = x as? String { return bytes(s, latin1: latin1) }
            return (x as? NSNumber).map { Array("\($0)".utf8) }
        }
        switch type {
        case .string:
            guard let s = text(v) else { return nil }
            s.withUnsafeBytes { d.string($0) }
        case .list, .set:
            guard let a = v as? [Any] else { return nil }
            for x in a {
                guard let s = text(x) else { return nil }
                s.withUnsafeBytes { d.element($0) }
            }
        case .hash:
            guard let o = v as? [String: Any] else { return nil }
            for (f, x) in o {
                guard let s = text(x) else { return nil }
                d.beginItem()
                bytes(f, latin1: latin1).withUnsafeBytes { d.component($0) }
                s.withUnsafeBytes { d.component($0) }
                d.endItem()
            }
        case .zset:
            guard let o = v as? [String: Any] else { return nil }
            for (m, x) in o {
                guard let s = text(x), let score = s.withUnsafeBytes({ parseDouble($0) }) else { return nil }
                d.beginItem()
                bytes(m, latin1: latin1).withUnsafeBytes { d.component($0) }
                d.score(score)
                d.endItem()
            }
        default:
            return nil
        }
        return d.finish()
    }
}
