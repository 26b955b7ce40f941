import Foundation
import Logging
import RESP
import SlotdiffCore

/// What a live check compares: `digest` the whole value, `length` only element counts,
/// `keys` only presence, type and expiry.
public enum CompareMode: String, Sendable, CaseIterable {
    case digest, length, keys
}

/// How a live side is read.
public struct LiveOptions: Sendable {
    /// Connections per side (each owns a share of the key batches).
    public var workers = 4
    /// Keys per pipelined batch. Each batch costs a few round trips, tasks and buffers whatever
    /// its size: 2048 took ~9% less checker CPU than 512 on a 220k-key check, for ~13 MB more.
    public var batch = 2048
    /// SCAN COUNT hint.
    public var scanCount = 1000
    /// Most keys one CLUSTER GETKEYSINSLOT round trip may list (older cluster nodes); slots
    /// holding more are listed with SCAN.
    public var slotKeysLimit = 10_000
    /// Values larger than this (MEMORY USAGE, bytes) are read in chunks instead of one DUMP.
    public var bigKeyThreshold = 4 << 20
    /// Collections with more elements than this are read in chunks without asking their size;
    /// smaller ones are sized exactly (MEMORY USAGE … SAMPLES 0 walks every element, cheap
    /// at this count) and read with DUMP when under `bigKeyThreshold`.
    public var elementBound = 8192
    /// Elements (or bytes for strings) per chunked read.
    public var chunkSize = 1000
    /// Bytes of values one pipeline may ask for at once (DUMPs by their MEMORY USAGE, strings
    /// by what GETRANGE may return): a batch of big values is sent in several pipelines, so a
    /// worker's replies in flight stay near this, whatever the batch size.
    public var pipelineBytes = 32 << 20
    /// Requests per second for this side across all workers; nil = no limit.
    public var qps: Int?
    /// Round trip each of the side's servers must keep for others while it is read: the
    /// side's request rate follows it (`LatencyGovernor`); nil = not watched.
    public var maxLatency: Duration?
    public var readFromReplica = false
    public var mode: CompareMode = .digest
    public var tls: RedisTLS?
    /// Attempts to reconnect a lost connection before the check fails.
    public var reconnectAttempts = 5
    /// How long a node may go without answering (silent, refusing connections or dropping
    /// them) before the check stops with exit 2 naming it. A node that answers again within
    /// it (a pause, a restart, a failover) is read on, its listing started again.
    public var nodeTimeout: Duration = .seconds(30)
    /// After how long without a reply the operator is told (again at each such interval).
    public var silenceWarning: Duration { min(.seconds(2), max(.milliseconds(100), nodeTimeout / 4)) }
    /// How long a node never answered before may take to answer the handshake: a port that
    /// does not speak RESP (or TLS) is told within seconds, not after `nodeTimeout`.
    public var handshakeTimeout: Duration { min(.seconds(5), nodeTimeout) }

    /// How long one request may wait without a byte of its reply before it is sent again on a
    /// new connection (a connection a NAT or a failover left dead never answers): 2 s plus 2 ms
    /// per command asked, doubled at each resend, so a large batch or a slow server is not
    /// hurried; a reply still arriving (a big value on a slow link) is waited for. The caller
    /// clips it to what is left of `nodeTimeout`.
    public func requestTimeout(commands: Int, resend: Int) -> Duration {
        let base = Duration.seconds(2) + .milliseconds(2 * max(1, commands))
        return base * (1 << min(resend, 10))
    }

    /// The cluster address map: announced cluster node addresses (`host:port`, the host in
    /// lower case) replaced by ones this machine can reach (NAT, container or pod addresses,
    /// hostnames that resolve only elsewhere): every node found from the cluster map or a
    /// redirection is connected to through it (`--cluster-address`, `--cluster-address-map`).
    public var clusterAddresses: [String: String] = [:]
    /// Commands renamed or disabled on this side's servers (`--rename-command`): every command
    /// sent goes through it (`RedisConnectionOptions.commandNames`), and a disabled DUMP,
    /// PEXPIRETIME or MEMORY sets the read plan from the start (`LiveNode`).
    public var commandNames = CommandNames()
    /// Where reconnects, redirects, retries, fallbacks and restarted listings are told.
    public var logger = Logger(label: "slotdiff.live")

    public init() {}

    /// Where to connect for a node the cluster announced at `announced`: the cluster address
    /// map's entry for it, else for another host the same node is announced under (`aliases`:
    /// its hostname and IP, where the map names the node by one the redirections do not use),
    /// else the announced address.
    func reachable(_ announced: RedisEndpoint, aliases: [String] = []) -> RedisEndpoint {
        for host in [announced.host] + aliases {
            guard let to = clusterAddresses[Self.address(host.lowercased(), announced.port)], let (h, p) = Self.hostPort(to) else { continue }
            var ep = announced
            ep.host = h
            ep.port = p
            return ep
        }
        return announced
    }

