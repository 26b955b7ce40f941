import Foundation
import NIOCore
import RESP
import SlotdiffCore

/// A key's slot moved to another node while it was being read.
struct Redirected: Error {
    var redirection: RedisRedirection
}

/// A key was replaced (by a value of another type) or deleted while it was read in pieces.
struct KeyChanged: Error {}

extension LiveNode {
    /// Reads a value too big for one DUMP with bounded commands (GETRANGE, LRANGE, SSCAN,
    /// HSCAN, ZSCAN, XRANGE) into the same canonical digest. SCAN-family commands may return
    /// an element twice: a scan that returned more or fewer than the key holds is read again
    /// with each element's hash kept once, so nothing is counted twice.
    /// A key deleted or replaced meanwhile throws `KeyChanged` (see `one`); a reply of another
    /// shape than the command's is an error, never a shorter value.
    func chunked(
        db: Int?, key: [UInt8], type: ValueType, length: Int, digester d: CanonicalDigester,
        asking: Bool = false
    ) async throws -> Hash128 {
        let one = { (db: Int?, cmd: [RESPArg]) in try await self.one(db, cmd, asking: asking) }
        let k = RESPArg(key)
        let n = options.chunkSize
        d.begin(type)
        switch type {
        case .string:
            let step = max(n, 64 * 1024) * 64
            var off = 0
            while off < length {
                let r = try await one(db, ["GETRANGE", k, RESPArg(off), RESPArg(off + step - 1)])
                guard let b = r.buffer else { throw unexpected("GETRANGE") }
                if b.readableBytes == 0 { break }
                b.withUnsafeReadableBytes { d.stringPart($0) }
                off += b.readableBytes
            }
        case .list:
            var start = 0
            while true {
                let r = try await one(db, ["LRANGE", k, RESPArg(start), RESPArg(start + n - 1)])
                guard let items = r.array else { throw unexpected("LRANGE") }
                try listElements(items, d)
                if items.count < n { break }
                start += n
            }
        case .set, .hash, .zset:
            // First without keeping the elements' hashes (memory flat, whatever the size): a
            // scan returns an element twice only when the table was resized while it ran, and
            // then it returns more elements than the key holds. So the scan stands when it
            // returned exactly the count taken before it and the key still holds that many;
            // otherwise it is read again, each element's hash kept once.
            try await scanElements(db, k, type, d, unique: false, asking: asking)
            if d.count == UInt64(length),
                try await one(db, [Self.lengthWord(type), k]).int == Int64(length)
            {
                break
            }
            logger.debug(
                "\(endpoint): \(type) \(Difference.display(key)) gave \(d.count) elements for \(length) (resized or written while scanned); read again, duplicates set apart"
            )
            d.begin(type)
            try await scanElements(db, k, type, d, unique: true, asking: asking)
        case .stream:
            try await chunkedStream(db, k, d, asking: asking)
        case .module:
            // Module values are opaque: only DUMP reads them (the fetch refuses big ones first).
            throw SlotdiffError(
                .usage, "\(endpoint): key \(Difference.display(key)) is a module value; module values cannot be read in bounded pieces",
                endpoint: endpoint.address)
        }
        return d.finish()
    }

