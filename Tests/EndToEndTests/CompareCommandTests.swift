import Foundation
import SlotdiffCore
import TestSupport
import Testing

@Suite struct CompareCommandTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    @Test func matchExitsZero() async throws {
        try await offPool { [self] in
            let r = try slotdiff([
                "compare", TestPaths.fixture("dataset-redis7.rdb"), TestPaths.fixture("dataset-valkey8.rdb"),
                "--out", path("a.jsonl.zst")
            ])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stdout.contains("MATCH"))
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("a.summary.json")))) as! [String: Any]
            #expect(summary["result"] as? String == "match")
            #expect((summary["differences_total"] as? Int) == 0)
        }
    }

    @Test func differencesExitOneAndReportReadsTheLog() async throws {
        try await offPool { [self] in
            let log = path("d.jsonl.zst")
            let r = try slotdiff([
                "compare", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"),
                "--out", log, "--summary", path("s.json")
            ])
            #expect(r.status == 1, "\(r.stderr)")
            let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path("s.json")))) as! [String: Any]
            let total = summary["differences_total"] as! Int
            #expect(total > 30)
            // report: JSON Lines back out, filters applied.
            let all = try slotdiff(["report", log, "--format", "jsonl"])
            #expect(all.status == 0)
            #expect(all.stdout.split(separator: "\n").count == total)
            let missing = try slotdiff(["report", log, "--format", "jsonl", "--kind", "missing"])
            let lines = missing.stdout.split(separator: "\n")
            #expect(!lines.isEmpty && lines.allSatisfy { $0.contains("\"kind\":\"missing\"") })
            let db2 = try slotdiff(["report", log, "--format", "jsonl", "--db", "2"])
            #expect(db2.stdout.split(separator: "\n").allSatisfy { $0.contains("\"db\":2") })
            let matched = try slotdiff(["report", log, "--format", "jsonl", "--match", "val:zset:*"])
            #expect(matched.stdout.split(separator: "\n").count == 4)
            let table = try slotdiff(["report", log])
            #expect(table.stdout.contains("KIND") && table.stdout.contains("gone:string"))
            let json = try slotdiff(["report", log, "--format", "json"])
            let doc = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [String: Any]
            #expect(doc["total"] as? Int == total)
        }
    }

    /// A log sent to /dev/null is not kept: no summary or checkpoint is created beside the
    /// device, and there is nothing to --resume.
    @Test func logToADeviceLeavesNothingBeside() async throws {
        try await offPool {
            for leftover in ["/dev/null.summary.json", "/dev/null.checkpoint.json"] { try? FileManager.default.removeItem(atPath: leftover) }
            let r = try slotdiff(["compare", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"), "--out", "/dev/null"])
            #expect(r.status == 1, "\(r.stderr)")
            #expect(r.stdout.contains("37 DIFFERENCES"))
            for leftover in ["/dev/null.summary.json", "/dev/null.checkpoint.json", "/dev/null.lock"] {
                #expect(!FileManager.default.fileExists(atPath: leftover), "\(leftover) was created")
            }
            let resume = try slotdiff([
                "compare", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"), "--out", "/dev/null", "--resume"
            ])
            #expect(resume.status == 2 && resume.stderr.contains("nothing to resume"), "\(resume.stderr)")
        }
    }

    @Test func compressedAndStandardInput() async throws {
        try await offPool { [self] in
            let zst = path("drift-target.rdb.zst")
            let z = try run("/usr/bin/zstd", ["-q", "-f", TestPaths.fixture("drift-target.rdb"), "-o", zst])
            #expect(z.status == 0)
            let a = try slotdiff(["compare", TestPaths.fixture("drift-source.rdb"), zst, "--out", path("z.jsonl.zst")])
            #expect(a.status == 1)
            let data = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("dataset-redis8.rdb")))
            let b = try slotdiff(["compare", "-", TestPaths.fixture("dataset-redis7.rdb"), "--out", path("s.jsonl.zst")], stdin: data)
            #expect(b.status == 0, "\(b.stderr)")
        }
    }

    /// In several passes each dump file is parsed once, its records kept per pass: the same
    /// log lines and counts as one pass, duplicates within one file and across files included.
    @Test func passesGiveTheSameResult() async throws {
        try await offPool { [self] in
            let dupes = TestPaths.fixture("peers/leonchen83__redis-rdb-cli/src__test__resources__rdt__filter.rdb")
            let cases: [(String, String)] = [
                (TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb")),
                (dupes + "," + TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-source.rdb") + "," + dupes)
            ]
            for (n, (a, b)) in cases.enumerated() {
                var runs: [([String], [String: Any])] = []
                for passes in ["1", "5"] {
                    let log = path("passes-\(n)-\(passes).jsonl.zst")
                    let r = try slotdiff(["compare", a, b, "--passes", passes, "--out", log, "--json"])
                    #expect(r.status == 1, "\(r.stderr)")
                    var lines: [String] = []
                    try DiffLogReader(path: log).forEach { lines.append($0.jsonLine()) }
                    let summary = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
                    runs.append((lines.sorted(), summary))
                }
                #expect(runs[0].0 == runs[1].0 && !runs[0].0.isEmpty)
                #expect(runs[1].1["passes"] as? Int == 5)
                func canonical(_ v: Any?) throws -> String {
                    String(decoding: try JSONSerialization.data(withJSONObject: [v ?? NSNull()], options: .sortedKeys), as: UTF8.self)
                }
                for field in ["differences", "compared", "matched", "filtered_out", "empty_collections_skipped", "expired"] {
                    #expect(try canonical(runs[0].1[field]) == canonical(runs[1].1[field]), "\(field)")
                }
                if n == 1 { #expect((runs[1].1["differences"] as? [String: Any])?["duplicate"] as? Int ?? 0 >= 13) }
            }
        }
    }

    @Test func directoryAndCommaSeparatedSides() async throws {
        try await offPool { [self] in
            let shards = dir.appendingPathComponent("shards")
            try FileManager.default.createDirectory(at: shards, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: TestPaths.fixture("drift-source.rdb"), toPath: shards.appendingPathComponent("a.rdb").path)
            try FileManager.default.copyItem(atPath: TestPaths.fixture("hfe-redis8.rdb"), toPath: shards.appendingPathComponent("b.rdb").path)
            let r = try slotdiff([
                "compare", shards.path,
                TestPaths.fixture("hfe-redis8.rdb") + "," + TestPaths.fixture("drift-source.rdb"),
                "--out", path("dir.jsonl.zst")
            ])
            #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        }
    }

    @Test func unreadableInputExitsTwoNamingTheFile() async throws {
        try await offPool { [self] in
            let missing = path("nope.rdb")
            let r = try slotdiff(["compare", missing, TestPaths.fixture("drift-source.rdb"), "--out", path("x.jsonl.zst")])
            #expect(r.status == 2)
            #expect(r.stderr.contains(missing))
            // A truncated dump: file, offset and what was expected.
            let bytes = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("drift-source.rdb")))
            let cut = path("cut.rdb")
            try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: cut))
            let t = try slotdiff(["compare", cut, TestPaths.fixture("drift-source.rdb"), "--out", path("y.jsonl.zst")])
            #expect(t.status == 2)
            #expect(t.stderr.contains(cut) && t.stderr.contains("at offset") && t.stderr.contains("expected"), "\(t.stderr)")
            // Against a sound dump, so that the one failure told is this file's (of two sides
            // that fail, the first to fail is told, and which that is depends on the machine).
            let notDump = try slotdiff([
                "compare", TestPaths.fixture("drift-expected.json"), TestPaths.fixture("drift-source.rdb"), "--out", path("z.jsonl.zst")
            ])
            #expect(notDump.status == 2 && notDump.stderr.contains("not a dump file"), "\(notDump.stderr)")
        }
    }

    @Test func filterOptions() async throws {
        try await offPool { [self] in
            let r = try slotdiff([
                "compare", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"),
                "--out", path("f.jsonl.zst"), "--type", "zset", "--match", "val:*", "--json"
            ])
            #expect(r.status == 1)
            let s = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            #expect((s["differences"] as! [String: Int])["value"] == 4)
            #expect((s["differences_total"] as! Int) == 4)
            let clean = try slotdiff([
                "compare", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"),
                "--out", path("g.jsonl.zst"), "--match", "same:*"
            ])
            #expect(clean.status == 0, "\(clean.stdout)")
            let bad = try slotdiff(["compare", "a.rdb", "b.rdb", "--slots", "9-3"])
            #expect(bad.status == 2 && bad.stderr.contains("9-3"))
            let help = try slotdiff(["compare", "--help"])
            #expect(help.status == 0 && help.stdout.contains("--ttl-tolerance"))
        }
    }
}

