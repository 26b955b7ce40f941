import Foundation
import NIOCore
import RDB
import RESP
import SlotdiffCore

/// What one key looks like on a live node right now.
enum FetchResult: Sendable {
    case present(SideState)
    case absent
    /// The slot lives on another node (MOVED), or is being migrated there (ASK).
    case redirect(RedisRedirection)
    /// The key was replaced by one of another type while it was read (WRONGTYPE, or a DUMP of
    /// another type than TYPE said): read it again from the start.
    case changed
}

/// The constant arguments of the commands a batch sends per key, encoded once.
enum Words {
    static let pexpiretime = RESPWords(Word.pexpiretime), pttl = RESPWords(Word.pttl), type = RESPWords(Word.type)
    static let getrange = RESPWords(Word.getrange), dump = RESPWords(Word.dump), zero = RESPWords(Word.zero)
    static let memoryUsage = RESPWords(Word.memory, Word.usage), samplesZero = RESPWords(Word.samples, Word.zero)
    static let lrange = RESPWords(Word.lrange), sscan = RESPWords(Word.sscan), hscan = RESPWords(Word.hscan), zscan = RESPWords(Word.zscan)
    static let zeroCount = RESPWords(Word.zero, Word.count)
    /// `LiveNode.lengthWord` of each type, encoded, at the type's raw value (a dictionary's
    /// hashing cost more than the lookup is worth, per key).
    static let length = (0...Int(UInt8.max)).map { ValueType(rawValue: UInt8($0)).map { RESPWords(LiveNode.lengthWord($0)) } ?? RESPWords() }
}

/// Command words built once: a literal argument would allocate on every use.
enum Word {
    static let pexpiretime: RESPArg = "PEXPIRETIME", pttl: RESPArg = "PTTL", memory: RESPArg = "MEMORY"
    static let usage: RESPArg = "USAGE", samples: RESPArg = "SAMPLES"
    static let type: RESPArg = "TYPE", dump: RESPArg = "DUMP", getrange: RESPArg = "GETRANGE", zero: RESPArg = "0"
    static let strlen: RESPArg = "STRLEN", llen: RESPArg = "LLEN", scard: RESPArg = "SCARD", zcard: RESPArg = "ZCARD"
    static let hlen: RESPArg = "HLEN", xlen: RESPArg = "XLEN", exists: RESPArg = "EXISTS"
    static let lrange: RESPArg = "LRANGE", sscan: RESPArg = "SSCAN", hscan: RESPArg = "HSCAN", zscan: RESPArg = "ZSCAN"
    static let count: RESPArg = "COUNT"
}

