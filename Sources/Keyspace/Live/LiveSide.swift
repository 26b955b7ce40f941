import Foundation
import HashSlots
import Logging
import NIOConcurrencyHelpers
import RESP
import SlotdiffCore

/// One side of a live check: a standalone server, or every node of a cluster. It lists all
/// keys (SCAN per node and database, keys bucketed by slot on the client), fetches each key's
/// state into key tables, and re-fetches single keys for the re-check rounds.
public final class LiveSide: KeyspaceSource, Sendable {
    public let endpoint: RedisEndpoint
    let options: LiveOptions
    let limiter: RateLimiter?
    /// `--max-latency`: moves `limiter`'s rate by the servers' round trips.
    let governor: LatencyGovernor?
    /// The node read for each shard (the only one of a standalone server); a failover puts
    /// the node that took over in its place (`takeOver`).
    private let shardNodes: NIOLockedValueBox<[LiveNode]>
    var nodes: [LiveNode] { shardNodes.withLockedValue { $0 } }
    /// Nodes replaced after a failover, closed with the side; and when each shard's cluster
    /// map was last asked for while its node was silent.
    private let replaced = NIOLockedValueBox<(nodes: [LiveNode], asked: [Int: ContinuousClock.Instant])>(([], [:]))
    private let topology: ClusterTopology?
    /// Nodes met through redirections (a slot moving to a node the map did not name).
    private let extraNodes = NIOLockedValueBox<[String: LiveNode]>([:])
    /// Each node's DBSIZE per database as `keyCount` read it ("address/db"): sizes the key
    /// tables of the passes without asking again.
    private let knownSizes = NIOLockedValueBox<[String: Int]>([:])
    public let isCluster: Bool
    public let describe: String

    private init(
        endpoint: RedisEndpoint, options: LiveOptions, limiter: RateLimiter?, nodes: [LiveNode], topology: ClusterTopology?,
        describe: String
    ) {
        self.endpoint = endpoint
        self.options = options
        self.limiter = limiter
        shardNodes = NIOLockedValueBox(nodes)
        governor = options.maxLatency.flatMap { d in limiter.map { LatencyGovernor(limit: d, limiter: $0) } }
        governor?.start(nodes.map { ($0.endpoint, $0.connectOptions) }, logger: options.logger)
        self.topology = topology
        isCluster = topology != nil
        self.describe = describe
        if isCluster { for (i, n) in nodes.enumerated() { watchFailover(n, shard: i) } }
    }

    /// Connects and finds out whether the server is a cluster node (then connects to every
    /// shard it names). Connections made before a failure are closed.
    public static func open(endpoint: RedisEndpoint, options: LiveOptions) async throws -> LiveSide {
        let limiter = options.qps != nil || options.maxLatency != nil ? RateLimiter(qps: options.qps) : nil
        let seed = LiveNode(endpoint: endpoint, options: options, limiter: limiter, readOnly: false)
        var opened = [seed]
        do {
            try await seed.connect()
            guard let t = try await clusterTopology(seed, endpoint: endpoint) else {
                try await waitForSync(seed)
                try await seed.probe(slots: nil)
                let describe = "\(seed.serverName) \(seed.version.map(String.init).joined(separator: ".")) at \(seed.address)"
                return LiveSide(endpoint: endpoint, options: options, limiter: limiter, nodes: [seed], topology: nil, describe: describe)
            }
            if let db = endpoint.db, db != 0 {
                throw SlotdiffError(.usage, "\(endpoint): a cluster has only database 0; remove /\(db) from the URL", endpoint: endpoint.address)
            }
            await seed.close()
            opened = []
            var nodes: [LiveNode] = []
            for shard in t.shards {
                // A replica that is failed, loading or out of sync is passed over for the next, then the primary.
                let replicas = shard.replicas.filter { r in
                    guard options.readFromReplica, let health = r.health, health != "online" else { return true }
                    options.logger.warning(
                        "replica \(r.host):\(r.port.map(String.init) ?? "-") is not read: the cluster map says its health is \(health); reading another replica, or the primary \(shard.primary), instead",
                        metadata: ["endpoint": "\(endpoint)"])
                    return false
                }
                let candidates = options.readFromReplica ? replicas + [shard.primary] : [shard.primary]
                var chosen: LiveNode?
                for (c, node) in candidates.enumerated() {
                    guard let announced = node.endpoint(from: endpoint) else { continue }
                    let ep = options.reachable(announced, aliases: node.aliases)
                    let n = LiveNode(endpoint: ep, options: options, limiter: limiter, readOnly: !node.isPrimary)
                    opened.append(n)
                    try await connectNode(n, announced: announced, cluster: endpoint)
                    if !node.isPrimary, let why = try await n.outOfSync() {
                        options.logger.warning(
                            "replica \(n.address) is not read: \(why); reading \(candidates[(c + 1)...].contains { !$0.isPrimary } ? "another replica, or " : "")the primary \(shard.primary) instead",
                            metadata: ["endpoint": "\(ep)"])
                        continue
                    }
                    chosen = n
                    break
                }
                guard let n = chosen else {
                    throw SlotdiffError(.connection, "\(endpoint): cluster node \(shard.primary) has no reachable address", endpoint: endpoint.address)
                }
                try await n.probe(slots: shard.slots.map { $0.lowerBound.rawValue...$0.upperBound.rawValue })
                nodes.append(n)
            }
            var describe = "cluster of \(t.shards.count) shards (\(nodes.map(\.address).joined(separator: ", ")))"
            if !t.coversAllSlots { describe += "; some slots are not served" }
            return LiveSide(endpoint: endpoint, options: options, limiter: limiter, nodes: nodes, topology: t, describe: describe)
        } catch {
            for n in opened { await n.close() }
            throw error
        }
    }