    /// A set, hash or sorted set by SSCAN/HSCAN/ZSCAN into the digest; with `unique`, an
    /// element returned twice is counted once (its hash kept for the whole scan).
    private func scanElements(_ db: Int?, _ k: RESPArg, _ type: ValueType, _ d: CanonicalDigester, unique: Bool, asking: Bool) async throws {
        var seen: Set<Hash128>? = unique ? [] : nil
        let fieldTTLs = type == .hash && hasFieldTTLs
        let command = type == .set ? "SSCAN" : type == .hash ? "HSCAN" : "ZSCAN"
        try await scanFamily(db, command, k, asking: asking) { items in
            let width = type == .set ? 1 : 2
            guard items.count % width == 0, items.allSatisfy({ $0.buffer != nil }) else { throw self.unexpected(command) }
            var ttls: [RESPValue] = []
            if fieldTTLs && !items.isEmpty {
                // One HSCAN reply may hold more fields than one command may name (a
                // listpack is returned whole, whatever COUNT says).
                let fields = stride(from: 0, to: items.count, by: 2).map { items[$0].bytes ?? [] }
                for cmd in Self.fieldExpiryCommands(key: k, fields: fields) {
                    guard let part = try await self.one(db, cmd, asking: asking).array else { throw self.unexpected("HPEXPIRETIME") }
                    ttls += part
                }
                guard ttls.count == fields.count else { throw self.unexpected("HPEXPIRETIME") }
            }
            try self.scanItems(type, command, items, ttls: ttls, d, seen: &seen)
        }
    }

    /// HPEXPIRETIME of `fields` of `key`, in as many commands as `RESPBatch.argumentLimit`
    /// needs (each carries four arguments besides its fields), in the order of `fields`.
    static func fieldExpiryCommands(key: RESPArg, fields: [[UInt8]]) -> [[RESPArg]] {
        let per = RESPBatch.argumentLimit - 4
        return stride(from: 0, to: fields.count, by: per).map { start in
            let part = fields[start..<min(fields.count, start + per)]
            return ["HPEXPIRETIME", key, "FIELDS", RESPArg(part.count)] + part.map { RESPArg($0) }
        }
    }

    /// List elements of an LRANGE reply into the digest.
    func listElements(_ items: [RESPValue], _ d: CanonicalDigester) throws {
        for it in items {
            guard let b = it.buffer else { throw unexpected("LRANGE") }
            b.withUnsafeReadableBytes { d.element($0) }
        }
    }

    /// Members (sets), field/value pairs (hashes, with each field's expiry from `ttls` where
    /// given) or member/score pairs (sorted sets) of an SSCAN/HSCAN/ZSCAN reply into the
    /// digest; with `seen`, an item already seen (SCAN may return one twice) is counted once.
    func scanItems(
        _ type: ValueType, _ command: String, _ items: [RESPValue], ttls: [RESPValue], _ d: CanonicalDigester,
        seen: inout Set<Hash128>?
    ) throws {
        let width = type == .set ? 1 : 2
        guard items.count % width == 0, items.allSatisfy({ $0.buffer != nil }) else { throw unexpected(command) }
        for i in stride(from: 0, to: items.count - width + 1, by: width) {
            d.beginItem()
            items[i].buffer!.withUnsafeReadableBytes { d.component($0) }
            if type == .hash { items[i + 1].buffer!.withUnsafeReadableBytes { d.component($0) } }
            if type == .zset {
                let text = items[i + 1].string ?? ""
                let score = Array(text.utf8).withUnsafeBytes { parseDouble($0) } ?? items[i + 1].double ?? .nan
                d.score(score)
            }
            if type == .hash, i / 2 < ttls.count, let t = ttls[i / 2].int, t >= 0 { d.fixed(UInt64(t)) }
            if seen != nil { d.endItem(unique: &seen!) } else { d.endItem() }
        }
    }

    /// One command; a MOVED/ASK reply is thrown as `Redirected`; a WRONGTYPE or "no such key"
    /// reply (the key was replaced or deleted meanwhile) as `KeyChanged`, so the key is read
    /// again from the start; any other error reply ends the check (`refusal`).
    func one(_ db: Int?, _ cmd: [RESPArg], asking: Bool) async throws -> RESPValue {
        let r = try await pipeline(db: db, [cmd], asking: asking)[0]
        if let moved = r.serverError?.redirection { throw Redirected(redirection: moved) }
        if let e = r.serverError {
            if e.code == "WRONGTYPE" || e.message.lowercased().contains("no such key") { throw KeyChanged() }
            let words = cmd.prefix(2).map { String(decoding: $0.bytes, as: UTF8.self) }
            throw refusal(words.first == "XINFO" ? words.joined(separator: " ") : words[0], e)
        }
        return r
    }

