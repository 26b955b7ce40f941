import Foundation
import HashSlots
import NIOConcurrencyHelpers
import SlotdiffCore
import Testing

@testable import Keyspace

/// A side held in memory: its records as `records` returns them, and the states `reread`
/// answers in each re-check round (round 1 first), so the engine's rounds can be driven
/// exactly. What the engine asked is recorded.
final class MemorySource: KeyspaceSource {
    typealias Key = String
    let isLive: Bool
    let isCluster: Bool
    let held: [(db: Int, key: Key, state: SideState)]
    /// Per round, the state of a key when read again (missing from the map: as first read).
    let rounds: [[Key: SideState?]]
    let dbs: [Int]?
    private let asked = NIOLockedValueBox<(passes: [SlotRange?], rereads: Int)>(([], 0))

    init(live: Bool = true, cluster: Bool = false, databases: [Int]? = nil, _ held: [(Int, Key, SideState)], rounds: [[Key: SideState?]] = []) {
        isLive = live
        isCluster = cluster
        dbs = databases
        self.held = held.map { (db: $0.0, key: $0.1, state: $0.2) }
        self.rounds = rounds
    }

    var passesRead: [SlotRange?] { asked.withLockedValue { $0.passes } }

    func keyCount() async throws -> Int? { isLive ? held.count : nil }
    func databases() async throws -> [Int]? { dbs }
    func readOnce(passes: [SlotRange], _ read: ReadContext) async throws -> (any KeptPasses)? { nil }

    func records(_ read: ReadContext, kept: (any KeptPasses)?) async throws -> SideRecords {
        asked.withLockedValue { $0.passes.append(read.filter.pass) }
        let table = KeyTable(origin: "memory")
        for h in held {
            let key = Array(h.key.utf8)
            let slot = HashSlot.slot(of: key)
            if let pass = read.filter.pass, !pass.contains(slot) { continue }
            _ = key.withUnsafeBytes { table.insert(db: h.db, key: $0, slot: slot, type: h.state.type, expireMs: h.state.expireMs, digest: h.state.digest) }
        }
        return SideRecords(tables: [table], inputs: [["memory": "\(held.count) keys"]])
    }

    func reread(_ keys: [(db: Int, key: [UInt8])], first: [SideState?]) async throws -> [SideState?] {
        let round = asked.withLockedValue { a -> Int in
            a.rereads += 1
            return a.rereads - 1
        }
        let now = round < rounds.count ? rounds[round] : [:]
        return zip(keys, first).map { k, f in
            let name = String(decoding: k.key, as: UTF8.self)
            if let s = now[name] { return s }
            return f
        }
    }

    func close() async {}
}

/// The engine on sides held in memory: the comparer, the re-check rounds and the checks made
/// before and after, without any server or file.
@Suite struct CheckTests {
    static func value(_ n: UInt64, _ type: ValueType = .string) -> SideState {
        SideState(type: type, expireMs: nil, digest: Hash128(low: n, high: n))
    }

    func options(_ edit: (inout CheckOptions) -> Void = { _ in }) -> CheckOptions {
        var o = CheckOptions()
        o.passes = 1
        o.roundDelayMs = 0
        edit(&o)
        return o
    }

    func run(_ s: MemorySource, _ t: MemorySource, _ o: CheckOptions) async throws -> (CheckResult, [Difference]) {
        let found = NIOLockedValueBox<[Difference]>([])
        let r = try await Check.run(source: s, target: t, options: o) { d in found.withLockedValue { $0.append(d) } }
        return (r, found.withLockedValue { $0 })
    }

    /// A difference gone in the first re-check round is traffic: not reported, counted as cleared.
    @Test func differenceGoneInARoundIsNotReported() async throws {
        let s = MemorySource([(0, "a", Self.value(1)), (0, "b", Self.value(2))])
        let t = MemorySource([(0, "a", Self.value(1)), (0, "b", Self.value(3))], rounds: [["b": Self.value(2)]])
        let (r, diffs) = try await run(s, t, options())
        #expect(diffs.isEmpty)
        #expect(r.resolvedPerRound == [1] && r.firstRoundDifferences == 1)
        #expect(r.counts.compared == 2 && r.counts.matched == 2 && r.counts.totalDifferences == 0)
    }

    /// A difference there in every round is reported once, with the last state read.
    @Test func persistentDifferenceIsReportedWithItsLastState() async throws {
        let s = MemorySource([(0, "a", Self.value(1))])
        let t = MemorySource([(0, "a", Self.value(3))], rounds: [["a": Self.value(4)], ["a": Self.value(5)], ["a": Self.value(6)]])
        let (r, diffs) = try await run(s, t, options())
        #expect(diffs.count == 1 && diffs[0].kind == .value && diffs[0].target == Self.value(6))
        #expect(r.resolvedPerRound == [0, 0, 0] && r.counts.matched == 0 && r.counts.compared == 1)
    }

