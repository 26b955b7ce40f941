import ArgumentParser
import Foundation
import HashSlots
import Keyspace
import Logging
import NIOConcurrencyHelpers
import RDB
import RESP
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

    @Option(help: "Check the I-th of N equal slot ranges (0-based, e.g. 2/4), so N processes split one check.")
    var shard: ShardArg?

    @Option(
        name: .customLong("db-map"),
        help:
            "Compare the source's database S with the target's database T (S=T, repeatable; e.g. 3=0 for a standalone source moving to a cluster). Only the named databases are compared."
    )
    var dbMap: [DatabasePair] = []

    func validate() throws {
        if let shard {
            guard shard.count >= 1 && shard.count <= HashSlot.count else {
                throw ValidationError("--shard \(shard): N must be between 1 and \(HashSlot.count) (the number of hash slots)")
            }
            guard shard.index >= 0 && shard.index < shard.count else {
                throw ValidationError("--shard \(shard): I must be between 0 and \(shard.count - 1) (0-based, below N)")
            }
            if let r = slots, let s = SlotRange.shard(shard.index, of: shard.count), max(r.lower, s.lower) > min(r.upper, s.upper) {
                throw ValidationError("--slots \(r) and --shard \(shard) share no slot")
            }
        }
        if let bad = dbs.first(where: { $0 < 0 }) { throw ValidationError("--db \(bad): a database number is 0 or more") }
        if !dbMap.isEmpty && !dbs.isEmpty { throw ValidationError("--db and --db-map together: --db-map names the databases compared") }
        _ = try databaseMap()
    }

    func filter() throws -> KeyFilter {
        var range = slots
        if let shard {
            guard let s = SlotRange.shard(shard.index, of: shard.count) else {
                throw ValidationError("--shard \(shard): no such shard (0 ≤ I < N ≤ \(HashSlot.count))")
            }
            if let r = range {
                let lo = max(r.lower, s.lower), hi = min(r.upper, s.upper)
                guard lo <= hi else { throw ValidationError("--slots \(r) and --shard \(shard.index)/\(shard.count) share no slot") }
                range = SlotRange(lo, hi)
            } else {
                range = s
            }
        }
        return KeyFilter(
            dbs: dbs.isEmpty ? nil : Set(dbs), match: match.map(GlobPattern.init),
            types: types.isEmpty ? nil : Set(types), slots: range)
    }
}

extension FilterOptions {
    func databaseMap() throws -> DatabaseMap {
        do { return try DatabaseMap(dbMap.map { (source: $0.source, target: $0.target) }) } catch let e as SlotdiffError {
            throw ValidationError(e.message)
        }
    }
}

/// `S=T` of `--db-map`.
struct DatabasePair: ExpressibleByArgument {
    var source: Int
    var target: Int
    init?(argument: String) {
        guard let (s, t) = integerPair(argument, "=") else { return nil }
        source = s
        target = t
    }
}

/// `A<separator>B` with two integers, as options write pairs.
func integerPair(_ text: String, _ separator: Character) -> (Int, Int)? {
    let p = text.split(separator: separator, omittingEmptySubsequences: false)
    guard p.count == 2, let a = Int(p[0]), let b = Int(p[1]) else { return nil }
    return (a, b)
}

/// `I/N`; its range is checked by `FilterOptions.validate()`, which says what is wrong.
struct ShardArg: ExpressibleByArgument, CustomStringConvertible {
    var index: Int
    var count: Int
    init?(argument: String) {
        guard let (i, n) = integerPair(argument, "/") else { return nil }
        index = i
        count = n
    }
    var description: String { "\(index)/\(count)" }
}

/// How a side's keys are read into records: what is compared, in how many passes
/// (compare, watch, digest).
struct ReadArguments: ParsableArguments {
    @Option(help: "digest (whole values), length (element counts) or keys (presence, type, expiry).")
    var mode: CompareMode = .digest

    @Option(help: "Read the keyspace in this many slot-range passes (default: one per 250k keys of the largest live side, so memory stays bounded).")
    var passes: Int?

    func validate() throws {
        if let passes, passes < 1 || passes > HashSlot.count {
            throw ValidationError("--passes \(passes): must be between 1 and \(HashSlot.count) (one hash slot per pass)")
        }
    }
}

