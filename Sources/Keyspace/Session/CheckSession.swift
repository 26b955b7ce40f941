import Foundation
import Logging
import RESP
import SlotdiffCore

/// The files one check writes, and how messages name them.
public struct CheckOutputs: Sendable {
    /// The diff log (zstd-compressed JSON Lines).
    public var log: String
    /// The summary JSON.
    public var summary: String
    /// Where finished passes are recorded as the run goes (nil: nothing to resume from).
    public var checkpoint: String?
    public var labels = Labels()
    /// Lock the log and checkpoint for this run (`RunLock`); false when the caller holds a lock
    /// over them (a watch holds its directory).
    public var lock = true
    /// Remove another run's lock on these outputs first.
    public var forceUnlock = false

    /// How messages name the outputs.
    public struct Labels: Sendable {
        public var log = "the diff log (--out)"
        public var summary = "the summary (--summary)"
        public var checkpoint = "the checkpoint (--checkpoint)"
        public init() {}
        public init(log: String, summary: String) {
            self.log = log
            self.summary = summary
        }
    }

    public init(log: String, summary: String, checkpoint: String? = nil) {
        self.log = log
        self.summary = summary
        self.checkpoint = checkpoint
    }

    /// The log's name without its extension: the stem of its summary, checkpoint and lock.
    public static func base(_ log: String) -> String {
        for ext in [".jsonl.zst", ".zst", ".jsonl"] where log.hasSuffix(ext) { return String(log.dropLast(ext.count)) }
        return log
    }

    /// NAME.summary.json beside NAME.jsonl.zst.
    public static func summaryPath(forLog log: String) -> String { base(log) + ".summary.json" }
}

/// One run of a check, owned by the engine: the outputs checked and locked, both sides opened
/// (`openSide`), the passes run with a checkpoint after each (and skipped on `--resume`), every
/// difference written to the log and handed to `observe`, the summary written and returned,
/// the sides closed however the run ends. Every failure comes out as a `SlotdiffError`.
public struct CheckSession: Sendable {
    /// One side as the operator wrote it, with its password when it came from elsewhere (the
    /// environment); the spec is never shown with a password in it.
    public struct Side: Sendable {
        public var spec: String
        public var password: String?
        /// Commands renamed or disabled on this side's servers (`--rename-command`).
        public var commandNames: CommandNames
        public init(spec: String, password: String? = nil, commandNames: CommandNames = CommandNames()) {
            self.spec = spec
            self.password = password
            self.commandNames = commandNames
        }
    }

    public var source: Side
    public var target: Side
    public var options: CheckOptions
    public var live: LiveOptions
    public var outputs: CheckOutputs

    public init(source: Side, target: Side, options: CheckOptions, live: LiveOptions, outputs: CheckOutputs) {
        self.source = source
        self.target = target
        self.options = options
        self.live = live
        self.outputs = outputs
    }

    static let logger = Logger(label: "slotdiff.session")

    /// The dump files of the sides given as files, listed (nothing is opened); nil for a server.
    public func dumpFiles() throws -> (source: DumpFiles?, target: DumpFiles?) {
        (try listFiles(source.spec), try listFiles(target.spec))
    }

    /// Refuses outputs that would overwrite an input (a dump file, a digest file) or each other,
    /// or that cannot be written.
    public static func checkOutputs(_ outputs: [OutputFile], files: (source: DumpFiles?, target: DumpFiles?), digests: [String] = []) throws {
        var inputs: [(what: String, path: String)] = digests.map { ("the digest file", $0) }
        for (name, f) in [("source", files.source), ("target", files.target)] {
            for p in f?.paths ?? [] where p != "-" { inputs.append(("the \(name) dump file", p)) }
        }
        try Outputs.checkDistinct(outputs, inputs: inputs)
        for o in outputs { try Outputs.checkWritable(o) }
    }

    /// What a checkpoint records: which check it belongs to, the passes done with their
    /// results, and how much of the log they wrote.
    struct Checkpoint: Codable {
        var source: String
        var target: String
        var settings: String
        var passes: Int
        var done: [Int: CheckResult]
        var logBytes: Int64
    }

