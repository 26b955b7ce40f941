import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// What the tests compare: a log's difference lines, sorted, and a summary's counts.
enum RunResultFiles {
    static func lines(_ log: String) throws -> [String] {
        var out: [String] = []
        try DiffLogReader(path: log).forEach { out.append($0.jsonLine()) }
        return out.sorted()
    }

    static func counts(_ summaryPath: String) throws -> [String: String] {
        let s = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: summaryPath))) as! [String: Any]
        var out: [String: String] = [:]
        for k in ["result", "differences", "differences_total", "compared", "matched", "expired", "filtered_out", "passes"] {
            let v = try JSONSerialization.data(withJSONObject: [s[k] ?? NSNull()], options: .sortedKeys)
            out[k] = String(decoding: v, as: UTF8.self)
        }
        for side in ["source", "target"] { out[side + ".keys"] = "\((s[side] as? [String: Any])?["keys"] ?? "none")" }
        return out
    }

    static var hostName: String {
        var buf = [CChar](repeating: 0, count: 256)
        gethostname(&buf, buf.count - 1)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Waits (up to `seconds`) until `path` exists.
    static func waitFor(_ path: String, seconds: Double = 30) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if FileManager.default.fileExists(atPath: path) { return true }
            usleep(10_000)
        }
        return false
    }

    /// Waits (up to 30 s) until the lock file at `path` holds its holder, and returns it.
    static func waitForLock(_ path: String) -> [String: Any] {
        for _ in 0..<1500 {
            if let d = FileManager.default.contents(atPath: path), let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any] {
                return o
            }
            usleep(20_000)
        }
        return [:]
    }

    /// Waits until the checkpoint records `n` finished passes.
    static func waitForPasses(_ checkpoint: String, _ n: Int) {
        for _ in 0..<1500 {
            if let d = FileManager.default.contents(atPath: checkpoint),
                let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any]
            {
                let done = (o["done"] as? [String: Any])?.count ?? ((o["done"] as? [Any])?.count ?? 0) / 2
                if done >= n { return }
            }
            usleep(20_000)
        }
    }

    /// The refusal of a second run: exit 2 at once, naming this host and the holder's pid. "At
    /// once" is well under the 30 s after which a silent lock counts as stale: a start of the
    /// process on a loaded 2-core machine takes a second or more.
    static func expectRefused(_ args: [String], holder: pid_t, _ note: String) throws {
        let t0 = Date()
        let r = try slotdiff(args)
        let took = Date().timeIntervalSince(t0)
        #expect(r.status == 2, "\(note): \(r.stdout) \(r.stderr)")
        #expect(took < 5.0, "\(note): refused after \(took) s")
        #expect(
            r.stderr.contains("in use by another run") && r.stderr.contains("host \(hostName)")
                && r.stderr.contains("pid \(holder)"), "\(note): \(r.stderr)")
    }
}