/// Re-check rounds of differences found on live sides (compare, watch).
struct RoundArguments: ParsableArguments {
    @Option(help: "Re-check rounds for differences found on live sides (reported only if they persist).")
    var rounds: Int = 3

    @Option(help: "Pause before each re-check round (e.g. 2s).")
    var roundDelay: DurationArg = DurationArg(argument: "2s")!

    func validate() throws {
        if rounds < 0 { throw ValidationError("--rounds \(rounds): must be 0 or more") }
        if roundDelay.milliseconds > 3_600_000 {
            throw ValidationError("--round-delay \(roundDelay.text): at most 1h (every re-check round waits this long)")
        }
    }
}

/// How live servers are reached and read: connections, limits, TLS, cluster addresses, renamed
/// commands (every command that reads a server).
struct LiveArguments: ParsableArguments {
    @Option(help: "Commands per second per live side, across all workers (default: no limit).")
    var qps: Int?

    @Option(
        help:
            "Keep each live server's round trip under this (e.g. 2ms) while it is read: a connection of its own PINGs every node each 100 ms, and the side's request rate drops when the round trips are over it and grows back while under (default: not watched)."
    )
    var maxLatency: DurationArg?

    @Option(help: "Values larger than this many bytes are read in chunks, never with one DUMP.")
    var bigKeyThreshold: Int = 4 << 20

    @Option(help: "Keys per pipelined batch.")
    var batch: Int = LiveOptions().batch

    @Option(help: "Cluster nodes before Redis 7.4: most keys one CLUSTER GETKEYSINSLOT reply may list; slots holding more are listed with SCAN.")
    var slotKeysLimit: Int = 10_000

    @Option(help: "primary or replica: where cluster keys are read.")
    var readFrom: ReadFrom = .primary

    @Option(
        name: .customLong("node-timeout"),
        help:
            "How long a live server may go without answering (stopped, restarting, failing over, cut off) before the check ends with exit 2 naming it. Meanwhile a warning names it from 2 s of silence on, its requests are sent again on new connections, and a server that answers again is read on."
    )
    var nodeTimeout: DurationArg = DurationArg(argument: "30s")!

    /// The earlier name of --node-timeout, still read.
    @Option(name: .customLong("timeout"), help: .hidden)
    var timeoutAlias: DurationArg?

    @Option(
        name: .customLong("cluster-address"),
        help:
            "ANNOUNCED=REACHABLE, each host:port, the host a name or an IP (repeatable): connect to a cluster node the cluster announces at ANNOUNCED (CLUSTER SHARDS/SLOTS, MOVED/ASK; its endpoint, hostname or IP) at REACHABLE instead, on both sides (NAT, container or pod addresses)."
    )
    var clusterAddress: [String] = []

    /// The earlier name of --cluster-address, still read.
    @Option(name: .customLong("address-map"), help: .hidden)
    var addressMapAlias: [String] = []

    @Option(
        name: .customLong("cluster-address-map"),
        help: "A file of --cluster-address entries, one ANNOUNCED=REACHABLE a line (# comments, blank lines) (repeatable).")
    var clusterAddressMap: [String] = []

    @Option(
        name: .customLong("rename-command"),
        help:
            "[source:|target:]OLD=NEW (repeatable): the servers know command OLD as NEW (rename-command in their configuration); OLD= when it is disabled there (never sent; read another way where that is possible). Without source: or target:, for every live side."
    )
    var renameCommand: [String] = []

    @Option(help: "CA certificate file (PEM) for rediss:// servers.") var tlsCa: String?
    @Option(help: "Client certificate (PEM) for rediss://.") var tlsCert: String?
    @Option(help: "Client key (PEM) for rediss://.") var tlsKey: String?
    @Option(help: "Server name to verify instead of the host.") var tlsServerName: String?
    @Flag(help: "Do not verify the server certificate (not recommended).") var tlsInsecure = false

    enum ReadFrom: String, ExpressibleByArgument { case primary, replica }

