import Foundation
import HashSlots
import SlotdiffCore

/// Repair scripts: from diff logs and the source, the commands that make every logged key of
/// the target equal to the source as it is read now. Nothing is sent to the target; the
/// scripts are files the operator reviews and applies (`redis-cli --pipe`), then checks again.
///
/// Values are written with the types' own commands (DEL, then SET/APPEND, RPUSH, SADD, ZADD,
/// HSET + HPEXPIREAT, XADD + XSETID/XGROUP/XCLAIM, in bounded batches), not RESTORE: the same
/// script then suits every target version (a DUMP payload of a newer RDB version is refused by
/// an older server), and no command carries a whole big value.
public enum Repair {
    /// What a repair wrote.
    public struct Result: Sendable {
        public struct Script: Sendable {
            public var path: String
            /// `host:port` of the target server it is for, when the target was given.
            public var node: String?
            public var commands: Int
            public var keys: Int
        }

        public var scripts: [Script] = []
        /// Keys written from the source's value.
        public var written = 0
        /// Keys deleted: not on the source (now).
        public var deleted = 0
        /// Keys whose expiry only is set (`ttl`, the value unchanged on the source).
        public var expiryOnly = 0
        /// Logged `extra` keys left alone (`--keep-extra`).
        public var keptExtra = 0
        /// Keys no command can write, with why (they are left out of the scripts).
        public var notRepaired: [(key: RepairKey, reason: String)] = []
        public init() {}
    }

    public struct Options: Sendable {
        /// The script; for a cluster target one per node, named after it (`scriptPath`).
        public var out: String
        /// Leave keys only the target holds (`extra`) as they are.
        public var keepExtra = false
        public init(out: String) { self.out = out }
    }

    /// The keys the logs name, once each (a key in two logs is taken from the first), through
    /// `filter`; `duplicate` lines (a key twice on one side) are not a repair and are counted apart.
    /// Each log must be whole unless `allowIncomplete` (then a warning per log).
    public static func keys(logs: [String], filter: DifferenceFilter, allowIncomplete: Bool) throws -> (
        keys: [RepairKey], duplicates: Int, warnings: [String]
    ) {
        var keys: [RepairKey] = []
        var seen = Set<[UInt8]>()
        var duplicates = 0
        var warnings: [String] = []
        for path in logs {
            let r = DiffLogReader(path: path)
            try r.forEach { d in
                guard filter.admits(d) else { return }
                if d.kind == .duplicate {
                    duplicates += 1
                    return
                }
                guard seen.insert(Check.identity(d)).inserted else { return }
                keys.append(RepairKey(db: d.db, sourceDb: d.sourceDb ?? d.db, key: d.key, kind: d.kind, logged: d.source))
            }
            if let w = try r.incompleteness(allowIncomplete: allowIncomplete) { warnings.append(w) }
        }
        return (keys, duplicates, warnings)
    }

    /// The script for a cluster node: `fix.resp` → `fix.10.0.0.5-6379.resp`.
    public static func scriptPath(_ out: String, node: String) -> String {
        let name = node.replacingOccurrences(of: "[", with: "").replacingOccurrences(of: "]", with: "")
        let at = name.lastIndex(of: ":").map { name[..<$0] + "-" + name[name.index(after: $0)...] } ?? Substring(name)
        if out.hasSuffix(".resp") { return String(out.dropLast(5)) + ".\(at).resp" }
        return out + ".\(at)"
    }