@Suite struct ShardTests {
    /// N processes with --shard I/N cover every key exactly once: their merged logs equal one
    /// run's log.
    @Test func shardsMergeToOneRun() async throws {
        try await offPool {
            let dir = TestPaths.temporaryDirectory()
            let src = TestPaths.fixture("drift-source.rdb"), dst = TestPaths.fixture("drift-target.rdb")
            let whole = dir.appendingPathComponent("whole.jsonl.zst").path
            #expect(try slotdiff(["compare", src, dst, "--out", whole]).status == 1)
            var logs: [String] = []
            var keys = 0
            for i in 0..<4 {
                let log = dir.appendingPathComponent("shard\(i).jsonl.zst").path
                let r = try slotdiff(["compare", src, dst, "--out", log, "--shard", "\(i)/4", "--json"])
                #expect(r.status == 0 || r.status == 1)
                let s = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
                keys += (s["source"] as! [String: Any])["keys"] as! Int
                logs.append(log)
            }
            let all = try slotdiff(["compare", src, src, "--out", dir.appendingPathComponent("n.jsonl.zst").path, "--json"])
            let total = ((try JSONSerialization.jsonObject(with: Data(all.stdout.utf8)) as! [String: Any])["source"] as! [String: Any])["keys"] as! Int
            #expect(keys == total)
            let mergedTable = try slotdiff(["report"] + logs)
            #expect(mergedTable.stdout.contains("4 runs merged: \(total) source keys"), "\(mergedTable.stdout)")
            let merged = try slotdiff(["report"] + logs + ["--format", "jsonl"])
            let single = try slotdiff(["report", whole, "--format", "jsonl"])
            #expect(Set(merged.stdout.split(separator: "\n")) == Set(single.stdout.split(separator: "\n")))
            #expect(merged.stdout.split(separator: "\n").count == single.stdout.split(separator: "\n").count)
            let bad = try slotdiff(["compare", src, dst, "--shard", "4/4"])
            #expect(bad.status == 2)
        }
    }
}

