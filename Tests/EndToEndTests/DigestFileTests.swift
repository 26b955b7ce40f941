import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// Digest files of dump files: the same check as the dumps, and every way a digest file can
/// be unreadable (exit 2 naming the file and the offset).
@Suite struct DigestFileTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func digest(_ side: String, _ out: String, _ extra: [String] = []) throws -> RunResult {
        try slotdiff(["digest", side, "--out", path(out), "--quiet"] + extra)
    }

    func compare(_ a: String, _ b: String, _ extra: [String] = []) throws -> (RunResult, [String]) {
        let log = path("\(UUID().uuidString).jsonl.zst")
        // A digest file holds no values, so it explains nothing: lines are compared without.
        let r = try slotdiff(["compare", a, b, "--out", log, "--quiet", "--explain", "0"] + extra)
        var lines: [String] = []
        if r.status == 0 || r.status == 1 { try DiffLogReader(path: log).forEach { lines.append($0.jsonLine()) } }
        return (r, lines.sorted())
    }

    /// Digests of the drift dumps compared give the very lines the dumps give (digests, expiry
    /// times, kinds), file against file and digest against dump; one digest per side of two
    /// dumps each keeps the keys both dumps hold, reported as duplicates.
    @Test func sameLinesAsTheDumps() async throws {
        try await offPool { [self] in
            let a = TestPaths.fixture("drift-source.rdb"), b = TestPaths.fixture("drift-target.rdb")
            #expect(try digest(a, "a.slotdiff").status == 0)
            let made = try digest(b, "b.slotdiff", ["--json", "--passes", "4"])
            #expect(made.status == 0, "\(made.stderr)")
            let info = try JSONSerialization.jsonObject(with: Data(made.stdout.utf8)) as! [String: Any]
            #expect(info["keys"] as? Int == 229 && info["passes"] as? Int == 4)
            let (dumps, want) = try compare(a, b)
            #expect(dumps.status == 1 && want.count == 37)
            for (x, y) in [(path("a.slotdiff"), path("b.slotdiff")), (path("a.slotdiff"), b), (a, path("b.slotdiff"))] {
                let (r, got) = try compare(x, y)
                #expect(r.status == 1, "\(r.stderr)")
                #expect(got == want, "\(x) \(y)")
            }
            // --mode keys: any digest answers it; another mode than the digest's is refused.
            let (keys, keyLines) = try compare(path("a.slotdiff"), path("b.slotdiff"), ["--mode", "keys"])
            let (dumpKeys, dumpKeyLines) = try compare(a, b, ["--mode", "keys"])
            #expect(keys.status == dumpKeys.status && keyLines.count == dumpKeyLines.count)
            let (length, _) = try compare(path("a.slotdiff"), b, ["--mode", "length"])
            #expect(length.status == 2 && length.stderr.contains("--mode digest"), "\(length.stderr)")
            // A digest made with --db 0 cannot stand for every database.
            #expect(try digest(a, "a0.slotdiff", ["--db", "0"]).status == 0)
            let (narrow, _) = try compare(path("a0.slotdiff"), b)
            #expect(narrow.status == 2 && narrow.stderr.contains("--db 0"), "\(narrow.stderr)")
            let (same, _) = try compare(path("a0.slotdiff"), b, ["--db", "0"])
            #expect(same.status == 0 || same.status == 1)

            // Two dumps holding the same keys as one side: duplicates, through a digest too.
            let twice = "\(a),\(a)"
            #expect(try digest(twice, "twice.slotdiff").status == 0)
            let (d1, l1) = try compare(twice, b)
            let (d2, l2) = try compare(path("twice.slotdiff"), b)
            #expect(d1.status == 1 && d2.status == 1)
            func kinds(_ lines: [String]) -> [String] {
                lines.map { l in
                    let o = try! JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
                    return "\(o["kind"]!) \(o["db"]!) \(o["key"] ?? o["key_base64"]!)"
                }.sorted()
            }
            #expect(kinds(l1) == kinds(l2) && kinds(l1).filter { $0.hasPrefix("duplicate") }.count == 230)

            // An input is never overwritten; a digest file is not digested again.
            let (over, _) = try compare(path("a.slotdiff"), b, ["--out", path("a.slotdiff")])
            #expect(over.status == 2 && over.stderr.contains("never overwritten"), "\(over.stderr)")
            let again = try digest(path("a.slotdiff"), "c.slotdiff")
            #expect(again.status == 2)
            let inPlace = try digest(a, "x.rdb", ["--out", a])
            #expect(inPlace.status == 2)
        }
    }

    /// A digest file cut short (anywhere), with a byte changed in a block or in its header, of
    /// another format version, or not a digest file at all: exit 2, the message naming the file
    /// and an offset in it; nothing compared.
    @Test func corruptAndTruncatedFilesAreRefused() async throws {
        try await offPool { [self] in
            let a = TestPaths.fixture("drift-source.rdb")
            #expect(try digest(a, "good.slotdiff").status == 0)
            let good = try Data(contentsOf: URL(fileURLWithPath: path("good.slotdiff")))
            func check(_ name: String, _ bytes: Data, _ says: String) throws {
                let p = path(name)
                try bytes.write(to: URL(fileURLWithPath: p))
                let (r, _) = try compare(p, a)
                #expect(r.status == 2, "\(name): \(r.stdout)")
                #expect(r.stderr.contains(p) && r.stderr.contains("offset "), "\(name): \(r.stderr)")
                #expect(r.stderr.contains(says), "\(name): \(r.stderr)")
            }
            for cut in [4, 12, 100, good.count / 2, good.count - 40, good.count - 1] {
                try check("cut\(cut).slotdiff", good.prefix(cut), "cut short")
            }
            var flipped = good
            flipped[40] ^= 0x55
            try check("block.slotdiff", flipped, "corrupt")
            var header = good
            header[good.count - 60] ^= 0x55
            try check("header.slotdiff", header, "offset")
            var version = good
            version[8] = 9
            try check("version.slotdiff", version, "format version 9")
            try check("notdigest.slotdiff", Data("hello, this is not a digest file at all".utf8), "not a slotdiff digest file")
        }
    }

    /// `--sample 100%` is the full check; a sample of the dumps reports exactly the full
    /// check's differences in its slots, and says plainly that the rest is an estimate.
    @Test func sampledDumpCheck() async throws {
        try await offPool { [self] in
            let a = TestPaths.fixture("drift-source.rdb"), b = TestPaths.fixture("drift-target.rdb")
            let (full, all) = try compare(a, b)
            let (hundred, same) = try compare(a, b, ["--sample", "100%"])
            #expect(full.status == 1 && hundred.status == 1 && all == same)
            #expect(hundred.stdout.contains("every slot was checked"))
            let (part, some) = try compare(a, b, ["--sample", "30%", "--seed", "4"])
            #expect(part.status == 1 || part.status == 0)
            let sample = SlotSample(percent: 30, seed: 4)
            let expected = all.filter { l in
                let o = try! JSONSerialization.jsonObject(with: Data(l.utf8)) as! [String: Any]
                return sample.contains(UInt16(o["slot"] as! Int))
            }
            #expect(some == expected)
            #expect(
                part.stdout.contains("ESTIMATE") && part.stdout.contains("not a full check") && part.stdout.contains("in the sampled slots"),
                "\(part.stdout)")
            let bad = try slotdiff(["compare", a, b, "--sample", "0%", "--out", path("z.jsonl.zst")])
            #expect(bad.status == 2 && bad.stderr.contains("--sample"))
        }
    }
}