    /// Reads the keys' values from `source` and writes the scripts. `target`, when given, says
    /// where the keys live: a cluster gets one script per node owning their slots.
    public static func write(keys: [RepairKey], source: any KeyspaceSource, target: LiveSide?, options: Options) async throws -> Result {
        var result = Result()
        var scripts: [String: ScriptFile] = [:]
        var order: [String] = []
        let cluster = target?.isCluster == true
        func script(_ k: RepairKey) throws -> ScriptFile {
            var node = target.map { $0.nodes[0].address }
            var path = options.out
            if let target, cluster {
                guard k.db == 0 else {
                    throw SlotdiffError(
                        .usage,
                        "\(Difference.display(k.key)) is logged in database \(k.db), but the target is a cluster (database 0 only)")
                }
                let n = target.nodes[target.nodeFor(key: k.key)].address
                node = n
                path = scriptPath(options.out, node: n)
            }
            if let s = scripts[path] { return s }
            let s = try ScriptFile(path: path, node: node)
            scripts[path] = s
            order.append(path)
            return s
        }
        do {
            var wanted = keys.indices.filter { !(options.keepExtra && keys[$0].kind == .extra) }
            result.keptExtra = keys.count - wanted.count
            // At most two rounds: a `ttl` key whose value changed on the source since the check
            // is written whole in the second.
            var expiryOnly = Set(wanted.filter { keys[$0].kind == .ttl })
            while !wanted.isEmpty {
                let round = wanted.map { keys[$0] }
                let onlyExpiry = Set(round.indices.filter { expiryOnly.contains(wanted[$0]) })
                let writer = RepairWriter(keys: round, expiryOnly: onlyExpiry, script: script)
                let reads = try await source.values(round.map { (db: $0.sourceDb, key: $0.key) }, bound: Self.bound, sink: writer)
                try writer.finish()
                var again: [Int] = []
                for (n, read) in reads.enumerated() {
                    let k = round[n]
                    switch read {
                    case .unavailable(let why):
                        throw SlotdiffError(.usage, "the source cannot give values to repair from: \(why)")
                    case .absent:
                        let f = try script(k)
                        _ = try f.beginKey(db: k.db)
                        try f.command([Array("DEL".utf8), k.key])
                        f.countKey()
                        result.deleted += 1
                    case .present(let state, let value):
                        if let why = writer.notWritable[n] {
                            result.notRepaired.append((k, why))
                            continue
                        }
                        if onlyExpiry.contains(n) {
                            guard let logged = k.logged, logged.type == state.type, logged.digest == state.digest else {
                                again.append(wanted[n])
                                continue
                            }
                            let f = try script(k)
                            _ = try f.beginKey(db: k.db)
                            try f.command(expiry(k.key, state.expireMs))
                            f.countKey()
                            result.expiryOnly += 1
                            continue
                        }
                        // Its entries are in the script already: no script rather than half a stream.
                        if state.type == .stream && value.tooLarge {
                            throw SlotdiffError(
                                .usage,
                                "stream \(Difference.display(k.key)): its consumer groups hold more than \(Self.bound.elements) "
                                    + "pending entries, more than a repair keeps in memory")
                        }
                        // What follows the value: a stream's last ID and groups, the expiry.
                        let tail = (state.type == .stream ? streamTail(k.key, value) : []) + (state.expireMs != nil ? [expiry(k.key, state.expireMs)] : [])
                        if !tail.isEmpty {
                            let f = try script(k)
                            _ = try f.beginKey(db: k.db)
                            for c in tail { try f.command(c) }
                        }
                        result.written += 1
                    }
                }
                wanted = again
                expiryOnly = []
            }
            for path in order { try scripts[path]!.finish() }
        } catch {
            for s in scripts.values { s.discard() }
            throw error
        }
        result.scripts = order.map { p in
            let s = scripts[p]!
            return Result.Script(path: p, node: s.node, commands: s.commands, keys: s.keys)
        }
        return result
    }

    /// Stream groups and pending entries are few next to entries; everything else goes to the
    /// script element by element and is not bounded by this.
    static let bound = ExplainBound(elements: 1_000_000, bytes: 1 << 30, totalBytes: 1 << 30)

    /// PEXPIREAT at the source's absolute expiry, or PERSIST where it has none.
    static func expiry(_ key: [UInt8], _ ms: Int64?) -> [[UInt8]] {
        if let ms { return [Array("PEXPIREAT".utf8), key, Array(String(ms).utf8)] }
        return [Array("PERSIST".utf8), key]
    }

    /// After a stream's entries: its last ID (which may lie past the last entry), its consumer
    /// groups, and their pending entries with their delivery counts.
    static func streamTail(_ key: [UInt8], _ v: DecodedValue) -> [[[UInt8]]] {
        func id(_ ms: UInt64, _ seq: UInt64) -> [UInt8] { Array("\(ms)-\(seq)".utf8) }
        var out: [[[UInt8]]] = []
        let last = v.lastID ?? (0, 0)
        if v.count == 0 {
            if last.ms == 0 && last.seq == 0 {
                // An empty stream that never held an entry: made by a group, which then goes.
                let tmp = Array("slotdiff-repair".utf8)
                out.append([Array("XGROUP".utf8), Array("CREATE".utf8), key, tmp, Array("0".utf8), Array("MKSTREAM".utf8)])
                out.append([Array("XGROUP".utf8), Array("DESTROY".utf8), key, tmp])
            } else {
                // An entry at the last ID, trimmed away at once: an empty stream with that ID.
                out.append([Array("XADD".utf8), key, Array("MAXLEN".utf8), Array("0".utf8), id(last.ms, last.seq), Array("f".utf8), Array("v".utf8)])
            }
        } else {
            out.append([Array("XSETID".utf8), key, id(last.ms, last.seq)])
        }
        for g in v.groups {
            out.append([Array("XGROUP".utf8), Array("CREATE".utf8), key, g.name, id(g.lastMs, g.lastSeq)])
            for p in g.pending {
                out.append([
                    Array("XCLAIM".utf8), key, g.name, p.consumer, Array("0".utf8), id(p.ms, p.seq), Array("FORCE".utf8),
                    Array("RETRYCOUNT".utf8), Array(String(p.deliveries).utf8), Array("JUSTID".utf8)
                ])
            }
        }
        return out
    }
}