    /// Everything that changes which keys a pass holds or how they compare: a checkpoint made
    /// with other settings belongs to another check.
    var settings: String {
        let f = options.filter
        var fields: [String] = [
            f.dbs.map { $0.sorted().map(String.init).joined(separator: ",") } ?? "",
            f.match.map { String(decoding: $0.pattern, as: UTF8.self) } ?? "",
            f.types.map { $0.map(\.description).sorted().joined(separator: ",") } ?? "",
            f.slots?.description ?? "",
            "\(options.rule.ttlToleranceMs)", options.mode.rawValue
        ]
        if !options.databaseMap.isEmpty { fields.append(options.databaseMap.description) }
        if let sample = f.sample { fields.append(sample.settings) }
        return fields.joined(separator: "|")
    }

    /// Runs the check. `stop` is asked between passes (Ctrl-C): a run stopped with passes left
    /// writes its partial summary and ends with `.interrupted`.
    public func run(
        resume: Bool = false, stop: @escaping @Sendable () -> Bool = { false }, progress: CheckProgress? = nil,
        observe: @escaping (Difference) -> Void = { _ in }
    ) async throws -> Summary {
        let opened = OpenedSides()
        let outcome: Result<Summary, SlotdiffError>
        do {
            outcome = .success(try await runChecked(opened: opened, resume: resume, stop: stop, progress: progress, observe: observe))
        } catch { outcome = .failure(SlotdiffError.from(error)) }
        for side in await opened.all() { await side.close() }
        return try outcome.get()
    }

    /// The sides opened so far, closed at the end of the run whatever happened.
    private actor OpenedSides {
        var sides: [any KeyspaceSource] = []
        func add(_ s: any KeyspaceSource) { sides.append(s) }
        func all() -> [any KeyspaceSource] { sides }
    }

