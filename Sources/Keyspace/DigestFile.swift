import CZstd
import Foundation
import HashSlots
import SlotdiffCore

/// A digest file (`slotdiff digest SIDE --out FILE.slotdiff`): every key of one side with its
/// db, slot, type, absolute expiry and canonical digest — no values — so a side can be checked
/// from where its servers cannot be reached. Layout (all integers little-endian), version 1:
///
///     preamble  16 bytes: magic "SLDIGEST", u32 format version, u32 0
///     blocks    zstd frames (content size and checksum in each), in slot order, a block never
///               splitting a slot; raw, each record is
///               u16 slot, u16 db, u8 type, i64 expiry (Int64.min: none), 2 × u64 digest (low,
///               high), u32 key length, key — 33 bytes plus the key
///     trailer   one zstd frame: u32 n + the header JSON (`DigestMeta`), the covered-slot bitmap
///               (2048 bytes), u32 blocks + per block (u64 offset, u32 compressed bytes, u32 raw
///               bytes, u32 keys, u16 first slot, u16 last slot), u32 slots + per slot holding
///               keys (u16 slot, u32 keys, 2 × u64 aggregate digest)
///     footer    32 bytes: u64 trailer offset, u64 trailer compressed bytes, u64 trailer raw
///               bytes, magic "SLDGEND\0"
///
/// The header sits in the trailer because its counts are known only once the side has been
/// read, and the file is written in one go as the passes come. A file without its footer was
/// cut short; every frame carries a checksum.
public enum DigestFile {
    public static let magic: [UInt8] = Array("SLDIGEST".utf8)
    public static let endMagic: [UInt8] = Array("SLDGEND\0".utf8)
    public static let version: UInt32 = 1
    public static let preambleSize = 16
    public static let footerSize = 32
    public static let recordHeader = 33
    public static let blockEntrySize = 24
    public static let slotEntrySize = 22

    /// Whether a command-line side names a digest file: a path ending in `.slotdiff`, or a file
    /// that starts with the magic.
    public static func isDigest(_ spec: String) -> Bool {
        if spec.hasPrefix("redis://") || spec.hasPrefix("rediss://") || spec.hasPrefix("valkey://") || spec.hasPrefix("valkeys://") { return false }
        if spec == "-" || spec.contains(",") { return false }
        if spec.hasSuffix(".slotdiff") { return true }
        // Only a regular file is opened to look: opening a FIFO (a dump streamed in) would wait
        // for its writer, and reading it would take bytes the dump reader needs.
        var st = stat()
        guard stat(spec, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG,
            let fh = FileHandle(forReadingAtPath: spec)
        else { return false }
        defer { try? fh.close() }
        return Array(fh.readData(ofLength: magic.count)) == magic
    }

    /// The hash a key adds to its slot's aggregate: what two sides must agree on for the slot
    /// to be equal — db, key, type, value digest and whether it expires (expiry times are
    /// compared key by key, with a tolerance, so their exact value is left out).
    public static func keyHash(db: Int, key: UnsafeRawBufferPointer, type: ValueType, expires: Bool, digest: Hash128) -> Hash128 {
        let s = XXH3Stream()
        s.update(value: UInt16(truncatingIfNeeded: db).littleEndian)
        s.update(value: type.rawValue)
        s.update(value: UInt8(expires ? 1 : 0))
        s.update(value: digest.low.littleEndian)
        s.update(value: digest.high.littleEndian)
        s.update(value: UInt32(key.count).littleEndian)
        s.update(key)
        return s.digest()
    }
}

/// The header of a digest file: who made it, from what, when, with which options.
public struct DigestMeta: Codable, Sendable, Equatable {
    public var format: Int
    public var producer: String
    /// The side read (passwords removed), and whether it was a live side, a cluster.
    public var side: String
    public var live: Bool
    public var cluster: Bool
    public var inputs: [[String: String]]
    public var readStartedMs: Int64
    public var readFinishedMs: Int64
    /// When the records were taken, as a dump's ctime: a key on the other side whose expiry had
    /// passed by then has expired, not drifted. Nil (dumps without ctime): the time of the check.
    public var snapshotMs: Int64?
    public var mode: String
    public var options: Options
    public var databases: [Int]
    public var keys: Int
    public var filteredOut: Int
    public var emptySkipped: Int
    public var passes: Int