    /// A standalone replica out of sync with its primary (link down, first sync under way) may
    /// hold stale or partial data: waited for, warning, for up to `nodeTimeout`, then the check
    /// ends naming it. Its primary is not read in its place: its address, as the replica knows
    /// it, may not be reachable from here, and the operator chose this server.
    private static func waitForSync(_ node: LiveNode) async throws {
        let start = ContinuousClock.now
        var told: ContinuousClock.Instant?
        while let why = try await node.outOfSync() {
            let waited = ContinuousClock.now - start
            if waited >= node.options.nodeTimeout {
                throw SlotdiffError(
                    .connection,
                    "\(node.endpoint) is a replica and \(why): its data may be stale or partial, so it is not read; waited \(LiveNode.show(waited)) (--node-timeout) — read its primary, or wait for the sync",
                    endpoint: node.address)
            }
            if told.map({ ContinuousClock.now - $0 >= .seconds(5) }) ?? true {
                told = .now
                node.options.logger.warning(
                    "a replica and \(why): waiting for it for up to \(LiveNode.show(node.options.nodeTimeout)) (--node-timeout)",
                    metadata: ["endpoint": "\(node.endpoint)"])
            }
            try await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Connects to a node found from the cluster map or a redirection. A node that cannot be
    /// reached at the address the cluster announces (NAT, container or pod addresses, a
    /// hostname only resolvable elsewhere) is named with the way to reach it another way.
    private static func connectNode(_ n: LiveNode, announced: RedisEndpoint, cluster: RedisEndpoint) async throws {
        do {
            try await n.connect(announced: true)
        } catch var e as SlotdiffError where e.code == .connection {
            if n.endpoint.address == announced.address {
                e.message +=
                    "; the cluster at \(cluster.address) announces this node as \(announced.address): if this machine reaches it at another address, give --cluster-address \(announced.address)=HOST:PORT (or a line of a --cluster-address-map file)"
            } else {
                e.message += " (announced as \(announced.address), mapped by the cluster address map)"
            }
            throw e
        }
    }

    /// The cluster map from CLUSTER SHARDS, or CLUSTER SLOTS on servers before 7.0; nil for a
    /// standalone server (cluster support disabled).
    private static func clusterTopology(_ seed: LiveNode, endpoint: RedisEndpoint) async throws -> ClusterTopology? {
        // HELLO says which, whatever the user may run.
        if seed.serverMode == "standalone" { return nil }
        let shards = try await seed.pipeline(db: nil, [["CLUSTER", "SHARDS"]])[0]
        do {
            if shards.serverError == nil { return try ClusterTopology(clusterShards: shards, askedHost: endpoint.host) }
            let slots = try await seed.pipeline(db: nil, [["CLUSTER", "SLOTS"]])[0]
            if slots.serverError == nil { return try ClusterTopology(clusterSlots: slots, askedHost: endpoint.host) }
            // Refused, or unknown (renamed or disabled: a server without cluster support
            // knows CLUSTER and says so), rather than unsupported: a cluster node read as a
            // standalone server would list one node's keys only.
            if let e = slots.serverError, ReadPlan.isUnusable(e) {
                let info = try await seed.pipeline(db: nil, [["INFO", "cluster"]])[0]
                var clustered = seed.serverMode == "cluster" || info.string?.contains("cluster_enabled:1") == true
                if info.serverError != nil && seed.serverMode == nil {
                    // READONLY (@connection) is refused by a server without cluster support.
                    clustered = try await seed.pipeline(db: nil, [["READONLY"]])[0].serverError == nil
                }
                if clustered {
                    throw SlotdiffError(
                        .refused,
                        e.code == "NOPERM"
                            ? "\(endpoint): this user may not run CLUSTER SHARDS or CLUSTER SLOTS, so a cluster cannot be told from a standalone server: grant +cluster|shards +cluster|slots"
                            : "\(endpoint): this cluster node does not know CLUSTER (\(e.message)), so its cluster map cannot be read: if CLUSTER is renamed there, give --rename-command CLUSTER=NAME",
                        endpoint: endpoint.address)
                }
            }
            return nil
        } catch let e as SlotdiffError {
            throw e
        } catch {
            throw SlotdiffError(.connection, "\(endpoint): cannot read the cluster map: \(error)", endpoint: endpoint.address)
        }
    }

    public var isLive: Bool { true }

    /// Keys held (DBSIZE in every database that holds keys), summed over the nodes: sizes the
    /// passes of a check. A refused DBSIZE ends the check.
    public func keyCount() async throws -> Int? {
        var total = 0
        var dbs: [Int?] = [nil]  // a cluster has database 0 only
        if !isCluster { dbs = try await readDatabases() }
        for n in nodes {
            for db in dbs {
                let count = try await n.keyCount(db: db)
                knownSizes.withLockedValue { $0[Self.sizeKey(n, db)] = count }
                total += count
            }
        }
        return total
    }

    private static func sizeKey(_ node: LiveNode, _ db: Int?) -> String { "\(node.address)/\(db ?? 0)" }

    public func databases() async throws -> [Int]? { try await readDatabases() }

    /// The databases this side reads: a cluster has only database 0; a standalone server the
    /// one in its URL, or every database that holds keys.
    func readDatabases() async throws -> [Int] {
        if isCluster { return [0] }
        if let db = endpoint.db { return [db] }
        return try await nodes[0].databases()
    }

    public func close() async {
        governor?.stop()
        for n in nodes { await n.close() }
        for n in extraNodes.withLockedValue({ Array($0.values) }) { await n.close() }
        for n in replaced.withLockedValue({ $0.nodes }) { await n.close() }
    }

    private func watchFailover(_ node: LiveNode, shard: Int) {
        node.whileSilent { [weak self] n in await self?.takeOver(shard: shard, from: n) ?? false }
    }

    /// Whether another node now serves shard `shard`'s slots, which `node` was read for: asked
    /// while `node` does not answer, at most once a second for the shard, of the shard's
    /// replicas and the other shards' nodes (each on a connection of its own, 2 s at most). When
    /// the cluster map names another node, that node is connected to and put in `node`'s place.
    func takeOver(shard: Int, from node: LiveNode) async -> Bool {
        guard let topology, shard < topology.shards.count else { return false }
        if shardNodes.withLockedValue({ $0[shard] }) !== node { return true }
        let now = ContinuousClock.now
        let due = replaced.withLockedValue { r -> Bool in
            if let last = r.asked[shard], now - last < .seconds(1) { return false }
            r.asked[shard] = now
            return true
        }
        guard due, let slot = topology.shards[shard].slots.first?.lowerBound else { return false }
        var quick = node.connectOptions
        quick.connectTimeout = .seconds(2)
        quick.requestTimeout = .seconds(2)
        var asked = topology.shards[shard].replicas.compactMap { r in r.endpoint(from: endpoint).map { options.reachable($0, aliases: r.aliases) } }
        asked += nodes.map(\.endpoint) + [endpoint]
        var seen: Set<String> = [node.endpoint.address]
        for ep in asked where seen.insert(ep.address).inserted {
            guard let map = await Self.clusterMap(at: ep, options: quick),
                let owner = map.shards.first(where: { $0.slots.contains { $0.contains(slot) } })
            else { continue }
            let healthy = owner.replicas.filter { $0.health == nil || $0.health == "online" }
            guard let next = (options.readFromReplica ? healthy : []).first ?? Optional(owner.primary),
                let announced = next.endpoint(from: endpoint)
            else { continue }
            let to = options.reachable(announced, aliases: next.aliases)
            // The cluster still names the silent node: no failover (yet).
            if to.address == node.endpoint.address { return false }
            let fresh = LiveNode(endpoint: to, options: options, limiter: limiter, readOnly: !next.isPrimary)
            do {
                try await Self.connectNode(fresh, announced: announced, cluster: endpoint)
                try await fresh.probe(slots: owner.slots.map { $0.lowerBound.rawValue...$0.upperBound.rawValue })
            } catch {
                await fresh.close()
                return false
            }
            watchFailover(fresh, shard: shard)
            let placed = shardNodes.withLockedValue { list -> Bool in
                guard list[shard] === node else { return false }
                list[shard] = fresh
                return true
            }
            if placed {
                replaced.withLockedValue { $0.nodes.append(node) }
                options.logger.warning(
                    "\(node.address) does not answer and the cluster now serves its slots from \(to.address) (failover): its keys are listed there from the start",
                    metadata: ["endpoint": "\(node.endpoint)"])
            } else {
                await fresh.close()
            }
            return true
        }
        return false
    }

    /// The cluster map as the node at `ep` tells it, on a connection of its own; nil when it
    /// cannot be read.
    private static func clusterMap(at ep: RedisEndpoint, options: RedisConnectionOptions) async -> ClusterTopology? {
        guard let c = try? await RedisConnection.connect(to: ep, options: options) else { return nil }
        defer { Task { await c.close() } }
        if let r = try? await c.send(["CLUSTER", "SHARDS"]), r.serverError == nil, let t = try? ClusterTopology(clusterShards: r, askedHost: ep.host) {
            return t
        }
        if let r = try? await c.send(["CLUSTER", "SLOTS"]), r.serverError == nil { return try? ClusterTopology(clusterSlots: r, askedHost: ep.host) }
        return nil
    }

    /// What a standalone server (or a cluster that cannot be listed one slot range at a time)
    /// kept per pass when it was read once: per node, a spill store.
    struct Kept: KeptPasses {
        let stores: [SpillStore]
    }

    /// A check in several passes reads a standalone server once (its SCAN cannot be limited
    /// to a pass's slots), keeping the records of each pass in a temporary file per node. A
    /// cluster is read pass by pass when every node can list a slot range (see
    /// `LiveNode.listsBySlot`), else once like a standalone server. A stop asked for (Ctrl-C)
    /// ends the reading early and keeps nothing: the check then leaves every pass undone.
    public func readOnce(passes: [SlotRange], _ read: ReadContext) async throws -> (any KeptPasses)? {
        guard passes.count > 1 else { return nil }
        if isCluster {
            var bySlot = true
            for n in nodes where bySlot { bySlot = try await n.listsBySlot() }
            if bySlot { return nil }
        }
        options.logger.info(
            "read once for \(passes.count) passes, the records kept per pass in temporary files",
            metadata: ["endpoint": "\(endpoint)"])
        var whole = read.filter
        whole.pass = nil
        let all = whole
        var stores: [Int: SpillStore] = [:]
        do {
            try await withThrowingTaskGroup(of: (Int, SpillStore?).self) { group in
                for i in nodes.indices {
                    group.addTask {
                        (i, try await self.collect(shard: i, filter: all, progress: read.progress, spillPasses: passes, stop: read.stop).spill)
                    }
                }
                for try await (i, store) in group { stores[i] = store }
            }
        } catch is Stopped {
            return nil  // the stores, let go, delete their files
        }
        return Kept(stores: nodes.indices.compactMap { stores[$0] })
    }

    private struct Stopped: Error {}

    /// Lists and fetches every key that passes the filter into one key table per node (or
    /// loads the pass from what `readOnce` kept).
    public func records(_ read: ReadContext, kept: (any KeptPasses)?) async throws -> SideRecords {
        let (tables, filtered) = try await collect(filter: read.filter, progress: read.progress, kept: kept as? Kept)
        var input = ["endpoint": endpoint.description, "server": describe]
        if let plan = readPlan { input["read"] = plan }
        if let governor { input["throttle"] = governor.report }
        var r = SideRecords(tables: tables, inputs: [input])
        r.filteredOut = filtered
        return r
    }

    /// How this side was read where that is not the default plan (DUMP and PEXPIRETIME), in
    /// words; per node when a cluster's nodes differ. Nil for the default plan.
    public var readPlan: String? {
        let all = nodes + extraNodes.withLockedValue { $0.values.sorted { $0.address < $1.address } }
        let texts = all.map { ($0.address, $0.plan.text) }
        let distinct = Set(texts.map(\.1))
        if distinct == [nil] { return nil }
        if distinct.count == 1 { return texts[0].1 }
        return texts.compactMap { a, t in t.map { "\(a): \($0)" } }.joined(separator: "; ")
    }

    public func reread(_ keys: [(db: Int, key: [UInt8])], first: [SideState?]) async throws -> [SideState?] {
        try await refetch(keys)
    }

    /// Lists and fetches every key that passes the filter into one key table per node.
    func collect(filter: KeyFilter, progress: CheckProgress? = nil, kept: Kept? = nil) async throws -> (tables: [KeyTable], filteredOut: Int) {
        if let kept, let pass = filter.pass {
            // One table per node; a key two nodes held (a slot moving) is compared once.
            var tables: [KeyTable] = []
            var filtered = 0
            for (store, node) in zip(kept.stores, nodes) {
                guard let i = store.passes.firstIndex(of: pass) else {
                    throw SlotdiffError(.io, "\(endpoint): pass \(pass) was not kept", endpoint: endpoint.address)
                }
                let p = try store.load(pass: i, origin: node.address)
                tables.append(p.table)
                filtered += p.filteredOut
            }
            return (tables, filtered)
        }
        var tables: [KeyTable] = []
        var filtered = 0
        try await withThrowingTaskGroup(of: (KeyTable, Int).self) { group in
            for i in nodes.indices {
                group.addTask {
                    let r = try await self.collect(shard: i, filter: filter, progress: progress)
                    return (r.table, r.filteredOut)
                }
            }
            for try await (t, f) in group {
                tables.append(t)
                filtered += f
            }
        }
        return (tables, filtered)
    }

    /// Lists and fetches the keys of one shard's node; with `spillPasses`, into a new spill
    /// store kept per pass. A listing interrupted by a lost connection (the server may have
    /// restarted, its SCAN cursor meaning nothing on the new process), or by a failover to
    /// another node, starts again from the beginning, with what was read so far thrown away,
    /// so nothing is counted twice and nothing is missed.
    private func collect(
        shard: Int, filter: KeyFilter, progress: CheckProgress?, spillPasses: [SlotRange]? = nil,
        stop: @escaping @Sendable () -> Bool = { false }
    ) async throws -> (table: KeyTable, spill: SpillStore?, filteredOut: Int) {
        var restarts = 0
        var failovers = 0
        while true {
            let node = shardNodes.withLockedValue { $0[shard] }
            let store = try spillPasses.map { try SpillStore(passes: $0) }
            do {
                let (table, filtered) = try await collectOnce(node: node, filter: filter, progress: progress, spill: store, stop: stop)
                try store?.finish()
                return (table, store, filtered)
            } catch let e as ListingInterrupted {
                restarts += 1
                if restarts > 5 {
                    throw SlotdiffError(
                        .connection,
                        "\(e.endpoint): connections were lost \(restarts) times while its keys were listed; a listing that cannot be finished in one go cannot be trusted",
                        endpoint: e.endpoint)
                }
                options.logger.warning(
                    "a connection was lost while its keys were listed (restart or failover?); listing it again from the start",
                    metadata: ["endpoint": "\(e.endpoint)", "restart": "\(restarts)"])
            } catch let e as NodeReplaced {
                failovers += 1
                if failovers > 5 {
                    throw SlotdiffError(
                        .connection, "\(e.endpoint): its slots failed over \(failovers) times while they were listed", endpoint: e.endpoint)
                }
            }
        }
    }

    private func collectOnce(
        node: LiveNode, filter: KeyFilter, progress: CheckProgress?, spill: SpillStore?,
        stop: @Sendable () -> Bool
    ) async throws -> (KeyTable, Int) {
        var filtered = 0
        var dbs = try await readDatabases()
        if let want = filter.dbs { dbs = dbs.filter { want.contains($0) } }
        let units = try await slotUnits(for: node, filter: filter)
        let table = KeyTable(origin: node.address, expectedCount: try await expectedKeys(node: node, dbs: dbs, units: units, filter: filter))
        // Fetches run as child tasks; their results are kept here, in the one task that owns
        // the table, as each batch comes back.
        func keep(_ db: Int, _ keys: KeyList, _ slots: [UInt16], _ results: [FetchResult]) throws {
            // The batch's table slots are fetched into the cache first, all at once (see
            // `KeyTable.prepare`).
            var hashes = [UInt64](repeating: 0, count: spill == nil ? keys.count : 0)
            try keys.withKeys { k in
                for n in hashes.indices { hashes[n] = table.prepare(db: db, key: k[n]) }
                for n in keys.indices {
                    guard case .present(let s) = results[n] else { continue }
                    let slot = slots[n], kb = k[n]
                    if !filter.accepts(db: db, key: kb, slot: slot, type: s.type) {
                        filtered += 1
                        spill?.countFiltered(slot: slot)
                    } else if let spill {
                        try spill.add(db: db, key: kb, slot: slot, state: s)
                    } else {
                        table.insert(db: db, key: kb, hash: hashes[n], slot: slot, type: s.type, expireMs: s.expireMs, digest: s.digest)
                    }
                }
            }
        }
        for db in dbs {
            // SCAN feeds batches to a bounded number of concurrent fetches.
            try await withThrowingTaskGroup(of: (KeyList, [UInt16], [FetchResult]).self) { group in
                var running = 0
                var pending = KeyList()
                var pendingSlots: [UInt16] = []
                func flush(_ keys: KeyList, _ slots: [UInt16]) async throws {
                    if stop() { throw Stopped() }
                    if running >= max(1, options.workers), let (k, s, r) = try await group.next() {
                        running -= 1
                        try keep(db, k, s, r)
                    }
                    running += 1
                    let cluster = isCluster
                    group.addTask {
                        let d = CanonicalDigester()
                        let results = try await self.fetchRouted(node: node, db: cluster ? nil : db, keys: keys, digester: d)
                        progress?.addKeys(keys.count)
                        return (keys, slots, results)
                    }
                }
                try await node.scan(db: isCluster ? nil : db, match: filter.match, slotUnits: units, inPass: filter.inPass) { keys, slots in
                    if stop() { throw Stopped() }
                    // One slot per key: a shorter list must not drop keys unseen, as zip would.
                    precondition(keys.count == slots.count, "a listing gave \(keys.count) keys and \(slots.count) slots")
                    keys.withKeys { k in
                        for (i, slot) in zip(keys.indices, slots) {
                            // Keys outside --slots are not fetched at all.
                            if !filter.inPass(slot) { continue }
                            if let only = filter.slots, !only.contains(slot) {
                                filtered += 1
                                spill?.countFiltered(slot: slot)
                                continue
                            }
                            pending.append(k[i])
                            pendingSlots.append(slot)
                        }
                    }
                    var start = 0
                    while pending.count - start >= options.batch {
                        let end = start + options.batch
                        try await flush(pending.keys(start..<end), Array(pendingSlots[start..<end]))
                        start = end
                    }
                    pending.removeFirst(start)
                    pendingSlots.removeFirst(start)
                }
                if !pending.isEmpty { try await flush(pending, pendingSlots) }
                for try await (k, s, r) in group { try keep(db, k, s, r) }
            }
        }
        return (table, filtered)
    }

    /// About how many keys this read of `node` keeps: its DBSIZE, times the share of its slots
    /// the pass reads. A table sized once does not grow by copying (which, with the page faults
    /// of each bigger block, cost a tenth of the checker's CPU on a 220k-key check). Unknown
    /// (DBSIZE refused), or a filter that may keep few of them (`--match`, `--type`, a sample):
    /// a small table that grows.
    private func expectedKeys(node: LiveNode, dbs: [Int], units: [SlotRange]?, filter: KeyFilter) async throws -> Int {
        if filter.match != nil || filter.types != nil || filter.sample != nil { return 1024 }
        var total = 0
        for db in (isCluster ? [nil] : dbs.map { Optional($0) }) {
            if let n = knownSizes.withLockedValue({ $0[Self.sizeKey(node, db)] }) {
                total += n
                continue
            }
            guard let n = try? await node.keyCount(db: db) else { return 1024 }
            total += n
        }
        let width = { (r: SlotRange) in Int(r.upper) - Int(r.lower) + 1 }
        var share = 1.0
        if let units, let topology, let i = nodes.firstIndex(where: { $0 === node }), i < topology.shards.count {
            let served = topology.shards[i].slots.reduce(0) { $0 + Int($1.upperBound.rawValue) - Int($1.lowerBound.rawValue) + 1 }
            share = min(1, Double(units.reduce(0) { $0 + width($1) }) / Double(max(1, served)))
        } else if units == nil, let read = filter.readSlots {
            share = Double(width(read)) / Double(HashSlot.count)
        }
        return Int(Double(total) * share * 1.05) + 1024
    }

    /// Fetches keys from `node`, following MOVED/ASK redirections key by key, and reading
    /// again from the start a key that changed type while it was read.
    func fetchRouted(node: LiveNode, db: Int?, keys: KeyList, digester d: CanonicalDigester) async throws -> [FetchResult] {
        var results = try await node.fetch(db: db, keys: keys, digester: d)
        for i in results.indices {
            var hops = 0, changes = 0
            var at = node
            reading: while true {
                switch results[i] {
                case .redirect(let r):
                    hops += 1
                    options.logger.debug("key redirected: \(r)", metadata: ["endpoint": "\(at.endpoint)"])
                    if hops > 5 {
                        throw SlotdiffError(
                            .unexpectedReply, "\(endpoint): key \(Difference.display(Array(keys[i]))) redirected more than 5 times (slot \(r.slot))",
                            endpoint: endpoint.address)
                    }
                    // An empty host (`MOVED 3999 :6381`, cluster-preferred-endpoint-type unknown-endpoint)
                    // is the host that sent the redirection.
                    at = try await self.node(host: r.host.isEmpty ? at.endpoint.host : r.host, port: r.port)
                    results[i] = try await at.fetch(db: nil, keys: keys.keys(i..<(i + 1)), digester: d, asking: r.kind == .ask)[0]
                case .changed:
                    changes += 1
                    if changes > 5 {
                        throw SlotdiffError(
                            .unexpectedReply, "\(at.endpoint): key \(Difference.display(Array(keys[i]))) changed type \(changes) times while it was read",
                            endpoint: at.endpoint.address)
                    }
                    results[i] = try await at.fetch(db: isCluster ? nil : db, keys: keys.keys(i..<(i + 1)), digester: d)[0]
                case .present, .absent:
                    break reading
                }
            }
        }
        return results
    }

    private func node(host: String, port: Int) async throws -> LiveNode {
        var announced = endpoint
        announced.host = host
        announced.port = port
        announced.db = nil
        let ep = options.reachable(announced, aliases: aliases(host: host, port: port))
        let key = ep.address
        if let n = nodes.first(where: { $0.endpoint.host == ep.host && $0.endpoint.port == ep.port }) { return n }
        if let n = extraNodes.withLockedValue({ $0[key] }) { return n }
        let n = LiveNode(endpoint: ep, options: options, limiter: limiter, readOnly: false)
        try await Self.connectNode(n, announced: announced, cluster: endpoint)
        // Two tasks may meet the same new node at once: one connection set is kept.
        let kept = extraNodes.withLockedValue { nodes -> LiveNode in
            if let other = nodes[key] { return other }
            nodes[key] = n
            return n
        }
        if kept !== n { await n.close() }
        return kept
    }

    /// The other hosts the cluster map announces the node at `host:port` under (a redirection
    /// names a node by its preferred endpoint only; the address map may name it by another).
    private func aliases(host: String, port: Int) -> [String] {
        guard let topology else { return [] }
        for shard in topology.shards {
            for n in [shard.primary] + shard.replicas where n.port == port || n.tlsPort == port {
                let names = [n.host] + n.aliases
                if names.contains(where: { $0.lowercased() == host.lowercased() }) { return names.filter { $0.lowercased() != host.lowercased() } }
            }
        }
        return []
    }

    /// The state of single keys now (for re-check rounds): nil where the key does not exist.
    public func refetch(_ keys: [(db: Int, key: [UInt8])]) async throws -> [SideState?] {
        var out = [SideState?](repeating: nil, count: keys.count)
        let d = CanonicalDigester()
        // Group by (node, db) so each group is one batch.
        var groups: [String: [Int]] = [:]
        for (i, k) in keys.enumerated() {
            // A cluster has only database 0: a key of another database is not there.
            if isCluster && k.db != 0 { continue }
            let n = nodeFor(key: k.key)
            groups["\(n)|\(k.db)", default: []].append(i)
        }
        for (g, idx) in groups {
            let shard = Int(g.split(separator: "|")[0])!
            let db = keys[idx[0]].db
            for chunk in stride(from: 0, to: idx.count, by: options.batch) {
                let part = Array(idx[chunk..<min(idx.count, chunk + options.batch)])
                var r: [FetchResult]
                var failovers = 0
                while true {
                    do {
                        r = try await fetchRouted(node: nodes[shard], db: isCluster ? nil : db, keys: KeyList(part.map { keys[$0].key }), digester: d)
                        break
                    } catch let e as NodeReplaced where failovers < 5 {
                        // Read again from the node that took over.
                        failovers += 1
                        options.logger.debug("read again after a failover", metadata: ["endpoint": "\(e.endpoint)"])
                    }
                }
                for (j, i) in part.enumerated() {
                    if case .present(let s) = r[j] { out[i] = s }
                }
            }
        }
        return out
    }

    /// On a cluster node, the slot ranges it serves (within `--slots`, `--shard`, `--sample` and the pass)
    /// and the slots it is importing, so only those slots are listed. Nil: a standalone server,
    /// listed whole.
    private func slotUnits(for node: LiveNode, filter: KeyFilter) async throws -> [SlotRange]? {
        guard isCluster, let topology, let i = nodes.firstIndex(where: { $0 === node }), i < topology.shards.count else { return nil }
        var ranges = topology.shards[i].slots.map { SlotRange($0.lowerBound.rawValue, $0.upperBound.rawValue) }
        ranges += try await node.importingSlots().map { SlotRange($0, $0) }
        let wanted = filter.readSlots
        let units = ranges.compactMap { r -> SlotRange? in
            let lo = max(r.lower, wanted?.lower ?? 0), hi = min(r.upper, wanted?.upper ?? SlotRange.all.upper)
            return lo <= hi ? SlotRange(lo, hi) : nil
        }
        // A sample (--sample) lists only its slots: each run of drawn slots is one unit.
        guard let sample = filter.sample else { return units }
        return units.flatMap { sample.runs(in: $0) }
    }

    func nodeFor(key: [UInt8]) -> Int {
        guard let topology, nodes.count > 1 else { return 0 }
        let slot = HashSlot.slot(of: key)
        return topology.shardIndex(for: HashSlot(Int(slot))!) ?? 0
    }
}
