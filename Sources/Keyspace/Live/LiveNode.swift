import Foundation
import HashSlots
import Logging
import NIOConcurrencyHelpers
import NIOCore
import RDB
import RESP
import SlotdiffCore

/// A cluster node's requests end with this once another node serves its slots (a failover):
/// its listing starts over there.
struct NodeReplaced: Error {
    let endpoint: String
}

/// One server (a standalone server or one cluster node) and the connections a side keeps to
/// it. Every command sent is a read command; the connection is re-established on a lost
/// connection, and the batch retried, before the check gives up naming the endpoint.
final class LiveNode: Sendable {
    let endpoint: RedisEndpoint
    let options: LiveOptions
    let limiter: RateLimiter?
    let connectOptions: RedisConnectionOptions
    /// Reading from a replica in a cluster needs READONLY on every connection.
    let readOnly: Bool
    /// What changes as the node is used, behind one lock: its connections (by connection
    /// index) and what the server told.
    private struct State {
        var connections: [RedisConnection?]
        /// SELECT was refused (a user allowed one database only): no connection ever leaves the
        /// database it was opened in, so a batch for that database needs no SELECT.
        var selectRefused = false
        var everConnected: [Bool]
        var next = 0
        /// Connections that were lost and made again since `connect()`. A SCAN cursor (or a
        /// slot listing) is only good on the server process it came from: a listing that sees
        /// this change starts again, since the process may have restarted or failed over.
        var replaced = 0
        /// What the first handshake told of the server.
        var server = ServerDescription()
        var countKeysAllowed: Bool?
        var plan: ReadPlan
        /// When the node last answered a request, on any connection: a silence is counted from
        /// it (or from the request, if later), so one dead connection is not a dead node.
        var lastAnswer = ContinuousClock.now
        /// When a silence was last told, so several connections waiting on one node warn once.
        var lastSilenceWarning: ContinuousClock.Instant?
        /// Asked while the node does not answer: whether another node took over its slots.
        var replacedCheck: (@Sendable (LiveNode) async -> Bool)?
    }

    private let state: NIOLockedValueBox<State>
    var serverName: String { state.withLockedValue { $0.server.name } }
    var version: [Int] { state.withLockedValue { $0.server.version } }
    /// `standalone` or `cluster` as HELLO told (servers from Redis 6); nil before.
    var serverMode: String? { state.withLockedValue { $0.server.mode } }

    init(endpoint: RedisEndpoint, options: LiveOptions, limiter: RateLimiter?, readOnly: Bool) {
        self.endpoint = endpoint
        self.options = options
        self.limiter = limiter
        self.readOnly = readOnly
        address = endpoint.address
        dumpName = "DUMP reply from \(endpoint.address)"
        connectOptions = RedisConnectionOptions(
            connectTimeout: options.handshakeTimeout, requestTimeout: options.handshakeTimeout,
            tls: options.tls, clientName: "slotdiff", commandNames: options.commandNames)
        let n = max(1, options.workers)
        state = NIOLockedValueBox(
            State(
                connections: Array(repeating: nil, count: n),
                everConnected: Array(repeating: false, count: n), plan: ReadPlan(disabled: options.commandNames)))
    }

    var logger: Logger { options.logger }

    /// For a cluster node: `check` is asked, while the node does not answer, whether another
    /// node now serves its slots (a failover). When it says so, the node's requests end with
    /// `NodeReplaced`, and its listing starts over on the other node.
    func whileSilent(ask check: @escaping @Sendable (LiveNode) async -> Bool) {
        state.withLockedValue { $0.replacedCheck = check }
    }

    /// How this node is read: the default plan, or what it fell back to and why.
    var plan: ReadPlan { state.withLockedValue { $0.plan } }

    /// Records a fallback the first time it is needed and warns once for the node. `command`
    /// is the one refused: PEXPIRETIME, DUMP, or MEMORY USAGE (without which no value's size
    /// is known, so none may be DUMPed).
    func fallBack(_ change: ReadPlanChange, _ command: String, _ e: RedisServerError) {
        let why = "\(command) \(ReadPlan.reason(e))"
        let first = state.withLockedValue { s -> Bool in
            switch change {
            case .expiryByPTTL where s.plan.expiryByPTTL == nil: s.plan.expiryByPTTL = why
            case .valuesByType where s.plan.valuesByType == nil:
                s.plan.valuesByType = why
                s.plan.dumpAllowed = command != "DUMP"
            default: return false
            }
            return true
        }
        guard first else { return }
        switch change {
        case .expiryByPTTL:
            logger.warning(
                "\(why) (\(e.message)); expiry is read with PTTL and this machine's clock",
                metadata: ["endpoint": "\(endpoint)"])
        case .valuesByType:
            logger.warning(
                "\(why) (\(e.message)); values are read with per-type commands (GETRANGE, LRANGE, SSCAN, HSCAN, ZSCAN, XRANGE) instead of DUMP",
                metadata: ["endpoint": "\(endpoint)"])
        }
    }