extension LiveNode {
    /// Reads a batch of keys of one database in pipelined round trips. First the expiry and
    /// the type of every key. Then strings are read with one GETRANGE bounded by the size bound
    /// (a longer string goes on in pieces), and other values are sized exactly before any is
    /// serialized: their element count first (or, with `--mode length`, that is the answer),
    /// then, for collections of at most `elementBound` elements, MEMORY USAGE … SAMPLES 0 (exact,
    /// and cheap at that size; a sampled estimate misses one huge element among many small
    /// ones). Values under the bound are read with DUMP and decoded by the RDB value decoder;
    /// larger ones, and every collection over the element bound, are read in chunks into the
    /// same digest. So no command makes the server serialize more than the bound.
    /// A key is absent only on a reply that says so (-2 from PEXPIRETIME/PTTL, `none` from TYPE,
    /// a null reply); any other error reply ends the check naming the command (`refusal`).
    func fetch(db: Int?, keys: KeyList, digester d: CanonicalDigester, asking: Bool = false) async throws -> [FetchResult] {
        var results = [FetchResult](repeating: .absent, count: keys.count)
        let keyBytes = keys.byteCount
        var batch = RESPBatch(capacity: keyBytes * 2 + keys.count * 48, asking: asking)
        let plan = self.plan
        let byPexpiretime = hasPexpiretime && plan.expiryByPTTL == nil
        let expiryWords = byPexpiretime ? Words.pexpiretime : Words.pttl
        keys.withKeys { [batch] k in
            for i in keys.indices {
                batch.begin(2, expiryWords)
                batch.arg(raw: k[i])
                batch.begin(2, Words.type)
                batch.arg(raw: k[i])
            }
        }
        let now = Int64(Date().timeIntervalSince1970 * 1000)
        var probe = try await pipeline(db: db, batch)
        var expiries = [Int64?](repeating: nil, count: keys.count)
        var typed: [(Int, ValueType)] = []
        typed.reserveCapacity(keys.count)
        for i in 0..<keys.count {
            let exp = probe.take(2 * i), typeReply = probe.take(2 * i + 1)
            if let e = exp.serverError {
                if let r = e.redirection { results[i] = .redirect(r); continue }
                if byPexpiretime && ReadPlan.isUnusable(e) {
                    // Not allowed here: PTTL and this machine's clock give the same expiry
                    // within the tolerance. The batch is read again from the start.
                    fallBack(.expiryByPTTL, "PEXPIRETIME", e)
                    return try await fetch(db: db, keys: keys, digester: d, asking: asking)
                }
                throw refusal(byPexpiretime ? "PEXPIRETIME" : "PTTL", e)
            }
            if let e = typeReply.serverError {
                if let r = e.redirection { results[i] = .redirect(r); continue }
                throw refusal("TYPE", e)
            }
            guard let x = exp.int else { throw unexpected(byPexpiretime ? "PEXPIRETIME" : "PTTL") }
            guard let type = try valueType(typeReply) else { continue }  // `none`: no such key (any more)
            if x == -2 {
                results[i] = .changed  // written between the two commands: its expiry is unknown
                continue
            }
            if x >= 0 { expiries[i] = byPexpiretime ? x : now + x }
            typed.append((i, type))
        }
        if options.mode == .keys {
            for (i, t) in typed { results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: .zero)) }
            return results
        }
        // Second round trip: strings, and the element count of everything else (module values:
        // their memory size, as they have no count). A string is read whole up to `first`
        // bytes, the batch's share of `pipelineBytes`; a longer one is read again below.
        let limit = options.bigKeyThreshold
        let strings = typed.reduce(0) { $0 + ($1.1 == .string ? 1 : 0) }
        let first = min(limit, max(256 << 10, options.pipelineBytes / max(1, strings)))
        batch = RESPBatch(capacity: keyBytes + keys.count * 64, asking: asking)
        keys.withKeys { [batch] k in
            for (i, t) in typed {
                if options.mode == .length || (t != .string && t != .module) {
                    batch.begin(2, Words.length[Int(t.rawValue)])
                    batch.arg(raw: k[i])
                } else if t == .string {
                    batch.begin(4, Words.getrange)
                    batch.arg(raw: k[i])
                    batch.args(Words.zero)
                    batch.arg(max(0, first - 1))
                } else {
                    memoryUsage(batch, k[i])
                }
            }
        }
        var second = try await pipeline(db: db, batch)
        /// Digests key `i`'s string from a GETRANGE reply of up to `asked` bytes; false when the
        /// string may go on past them. (GETRANGE returns at least one byte of a non-empty string
        /// whatever is asked, so a reply of `asked` bytes or more is never taken as the whole.)
        func digestString(_ i: Int, _ reply: RESPValue, asked: Int) throws -> Bool {
            guard let b = reply.buffer else { throw unexpected("GETRANGE") }
            if b.readableBytes >= asked { return false }
            d.begin(.string)
            b.withUnsafeReadableBytes { d.stringPart($0) }
            results[i] = .present(SideState(type: .string, expireMs: expiries[i], digest: d.finish()))
            return true
        }
        var long: [Int] = []
        var dumps: [(Int, ValueType, count: Int, bytes: Int)] = []
        var sized: [(Int, ValueType, count: Int)] = []
        var big: [(Int, ValueType, count: Int)] = []
        for (n, (i, t)) in typed.enumerated() {
            let reply = second.take(n)
            // Named only for a message: no string made per key.
            var command: String {
                options.mode == .length || (t != .string && t != .module)
                    ? String(decoding: Self.lengthWord(t).bytes, as: UTF8.self)
                    : t == .string ? "GETRANGE" : "MEMORY USAGE"
            }
            if let e = reply.serverError {
                if let r = e.redirection { results[i] = .redirect(r); continue }
                if e.code == "WRONGTYPE" { results[i] = .changed; continue }
                throw refusal(command, e)
            }
            if options.mode == .length {
                guard let length = reply.int, length >= 0 else { throw unexpected(command) }
                if length == 0 && t != .string && t != .stream { continue }  // gone since the probe (an empty stream is not)
                results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: Hash128.length(of: t, count: UInt64(length))))
            } else if t == .string {
                if try !digestString(i, reply, asked: first) {
                    // Longer than this batch's share: read again up to the bound, or in pieces.
                    if first < limit { long.append(i) } else { big.append((i, .string, 0)) }
                }
            } else if t == .module {
                if reply.isNull { continue }  // gone since the probe
                guard let bytes = reply.int else { throw unexpected("MEMORY USAGE") }
                if Int(bytes) > limit {
                    throw SlotdiffError(
                        .usage,
                        "\(endpoint): key \(Difference.display(Array(keys[i]))) is a module value of \(bytes) bytes (over --big-key-threshold \(limit)); module values cannot be read in bounded pieces",
                        endpoint: endpoint.address)
                }
                if let why = plan.valuesByType, !plan.dumpAllowed {
                    throw SlotdiffError(
                        .refused,
                        "\(endpoint): key \(Difference.display(Array(keys[i]))) is a module value, which only DUMP reads, and \(why); grant it to this user: ACL SETUSER <user> +dump",
                        endpoint: endpoint.address, command: "DUMP")
                }
                dumps.append((i, t, 0, Int(bytes)))
            } else {
                guard let count = reply.int, count >= 0 else { throw unexpected(command) }
                // Gone since the probe; but a stream whose entries were all deleted is still there.
                if count == 0 && t != .stream { continue }
                // Without DUMP the size does not matter: every collection is read by type.
                if count > options.elementBound || plan.valuesByType != nil { big.append((i, t, Int(count))) } else { sized.append((i, t, Int(count))) }
            }
        }
        if options.mode == .length { return results }
        // Strings longer than their share: up to the bound each, `pipelineBytes` at a time.
        for group in Self.groups(long.map { ($0, limit) }, budget: options.pipelineBytes) {
            batch = RESPBatch(capacity: keyBytes + group.count * 64, asking: asking)
            keys.withKeys { [batch] k in
                for i in group {
                    batch.begin(4, Words.getrange)
                    batch.arg(raw: k[i])
                    batch.args(Words.zero)
                    batch.arg(max(0, limit - 1))
                }
            }
            let replies = try await pipeline(db: db, batch)
            for (n, i) in group.enumerated() {
                let reply = replies[n]
                if let e = reply.serverError {
                    if let r = e.redirection { results[i] = .redirect(r); continue }
                    if e.code == "WRONGTYPE" { results[i] = .changed; continue }
                    throw refusal("GETRANGE", e)
                }
                if try !digestString(i, reply, asked: limit) {
                    big.append((i, .string, 0))  // longer than one reply may carry: read in pieces
                }
            }
        }
        // Third round trip: the exact size of collections under the element bound.
        if !sized.isEmpty {
            batch = RESPBatch(capacity: keyBytes + keys.count * 48, asking: asking)
            keys.withKeys { [batch] k in for (i, _, _) in sized { memoryUsage(batch, k[i]) } }
            let sizes = try await pipeline(db: db, batch)
            for (n, (i, t, count)) in sized.enumerated() {
                let reply = sizes[n]
                if let e = reply.serverError {
                    if let r = e.redirection { results[i] = .redirect(r); continue }
                    // Without MEMORY the size is unknown: bounded reads are exact, only slower.
                    fallBack(.valuesByType, "MEMORY USAGE", e)
                    big.append((i, t, count))
                    continue
                }
                if reply.isNull { continue }  // gone since the probe
                guard let bytes = reply.int else { throw unexpected("MEMORY USAGE") }
                if Int(bytes) <= limit { dumps.append((i, t, count, Int(bytes))) } else { big.append((i, t, count)) }
            }
        }
        // Values under the bound: one DUMP each, pipelined, `pipelineBytes` at a time.
        for group in Self.groups(dumps.indices.map { ($0, dumps[$0].bytes) }, budget: options.pipelineBytes) {
            batch = RESPBatch(capacity: keyBytes + group.count * 32, asking: asking)
            keys.withKeys { [batch] k in
                for j in group {
                    batch.begin(2, Words.dump)
                    batch.arg(raw: k[dumps[j].0])
                }
            }
            var payloads = try await pipeline(db: db, batch)
            // One reader for the group's payloads (made per payload, with its LZF buffer, it
            // cost an allocation or two per key).
            let reader = RDBInput(name: dumpName, borrowing: UnsafeRawBufferPointer(start: nil, count: 0))
            for (n, j) in group.enumerated() {
                let (i, probed, count, _) = dumps[j]
                let reply = payloads.take(n)
                if let e = reply.serverError {
                    // Moved since the probe (a slot migration under way): read where it went.
                    if let r = e.redirection { results[i] = .redirect(r); continue }
                    if ReadPlan.isUnusable(e) && probed != .module {
                        // Not allowed here: the per-type reads give the same digest.
                        fallBack(.valuesByType, "DUMP", e)
                        big.append((i, probed, count))
                        continue
                    }
                    throw refusal("DUMP", e)
                }
                if reply.isNull { continue }  // gone since the probe: expired or deleted
                guard let buf = reply.buffer else { throw unexpected("DUMP") }
                let type: ValueType = try buf.withUnsafeReadableBytes { p in
                    do { return try DumpPayload.decode(p, with: reader, into: d) } catch let e as RDBError {
                        throw SlotdiffError(.corruptInput, e.description, endpoint: endpoint.address, file: e.input, offset: e.offset)
                    }
                }
                if type != probed {
                    results[i] = .changed
                    continue
                }
                let empty = d.count == 0 && type != .string && type != .stream && type != .module
                if empty { continue }
                results[i] = .present(SideState(type: type, expireMs: expiries[i], digest: d.finish()))
            }
        }
        // Small collections read by type (DUMP not allowed here, or their size unknown without
        // MEMORY): one bounded read each, pipelined. One that does not come back whole (grown
        // since it was counted, a SCAN cursor not done) is read in chunks from the start.
        big = try await readWhole(db: db, keys: keys, big, expiries: expiries, into: &results, digester: d, asking: asking)
        // Big values: bounded reads.
        for (i, t, count) in big {
            do {
                var length = count
                if t == .string {
                    guard let n = try await one(db, [Word.strlen, RESPArg(keys[i])], asking: asking).int else { throw unexpected("STRLEN") }
                    length = Int(n)
                }
                let digest = try await chunked(db: db, key: Array(keys[i]), type: t, length: length, digester: d, asking: asking)
                results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: digest))
            } catch let moved as Redirected {
                // The slot moved while the value was read in pieces: read it again where it went.
                results[i] = .redirect(moved.redirection)
            } catch is KeyChanged {
                results[i] = .changed
            }
        }
        return results
    }

    /// Reads the collections of `candidates` that fit in one chunk (`chunkSize` elements) with
    /// one LRANGE/SSCAN/HSCAN/ZSCAN each, in one pipeline, into `results`; returns the others,
    /// and those that did not come back whole, for the chunked reader. Hashes on servers with
    /// field TTLs are left to the chunked reader, which reads each field's expiry too.
    private func readWhole(
        db: Int?, keys: KeyList, _ candidates: [(Int, ValueType, count: Int)], expiries: [Int64?],
        into results: inout [FetchResult], digester d: CanonicalDigester, asking: Bool
    ) async throws -> [(Int, ValueType, count: Int)] {
        let n = max(1, options.chunkSize)
        var rest: [(Int, ValueType, count: Int)] = []
        var whole: [(Int, ValueType, count: Int)] = []
        for c in candidates {
            let fits = c.count > 0 && c.count < n && (c.1 == .list || c.1 == .set || c.1 == .zset || (c.1 == .hash && !hasFieldTTLs))
            if fits { whole.append(c) } else { rest.append(c) }
        }
        if whole.isEmpty { return rest }
        let batch = RESPBatch(capacity: whole.reduce(0) { $0 + keys[$1.0].count } + whole.count * 48, asking: asking)
        keys.withKeys { [batch] k in
            for (i, t, _) in whole {
                if t == .list {
                    batch.begin(4, Words.lrange)
                    batch.arg(raw: k[i])
                    batch.args(Words.zero)
                    batch.arg(n - 1)
                } else {
                    batch.begin(5, t == .set ? Words.sscan : t == .hash ? Words.hscan : Words.zscan)
                    batch.arg(raw: k[i])
                    batch.args(Words.zeroCount)
                    batch.arg(n)
                }
            }
        }
        let replies = try await pipeline(db: db, batch)
        for (r, (i, t, count)) in whole.enumerated() {
            let reply = replies[r]
            let command = t == .list ? "LRANGE" : t == .set ? "SSCAN" : t == .hash ? "HSCAN" : "ZSCAN"
            if let e = reply.serverError {
                if let moved = e.redirection { results[i] = .redirect(moved); continue }
                if e.code == "WRONGTYPE" { results[i] = .changed; continue }
                throw refusal(command, e)
            }
            d.begin(t)
            if t == .list {
                guard let items = reply.array else { throw unexpected(command) }
                if items.count >= n { rest.append((i, t, count)); continue }  // grown: maybe more than one read
                try listElements(items, d)
            } else {
                guard let parts = reply.array, parts.count == 2, let cursor = parts[0].string else { throw unexpected(command) }
                if cursor != "0" { rest.append((i, t, count)); continue }
                // RESP3 may answer with a map for HSCAN/ZSCAN pairs.
                let items: [RESPValue] = parts[1].array ?? (parts[1].pairs ?? []).flatMap { [$0.key, $0.value] }
                // One reply that ends the scan visited each bucket once: no element comes twice.
                var seen: Set<Hash128>? = nil
                try scanItems(t, command, items, ttls: [], d, seen: &seen)
            }
            if d.count == 0 { continue }  // gone since the probe
            results[i] = .present(SideState(type: t, expireMs: expiries[i], digest: d.finish()))
        }
        return rest
    }

    /// `items` (index, bytes) in order, in groups of at most `budget` bytes (an item bigger
    /// than that is a group of its own).
    static func groups(_ items: [(Int, Int)], budget: Int) -> [[Int]] {
        var out: [[Int]] = []
        var current: [Int] = []
        var bytes = 0
        for (i, b) in items {
            if !current.isEmpty && bytes + b > budget {
                out.append(current)
                current = []
                bytes = 0
            }
            current.append(i)
            bytes += b
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    private func memoryUsage(_ batch: RESPBatch, _ key: UnsafeRawBufferPointer) {
        batch.begin(5, Words.memoryUsage)
        batch.arg(raw: key)
        batch.args(Words.samplesZero)
    }

    /// The type in a TYPE reply; nil for `none` (no such key). Types that are not one of the
    /// six core types are module types.
    func valueType(_ reply: RESPValue) throws -> ValueType? {
        guard let b = reply.buffer else { throw unexpected("TYPE") }
        return Self.valueType(named: b)
    }

    /// Compared as bytes against literals: a table of names cost a retain and release of each
    /// name tried, per key.
    static func valueType(named b: ByteBuffer) -> ValueType? {
        b.withUnsafeReadableBytes { p -> ValueType? in
            func named(_ s: StaticString) -> Bool {
                p.count == s.utf8CodeUnitCount && memcmp(p.baseAddress!, s.utf8Start, p.count) == 0
            }
            if p.isEmpty { return .module }
            if named("string") { return .string }
            if named("hash") { return .hash }
            if named("zset") { return .zset }
            if named("set") { return .set }
            if named("list") { return .list }
            if named("stream") { return .stream }
            return named("none") ? nil : .module
        }
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
