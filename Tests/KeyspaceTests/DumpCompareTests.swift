import Foundation
import HashSlots
import Keyspace
import RDB
import SlotdiffCore
import TestSupport
import Testing

/// Loads a fixture into records keyed by (db, key).
func records(_ name: String, filter: KeyFilter = KeyFilter()) throws -> [String: (ValueType, Int64?, Hash128)] {
    let d = try DumpLoader.load(path: TestPaths.fixture(name), filter: filter)
    var out: [String: (ValueType, Int64?, Hash128)] = [:]
    for i in 0..<d.table.count {
        let e = d.table.entry(i)
        out["\(e.db)/\(d.table.keyArray(i).map { String(format: "%02x", $0) }.joined())"] = (e.type, e.expireMs, e.digest)
    }
    return out
}

func compareFiles(
    _ source: [String], _ target: [String], rule: DifferenceRule = DifferenceRule(),
    filter: KeyFilter = KeyFilter()
) throws -> (CompareCounts, [Difference]) {
    let src = try source.map { try DumpLoader.load(path: TestPaths.fixture($0), filter: filter) }
    let dst = try target.map { try DumpLoader.load(path: TestPaths.fixture($0), filter: filter) }
    var diffs: [Difference] = []
    let c = try Comparer(rule: rule, sourceSnapshotMs: 0, targetSnapshotMs: 0)
        .compare(source: src.map(\.table), target: dst.map(\.table)) { diffs.append($0) }
    return (c, diffs)
}

struct ExpectedDifference: Decodable, Hashable {
    var kind: String
    var db: Int
    var key: String?
    var keyBase64: String?

    enum CodingKeys: String, CodingKey {
        case kind, db, key
        case keyBase64 = "key_base64"
    }

    var keyBytes: [UInt8] { key.map { Array($0.utf8) } ?? Array(Data(base64Encoded: keyBase64 ?? "") ?? Data()) }
}

@Suite struct DumpCompareTests {
    static let datasets = ["dataset-redis7.rdb", "dataset-valkey8.rdb", "dataset-redis8.rdb"]

    /// The core property: one logical dataset written by three servers (different RDB
    /// versions, encodings, insertion orders) gives every key the same digest.
    @Test func sameDatasetSameDigestsOnEveryServer() async throws {
        try await offPool {
            let base = try records(Self.datasets[0])
            #expect(base.count > 300)
            for other in Self.datasets.dropFirst() {
                let r = try records(other)
                #expect(r.count == base.count, "\(other) holds \(r.count) keys, \(Self.datasets[0]) \(base.count)")
                for (k, v) in base {
                    guard let o = r[k] else { Issue.record("\(other) lacks \(k)"); continue }
                    #expect(o.0 == v.0 && o.2 == v.2 && o.1 == v.1, "\(other): key \(k) differs")
                }
            }
        }
    }

    @Test(arguments: [(0, 1), (0, 2), (1, 2), (1, 0)])
    func datasetPairsMatch(_ pair: (Int, Int)) throws {
        let (c, diffs) = try compareFiles([Self.datasets[pair.0]], [Self.datasets[pair.1]])
        #expect(diffs.isEmpty, "\(diffs.prefix(5).map(\.displayKey))")
        #expect(c.compared == c.sourceKeys && c.matched == c.compared)
    }