    /// Asks once, before any key is read, whether this node runs the commands the read plan
    /// starts with (MEMORY USAGE, DUMP, PEXPIRETIME), each on one key that does not exist (a
    /// random name, in `slots`, the node's own, so no redirection answers): so the plan is known, and
    /// told, from the start. Only a reply that refuses the command itself (unknown, or NOPERM
    /// "to run the … command") changes the plan; a NOPERM for the key (an ACL key pattern the
    /// probe's key falls outside) says nothing of the command, and the first real read decides,
    /// as it does for any refusal the probe could not see. Read-only, and three commands.
    func probe(slots: [ClosedRange<UInt16>]?) async throws {
        let key = RESPArg(Self.probeKey(in: slots))
        var asks: [(ReadPlanChange, String, [RESPArg])] = []
        let plan = self.plan
        if options.mode == .digest && plan.valuesByType == nil {
            // In the order a batch asks them, so the plan reads as it would have.
            asks.append((.valuesByType, "MEMORY USAGE", [Word.memory, Word.usage, key, Word.samples, Word.zero]))
            asks.append((.valuesByType, "DUMP", [Word.dump, key]))
        }
        if hasPexpiretime && plan.expiryByPTTL == nil { asks.append((.expiryByPTTL, "PEXPIRETIME", [Word.pexpiretime, key])) }
        // The type reads: every value's when DUMP is not used, big values' always.
        var typeAsks: [(ValueType, String, [RESPArg])] = []
        if options.mode == .digest {
            typeAsks = Self.typeReads(key)
        }
        if asks.isEmpty && typeAsks.isEmpty { return }
        let replies = try await pipeline(db: nil, asks.map(\.2) + typeAsks.map(\.2))
        for ((change, command, _), reply) in zip(asks, replies) {
            guard let e = reply.serverError, Self.refusesCommand(e) else { continue }
            fallBack(change, command, e)
        }
        for ((type, command, _), reply) in zip(typeAsks, replies.dropFirst(asks.count)) {
            guard let e = reply.serverError, Self.refusesCommand(e) else { continue }
            let why = "\(command) \(ReadPlan.reason(e))"
            let first = state.withLockedValue { s -> Bool in
                guard s.plan.unreadable[type] == nil else { return false }
                s.plan.unreadable[type] = why
                return true
            }
            if first {
                let which = self.plan.valuesByType == nil ? "\(type) values too big for DUMP" : "\(type) values"
                logger.warning(
                    "\(why) (\(e.message)): \(which) cannot be read here, and the check ends (exit 2) at the first one met; \(Self.grant(command, e))",
                    metadata: ["endpoint": "\(endpoint)"])
            }
        }
    }

    /// The reads each type's values need besides DUMP (their size, then the value in chunks),
    /// as the probe sends them on a key that does not exist.
    static func typeReads(_ k: RESPArg) -> [(ValueType, String, [RESPArg])] {
        [
            (.string, "STRLEN", [Word.strlen, k]), (.string, "GETRANGE", [Word.getrange, k, Word.zero, Word.zero]),
            (.list, "LLEN", [Word.llen, k]), (.list, "LRANGE", [Word.lrange, k, Word.zero, Word.zero]),
            (.set, "SCARD", [Word.scard, k]), (.set, "SSCAN", [Word.sscan, k, Word.zero]),
            (.hash, "HLEN", [Word.hlen, k]), (.hash, "HSCAN", [Word.hscan, k, Word.zero]),
            (.zset, "ZCARD", [Word.zcard, k]), (.zset, "ZSCAN", [Word.zscan, k, Word.zero]),
            (.stream, "XLEN", [Word.xlen, k]), (.stream, "XRANGE", ["XRANGE", k, "-", "+", Word.count, "1"])
        ]
    }

    /// What would let this user run `command`, for messages.
    static func grant(_ command: String, _ e: RedisServerError) -> String {
        e.code == "NOPERM"
            ? "grant it: ACL SETUSER <user> +\(command.lowercased())"
            : "the server does not know it: if it is renamed, give --rename-command \(command)=NEW"
    }