    public struct Options: Codable, Sendable, Equatable {
        public var dbs: [Int]?
        public var match: String?
        public var types: [String]?
        public var slots: String?
        public var samplePercent: Double?
        public var seed: UInt64?
        public init() {}
    }

    enum CodingKeys: String, CodingKey {
        case format, producer, side, live, cluster, inputs, mode, options, databases, keys, passes
        case readStartedMs = "read_started_ms", readFinishedMs = "read_finished_ms", snapshotMs = "snapshot_ms"
        case filteredOut = "filtered_out", emptySkipped = "empty_skipped"
    }
}

extension DigestMeta.Options {
    enum CodingKeys: String, CodingKey {
        case dbs = "db", match, types = "type", slots, samplePercent = "sample_percent", seed
    }

    public init(_ f: KeyFilter) {
        self.init()
        dbs = f.dbs.map { $0.sorted() }
        match = f.match.map { String(decoding: $0.pattern, as: UTF8.self) }
        types = f.types.map { $0.map(\.description).sorted() }
        slots = f.slots?.description
        samplePercent = f.sample?.percent
        seed = f.sample?.seed
    }
}

/// One block of records, as the trailer lists it.
struct DigestBlock: Sendable {
    var offset: UInt64
    var compressed: UInt32
    var raw: UInt32
    var keys: UInt32
    var firstSlot: UInt16
    var lastSlot: UInt16
}

/// Little-endian appends, for the writer.
extension Array where Element == UInt8 {
    mutating func le<T: FixedWidthInteger>(_ v: T) {
        Swift.withUnsafeBytes(of: v.littleEndian) { append(contentsOf: $0) }
    }
}

/// Bounds-checked little-endian reads over bytes of a file; a read past the end is an error
/// naming the file and the offset of what was being read.
struct DigestCursor {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    let path: String
    /// Where `bytes` begin in the file, for messages; and what they are.
    let base: Int64
    let what: String

    mutating func read<T: FixedWidthInteger>(_: T.Type) throws -> T {
        guard at + MemoryLayout<T>.size <= bytes.count else { throw short() }
        let v = T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self))
        at += MemoryLayout<T>.size
        return v
    }

    mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, at + n <= bytes.count else { throw short() }
        defer { at += n }
        return UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)])
    }

    func short() -> SlotdiffError {
        DigestFileReader.corrupt(path, base, "\(what) ends early (at byte \(at) of \(bytes.count) decompressed)")
    }
}

/// Reads a digest file: its header at once (checked whole), its blocks one slot range at a time.
public final class DigestFileReader: Sendable {
    public let path: String
    public let meta: DigestMeta
    public let size: Int64
    let blocks: [DigestBlock]
    /// The slots whose keys the file holds (its `--slots`, `--shard` and `--sample`).
    let covered: [UInt64]
    /// Per slot holding keys: how many, and the aggregate (wrapping sum of key hashes).
    public let slotKeys: [UInt16: (keys: Int, aggregate: Hash128)]

    static func corrupt(_ path: String, _ offset: Int64, _ why: String) -> SlotdiffError {
        SlotdiffError(.corruptInput, "\(path): offset \(offset): \(why)", file: path, offset: offset)
    }