    /// A key missing in the first round that shows up different later (written meanwhile) is
    /// reported as a value difference, and `matched` cannot go below zero (it once did).
    @Test func matchedNeverGoesNegative() async throws {
        let keys = (0..<7).map { "k\($0)" }
        let s = MemorySource(keys.map { (0, $0, Self.value(1)) })
        let t = MemorySource([], rounds: [Dictionary(uniqueKeysWithValues: keys.map { ($0, Self.value(2)) })])
        let (r, diffs) = try await run(s, t, options())
        #expect(diffs.count == 7 && diffs.allSatisfy { $0.kind == .value })
        #expect(r.counts.matched == 0 && r.counts.compared == 0, "\(r.counts)")
        #expect(r.counts.inconsistency == nil)
    }

    /// A dump side's records stand; a live side that caught up with it clears the difference.
    /// Two dump sides have no rounds at all.
    @Test func roundsOnlyWhereASideIsLive() async throws {
        let s = MemorySource(live: false, [(0, "a", Self.value(1))])
        let t = MemorySource([(0, "a", Self.value(2))], rounds: [["a": Self.value(1)]])
        let (r, diffs) = try await run(s, t, options())
        #expect(diffs.isEmpty && r.resolvedPerRound == [1], "the target caught up with the dump")
        let (both, found) = try await run(
            MemorySource(live: false, [(0, "a", Self.value(1))]),
            MemorySource(live: false, [(0, "a", Self.value(2))]), options())
        #expect(found.count == 1 && both.resolvedPerRound.isEmpty)
    }

    /// Neither side holding a key is not a match; --allow-empty says it is.
    @Test func nothingComparedIsAnError() async throws {
        await #expect(throws: SlotdiffError.self) { _ = try await run(MemorySource([]), MemorySource([]), options()) }
        let (r, _) = try await run(MemorySource([]), MemorySource([]), options { $0.allowEmpty = true })
        #expect(r.counts.sourceKeys == 0)
    }

    /// A cluster has only database 0: --db 3, or a side with keys in database 3, is refused
    /// before anything is read.
    @Test func clusterHasOnlyDatabaseZero() async throws {
        let cluster = MemorySource(cluster: true, databases: [0], [(0, "a", Self.value(1))])
        let standalone = MemorySource(databases: [0, 3], [(0, "a", Self.value(1)), (3, "a", Self.value(1))])
        do {
            _ = try await run(standalone, cluster, options())
            Issue.record("databases 0 and 3 compared with a cluster")
        } catch let e as SlotdiffError {
            #expect(e.code == .usage && e.description.contains("0, 3") && e.description.contains("--db 0"))
        }
        #expect(standalone.passesRead.isEmpty && cluster.passesRead.isEmpty, "read before refusing")
        let (r, _) = try await run(standalone, cluster, options { $0.filter.dbs = [0] })
        #expect(r.counts.sourceKeys == 2)  // the memory side ignores the filter; the check ran
        await #expect(throws: SlotdiffError.self) { _ = try await run(standalone, cluster, options { $0.filter.dbs = [3] }) }
    }

    /// Passes split the slot space: each side is asked once per pass, in order, and every key
    /// is compared in exactly one.
    @Test func passesCoverTheSlotsOnce() async throws {
        let keys = (0..<200).map { "key:\($0)" }
        let s = MemorySource(keys.map { (0, $0, Self.value(1)) })
        let t = MemorySource(keys.dropLast().map { (0, $0, Self.value(1)) })
        let (r, diffs) = try await run(s, t, options { $0.passes = 4 })
        #expect(
            s.passesRead.count == 4
                && s.passesRead.compactMap { $0 } == [
                    SlotRange(0, 4095), SlotRange(4096, 8191),
                    SlotRange(8192, 12287), SlotRange(12288, 16383)
                ])
        #expect(r.counts.sourceKeys == 200 && r.counts.compared == 199 && diffs.map(\.displayKey) == ["key:199"])
    }

    /// A stop asked for before a pass leaves it (and the rest) undone, with their count.
    @Test func stopLeavesPassesUndone() async throws {
        let s = MemorySource([(0, "a", Self.value(1))]), t = MemorySource([(0, "a", Self.value(1))])
        let calls = NIOLockedValueBox(0)
        let r = try await Check.run(
            source: s, target: t, options: options { $0.passes = 3 }, passDone: { _, _ in calls.withLockedValue { $0 += 1 } },
            stop: { calls.withLockedValue { $0 } >= 1 }
        ) { _ in }
        #expect(r.passesLeft == 2 && s.passesRead.count == 1)
    }
}
