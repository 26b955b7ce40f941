import Foundation
import NIOCore
import RDB
import RESP
import SlotdiffCore

/// One server (a standalone server or one cluster node) and the connections a side keeps to
/// it. Every command sent is a read command; the connection is re-established on a lost
/// connection, and the batch retried, before the check gives up naming the endpoint.
final class LiveNode: @unchecked Sendable {
    let endpoint: RedisEndpoint
    let options: LiveOptions
    let limiter: RateLimiter?
    let connectOptions: RedisConnectionOptions
    /// Reading from a replica in a cluster needs READONLY on every connection.
    let readOnly: Bool
    private var connections: [RedisConnection?]
    private var selected: [Int?]
    private let lock = NSLock()
    private var next = 0
    private(set) var serverName = "redis"
    private(set) var version: [Int] = [0]

    init(endpoint: RedisEndpoint, options: LiveOptions, limiter: RateLimiter?, readOnly: Bool) {
        self.endpoint = endpoint
        self.options = options
        self.limiter = limiter
        self.readOnly = readOnly
        address = endpoint.address
        dumpName = "DUMP reply from \(endpoint.address)"
        connectOptions = RedisConnectionOptions(tls: options.tls, clientName: "slotdiff")
        connections = Array(repeating: nil, count: max(1, options.workers))
        selected = Array(repeating: nil, count: max(1, options.workers))
    }

    let address: String
    /// How errors name a DUMP reply from this node.
    let dumpName: String

    /// PEXPIRETIME exists from Redis 7.0 (and in every Valkey).
    var hasPexpiretime: Bool { serverName == "valkey" || version.lexicographicallyPrecedes([7, 0]) == false }
    /// HPEXPIRETIME (hash-field TTLs): Redis 7.4+, Valkey 9+.
    var hasFieldTTLs: Bool {
        serverName == "valkey" ? !version.lexicographicallyPrecedes([9, 0]) : !version.lexicographicallyPrecedes([7, 4])
    }

    func connect() async throws {
        _ = try await connection(0)
    }

    private func connection(_ slot: Int) async throws -> RedisConnection {
        if let c = lock.withLock({ connections[slot] }), c.isActive { return c }
        let c: RedisConnection
        do {
            c = try await RedisConnection.connect(to: endpoint, options: connectOptions, retrying: options.reconnectAttempts)
        } catch {
            throw LiveError("cannot read \(endpoint): \(error.description)")
        }
        if let v = c.serverInfo["version"] {
            let name = c.serverInfo["server"] ?? "redis"
            lock.withLock {
                serverName = name
                version = v.split(separator: ".").compactMap { Int($0) }
            }
        }
        if readOnly {
            let r = try await c.pipeline([["READONLY"]])
            if case .error(let e) = r[0] { throw LiveError("\(endpoint): READONLY refused: \(e.message)") }
        }
        lock.withLock {
            connections[slot] = c
            selected[slot] = endpoint.db ?? 0
        }
        return c
    }

    /// Sends a pipeline in database `db` on one of the connections, reconnecting and retrying
    /// when the connection is lost.
    func pipeline(db: Int?, _ commands: [[RESPArg]], asking: Bool = false) async throws -> [RESPValue] {
        if commands.isEmpty { return [] }
        if asking {
            // A slot being imported: ASKING holds for the next command only.
            let replies = try await pipeline(db: db, commands.flatMap { [["ASKING"], $0] })
            return stride(from: 1, to: replies.count, by: 2).map { replies[$0] }
        }
        if let limiter { await limiter.acquire(commands.count) }
        let slot = lock.withLock { () -> Int in
            next = (next + 1) % connections.count
            return next
        }
        var attempt = 0
        while true {
            do {
                let c = try await connection(slot)
                var cmds = commands
                let current = lock.withLock { selected[slot] }
                if let db, db != current { cmds.insert(["SELECT", RESPArg(db)], at: 0) }
                let replies = try await c.pipeline(cmds)
                if let db, db != current {
                    if case .error(let e) = replies[0] { throw LiveError("\(endpoint): SELECT \(db) refused: \(e.message)") }
                    lock.withLock { selected[slot] = db }
                    return Array(replies.dropFirst())
                }
                return replies
            } catch let e as RedisError where e.isTransient && attempt < options.reconnectAttempts {
                attempt += 1
                lock.withLock { connections[slot] = nil }
                try await Task.sleep(nanoseconds: UInt64(100_000_000) << UInt64(min(attempt, 5)))
            } catch let e as RedisError {
                throw LiveError("cannot read \(endpoint): \(e.description)")
            }
        }
    }