/// `report --html`: one self-contained page, rendered by headless Chromium (Debian's package),
/// shows what the log holds.
@Suite(
    .enabled(
        if: FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium") || TestPaths.mustRunServerTests,
        "chromium missing: run Scripts/setup"))
struct HTMLReportTests {
    @Test func renderedPageShowsTheLog() async throws {
        try await offPool {
            let dir = TestPaths.temporaryDirectory()
            let log = dir.appendingPathComponent("d.jsonl.zst").path
            let html = dir.appendingPathComponent("report.html").path
            _ = try slotdiff(["compare", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"), "--out", log])
            var diffs: [Difference] = []
            try DiffLogReader(path: log).forEach { diffs.append($0) }
            let r = try slotdiff(["report", log, "--html", html])
            #expect(r.status == 0, "\(r.stderr)")
            let page = try String(contentsOfFile: html, encoding: .utf8)
            // Self-contained: no script, nothing loaded from elsewhere.
            #expect(!page.contains("<script") && !page.contains("src=") && !page.contains("<link"))
            let chromium = "/usr/bin/chromium"
            let flags = ["--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(dir.path)/profile"]
            let dom = try run(chromium, flags + ["--dump-dom", "file://\(html)"], timeout: 120)
            #expect(dom.status == 0, "\(dom.stderr)")
            #expect(dom.stdout.contains("\(diffs.count) differences"))
            for kind in DifferenceKind.allCases {
                let n = diffs.filter { $0.kind == kind }.count
                #expect(dom.stdout.contains("id=\"count-\(kind.rawValue)\">\(n)<"), "\(kind)")
            }
            // One heat-map cell per slot that holds a difference.
            let slots = Set(diffs.map(\.slot))
            #expect(dom.stdout.components(separatedBy: "<title>slot ").count - 1 == slots.count)
            for d in diffs.prefix(10) where d.keyText != nil { #expect(dom.stdout.contains(d.displayKey)) }
            let png = dir.appendingPathComponent("shot.png").path
            let shot = try run(chromium, flags + ["--screenshot=\(png)", "--window-size=1200,1000", "file://\(html)"], timeout: 120)
            #expect(shot.status == 0)
            let size = (try FileManager.default.attributesOfItem(atPath: png)[.size] as? Int) ?? 0
            #expect(size > 10_000)
        }
    }
}

/// `watch --metrics-port`: Prometheus text scraped over real HTTP while the watch runs.
@Suite(.serialized) struct MetricsTests {
    func scrape(_ port: Int, until: (String) -> Bool) -> String {
        var last = ""
        for _ in 0..<100 {
            if let r = try? run("/usr/bin/curl", ["-s", "--max-time", "2", "http://127.0.0.1:\(port)/metrics"]), r.status == 0 {
                last = r.stdout
                if until(last) { return last }
            }
            usleep(100_000)
        }
        return last
    }

    @Test func scrapedDuringAWatch() async throws {
        try await offPool { [self] in
            let dir = TestPaths.temporaryDirectory().path
            let done = DispatchSemaphore(value: 0)
            let box = ResultHolder()
            Thread.detachNewThread {
                box.result = try? slotdiff(
                    [
                        "watch", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"),
                        "--every", "2s", "--count", "3", "--dir", dir, "--metrics-port", "17371",
                        "--metrics-host", "127.0.0.1"
                    ], timeout: 120)
                done.signal()
            }
            let text = scrape(17371) { $0.contains("slotdiff_runs_total 2") }
            #expect(text.contains("slotdiff_runs_total 2"), "\(text)")
            #expect(text.contains("slotdiff_differences_total{kind=\"value\"} 40"), "\(text)")
            #expect(text.contains("slotdiff_last_run_differences{kind=\"missing\"} 5"), "\(text)")
            #expect(text.contains("slotdiff_keys_compared_total 450"), "\(text)")
            #expect(text.contains("slotdiff_last_run_result 1"))
            #expect(text.contains("# TYPE slotdiff_keys_compared_total counter"))
            done.wait()
            #expect(box.result?.status == 1)

            // A side that cannot be read: the run fails, counted against its address.
            let done2 = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                _ = try? slotdiff(
                    [
                        "watch", "redis://127.0.0.1:1", TestPaths.fixture("drift-target.rdb"), "--every", "2s", "--count", "2",
                        "--dir", dir + "/e", "--metrics-port", "17372", "--metrics-host", "127.0.0.1"
                    ], timeout: 120)
                done2.signal()
            }
            let errText = scrape(17372) { $0.contains("slotdiff_errors_total") }
            #expect(errText.contains("slotdiff_errors_total{addr=\"127.0.0.1:1\"} 1"), "\(errText)")
            #expect(errText.contains("slotdiff_last_run_result 2"))
            done2.wait()
        }
    }
}

final class ResultHolder: @unchecked Sendable { var result: RunResult? }
