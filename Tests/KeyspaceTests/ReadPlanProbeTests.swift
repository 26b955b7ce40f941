import Foundation
import HashSlots
import RESP
import SlotdiffCore
import Testing

@testable import Keyspace

/// The read plan is known when a side is opened: one probe per node, on a key of its own
/// slots, tells a refused command from a refused key.
@Suite struct ReadPlanProbeTests {
    func side(_ server: FakeServer) async throws -> LiveSide {
        var o = LiveOptions()
        o.workers = 1
        o.reconnectAttempts = 2
        return try await LiveSide.open(endpoint: RedisEndpoint(host: "127.0.0.1", port: server.port), options: o)
    }

    /// DUMP refused to the user, PEXPIRETIME allowed: the plan says so at once, and DUMP is
    /// never asked for a key.
    @Test func aRefusedCommandSetsThePlanAtOnce() async throws {
        let server = try FakeServer(
            script: LiveReadTests.strings { c in
                switch c[0] {
                case "DUMP": return .error("NOPERM User checker has no permissions to run the 'dump' command")
                case "MEMORY": return .null
                case "PEXPIRETIME" where c[1].hasPrefix("slotdiff-probe-"): return .int(-2)
                default: return nil
                }
            })
        defer { server.stop() }
        let s = try await side(server)
        defer { Task { await s.close() } }
        #expect(s.readPlan == "values by type reads: DUMP refused (NOPERM)")
        #expect(server.probes.prefix(3).map(\.first) == ["MEMORY", "DUMP", "PEXPIRETIME"])
        // Then each type's size and chunked read.
        #expect(server.probes.count == 15)
        _ = try await s.collect(filter: KeyFilter())
        #expect(server.received("DUMP").isEmpty)
    }

    /// The user may run every command, but not on the probe's key (an ACL key pattern): that
    /// says nothing of the commands, and the plan stays the default.
    @Test func aRefusedKeyLeavesThePlanAlone() async throws {
        let server = try FakeServer(
            script: LiveReadTests.strings { c in
                c.count > 1 && c[1].hasPrefix("slotdiff-probe-") ? .error("NOPERM No permissions to access a key") : nil
            })
        defer { server.stop() }
        let s = try await side(server)
        defer { Task { await s.close() } }
        #expect(server.probes.count == 15)
        #expect(s.readPlan == nil)
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 2 && s.readPlan == nil)
    }

    /// A user without HSCAN (DUMP allowed): hashes too big for one DUMP cannot be read. Said at
    /// once in the plan; the small keys are still read (by DUMP).
    @Test func aRefusedTypeReadIsInThePlan() async throws {
        let server = try FakeServer(
            script: LiveReadTests.strings { c in
                c[0] == "HSCAN" ? .error("NOPERM User checker has no permissions to run the 'hscan' command") : nil
            })
        defer { server.stop() }
        let s = try await side(server)
        defer { Task { await s.close() } }
        #expect(s.readPlan == "big hash values unreadable: HSCAN refused (NOPERM)")
        let (tables, _) = try await s.collect(filter: KeyFilter())
        #expect(tables.map(\.count).reduce(0, +) == 2)
    }

    /// The probe's key of a cluster node is in the node's own slots: no redirection answers it.
    @Test func aClusterNodesProbeKeyIsItsOwn() {
        for range: ClosedRange<UInt16> in [0...0, 5000...5001, 16383...16383] {
            let key = LiveNode.probeKey(in: [range])
            #expect(range.contains(HashSlot.slot(of: key)), "\(range): \(String(decoding: key, as: UTF8.self))")
        }
    }
}
