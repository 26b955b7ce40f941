import Foundation
import SlotdiffCore
import TestSupport
import Testing

/// A check killed mid-run and resumed, and one stopped with Ctrl-C and resumed, end with the
/// same result as an uninterrupted run: finished passes are not read again, and the log holds
/// each difference once.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct ResumeTests {
    func lines(_ log: String) throws -> [String] {
        var out: [String] = []
        try DiffLogReader(path: log).forEach { out.append($0.jsonLine()) }
        return out
    }

    func summary(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
    }

    /// Waits until the checkpoint records `n` finished passes.
    func waitForPasses(_ checkpoint: String, _ n: Int) {
        for _ in 0..<600 {
            if let d = FileManager.default.contents(atPath: checkpoint),
                let o = try? JSONSerialization.jsonObject(with: d) as? [String: Any]
            {
                // [Int: …] is written as an object or as a flat key/value array, by Foundation version.
                let done = (o["done"] as? [String: Any])?.count ?? ((o["done"] as? [Any])?.count ?? 0) / 2
                if done >= n { return }
            }
            usleep(20_000)
        }
    }

    @Test func killedAndInterruptedRunsResumeToTheSameResult() async throws {
        try await offPool { [self] in
            try TestServers.start("rs-src", .redis7, port: 17381, load: TestPaths.fixture("drift-source.rdb"))
            try TestServers.start("rs-dst", .valkey8, port: 17382, load: TestPaths.fixture("drift-target.rdb"))
            defer { TestServers.stop("rs-src"); TestServers.stop("rs-dst") }
            let dir = TestPaths.temporaryDirectory()
            func p(_ n: String) -> String { dir.appendingPathComponent(n).path }
            let common = ["redis://127.0.0.1:17381", "redis://127.0.0.1:17382", "--passes", "4", "--round-delay", "20ms"]
            let whole = try slotdiff(["compare"] + common + ["--out", p("whole.jsonl.zst")])
            #expect(whole.status == 1)
            let want = try lines(p("whole.jsonl.zst"))
            #expect(want.count == 37)
            let wantSummary = try summary(p("whole.summary.json"))

            // Killed or interrupted after the first pass; and interrupted while the standalone
            // servers are still being read once for all passes (about 3 s at this rate): that
            // reading ends early and every pass is left to --resume.
            for how in ["kill", "interrupt", "early"] {
                let log = p("\(how).jsonl.zst")
                let slow = ["--qps", "250", "--batch", "8"]
                let bg = try Background(TestPaths.slotdiffBinary, ["compare"] + common + slow + ["--out", log])
                if how == "early" {
                    // The checkpoint is written before the reading starts (and after Ctrl-C is
                    // handled): a fixed delay raced the start of a process on a loaded machine.
                    for _ in 0..<500 where !FileManager.default.fileExists(atPath: p("\(how).checkpoint.json")) { usleep(10_000) }
                    usleep(300_000)
                } else {
                    waitForPasses(p("\(how).checkpoint.json"), 1)
                }
                let signalled = Date()
                bg.signal(how == "kill" ? SIGKILL : SIGINT)
                let first = bg.wait()
                #expect(how == "kill" ? first.status == 128 + SIGKILL : first.status == 2, "\(how): \(first.stdout) \(first.stderr)")
                if how != "kill" {
                    #expect(first.stderr.contains("--resume"), "\(first.stderr)")
                    let partial = try summary(p("\(how).summary.json"))
                    #expect(partial["result"] as? String == "interrupted" && (partial["passes_left"] as? Int ?? 0) > 0)
                    if how == "early" {
                        #expect(partial["passes_left"] as? Int == 4)
                        #expect(Date().timeIntervalSince(signalled) < 1.5, "the reading did not stop early")
                    }
                }
                let resumed = try slotdiff(["compare"] + common + ["--out", log, "--resume"])
                #expect(resumed.status == 1, "\(how): \(resumed.stdout) \(resumed.stderr)")
                let got = try lines(log)
                #expect(got.count == want.count && Set(got) == Set(want), "\(how): \(got.count) lines")
                let s = try summary(p("\(how).summary.json"))
                for k in ["differences_total", "compared", "matched", "expired"] {
                    #expect(s[k] as? Int == wantSummary[k] as? Int, "\(how): \(k)")
                }
                #expect((s["source"] as! [String: Any])["keys"] as? Int == 230)
            }
            // A checkpoint of another check is refused.
            let other = try slotdiff(["compare"] + common + ["--out", p("kill.jsonl.zst"), "--resume", "--type", "hash"])
            #expect(other.status == 2 && other.stderr.contains("another check"), "\(other.stderr)")
        }
    }
}
