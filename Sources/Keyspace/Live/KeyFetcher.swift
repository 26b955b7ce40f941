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
    static let type: RESPArg = "TYPE", dump: RESPArg = "DUMP", getrange: RESPArg = "GETRANGE", zero: RESPArg = "0"
    static let strlen: RESPArg = "STRLEN", llen: RESPArg = "LLEN", scard: RESPArg = "SCARD", zcard: RESPArg = "ZCARD"
    static let hlen: RESPArg = "HLEN", xlen: RESPArg = "XLEN", exists: RESPArg = "EXISTS"
}

extension LiveNode {
    /// Reads a batch of keys of one database in pipelined round trips. First the expiry and
    /// the type of every key. Then strings are read with one GETRANGE bounded by the size
    /// bound (a longer string goes on in pieces), and for other types the server's memory
    /// size is asked (or, with `--mode length`, the element count). Values under the bound are
    /// read with DUMP and decoded by the RDB value decoder; larger ones (and values whose size
    /// the server will not tell) are read in chunks into the same digest. A string is thus
    /// never serialized (DUMP compresses and checksums what GETRANGE hands over as it is).
    func fetch(db: Int?, keys: [[UInt8]], digester d: CanonicalDigester, asking: Bool = false) async throws -> [FetchResult] {
        var results = [FetchResult](repeating: .absent, count: keys.count)
        let keyBytes = keys.reduce(0) { $0 + $1.count }
        var batch = RESPBatch(capacity: keyBytes * 2 + keys.count * 48, asking: asking)
        let expiryWord = hasPexpiretime ? Word.pexpiretime : Word.pttl
        for k in keys {
            batch.begin(2)
            batch.arg(expiryWord)
            batch.arg(k)
            batch.begin(2)
            batch.arg(Word.type)
            batch.arg(k)
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        let probe = try await pipeline(db: db, batch)
        var expiries = [Int64?](repeating: nil, count: keys.count)
        var typed: [(Int, ValueType)] = []
        typed.reserveCapacity(keys.count)
        for i in 0..<keys.count {
            let exp = probe[2 * i]
            if let e = exp.serverError {
                if let r = e.redirection { results[i] = .redirect(r); continue }
                throw LiveError("\(endpoint): \(hasPexpiretime ? "PEXPIRETIME" : "PTTL") failed: \(e.message)")
            }
            let x = exp.int ?? -2
            if x == -2 { continue }   // no such key (any more)
            if x >= 0 { expiries[i] = hasPexpiretime ? x : now + x }
            guard let t = Self.valueType(probe[2 * i + 1]) else { continue }
            typed.append((i, t))
        }
        if options.mode == .keys {
            for (i, t) in typed { results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: .zero)) }
            return results
        }
        // Second round trip: lengths (length mode); or strings and the memory size of the rest.
        let limit = options.bigKeyThreshold
        batch = RESPBatch(capacity: keyBytes + keys.count * 64, asking: asking)
        for (i, t) in typed {
            if options.mode == .length {
                batch.begin(2)
                batch.arg(Self.lengthWord(t))
                batch.arg(keys[i])
            } else if t == .string {
                batch.begin(4)
                batch.arg(Word.getrange)
                batch.arg(keys[i])
                batch.arg(Word.zero)
                batch.arg(max(0, limit - 1))
            } else {
                batch.begin(5)
                batch.arg(Word.memory)
                batch.arg(Word.usage)
                batch.arg(keys[i])
                batch.arg(Word.samples)
                batch.arg(Word.five)
            }
        }
        let second = try await pipeline(db: db, batch)
        var dumps: [Int] = []
        var big: [(Int, ValueType)] = []
        for (n, (i, t)) in typed.enumerated() {
            let reply = second[n]
            if let r = reply.serverError?.redirection { results[i] = .redirect(r); continue }
            if options.mode == .length {
                if reply.serverError != nil { continue }   // replaced meanwhile: the re-check rounds read it again
                let length = UInt64(max(0, reply.int ?? 0))
                if length == 0 && t != .string { continue }
                results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: Hash128.length(of: t, count: length)))
            } else if t == .string {
                // WRONGTYPE or null: replaced or deleted since the probe.
                guard let b = reply.buffer else { continue }
                d.begin(.string)
                b.withUnsafeReadableBytes { d.stringPart($0) }
                if limit > 0 && b.readableBytes >= limit {
                    big.append((i, .string))   // longer than one reply may carry: read again in pieces
                } else {
                    results[i] = .present(SideState(type: .string, expireMs: expiries[i], digest: d.finish()))
                }
            } else if let bytes = reply.int, Int(bytes) <= limit {
                dumps.append(i)
            } else if !reply.isNull {
                big.append((i, t))
            }
        }
        if options.mode == .length { return results }
        // Values under the bound: one DUMP each, pipelined.
        batch = RESPBatch(capacity: keyBytes + keys.count * 32, asking: asking)
        for i in dumps {
            batch.begin(2)
            batch.arg(Word.dump)
            batch.arg(keys[i])
        }
        let payloads = try await pipeline(db: db, batch)
        for (n, i) in dumps.enumerated() {
            let reply = payloads[n]
            // Moved since the probe (a slot migration under way): read where it went.
            if let r = reply.serverError?.redirection { results[i] = .redirect(r); continue }
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
        // Big values: their length, then bounded reads.
        for (i, t) in big {
            if t == .module {
                throw LiveError("\(endpoint): key \(Difference.display(keys[i])) is a module value of \(limit)+ bytes; module values cannot be read in bounded pieces")
            }
            do {
                let length = Int(try await one(db, [Self.lengthWord(t), RESPArg(keys[i])], asking: asking).int ?? 0)
                if let s = try await chunked(db: db, key: keys[i], type: t, length: length, digester: d, asking: asking) {
                    results[i] = .present(SideState(type: s.0, expireMs: expiries[i], digest: s.1))
                }
            } catch let moved as Redirected {
                // The slot moved while the value was read in pieces: read it again where it went.
                results[i] = .redirect(moved.redirection)
            }
        }
        return results
    }

    /// The type in a TYPE reply; nil for `none` (no such key). Types that are not one of the
    /// six core types are module types.
    static func valueType(_ reply: RESPValue) -> ValueType? {
        guard let b = reply.buffer else { return nil }
        return b.withUnsafeReadableBytes { p -> ValueType? in
            for (name, t) in typeWords where name.count == p.count && name.elementsEqual(p) { return t }
            return p.elementsEqual("none".utf8) ? nil : .module
        }
    }

    static let typeWords: [([UInt8], ValueType)] = [ValueType.string, .hash, .list, .set, .zset, .stream].map {
        (Array($0.description.utf8), $0)
    }

    /// The command that counts a value's elements (a string's bytes).
    static func lengthWord(_ t: ValueType) -> RESPArg {
        switch t {
        case .string: Word.strlen
        case .list: Word.llen
        case .set: Word.scard
        case .zset: Word.zcard
        case .hash: Word.hlen
        case .stream: Word.xlen
        case .module: Word.exists
        }
    }
}