    func validate() throws {
        if let qps, qps < 1 { throw ValidationError("--qps \(qps): must be at least 1 command per second (leave it out for no limit)") }
        if let maxLatency, maxLatency.milliseconds < 1 || maxLatency.milliseconds > 10_000 {
            throw ValidationError("--max-latency \(maxLatency.text): must be between 1ms and 10s")
        }
        if bigKeyThreshold < 1 { throw ValidationError("--big-key-threshold \(bigKeyThreshold): must be at least 1 byte") }
        if batch < 1 { throw ValidationError("--batch \(batch): must be at least 1 key") }
        if slotKeysLimit < 1 { throw ValidationError("--slot-keys-limit \(slotKeysLimit): must be at least 1 key") }
        let limit = timeoutAlias ?? nodeTimeout
        if limit.milliseconds < 500 || limit.milliseconds > 3_600_000 {
            throw ValidationError("\(timeoutAlias == nil ? "--node-timeout" : "--timeout") \(limit.text): must be between 500ms and 1h")
        }
        _ = try clusterAddresses()
        _ = try commandNames()
    }

    /// The cluster address map: --cluster-address (and its earlier name) and the files'.
    func clusterAddresses() throws -> [String: String] {
        do { return try LiveOptions.clusterAddresses(addressMapAlias + clusterAddress, files: clusterAddressMap).get() } catch {
            throw ValidationError(error.message)
        }
    }

    /// The servers' names for commands, per side (`--rename-command`).
    func commandNames() throws -> (source: CommandNames, target: CommandNames) {
        do { return try LiveOptions.commandNames(renameCommand).get() } catch { throw ValidationError(error.message) }
    }

    /// `mode`: what the reads must give (`length` and `keys` read no values).
    /// The live options; `sides` are the sides as given, for whether one may use TLS.
    func liveOptions(workers: Int, mode: CompareMode = .digest, sides: [String?]) throws -> LiveOptions {
        var o = LiveOptions()
        o.workers = workers
        o.batch = max(1, batch)
        o.qps = qps
        o.maxLatency = maxLatency.map { .milliseconds($0.milliseconds) }
        o.bigKeyThreshold = max(1, bigKeyThreshold)
        o.slotKeysLimit = max(1, slotKeysLimit)
        o.readFromReplica = readFrom == .replica
        o.mode = mode
        o.nodeTimeout = .milliseconds((timeoutAlias ?? nodeTimeout).milliseconds)
        o.clusterAddresses = try clusterAddresses()
        // Set up (the system's trust roots read: milliseconds) only where TLS may be used: a
        // TLS side (rediss://, valkeys://), or any TLS option given, whose bad file is then
        // reported at the start.
        let tlsGiven = tlsCa != nil || tlsCert != nil || tlsKey != nil || tlsServerName != nil || tlsInsecure
        if tlsGiven || sides.contains(where: { side in side.flatMap { try? RedisEndpoint(url: $0) }?.tls == true }) {
            o.tls = try RedisTLS(
                TLSOptions(
                    caFile: tlsCa, certFile: tlsCert, keyFile: tlsKey, serverName: tlsServerName,
                    insecure: tlsInsecure))
        }
        return o
    }
}

extension CompareMode: ExpressibleByArgument {}

/// What one check needs, shared by `compare` and `watch`: the two sides and every option.
struct CheckArguments: ParsableArguments {
    @Argument(help: "The source side.") var source: String
    @Argument(help: "The target side.") var target: String

    @OptionGroup var filters: FilterOptions

    @Option(help: "Expiry times closer than this are equal (e.g. 1s, 500ms).")
    var ttlTolerance: DurationArg = DurationArg(argument: "1s")!

    @Option(
        help:
            "Parallel workers: dump files parsed at once, and threads looking up their keys; for a server, connections to it and batches in flight on them; for a cluster, that many per node, all nodes read at once (default: cores, at least 4 for servers)."
    )
    var workers: Int?

    @OptionGroup var read: ReadArguments
    @OptionGroup var recheck: RoundArguments
    @OptionGroup var live: LiveArguments

    @OptionGroup var sampling: SampleOptions

    @Flag(help: "Accept a check in which neither side holds a key (after the filters) as a match; without it that is an error (exit 2).")
    var allowEmpty = false

    @Option(help: "Explain the first N value and type differences of the run element by element in the log (detail); 0: none.")
    var explain = 1000

    @Option(
        help:
            "What to tell on standard error as the check runs: trace, debug, info, notice, warning (reconnects, retries, fallbacks, restarted listings), error, critical."
    )
    var logLevel: Logger.Level = .warning

