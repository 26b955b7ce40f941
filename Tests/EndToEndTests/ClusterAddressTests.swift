import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// A cluster whose nodes announce names this machine cannot resolve (`cluster-announce-hostname`
/// inside a VPC or Kubernetes), checked through a cluster address map: given in a file, by the
/// names in any case, or by a node's hostname while the cluster prefers its IP.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct ClusterAddressTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }

    func check(_ a: String, _ b: String, _ extra: [String]) throws -> (RunResult, [String]) {
        let out = path("ca-\(UUID().uuidString).jsonl.zst")
        let r = try run(
            TestPaths.slotdiffBinary, ["compare", a, b, "--out", out, "--round-delay", "50ms", "--quiet"] + extra, timeout: 120)
        var diffs: [String] = []
        if r.status == 0 || r.status == 1 { try DiffLogReader(path: out).forEach { diffs.append("\($0.kind.rawValue) \($0.displayKey)") } }
        return (r, diffs)
    }

    @Test func announcedHostnamesAreMappedFromAFile() async throws {
        try await offPool { [self] in
            try TestServers.cluster("ca-cl", .valkey8, base: 17910, n: 3)
            try TestServers.start("ca-plain", .valkey8, port: 17914)
            defer { TestServers.stop("ca-cl"); TestServers.stop("ca-plain") }
            for i in 1...200 {
                try TestServers.cli(port: 17910, ["SET", "k:\(i)", "\(i)"], cluster: true)
                try TestServers.cli(port: 17914, ["SET", "k:\(i)", "\(i)"])
            }
            try TestServers.cli(port: 17914, ["SET", "k:7", "other"])
            for i in 0..<3 {
                try TestServers.cli(port: 17910 + i, ["CONFIG", "SET", "cluster-announce-hostname", "node-\(i).invalid"])
            }
            func announced(_ type: String) throws {
                for i in 0..<3 { try TestServers.cli(port: 17910 + i, ["CONFIG", "SET", "cluster-preferred-endpoint-type", type]) }
                // Until every node's hostname has reached the seed by gossip.
                for _ in 0..<100 {
                    let shards = try TestServers.cli(port: 17910, ["CLUSTER", "SHARDS"])
                    if (0..<3).allSatisfy({ shards.contains("node-\($0).invalid") }) { break }
                    Thread.sleep(forTimeInterval: 0.1)
                }
            }
            try announced("hostname")
            let seed = "redis://127.0.0.1:17910", plain = "redis://127.0.0.1:17914"

            // No map: at once, naming the node as announced and the way to map it.
            let start = Date()
            let (bare, _) = try check(plain, seed, [])
            #expect(bare.status == 2, "\(bare.status) \(bare.stderr)")
            #expect(Date().timeIntervalSince(start) < 15, "took \(Date().timeIntervalSince(start)) s")
            #expect(bare.stderr.contains("node-") && bare.stderr.contains("--cluster-address node-"), "\(bare.stderr)")

            // A file: comments, blank lines, a name in capitals.
            let file = path("nodes.map")
            try """
            # announced = reachable
            NODE-0.INVALID:17910=127.0.0.1:17910

            node-1.invalid:17911=127.0.0.1:17911   # the second shard
            node-2.invalid:17912=127.0.0.1:17912
            """.write(toFile: file, atomically: true, encoding: .utf8)
            let (mapped, diffs) = try check(plain, seed, ["--cluster-address-map", file])
            #expect(mapped.status == 1 && diffs == ["value k:7"], "\(mapped.status) \(diffs) \(mapped.stderr)")

            // The same map split between the option and a file.
            let part = path("part.map")
            try "node-2.invalid:17912=127.0.0.1:17912\n".write(toFile: part, atomically: true, encoding: .utf8)
            let (split, splitDiffs) = try check(
                plain, seed,
                [
                    "--cluster-address", "node-0.invalid:17910=127.0.0.1:17910", "--cluster-address", "node-1.invalid:17911=127.0.0.1:17911",
                    "--cluster-address-map", part
                ])
            #expect(split.status == 1 && splitDiffs == ["value k:7"], "\(split.status) \(splitDiffs) \(split.stderr)")

            // A bad line: exit 2 naming the file and the line.
            let bad = path("bad.map")
            try "# nodes\nnode-0.invalid:17910=127.0.0.1:17910\nnode-1.invalid 127.0.0.1:17911\n".write(toFile: bad, atomically: true, encoding: .utf8)
            let (refused, _) = try check(plain, seed, ["--cluster-address-map", bad])
            #expect(refused.status == 2 && refused.stderr.contains("\(bad):3"), "\(refused.stderr)")

            // The cluster prefers IPs, and the map names a node by its hostname: the map holds
            // for it (sent to a port where nothing listens, the check fails there, named).
            try announced("ip")
            let (byName, _) = try check(plain, seed, ["--cluster-address", "node-1.invalid:17911=127.0.0.1:17949"])
            #expect(byName.status == 2 && byName.stderr.contains("127.0.0.1:17949") && byName.stderr.contains("cluster address map"), "\(byName.stderr)")
            let (byIP, ipDiffs) = try check(plain, seed, [])
            #expect(byIP.status == 1 && ipDiffs == ["value k:7"], "\(byIP.status) \(ipDiffs) \(byIP.stderr)")
        }
    }
}