    /// Why this node, a replica, should not be read now: its link to the primary is down or
    /// its first sync is under way (its data may be stale or partial). Nil for a primary, a
    /// replica in sync, or a server that does not tell (INFO refused).
    func outOfSync() async throws -> String? {
        let r = try await pipeline(db: nil, [["INFO", "replication"]])[0]
        guard r.serverError == nil, let text = r.string else { return nil }
        var info: [Substring: Substring] = [:]
        for line in text.split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            info[line[..<colon]] = line[line.index(after: colon)...]
        }
        guard info["role"] == "slave" || info["role"] == "replica" else { return nil }
        if info["master_sync_in_progress"] == "1" { return "its first sync with its primary is under way (master_sync_in_progress:1)" }
        if let link = info["master_link_status"], link != "up" { return "its link to its primary is \(link) (master_link_status:\(link))" }
        return nil
    }

    /// An error reply that refuses the command whatever its keys: unknown (renamed, disabled)
    /// or NOPERM naming the command ("has no permissions to run the 'dump' command").
    static func refusesCommand(_ e: RedisServerError) -> Bool {
        let text = e.message.lowercased()
        return text.contains("unknown command") || (e.code == "NOPERM" && text.contains("to run the"))
    }

    /// A key for the probe, in one of `slots` when given. A random part makes a key that
    /// exists as good as impossible: DUMP of a huge one would serialize it whole.
    static func probeKey(in slots: [ClosedRange<UInt16>]?) -> [UInt8] {
        let base = Array("slotdiff-probe-\(String(UInt64.random(in: 0...UInt64.max), radix: 36))-".utf8)
        guard let slots, !slots.isEmpty else { return base }
        for n in 0..<1_000_000 {
            let key = base + Array(String(n).utf8)
            let slot = HashSlot.slot(of: key)
            if slots.contains(where: { $0.contains(slot) }) { return key }
        }
        return base
    }

    /// How many connections were replaced so far (see `replaced`).
    var epoch: Int { state.withLockedValue { $0.replaced } }

    let address: String
    /// How errors name a DUMP reply from this node.
    let dumpName: String

    /// PEXPIRETIME exists from Redis 7.0 (and in every Valkey).
    var hasPexpiretime: Bool { serverName == "valkey" || version.lexicographicallyPrecedes([7, 0]) == false }
    /// HPEXPIRETIME (hash-field TTLs): Redis 7.4+, Valkey 9+.
    var hasFieldTTLs: Bool {
        serverName == "valkey" ? !version.lexicographicallyPrecedes([9, 0]) : !version.lexicographicallyPrecedes([7, 4])
    }

    /// Opens every connection now, so that any connection made later replaces a lost one
    /// and moves `epoch`.
    /// `announced`: a node the cluster announced, met for the first time: a name that does not
    /// resolve or an address that does not answer the connect is not tried again (behind NAT it
    /// never will), so the check ends at once suggesting the cluster address map.
    func connect(announced: Bool = false) async throws {
        for index in 0..<max(1, options.workers) { _ = try await connection(index, announced: announced) }
    }

    /// Whether this cluster node can list one slot range without walking all its keys: a
    /// slot-ordered SCAN cursor, or CLUSTER COUNTKEYSINSLOT allowed for this user.
    func listsBySlot() async throws -> Bool {
        if hasSlotCursors { return true }
        return try await countsKeysInSlots()
    }

    /// Whether CLUSTER COUNTKEYSINSLOT (and so GETKEYSINSLOT) is allowed here: asked once,
    /// with one command.
    private func countsKeysInSlots() async throws -> Bool {
        if let known = state.withLockedValue({ $0.countKeysAllowed }) { return known }
        let allowed = try await pipeline(db: nil, [["CLUSTER", "COUNTKEYSINSLOT", "0"]])[0].serverError == nil
        state.withLockedValue { $0.countKeysAllowed = allowed }
        return allowed
    }

    /// SCAN from `cursor`, with MATCH when given, COUNT `scanCount`.
    private func scanCommand(_ cursor: RESPArg, match: GlobPattern?) -> [RESPArg] {
        var cmd: [RESPArg] = ["SCAN", cursor]
        if let match { cmd += ["MATCH", RESPArg(match.pattern)] }
        return cmd + ["COUNT", RESPArg(options.scanCount)]
    }

    /// `within`: how long a new connection's handshake may take (what is left of `nodeTimeout`).
    private func connection(_ index: Int, announced: Bool = false, within: Duration? = nil) async throws -> RedisConnection {
        if let c = state.withLockedValue({ $0.connections[index] }), c.isActive { return c }
        let c = try await open(announced: announced, within: within)
        if let v = c.serverInfo["version"] {
            let told = ServerDescription(
                name: c.serverInfo["server"] ?? "redis", version: v.split(separator: ".").compactMap { Int($0) },
                mode: c.serverInfo["mode"])
            state.withLockedValue { if !$0.server.known { $0.server = told } }
        }
        if readOnly {
            let r = try await c.pipeline([["READONLY"]])
            if case .error(let e) = r[0] { throw refusal("READONLY", e) }
        }
        state.withLockedValue { s in
            s.connections[index] = c
            if s.everConnected[index] { s.replaced += 1 }
            s.everConnected[index] = true
        }
        return c
    }

    /// Makes a connection. A node never reached before is tried `reconnectAttempts` times, and
    /// one that accepts the connection but does not answer the handshake within
    /// `handshakeTimeout` is not tried again: it is stopped or hung, or does not speak RESP
    /// (or TLS) on that port. A node read before is tried once: `pipeline` tries again for as
    /// long as `nodeTimeout` allows.
    private func open(announced: Bool = false, within: Duration? = nil) async throws -> RedisConnection {
        let connectedBefore = state.withLockedValue { $0.everConnected.contains(true) }
        var connectOptions = connectOptions
        if let within, within < options.handshakeTimeout {
            connectOptions.connectTimeout = within
            connectOptions.requestTimeout = within
        }
        let backoff = RedisBackoff()
        var attempt = 1
        while true {
            let e: RedisError
            do {
                return try await RedisConnection.connect(to: endpoint, options: connectOptions)
            } catch {
                e = error
            }
            if connectedBefore { throw e }
            if e.code == .requestTimeout || e.code == .tlsHandshakeTimeout { throw unanswered(e) }
            let unreachable = announced && (e.code == .unresolvableHost || e.code == .connectTimeout)
            guard e.isTransient, !unreachable, attempt < max(1, options.reconnectAttempts) else {
                var message = "cannot read \(endpoint): \(e.description)"
                if e.code == .connectionClosed && !endpoint.tls {
                    message += " during the handshake: if the server expects TLS on this port, use rediss://"
                }
                throw SlotdiffError(.connection, message, endpoint: endpoint.address)
            }
            try await Task.sleep(for: backoff.delay(beforeRetry: attempt - 1))
            attempt += 1
        }
    }

    /// The check's end when a node never reached before accepts the connection and says
    /// nothing: what was expected, and what may be wrong.
    private func unanswered(_ e: RedisError) -> SlotdiffError {
        let limit = Self.show(options.handshakeTimeout)
        let what =
            e.code == .tlsHandshakeTimeout
            ? "the server accepted the connection but did not answer the TLS handshake within \(limit): it may not speak TLS on this port (use redis:// for a plain one), or be stopped or hung"
            : "the server accepted the connection but sent no RESP reply to HELLO within \(limit): it may be stopped (SIGSTOP) or hung, or not be a Redis or Valkey server"
                + (endpoint.tls ? "" : " (a TLS port needs rediss://)")
        return SlotdiffError(.connection, "\(endpoint): \(what)", endpoint: endpoint.address)
    }

    /// The check's end when a node read before stays silent or unreachable for `nodeTimeout`.
    private func gaveUp(_ e: RedisError, silent: Duration, resends: Int) -> SlotdiffError {
        let what =
            e.code == .requestTimeout || e.code == .tlsHandshakeTimeout
            ? "no reply for \(Self.show(silent))"
                + (resends > 0 ? " (the request was sent again on a new connection \(resends == 1 ? "once" : "\(resends) times"))" : "")
                + "; it may be stopped (SIGSTOP), hung, overloaded or cut off"
            : "unreachable for \(Self.show(silent)) (\(e.description))"
        return SlotdiffError(
            .connection, "\(endpoint): \(what); giving up (--node-timeout \(Self.show(options.nodeTimeout)))", endpoint: endpoint.address)
    }

    static func show(_ d: Duration) -> String {
        let ms = Int64(d.components.seconds) * 1000 + d.components.attoseconds / 1_000_000_000_000_000
        if ms < 1000 { return "\(ms) ms" }
        // Whole seconds from 10 s, or when within 50 ms of one: "6 s", "1.5 s", "12 s".
        if ms >= 10_000 || (ms + 50) % 1000 < 100 { return "\((ms + 500) / 1000) s" }
        return "\(ms / 1000).\((ms % 1000 + 50) / 100 % 10) s"
    }

    /// Warns while no reply has come since `since` (a batch's first try), until cancelled: a
    /// stopped server otherwise looks like a slow check until `nodeTimeout`.
    /// `on`: the connection waited on, once there is one: a reply still arriving is no silence.
    /// A timer on the event loop, not a task that sleeps: one is set for every batch sent, and
    /// a sleeping task's timer went through another thread pool (~5% of a live check's CPU).
    private func watchSilence(since: ContinuousClock.Instant, on: NIOLockedValueBox<RedisConnection?>) -> RepeatedTask {
        let every = options.silenceWarning
        let limit = options.nodeTimeout
        let period = TimeAmount.nanoseconds(Int64(every.components.seconds) * 1_000_000_000 + every.components.attoseconds / 1_000_000_000)
        return connectOptions.eventLoopGroup.any().scheduleRepeatedTask(initialDelay: period, delay: period) { [self] task in
            var waited = ContinuousClock.now - since
            if waited >= limit {  // the time limit says it from here
                task.cancel()
                return
            }
            if let c = on.withLockedValue({ $0 }) { waited = min(waited, c.sinceLastRead) }
            if waited < every { return }
            tellSilence("no reply for \(Self.show(every * Int(waited / every))); giving up after \(Self.show(limit)) without one (--node-timeout)")
        }
    }

    /// Tells of a silence at most once per two warning intervals for the node: several
    /// connections waiting on it would otherwise each say the same.
    private func tellSilence(_ message: String) {
        let now = ContinuousClock.now
        let every = options.silenceWarning
        let tell = state.withLockedValue { s -> Bool in
            if let last = s.lastSilenceWarning, now - last < every * 2 - .milliseconds(100) { return false }
            s.lastSilenceWarning = now
            return true
        }
        if tell { logger.warning("\(message)", metadata: ["endpoint": "\(endpoint)"]) }
    }

    /// Sends a pipeline in database `db` on one of the connections, reconnecting and retrying
    /// when the connection is lost.
    func pipeline(db: Int?, _ commands: [[RESPArg]], asking: Bool = false) async throws -> [RESPValue] {
        let batch = RESPBatch(asking: asking)
        for c in commands { batch.command(c) }
        return try await pipeline(db: db, batch)
    }

    /// Sends a batch (see `RESPBatch`) in database `db`; with `asking`, the replies to the
    /// ASKING commands are left out. A lost connection is made again and the batch sent again;
    /// so is a batch answered with LOADING, BUSY or TRYAGAIN (a server loading its data after
    /// a restart, running a script, or moving a slot): every command sent is a read, so sending
    /// it twice changes nothing. A batch without `db` runs in whatever database its connection is in.
    func pipeline(db: Int?, _ batch: RESPBatch) async throws -> [RESPValue] {
        if batch.isEmpty { return [] }
        // The other side failed: stop reading this one.
        try Task.checkCancellation()
        if let limiter { await limiter.acquire(batch.count) }
        try Task.checkCancellation()
        let index = state.withLockedValue { s -> Int in
            s.next = (s.next + 1) % s.connections.count
            return s.next
        }
        var busy = 0
        var resends = 0
        var lost = 0
        // When this batch was first sent without an answer since: a silence or a lost
        // connection is counted from here (or from the node's last answer, if later).
        var since: ContinuousClock.Instant?
        while true {
            let began = since ?? .now
            let waitedOn = NIOLockedValueBox<RedisConnection?>(nil)
            let watch = watchSilence(since: began, on: waitedOn)
            defer { watch.cancel() }
            do {
                let c = try await connection(index, within: left(since: began))
                waitedOn.withLockedValue { $0 = c }
                var replies: [RESPValue]
                // A batch in a database carries its own SELECT, in the same write: two batches
                // that share a connection (more tasks than connections) each run where they
                // ask, which a remembered "selected" state per connection could not promise.
                let opened = endpoint.db ?? 0
                if let db, !(db == opened && state.withLockedValue({ $0.selectRefused })) {
                    let select = RESPBatch(capacity: 48)
                    select.command(["SELECT", RESPArg(db)])
                    let limit = timeLimit(commands: select.count + batch.count, resend: resends, since: began)
                    let selected: [RESPValue]
                    (selected, replies) = try await c.pipeline(batch, after: select, timeout: limit)
                    answered()
                    if case .error(let e) = selected[0] {
                        if Self.isTransient(e) { throw RedisError(serverError: e, endpoint: address) }
                        // Refused, the batch ran in the database its connection was opened in
                        // (nothing else moves it): right when that is the one asked for.
                        guard db == opened else { throw refusal("SELECT \(db)", e) }
                        state.withLockedValue { $0.selectRefused = true }
                    }
                } else {
                    let limit = timeLimit(commands: batch.count, resend: resends, since: began)
                    replies = try await c.pipeline(batch, timeout: limit)
                    answered()
                }
                since = nil
                if let e = replies.lazy.compactMap(\.serverError).first(where: Self.isTransient) {
                    // Waits up to about two minutes in all: loading a large data set takes a while.
                    busy += 1
                    logger.info("server answered \(e.code); sending the batch again", metadata: ["endpoint": "\(endpoint)", "try": "\(busy)"])
                    if busy > 40 {
                        throw SlotdiffError(
                            .unexpectedReply, "\(endpoint): the server kept answering \(e.code) for two minutes: \(e.message)", endpoint: endpoint.address)
                    }
                    try await Task.sleep(nanoseconds: UInt64(min(busy, 10)) * 300_000_000)
                    continue
                }
                if batch.asking { return stride(from: 1, to: replies.count, by: 2).map { replies[$0] } }
                return replies
            } catch let e as RedisError where e.isTransient || e.code == .tlsHandshakeTimeout {
                // Silent, or the connection lost or refused: the batch is sent again on a new
                // connection (a late reply on the old one could not be matched any more; every
                // command is a read, so sending it twice changes nothing) until the node has
                // said nothing for --node-timeout.
                since = began
                if let check = state.withLockedValue({ $0.replacedCheck }), await check(self) { throw NodeReplaced(endpoint: address) }
                let silent = ContinuousClock.now - max(began, state.withLockedValue { $0.lastAnswer })
                if silent >= options.nodeTimeout { throw gaveUp(e, silent: silent, resends: resends) }
                state.withLockedValue { $0.connections[index] = nil }
                if e.code == .requestTimeout || e.code == .tlsHandshakeTimeout {
                    resends += 1
                    tellSilence("no reply for \(Self.show(silent)); sending the request again on a new connection")
                } else {
                    lost += 1
                    tellSilence("connection lost (\(e.description)); connecting again for up to \(Self.show(options.nodeTimeout)) (--node-timeout)")
                    let left = options.nodeTimeout - silent
                    try await Task.sleep(for: min(left, .milliseconds(100) * (1 << min(lost, 4))))
                }
            } catch let e as RedisError {
                throw SlotdiffError(.connection, "cannot read \(endpoint): \(e.description)", endpoint: endpoint.address)
            }
        }
    }

    /// The time limit of one try of a request (`LiveOptions.requestTimeout`), never past the
    /// end of `nodeTimeout` counted from `since`.
    private func timeLimit(commands: Int, resend: Int, since: ContinuousClock.Instant) -> Duration {
        min(options.requestTimeout(commands: commands, resend: resend), left(since: since))
    }

    /// What is left of `nodeTimeout` for a request first sent at `since` (at least 100 ms).
    private func left(since: ContinuousClock.Instant) -> Duration {
        max(.milliseconds(100), options.nodeTimeout - (ContinuousClock.now - max(since, state.withLockedValue { $0.lastAnswer })))
    }

    /// A reply came: the node is answering.
    private func answered() {
        state.withLockedValue {
            $0.lastAnswer = .now
            $0.lastSilenceWarning = nil
        }
    }

    /// Error replies that pass on their own (a node that just started again answers
    /// CLUSTERDOWN until it has met the others); any other error reply is an answer.
    static func isTransient(_ e: RedisServerError) -> Bool {
        ["LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "CLUSTERDOWN"].contains(e.code)
    }

    /// A reply of another shape than the command's: never read as an empty or shorter value.
    func unexpected(_ command: String) -> SlotdiffError {
        SlotdiffError(.unexpectedReply, "\(endpoint): unexpected \(command) reply", endpoint: endpoint.address, command: command)
    }

    /// An error reply to a read that the check cannot do without: it names the server, the
    /// command and the reply, and says what would allow it. Never read as "no such key".
    func refusal(_ command: String, _ e: RedisServerError) -> SlotdiffError {
        let name = command.split(separator: " ").prefix(command.hasPrefix("CLUSTER") || command.hasPrefix("MEMORY") ? 2 : 1)
            .joined(separator: "|").lowercased()
        var hint = ""
        let word = String(command.split(separator: " ").first ?? "")
        if options.commandNames.isDisabled(word) {
            hint = "; it is disabled on this server (--rename-command \(word)=) and nothing else reads what it reads"
        } else if let sent = options.commandNames.renaming(word) {
            hint = "; it was sent as '\(sent)' (--rename-command \(word)=\(sent)): check the name the server gives it"
        } else if e.code == "NOPERM" {
            hint = "; grant it to this user: ACL SETUSER <user> +\(name)"
        } else if e.message.lowercased().contains("unknown command") || e.message.lowercased().contains("unknown subcommand") {
            hint = "; the server does not know it: it may be renamed or disabled (rename-command), or older than the command"
        }
        return SlotdiffError(.refused, "\(endpoint): \(command) refused: \(e.message)\(hint)", endpoint: endpoint.address)
    }

    /// Walks the slots `unit` with SCAN cursors that start at its first slot. Returns false
    /// (before handing over any key) when a reply shows the cursor is not slot-ordered.
    private func scanSlots(
        _ unit: SlotRange, match: GlobPattern?, epoch: Int, _ each: (KeyList, [UInt16]) async throws -> Void
    ) async throws -> Bool {
        var cursor = UInt64(unit.lower)
        var first = true
        while true {
            let r = try await pipeline(db: nil, [scanCommand(RESPArg(String(cursor)), match: match)])[0]
            try checkListing(epoch)
            if let e = r.serverError { throw refusal("SCAN", e) }
            guard let parts = r.array, parts.count == 2, let c = parts[0].string.flatMap({ UInt64($0) }),
                let items = parts[1].array
            else {
                throw unexpected("SCAN")
            }
            var inside = KeyList()
            var slots: [UInt16] = []
            let keys = items.compactMap(\.bytes)
            if keys.count != items.count { throw unexpected("SCAN") }
            for k in keys {
                let s = HashSlot.slot(of: k)
                // A key before the range, or past where the cursor says it stands, means the
                // cursor is not slot-ordered here.
                if s < unit.lower || (c != 0 && s > UInt16(c & 0x3FFF)) {
                    if first { return false }
                    throw SlotdiffError(
                        .unexpectedReply, "\(endpoint): SCAN returned a key of slot \(s) while walking slots \(unit)", endpoint: endpoint.address)
                }
                if s <= unit.upper {
                    inside.append(k)
                    slots.append(s)
                }
            }
            first = false
            if !inside.isEmpty { try await each(inside, slots) }
            cursor = c
            if c == 0 || (c & 0x3FFF) > UInt64(unit.upper) { return true }
        }
    }

    func close() async {
        let cs = state.withLockedValue { $0.connections }
        for c in cs { await c?.close() }
    }

    // MARK: listing

    /// Databases holding keys: INFO keyspace; where INFO is refused, DBSIZE in every database
    /// the server has (found by SELECT until it answers that the index is out of range:
    /// CONFIG GET databases is blocked on managed services). Any other error reply ends the
    /// check: a database left out would be a keyspace never compared.
    func databases() async throws -> [Int] {
        let r = try await pipeline(db: nil, [["INFO", "keyspace"]])[0]
        if let text = r.string, r.serverError == nil {
            return text.split(whereSeparator: \.isNewline).compactMap { line -> Int? in
                guard line.hasPrefix("db"), let colon = line.firstIndex(of: ":") else { return nil }
                return Int(line[line.index(line.startIndex, offsetBy: 2)..<colon])
            }.sorted()
        }
        var dbs: [Int] = []
        var first = 0
        while true {
            let group = first..<(first + 16)
            let replies = try await pipeline(
                db: nil, group.flatMap { [["SELECT", RESPArg($0)], ["DBSIZE"]] as [[RESPArg]] })
            for (i, db) in group.enumerated() {
                if let e = replies[2 * i].serverError {
                    let text = e.message.lowercased()
                    if text.contains("out of range") || text.contains("invalid db index") {
                        if db == 0 { throw refusal("SELECT 0", e) }
                        return dbs
                    }
                    var refused = refusal("SELECT \(db)", e)
                    refused.message += " (INFO was refused too: grant +info, or +select, to find the databases that hold keys)"
                    throw refused
                }
                if let e = replies[2 * i + 1].serverError { throw refusal("DBSIZE", e) }
                guard let n = replies[2 * i + 1].int else { throw unexpected("DBSIZE") }
                if n > 0 { dbs.append(db) }
            }
            first += 16
            if first >= 1 << 16 {
                throw SlotdiffError(
                    .unexpectedReply, "\(endpoint): the server accepts SELECT for every database up to \(first); cannot tell which hold keys",
                    endpoint: endpoint.address)
            }
        }
    }

    /// Keys in a database (DBSIZE); an error reply ends the check.
    func keyCount(db: Int?) async throws -> Int {
        let r = try await pipeline(db: db, [["DBSIZE"]])[0]
        if let e = r.serverError { throw refusal("DBSIZE", e) }
        guard let n = r.int else { throw unexpected("DBSIZE") }
        return Int(n)
    }

    /// Throws `ListingInterrupted` when a connection was made again since `epoch`.
    func checkListing(_ epoch: Int) throws {
        if self.epoch != epoch { throw ListingInterrupted(endpoint: address) }
    }

    /// SCAN's cursor walks the keyspace slot by slot, the slot in its low 14 bits (cluster
    /// nodes on Redis 7.4+ and Valkey 8+).
    var hasSlotCursors: Bool {
        serverName == "valkey" ? !version.lexicographicallyPrecedes([8, 0]) : !version.lexicographicallyPrecedes([7, 4])
    }

    /// Every key of a database, in batches, with each key's hash slot (a key may come twice;
    /// callers keep the first).
    /// With `slotUnits` (cluster nodes), only those slot ranges are listed: on nodes whose SCAN
    /// cursor walks slot by slot, with a cursor set to each range's first slot; on older nodes,
    /// slot by slot with CLUSTER COUNTKEYSINSLOT and GETKEYSINSLOT in bounded replies. A node
    /// that does not behave that way (or refuses those commands) is listed with a plain SCAN,
    /// and so are slots holding more keys than one bounded reply may carry.
    /// A plain SCAN hands over only keys whose slot `inPass` accepts (the others are read in
    /// another pass): they are never copied out of the reply.
    /// A connection of this node was made again while it was being listed (`ListingInterrupted`
    /// is thrown): the listing must start over.
    func scan(
        db: Int?, match: GlobPattern?, slotUnits: [SlotRange]? = nil, inPass: (UInt16) -> Bool = { _ in true },
        _ each: (KeyList, [UInt16]) async throws -> Void
    ) async throws {
        let epoch = self.epoch
        var onlySlots: Set<UInt16>?
        if let slotUnits {
            if hasSlotCursors {
                var ok = true
                for unit in slotUnits where ok {
                    ok = try await scanSlots(unit, match: match, epoch: epoch, each)
                }
                if ok { return }
            } else if let big = try await keysBySlot(slotUnits, match: match, epoch: epoch, each) {
                if big.isEmpty { return }
                onlySlots = Set(big)
            }
        }
        if slotUnits != nil {
            let why = onlySlots.map { " for \($0.count) slots too big for one reply" } ?? ""
            logger.info("listing with a plain SCAN of the node\(why)", metadata: ["endpoint": "\(endpoint)"])
        }
        var cursor: [UInt8] = Array("0".utf8)
        repeat {
            let r = try await pipeline(db: db, [scanCommand(RESPArg(cursor), match: match)])[0]
            try checkListing(epoch)
            if let e = r.serverError { throw refusal("SCAN", e) }
            guard let parts = r.array, parts.count == 2, let c = parts[0].bytes, let keys = parts[1].array else {
                throw unexpected("SCAN")
            }
            cursor = c
            var batch = KeyList()
            var slots: [UInt16] = []
            batch.reserve(keys: keys.count, bytes: keys.count * 32)
            slots.reserveCapacity(keys.count)
            for k in keys {
                guard let b = k.buffer else { throw unexpected("SCAN") }
                let slot = b.withUnsafeReadableBytes { HashSlot.slot(of: $0) }
                if !inPass(slot) { continue }
                if let onlySlots, !onlySlots.contains(slot) { continue }
                b.withUnsafeReadableBytes { batch.append($0) }
                slots.append(slot)
            }
            if !batch.isEmpty { try await each(batch, slots) }
        } while cursor != Array("0".utf8)
    }

    /// Lists the keys of `units` slot by slot: CLUSTER COUNTKEYSINSLOT for up to 1024 slots per
    /// round trip, then CLUSTER GETKEYSINSLOT for the slots holding keys, never more than
    /// `slotKeysLimit` keys in one round trip. Returns the slots holding more keys than that
    /// (for a SCAN to list), or nil when the node refuses the commands.
    private func keysBySlot(
        _ units: [SlotRange], match: GlobPattern?, epoch: Int, _ each: (KeyList, [UInt16]) async throws -> Void
    ) async throws -> [UInt16]? {
        guard try await countsKeysInSlots() else { return nil }
        let limit = max(1, options.slotKeysLimit)
        var big: [UInt16] = []
        func getKeys(_ slot: Int, _ count: Int) -> [RESPArg] { ["CLUSTER", "GETKEYSINSLOT", RESPArg(slot), RESPArg(count)] }
        for unit in units {
            var lo = Int(unit.lower)
            while lo <= Int(unit.upper) {
                let hi = min(Int(unit.upper), lo + 1023)
                let counts = try await pipeline(db: nil, (lo...hi).map { ["CLUSTER", "COUNTKEYSINSLOT", RESPArg($0)] })
                try checkListing(epoch)
                // Slots with keys, asking for a little more than counted: keys written since are
                // listed too, and a full reply shows the slot grew.
                var asks: [(slot: Int, count: Int)] = []
                for (i, r) in counts.enumerated() {
                    if let e = r.serverError { throw refusal("CLUSTER COUNTKEYSINSLOT", e) }
                    let n = Int(r.int ?? 0)
                    if n > limit { big.append(UInt16(lo + i)) } else if n > 0 { asks.append((lo + i, min(limit, n + n / 8 + 16))) }
                }
                var j = 0
                while j < asks.count {
                    var group = [asks[j]]
                    var total = asks[j].count
                    j += 1
                    while j < asks.count, total + asks[j].count <= limit {
                        group.append(asks[j])
                        total += asks[j].count
                        j += 1
                    }
                    let replies = try await pipeline(db: nil, group.map { getKeys($0.slot, $0.count) })
                    try checkListing(epoch)
                    var keys = KeyList()
                    var slots: [UInt16] = []
                    for (ask, r) in zip(group, replies) {
                        if let e = r.serverError { throw refusal("CLUSTER GETKEYSINSLOT", e) }
                        guard var got = r.array else { throw unexpected("CLUSTER GETKEYSINSLOT") }
                        if got.count >= ask.count {
                            // The slot grew since it was counted: ask for as many as one reply may carry.
                            if ask.count < limit {
                                let again = try await pipeline(db: nil, [getKeys(ask.slot, limit)])[0]
                                try checkListing(epoch)
                                if let e = again.serverError { throw refusal("CLUSTER GETKEYSINSLOT", e) }
                                guard let more = again.array else { throw unexpected("CLUSTER GETKEYSINSLOT") }
                                got = more
                            }
                            if got.count >= limit { big.append(UInt16(ask.slot)); continue }
                        }
                        for k in got {
                            guard let b = k.bytes else { throw unexpected("CLUSTER GETKEYSINSLOT") }
                            if let match, !match.matches(b) { continue }
                            keys.append(b)
                            slots.append(UInt16(ask.slot))
                        }
                    }
                    if !keys.isEmpty { try await each(keys, slots) }
                }
                lo = hi + 1
            }
        }
        return big
    }

    /// Slots this cluster node is importing (its own line of CLUSTER NODES, `[slot-<-node]`):
    /// keys already moved here by a migration under way are listed with the node's own slots.
    /// A refusal ends the check: those keys would be listed by no node.
    func importingSlots() async throws -> [UInt16] {
        let r = try await pipeline(db: nil, [["CLUSTER", "NODES"]])[0]
        if let e = r.serverError { throw refusal("CLUSTER NODES", e) }
        guard let text = r.string else { throw unexpected("CLUSTER NODES") }
        guard let mine = text.split(whereSeparator: \.isNewline).first(where: { $0.contains("myself") }) else { return [] }
        return mine.split(separator: " ").compactMap { field -> UInt16? in
            guard field.hasPrefix("["), let arrow = field.range(of: "-<-") else { return nil }
            return UInt16(field[field.index(after: field.startIndex)..<arrow.lowerBound])
        }
    }
}