    public init(path: String) throws {
        self.path = path
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SlotdiffError(.io, "cannot open the digest file \(path): \(String(cString: strerror(errno)))", file: path) }
        defer { Foundation.close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SlotdiffError(.io, "cannot read \(path): \(String(cString: strerror(errno)))", file: path) }
        size = Int64(st.st_size)
        let pre = try Self.pread(fd, path, offset: 0, count: min(Int(size), DigestFile.preambleSize))
        if pre.count < DigestFile.magic.count && !pre.isEmpty && DigestFile.magic.starts(with: pre) {
            throw Self.corrupt(path, size, "cut short: \(size) bytes, in its magic")
        }
        guard pre.count >= DigestFile.magic.count, Array(pre.prefix(DigestFile.magic.count)) == DigestFile.magic else {
            throw Self.corrupt(path, 0, "not a slotdiff digest file (no \"SLDIGEST\" magic)")
        }
        guard pre.count == DigestFile.preambleSize else { throw Self.corrupt(path, size, "cut short: \(size) bytes, in its preamble") }
        let version = pre.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self)) }
        guard version == DigestFile.version else {
            throw Self.corrupt(
                path, 8, "digest format version \(version); this slotdiff reads version \(DigestFile.version) (make the digest again with this version)")
        }
        guard size >= Int64(DigestFile.preambleSize + DigestFile.footerSize) else {
            throw Self.corrupt(path, size, "cut short: \(size) bytes, no room for its footer (the file was not finished or not copied whole)")
        }
        let footerAt = size - Int64(DigestFile.footerSize)
        let footer = try Self.pread(fd, path, offset: footerAt, count: DigestFile.footerSize)
        guard Array(footer[24..<32]) == DigestFile.endMagic else {
            throw Self.corrupt(
                path, footerAt,
                "cut short or corrupt: \(size) bytes, without the end marker of a finished digest file in its last \(DigestFile.footerSize) (it was not finished, or not copied whole)"
            )
        }
        let (tOffset, tCompressed, tRaw) = footer.withUnsafeBytes { b in
            (
                Int64(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 0, as: UInt64.self))),
                Int64(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 8, as: UInt64.self))),
                Int64(bitPattern: UInt64(littleEndian: b.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
            )
        }
        guard tOffset >= Int64(DigestFile.preambleSize), tCompressed > 0, tOffset + tCompressed == footerAt, tRaw > 0, tRaw < 1 << 31 else {
            throw Self.corrupt(path, footerAt, "the footer names a header at \(tOffset) of \(tCompressed) bytes, which does not end at the footer")
        }
        let trailer = try Self.decompress(
            try Self.pread(fd, path, offset: tOffset, count: Int(tCompressed)), raw: Int(tRaw),
            path: path, offset: tOffset, what: "the header")
        var meta: DigestMeta!
        var covered = [UInt64](repeating: 0, count: HashSlot.count / 64)
        var blocks: [DigestBlock] = []
        var slotKeys: [UInt16: (keys: Int, aggregate: Hash128)] = [:]
        try trailer.withUnsafeBytes { b in
            var c = DigestCursor(bytes: b, path: path, base: tOffset, what: "the header")
            let n = Int(try c.read(UInt32.self))
            let json = try c.take(n)
            do { meta = try JSONDecoder().decode(DigestMeta.self, from: Data(json)) } catch {
                throw Self.corrupt(path, tOffset, "the header is not readable: \(error)")
            }
            for i in covered.indices { covered[i] = try c.read(UInt64.self) }
            let nb = Int(try c.read(UInt32.self))
            var expect = UInt64(DigestFile.preambleSize)
            var lastSlot = -1
            for i in 0..<nb {
                let blk = DigestBlock(
                    offset: try c.read(UInt64.self), compressed: try c.read(UInt32.self), raw: try c.read(UInt32.self),
                    keys: try c.read(UInt32.self), firstSlot: try c.read(UInt16.self), lastSlot: try c.read(UInt16.self))
                guard blk.offset == expect, blk.compressed > 0, blk.firstSlot <= blk.lastSlot, Int(blk.firstSlot) > lastSlot,
                    Int(blk.lastSlot) < HashSlot.count
                else {
                    throw Self.corrupt(
                        path, tOffset, "block \(i) of the header's table is out of place (offset \(blk.offset), slots \(blk.firstSlot)-\(blk.lastSlot))")
                }
                expect += UInt64(blk.compressed)
                lastSlot = Int(blk.lastSlot)
                blocks.append(blk)
            }
            guard expect == UInt64(tOffset) else {
                throw Self.corrupt(path, Int64(expect), "the blocks end at \(expect), the header starts at \(tOffset)")
            }
            let ns = Int(try c.read(UInt32.self))
            for _ in 0..<ns {
                let slot = try c.read(UInt16.self)
                let keys = Int(try c.read(UInt32.self))
                let agg = Hash128(low: try c.read(UInt64.self), high: try c.read(UInt64.self))
                slotKeys[slot] = (keys, agg)
            }
            guard c.at == b.count else { throw Self.corrupt(path, tOffset, "\(b.count - c.at) bytes after the header's tables") }
        }
        guard meta.format == Int(DigestFile.version), CompareMode(rawValue: meta.mode) != nil,
            blocks.map({ Int($0.keys) }).reduce(0, +) == meta.keys, slotKeys.values.map(\.keys).reduce(0, +) == meta.keys
        else {
            throw Self.corrupt(path, tOffset, "the header's counts disagree (\(meta.keys) keys, \(blocks.map({ Int($0.keys) }).reduce(0, +)) in its blocks)")
        }
        self.meta = meta
        self.blocks = blocks
        self.covered = covered
        self.slotKeys = slotKeys
    }

    public func covers(_ slot: UInt16) -> Bool { covered[Int(slot) >> 6] & (1 << UInt64(slot & 63)) != 0 }

    static func pread(_ fd: Int32, _ path: String, offset: Int64, count: Int) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        try out.withUnsafeMutableBytes { b in
            while got < count {
                let n = Foundation.pread(fd, b.baseAddress! + got, count - got, off_t(offset) + off_t(got))
                if n < 0 {
                    if errno == EINTR { continue }
                    throw SlotdiffError(
                        .io, "cannot read \(path) at offset \(offset + Int64(got)): \(String(cString: strerror(errno)))", file: path,
                        offset: offset + Int64(got))
                }
                if n == 0 { throw corrupt(path, offset + Int64(got), "cut short: the file ends inside its data") }
                got += n
            }
        }
        return out
    }

    static func decompress(_ input: [UInt8], raw: Int, path: String, offset: Int64, what: String) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: raw)
        let n = out.withUnsafeMutableBytes { o in input.withUnsafeBytes { i in ZSTD_decompress(o.baseAddress, raw, i.baseAddress, i.count) } }
        if ZSTD_isError(n) != 0 {
            throw corrupt(path, offset, "\(what) is corrupt (zstd: \(String(cString: ZSTD_getErrorName(n))))")
        }
        guard n == raw else { throw corrupt(path, offset, "\(what) holds \(n) bytes, the file says \(raw)") }
        return out
    }

    /// The records of the slots `range` that pass `filter` (its pass and sample too), as one
    /// key table; a key the file holds twice (two dumps of one side held it) is a duplicate.
    /// `mode` keys only: the digests are dropped (what `--mode keys` compares).
    func read(_ range: SlotRange, filter: KeyFilter, keysOnly: Bool) throws -> (table: KeyTable, duplicates: [Difference], filteredOut: Int) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 { throw SlotdiffError(.io, "cannot open the digest file \(path): \(String(cString: strerror(errno)))", file: path) }
        defer { Foundation.close(fd) }
        let want = blocks.enumerated().filter { $0.element.lastSlot >= range.lower && $0.element.firstSlot <= range.upper }
        let table = KeyTable(origin: path, expectedCount: max(16, want.map { Int($0.element.keys) }.reduce(0, +)))
        var duplicates: [Difference] = []
        var filtered = 0
        for (i, blk) in want {
            let at = Int64(blk.offset)
            let raw = try Self.decompress(
                try Self.pread(fd, path, offset: at, count: Int(blk.compressed)), raw: Int(blk.raw),
                path: path, offset: at, what: "block \(i) (slots \(blk.firstSlot)-\(blk.lastSlot))")
            try raw.withUnsafeBytes { b in
                var c = DigestCursor(bytes: b, path: path, base: at, what: "block \(i)")
                var n = 0
                var last: UInt16 = blk.firstSlot
                while c.at < b.count {
                    let slot = try c.read(UInt16.self)
                    let db = Int(try c.read(UInt16.self))
                    let typeRaw = try c.read(UInt8.self)
                    let expire = try c.read(Int64.self)
                    let digest = Hash128(low: try c.read(UInt64.self), high: try c.read(UInt64.self))
                    let key = try c.take(Int(try c.read(UInt32.self)))
                    guard let type = ValueType(rawValue: typeRaw), slot >= last, slot <= blk.lastSlot, HashSlot.slot(of: key) == slot else {
                        throw Self.corrupt(path, at, "block \(i): record \(n) is not a valid record (slot \(slot), type \(typeRaw))")
                    }
                    last = slot
                    n += 1
                    guard range.contains(slot), filter.inPass(slot) else { continue }
                    guard filter.accepts(db: db, key: key, slot: slot, type: type) else {
                        filtered += 1
                        continue
                    }
                    let state = SideState(type: type, expireMs: expire == Int64.min ? nil : expire, digest: keysOnly ? .zero : digest)
                    let r = table.insert(db: db, key: key, slot: slot, type: type, expireMs: state.expireMs, digest: state.digest)
                    if !r.inserted {
                        duplicates.append(
                            Difference(
                                kind: .duplicate, db: db, slot: slot, key: Array(key),
                                source: table.entry(r.index).state, target: state, origins: [path, path]))
                    }
                }
                guard n == Int(blk.keys) else { throw Self.corrupt(path, at, "block \(i) holds \(n) records, the header says \(blk.keys)") }
            }
        }
        return (table, duplicates, filtered)
    }
}

