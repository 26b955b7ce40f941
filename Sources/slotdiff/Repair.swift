import ArgumentParser
import Foundation
import Keyspace
import Logging
import RESP
import SlotdiffCore

extension Slotdiff {
    struct Repair: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a script of commands that makes every logged key of the target equal to the source.",
            discussion: """
                Reads the diff logs of a check and, for each key they name, the source's value now (a live \
                source is read again; dump files give the value they hold). Writes RESP commands for \
                `redis-cli --pipe`: DEL, then the type's own commands in bounded batches (SET/APPEND, RPUSH, \
                SADD, ZADD, HSET and hash-field expiries, XADD and consumer groups), then PEXPIREAT; a key \
                the source no longer holds, or holds only on the target (extra), is deleted; for a ttl \
                difference only the expiry is set. Nothing is sent to either side: review the script, apply \
                it (`redis-cli -h HOST -p PORT --pipe < fix.resp`), then check again. With --target naming a \
                cluster, one script per node that owns the keys' slots is written (NAME.HOST-PORT.resp). \
                Exit 0 every key has its commands, 1 some keys could not be repaired (listed), 2 no script.
                """
        )

        @Argument(help: "Diff logs (.jsonl.zst) written by compare.") var logs: [String]

        @Option(help: "The source the check compared: a server (redis://…, a cluster from any node) or its dump files.")
        var source: String

        @Option(help: "The script to write; with a cluster --target, the name its per-node scripts are made from.")
        var out: String

        @Option(help: "The target server, when it is a cluster: the keys' slots say which node's script each key goes to (only read: CLUSTER SHARDS/SLOTS).")
        var target: String?

        @Option(help: "Only this kind (repeatable): missing, extra, type, value, ttl.")
        var kind: [DifferenceKind] = []

        @Option(help: "Only this database, as logged (the target's number; repeatable).") var db: [Int] = []
        @Option(help: "Only keys matching this glob.") var match: String?

        @Flag(help: "Leave keys that only the target holds (extra) as they are, instead of deleting them.")
        var keepExtra = false

        @Flag(help: "Read logs without a closing record (a run interrupted, killed or failed) too, with a warning.")
        var allowIncomplete = false

        @OptionGroup var live: LiveArguments

        @Option(help: "What to tell on standard error: trace, debug, info, notice, warning, error, critical.")
        var logLevel: Logger.Level = .warning

        @Flag(help: "Print what was written as JSON.")
        var json = false

        func validate() throws {
            if kind.contains(.duplicate) { throw ValidationError("--kind duplicate: a key held twice by one side is not repaired by a script") }
        }

        func run() async throws {
            TerminalLogHandler.bootstrap(level: logLevel)
            var opened: [any KeyspaceSource] = []
            let outcome: Result<(Keyspace.Repair.Result, Int, [String]), Error>
            do {
                outcome = .success(try await write(opened: &opened))
            } catch { outcome = .failure(error) }
            for side in opened { await side.close() }
            let result: Keyspace.Repair.Result, duplicates: Int, warnings: [String]
            do { (result, duplicates, warnings) = try outcome.get() } catch { throw fail(SlotdiffError.of(error).description) }
            for w in warnings { FileHandle.standardError.write(Data("slotdiff: warning: \(w)\n".utf8)) }
            if json {
                print(Self.json(result, duplicates: duplicates))
            } else {
                print(Self.text(result, duplicates: duplicates))
            }
            if !result.notRepaired.isEmpty { throw ExitCode(1) }
        }

        private func write(opened: inout [any KeyspaceSource]) async throws -> (Keyspace.Repair.Result, Int, [String]) {
            let files = try listFiles(source)
            let inputs = logs.map { ("the diff log", $0) } + (files?.paths ?? []).map { ("a source dump file", $0) }
            try Outputs.checkDistinct([OutputFile(what: "the script (--out)", path: out, deviceAllowed: false)], inputs: inputs)
            try Outputs.checkWritable(OutputFile(what: "the script (--out)", path: out, deviceAllowed: false))
            let filter = DifferenceFilter(kinds: kind, dbs: db, match: match.map(GlobPattern.init))
            let (keys, duplicates, warnings) = try Keyspace.Repair.keys(logs: logs, filter: filter, allowIncomplete: allowIncomplete)
            if keys.isEmpty { return (Keyspace.Repair.Result(), duplicates, warnings) }
            let options = try live.liveOptions(workers: 1, sides: [source, target])
            var targetSide: LiveSide?
            if let target {
                guard (try? listFiles(target)) == nil, !DigestFile.isDigest(target) else {
                    throw SlotdiffError(.usage, "--target \(target): must be the target server's URL (its slots say where each key goes)")
                }
                let t = try await openSide(
                    .init(spec: target, password: RedisEndpoint.password(fromEnvironment: "SLOTDIFF_TARGET_PASSWORD")), files: nil, live: options)
                opened.append(t)
                targetSide = t as? LiveSide
            }
            let side = try await openSide(
                .init(spec: source, password: RedisEndpoint.password(fromEnvironment: "SLOTDIFF_SOURCE_PASSWORD")), files: files, live: options)
            opened.append(side)
            if side is DigestFileSource {
                throw SlotdiffError(.usage, "--source \(source): a digest file holds no values; repair from the source's server or dump files")
            }
            var o = Keyspace.Repair.Options(out: out)
            o.keepExtra = keepExtra
            let result = try await Keyspace.Repair.write(keys: keys, source: side, target: targetSide, options: o)
            return (result, duplicates, warnings)
        }

        static func text(_ r: Keyspace.Repair.Result, duplicates: Int) -> String {
            var lines: [String] = []
            if r.scripts.isEmpty { lines.append("nothing to repair: no logged key passed the filters") }
            for s in r.scripts {
                lines.append("\(s.path): \(s.commands) commands for \(s.keys) keys")
                let at = s.node.flatMap { n -> String? in
                    guard let colon = n.lastIndex(of: ":") else { return nil }
                    let host = n[..<colon].trimmingCharacters(in: CharacterSet(charactersIn: "[]"))
                    return "-h \(host) -p \(n[n.index(after: colon)...]) "
                }
                lines.append("  apply: redis-cli \(at ?? "")--pipe < \(s.path)")
            }
            lines.append(
                "\(r.written) keys written from the source, \(r.deleted) deleted, \(r.expiryOnly) expiries set"
                    + (r.keptExtra > 0 ? ", \(r.keptExtra) extra keys kept (--keep-extra)" : ""))
            if duplicates > 0 { lines.append("\(duplicates) duplicate lines left out (a key held twice by one side is not a repair)") }
            for (k, why) in r.notRepaired.prefix(20) {
                lines.append("not repaired: db \(k.db) \(Difference.display(k.key)): \(why)")
            }
            if r.notRepaired.count > 20 { lines.append("… \(r.notRepaired.count - 20) more keys not repaired") }
            if !r.scripts.isEmpty { lines.append("Review the script, apply it, then run the check again: the repair is done when it exits 0.") }
            return lines.joined(separator: "\n")
        }

        static func json(_ r: Keyspace.Repair.Result, duplicates: Int) -> String {
            let o: [String: Any] = [
                "scripts": r.scripts.map { s in
                    ["path": s.path, "node": s.node ?? NSNull(), "commands": s.commands, "keys": s.keys] as [String: Any]
                },
                "written": r.written, "deleted": r.deleted, "expiry_only": r.expiryOnly, "kept_extra": r.keptExtra,
                "duplicates_left_out": duplicates,
                "not_repaired": r.notRepaired.map { k, why in
                    ["db": k.db, "key": Difference.display(k.key), "kind": k.kind.rawValue, "reason": why] as [String: Any]
                }
            ]
            let data = (try? JSONSerialization.data(withJSONObject: o, options: [.prettyPrinted, .sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }
}
