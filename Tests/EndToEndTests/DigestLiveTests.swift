import Foundation
import HashSlots
import SlotdiffCore
import TestSupport
import Testing

/// Digest files of live servers (`slotdiff digest`) as sides of a check, and sampled checks
/// (`--sample`), against real servers: the command line end to end.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct DigestLiveTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ n: String) -> String { dir.appendingPathComponent(n).path }

    func compare(_ a: String, _ b: String, _ extra: [String] = []) throws -> (RunResult, [Difference]) {
        let log = path("\(UUID().uuidString).jsonl.zst")
        // A digest file holds no values, so it explains nothing: lines are compared without.
        let r = try slotdiff(["compare", a, b, "--out", log, "--round-delay", "50ms", "--quiet", "--explain", "0"] + extra, timeout: 300)
        var diffs: [Difference] = []
        if r.status == 0 || r.status == 1 { try DiffLogReader(path: log).forEach { diffs.append($0) } }
        return (r, diffs)
    }

    func digest(_ side: String, _ out: String, _ extra: [String] = []) throws {
        let r = try slotdiff(["digest", side, "--out", path(out), "--quiet"] + extra, timeout: 300)
        #expect(r.status == 0, "digest \(side): \(r.stdout) \(r.stderr)")
    }

    /// What a log says, line by line, without what depends on the side's kind (a live side's
    /// expiry is read again in the re-check rounds): kind, db, key, type and digest per side.
    func lines(_ diffs: [Difference]) -> [String] {
        diffs.map { d in
            "\(d.kind.rawValue) \(d.db) \(d.slot) \(d.key) \(d.source.map { "\($0.type) \($0.digest) \($0.expireMs != nil)" } ?? "-") "
                + "\(d.target.map { "\($0.type) \($0.digest) \($0.expireMs != nil)" } ?? "-")"
        }.sorted()
    }

    func summary(_ r: RunResult) throws -> [String: Any] {
        try #require(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout) \(r.stderr)")
    }

    /// The drift pair (Redis 7.0 → Valkey 8.1): a digest of each server, compared file ↔ file,
    /// file ↔ live and live ↔ file, gives the same log lines as the live ↔ live check; a digest
    /// of the dump a server was loaded from matches that server; `--shard` splits a digest check
    /// as it splits a live one. Then sampling: `--sample 100%` equals the full check, a 25%
    /// sample reports exactly the full check's differences in its slots, on servers and on
    /// digests made with the same sample.
    @Test func driftPairThroughDigestFiles() async throws {
        try await offPool { [self] in
            try TestServers.start("dg-src", .redis7, port: 17650, load: TestPaths.fixture("drift-source.rdb"))
            try TestServers.start("dg-dst", .valkey8, port: 17651, load: TestPaths.fixture("drift-target.rdb"))
            defer { TestServers.stop("dg-src"); TestServers.stop("dg-dst") }
            let src = "redis://127.0.0.1:17650", dst = "redis://127.0.0.1:17651"
            let (live, liveDiffs) = try compare(src, dst)
            #expect(live.status == 1, "\(live.stderr)")
            #expect(liveDiffs.count == 37)
            let want = lines(liveDiffs)

            try digest(src, "src.slotdiff")
            try digest(dst, "dst.slotdiff", ["--passes", "3"])
            for (a, b, what) in [
                (path("src.slotdiff"), path("dst.slotdiff"), "file-file"), (path("src.slotdiff"), dst, "file-live"),
                (src, path("dst.slotdiff"), "live-file")
            ] {
                let (r, diffs) = try compare(a, b, ["--json"])
                #expect(r.status == 1, "\(what): \(r.stderr)")
                #expect(lines(diffs) == want, "\(what)")
                let s = try summary(r)
                #expect((s["source"] as? [String: Any])?["keys"] as? Int == 230, "\(what)")
            }
            // In passes, the digest file read one slot range at a time.
            let (passes, passDiffs) = try compare(path("src.slotdiff"), path("dst.slotdiff"), ["--passes", "5"])
            #expect(passes.status == 1)
            #expect(lines(passDiffs) == want)

            // A dump file's digest against the server it was loaded into, and against that server's digest.
            try digest(TestPaths.fixture("drift-source.rdb"), "dump.slotdiff")
            let (restored, rd) = try compare(path("dump.slotdiff"), src)
            #expect(restored.status == 0, "\(restored.stdout) \(restored.stderr) \(rd.map(\.displayKey))")
            let (both, bd) = try compare(path("dump.slotdiff"), path("src.slotdiff"))
            #expect(both.status == 0, "\(both.stdout) \(both.stderr) \(bd.map(\.displayKey))")

            // --shard: the two halves of a digest check are the two halves of the live one.
            for i in 0..<2 {
                let (l, ld) = try compare(src, dst, ["--shard", "\(i)/2"])
                let (f, fd) = try compare(path("src.slotdiff"), path("dst.slotdiff"), ["--shard", "\(i)/2"])
                #expect(l.status == f.status)
                #expect(lines(ld) == lines(fd))
            }

            // --sample 100% is the full check.
            let (all, allDiffs) = try compare(src, dst, ["--sample", "100%", "--json"])
            #expect(all.status == 1)
            #expect(lines(allDiffs) == want)
            let allSample = try #require(try summary(all)["sample"] as? [String: Any])
            #expect(allSample["estimate"] as? Double == 37 && allSample["slots_sampled"] as? Int == 16384)

            // A 25% sample: exactly the full check's differences in the drawn slots.
            let sample = SlotSample(percent: 25, seed: 11)
            let inSample = lines(liveDiffs.filter { sample.contains($0.slot) })
            #expect(!inSample.isEmpty && inSample.count < want.count)
            let (part, partDiffs) = try compare(src, dst, ["--sample", "25%", "--seed", "11", "--json"])
            #expect(part.status == 1, "\(part.stderr)")
            #expect(lines(partDiffs) == inSample)
            let est = try #require(try summary(part)["sample"] as? [String: Any])
            #expect(est["differences_found"] as? Int == inSample.count)
            #expect(est["slots_sampled"] as? Int == sample.slots(in: nil).count)
            // Digests made with the same sample hold only its slots, and give the same result.
            try digest(src, "src25.slotdiff", ["--sample", "25%", "--seed", "11"])
            try digest(dst, "dst25.slotdiff", ["--sample", "25%", "--seed", "11"])
            let (files, fileDiffs) = try compare(path("src25.slotdiff"), path("dst25.slotdiff"), ["--sample", "25%", "--seed", "11"])
            #expect(files.status == 1)
            #expect(lines(fileDiffs) == inSample)
            // Checked over slots it does not hold, such a digest would make keys look missing: refused.
            let (wider, _) = try compare(path("src25.slotdiff"), dst)
            #expect(wider.status == 2 && wider.stderr.contains("--sample 25% --seed 11"), "\(wider.stderr)")

            // The 95% interval of a 25% sample holds the true count (37) in at least 19 of 20
            // seeded runs (on the digests: the same check, quicker).
            var held: [String] = []
            for seed in 1...20 {
                let (r, _) = try compare(path("src.slotdiff"), path("dst.slotdiff"), ["--sample", "25%", "--seed", "\(seed)", "--json"])
                let e = try #require(try summary(r)["sample"] as? [String: Any])
                let i = try #require(e["interval_95"] as? [Double])
                if i[0] <= 37 && 37 <= i[1] { held.append("\(seed)") }
            }
            #expect(held.count >= 19, "held in runs \(held)")
        }
    }

    /// A digest of a cluster (3 Valkey 8.1 primaries, read node by node over their slots) against
    /// a digest of a standalone server holding the same keys: a match; sampled, the cluster's
    /// nodes are walked over the drawn slots only, and the sampled digests match too.
    @Test func clusterDigestAgainstStandaloneDigest() async throws {
        try TestServers.start("dg-std", .redis7, port: 17655, load: TestPaths.fixture("dataset-redis7.rdb"))
        try TestServers.cluster("dg-cl", .valkey8, base: 17660, n: 3)
        defer { TestServers.stop("dg-std"); TestServers.stop("dg-cl") }
        let n = try await copyToCluster(from: 17655, clusterSeed: 17660)
        #expect(n > 200)
        try await offPool { [self] in
            try digest("redis://127.0.0.1:17661", "cluster.slotdiff")
            try digest("redis://127.0.0.1:17655", "std.slotdiff", ["--db", "0"])
            let (r, d) = try compare(path("cluster.slotdiff"), path("std.slotdiff"), ["--db", "0", "--json"])
            #expect(r.status == 0, "\(r.stdout) \(r.stderr) \(d.prefix(3).map(\.displayKey))")
            #expect((try summary(r)["source"] as? [String: Any])?["keys"] as? Int == n)
            // A standalone digest holding other databases cannot be compared with a cluster's.
            try digest("redis://127.0.0.1:17655", "stdall.slotdiff")
            let (dbs, _) = try compare(path("cluster.slotdiff"), path("stdall.slotdiff"))
            #expect(dbs.status == 2 && dbs.stderr.contains("cluster"), "\(dbs.stderr)")

            for port in 17660...17662 { try TestServers.cli(port: port, ["CONFIG", "RESETSTAT"]) }
            try digest("redis://127.0.0.1:17660", "cluster10.slotdiff", ["--sample", "10%", "--seed", "5"])
            // Valkey 8 nodes walk slot-ordered SCAN cursors from each run of drawn slots: at
            // least one SCAN per run.
            let scans = try (17660...17662).map { try TestServers.calls(port: $0, "scan") }.reduce(0, +)
            let runs = SlotSample(percent: 10, seed: 5).runs(in: SlotRange.all).count
            #expect(scans >= runs, "\(scans) SCAN calls for \(runs) runs of slots")
            try digest("redis://127.0.0.1:17655", "std10.slotdiff", ["--db", "0", "--sample", "10%", "--seed", "5"])
            let (s, sd) = try compare(path("cluster10.slotdiff"), path("std10.slotdiff"), ["--db", "0", "--sample", "10%", "--seed", "5", "--json"])
            #expect(s.status == 0, "\(s.stdout) \(s.stderr) \(sd.prefix(3).map(\.displayKey))")
            let keys = (try summary(s)["source"] as? [String: Any])?["keys"] as? Int ?? 0
            #expect(keys > 0 && keys < n)
        }
    }

    /// A check of a live server against a digest file, sampled and in passes, killed after its
    /// first pass and resumed: the same lines, counts and estimate as a run not stopped.
    @Test func digestSideCheckResumes() async throws {
        try await offPool { [self] in
            try TestServers.start("dg-rs", .redis7, port: 17652, load: TestPaths.fixture("drift-source.rdb"))
            defer { TestServers.stop("dg-rs") }
            try digest(TestPaths.fixture("drift-target.rdb"), "t.slotdiff")
            let common = [
                "compare", "redis://127.0.0.1:17652", path("t.slotdiff"), "--passes", "4", "--round-delay", "20ms",
                "--sample", "50%", "--seed", "2", "--quiet", "--json"
            ]
            let whole = try slotdiff(common + ["--out", path("whole.jsonl.zst")])
            #expect(whole.status == 1, "\(whole.stderr)")
            var want: [String] = []
            try DiffLogReader(path: path("whole.jsonl.zst")).forEach { want.append($0.jsonLine()) }
            let wantSample = try #require(try summary(whole)["sample"] as? [String: Any])

            let log = path("killed.jsonl.zst"), checkpoint = path("killed.checkpoint.json")
            let bg = try Background(TestPaths.slotdiffBinary, common + ["--qps", "250", "--batch", "8", "--out", log])
            for _ in 0..<1500 {
                if let d = FileManager.default.contents(atPath: checkpoint),
                    let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any],
                    ((o["done"] as? [String: Any])?.count ?? ((o["done"] as? [Any])?.count ?? 0) / 2) >= 1
                {
                    break
                }
                usleep(20_000)
            }
            bg.signal(SIGKILL)
            #expect(bg.wait().status == 128 + SIGKILL)
            let resumed = try slotdiff(common + ["--out", log, "--resume"])
            #expect(resumed.status == 1, "\(resumed.stdout) \(resumed.stderr)")
            var got: [String] = []
            try DiffLogReader(path: log).forEach { got.append($0.jsonLine()) }
            #expect(got.count == want.count && Set(got) == Set(want))
            let gotSample = try #require(try summary(resumed)["sample"] as? [String: Any])
            for k in ["differences_found", "slots_with_differences", "estimate", "interval_95"] {
                #expect("\(gotSample[k] ?? "-")" == "\(wantSample[k] ?? "-")", "\(k)")
            }
        }
    }
}