    private func runChecked(
        opened: OpenedSides, resume: Bool, stop: @escaping @Sendable () -> Bool, progress: CheckProgress?,
        observe: @escaping (Difference) -> Void
    ) async throws -> Summary {
        let started = Date()
        let out = outputs.log
        let labels = outputs.labels
        let files = try dumpFiles()
        let lockTargets =
            outputs.lock
            ? RunLocks.targets(
                log: (out, "\(labels.log) \(out)"),
                checkpoint: outputs.checkpoint.map { ($0, "\(labels.checkpoint) \($0)") }) : []
        try Self.checkOutputs(
            [OutputFile(what: labels.log, path: out), OutputFile(what: labels.summary, path: outputs.summary)]
                + (outputs.checkpoint.map { [OutputFile(what: labels.checkpoint, path: $0, deviceAllowed: false)] } ?? [])
                + lockTargets.map { OutputFile(what: "the lock of \($0.what)", path: $0.path, deviceAllowed: false) },
            files: files, digests: [source.spec, target.spec].filter(DigestFile.isDigest))
        // Held from here to the end of the run, however it ends; nothing has been written yet.
        let locks = try RunLocks.acquire(lockTargets, force: outputs.forceUnlock)
        defer { locks.release() }
        for (name, f) in [("source", files.source), ("target", files.target)] {
            for e in f?.skipped ?? [] { Self.logger.warning("\(name): not read: \(e.path): \(e.reason)") }
        }
        var options = self.options
        options.progress = progress
        if let a = files.source, let b = files.target, (a.paths + b.paths).filter({ $0 == "-" }).count > 1 {
            throw SlotdiffError(.usage, "standard input (-) can be read for one file only")
        }
        var src = try await openSide(source, files: files.source, live: live, filter: options.filter, mode: options.mode)
        await opened.add(src)
        let dst = try await openSide(target, files: files.target, live: live, filter: options.filter, mode: options.mode)
        await opened.add(dst)
        if !options.databaseMap.isEmpty {
            let map = options.databaseMap
            if options.filter.dbs != nil {
                throw SlotdiffError(.usage, "--db and --db-map together: --db-map names the databases compared")
            }
            if dst.isCluster, let p = map.pairs.first(where: { $0.target != 0 }) {
                throw SlotdiffError(.usage, "--db-map \(p.source)=\(p.target): the target is a cluster, which has only database 0")
            }
            src = RenumberedSource(src, map: map.sourceToTarget)
            options.filter.dbs = Set(map.pairs.map(\.target))
        }

        let checkpoint = outputs.checkpoint
        var state: Checkpoint?
        if let checkpoint {
            let passes = try await options.passCount(source: src, target: dst)
            options.passes = passes
            state = Checkpoint(
                source: RedisEndpoint.redact(source.spec), target: RedisEndpoint.redact(target.spec), settings: settings,
                passes: passes, done: [:], logBytes: 0)
            if resume {
                guard let data = FileManager.default.contents(atPath: checkpoint) else {
                    throw SlotdiffError(.usage, "--resume: no checkpoint at \(checkpoint)")
                }
                let saved: Checkpoint
                do { saved = try JSONDecoder().decode(Checkpoint.self, from: data) } catch {
                    throw SlotdiffError(.usage, "--resume: \(checkpoint) is not a checkpoint: \(error)")
                }
                guard saved.source == state!.source, saved.target == state!.target, saved.settings == state!.settings,
                    saved.passes == passes
                else {
                    throw SlotdiffError(.usage, "--resume: \(checkpoint) belongs to another check (sides, options or pass count differ)")
                }
                state = saved
                options.donePasses = saved.done
            }
        }
        let log = try DiffLogWriter(path: out, appendAfter: resume ? state?.logBytes : nil)
        func save() throws {
            guard let checkpoint, let state else { return }
            let enc = JSONEncoder()
            enc.outputFormatting = [.sortedKeys]
            try Outputs.replace(try enc.encode(state), at: checkpoint)
        }
        func side(_ s: Side, _ inputs: [[String: String]], _ f: DumpFiles?) -> Summary.SideInfo {
            .init(
                spec: RedisEndpoint.redact(s.spec), inputs: inputs,
                skipped: (f?.skipped ?? []).map { ["path": $0.path, "reason": $0.reason] })
        }
        let sourceDatabase = Dictionary(uniqueKeysWithValues: options.databaseMap.pairs.map { ($0.target, $0.source) })
        // Written before any pass, so a run stopped before its first pass ends can be resumed too.
        if !resume { try save() }
        let result = try await Check.run(
            source: src, target: dst, options: options,
            passDone: { i, r in
                guard state != nil else { return }
                try log.flush()
                state!.done[i] = r
                state!.logBytes = log.size()
                try save()
            }, stop: stop
        ) { d in
            var d = d
            // Under --db-map the log keeps both databases: `db` the target's, `source_db` the source's.
            d.sourceDb = sourceDatabase[d.db]
            try log.write(d)
            observe(d)
        }
        var s = Summary(
            source: side(source, result.sourceInputs, files.source),
            target: side(target, result.targetInputs, files.target), counts: result.counts)
        s.passes = result.passes
        s.log = out
        s.startedAt = started
        if result.passesLeft > 0 {
            // No closing record: the log reads as incomplete until --resume finishes it.
            try log.close()
            s.interruptedPassesLeft = result.passesLeft
            s.seconds = Date().timeIntervalSince(started)
            try Outputs.write(Data((s.json() + "\n").utf8), to: outputs.summary)
            throw SlotdiffError(
                .interrupted,
                "interrupted with \(result.passesLeft) of \(result.passes) passes left"
                    + (checkpoint.map { "; the log holds the passes done; run again with --resume (checkpoint \($0))" } ?? ""))
        }
        // Written after the checkpoint's last logBytes, so a --resume of this run cuts it off
        // and writes it again at its own end.
        try log.finish(DiffLogEnd(counts: result.counts, passes: result.passes))
        s.filteredOut = result.filteredOut
        s.emptySkipped = result.emptySkipped
        s.ttlToleranceMs = options.rule.ttlToleranceMs
        s.seconds = Date().timeIntervalSince(started)
        if src.isLive || dst.isLive {
            s.recheck = .init(rounds: options.rounds, firstRound: result.firstRoundDifferences, resolvedPerRound: result.resolvedPerRound)
        }
        s.mode = options.mode.rawValue
        if !options.databaseMap.isEmpty { s.databaseMap = options.databaseMap.description }
        s.sample = options.filter.sample?.estimate(
            range: options.filter.slots, perSlot: result.slotDifferences,
            total: result.counts.totalDifferences)
        try Outputs.write(Data((s.json() + "\n").utf8), to: outputs.summary)
        return s
    }
}
