import SlotdiffCore

/// A stream ID (milliseconds, sequence).
struct StreamID: Hashable, Comparable {
    var ms: UInt64
    var seq: UInt64
    static func < (a: StreamID, b: StreamID) -> Bool { (a.ms, a.seq) < (b.ms, b.seq) }
}

extension ValueDecoder {
    /// Streams, layouts 15 (v1), 19 (v2), 21 (v3) and 26 (v4, with the IDMP trailer). Entries
    /// are digested in ID order with their fields; then the last ID and, order-independently,
    /// each consumer group with its pending entries (ID, consumer, delivery count). Times a
    /// server stamps by itself (delivery, seen, active) are read and left out.
    func stream(_ t: UInt8) throws {
        let nodes = try input.count("stream node count")
        var lastSeen: StreamID?
        for _ in 0..<nodes {
            let keyAt = input.offset
            let nodeKey = try input.stringArray("stream node key")
            if nodeKey.count != 16 { throw input.error("stream node key is \(nodeKey.count) bytes, expected 16", at: keyAt) }
            let master = nodeKey.withUnsafeBytes {
                StreamID(
                    ms: UInt64(bigEndian: $0.loadUnaligned(as: UInt64.self)),
                    seq: UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            try streamNode(try blob("stream listpack"), master: master, last: &lastSeen)
        }
        _ = try input.length("stream length")
        let lastMs = try input.length("stream last ID").value
        let lastSeq = try input.length("stream last ID").value
        d.streamLastID(ms: lastMs, seq: lastSeq)
        if t >= RDBType.streamListpacks2 {
            for what in ["first ID", "first ID", "max deleted ID", "max deleted ID", "entries added"] {
                _ = try input.length("stream \(what)")
            }
        }
        let groups = try input.count("consumer group count")
        for _ in 0..<groups {
            let name = try input.stringArray("consumer group name")
            let gms = try input.length("group last-delivered ID").value
            let gseq = try input.length("group last-delivered ID").value
            if t >= RDBType.streamListpacks2 { _ = try input.length("group entries-read") }
            name.withUnsafeBytes { d.beginGroup(name: $0, lastMs: gms, lastSeq: gseq) }
            let pelAt = input.offset
            let pelCount = try input.count("pending entry count")
            // The group's pending entries, in ID order (a server writes them so; sorted here
            // otherwise), each found by binary search when a consumer claims it: a dictionary
            // of them cost ~600 instructions an entry.
            var pel: [(id: StreamID, deliveries: UInt64, claimed: Bool)] = []
            pel.reserveCapacity(min(pelCount, 4096))
            var sorted = true
            for _ in 0..<pelCount {
                let id = try rawID()
                _ = try input.leU64("pending delivery time")
                if let last = pel.last, !(last.id < id) { sorted = false }
                pel.append((id, try input.length("pending delivery count").value, false))
            }
            if !sorted {
                pel.sort { $0.id < $1.id }
                for k in pel.indices.dropFirst() where pel[k - 1].id == pel[k].id {
                    throw input.error("pending entry \(pel[k].id.ms)-\(pel[k].id.seq) is twice in the group's pending list", at: pelAt)
                }
            }
            let consumers = try input.count("consumer count")
            for _ in 0..<consumers {
                let cname = try input.stringArray("consumer name")
                _ = try input.leU64("consumer seen time")
                if t >= RDBType.streamListpacks3 { _ = try input.leU64("consumer active time") }
                let n = try input.count("consumer pending count")
                for _ in 0..<n {
                    let at = input.offset
                    let id = try rawID()
                    var lo = 0, hi = pel.count
                    while lo < hi {
                        let mid = (lo + hi) / 2
                        if pel[mid].id < id { lo = mid + 1 } else { hi = mid }
                    }
                    guard lo < pel.count, pel[lo].id == id, !pel[lo].claimed else {
                        throw input.error("consumer's pending entry \(id.ms)-\(id.seq) is not in the group's pending list", at: at)
                    }
                    pel[lo].claimed = true
                    let deliveries = pel[lo].deliveries
                    cname.withUnsafeBytes { d.pending(ms: id.ms, seq: id.seq, consumer: $0, deliveries: deliveries) }
                }
            }
            // Entries pending without an owner cannot exist in a loaded stream; keep them in the digest anyway.
            for e in pel where !e.claimed {
                d.pending(ms: e.id.ms, seq: e.id.seq, consumer: UnsafeRawBufferPointer(start: nil, count: 0), deliveries: e.deliveries)
            }
            d.endGroup()
        }
        if t == RDBType.streamListpacks4 {
            _ = try input.length("IDMP duration")
            _ = try input.length("IDMP max entries")
            let producers = try input.count("IDMP producer count")
            for _ in 0..<producers {
                try input.skipString("IDMP producer id")
                let n = try input.count("IDMP entry count")
                for _ in 0..<n {
                    try input.skipString("IDMP idempotency id")
                    _ = try input.length("IDMP stream ID")
                    _ = try input.length("IDMP stream ID")
                }
            }
            _ = try input.length("IDMP ids added")
            _ = try input.length("IDMP duplicates")
        }
    }

    func rawID() throws -> StreamID {
        let b = try input.bytes(16, "stream ID")
        return StreamID(
            ms: UInt64(bigEndian: b.loadUnaligned(as: UInt64.self)),
            seq: UInt64(bigEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
    }

    /// One stream node: a listpack with a master entry, then entries relative to it.
    func streamNode(_ b: Blob, master: StreamID, last: inout StreamID?) throws {
        var c = try ListpackCursor(b)
        let count = try c.requiredInt("master entry count")
        let deleted = try c.requiredInt("master entry deleted count")
        let nMaster = try c.requiredInt("master field count")
        if nMaster < 0 || nMaster > 1 << 20 { throw b.fail(c.at, "master field count \(nMaster) is out of range") }
        // Master fields stay valid: they point into the blob.
        var masterFields: [Element] = []
        masterFields.reserveCapacity(min(Int(nMaster), 256))
        for _ in 0..<nMaster { masterFields.append(try c.required("master field")) }
        if try c.requiredInt("master entry terminator") != 0 { throw b.fail(c.at, "master entry does not end with 0") }
        var live = 0
        var dead = 0
        var w = ItemWriter(d)
        while true {
            let flagsAt = c.at
            guard let flagsEl = try c.next() else { break }
            guard case .int(let flags) = flagsEl else { throw b.fail(flagsAt, "stream entry flags are not an integer") }
            let msDiff = try c.requiredInt("entry ID (ms)")
            let seqDiff = try c.requiredInt("entry ID (seq)")
            let id = StreamID(ms: master.ms &+ UInt64(bitPattern: msDiff), seq: master.seq &+ UInt64(bitPattern: seqDiff))
            let deletedEntry = flags & 1 != 0
            let sameFields = flags & 2 != 0
            let n = sameFields ? Int(nMaster) : Int(try c.requiredInt("entry field count"))
            if n < 0 || n > 1 << 24 { throw b.fail(flagsAt, "entry field count \(n) is out of range") }
            if !deletedEntry {
                if let l = last, !(l < id) { throw b.fail(flagsAt, "stream entry IDs are not increasing") }
                last = id
                w.beginItem()
                w.fixed(id.ms)
                w.fixed(id.seq)
                w.fixed(UInt64(n))
                for i in 0..<n {
                    if sameFields { w.component(masterFields[i]) } else { try c.write(into: &w, "entry field") }
                    try c.write(into: &w, "entry value")
                }
                w.endItem()
            } else {
                for _ in 0..<(sameFields ? n : 2 * n) { _ = try c.required("entry field or value") }
            }
            _ = try c.requiredInt("entry back count")
            if deletedEntry { dead += 1 } else { live += 1 }
        }
        w.finish()
        if live != Int(count) || dead != Int(deleted) {
            throw b.fail(6, "master entry counts \(count) live and \(deleted) deleted entries, found \(live) and \(dead)")
        }
    }
}