/// One run per log, live: while a slow run (a live server read at a bounded rate, against a
/// dump file) holds its log, a second run on the same outputs is refused at once and the first
/// ends exactly as a run alone; a run killed (SIGKILL, or a second Ctrl-C) leaves a lock that
/// --resume takes over, ending with the result of an uninterrupted run.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct RunLockLiveTests {
    typealias F = RunResultFiles
    let dir = TestPaths.temporaryDirectory()
    func p(_ n: String) -> String { dir.appendingPathComponent(n).path }
    let source = "redis://127.0.0.1:17801"
    let target = TestPaths.fixture("drift-target.rdb")
    var common: [String] { ["compare", source, target, "--passes", "4", "--round-delay", "300ms", "--quiet"] }
    let slow = ["--qps", "300", "--batch", "8"]

    /// A run alone, for the runs under test to equal: its log lines (the 37 differences) and
    /// summary counts.
    func reference() throws -> (lines: [String], counts: [String: String]) {
        let ref = try slotdiff(common + ["--out", p("ref.jsonl.zst")])
        #expect(ref.status == 1, "\(ref.stderr)")
        let lines = try F.lines(p("ref.jsonl.zst"))
        #expect(lines.count == 37)
        return (lines, try F.counts(p("ref.summary.json")))
    }

    @Test func aSecondRunOnTheSameLogIsRefusedAndTheFirstIsExact() async throws {
        try await offPool { [self] in
            try TestServers.start("lk-src", .redis7, port: 17801, load: TestPaths.fixture("drift-source.rdb"))
            defer { TestServers.stop("lk-src") }
            let (want, wantCounts) = try reference()

            let log = p("one.jsonl.zst")
            let first = try Background(TestPaths.slotdiffBinary, common + slow + ["--out", log])
            let lock = F.waitForLock(p("one.lock"))
            #expect(lock["pid"] as? Int == Int(first.pid) && lock["host"] as? String == F.hostName, "\(lock)")
            #expect(lock["started"] is String && lock["heartbeat"] is String && lock["flock"] as? Bool == true, "\(lock)")
            // The same command again, a retried pod's --resume, and a second run on dump files only.
            try F.expectRefused(common + ["--out", log], holder: first.pid, "same command")
            try F.expectRefused(common + ["--out", log, "--resume"], holder: first.pid, "--resume")
            try F.expectRefused(["compare", TestPaths.fixture("drift-source.rdb"), target, "--out", log, "--quiet"], holder: first.pid, "dump files")
            // Another log but the same checkpoint: refused too.
            try F.expectRefused(
                common + ["--out", p("other.jsonl.zst"), "--checkpoint", p("one.checkpoint.json")],
                holder: first.pid, "same --checkpoint")
            #expect(!FileManager.default.fileExists(atPath: p("other.jsonl.zst")), "a refused run wrote its log")
            let r = first.wait()
            #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
            #expect(!r.stderr.contains("warning"), "\(r.stderr)")
            #expect(try F.lines(log) == want)
            #expect(try F.counts(p("one.summary.json")) == wantCounts)
            #expect(!FileManager.default.fileExists(atPath: p("one.lock")), "the lock was left behind")
        }
    }

    @Test func aKilledRunsLockIsTakenOverByResume() async throws {
        try await offPool { [self] in
            try TestServers.start("lk-src", .redis7, port: 17801, load: TestPaths.fixture("drift-source.rdb"))
            defer { TestServers.stop("lk-src") }
            let (want, wantCounts) = try reference()

            // SIGKILL, and a second Ctrl-C (which ends the process at once): both leave the lock.
            for how in ["kill", "twice"] {
                let log = p("\(how).jsonl.zst")
                let bg = try Background(TestPaths.slotdiffBinary, common + slow + ["--out", log])
                F.waitForPasses(p("\(how).checkpoint.json"), 1)
                if how == "kill" {
                    bg.signal(SIGKILL)
                } else {
                    bg.signal(SIGINT)
                    usleep(100_000)
                    bg.signal(SIGINT)
                }
                let first = bg.wait()
                #expect(first.status == (how == "kill" ? 128 + SIGKILL : 130), "\(how): \(first.stdout) \(first.stderr)")
                #expect(FileManager.default.fileExists(atPath: p("\(how).lock")), "\(how): no lock left behind")
                let t0 = Date()
                let resumed = try slotdiff(common + ["--out", log, "--resume"])
                #expect(resumed.status == 1, "\(how): \(resumed.stdout) \(resumed.stderr)")
                #expect(resumed.stderr.contains("took over the lock") && resumed.stderr.contains("pid \(bg.pid)"), "\(how): \(resumed.stderr)")
                #expect(Date().timeIntervalSince(t0) < 25, "\(how): the takeover waited for the stale bound")
                #expect(try F.lines(log) == want, "\(how)")
                #expect(try F.counts(p("\(how).summary.json")) == wantCounts, "\(how)")
                #expect(!FileManager.default.fileExists(atPath: p("\(how).lock")), "\(how): the lock was left behind")
            }
        }
    }
}

/// One run per log with dump files only (one side read from a FIFO, so the first run waits
/// until the test feeds it), and the lock rules on lock files left by others.
@Suite struct RunLockTests {
    typealias F = RunResultFiles
    let dir = TestPaths.temporaryDirectory()
    func p(_ n: String) -> String { dir.appendingPathComponent(n).path }
    let source = TestPaths.fixture("drift-source.rdb")
    let target = TestPaths.fixture("drift-target.rdb")

    /// Writes `file` into the FIFO once a reader has opened it.
    func feed(_ fifo: String, _ file: String) throws {
        var fd: Int32 = -1
        for _ in 0..<1500 {
            fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 { break }
            usleep(20_000)
        }
        #expect(fd >= 0, "nobody opened the FIFO")
        guard fd >= 0 else { return }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        data.withUnsafeBytes { b in
            var off = 0
            while off < b.count {
                let n = write(fd, b.baseAddress! + off, b.count - off)
                if n <= 0 { break }
                off += n
            }
        }
        close(fd)
    }

    func makeFifo() -> String {
        let fifo = p("slow-source.rdb")
        #expect(mkfifo(fifo, 0o600) == 0)
        return fifo
    }

