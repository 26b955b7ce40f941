import Foundation
import HashSlots
import RESP
import SlotdiffCore
import TestSupport
import Testing

/// Copies database 0 of a standalone server into a cluster with DUMP/RESTORE (test set-up
/// only: the product itself never writes).
func copyToCluster(from port: Int, clusterSeed: Int) async throws -> Int {
    let src = try await RedisConnection.connect(to: RedisEndpoint(host: "127.0.0.1", port: port))
    let seed = try await RedisConnection.connect(to: RedisEndpoint(host: "127.0.0.1", port: clusterSeed))
    let topology = try await ClusterTopology.discover(using: seed)
    var nodes: [Int: RedisConnection] = [:]
    for s in topology.shards {
        let p = s.primary.port!
        nodes[p] = try await RedisConnection.connect(to: RedisEndpoint(host: "127.0.0.1", port: p))
    }
    var cursor = "0"
    var copied = 0
    repeat {
        let r = try await src.send("SCAN", RESPArg(cursor), "COUNT", "500").throwIfError()
        cursor = r.array![0].string!
        for k in r.array![1].array! {
            let key = k.bytes!
            let got = try await src.pipeline([["DUMP", RESPArg(key)], ["PTTL", RESPArg(key)]])
            guard let payload = got[0].buffer else { continue }
            let ttl = max(0, got[1].int ?? 0)
            let node = nodes[topology.shard(forKey: key)!.primary.port!]!
            _ = try await node.send("RESTORE", RESPArg(key), RESPArg(ttl), RESPArg(payload), "REPLACE").throwIfError()
            copied += 1
        }
    } while cursor != "0"
    for c in [src, seed] + Array(nodes.values) { await c.close() }
    return copied
}

