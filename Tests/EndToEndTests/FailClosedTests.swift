import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// A result is only as good as its inputs and outputs: inputs are never overwritten, outputs
/// are known writable before the check starts, and every write error ends with exit 2.
@Suite struct OutputSafetyTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
    let source = TestPaths.fixture("drift-source.rdb")
    let target = TestPaths.fixture("drift-target.rdb")

    func bytes(_ p: String) -> Data? { FileManager.default.contents(atPath: p) }

    /// `p` written relative to the working directory of the tests.
    func relative(_ p: String) -> String {
        let cwd = FileManager.default.currentDirectoryPath.split(separator: "/")
        return String(repeating: "../", count: cwd.count) + p.dropFirst()
    }

    func copy(_ from: String, _ to: String) throws {
        try FileManager.default.createDirectory(atPath: (to as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }

    /// --out, --summary and --checkpoint naming an input dump (as given, relative, through a
    /// symlink, or a file of a directory side) are refused before anything is written.
    @Test func anOutputThatIsAnInputIsRefused() async throws {
        try await offPool { [self] in
            let victim = path("victim.rdb")
            try copy(source, victim)
            let shards = path("shards")
            try copy(source, shards + "/a.rdb")
            try copy(TestPaths.fixture("hfe-redis8.rdb"), shards + "/b.rdb")
            try FileManager.default.createSymbolicLink(atPath: path("link.rdb"), withDestinationPath: victim)
            let before = [victim: bytes(victim)!, shards + "/a.rdb": bytes(shards + "/a.rdb")!, shards + "/b.rdb": bytes(shards + "/b.rdb")!]
            let cases: [(sides: [String], option: String, value: String, input: String)] = [
                ([victim, target], "--out", victim, victim),
                ([victim, target], "--out", relative(victim), victim),
                ([relative(victim), target], "--summary", victim, relative(victim)),
                ([source, victim], "--checkpoint", victim, victim),
                ([source, victim], "--out", path("link.rdb"), victim),
                ([source, victim], "--out", path("./sub/../victim.rdb"), victim),
                ([shards, target], "--out", shards + "/b.rdb", shards + "/b.rdb"),
                ([source, shards], "--summary", relative(shards + "/a.rdb"), shards + "/a.rdb"),
                ([source, shards], "--checkpoint", shards + "/a.rdb", shards + "/a.rdb")
            ]
            try FileManager.default.createDirectory(atPath: path("sub"), withIntermediateDirectories: true)
            for (n, c) in cases.enumerated() {
                var args = ["compare"] + c.sides + [c.option, c.value]
                let log = path("log-\(n).jsonl.zst")
                if c.option != "--out" { args += ["--out", log] }
                let r = try slotdiff(args)
                #expect(r.status == 2, "\(n): \(r.stdout) \(r.stderr)")
                #expect(r.stderr.contains(c.value) && r.stderr.contains(c.input) && r.stderr.contains("never overwritten"), "\(n): \(r.stderr)")
                #expect(!FileManager.default.fileExists(atPath: log), "\(n): the log was created")
                for (p, b) in before { #expect(bytes(p) == b, "\(n): \(p) changed") }
            }
            // Two outputs on one file.
            let same = try slotdiff(["compare", source, target, "--out", path("x.jsonl.zst"), "--summary", path("x.jsonl.zst")])
            #expect(same.status == 2 && same.stderr.contains("same file"), "\(same.stderr)")
            let same2 = try slotdiff([
                "compare", source, target, "--out", path("y.jsonl.zst"), "--summary", path("s.json"),
                "--checkpoint", relative(path("s.json"))
            ])
            #expect(same2.status == 2 && same2.stderr.contains("same file"), "\(same2.stderr)")
        }
    }

    @Test func anUnwritableSummaryIsRefusedBeforeTheCheck() async throws {
        try await offPool { [self] in
            let log = path("a.jsonl.zst")
            let summary = path("nope/s.json")
            let started = Date()
            let r = try slotdiff(["compare", source, target, "--out", log, "--summary", summary])
            #expect(r.status == 2)
            #expect(r.stderr.contains(summary) && r.stderr.contains("No such file or directory"), "\(r.stderr)")
            #expect(!r.stderr.contains("NSCocoaErrorDomain") && !r.stderr.contains("Error Domain"))
            #expect(!FileManager.default.fileExists(atPath: log))
            #expect(Date().timeIntervalSince(started) < 10)
            // A directory where a file should be.
            let d = try slotdiff(["compare", source, target, "--out", path("b.jsonl.zst"), "--summary", dir.path])
            #expect(d.status == 2 && d.stderr.contains("is a directory"), "\(d.stderr)")
            #expect(!FileManager.default.fileExists(atPath: path("b.jsonl.zst")))
        }
    }

    /// A checkpoint is replaced by renaming: never over a device.
    @Test func aCheckpointOnADeviceIsRefused() async throws {
        try await offPool { [self] in
            let log = path("c.jsonl.zst")
            let r = try slotdiff(["compare", source, target, "--out", log, "--checkpoint", "/dev/full"])
            #expect(r.status == 2)
            #expect(r.stderr.contains("/dev/full") && r.stderr.contains("not a regular file"), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: log))
        }
    }

    /// Write errors: exit 2 with the path and the system's reason; a device is a fine log.
    @Test func writeErrorsExitTwo() async throws {
        try await offPool { [self] in
            let full = try slotdiff([
                "compare", source, target, "--out", "/dev/full", "--summary", path("s1.json"),
                "--checkpoint", path("c1.json")
            ])
            #expect(full.status == 2)
            #expect(full.stderr.contains("/dev/full") && full.stderr.contains("No space left on device"), "\(full.stderr)")
            let summary = try slotdiff(["compare", source, target, "--out", path("d.jsonl.zst"), "--summary", "/dev/full"])
            #expect(summary.status == 2)
            #expect(summary.stderr.contains("/dev/full") && summary.stderr.contains("No space left on device"), "\(summary.stderr)")
            #expect(!summary.stderr.contains("Error Domain"))
            let null = try slotdiff([
                "compare", source, target, "--out", "/dev/null", "--summary", "/dev/null",
                "--checkpoint", path("c2.json")
            ])
            #expect(null.status == 1, "\(null.stderr)")
        }
    }

    @Test func watchAndReportOutputs() async throws {
        try await offPool { [self] in
            // --dir is a file.
            let file = path("afile")
            try Data("x".utf8).write(to: URL(fileURLWithPath: file))
            let w = try slotdiff(["watch", source, target, "--dir", file, "--count", "1"])
            #expect(w.status == 2 && w.stderr.contains(file), "\(w.stderr)")
            // An input where a run's log would go.
            let watchDir = path("watch")
            try copy(source, watchDir + "/run-0001.jsonl.zst")
            let w2 = try slotdiff(["watch", watchDir + "/run-0001.jsonl.zst", target, "--dir", watchDir, "--count", "1"])
            #expect(w2.status == 2 && w2.stderr.contains("never overwritten"), "\(w2.stderr)")
            #expect(bytes(watchDir + "/run-0001.jsonl.zst") == bytes(source))
            // report --html: checked before the logs are read, never over a log.
            let log = path("r.jsonl.zst")
            #expect(try slotdiff(["compare", source, target, "--out", log]).status == 1)
            let logBytes = bytes(log)
            let over = try slotdiff(["report", log, "--html", log])
            #expect(over.status == 2 && over.stderr.contains("never overwritten"), "\(over.stderr)")
            #expect(bytes(log) == logBytes)
            let missing = try slotdiff(["report", log, "--html", path("no/dir/r.html")])
            #expect(missing.status == 2 && missing.stderr.contains(path("no/dir/r.html")) && missing.stdout.isEmpty, "\(missing.stderr)")
            let fullPage = try slotdiff(["report", log, "--html", "/dev/full"])
            #expect(fullPage.status == 2 && fullPage.stderr.contains("No space left on device"), "\(fullPage.stderr)")
        }
    }
}

/// Option values out of range: exit 2 naming the option and the value, before anything is
/// opened — never a crash, a hang or a silent clamp.
@Suite struct OptionValidationTests {
    static let cases: [([String], String, String)] = [
        (["--shard", "0/20000"], "--shard", "0/20000"),
        (["--shard", "4/4"], "--shard", "4/4"),
        (["--shard=-1/4"], "--shard", "-1/4"),
        (["--shard", "0/0"], "--shard", "0/0"),
        (["--qps", "0"], "--qps", "0"),
        (["--qps=-5"], "--qps", "-5"),
        (["--workers", "0"], "--workers", "0"),
        (["--batch", "0"], "--batch", "0"),
        (["--rounds=-1"], "--rounds", "-1"),
        (["--passes", "0"], "--passes", "0"),
        (["--passes", "20000"], "--passes", "20000"),
        (["--big-key-threshold", "0"], "--big-key-threshold", "0"),
        (["--slot-keys-limit", "0"], "--slot-keys-limit", "0"),
        (["--ttl-tolerance", "inf"], "--ttl-tolerance", "inf"),
        (["--ttl-tolerance", "1e30s"], "--ttl-tolerance", "1e30s"),
        (["--ttl-tolerance=-1s"], "--ttl-tolerance", "-1s"),
        (["--round-delay", "2h"], "--round-delay", "2h"),
        (["--db=-1"], "--db", "-1"),
        (["--node-timeout", "100ms"], "--node-timeout", "100ms"),
        (["--node-timeout", "2h"], "--node-timeout", "2h"),
        // The earlier name of --node-timeout still works.
        (["--timeout", "10ms"], "--timeout", "10ms"),
        (["--cluster-address", "10.0.0.1:6379"], "--cluster-address", "10.0.0.1:6379"),
        (["--cluster-address", "10.0.0.1:6379=127.0.0.1:99999"], "--cluster-address", "127.0.0.1:99999"),
        (["--cluster-address", "a:1=b:2", "--cluster-address", "a:1=c:3"], "--cluster-address", "a:1 is mapped twice"),
        // The earlier name of --cluster-address still works.
        (["--address-map", "a:1=b:2", "--cluster-address", "A:1=c:3"], "--cluster-address", "a:1 is mapped twice"),
        (["--cluster-address-map", "/nonexistent/nodes.map"], "--cluster-address-map", "/nonexistent/nodes.map"),
        (["--rename-command", "DUMP"], "--rename-command", "DUMP"),
        (["--rename-command", "=x"], "--rename-command", "=x"),
        (["--rename-command", "CLUSTER|SHARDS=x"], "--rename-command", "CLUSTER|SHARDS"),
        (["--rename-command", "middle:DUMP=x"], "--rename-command", "middle:DUMP"),
        (["--rename-command", "source:DUMP=a", "--rename-command", "DUMP=b"], "--rename-command", "DUMP is renamed twice on the source"),
        (["--explain=-1"], "--explain", "-1")
    ]

    @Test(arguments: cases)
    func compareRefuses(_ args: [String], _ option: String, _ value: String) async throws {
        try await offPool {
            let dir = TestPaths.temporaryDirectory()
            let log = dir.appendingPathComponent("x.jsonl.zst").path
            let r = try slotdiff(
                ["compare", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"), "--out", log] + args,
                timeout: 30)
            #expect(r.status == 2, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(option) && r.stderr.contains(value), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: log))
        }
    }

    static let watchCases: [([String], String, String)] = [
        (["--every", "0"], "--every", "0"),
        (["--every", "0ms"], "--every", "0ms"),
        (["--count", "0"], "--count", "0"),
        (["--drift-after", "0"], "--drift-after", "0"),
        (["--metrics-port", "0"], "--metrics-port", "0"),
        (["--metrics-port", "70000"], "--metrics-port", "70000")
    ]

    @Test(arguments: watchCases)
    func watchRefuses(_ args: [String], _ option: String, _ value: String) async throws {
        try await offPool {
            let dir = TestPaths.temporaryDirectory().appendingPathComponent("w").path
            let r = try slotdiff(
                ["watch", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"), "--dir", dir] + args,
                timeout: 30)
            #expect(r.status == 2, "\(args): \(r.status) \(r.stderr)")
            #expect(r.stderr.contains(option) && r.stderr.contains(value), "\(args): \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: dir))
        }
    }

    @Test func reportRefusesANegativeLimit() async throws {
        try await offPool {
            let r = try slotdiff(["report", "x.jsonl.zst", "--limit=-1"])
            #expect(r.status == 2 && r.stderr.contains("--limit"), "\(r.stderr)")
        }
    }
}

/// A directory side reads its dumps; other entries are listed, and entries named like dumps
/// that cannot be read are an error (a shard left out would look missing).
@Suite struct DirectorySideTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    @Test func unrelatedEntriesAreListed() async throws {
        try await offPool { [self] in
            let shards = path("backup")
            try FileManager.default.createDirectory(atPath: shards + "/notes", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: TestPaths.fixture("drift-source.rdb"), toPath: shards + "/a.rdb")
            try Data("cluster config".utf8).write(to: URL(fileURLWithPath: shards + "/nodes.conf"))
            let r = try slotdiff(["compare", shards, TestPaths.fixture("drift-source.rdb"), "--out", path("d.jsonl.zst"), "--json"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("warning") && r.stderr.contains(shards + "/nodes.conf") && r.stderr.contains(shards + "/notes"), "\(r.stderr)")
            let s = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            let skipped = (s["source"] as! [String: Any])["skipped"] as? [[String: String]] ?? []
            #expect(Set(skipped.compactMap { $0["path"] }) == [shards + "/nodes.conf", shards + "/notes"], "\(skipped)")
            #expect(skipped.allSatisfy { !($0["reason"] ?? "").isEmpty })
            #expect((s["target"] as! [String: Any])["skipped"] == nil)
        }
    }

    @Test func unreadableDumpsAreAnError() async throws {
        try await offPool { [self] in
            let shards = path("backup")
            try FileManager.default.createDirectory(atPath: shards, withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: TestPaths.fixture("drift-source.rdb"), toPath: shards + "/a.rdb")
            let gz = try run("/bin/sh", ["-c", "gzip -c '\(TestPaths.fixture("hfe-redis8.rdb"))' > '\(shards)/b.rdb.gz'"])
            #expect(gz.status == 0)
            let log = path("g.jsonl.zst")
            let r = try slotdiff(["compare", shards, TestPaths.fixture("drift-source.rdb"), "--out", log])
            #expect(r.status == 2)
            #expect(r.stderr.contains("b.rdb.gz") && r.stderr.contains("gzip") && r.stderr.contains(shards), "\(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: log))
            // A shard kept in a subdirectory is not silently left out either.
            try FileManager.default.removeItem(atPath: shards + "/b.rdb.gz")
            try FileManager.default.createDirectory(atPath: shards + "/node2", withIntermediateDirectories: true)
            try FileManager.default.copyItem(atPath: TestPaths.fixture("hfe-redis8.rdb"), toPath: shards + "/node2/dump.rdb")
            let sub = try slotdiff(["compare", shards, TestPaths.fixture("drift-source.rdb"), "--out", log])
            #expect(sub.status == 2 && sub.stderr.contains("node2/") && sub.stderr.contains("dump.rdb"), "\(sub.stderr)")
        }
    }
}

/// Bytes after a dump's EOF marker and checksum: an error naming the file and the offset.
@Suite struct TrailingBytesTests {
    @Test func appendedBytesAreAnError() async throws {
        try await offPool {
            let dir = TestPaths.temporaryDirectory()
            var data = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("drift-target.rdb")))
            let size = data.count
            data.append(Data(repeating: 0x41, count: 17))
            let plain = dir.appendingPathComponent("long.rdb").path
            try data.write(to: URL(fileURLWithPath: plain))
            let zst = dir.appendingPathComponent("long.rdb.zst").path
            #expect(try run("/usr/bin/zstd", ["-q", "-f", plain, "-o", zst]).status == 0)
            for p in [plain, zst] {
                let r = try slotdiff(["compare", TestPaths.fixture("drift-source.rdb"), p, "--out", dir.appendingPathComponent("x.jsonl.zst").path])
                #expect(r.status == 2)
                #expect(
                    r.stderr.contains(p) && r.stderr.contains("offset \(size)") && r.stderr.contains("17 bytes after the end of the dump"),
                    "\(r.stderr)")
            }
            let info = try slotdiff(["info", plain])
            #expect(info.status == 2 && info.stderr.contains("17 bytes after the end"))
            // Two dumps joined into one file.
            var two = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("drift-target.rdb")))
            two.append(two)
            let joined = dir.appendingPathComponent("joined.rdb").path
            try two.write(to: URL(fileURLWithPath: joined))
            let j = try slotdiff(["info", joined])
            #expect(j.status == 2 && j.stderr.contains("offset \(size): \(size) bytes after the end"), "\(j.stderr)")
        }
    }
}

