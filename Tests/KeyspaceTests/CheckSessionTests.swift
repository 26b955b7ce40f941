import Foundation
import NIOConcurrencyHelpers
import SlotdiffCore
import TestSupport
import Testing

@testable import Keyspace

/// The check session in-process, on the drift pair's dump files: what it writes (log, summary,
/// checkpoint), a run stopped between passes and resumed, and a checkpoint of another check.
struct CheckSessionTests {
    let dir = TestPaths.temporaryDirectory()
    func p(_ n: String) -> String { dir.appendingPathComponent(n).path }

    func session(_ name: String, passes: Int = 4, ttlToleranceMs: Int64 = 1000) -> CheckSession {
        var options = CheckOptions()
        options.passes = passes
        options.workers = 2
        options.rule = DifferenceRule(ttlToleranceMs: ttlToleranceMs)
        return CheckSession(
            source: .init(spec: TestPaths.fixture("drift-source.rdb")), target: .init(spec: TestPaths.fixture("drift-target.rdb")),
            options: options, live: LiveOptions(),
            outputs: CheckOutputs(
                log: p("\(name).jsonl.zst"), summary: p("\(name).summary.json"),
                checkpoint: p("\(name).checkpoint.json")))
    }

    func lines(_ log: String) throws -> [String] {
        var out: [String] = []
        try DiffLogReader(path: log).forEach { out.append($0.jsonLine()) }
        return out
    }

    /// Passes the checkpoint records as done.
    func donePasses(_ name: String) -> Int {
        guard let d = FileManager.default.contents(atPath: p("\(name).checkpoint.json")),
            let c = try? JSONDecoder().decode(CheckSession.Checkpoint.self, from: d)
        else { return 0 }
        return c.done.count
    }

    @Test func writesTheLogSummaryAndCheckpoint() async throws {
        let observed = NIOLockedValueBox<[String]>([])
        let s = try await session("whole").run(observe: { d in observed.withLockedValue { $0.append(d.jsonLine()) } })
        #expect(s.counts.totalDifferences > 0)
        #expect(s.passes == 4)
        let logged = try lines(p("whole.jsonl.zst"))
        #expect(logged.count == s.counts.totalDifferences)
        #expect(Set(logged) == Set(observed.withLockedValue { $0 }))
        let reader = DiffLogReader(path: p("whole.jsonl.zst"))
        try reader.scan()
        #expect(reader.complete && reader.consistent)
        // The summary file is the typed summary, read back whole.
        let back = try Summary(json: Data(contentsOf: URL(fileURLWithPath: p("whole.summary.json"))))
        #expect(back.counts == s.counts)
        #expect(back.passes == 4 && back.result == "differences" && back.log == p("whole.jsonl.zst"))
        #expect(back.source.spec == TestPaths.fixture("drift-source.rdb"))
        #expect(donePasses("whole") == 4)
    }

    @Test func stoppedBetweenPassesThenResumedGivesTheWholeResult() async throws {
        let whole = try await session("ref").run()
        let want = try lines(p("ref.jsonl.zst"))
        let name = "part"
        let stop: @Sendable () -> Bool = { [self] in donePasses(name) >= 2 }
        do {
            _ = try await session(name).run(stop: stop)
            Issue.record("a run asked to stop after 2 passes ran all 4")
        } catch let e as SlotdiffError {
            #expect(e.code == .interrupted)
            #expect(e.message.contains("2 of 4 passes left"))
        }
        let partial = try Summary(json: Data(contentsOf: URL(fileURLWithPath: p("\(name).summary.json"))))
        #expect(partial.interruptedPassesLeft == 2 && partial.result == "interrupted")
        let reader = DiffLogReader(path: p("\(name).jsonl.zst"))
        try reader.scan()
        #expect(!reader.complete)

        let resumed = try await session(name).run(resume: true)
        #expect(resumed.counts == whole.counts)
        #expect(try lines(p("\(name).jsonl.zst")).sorted() == want.sorted())
    }

    @Test func aCheckpointOfAnotherCheckIsRefused() async throws {
        _ = try await session("other").run()
        do {
            _ = try await session("other", ttlToleranceMs: 5000).run(resume: true)
            Issue.record("a checkpoint made with another --ttl-tolerance was resumed")
        } catch let e as SlotdiffError {
            #expect(e.code == .usage)
            #expect(e.message.contains("belongs to another check"))
        }
        do {
            _ = try await session("absent").run(resume: true)
            Issue.record("--resume without a checkpoint ran")
        } catch let e as SlotdiffError {
            #expect(e.code == .usage && e.message.contains("no checkpoint"))
        }
    }

    @Test func outputsThatAreInputsAreRefusedBeforeAnythingIsRead() async throws {
        var s = session("x")
        s.outputs.summary = TestPaths.fixture("drift-target.rdb")
        let before = try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("drift-target.rdb")))
        do {
            _ = try await s.run()
            Issue.record("an input was accepted as the summary")
        } catch let e as SlotdiffError {
            #expect(e.code == .usage && e.message.contains("an input is never overwritten"))
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: TestPaths.fixture("drift-target.rdb"))) == before)
        #expect(!FileManager.default.fileExists(atPath: p("x.jsonl.zst")))
    }
}