@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct ClusterCompareTests {
    let dir = TestPaths.temporaryDirectory()

    func compare(_ a: String, _ b: String, _ extra: [String] = []) throws -> (RunResult, [Difference]) {
        let log = dir.appendingPathComponent("\(UUID().uuidString).jsonl.zst").path
        let r = try slotdiff(["compare", a, b, "--out", log, "--round-delay", "50ms"] + extra, timeout: 300)
        var diffs: [Difference] = []
        if r.status == 0 || r.status == 1 { try DiffLogReader(path: log).forEach { diffs.append($0) } }
        return (r, diffs)
    }

    /// 3 primaries (Redis 7.0) against 2 (Valkey 8.1), cluster against standalone and against a
    /// dump file; one changed key is found; a slot half-migrated between two nodes (keys on
    /// both, ASK redirections) produces no false difference.
    @Test func clustersOfDifferentLayouts() async throws {
        try TestServers.start("ct-std", .redis7, port: 17401, load: TestPaths.fixture("dataset-redis7.rdb"))
        try TestServers.cluster("ct-a", .redis7, base: 17410, n: 3)
        try TestServers.cluster("ct-b", .valkey8, base: 17420, n: 2)
        defer { TestServers.stop("ct-std"); TestServers.stop("ct-a"); TestServers.stop("ct-b") }
        let n = try await copyToCluster(from: 17401, clusterSeed: 17410)
        #expect(try await copyToCluster(from: 17401, clusterSeed: 17420) == n)
        #expect(n > 200)
        let a = "redis://127.0.0.1:17410", b = "redis://127.0.0.1:17421"
        let (ab, d1) = try compare(a, b)
        #expect(ab.status == 0, "\(ab.stdout) \(ab.stderr) \(d1.prefix(3).map(\.displayKey))")
        #expect(ab.stdout.contains("\(n) keys"))
        let (std, _) = try compare("redis://127.0.0.1:17401", b, ["--db", "0", "--big-key-threshold", "1"])
        #expect(std.status == 0, "\(std.stdout) \(std.stderr)")
        let (file, _) = try compare(TestPaths.fixture("dataset-redis7.rdb"), a, ["--db", "0"])
        #expect(file.status == 0, "\(file.stdout) \(file.stderr)")
        // Two shards of the check (Valkey 8 nodes walk only their slots with slot-ordered
        // SCAN cursors) cover every key once.
        var sharded = 0
        for i in 0..<2 {
            let (r, _) = try compare(b, a, ["--shard", "\(i)/2", "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            sharded += (summary["source"] as! [String: Any])["keys"] as! Int
        }
        #expect(sharded == n)
        let (replica, _) = try compare(a, b, ["--read-from", "replica", "--mode", "keys"])
        #expect(replica.status == 0, "no replicas: primaries are read \(replica.stderr)")

        // Read-only users on cluster A: without the cluster map the check stops (it is not
        // taken for a standalone server); with the map but not COUNTKEYSINSLOT/GETKEYSINSLOT,
        // the nodes are listed with SCAN.
        for port in 17410...17412 {
            try TestServers.cli(port: port, ["ACL", "SETUSER", "blind", "on", ">pw", "~*", "&*", "-@all", "+@read", "+@connection", "+info"])
            try TestServers.cli(
                port: port,
                [
                    "ACL", "SETUSER", "mapper", "on", ">pw", "~*", "&*", "-@all", "+@read", "+@connection", "+info",
                    "+cluster|shards", "+cluster|slots", "+cluster|nodes"
                ])
        }
        let (blind, _) = try compare("redis://blind:pw@127.0.0.1:17410", b)
        #expect(blind.status == 2 && blind.stderr.contains("CLUSTER SHARDS") && !blind.stderr.contains("pw@"), "\(blind.stderr)")
        // In 6 passes (two per node's slots) such a cluster is read once, like a standalone server:
        // one SCAN per node.
        for port in 17410...17412 { try TestServers.cli(port: port, ["CONFIG", "RESETSTAT"]) }
        let (mapper, _) = try compare("redis://mapper:pw@127.0.0.1:17410", b, ["--json", "--passes", "6"])
        #expect(mapper.status == 0, "\(mapper.stderr)")
        let mapperSummary = try JSONSerialization.jsonObject(with: Data(mapper.stdout.utf8)) as? [String: Any]
        #expect((mapperSummary?["source"] as? [String: Any])?["keys"] as? Int == n, "\(mapper.stdout)")
        let scans = try (17410...17412).map { try TestServers.calls(port: $0, "scan") }
        #expect(scans == [1, 1, 1], "SCAN calls per node: \(scans)")

        // A slot in the middle of a migration on cluster A: half its keys moved to the importing node.
        let key = "{mig}:0"
        let slot = HashSlot.slot(of: Array(key.utf8))
        for i in 0..<40 {
            try TestServers.cli(port: 17410, ["SET", "{mig}:\(i)", "v\(i)"], cluster: true)
            try TestServers.cli(port: 17420, ["SET", "{mig}:\(i)", "v\(i)"], cluster: true)
        }
        let owner = try clusterNodeOwning(slot: Int(slot), ports: [17410, 17411, 17412])
        let other = [17410, 17411, 17412].first { $0 != owner }!
        let ownerID = try TestServers.cli(port: owner, ["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
        let otherID = try TestServers.cli(port: other, ["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
        try TestServers.cli(port: other, ["CLUSTER", "SETSLOT", "\(slot)", "IMPORTING", ownerID])
        try TestServers.cli(port: owner, ["CLUSTER", "SETSLOT", "\(slot)", "MIGRATING", otherID])
        try TestServers.cli(port: owner, ["MIGRATE", "127.0.0.1", "\(other)", "", "0", "5000", "KEYS"] + (0..<20).map { "{mig}:\($0)" })
        let (mid, d2) = try compare(a, b, ["--json"])
        #expect(mid.status == 0, "\(mid.stdout) \(mid.stderr) \(d2.map(\.displayKey))")
        // Every key listed in the first pass, the moved ones by the importing node (not only
        // found again by the re-check rounds).
        let midSummary = try JSONSerialization.jsonObject(with: Data(mid.stdout.utf8)) as! [String: Any]
        #expect((midSummary["source"] as! [String: Any])["keys"] as? Int == n + 40, "\(mid.stdout)")
        // The slot's 20 keys on each node are more than one GETKEYSINSLOT reply may carry
        // here: that slot is listed with SCAN instead.
        let (midLimited, d2l) = try compare(a, b, ["--slot-keys-limit", "5", "--json"])
        #expect(midLimited.status == 0, "\(midLimited.stderr) \(d2l.map(\.displayKey))")
        let limitedSummary = try JSONSerialization.jsonObject(with: Data(midLimited.stdout.utf8)) as! [String: Any]
        #expect((limitedSummary["source"] as! [String: Any])["keys"] as? Int == n + 40, "\(midLimited.stdout)")
        let (midChunked, d2c) = try compare(a, b, ["--big-key-threshold", "1"])
        #expect(midChunked.status == 0, "\(midChunked.stdout) \(midChunked.stderr) \(d2c.map(\.displayKey))")

        // One real change is found.
        try TestServers.cli(port: 17420, ["SET", "{mig}:39", "changed"], cluster: true)
        let (changed, d3) = try compare(a, b)
        #expect(changed.status == 1)
        #expect(d3.map(\.displayKey) == ["{mig}:39"] && d3.first?.kind == .value)
    }

    /// Slots are resharded on both clusters while the check runs (`redis-cli --cluster
    /// reshard`: MIGRATING/IMPORTING, keys moved with MIGRATE, ownership handed over): 2000
    /// slots between Redis 7.0 nodes (listed with COUNTKEYSINSLOT/GETKEYSINSLOT) and 2000 other
    /// slots between Valkey 8.1 nodes (slot-ordered SCAN). Only the two planted differences,
    /// one in a moving slot of each cluster, are reported.
    @Test func slotMigrationDuringTheCheck() async throws {
        try TestServers.cluster("mv-a", .redis7, base: 17430, n: 3)
        try TestServers.cluster("mv-b", .valkey8, base: 17440, n: 2)
        defer { TestServers.stop("mv-a"); TestServers.stop("mv-b") }
        let value = String(repeating: "v", count: 300)
        var pairs = (0..<6000).map { ("k:\($0)", "\($0):\(value)") }
        // Node 2 of A serves 10922-16383 and gives away its first 2000 slots; node 0 of B
        // serves 0-8191 and gives away 0-1999. A planted key in each moving range.
        func key(inSlots r: ClosedRange<Int>, _ prefix: String) -> String {
            (0...).lazy.map { "\(prefix):\($0)" }.first { r.contains(Int(HashSlot.slot(of: Array($0.utf8)))) }!
        }
        let plantedA = key(inSlots: 10922...12921, "planted-a"), plantedB = key(inSlots: 0...1999, "planted-b")
        pairs += [(plantedA, "same"), (plantedB, "same")]
        try await fillCluster(seed: 17430, pairs)
        try await fillCluster(seed: 17440, pairs)
        try TestServers.cli(port: 17430, ["SET", plantedA, "source"], cluster: true)
        try TestServers.cli(port: 17441, ["SET", plantedB, "target"], cluster: true)
        func id(_ port: Int) throws -> String {
            try TestServers.cli(port: port, ["CLUSTER", "MYID"]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let log = dir.appendingPathComponent("migrating.jsonl.zst").path
        let started = Date()
        // --qps keeps the check slow enough for the migrations to happen while keys are listed.
        let check = try Background(
            TestPaths.slotdiffBinary,
            [
                "compare", "redis://127.0.0.1:17430", "redis://127.0.0.1:17441",
                "--out", log, "--round-delay", "500ms", "--qps", "2500", "--batch", "64", "--json"
            ])
        try await Task.sleep(nanoseconds: 500_000_000)
        let reshards = try [(17432, 17430), (17440, 17441)].map { from, to in
            try Background(
                "/usr/bin/redis-cli",
                [
                    "--cluster", "reshard", "127.0.0.1:\(from)", "--cluster-from", id(from),
                    "--cluster-to", id(to), "--cluster-slots", "2000", "--cluster-yes"
                ])
        }
        var reshardDone: [TimeInterval] = []
        for r in reshards {
            let out = r.wait(timeout: 300)
            #expect(out.status == 0, "\(out.stderr) \(out.stdout.suffix(500))")
            reshardDone.append(Date().timeIntervalSince(started))
        }
        let result = check.wait(timeout: 300)
        let checkDone = Date().timeIntervalSince(started)
        // The migrations ended while the check was still going.
        #expect(reshardDone.allSatisfy { $0 < checkDone }, "reshards ended at \(reshardDone) s, the check at \(checkDone) s")
        #expect(try TestServers.cli(port: 17430, ["CLUSTER", "COUNTKEYSINSLOT", "\(HashSlot.slot(of: Array(plantedA.utf8)))"]).hasPrefix("1"))
        #expect(try TestServers.cli(port: 17441, ["CLUSTER", "COUNTKEYSINSLOT", "\(HashSlot.slot(of: Array(plantedB.utf8)))"]).hasPrefix("1"))
        #expect(result.status == 1, "\(result.stdout) \(result.stderr)")
        var diffs: [Difference] = []
        try DiffLogReader(path: log).forEach { diffs.append($0) }
        #expect(
            diffs.map(\.displayKey).sorted() == [plantedA, plantedB].sorted() && diffs.allSatisfy { $0.kind == .value },
            "\(diffs.map { "\($0.kind) \($0.displayKey)" })")
        // Explained on clusters too, the keys read again where their slots went: both values.
        let detail = Dictionary(diffs.map { ($0.displayKey, $0.detail) }, uniquingKeysWith: { a, _ in a })
        #expect(detail[plantedA]??["source"] == .string("source") && detail[plantedA]??["target"] == .string("same"), "\(detail)")
        #expect(detail[plantedB]??["source"] == .string("same") && detail[plantedB]??["target"] == .string("target"), "\(detail)")
    }

    /// Writes string keys to a cluster, each to the primary owning its slot (test set-up only).
    func fillCluster(seed: Int, _ pairs: [(String, String)]) async throws {
        let conn = try await RedisConnection.connect(to: RedisEndpoint(host: "127.0.0.1", port: seed))
        let topology = try await ClusterTopology.discover(using: conn)
        await conn.close()
        var byPort: [Int: [[RESPArg]]] = [:]
        for (k, v) in pairs {
            byPort[topology.shard(forKey: Array(k.utf8))!.primary.port!, default: []].append(["SET", RESPArg(k), RESPArg(v)])
        }
        for (port, cmds) in byPort {
            let c = try await RedisConnection.connect(to: RedisEndpoint(host: "127.0.0.1", port: port))
            for chunk in stride(from: 0, to: cmds.count, by: 500) {
                for r in try await c.pipeline(Array(cmds[chunk..<min(cmds.count, chunk + 500)])) { _ = try r.throwIfError() }
            }
            await c.close()
        }
    }

    func clusterNodeOwning(slot: Int, ports: [Int]) throws -> Int {
        for p in ports {
            let out = try TestServers.cli(port: p, ["CLUSTER", "COUNTKEYSINSLOT", "\(slot)"])
            if (Int(out.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 0 { return p }
        }
        throw TestServers.Failure(description: "no node holds slot \(slot)")
    }
}
