import CZstd
import Foundation
import HashSlots
import SlotdiffCore

/// How `slotdiff digest` reads its side.
public struct DigestOptions: Sendable {
    public var filter = KeyFilter()
    public var mode: CompareMode = .digest
    public var workers = ProcessInfo.processInfo.activeProcessorCount
    /// Slot-range passes (nil: one per `keysPerPass` keys of a live side; dump files: one per
    /// 16 MiB of dump), so that one pass's records are held at a time.
    public var passes: Int?
    public var keysPerPass = 250_000
    public var progress: CheckProgress?
    /// Who wrote the file (`slotdiff 0.1.0 (abc1234)`) and the side as given (no password).
    public var producer = "slotdiff"
    public var side = ""
    public var level: Int32 = 3

    public init() {}
}

/// Writes a digest file of one side (`DigestFile` for the layout), pass by pass: each pass's
/// records are sorted by slot and written as they come, so memory holds one pass.
public enum DigestRun {
    /// Reads `side` and writes its digest to `path` (through a temporary file beside it,
    /// renamed at the end: a digest file is whole or absent). Returns its header.
    public static func write(
        side: any KeyspaceSource, to path: String, options: DigestOptions,
        stop: @escaping @Sendable () -> Bool = { false }
    ) async throws -> DigestMeta {
        let started = Int64(Date().timeIntervalSince1970 * 1000)
        let all = options.filter.slots ?? SlotRange.all
        let width = Int(all.upper) - Int(all.lower) + 1
        var passes = options.passes ?? 1
        if options.passes == nil {
            if side.isLive {
                passes = ((try await side.keyCount() ?? 0) + options.keysPerPass - 1) / options.keysPerPass
            } else if let d = side as? DumpFileSource {
                let bytes = d.files.paths.compactMap { (try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int) ?? nil }.reduce(0, +)
                // Spilling costs the same whatever the pass count (each record is written and
                // read once), so passes are small: at most 16 MiB of dump each.
                passes = bytes / (16 << 20) + 1
            }
        }
        passes = max(1, min(passes, 1024, width))
        func range(_ i: Int) -> SlotRange {
            SlotRange(UInt16(Int(all.lower) + width * i / passes), UInt16(Int(all.lower) + width * (i + 1) / passes - 1))
        }
        options.progress?.setPasses(passes)
        let out = try DigestFileOutput(path: path, level: options.level)
        let read = ReadContext(filter: options.filter, mode: options.mode, workers: options.workers, progress: options.progress, stop: stop)
        let kept = passes > 1 ? try await side.readOnce(passes: (0..<passes).map(range), read) : nil
        var inputs: [[String: String]] = []
        var snapshot: Int64?
        var filtered = 0, empty = 0
        var databases = Set<Int>()
        for i in 0..<passes {
            if stop() { throw SlotdiffError(.interrupted, "interrupted: the digest file \(path) was not written") }
            var r = read
            r.filter.pass = passes > 1 ? range(i) : nil
            let records = try await side.records(r, kept: kept)
            inputs = records.inputs
            if let s = records.snapshotMs { snapshot = max(snapshot ?? s, s) }
            filtered += records.filteredOut
            empty += records.emptySkipped
            try out.add(records, dedupe: side.isLive, databases: &databases)
            options.progress?.passDone()
        }
        let finished = Int64(Date().timeIntervalSince1970 * 1000)
        let meta = DigestMeta(
            format: Int(DigestFile.version), producer: options.producer, side: options.side, live: side.isLive,
            cluster: side.isCluster, inputs: inputs, readStartedMs: started, readFinishedMs: finished,
            // A live side is as it was when its reading ended: a key whose expiry
            // passed before then may be absent from it.
            snapshotMs: side.isLive ? finished : snapshot, mode: options.mode.rawValue,
            options: DigestMeta.Options(options.filter), databases: databases.sorted(), keys: out.keys,
            filteredOut: filtered, emptySkipped: empty, passes: passes)
        var covered = [UInt64](repeating: 0, count: HashSlot.count / 64)
        for s in Int(all.lower)...Int(all.upper) where options.filter.sample?.contains(UInt16(s)) ?? true {
            covered[s >> 6] |= 1 << UInt64(s & 63)
        }
        try out.finish(meta: meta, covered: covered)
        return meta
    }
}

