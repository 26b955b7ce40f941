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

extension LiveNode {
    static let typeNames: [String: ValueType] = [
        "string": .string, "list": .list, "set": .set, "zset": .zset, "hash": .hash, "stream": .stream,
    ]

    /// Reads a batch of keys of one database in three pipelined round trips: type and
    /// expiry; length and memory size; then DUMP for values under the size bound, decoded by
    /// the RDB value decoder. Larger values are read in chunks into the same digest.
    func fetch(db: Int?, keys: [[UInt8]], digester d: CanonicalDigester, asking: Bool = false) async throws -> [FetchResult] {
        var results = [FetchResult](repeating: .absent, count: keys.count)
        var cmds: [[RESPArg]] = []
        cmds.reserveCapacity(keys.count * 3)
        for k in keys {
            let key = RESPArg(k)
            if asking { cmds.append(["ASKING"]) }
            cmds.append(["TYPE", key])
            cmds.append(hasPexpiretime ? ["PEXPIRETIME", key] : ["PTTL", key])
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let probe = try await pipeline(db: db, cmds)
        let stride = asking ? 3 : 2
        var types = [ValueType?](repeating: nil, count: keys.count)
        var expiries = [Int64?](repeating: nil, count: keys.count)
        for i in 0..<keys.count {
            let t = probe[i * stride + stride - 2]
            if let e = t.serverError {
                if let r = e.redirection { results[i] = .redirect(r); continue }
                throw LiveError("\(endpoint): TYPE failed: \(e.message)")
            }
            let name = t.string ?? "none"
            if name == "none" { continue }
            types[i] = Self.typeNames[name] ?? .module
            let x = probe[i * stride + stride - 1].int ?? -1
            if x >= 0 { expiries[i] = hasPexpiretime ? x : now + x }
        }
        // Length and size.
        var idx: [Int] = []
        cmds.removeAll(keepingCapacity: true)
        for i in 0..<keys.count {
            guard let t = types[i] else { continue }
            idx.append(i)
            let key = RESPArg(keys[i])
            if asking { cmds.append(["ASKING"]) }
            cmds.append(Self.lengthCommand(t, key))
            if asking { cmds.append(["ASKING"]) }
            cmds.append(["MEMORY", "USAGE", key, "SAMPLES", "5"])
        }
        let sizes = try await pipeline(db: db, cmds)
        let per = asking ? 4 : 2
        var dumps: [Int] = []
        var big: [(Int, Int)] = []
        for (n, i) in idx.enumerated() {
            let lenReply = sizes[n * per + (asking ? 1 : 0)]
            let memReply = sizes[n * per + per - 1]
            guard let t = types[i] else { continue }
            if lenReply.serverError?.code == "WRONGTYPE" { continue }   // replaced meanwhile: the re-check rounds read it again
            let length = Int(lenReply.int ?? 0)
            if options.mode == .keys {
                results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: .zero))
                continue
            }
            if options.mode == .length {
                results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: Self.lengthDigest(t, UInt64(length))))
                continue
            }
            let bytes = memReply.int.map(Int.init) ?? (t == .string ? length : length * 64)
            if bytes > options.bigKeyThreshold && t != .module { big.append((i, length)) } else { dumps.append(i) }
        }
        // Values under the bound: one DUMP each, pipelined.
        cmds.removeAll(keepingCapacity: true)
        for i in dumps {
            if asking { cmds.append(["ASKING"]) }
            cmds.append(["DUMP", RESPArg(keys[i])])
        }
        let payloads = try await pipeline(db: db, cmds)
        for (n, i) in dumps.enumerated() {
            let reply = payloads[n * (asking ? 2 : 1) + (asking ? 1 : 0)]
            if let e = reply.serverError { throw LiveError("\(endpoint): DUMP failed: \(e.message)") }
            guard let buf = reply.buffer else { continue }   // gone since the probe: expired or deleted
            let type: ValueType = try buf.withUnsafeReadableBytes { p in
                do { return try DumpPayload.decode(p, name: "DUMP reply from \(endpoint.address)", into: d) } catch let e as RDBError {
                    throw LiveError(e.description)
                }
            }
            let empty = d.count == 0 && type != .string && type != .stream && type != .module
            if empty { continue }
            results[i] = .present(SideState(type: type, expireMs: expiries[i], digest: d.finish()))
        }
        for (i, length) in big {
            if let s = try await chunked(db: db, key: keys[i], type: types[i]!, length: length, digester: d) {
                results[i] = .present(SideState(type: s.0, expireMs: expiries[i], digest: s.1))
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

    /// `--mode length`: the type and element count stand in for the value.
    static func lengthDigest(_ t: ValueType, _ n: UInt64) -> Hash128 { Hash128(low: n, high: UInt64(t.rawValue)) }
}