    func validate() throws {
        if let workers, workers < 1 || workers > 1024 { throw ValidationError("--workers \(workers): must be between 1 and 1024") }
        if explain < 0 { throw ValidationError("--explain \(explain): must be 0 (none) or more") }
    }

    func options() throws -> CheckOptions {
        var options = CheckOptions()
        options.allowEmpty = allowEmpty
        options.databaseMap = try filters.databaseMap()
        options.explain = explain
        options.filter = try filters.filter()
        options.filter.sample = sampling.slotSample()
        options.rule = DifferenceRule(ttlToleranceMs: ttlTolerance.milliseconds)
        options.mode = read.mode
        options.rounds = max(0, recheck.rounds)
        options.roundDelayMs = recheck.roundDelay.milliseconds
        if let p = read.passes {
            guard p >= 1 else { throw ValidationError("--passes must be at least 1") }
            options.passes = p
        }
        options.workers = workers ?? ProcessInfo.processInfo.activeProcessorCount
        guard options.workers >= 1 else { throw ValidationError("--workers must be at least 1") }
        return options
    }

    /// The check these arguments describe, writing to `outputs`; passwords not in a URL come
    /// from SLOTDIFF_SOURCE_PASSWORD and SLOTDIFF_TARGET_PASSWORD.
    func session(_ outputs: CheckOutputs) throws -> CheckSession {
        let live = try self.live.liveOptions(
            workers: workers ?? max(4, ProcessInfo.processInfo.activeProcessorCount), mode: read.mode, sides: [source, target])
        let names = try self.live.commandNames()
        return CheckSession(
            source: .init(spec: source, password: RedisEndpoint.password(fromEnvironment: "SLOTDIFF_SOURCE_PASSWORD"), commandNames: names.source),
            target: .init(spec: target, password: RedisEndpoint.password(fromEnvironment: "SLOTDIFF_TARGET_PASSWORD"), commandNames: names.target),
            options: try options(), live: live, outputs: outputs)
    }
}

extension Slotdiff {
    struct Compare: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Compare two datasets once: exit 0 they match, 1 differences, 2 the check could not be done.",
            discussion: """
                SOURCE and TARGET are servers (redis://[user[:password]@]host[:port][/db], rediss:// for TLS; \
                a cluster is found from any one node) or dump files (.rdb, .rdb.zst, - for standard input; several \
                files for one side separated by commas, or a directory of dumps, one per shard) or digest files written \
                by slotdiff digest (FILE.slotdiff). Passwords can come \
                from SLOTDIFF_SOURCE_PASSWORD and SLOTDIFF_TARGET_PASSWORD instead of the URL.
                """
        )

        @OptionGroup var check: CheckArguments

        @Option(help: "Diff log (zstd-compressed JSON Lines).")
        var out: String = "slotdiff-diff.jsonl.zst"

        @Option(help: "Summary JSON (default: beside the log, .summary.json).")
        var summary: String?

        @Flag(help: "Print the summary as JSON instead of a table.")
        var json = false

        @Option(help: "Record finished slot-range passes here as the run goes (default: beside the log, .checkpoint.json).")
        var checkpoint: String?

        @Flag(help: "Continue a run that was stopped: passes recorded in the checkpoint are not read again, and the log continues after them.")
        var resume = false

        @Flag(help: "No progress display (keys/s, passes done, ETA, differences so far) on standard error.")
        var quiet = false

        @Flag(help: "Remove the lock of another run on these outputs (NAME.lock beside the log) and go on; only when that run is known to be gone.")
        var forceUnlock = false

        func run() async throws {
            TerminalLogHandler.bootstrap(level: check.logLevel)
            // A log written to a device (/dev/null) is not kept: its summary goes there too unless
            // --summary says otherwise, and there is no checkpoint (nothing to resume), rather than
            // files created beside the device (/dev/null.summary.json).
            let logIsDevice = Outputs.isCharacterDevice(out)
            let checkpointPath = checkpoint ?? (logIsDevice ? nil : CheckOutputs.base(out) + ".checkpoint.json")
            if resume && checkpointPath == nil {
                throw fail("--resume: the log \(out) is not a file, so there is nothing to resume; give --out a file (or --checkpoint)")
            }
            var outputs = CheckOutputs(
                log: out, summary: summary ?? (logIsDevice ? out : CheckOutputs.summaryPath(forLog: out)),
                checkpoint: checkpointPath)
            outputs.forceUnlock = forceUnlock
            let session: CheckSession
            do { session = try check.session(outputs) } catch { throw fail(SlotdiffError.of(error).description) }
            check.sampling.announce()
            let interrupt = Interrupt.install()
            let progress = CheckProgress()
            let display = quiet ? nil : ProgressDisplay.start(progress)
            let s: Summary
            do {
                s = try await session.run(resume: resume, stop: interrupt.stop, progress: progress)
                display?.finish()
            } catch {
                display?.finish()
                throw fail(SlotdiffError.of(error).description)
            }
            print(json ? s.json() : s.table())
            if s.exitCode == 1 && !json && !logIsDevice && !DigestFile.isDigest(check.source) {
                // The next two questions, answered where the operator looks.
                FileHandle.standardError.write(
                    Data(
                        ("slotdiff: what differs: slotdiff report \(out); a script that makes the target equal: "
                            + "slotdiff repair \(out) --source \(RedisEndpoint.redact(check.source)) --out fix.resp\n").utf8))
            }
            if s.exitCode != 0 { throw ExitCode(s.exitCode) }
        }
    }
}