/// How a node's values and expiries are read when the default plan (DUMP, PEXPIRETIME) is not
/// allowed: each field is nil for the default, else why the fallback is used. Either way the
/// records are the same: per-type reads feed the same canonical digest as DUMP, and an expiry
/// from PTTL is compared within the expiry tolerance.
struct ReadPlan: Sendable, Hashable {
    /// Why expiries are read with PTTL + this machine's clock (e.g. "PEXPIRETIME refused (NOPERM)").
    var expiryByPTTL: String?
    /// Why values are read with per-type commands instead of DUMP.
    var valuesByType: String?
    /// False when DUMP itself was refused (module values, which only DUMP reads, cannot be read).
    var dumpAllowed = true
    /// Types whose values (or big values, where DUMP reads the others) cannot be read here,
    /// with the command refused: a key of such a type ends the check.
    var unreadable: [ValueType: String] = [:]

    init(expiryByPTTL: String? = nil, valuesByType: String? = nil) {
        self.expiryByPTTL = expiryByPTTL
        self.valuesByType = valuesByType
    }

    /// The plan from the start on a server whose DUMP, PEXPIRETIME or MEMORY is disabled
    /// (`--rename-command DUMP=`): those commands are never sent, not even once to find out.
    init(disabled names: CommandNames) {
        let why = { (command: String) in "\(command) disabled (--rename-command \(command.prefix { $0 != " " })=)" }
        if names.isDisabled("PEXPIRETIME") { expiryByPTTL = why("PEXPIRETIME") }
        if names.isDisabled("DUMP") {
            valuesByType = why("DUMP")
            dumpAllowed = false
        } else if names.isDisabled("MEMORY") {
            valuesByType = why("MEMORY USAGE")
        }
    }