    private func scanFamily(_ db: Int?, _ cmdName: String, _ k: RESPArg, asking: Bool, _ each: ([RESPValue]) async throws -> Void) async throws {
        var cursor = "0"
        repeat {
            let r = try await one(db, [RESPArg(cmdName), k, RESPArg(cursor), "COUNT", RESPArg(options.chunkSize)], asking: asking)
            guard let parts = r.array, parts.count == 2, let c = parts[0].string else { throw unexpected(cmdName) }
            cursor = c
            // RESP3 may answer with a map for HSCAN/ZSCAN pairs; flatten it.
            let items: [RESPValue] = parts[1].array ?? (parts[1].pairs ?? []).flatMap { [$0.key, $0.value] }
            try await each(items)
        } while cursor != "0"
    }

    /// Streams: entries by XRANGE in ID order, the last ID from XINFO STREAM, and every group's
    /// last-delivered ID and pending entries (XINFO GROUPS, XPENDING).
    private func chunkedStream(_ db: Int?, _ k: RESPArg, _ d: CanonicalDigester, asking: Bool) async throws {
        var start = "-"
        while true {
            let r = try await one(db, ["XRANGE", k, RESPArg(start), "+", "COUNT", RESPArg(options.chunkSize)], asking: asking)
            guard let entries = r.array else { throw unexpected("XRANGE") }
            for e in entries {
                guard let parts = e.array, parts.count == 2, let id = parts[0].string, let (ms, seq) = Self.streamID(id),
                    let fields = parts[1].array ?? parts[1].pairs?.flatMap({ [$0.key, $0.value] }),
                    fields.allSatisfy({ $0.buffer != nil })
                else { throw unexpected("XRANGE") }
                d.beginItem()
                d.fixed(ms)
                d.fixed(seq)
                d.fixed(UInt64(fields.count / 2))
                for f in fields { f.buffer!.withUnsafeReadableBytes { d.component($0) } }
                d.endItem()
                start = "(" + id
            }
            if entries.count < options.chunkSize { break }
        }
        let info = try await one(db, ["XINFO", "STREAM", k], asking: asking)
        guard let last = info["last-generated-id"]?.string, let (lms, lseq) = Self.streamID(last) else { throw unexpected("XINFO STREAM") }
        d.streamLastID(ms: lms, seq: lseq)
        guard let groups = try await one(db, ["XINFO", "GROUPS", k], asking: asking).array else { throw unexpected("XINFO GROUPS") }
        for g in groups {
            guard let name = g["name"]?.bytes, let lastID = g["last-delivered-id"]?.string,
                let (gms, gseq) = Self.streamID(lastID)
            else { throw unexpected("XINFO GROUPS") }
            name.withUnsafeBytes { d.beginGroup(name: $0, lastMs: gms, lastSeq: gseq) }
            var from = "-"
            while true {
                let p = try await one(db, ["XPENDING", k, RESPArg(name), RESPArg(from), "+", RESPArg(options.chunkSize)], asking: asking)
                guard let rows = p.array else { throw unexpected("XPENDING") }
                for row in rows {
                    guard let f = row.array, f.count >= 4, let id = f[0].string, let (ms, seq) = Self.streamID(id),
                        let consumer = f[1].bytes, let count = f[3].int
                    else { throw unexpected("XPENDING") }
                    consumer.withUnsafeBytes { d.pending(ms: ms, seq: seq, consumer: $0, deliveries: UInt64(count)) }
                    from = "(" + id
                }
                if rows.count < options.chunkSize { break }
            }
            d.endGroup()
        }
    }

    static func streamID(_ s: String) -> (UInt64, UInt64)? {
        let p = s.split(separator: "-")
        guard p.count == 2, let a = UInt64(p[0]), let b = UInt64(p[1]) else { return nil }
        return (a, b)
    }
}