/// The file being written: blocks as records come, the header and footer at the end.
final class DigestFileOutput {
    let path: String
    let temporary: String
    private let fd: Int32
    private let cctx: OpaquePointer
    private var offset = UInt64(DigestFile.preambleSize)
    private var blocks: [DigestBlock] = []
    private var raw: [UInt8] = []
    private var rawKeys: UInt32 = 0
    private var rawFirst: UInt16 = 0
    private var rawLast: UInt16 = 0
    private(set) var keys = 0
    private var slotKeys: [UInt16: (keys: Int, aggregate: Hash128)] = [:]
    private var done = false
    static let blockBytes = 1 << 20

    init(path: String, level: Int32) throws {
        self.path = path
        let dir = (path as NSString).deletingLastPathComponent
        temporary = (dir.isEmpty ? "" : dir + "/") + ".\((path as NSString).lastPathComponent).\(getpid()).partial"
        fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        if fd < 0 { throw SlotdiffError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))", file: temporary) }
        guard let c = ZSTD_createCCtx() else {
            Foundation.close(fd)
            throw SlotdiffError(.io, "zstd: out of memory")
        }
        cctx = c
        // Every frame carries its size and a checksum: a flipped byte is found, not compared.
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1)
        ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1)
        var pre: [UInt8] = DigestFile.magic
        pre.le(DigestFile.version)
        pre.le(UInt32(0))
        try write(pre)
    }

    deinit {
        ZSTD_freeCCtx(cctx)
        if !done {
            Foundation.close(fd)
            unlink(temporary)
        }
    }

    private func write(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try writeAll(fd, $0, temporary) }
    }

    private func compress(_ input: [UInt8]) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: ZSTD_compressBound(input.count))
        let n = out.withUnsafeMutableBytes { o in input.withUnsafeBytes { i in ZSTD_compress2(cctx, o.baseAddress, o.count, i.baseAddress, i.count) } }
        if ZSTD_isError(n) != 0 { throw SlotdiffError(.io, "zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        out.removeSubrange(n...)
        return out
    }

    private func flushBlock() throws {
        guard rawKeys > 0 else { return }
        let c = try compress(raw)
        try write(c)
        blocks.append(
            DigestBlock(
                offset: offset, compressed: UInt32(c.count), raw: UInt32(raw.count), keys: rawKeys,
                firstSlot: rawFirst, lastSlot: rawLast))
        offset += UInt64(c.count)
        raw.removeAll(keepingCapacity: true)
        rawKeys = 0
    }

    /// One pass's records, in slot order (then db, then key). A live side's key held by two
    /// nodes (a slot moving) is written once; dump files' keys held twice are written twice,
    /// so that a check of the digest reports them as the dumps' check would.
    func add(_ records: SideRecords, dedupe: Bool, databases: inout Set<Int>) throws {
        struct Item { var slot: UInt16; var db: UInt16; var table: Int32; var index: Int32 }
        let tables = records.tables
        var items: [Item] = []
        items.reserveCapacity(tables.map(\.count).reduce(0, +) + records.duplicates.count)
        for (ti, t) in tables.enumerated() {
            for i in 0..<t.count {
                let e = t.entry(i)
                if dedupe && ti > 0 {
                    let k = t.key(i)
                    let h = KeyTable.hash(db: Int(e.db), key: k)
                    if tables[0..<ti].contains(where: { $0.find(db: Int(e.db), key: k, hash: h) != nil }) { continue }
                }
                items.append(Item(slot: e.slot, db: e.db, table: Int32(ti), index: Int32(i)))
            }
        }
        // The second copies of keys one input held twice (the first is in its table).
        let extras = records.duplicates.compactMap { d -> (Difference, SideState)? in (d.target ?? d.source).map { (d, $0) } }
        for (i, (d, _)) in extras.enumerated() {
            items.append(Item(slot: d.slot, db: UInt16(truncatingIfNeeded: d.db), table: -1, index: Int32(i)))
        }
        func key(_ it: Item, _ body: (UnsafeRawBufferPointer) throws -> Void) rethrows {
            if it.table >= 0 { try body(tables[Int(it.table)].key(Int(it.index))) } else { try extras[Int(it.index)].0.key.withUnsafeBytes(body) }
        }
        items.sort { a, b in
            if a.slot != b.slot { return a.slot < b.slot }
            if a.db != b.db { return a.db < b.db }
            var less = false
            key(a) { ka in
                key(b) { kb in
                    let n = min(ka.count, kb.count)
                    let c = n == 0 ? 0 : memcmp(ka.baseAddress!, kb.baseAddress!, n)
                    less = c < 0 || (c == 0 && ka.count < kb.count)
                }
            }
            return less
        }
        for it in items {
            let state: SideState = it.table >= 0 ? tables[Int(it.table)].entry(Int(it.index)).state : extras[Int(it.index)].1
            // Blocks end at a slot's end, so a slot range reads whole slots.
            if raw.count >= Self.blockBytes && it.slot != rawLast { try flushBlock() }
            if rawKeys == 0 { rawFirst = it.slot }
            rawLast = it.slot
            rawKeys += 1
            keys += 1
            databases.insert(Int(it.db))
            raw.le(it.slot)
            raw.le(it.db)
            raw.append(state.type.rawValue)
            raw.le(state.expireMs ?? Int64.min)
            raw.le(state.digest.low)
            raw.le(state.digest.high)
            key(it) { k in
                raw.le(UInt32(k.count))
                raw.append(contentsOf: k)
                let h = DigestFile.keyHash(db: Int(it.db), key: k, type: state.type, expires: state.expireMs != nil, digest: state.digest)
                let old = slotKeys[it.slot] ?? (0, .zero)
                slotKeys[it.slot] = (old.keys + 1, old.aggregate &+ h)
            }
        }
        // A pass ends at a slot boundary: its last block is written before the next pass is read.
        try flushBlock()
    }

    /// Writes the header and footer, and puts the file in place.
    func finish(meta: DigestMeta, covered: [UInt64]) throws {
        try flushBlock()
        let enc = JSONEncoder()
        enc.outputFormatting = [.sortedKeys]
        let json = try enc.encode(meta)
        var t: [UInt8] = []
        t.le(UInt32(json.count))
        t.append(contentsOf: json)
        for w in covered { t.le(w) }
        t.le(UInt32(blocks.count))
        for b in blocks {
            t.le(b.offset); t.le(b.compressed); t.le(b.raw); t.le(b.keys); t.le(b.firstSlot); t.le(b.lastSlot)
        }
        t.le(UInt32(slotKeys.count))
        for s in slotKeys.keys.sorted() {
            let v = slotKeys[s]!
            t.le(s); t.le(UInt32(v.keys)); t.le(v.aggregate.low); t.le(v.aggregate.high)
        }
        let c = try compress(t)
        try write(c)
        var footer: [UInt8] = []
        footer.le(offset); footer.le(UInt64(c.count)); footer.le(UInt64(t.count))
        footer.append(contentsOf: DigestFile.endMagic)
        try write(footer)
        if fsync(fd) != 0 { throw SlotdiffError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))", file: temporary) }
        done = true
        if Foundation.close(fd) != 0 {
            unlink(temporary)
            throw SlotdiffError(.io, "cannot write \(temporary): \(String(cString: strerror(errno)))", file: temporary)
        }
        if rename(temporary, path) != 0 {
            let e = String(cString: strerror(errno))
            unlink(temporary)
            throw SlotdiffError(.io, "cannot write the digest file \(path): \(e)", file: path)
        }
    }
}