/// A finished compare ends its log with a closing record; `report` refuses a log without one.
@Suite struct CompleteLogTests {
    let dir = TestPaths.temporaryDirectory()
    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    @Test func aFinishedLogEndsWithItsResult() async throws {
        try await offPool { [self] in
            let log = path("d.jsonl.zst")
            let r = try slotdiff(["compare", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"), "--out", log, "--json"])
            #expect(r.status == 1)
            let s = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as! [String: Any]
            let reader = DiffLogReader(path: log)
            var n = 0
            try reader.forEach { _ in n += 1 }
            let end = try #require(reader.end)
            #expect(reader.complete && reader.consistent)
            #expect(end.result == "differences" && end.differencesTotal == s["differences_total"] as? Int && n == end.differencesTotal)
            #expect(end.sourceKeys == (s["source"] as! [String: Any])["keys"] as? Int)
            #expect(end.compared == s["compared"] as? Int && end.matched == s["matched"] as? Int)
            #expect(try slotdiff(["report", log]).status == 0)
            let jsonl = try slotdiff(["report", log, "--format", "jsonl"])
            #expect(jsonl.status == 0 && jsonl.stdout.split(separator: "\n").count == n && !jsonl.stdout.contains("\"end\""))

            let match = path("m.jsonl.zst")
            #expect(try slotdiff(["compare", TestPaths.fixture("dataset-redis7.rdb"), TestPaths.fixture("dataset-valkey8.rdb"), "--out", match]).status == 0)
            let m = DiffLogReader(path: match)
            try m.forEach { _ in Issue.record("a difference in a matching log") }
            #expect(m.end?.result == "match" && m.complete)
            #expect(try slotdiff(["report", match]).status == 0)
        }
    }

    @Test func aLogCutShortIsIncomplete() async throws {
        try await offPool { [self] in
            let log = path("d.jsonl.zst")
            #expect(try slotdiff(["compare", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"), "--out", log]).status == 1)
            let whole = try Data(contentsOf: URL(fileURLWithPath: log))
            let cut = path("cut.jsonl.zst")
            try whole.prefix(whole.count - 20).write(to: URL(fileURLWithPath: cut))
            for format in ["table", "json", "jsonl"] {
                let r = try slotdiff(["report", cut, "--format", format])
                #expect(r.status == 2, "\(format)")
                #expect(r.stderr.contains("incomplete log: the run did not finish") && r.stderr.contains(cut), "\(r.stderr)")
                #expect(r.stdout.isEmpty, "\(format): \(r.stdout)")
                let allowed = try slotdiff(["report", cut, "--format", format, "--allow-incomplete"])
                #expect(allowed.status == 0 && allowed.stderr.contains("warning") && allowed.stderr.contains(cut), "\(allowed.stderr)")
            }
            // Complete frames but no closing record (a run that never finished).
            let open = path("open.jsonl.zst")
            let w = try DiffLogWriter(path: open)
            try DiffLogReader(path: log).forEach { try w.write($0) }
            try w.close()
            let r = try slotdiff(["report", open, log])
            #expect(r.status == 2 && r.stderr.contains("incomplete log") && r.stderr.contains(open), "\(r.stderr)")
            // Two logs joined into one file.
            let joined = path("joined.jsonl.zst")
            try (whole + whole).write(to: URL(fileURLWithPath: joined))
            let j = try slotdiff(["report", joined])
            #expect(j.status == 2 && j.stderr.contains("after the closing record"), "\(j.stderr)")
        }
    }
}

/// SIGTERM (what Kubernetes sends) is Ctrl-C: the check stops after the pass under way, with
/// a readable log, a checkpoint and a partial summary; --resume finishes it.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct TerminationTests {
    @Test func sigtermStopsAndResumeFinishes() async throws {
        try await offPool {
            try TestServers.start("fc-term", .redis7, port: 17601, load: TestPaths.fixture("drift-source.rdb"))
            defer { TestServers.stop("fc-term") }
            let dir = TestPaths.temporaryDirectory()
            let log = dir.appendingPathComponent("t.jsonl.zst").path
            let args = [
                "compare", "redis://127.0.0.1:17601", TestPaths.fixture("drift-target.rdb"), "--passes", "4", "--qps", "200",
                "--round-delay", "20ms", "--out", log, "--quiet"
            ]
            let bg = try Background(TestPaths.slotdiffBinary, args)
            // Once the run holds its lock its signal handlers are in place (a loaded machine may
            // take more than a second to get there); then into the first passes.
            let lock = dir.appendingPathComponent("t.lock").path
            for _ in 0..<300 where !FileManager.default.fileExists(atPath: lock) { usleep(100_000) }
            usleep(1_000_000)
            bg.signal(SIGTERM)
            let first = bg.wait(timeout: 120)
            #expect(first.status == 2, "\(first.stdout) \(first.stderr)")
            #expect(first.stderr.contains("SIGTERM") && first.stderr.contains("passes left") && first.stderr.contains("--resume"), "\(first.stderr)")
            let reader = DiffLogReader(path: log)
            try reader.forEach { _ in }
            #expect(!reader.complete && reader.end == nil)
            #expect(FileManager.default.fileExists(atPath: dir.appendingPathComponent("t.checkpoint.json").path))
            let partial = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("t.summary.json"))) as! [String: Any]
            #expect(partial["result"] as? String == "interrupted" && (partial["passes_left"] as? Int ?? 0) > 0, "\(partial)")
            let report = try slotdiff(["report", log])
            #expect(report.status == 2 && report.stderr.contains("incomplete"), "\(report.stderr)")

            let resumed = try slotdiff(args + ["--resume"], timeout: 300)
            #expect(resumed.status == 1, "\(resumed.stdout) \(resumed.stderr)")
            let done = DiffLogReader(path: log)
            var n = 0
            try done.forEach { _ in n += 1 }
            #expect(done.complete && done.consistent && n > 0, "\(n) lines, end \(String(describing: done.end))")
            #expect(try slotdiff(["report", log]).status == 0)

            // A second signal ends at once: 128 + the signal (sent together, so the run cannot wind
            // down in between; which of the two is handled second is up to the system).
            let again = try Background(TestPaths.slotdiffBinary, args.map { $0 == log ? dir.appendingPathComponent("u.jsonl.zst").path : $0 })
            usleep(1_000_000)
            again.signal(SIGINT)
            again.signal(SIGTERM)
            let second = again.wait(timeout: 60)
            #expect(second.status == 128 + SIGTERM || second.status == 128 + SIGINT, "\(second.status) \(second.stderr)")
        }
    }
}

@Suite struct WatchTerminationTests {
    /// SIGTERM during a watch: it ends after the pass under way, like Ctrl-C, with the trend
    /// written and every pass's log complete.
    @Test func sigtermEndsTheWatchCleanly() async throws {
        try await offPool {
            let (r, seconds, dir) = try watchStopped(by: SIGTERM)
            #expect(seconds < 10)
            #expect(r.status == 1 && r.stderr.contains("SIGTERM"), "\(r.status) \(r.stdout) \(r.stderr)")
            let trend = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/trend.json"))) as! [String: Any]
            #expect((trend["runs"] as! [Any]).count == 1)
            let log = DiffLogReader(path: dir + "/run-0001.jsonl.zst")
            try log.forEach { _ in }
            #expect(log.complete && log.consistent)
        }
    }
}