/// A digest file as a side of a check. It does not change (its records stand in the re-check
/// rounds) and can be read one slot range at a time (only the blocks of a pass are read).
public final class DigestFileSource: KeyspaceSource {
    public let reader: DigestFileReader
    public var isLive: Bool { false }
    public var isCluster: Bool { reader.meta.cluster }
    let keysOnly: Bool

    /// Opens the file and checks, before anything is read, that it can answer this check:
    /// the same mode (or `keys`, which any digest answers), filters no narrower than the
    /// check's, and every slot the check looks at read into it.
    public init(path: String, filter: KeyFilter, mode: CompareMode) throws {
        reader = try DigestFileReader(path: path)
        let meta = reader.meta
        if mode.rawValue != meta.mode && mode != .keys {
            throw SlotdiffError(
                .usage,
                "\(path) was made with --mode \(meta.mode); it can be compared with --mode \(meta.mode) or --mode keys, not \(mode.rawValue) "
                    + "(a digest file holds one kind of digest: make it again with --mode \(mode.rawValue))", file: path)
        }
        keysOnly = mode == .keys && meta.mode != CompareMode.keys.rawValue
        // Keys the digest's own filters left out would look missing on the other side.
        let o = meta.options
        var narrower: [String] = []
        if let d = o.dbs, filter.dbs.map({ Set(d).isSuperset(of: $0) }) != true { narrower.append("--db \(d.map(String.init).joined(separator: ","))") }
        if let m = o.match, filter.match.map({ String(decoding: $0.pattern, as: UTF8.self) }) != m { narrower.append("--match \(m)") }
        if let t = o.types, filter.types.map({ Set(t).isSuperset(of: $0.map(\.description)) }) != true { narrower.append("--type \(t.joined(separator: ","))") }
        if !narrower.isEmpty {
            throw SlotdiffError(
                .usage,
                "\(path) was made with \(narrower.joined(separator: " ")): keys it left out would look missing; "
                    + "compare with the same options", file: path)
        }
        let range = filter.slots ?? SlotRange.all
        if let missing = (Int(range.lower)...Int(range.upper)).lazy.map(UInt16.init).first(where: { filter.inPass($0) && !reader.covers($0) }) {
            var how: [String] = []
            if let s = o.slots { how.append("--slots \(s) (or the --shard of that range)") }
            if let p = o.samplePercent, let seed = o.seed { how.append("--sample \(SlotSample.format(p))% --seed \(seed)") }
            throw SlotdiffError(
                .usage,
                "\(path) holds no keys of slot \(missing), which this check looks at: it was made with "
                    + "\(how.joined(separator: " ")); check only those slots (pass the same options)", file: path)
        }
    }