    /// A pair with known differences of every kind is reported exactly: nothing missed, nothing extra.
    @Test func driftIsReportedExactly() async throws {
        try await offPool {
            let expected = try JSONDecoder().decode(
                [ExpectedDifference].self,
                from: Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("drift-expected.json"))))
            let (c, diffs) = try compareFiles(["drift-source.rdb"], ["drift-target.rdb"])
            let got = Set(diffs.map { "\($0.kind.rawValue) \($0.db) \($0.key)" })
            let want = Set(expected.map { "\($0.kind) \($0.db) \($0.keyBytes)" })
            #expect(got == want, "unexpected: \(got.subtracting(want)) missed: \(want.subtracting(got))")
            #expect(diffs.count == expected.count)
            #expect(c.totalDifferences == expected.count)
            for k in ["missing", "extra", "type", "value", "ttl"] {
                #expect(expected.contains { $0.kind == k }, "the fixture should hold a \(k) difference")
            }
            // The must-not-report cases are in the files and compared equal.
            let same = try JSONDecoder().decode(
                [ExpectedDifference].self,
                from: Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("drift-same.json"))))
            let reported = Set(diffs.map { $0.key })
            for s in same { #expect(!reported.contains(s.keyBytes), "\(s.key ?? "?") must not be reported") }
            #expect(c.matched >= same.count)
        }
    }

    @Test func toleranceDecidesTTLDifferences() async throws {
        try await offPool {
            let (_, strict) = try compareFiles(["drift-source.rdb"], ["drift-target.rdb"], rule: DifferenceRule(ttlToleranceMs: 0))
            let (_, loose) = try compareFiles(["drift-source.rdb"], ["drift-target.rdb"], rule: DifferenceRule(ttlToleranceMs: 120_000))
            let strictTTL = Set(strict.filter { $0.kind == .ttl }.map(\.key))
            let looseTTL = Set(loose.filter { $0.kind == .ttl }.map(\.key))
            #expect(strictTTL.contains(Array("same:ttl:300ms".utf8)))
            #expect(!looseTTL.contains(Array("ttl:60s".utf8)))
            #expect(looseTTL.contains(Array("ttl:source-only".utf8)))
        }
    }

    @Test func hashFieldTTLsAreRead() async throws {
        try await offPool {
            let r = try records("hfe-redis8.rdb")
            #expect(r.values.contains { $0.0 == .hash })
            // The same file on both sides matches; field TTLs are part of the digest.
            let (c, diffs) = try compareFiles(["hfe-redis8.rdb"], ["hfe-redis8.rdb"])
            #expect(diffs.isEmpty && c.compared == r.count)
        }
    }

    @Test func filtersSelectKeys() async throws {
        try await offPool {
            let all = try records("drift-source.rdb")
            let db2 = try records("drift-source.rdb", filter: KeyFilter(dbs: [2]))
            #expect(!db2.isEmpty && db2.count < all.count && db2.keys.allSatisfy { $0.hasPrefix("2/") })
            let hashes = try records("drift-source.rdb", filter: KeyFilter(types: [.hash]))
            #expect(!hashes.isEmpty && hashes.values.allSatisfy { $0.0 == .hash })
            let vals = try records("drift-source.rdb", filter: KeyFilter(match: GlobPattern("val:*")))
            #expect(!vals.isEmpty && vals.count < all.count)
            let half = try records("drift-source.rdb", filter: KeyFilter(slots: SlotRange(0, 8191)))
            let otherHalf = try records("drift-source.rdb", filter: KeyFilter(slots: SlotRange(8192, 16383)))
            #expect(half.count + otherHalf.count == all.count && !half.isEmpty && !otherHalf.isEmpty)
        }
    }

    /// One side given as several files: a key held by two of them is reported as a duplicate.
    @Test func keysInTwoFilesOfOneSideAreDuplicates() async throws {
        try await offPool {
            let (c, diffs) = try compareFiles(["drift-source.rdb", "drift-source.rdb"], ["drift-source.rdb"])
            let n = try records("drift-source.rdb").count
            #expect(c.differences[.duplicate] == n)
            #expect(diffs.allSatisfy { $0.kind == .duplicate && $0.side == .source && $0.origins?.count == 2 })
            #expect(c.matched == n)
        }
    }
}

@Suite struct ProgressTests {
    /// The time left comes from the keys still to read when their number is known (a side
    /// read once makes the first pass the long one), else from the passes done.
    @Test func timeLeft() {
        var s = CheckProgress.Snapshot(keys: 100, differences: 0, passesDone: 1, passes: 4, expectedKeys: 300, seconds: 10)
        #expect(s.eta == 20)
        s.expectedKeys = 0
        #expect(s.eta == 30)
        s.passesDone = 4
        #expect(s.eta == nil)
        #expect(s.line.contains("100 keys read") && s.line.contains("4/4 slot-range passes"))
    }
}