    /// Walks the slots `unit` with SCAN cursors that start at its first slot. Returns false
    /// (before handing over any key) when a reply shows the cursor is not slot-ordered.
    private func scanSlots(_ unit: SlotRange, match: String?, _ each: ([[UInt8]]) async throws -> Void) async throws -> Bool {
        var cursor = UInt64(unit.lower)
        var first = true
        while true {
            var cmd: [RESPArg] = ["SCAN", RESPArg(String(cursor))]
            if let match { cmd += ["MATCH", RESPArg(match)] }
            cmd += ["COUNT", RESPArg(options.scanCount)]
            let r = try await pipeline(db: nil, [cmd])[0]
            if let e = r.serverError { throw LiveError("\(endpoint): SCAN failed: \(e.message)") }
            guard let parts = r.array, parts.count == 2, let c = parts[0].string.flatMap({ UInt64($0) }),
                  let keys = parts[1].array?.compactMap(\.bytes) else {
                throw LiveError("\(endpoint): unexpected SCAN reply")
            }
            var inside: [[UInt8]] = []
            for k in keys {
                let s = HashSlot.slot(of: k)
                // A key before the range, or past where the cursor says it stands, means the
                // cursor is not slot-ordered here.
                if s < unit.lower || (c != 0 && s > UInt16(c & 0x3FFF)) {
                    if first { return false }
                    throw LiveError("\(endpoint): SCAN returned a key of slot \(s) while walking slots \(unit)")
                }
                if s <= unit.upper { inside.append(k) }
            }
            first = false
            if !inside.isEmpty { try await each(inside) }
            cursor = c
            if c == 0 || (c & 0x3FFF) > UInt64(unit.upper) { return true }
        }
    }

    func close() async {
        let cs = lock.withLock { connections }
        for c in cs { await c?.close() }
    }

    // MARK: listing

    /// Databases holding keys: INFO keyspace, or DBSIZE per database where INFO is not allowed.
    func databases() async throws -> [Int] {
        let r = try await pipeline(db: nil, [["INFO", "keyspace"]])
        if let text = r[0].string, r[0].serverError == nil {
            return text.split(whereSeparator: \.isNewline).compactMap { line -> Int? in
                guard line.hasPrefix("db"), let colon = line.firstIndex(of: ":") else { return nil }
                return Int(line[line.index(line.startIndex, offsetBy: 2)..<colon])
            }.sorted()
        }
        var dbs: [Int] = []
        for db in 0..<16 {
            let s = try await pipeline(db: db, [["DBSIZE"]])
            if case .error = s[0] { break }
            if (s[0].int ?? 0) > 0 { dbs.append(db) }
        }
        return dbs
    }

    /// SCAN's cursor walks the keyspace slot by slot, the slot in its low 14 bits (cluster
    /// nodes on Redis 7.4+ and Valkey 8+).
    var hasSlotCursors: Bool {
        serverName == "valkey" ? !version.lexicographicallyPrecedes([8, 0]) : !version.lexicographicallyPrecedes([7, 4])
    }

    /// Every key of a database, in SCAN batches (a key may come twice; callers keep the first).
    /// With `slotUnits`, only those slot ranges are walked, each from a cursor set to its first
    /// slot; if the node turns out not to walk slot by slot, it falls back to a plain SCAN.
    func scan(db: Int?, match: String?, slotUnits: [SlotRange]? = nil, _ each: ([[UInt8]]) async throws -> Void) async throws {
        if let slotUnits {
            var ok = true
            for unit in slotUnits where ok {
                ok = try await scanSlots(unit, match: match, each)
            }
            if ok { return }
        }
        var cursor: [UInt8] = Array("0".utf8)
        repeat {
            var cmd: [RESPArg] = ["SCAN", RESPArg(cursor)]
            if let match { cmd += ["MATCH", RESPArg(match)] }
            cmd += ["COUNT", RESPArg(options.scanCount)]
            let r = try await pipeline(db: db, [cmd])[0]
            if let e = r.serverError { throw LiveError("\(endpoint): SCAN failed: \(e.message)") }
            guard let parts = r.array, parts.count == 2, let c = parts[0].bytes, let keys = parts[1].array else {
                throw LiveError("\(endpoint): unexpected SCAN reply")
            }
            cursor = c
            let batch = keys.compactMap(\.bytes)
            if !batch.isEmpty { try await each(batch) }
        } while cursor != Array("0".utf8)
    }
}