    @Test func twoDumpFileRunsOnOneLog() async throws {
        try await offPool { [self] in
            // A pipe cannot be read again to explain differences: both runs leave explanations out.
            let ref = try slotdiff(["compare", source, target, "--out", p("ref.jsonl.zst"), "--quiet", "--explain", "0"])
            #expect(ref.status == 1)
            let want = try F.lines(p("ref.jsonl.zst"))
            let wantCounts = try F.counts(p("ref.summary.json")).filter { $0.key != "source.keys" && $0.key != "target.keys" }

            let fifo = makeFifo()
            let log = p("one.jsonl.zst")
            let first = try Background(TestPaths.slotdiffBinary, ["compare", fifo, target, "--out", log, "--quiet", "--explain", "0"])
            #expect(!F.waitForLock(p("one.lock")).isEmpty, "the first run took no lock")
            try F.expectRefused(["compare", source, target, "--out", log, "--quiet"], holder: first.pid, "dump files")
            try F.expectRefused(["compare", source, target, "--out", log, "--quiet", "--resume"], holder: first.pid, "--resume")
            try feed(fifo, source)
            let r = first.wait(timeout: 120)
            #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
            #expect(try F.lines(log) == want)
            #expect(try F.counts(p("one.summary.json")).filter { $0.key != "source.keys" && $0.key != "target.keys" } == wantCounts)
            #expect(!FileManager.default.fileExists(atPath: p("one.lock")))
        }
    }

    /// A checkpoint kept away from the log is locked where it lies: a run with another log but
    /// the same --checkpoint is refused.
    @Test func aCheckpointElsewhereIsLockedToo() async throws {
        try await offPool { [self] in
            let fifo = makeFifo()
            let state = p("state")
            try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
            let first = try Background(
                TestPaths.slotdiffBinary,
                [
                    "compare", fifo, target, "--out", p("a.jsonl.zst"),
                    "--checkpoint", state + "/cp.json", "--quiet"
                ])
            #expect(!F.waitForLock(state + "/cp.json.lock").isEmpty && !F.waitForLock(p("a.lock")).isEmpty)
            try F.expectRefused(
                ["compare", source, target, "--out", p("b.jsonl.zst"), "--checkpoint", state + "/cp.json", "--quiet"],
                holder: first.pid, "same checkpoint")
            try F.expectRefused(["compare", source, target, "--out", p("a.jsonl.zst"), "--quiet"], holder: first.pid, "same log")
            #expect(!FileManager.default.fileExists(atPath: p("b.jsonl.zst")))
            try feed(fifo, source)
            #expect(first.wait(timeout: 120).status == 1)
            #expect(!FileManager.default.fileExists(atPath: state + "/cp.json.lock") && !FileManager.default.fileExists(atPath: p("a.lock")))
        }
    }

