import HashSlots

/// One node of a cluster as CLUSTER SHARDS / CLUSTER SLOTS describe it.
public struct ClusterNode: Sendable, Hashable, CustomStringConvertible {
    public var id: String?
    /// The address clients should use (the server's preferred endpoint, else its IP; empty
    /// when the server does not know it: use the host you asked).
    public var host: String
    /// Plain-text port; with CLUSTER SLOTS, the port for the kind of connection that asked.
    public var port: Int?
    public var tlsPort: Int?
    public var isPrimary: Bool
    /// `online`, `failed` or `loading` (CLUSTER SHARDS only).
    public var health: String?
    /// Other hosts the node is announced under (its hostname, `cluster-announce-hostname`, and
    /// its IP, where `host` is the other), so an address map may name it by either.
    public var aliases: [String] = []

    public init(
        id: String? = nil, host: String, port: Int?, tlsPort: Int? = nil, isPrimary: Bool,
        health: String? = nil
    ) {
        self.id = id
        self.host = host
        self.port = port
        self.tlsPort = tlsPort
        self.isPrimary = isPrimary
        self.health = health
    }

    /// The endpoint to connect to this node with `template`'s credentials, database and TLS
    /// choice (the TLS port when `template.tls` and the node has one).
    public func endpoint(from template: RedisEndpoint) -> RedisEndpoint? {
        guard let p = template.tls ? (tlsPort ?? port) : (port ?? tlsPort) else { return nil }
        var e = template
        e.host = host.isEmpty ? template.host : host
        e.port = p
        return e
    }

    public var description: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(h):\(port.map(String.init) ?? "-")\(tlsPort.map { " tls:\($0)" } ?? "")\(isPrimary ? "" : " (replica)")"
    }
}

/// The slots one primary serves, and its replicas.
public struct ClusterShard: Sendable, Hashable {
    public var slots: [ClosedRange<HashSlot>]
    public var primary: ClusterNode
    public var replicas: [ClusterNode]

    public init(slots: [ClosedRange<HashSlot>], primary: ClusterNode, replicas: [ClusterNode] = []) {
        self.slots = slots
        self.primary = primary
        self.replicas = replicas
    }
}

/// Which shard serves each of the 16384 slots: a flat table rebuilt from CLUSTER SHARDS
/// (Redis 7+, Valkey) or CLUSTER SLOTS (older servers).
public struct ClusterTopology: Sendable, Hashable {
    public let shards: [ClusterShard]
    /// Slot → index into `shards`, -1 where no shard serves the slot.
    private let table: [Int16]

    public init(shards: [ClusterShard]) {
        self.shards = shards
        var table = [Int16](repeating: -1, count: HashSlot.count)
        for (i, shard) in shards.enumerated() {
            for range in shard.slots {
                for s in Int(range.lowerBound.rawValue)...Int(range.upperBound.rawValue) where table[s] < 0 {
                    table[s] = Int16(i)
                }
            }
        }
        self.table = table
    }

    public func shardIndex(for slot: HashSlot) -> Int? {
        let i = table[Int(slot.rawValue)]
        return i < 0 ? nil : Int(i)
    }

    public func shard(for slot: HashSlot) -> ClusterShard? { shardIndex(for: slot).map { shards[$0] } }

    public func shard(forKey key: some Collection<UInt8>) -> ClusterShard? { shard(for: HashSlot(key: key)) }

    /// Ranges of slots no shard serves (empty for a healthy cluster).
    public var unassignedSlots: [ClosedRange<HashSlot>] {
        var out: [ClosedRange<HashSlot>] = []
        var start: Int?
        for s in 0...HashSlot.count {
            let free = s < HashSlot.count && table[s] < 0
            if free, start == nil { start = s }
            if !free, let a = start {
                out.append(HashSlot(a)!...HashSlot(s - 1)!)
                start = nil
            }
        }
        return out
    }

    public var coversAllSlots: Bool { !table.contains(-1) }

    /// Asks a node for the topology: CLUSTER SHARDS, or CLUSTER SLOTS where SHARDS is unknown.
    public static func discover(using connection: RedisConnection) async throws(RedisError) -> ClusterTopology {
        let host = connection.endpoint.host
        let shards = try await connection.send("CLUSTER", "SHARDS")
        if case .error(let e) = shards {
            guard e.message.lowercased().contains("unknown subcommand") || e.message.lowercased().contains("unknown command") else {
                throw RedisError(serverError: e, endpoint: connection.endpoint.address)
            }
            let slots = try await connection.send("CLUSTER", "SLOTS").throwIfError()
            return try ClusterTopology(clusterSlots: slots, askedHost: host)
        }
        return try ClusterTopology(clusterShards: shards, askedHost: host)
    }

