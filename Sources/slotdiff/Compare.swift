import ArgumentParser
import Foundation
import Keyspace
import RDB
import SlotdiffCore

struct FilterOptions: ParsableArguments {
    @Option(name: .customLong("db"), help: "Only this database (repeatable).")
    var dbs: [Int] = []

    @Option(help: "Only keys matching this glob (Redis MATCH syntax).")
    var match: String?

    @Option(name: .customLong("type"), help: "Only keys of this type (repeatable): string, list, set, zset, hash, stream, module.")
    var types: [ValueType] = []

    @Option(help: "Only keys in these hash slots, e.g. 0-8191.")
    var slots: SlotRange?

    var filter: KeyFilter {
        KeyFilter(dbs: dbs.isEmpty ? nil : Set(dbs), match: match.map(GlobPattern.init),
                  types: types.isEmpty ? nil : Set(types), slots: slots)
    }
}

extension Slotdiff {
    struct Compare: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two datasets once: exit 0 they match, 1 differences, 2 the check could not be done.",
            discussion: """
                SOURCE and TARGET are dump files (.rdb, .rdb.zst, or - for standard input), several files \
                for one side separated by commas, or a directory of dumps (one per shard).
                """
        )

        @Argument(help: "The source side.") var source: String
        @Argument(help: "The target side.") var target: String

        @Option(help: "Diff log (zstd-compressed JSON Lines).")
        var out: String = "slotdiff-diff.jsonl.zst"

        @Option(help: "Summary JSON (default: beside the log, .summary.json).")
        var summary: String?

        @OptionGroup var filters: FilterOptions

        @Option(help: "Expiry times closer than this are equal (e.g. 1s, 500ms).")
        var ttlTolerance: DurationArg = DurationArg(argument: "1s")!

        @Option(help: "Parallel workers (default: the number of cores).")
        var workers: Int = ProcessInfo.processInfo.activeProcessorCount

        @Flag(help: "Print the summary as JSON instead of a table.")
        var json = false

        func run() throws {
            let started = Date()
            guard workers >= 1 else { throw fail("--workers must be at least 1") }
            for side in [source, target] where !DumpFiles.looksLikeFiles(side) {
                throw fail("live sources (\(side.split(separator: "@").last.map(String.init) ?? side)) are not supported by this build; give dump files")
            }
            let summaryPath = summary ?? Self.summaryPath(for: out)
            do {
                let src = try DumpFiles(spec: source)
                let dst = try DumpFiles(spec: target)
                if src.paths.filter({ $0 == "-" }).count + dst.paths.filter({ $0 == "-" }).count > 1 {
                    throw fail("standard input (-) can be read for one file only")
                }
                let loaded = try DumpLoader.loadAll(src.paths + dst.paths, filter: filters.filter, workers: workers)
                let srcDumps = Array(loaded[0..<src.paths.count])
                let dstDumps = Array(loaded[src.paths.count...])
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                let comparer = Comparer(rule: DifferenceRule(ttlToleranceMs: ttlTolerance.milliseconds),
                                        sourceSnapshotMs: srcDumps.compactMap(\.info.ctimeMs).max() ?? now,
                                        targetSnapshotMs: dstDumps.compactMap(\.info.ctimeMs).max() ?? now)
                let log = try DiffLogWriter(path: out)
                func sided(_ dumps: [LoadedDump], _ side: Side) -> [Difference] {
                    dumps.flatMap(\.duplicates).map { d in
                        var d = d
                        d.side = side
                        if side == .target { (d.source, d.target) = (nil, d.source) } else { d.target = nil }
                        return d
                    }
                }
                let counts = try comparer.compare(source: srcDumps.map(\.table), target: dstDumps.map(\.table),
                                                  inFileDuplicates: sided(srcDumps, .source) + sided(dstDumps, .target)) { try log.write($0) }
                try log.close()
                var s = Summary(source: .init(spec: source, inputs: srcDumps.map(Self.describe)),
                                target: .init(spec: target, inputs: dstDumps.map(Self.describe)), counts: counts)
                s.filteredOut = loaded.map(\.filteredOut).reduce(0, +)
                s.emptySkipped = loaded.map(\.emptySkipped).reduce(0, +)
                s.ttlToleranceMs = ttlTolerance.milliseconds
                s.startedAt = started
                s.seconds = Date().timeIntervalSince(started)
                s.log = out
                try Data((s.json() + "\n").utf8).write(to: URL(fileURLWithPath: summaryPath))
                print(json ? s.json() : s.table())
                if s.exitCode != 0 { throw ExitCode(s.exitCode) }
            } catch let e as RDBError {
                throw fail(e.description)
            } catch let e as LogError {
                throw fail(e.description)
            }
        }

        static func summaryPath(for log: String) -> String {
            for ext in [".jsonl.zst", ".zst", ".jsonl"] where log.hasSuffix(ext) {
                return String(log.dropLast(ext.count)) + ".summary.json"
            }
            return log + ".summary.json"
        }

        static func describe(_ d: LoadedDump) -> [String: String] {
            var o = ["path": d.path, "rdb_version": d.info.valkey ? "VALKEY\(d.info.version)" : "\(d.info.version)",
                     "keys": "\(d.info.keys)", "bytes": "\(d.info.bytes)", "checksum": d.info.checksum.rawValue,
                     "seconds": String(format: "%.3f", d.seconds)]
            if let p = d.info.producer { o["producer"] = p }
            return o
        }
    }
}