    public func keyCount() async throws -> Int? { reader.meta.keys }
    public func databases() async throws -> [Int]? { reader.meta.databases }
    public func readOnce(passes: [SlotRange], _ read: ReadContext) async throws -> (any KeptPasses)? { nil }

    public func records(_ read: ReadContext, kept: (any KeptPasses)?) async throws -> SideRecords {
        let range = read.filter.readSlots ?? SlotRange.all
        let r = try reader.read(range, filter: read.filter, keysOnly: keysOnly)
        read.progress?.addKeys(r.table.count)
        var out = SideRecords(tables: [r.table], inputs: [describe], snapshotMs: reader.meta.snapshotMs)
        out.filteredOut = r.filteredOut
        out.duplicates = r.duplicates
        return out
    }

    public var describe: [String: String] {
        let m = reader.meta
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var d = [
            "path": reader.path, "digest_of": m.side, "producer": m.producer, "mode": m.mode, "keys": "\(m.keys)",
            "bytes": "\(reader.size)", "read_at": f.string(from: Date(timeIntervalSince1970: Double(m.readFinishedMs) / 1000))
        ]
        if let data = try? JSONEncoder().encode(m.options), let s = String(data: data, encoding: .utf8), s != "{}" { d["options"] = s }
        return d
    }

    public func reread(_ keys: [(db: Int, key: [UInt8])], first: [SideState?]) async throws -> [SideState?] { first }
    public func close() async {}
}
