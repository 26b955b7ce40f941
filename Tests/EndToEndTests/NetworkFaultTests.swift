import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// Faults on a real link: a source server in a network namespace of its own (`Scripts/test-host`),
/// its link cut (a partition) or slowed down while a check reads it. Skipped, with the reason
/// printed, where the machine cannot make such hosts (not root, no veth or tc).
@Suite(
    .serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"),
    .enabled(if: TestHosts.unavailable == nil, Comment(rawValue: TestHosts.unavailable ?? "")))
struct NetworkFaultTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }

    static let fill = "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'k:' .. i, i) redis.call('HSET', 'h:' .. i, 'f', i) end return 1"

    static func cli(_ address: String, _ args: [String]) throws {
        let parts = address.split(separator: ":")
        let r = try run("/usr/bin/redis-cli", ["-h", String(parts[0]), "-p", String(parts[1])] + args)
        if r.status != 0 || r.stdout.hasPrefix("ERR") { throw TestServers.Failure(description: "redis-cli \(args) failed: \(r.stderr)\(r.stdout)") }
    }

    /// The link cut for 6 s while the source is read: requests go unanswered, are sent again on
    /// new connections that cannot connect, and once the link is back the listing starts over
    /// and the result is exact. Cut for good: exit 2 once the node was silent --node-timeout.
    @Test func partitionedSource() async throws {
        try await offPool { [self] in
            let source = try TestHosts.up("sdpart", net: 1, .valkey8, port: 6379)
            defer { TestHosts.down("sdpart") }
            try TestServers.start("nf-part-dst", .valkey8, port: 17643)
            defer { TestServers.stop("nf-part-dst") }
            try Self.cli(source, ["EVAL", Self.fill, "0", "3000"])
            try TestServers.cli(port: 17643, ["EVAL", Self.fill, "0", "3000"])
            try Self.cli(source, ["EVAL", Planted.onSource, "0"])

            let log = path("part.jsonl.zst")
            let check = try Background(
                TestPaths.slotdiffBinary,
                [
                    "compare", "redis://\(source)", "redis://127.0.0.1:17643", "--out", log, "--round-delay", "50ms", "--json",
                    "--qps", "1500", "--batch", "20"
                ])
            Thread.sleep(forTimeInterval: 1.5)
            try TestHosts.host(["cut", "sdpart"])
            Thread.sleep(forTimeInterval: 6)
            try TestHosts.host(["mend", "sdpart"])
            let r = try CheckRun.read(check.wait(timeout: 180), log: log)
            #expect(r.foundThePlantedKeys, "\(r.run.status) \(r.kinds) \(r.run.stderr)")
            #expect(r.run.stderr.contains("warning: no reply for 2 s"), "\(r.run.stderr)")

            let cutFor = try Background(
                TestPaths.slotdiffBinary,
                [
                    "compare", "redis://\(source)", "redis://127.0.0.1:17643", "--out", path("cut.jsonl.zst"), "--round-delay", "50ms",
                    "--qps", "1500", "--batch", "20", "--node-timeout", "5s"
                ])
            Thread.sleep(forTimeInterval: 1.5)
            try TestHosts.host(["cut", "sdpart"])
            let cutAt = Date()
            let gone = cutFor.wait(timeout: 120)
            let took = Date().timeIntervalSince(cutAt)
            try TestHosts.host(["mend", "sdpart"])
            #expect(gone.status == 2, "\(gone.status) \(gone.stderr)")
            #expect(took >= 4.5 && took < 20, "took \(took) s after the cut")
            #expect(gone.stderr.contains(source) && gone.stderr.contains("giving up (--node-timeout 5 s)"), "\(gone.stderr)")
        }
    }

    /// Replies of megabytes over a link of 8 Mbit/s (a DUMP of 3 MB takes 3 s to arrive, more
    /// than a request's first time limit): a reply still arriving is waited for, never sent
    /// again, and the one field that differs is found.
    @Test func slowLinkBigValues() async throws {
        try await offPool { [self] in
            let source = try TestHosts.up("sdslow", net: 2, .valkey8, port: 6379)
            defer { TestHosts.down("sdslow") }
            try TestServers.start("nf-slow-dst", .valkey8, port: 17644)
            defer { TestServers.stop("nf-slow-dst") }
            let python = TestPaths.root.appendingPathComponent(".venv/bin/python").path
            let host = String(source.split(separator: ":")[0])
            let fill = """
                import os, random, redis
                random.seed(7)
                sides = [redis.Redis(host="\(host)", port=6379), redis.Redis(host="127.0.0.1", port=17644)]
                values = [os.urandom(3_000_000) for _ in range(2)]
                fields = {f"field:{i}": os.urandom(100) for i in range(20000)}
                for s in sides:
                    for i, v in enumerate(values): s.set(f"big:{i}", v)
                    for start in range(0, 20000, 2000):
                        s.hset("wide", mapping=dict(list(fields.items())[start:start + 2000]))
                    s.mset({f"small:{i}": i for i in range(3000)})
                sides[1].hset("wide", "field:12345", b"changed")
                """
            let f = try run(python, ["-c", fill], timeout: 120)
            try #require(f.status == 0, "\(f.stderr)")
            try TestHosts.host(["slow", "sdslow", "8mbit"])

            let log = path("slow.jsonl.zst")
            let r = try run(
                TestPaths.slotdiffBinary,
                ["compare", "redis://\(source)", "redis://127.0.0.1:17644", "--out", log, "--round-delay", "50ms", "--json", "--node-timeout", "10s"],
                timeout: 300)
            #expect(r.status == 1, "\(r.status) \(r.stderr)")
            var diffs: [Difference] = []
            try DiffLogReader(path: log).forEach { diffs.append($0) }
            #expect(diffs.count == 1 && diffs.first?.kind == .value && diffs.first.map { Difference.display($0.key) } == "wide", "\(diffs)")
            #expect(!r.stderr.contains("sending the request again") && !r.stderr.contains("no reply for"), "\(r.stderr)")
        }
    }
}