    func localFileSystem(_ path: String) -> Bool {
        guard let r = try? run("/usr/bin/stat", ["-f", "-c", "%T", path]), r.status == 0 else { return false }
        return ["ext2/ext3", "xfs", "btrfs", "tmpfs"].contains(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    func writeLock(_ path: String, host: String, pid: Int32, heartbeat: Date, flock: Bool = true) throws {
        let f = ISO8601DateFormatter()
        let o: [String: Any] = [
            "host": host, "pid": Int(pid), "started": f.string(from: heartbeat.addingTimeInterval(-60)),
            "heartbeat": f.string(from: heartbeat), "flock": flock, "token": UUID().uuidString
        ]
        try JSONSerialization.data(withJSONObject: o, options: .sortedKeys).write(to: URL(fileURLWithPath: path))
        try FileManager.default.setAttributes([.modificationDate: heartbeat], ofItemAtPath: path)
    }

    /// Locks left by others: refused while their holder may live, taken over when it is gone.
    @Test func lockFilesLeftByOthers() async throws {
        try await offPool { [self] in
            let log = p("x.jsonl.zst"), lock = p("x.lock")
            let run = ["compare", source, target, "--out", log, "--quiet"]
            // Another host (on a file system without flock), heartbeat fresh: refused, the file untouched.
            try writeLock(lock, host: "elsewhere-7", pid: 4242, heartbeat: Date(), flock: false)
            let before = FileManager.default.contents(atPath: lock)
            let busy = try slotdiff(run)
            #expect(busy.status == 2 && busy.stderr.contains("host elsewhere-7, pid 4242") && busy.stderr.contains("--force-unlock"), "\(busy.stderr)")
            #expect(FileManager.default.contents(atPath: lock) == before && !FileManager.default.fileExists(atPath: log))
            // The operator who knows: --force-unlock.
            let forced = try slotdiff(run + ["--force-unlock"])
            #expect(
                forced.status == 1 && forced.stderr.contains("--force-unlock: removing the lock") && forced.stderr.contains("elsewhere-7"), "\(forced.stderr)")
            #expect(!FileManager.default.fileExists(atPath: lock))
            // Another host, no heartbeat for ten minutes: taken over.
            try writeLock(lock, host: "elsewhere-7", pid: 4242, heartbeat: Date().addingTimeInterval(-600), flock: false)
            let stale = try slotdiff(run)
            #expect(stale.status == 1 && stale.stderr.contains("took over the lock") && stale.stderr.contains("no heartbeat"), "\(stale.stderr)")
            #expect(!FileManager.default.fileExists(atPath: lock))
            // Another host name (a pod on this node) that held the flock, on a local file system
            // (ext4 or tmpfs here): its flock is free, so it has ended.
            if localFileSystem(dir.path) {
                try writeLock(lock, host: "pod-on-this-node", pid: 4242, heartbeat: Date(), flock: true)
                let freed = try slotdiff(run)
                #expect(freed.status == 1 && freed.stderr.contains("its flock was released"), "\(freed.stderr)")
            }
            // This host, a pid that no longer runs (no flock: a file system without it): taken over at once.
            let dead = try Background("/bin/true", [])
            _ = dead.wait()
            try writeLock(lock, host: F.hostName, pid: dead.pid, heartbeat: Date(), flock: false)
            let takeover = try slotdiff(run)
            #expect(takeover.status == 1 && takeover.stderr.contains("pid \(dead.pid) no longer runs"), "\(takeover.stderr)")
            // This host, a live pid, no flock, a fresh heartbeat: refused.
            try writeLock(lock, host: F.hostName, pid: getpid(), heartbeat: Date(), flock: false)
            let live = try slotdiff(run)
            #expect(live.status == 2 && live.stderr.contains("pid \(getpid())"), "\(live.stderr)")
            // Not a lock: never overwritten.
            try Data("my notes\n".utf8).write(to: URL(fileURLWithPath: lock))
            let notLock = try slotdiff(run)
            #expect(notLock.status == 2 && notLock.stderr.contains("not a slotdiff lock"), "\(notLock.stderr)")
            #expect(FileManager.default.contents(atPath: lock) == Data("my notes\n".utf8))
        }
    }

    /// A run whose lock is removed (--force-unlock by another run) stops at its next heartbeat
    /// rather than write on.
    @Test func aRunWhoseLockIsRemovedStops() async throws {
        try await offPool { [self] in
            let fifo = makeFifo()
            let log = p("one.jsonl.zst")
            let first = try Background(TestPaths.slotdiffBinary, ["compare", fifo, target, "--out", log, "--quiet"])
            #expect(!F.waitForLock(p("one.lock")).isEmpty)
            let forced = try slotdiff(["compare", source, target, "--out", log, "--quiet", "--force-unlock"])
            #expect(forced.status == 1 && forced.stderr.contains("pid \(first.pid)"), "\(forced.stderr)")
            let r = first.wait(timeout: 20)
            #expect(r.status == 2 && r.stderr.contains("the lock") && r.stderr.contains("stops at once"), "\(r.stderr)")
            // Nothing was written over the second run's log.
            let want = try slotdiff(["compare", source, target, "--out", p("ref.jsonl.zst"), "--quiet"])
            #expect(want.status == 1)
            #expect(try F.lines(log) == F.lines(p("ref.jsonl.zst")))
            // Unblock nothing: the first run is gone; the FIFO has no reader.
            #expect(open(fifo, O_WRONLY | O_NONBLOCK) < 0)
        }
    }

    /// Two watches on one --dir: the second is refused; the first goes on.
    @Test func aSecondWatchOnOneDirIsRefused() async throws {
        try await offPool { [self] in
            let wdir = p("watch")
            let args = ["watch", source, target, "--every", "60s", "--dir", wdir]
            let first = try Background(TestPaths.slotdiffBinary, args)
            let lock = F.waitForLock(wdir + "/watch.lock")
            #expect(lock["pid"] as? Int == Int(first.pid))
            let t0 = Date()
            let second = try slotdiff(args + ["--count", "1"])
            // At once, not after a run of 60 s: a process start on a loaded 2-core machine took 1.1 s.
            #expect(Date().timeIntervalSince(t0) < 5.0)
            #expect(second.status == 2 && second.stderr.contains("in use by another run") && second.stderr.contains("pid \(first.pid)"), "\(second.stderr)")
            #expect(F.waitFor(wdir + "/trend.json"))
            first.signal(SIGINT)
            let r = first.wait(timeout: 30)
            #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
            #expect(!FileManager.default.fileExists(atPath: wdir + "/watch.lock"))
            #expect(!FileManager.default.fileExists(atPath: wdir + "/run-0002.jsonl.zst"), "the refused watch wrote a run")
        }
    }
}