    /// Reads a CLUSTER SHARDS reply: RESP3 maps or RESP2 flat key/value arrays.
    /// `askedHost` replaces unknown node addresses.
    public init(clusterShards reply: RESPValue, askedHost: String = "") throws(RedisError) {
        guard let list = reply.array else { throw Self.bad("CLUSTER SHARDS", "not an array", reply) }
        var shards: [ClusterShard] = []
        for entry in list {
            guard let flat = entry["slots"]?.array, flat.count % 2 == 0 else {
                throw Self.bad("CLUSTER SHARDS", "shard without a slots list", entry)
            }
            var ranges: [ClosedRange<HashSlot>] = []
            for i in stride(from: 0, to: flat.count, by: 2) {
                ranges.append(try Self.range(flat[i], flat[i + 1], "CLUSTER SHARDS"))
            }
            guard let nodeList = entry["nodes"]?.array else { throw Self.bad("CLUSTER SHARDS", "shard without nodes", entry) }
            var nodes: [ClusterNode] = []
            for n in nodeList {
                let port = n["port"]?.int.map(Int.init)
                let tlsPort = n["tls-port"]?.int.map(Int.init)
                guard port != nil || tlsPort != nil else { throw Self.bad("CLUSTER SHARDS", "node without a port", n) }
                let role = n["role"]?.string ?? ""
                var node = ClusterNode(
                    id: n["id"]?.string,
                    host: Self.host(preferred: n["endpoint"]?.string, ip: n["ip"]?.string, asked: askedHost),
                    port: port, tlsPort: tlsPort,
                    isPrimary: role == "master" || role == "primary",
                    health: n["health"]?.string)
                node.aliases = Self.aliases(of: node.host, [n["hostname"]?.string, n["ip"]?.string])
                nodes.append(node)
            }
            // A failed-over primary stays listed as "master" with health "fail": prefer an online one.
            let primaryIndex =
                nodes.firstIndex { $0.isPrimary && $0.health != "fail" && $0.health != "failed" }
                ?? nodes.firstIndex { $0.isPrimary }
            guard let p = primaryIndex else {
                if ranges.isEmpty { continue }
                throw Self.bad("CLUSTER SHARDS", "shard serving slots has no primary", entry)
            }
            var replicas = nodes
            let primary = replicas.remove(at: p)
            shards.append(ClusterShard(slots: ranges, primary: primary, replicas: replicas.filter { !$0.isPrimary }))
        }
        self.init(shards: shards)
    }

    /// Reads a CLUSTER SLOTS reply (`[start, end, [host, port, id, ...], replicas...]` per
    /// range); ranges served by the same primary become one shard.
    public init(clusterSlots reply: RESPValue, askedHost: String = "") throws(RedisError) {
        guard let list = reply.array else { throw Self.bad("CLUSTER SLOTS", "not an array", reply) }
        var shards: [ClusterShard] = []
        var byPrimary: [String: Int] = [:]
        for entry in list {
            guard let items = entry.array, items.count >= 3 else {
                throw Self.bad("CLUSTER SLOTS", "entry without start, end and primary", entry)
            }
            let range = try Self.range(items[0], items[1], "CLUSTER SLOTS")
            var nodes: [ClusterNode] = []
            for (i, n) in items.dropFirst(2).enumerated() {
                guard let parts = n.array, parts.count >= 2, let port = parts[1].int else {
                    throw Self.bad("CLUSTER SLOTS", "node without host and port", n)
                }
                var node = ClusterNode(
                    id: parts.count > 2 ? parts[2].string : nil,
                    host: Self.host(preferred: parts[0].string, ip: nil, asked: askedHost),
                    port: Int(port), isPrimary: i == 0)
                // Redis 7+: a map of the names the preferred endpoint is not (`hostname`, `ip`).
                if parts.count > 3 { node.aliases = Self.aliases(of: node.host, [parts[3]["hostname"]?.string, parts[3]["ip"]?.string]) }
                nodes.append(node)
            }
            let primary = nodes.removeFirst()
            let key = primary.id ?? "\(primary.host):\(primary.port ?? 0)"
            if let i = byPrimary[key] {
                shards[i].slots.append(range)
                for r in nodes where !shards[i].replicas.contains(r) { shards[i].replicas.append(r) }
            } else {
                byPrimary[key] = shards.count
                shards.append(ClusterShard(slots: [range], primary: primary, replicas: nodes))
            }
        }
        self.init(shards: shards)
    }

    private static func aliases(of host: String, _ names: [String?]) -> [String] {
        var out: [String] = []
        for case let name? in names where !name.isEmpty && name != "?" && name.lowercased() != host.lowercased() && !out.contains(name) {
            out.append(name)
        }
        return out
    }

    private static func host(preferred: String?, ip: String?, asked: String) -> String {
        for h in [preferred, ip] {
            if let h, !h.isEmpty, h != "?" { return h }
        }
        return asked
    }

    private static func range(_ a: RESPValue, _ b: RESPValue, _ command: String) throws(RedisError) -> ClosedRange<HashSlot> {
        guard let lo = a.int.flatMap({ HashSlot(Int($0)) }), let hi = b.int.flatMap({ HashSlot(Int($0)) }), lo <= hi else {
            throw bad(command, "invalid slot range \(a)-\(b)", a)
        }
        return lo...hi
    }

    private static func bad(_ command: String, _ why: String, _ value: RESPValue) -> RedisError {
        let shown = String(describing: value).prefix(200)
        return RedisError(.unexpectedReply, "unexpected \(command) reply: \(why): \(shown)")
    }
}