    /// Reads the cluster address map: `--cluster-address` entries, then the lines of each
    /// `--cluster-address-map` file (one `ANNOUNCED=REACHABLE` a line; `#` starts a comment;
    /// blank lines are skipped), each `host:port=host:port` with IPv6 hosts in brackets. An
    /// entry of another form, an address mapped to two others, or a file that cannot be read
    /// is a usage error naming the entry, or the file and line.
    public static func clusterAddresses(_ entries: [String], files: [String] = []) -> Result<[String: String], SlotdiffError> {
        var lines: [(text: String, origin: String)] = entries.map { ($0, "--cluster-address \($0)") }
        for file in files {
            let text: String
            do { text = try String(contentsOfFile: file, encoding: .utf8) } catch {
                return .failure(SlotdiffError(.usage, "--cluster-address-map \(file): cannot read it: \(error.localizedDescription)", file: file))
            }
            for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = raw.prefix { $0 != "#" }.trimmingCharacters(in: .whitespacesAndNewlines)
                if !line.isEmpty { lines.append((line, "--cluster-address-map \(file):\(n + 1): \(line)")) }
            }
        }
        var map: [String: String] = [:]
        var origins: [String: String] = [:]
        for (e, origin) in lines {
            let parts = e.split(separator: "=", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, let a = hostPort(parts[0]), let b = hostPort(parts[1]) else {
                return .failure(SlotdiffError(.usage, "\(origin): expected ANNOUNCED=REACHABLE, each host:port"))
            }
            // Host names are case-insensitive: a cluster may announce them in another case.
            let key = Self.address(a.0.lowercased(), a.1)
            if let other = map[key], other != Self.address(b.0, b.1) {
                return .failure(SlotdiffError(.usage, "--cluster-address: \(key) is mapped twice (\(other) by \(origins[key]!), \(parts[1]) by \(origin))"))
            }
            map[key] = Self.address(b.0, b.1)
            origins[key] = origin
        }
        return .success(map)
    }

    /// Reads `--rename-command` entries: `OLD=NEW` for every live side, `source:OLD=NEW` or
    /// `target:OLD=NEW` for one; `OLD=` (nothing after `=`) says the command is disabled
    /// there. A malformed entry, a command given two names, or two commands given one name
    /// on a side is a usage error.
    public static func commandNames(_ entries: [String]) -> Result<(source: CommandNames, target: CommandNames), SlotdiffError> {
        var sides: [[String: String]] = [[:], [:]]
        for e in entries {
            func bad(_ why: String) -> SlotdiffError {
                SlotdiffError(.usage, "--rename-command \(e): \(why)")
            }
            var text = Substring(e)
            var which = [0, 1]
            for (prefix, side) in [("source:", 0), ("target:", 1)] where text.lowercased().hasPrefix(prefix) {
                text = text.dropFirst(prefix.count)
                which = [side]
                break
            }
            guard let eq = text.firstIndex(of: "=") else {
                return .failure(bad("expected [source:|target:]OLD=NEW (OLD= for a command disabled on the server)"))
            }
            let old = String(text[..<eq]), new = String(text[text.index(after: eq)...])
            let wordBytes = { (w: String) in w.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "=") } }
            guard !old.isEmpty, wordBytes(old), !old.contains(":"), !old.contains("|") else {
                return .failure(bad("'\(old)' is not a command name (a subcommand cannot be renamed: give its command, e.g. CLUSTER)"))
            }
            guard new.isEmpty || new.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                return .failure(bad("the new name must be printable, without spaces"))
            }
            for side in which {
                let name = side == 0 ? "the source" : "the target"
                if let other = sides[side][old.uppercased()], other != new {
                    return .failure(bad("\(old.uppercased()) is renamed twice on \(name) ('\(other)' and '\(new)')"))
                }
                if !new.isEmpty, let (clash, _) = sides[side].first(where: { $0.value == new && $0.key != old.uppercased() }) {
                    return .failure(bad("\(clash) and \(old.uppercased()) are both renamed to '\(new)' on \(name)"))
                }
                sides[side][old.uppercased()] = new
            }
        }
        return .success((CommandNames(sides[0]), CommandNames(sides[1])))
    }

    static func address(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }

    static func hostPort(_ s: String) -> (String, Int)? {
        guard let colon = s.lastIndex(of: ":"), let port = Int(s[s.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(s[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }
}
