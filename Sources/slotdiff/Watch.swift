import ArgumentParser
import Foundation
import Keyspace
import RDB
import SlotdiffCore

extension Slotdiff {
    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Repeat the check on a schedule during a dual-write period and follow the trend.",
            discussion: """
                Each run writes DIR/run-NNNN.jsonl.zst and its summary; DIR/trend.json holds the differences per \\
                kind per run and, for every key still different, in how many consecutive runs it was. A run \\
                never overlaps the previous one. A run that cannot be done is recorded and the watch goes on. \\
                Exit status after the last run (--count): 0 it matched, 1 differences, 2 it could not be done.
                """
        )

        @OptionGroup var check: CheckArguments

        @Option(help: "Start a run this often (e.g. 10m, 30s); a run that takes longer is followed at once by the next.")
        var every: DurationArg = DurationArg(argument: "10m")!

        @Option(help: "Directory for the runs' logs, summaries and trend.json.")
        var dir: String = "slotdiff-watch"

        @Option(help: "Stop after this many runs (default: run until interrupted).")
        var count: Int?

        @Option(help: "A key different in this many consecutive runs is reported as drift.")
        var driftAfter: Int = 5

        @Flag(help: "Continue the watch whose trend.json is in --dir (run numbers and streaks go on).")
        var resume = false

        @Option(help: "Serve Prometheus metrics at http://HOST:PORT/metrics.")
        var metricsPort: Int?

        @Option(help: "Address the metrics server listens on.")
        var metricsHost: String = "0.0.0.0"

        @Flag(help: "Remove the lock of another watch on --dir (DIR/watch.lock) and go on; only when that watch is known to be gone.")
        var forceUnlock = false

        func validate() throws {
            if every.milliseconds < 1 { throw ValidationError("--every \(every.text): must be more than 0 (e.g. 30s, 10m)") }
            if let count, count < 1 { throw ValidationError("--count \(count): must be at least 1 run") }
            if driftAfter < 1 { throw ValidationError("--drift-after \(driftAfter): must be at least 1 run") }
            if let metricsPort, !(1...65535).contains(metricsPort) {
                throw ValidationError("--metrics-port \(metricsPort): must be a TCP port, 1 to 65535")
            }
        }

        func run() async throws {
            let trendPath = (dir as NSString).appendingPathComponent("trend.json")
            let lockPath = (dir as NSString).appendingPathComponent("watch.lock")
            TerminalLogHandler.bootstrap(level: check.logLevel)
            let lock: RunLock
            let template: CheckSession
            do {
                template = try check.session(CheckOutputs(log: "", summary: ""))
                // Nothing is read or written before the outputs are known to be writable and
                // none of them is an input.
                let files = try template.dumpFiles()
                var isDir: ObjCBool = false
                if FileManager.default.fileExists(atPath: dir, isDirectory: &isDir) && !isDir.boolValue {
                    throw SlotdiffError(.usage, "--dir \(dir): not a directory")
                }
                for case let f? in [files.source, files.target] {
                    for p in f.paths where p != "-" && FileIdentity(p) != FileIdentity(trendPath) {
                        let name = (p as NSString).lastPathComponent
                        if FileIdentity((p as NSString).deletingLastPathComponent) == FileIdentity(dir),
                            name.hasPrefix("run-") && (name.hasSuffix(".jsonl.zst") || name.hasSuffix(".summary.json"))
                        {
                            throw SlotdiffError(.usage, "input \(p) lies in --dir \(dir) with the name of a run's output; an input is never overwritten")
                        }
                    }
                }
                try Outputs.makeDirectory(dir, what: "--dir")
                if access(dir, W_OK | X_OK) != 0 { throw SlotdiffError(.usage, "--dir \(dir): cannot create files in it: \(Outputs.reason())") }
                try CheckSession.checkOutputs(
                    [
                        OutputFile(what: "the trend (--dir)", path: trendPath, deviceAllowed: false),
                        OutputFile(what: "the watch's lock (--dir)", path: lockPath, deviceAllowed: false)
                    ],
                    files: files, digests: [check.source, check.target].filter(DigestFile.isDigest))
                // One watch per directory, for the whole watch: its runs' logs and trend.json
                // are written by this one process (the runs themselves take no lock).
                lock = try RunLock.acquire(path: lockPath, what: "--dir \(dir)", force: forceUnlock)
            } catch {
                throw fail(SlotdiffError.of(error).description)
            }
            defer { lock.release() }
            var trend = DriftTrend()
            if resume, let data = FileManager.default.contents(atPath: trendPath) {
                do { trend = try DriftTrend(json: data) } catch { throw fail("--resume: \(trendPath) is not a watch's trend.json") }
            }
            check.sampling.announce()
            let interrupt = Interrupt.install()
            var metrics: WatchMetrics?
            if let metricsPort {
                let m = WatchMetrics()
                do { _ = try await m.serve(host: metricsHost, port: metricsPort) } catch {
                    throw fail("cannot serve metrics on \(metricsHost):\(metricsPort): \(error)")
                }
                metrics = m
            }
            var number = trend.runs.last?.number ?? 0
            let first = number
            var lastStatus: Int32 = 0
            while count.map({ number - first < $0 }) ?? true {
                number += 1
                let started = Date()
                // The schedule runs on the monotonic clock: a wall clock set back or forward
                // (NTP, a VM resumed) neither stalls nor rushes the next run.
                let startedTick = ContinuousClock.now
                let name = String(format: "run-%04d", number)
                let log = (dir as NSString).appendingPathComponent(name + ".jsonl.zst")
                let summaryPath = (dir as NSString).appendingPathComponent(name + ".summary.json")
                do {
                    // The differences come to the trend as they go to the log, not read back from it.
                    var diffs: [Difference] = []
                    var session = template
                    session.outputs = CheckOutputs(log: log, summary: summaryPath)
                    session.outputs.labels = .init(log: "the run's diff log (--dir)", summary: "the run's summary (--dir)")
                    session.outputs.lock = false
                    let s = try await session.run(stop: interrupt.stop, observe: { diffs.append($0) })
                    trend.record(number: number, startedAt: started, seconds: s.seconds, differences: diffs)
                    let drift = trend.persistent(minimum: driftAfter)
                    metrics?.record(s, drifting: drift.count)
                    let kinds = DifferenceKind.allCases.compactMap { k in s.counts.differences[k].map { "\(k.rawValue) \($0)" } }
                    print(
                        "run \(number) \(ISO8601DateFormatter().string(from: started)): "
                            + (s.counts.totalDifferences == 0 ? "match" : "\(s.counts.totalDifferences) differences (\(kinds.joined(separator: ", ")))")
                            + ", \(s.counts.compared) keys compared in \(String(format: "%.1f", s.seconds)) s"
                            + (drift.isEmpty ? "" : "; \(drift.count) keys drifting (different \(driftAfter)+ runs in a row)"))
                    lastStatus = s.exitCode
                } catch {
                    // Any failure of a run is recorded, and the watch goes on.
                    let e = SlotdiffError.of(error)
                    trend.recordFailure(number: number, startedAt: started, seconds: Date().timeIntervalSince(started), error: e.description)
                    metrics?.recordFailure(e, seconds: Date().timeIntervalSince(started))
                    FileHandle.standardError.write(Data("slotdiff: run \(number) could not be done: \(e.description)\n".utf8))
                    lastStatus = 2
                }
                do { try Outputs.replace(Data((trend.json(driftAfter: driftAfter) + "\n").utf8), at: trendPath) } catch let e as SlotdiffError {
                    throw fail(e.description)
                }
                if let count, number - first >= count { break }
                if interrupt.requested { break }
                // Wait for the next start, waking early on Ctrl-C.
                let next = startedTick + .milliseconds(every.milliseconds)
                while ContinuousClock.now < next && !interrupt.requested { try await Task.sleep(for: .milliseconds(100)) }
                if interrupt.requested { break }
            }
            if lastStatus != 0 { throw ExitCode(lastStatus) }
        }
    }
}
