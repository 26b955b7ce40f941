import Foundation
import SlotdiffCore
import TestSupport
import Testing

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    private var n = 0
    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
    /// Writes the writer made (both sides).
    var writes: Int { lock.withLock { n } }
    func wrote() { lock.withLock { n += 1 } }
}

/// A watch of three runs while a writer keeps changing one key on both sides: the writer's
/// transient differences never become drift; a key changed on one side only is different in
/// every run.
@Suite(.serialized, .enabled(if: TestServers.available, "server binaries missing: run Scripts/setup"))
struct WatchTests {
    @Test func threeRunsSeparateTrafficFromDrift() async throws {
        try await offPool {
            try TestServers.start("wt-a", .redis7, port: 17361, load: TestPaths.fixture("dataset-redis7.rdb"))
            try TestServers.start("wt-b", .valkey8, port: 17362, load: TestPaths.fixture("dataset-valkey8.rdb"))
            defer { TestServers.stop("wt-a"); TestServers.stop("wt-b") }
            try TestServers.cli(port: 17362, ["SET", "watch:drift", "target only"])
            let dir = TestPaths.temporaryDirectory().appendingPathComponent("watch").path
            let stop = Flag()
            let writerDone = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                var i = 0
                while !stop.isSet {
                    i += 1
                    _ = try? TestServers.cli(port: 17361, ["SET", "watch:writer", "v\(i)"])
                    _ = try? TestServers.cli(port: 17362, ["SET", "watch:writer", "v\(i)"])
                    stop.wrote()
                }
                writerDone.signal()
            }
            let r = try slotdiff(
                [
                    "watch", "redis://127.0.0.1:17361", "redis://127.0.0.1:17362", "--every", "1s", "--count", "3",
                    "--dir", dir, "--round-delay", "300ms", "--drift-after", "3"
                ], timeout: 300)
            stop.set()
            writerDone.wait()
            #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
            #expect(r.stdout.split(separator: "\n").filter { $0.hasPrefix("run ") }.count == 3, "\(r.stdout)")
            #expect(r.stdout.contains("1 keys drifting"), "\(r.stdout)")
            let trend = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/trend.json"))) as! [String: Any]
            let runs = trend["runs"] as! [[String: Any]]
            #expect(runs.count == 3)
            let keys = trend["keys"] as! [[String: Any]]
            let drift = keys.first { $0["key"] as? String == "watch:drift" }
            #expect(drift?["consecutive_runs"] as? Int == 3 && drift?["drift"] as? Bool == true, "\(keys)")
            // The writer was at work through the runs (else the next line would prove nothing),
            // and its key, written to both sides, is traffic, not drift.
            #expect(stop.writes >= 20, "the writer made only \(stop.writes) writes")
            let last = try TestServers.cli(port: 17361, ["GET", "watch:writer"])
            #expect(last == (try TestServers.cli(port: 17362, ["GET", "watch:writer"])) && last.hasPrefix("v"))
            let writer = keys.first { $0["key"] as? String == "watch:writer" }
            #expect((writer?["consecutive_runs"] as? Int ?? 0) < 3, "a key written to both sides is traffic, not drift: \(keys)")
            for n in 1...3 {
                #expect(FileManager.default.fileExists(atPath: dir + String(format: "/run-%04d.jsonl.zst", n)))
                #expect(FileManager.default.fileExists(atPath: dir + String(format: "/run-%04d.summary.json", n)))
            }
        }
    }
}

@Suite struct WatchInterruptTests {
    /// Ctrl-C during a watch: it ends after the run under way, with the trend written.
    @Test func ctrlCEndsTheWatchCleanly() async throws {
        try await offPool {
            let (r, seconds, dir) = try watchStopped(by: SIGINT)
            #expect(seconds < 10)
            #expect(r.status == 1, "\(r.stdout) \(r.stderr)")
            let trend = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir + "/trend.json"))) as! [String: Any]
            #expect((trend["runs"] as! [Any]).count == 1)
            // Resumed, the watch goes on from run 2 and the streaks continue.
            let again = try slotdiff([
                "watch", TestPaths.fixture("drift-source.rdb"), TestPaths.fixture("drift-target.rdb"),
                "--every", "1s", "--count", "1", "--dir", dir, "--resume", "--drift-after", "2"
            ])
            #expect(again.status == 1)
            #expect(again.stdout.hasPrefix("run 2 "), "\(again.stdout)")
            #expect(again.stdout.contains("37 keys drifting"), "\(again.stdout)")
            #expect(FileManager.default.fileExists(atPath: dir + "/run-0002.jsonl.zst"))
        }
    }
}