/// Ctrl-C (SIGINT) or SIGTERM (what Kubernetes and systemd send): the first asks the check to
/// stop after the pass under way (the log frame is finished, the checkpoint and a partial
/// summary written, exit 2); a second ends the process at once (130 for SIGINT, 143 for SIGTERM).
final class Interrupt {
    /// Signals received so far; shared with the signal handlers and the check's `stop`.
    private let count: NIOLockedValueBox<Int>
    /// Kept for as long as the command runs: a signal source let go stops delivering.
    private let sources: [DispatchSourceSignal]

    var requested: Bool { count.withLockedValue { $0 > 0 } }

    /// What the check asks between passes.
    var stop: @Sendable () -> Bool {
        let count = self.count
        return { count.withLockedValue { $0 > 0 } }
    }

    private init(count: NIOLockedValueBox<Int>, sources: [DispatchSourceSignal]) {
        self.count = count
        self.sources = sources
    }

    static func install() -> Interrupt {
        let count = NIOLockedValueBox(0)
        let queue = DispatchQueue(label: "slotdiff.signals")
        var sources: [DispatchSourceSignal] = []
        for (sig, name) in [(SIGINT, "Ctrl-C"), (SIGTERM, "SIGTERM")] {
            signal(sig, SIG_IGN)
            let s = DispatchSource.makeSignalSource(signal: sig, queue: queue)
            s.setEventHandler {
                // Signals that arrive together are merged into one event: `data` counts them.
                let n = count.withLockedValue { c -> Int in
                    c += max(1, Int(s.data))
                    return c
                }
                if n == 1 {
                    FileHandle.standardError.write(Data("slotdiff: \(name): stopping after the pass under way (again to end at once)\n".utf8))
                } else {
                    Foundation.exit(128 + sig)
                }
            }
            s.resume()
            sources.append(s)
        }
        return Interrupt(count: count, sources: sources)
    }
}

/// CheckProgress on standard error: refreshed in place every second on a terminal, a plain line
/// every ten seconds otherwise.
final class ProgressDisplay {
    private let task: Task<Void, Never>
    private let printed: NIOLockedValueBox<Bool>
    private let tty = isatty(2) != 0

    private init(_ progress: CheckProgress) {
        let printed = NIOLockedValueBox(false)
        let tty = self.tty
        self.printed = printed
        task = Task.detached {
            let every: UInt64 = tty ? 1 : 10
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: every * 1_000_000_000)
                if Task.isCancelled { break }
                let line = progress.snapshot.line
                FileHandle.standardError.write(Data((tty ? "\r\u{1B}[K" + line : "slotdiff: " + line + "\n").utf8))
                printed.withLockedValue { $0 = true }
            }
        }
    }

    static func start(_ progress: CheckProgress) -> ProgressDisplay { ProgressDisplay(progress) }

    func finish() {
        task.cancel()
        if tty && printed.withLockedValue({ $0 }) { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
    }
}
