import ArgumentParser
import Foundation
import Keyspace
import Logging
import RESP
import SlotdiffCore

extension Slotdiff {
    struct Digest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Read one side and write its digest file (no values): a side for compare, carried where the servers cannot be reached.",
            discussion: """
                SIDE is a server (redis://…, rediss://…; a cluster is found from any node) or dump files, as for \
                compare; its password can come from SLOTDIFF_SOURCE_PASSWORD. The file holds, per key, its \
                database, slot, type, expiry and value digest (about 33 bytes plus the key before compression), \
                in slot order; `slotdiff compare old.slotdiff new.slotdiff` compares two of them, or one with a \
                server or dump. Exit 0 written, 2 not.
                """
        )

        @Argument(help: "The side to read.") var side: String

        @Option(help: "The digest file to write (FILE.slotdiff); written whole or not at all.")
        var out: String

        @OptionGroup var filters: FilterOptions
        @OptionGroup var read: ReadArguments
        @OptionGroup var live: LiveArguments
        @OptionGroup var sampling: SampleOptions

        @Option(help: "Parallel workers: dump files parsed at once, connections to a live side (default: cores, at least 4 for live sides).")
        var workers: Int?

        @Option(help: "What to tell on standard error as the side is read: trace, debug, info, notice, warning, error, critical.")
        var logLevel: Logger.Level = .warning

        @Flag(help: "Print what was written as JSON.")
        var json = false

        @Flag(help: "No progress display on standard error.")
        var quiet = false

        func validate() throws {
            if let workers, workers < 1 || workers > 1024 { throw ValidationError("--workers \(workers): must be between 1 and 1024") }
            // Its one side is read as a source (its password comes from SLOTDIFF_SOURCE_PASSWORD).
            if let e = live.renameCommand.first(where: { $0.lowercased().hasPrefix("target:") }) {
                throw ValidationError("--rename-command \(e): digest reads one side, the source; give OLD=NEW or source:OLD=NEW")
            }
        }

        func run() async throws {
            TerminalLogHandler.bootstrap(level: logLevel)
            let interrupt = Interrupt.install()
            let progress = CheckProgress()
            let display = quiet ? nil : ProgressDisplay.start(progress)
            let started = Date()
            var opened: (any KeyspaceSource)?
            let outcome: Result<(DigestMeta, Int64), Error>
            do {
                outcome = .success(try await write(progress: progress, stop: interrupt.stop, opened: &opened))
            } catch { outcome = .failure(error) }
            await opened?.close()
            display?.finish()
            let meta: DigestMeta, bytes: Int64
            do { (meta, bytes) = try outcome.get() } catch { throw fail(SlotdiffError.from(error).description) }
            let seconds = Date().timeIntervalSince(started)
            let perKey = meta.keys > 0 ? Double(bytes) / Double(meta.keys) : 0
            if json {
                let o: [String: Any] = [
                    "file": out, "bytes": bytes, "keys": meta.keys, "bytes_per_key": (perKey * 100).rounded() / 100,
                    "side": meta.side, "mode": meta.mode, "passes": meta.passes, "seconds": (seconds * 1000).rounded() / 1000,
                    "read_finished_ms": meta.readFinishedMs, "filtered_out": meta.filteredOut
                ]
                let data = try JSONSerialization.data(withJSONObject: o, options: [.prettyPrinted, .sortedKeys])
                print(String(decoding: data, as: UTF8.self))
            } else {
                print(
                    "digest of \(meta.side): \(meta.keys) keys written to \(out) (\(bytes) bytes, "
                        + String(format: "%.1f bytes a key; %.2f s)", perKey, seconds))
            }
        }

        private func write(progress: CheckProgress, stop: @escaping @Sendable () -> Bool, opened: inout (any KeyspaceSource)?) async throws -> (
            DigestMeta, Int64
        ) {
            if DigestFile.isDigest(side) {
                throw SlotdiffError(.usage, "\(side) is a digest file already; compare it directly")
            }
            let files = try listFiles(side)
            try CheckSession.checkOutputs([OutputFile(what: "the digest file (--out)", path: out, deviceAllowed: false)], files: (files, nil))
            for e in files?.skipped ?? [] {
                FileHandle.standardError.write(Data("slotdiff: warning: not read: \(e.path): \(e.reason)\n".utf8))
            }
            sampling.announce()
            var options = DigestOptions()
            options.filter = try filters.filter()
            options.filter.sample = sampling.slotSample()
            options.mode = read.mode
            options.passes = read.passes
            options.workers = workers ?? ProcessInfo.processInfo.activeProcessorCount
            options.progress = progress
            options.producer = "slotdiff \(BuildInfo.versionLine)"
            options.side = RedisEndpoint.redact(side)
            let source = try await openSide(
                .init(
                    spec: side, password: RedisEndpoint.password(fromEnvironment: "SLOTDIFF_SOURCE_PASSWORD"),
                    commandNames: try live.commandNames().source),
                files: files,
                live: try live.liveOptions(workers: workers ?? max(4, ProcessInfo.processInfo.activeProcessorCount), mode: read.mode, sides: [side]))
            opened = source
            let meta = try await DigestRun.write(side: source, to: out, options: options, stop: stop)
            let size = ((try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? nil) ?? 0
            return (meta, Int64(size))
        }
    }
}