    /// The plan in words, for the summary: nil for the default.
    var text: String? {
        var parts: [String] = []
        if let v = valuesByType { parts.append("values by type reads: \(v)") }
        if let e = expiryByPTTL { parts.append("expiry by PTTL: \(e)") }
        for (type, why) in unreadable.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            parts.append("\(valuesByType == nil ? "big \(type) values" : "\(type) values") unreadable: \(why)")
        }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    /// Whether an error reply means the command cannot be used on this node at all (refused to
    /// this user, or unknown: renamed away, disabled, or older than the command), rather than
    /// a failure of this one read.
    static func isUnusable(_ e: RedisServerError) -> Bool {
        e.code == "NOPERM" || e.message.lowercased().contains("unknown command")
    }

    static func reason(_ e: RedisServerError) -> String {
        if e.code == "NOPERM" { return "refused (NOPERM)" }
        return e.message.lowercased().contains("unknown command") ? "unknown (renamed or disabled)" : "refused (\(e.code))"
    }
}

enum ReadPlanChange {
    case expiryByPTTL, valuesByType
}

/// A server as its handshake (HELLO) described it: which server, which version, which mode.
struct ServerDescription: Sendable {
    var name = "redis"
    var version: [Int] = [0]
    var mode: String?
    var known: Bool { version != [0] }
}

/// A node's connection was made again while its keys were listed: the server may be another
/// process now (restarted, failed over), where the cursor means nothing. The listing of that
/// node starts over.
struct ListingInterrupted: Error {
    var endpoint: String
}
