import Foundation
import NIOCore
import RDB
import RESP
import SlotdiffCore

/// What one key looks like on a live node right now.
enum FetchResult {
    case present(SideState)
    case absent
    /// The slot lives on another node (MOVED), or is being migrated there (ASK).
    case redirect(RedisRedirection)
}

/// Command words built once: a literal argument would allocate on every use.
enum Word {
    static let pexpiretime: RESPArg = "PEXPIRETIME", pttl: RESPArg = "PTTL", memory: RESPArg = "MEMORY"
    static let usage: RESPArg = "USAGE", samples: RESPArg = "SAMPLES", five: RESPArg = "5"
    static let type: RESPArg = "TYPE", dump: RESPArg = "DUMP"
}

extension LiveNode {
    static let typeNames: [String: ValueType] = [
        "string": .string, "list": .list, "set": .set, "zset": .zset, "hash": .hash, "stream": .stream,
    ]

    /// Reads a batch of keys of one database in two pipelined round trips: expiry and memory
    /// size (plus the type when only types or lengths are compared); then DUMP for values
    /// under the size bound, decoded by the RDB value decoder. Larger values (and values whose
    /// size the server will not tell) are read in chunks into the same digest.
    func fetch(db: Int?, keys: [[UInt8]], digester d: CanonicalDigester, asking: Bool = false) async throws -> [FetchResult] {
        var results = [FetchResult](repeating: .absent, count: keys.count)
        let withType = options.mode != .digest
        let per = 2 + (withType ? 1 : 0)
        var cmds: [[RESPArg]] = []
        cmds.reserveCapacity(keys.count * per)
        for k in keys {
            let key = RESPArg(k)
            cmds.append([hasPexpiretime ? Word.pexpiretime : Word.pttl, key])
            cmds.append([Word.memory, Word.usage, key, Word.samples, Word.five])
            if withType { cmds.append([Word.type, key]) }
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let probe = try await pipeline(db: db, cmds, asking: asking)
        var expiries = [Int64?](repeating: nil, count: keys.count)
        var dumps: [Int] = []
        var big: [Int] = []
        var typed: [(Int, ValueType)] = []
        for i in 0..<keys.count {
            let base = i * per
            let exp = probe[base]
            if let e = exp.serverError {
                if let r = e.redirection { results[i] = .redirect(r); continue }
                throw LiveError("\(endpoint): \(hasPexpiretime ? "PEXPIRETIME" : "PTTL") failed: \(e.message)")
            }
            let x = exp.int ?? -2
            if x == -2 { continue }   // no such key (any more)
            if x >= 0 { expiries[i] = hasPexpiretime ? x : now + x }
            if withType {
                guard let t = Self.typeNames[probe[base + 2].string ?? "none"] ?? (probe[base + 2].string == "none" ? nil : .module) else { continue }
                typed.append((i, t))
                continue
            }
            let mem = probe[base + 1]
            if let bytes = mem.int, Int(bytes) <= options.bigKeyThreshold { dumps.append(i) } else if !mem.isNull { big.append(i) }
        }
        if withType {
            if options.mode == .keys {
                for (i, t) in typed { results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: .zero)) }
                return results
            }
            cmds.removeAll(keepingCapacity: true)
            for (i, t) in typed {
                cmds.append(Self.lengthCommand(t, RESPArg(keys[i])))
            }
            let lengths = try await pipeline(db: db, cmds, asking: asking)
            for (n, (i, t)) in typed.enumerated() {
                let reply = lengths[n]
                if reply.serverError != nil { continue }   // replaced meanwhile: the re-check rounds read it again
                let length = UInt64(max(0, reply.int ?? 0))
                if length == 0 && t != .string { continue }
                results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: Hash128.length(of: t, count: length)))
            }
            return results
        }
        // Values under the bound: one DUMP each, pipelined.
        cmds.removeAll(keepingCapacity: true)
        for i in dumps { cmds.append([Word.dump, RESPArg(keys[i])]) }
        let payloads = try await pipeline(db: db, cmds, asking: asking)
        for (n, i) in dumps.enumerated() {
            let reply = payloads[n]
            if let e = reply.serverError { throw LiveError("\(endpoint): DUMP failed: \(e.message)") }
            guard let buf = reply.buffer else { continue }   // gone since the probe: expired or deleted
            let type: ValueType = try buf.withUnsafeReadableBytes { p in
                do { return try DumpPayload.decode(p, name: dumpName, into: d) } catch let e as RDBError {
                    throw LiveError(e.description)
                }
            }
            let empty = d.count == 0 && type != .string && type != .stream && type != .module
            if empty { continue }
            results[i] = .present(SideState(type: type, expireMs: expiries[i], digest: d.finish()))
        }
        // Big values: type and length, then bounded reads.
        if !big.isEmpty {
            cmds.removeAll(keepingCapacity: true)
            for i in big { cmds.append(["TYPE", RESPArg(keys[i])]) }
            let types = try await pipeline(db: db, cmds, asking: asking)
            for (n, i) in big.enumerated() {
                let name = types[n].string ?? "none"
                if name == "none" { continue }
                guard let t = Self.typeNames[name] else {
                    throw LiveError("\(endpoint): key \(Difference.display(keys[i])) is a \(name) value of \(options.bigKeyThreshold)+ bytes; module values cannot be read in bounded pieces")
                }
                let length = Int(try await pipeline(db: db, [Self.lengthCommand(t, RESPArg(keys[i]))], asking: asking)[0].int ?? 0)
                if let s = try await chunked(db: db, key: keys[i], type: t, length: length, digester: d, asking: asking) {
                    results[i] = .present(SideState(type: s.0, expireMs: expiries[i], digest: s.1))
                }
            }
        }
        return results
    }

    static func lengthCommand(_ t: ValueType, _ key: RESPArg) -> [RESPArg] {
        switch t {
        case .string: ["STRLEN", key]
        case .list: ["LLEN", key]
        case .set: ["SCARD", key]
        case .zset: ["ZCARD", key]
        case .hash: ["HLEN", key]
        case .stream: ["XLEN", key]
        case .module: ["EXISTS", key]
        }
    }
}
