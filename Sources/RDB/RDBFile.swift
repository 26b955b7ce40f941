import Foundation
import SlotdiffCore

/// What the header and AUX fields of a dump say about it.
public struct RDBFileInfo: Sendable {
    public var version = 0
    public var valkey = false
    public var producer: String?  // "redis 7.0.15", "valkey 8.1.8"
    public var ctimeMs: Int64?  // when the dump was made (AUX ctime)
    public var keys = 0
    public var bytes: Int64 = 0
    public var checksum: ChecksumState = .absent

    public enum ChecksumState: String, Sendable { case verified, disabled, absent }
}

/// One key as the parser meets it; `key` is valid only during the callback.
public struct RDBKeyEvent {
    public var db: Int
    public var key: UnsafeRawBufferPointer
    public var expireMs: Int64?
    public var type: ValueType
    /// Nil when the decoded value is an empty collection (a server would not load the key).
    public var digest: Hash128?
}

/// Reads a whole dump file as a stream of keys: header, opcodes, keys, EOF and the CRC64.
public final class RDBFileParser {
    public static let maxRedisVersion = 13
    public static let valkeyVersions = 80...80

    let input: RDBInput
    @exclusivity(unchecked) public private(set) var info = RDBFileInfo()

    public init(input: RDBInput) { self.input = input }

    /// Opens a path (`-` for standard input, `.zst` decompressed on the fly).
    public convenience init(path: String) throws {
        self.init(input: RDBInput(name: path, source: try openDumpSource(path: path)))
    }

    public static let redisEnterpriseOpcodes: Set<UInt8> = [101, 102, 107, 121]

    /// Parses the file, calling `onKey` for each key and `onResize` with RESIZEDB hints;
    /// `beforeValue` is told each key before its value is decoded (an explanation sets the
    /// digester's capture there for the keys it wants).
    public func parse(
        digester d: CanonicalDigester,
        onResize: (Int) -> Void = { _ in },
        beforeValue: ((_ db: Int, _ key: [UInt8]) -> Void)? = nil,
        onKey: (RDBKeyEvent) throws -> Void
    ) throws {
        try readHeader()
        let flavor = RDBFlavor(version: info.version, valkey: info.valkey)
        let decoder = ValueDecoder(input: input, flavor: flavor, digester: d)
        var db = 0
        var expire: Int64?
        var key: [UInt8] = []
        key.reserveCapacity(256)
        while true {
            let at = input.offset
            let op = try input.u8("an opcode or value type")
            switch op {
            case 0xFF:
                try finish(at)
                return
            case 0xFE:
                db = try input.count("database number")
            case 0xFD:
                expire = Int64(Int32(bitPattern: try input.leU32("expire time (seconds)"))) * 1000
            case 0xFC:
                expire = Int64(bitPattern: try input.leU64("expire time (ms)"))
            case 0xFB:
                let n = try input.count("RESIZEDB size")
                _ = try input.count("RESIZEDB expires size")
                onResize(n)
            case 0xFA:
                let k = try input.stringArray("AUX field name")
                let v = try input.stringArray("AUX field value")
                aux(String(decoding: k, as: UTF8.self), String(decoding: v, as: UTF8.self))
            case 0xF9:
                _ = try input.u8("LFU frequency")
            case 0xF8:
                _ = try input.length("LRU idle time")
            case 0xF7:
                _ = try input.length("module id")
                try decoder.walkModuleStream { _, _ in }
            case 0xF6:
                try input.skipString("function name")
                try input.skipString("function engine")
                if try input.count("function description flag") != 0 { try input.skipString("function description") }
                try input.skipString("function code")
            case 0xF5:
                try input.skipString("function library")
            case 0xF4:
                for what in ["slot id", "slot size", "slot expires size"] { _ = try input.length("SLOT_INFO \(what)") }
            case 0xF3 where info.valkey:
                try input.skipString("slot import job name")
                let n = try input.count("slot import range count")
                for _ in 0..<n {
                    _ = try input.length("slot import range start")
                    _ = try input.length("slot import range end")
                }
            case 0xF3 where info.version >= 13:
                try skipKeyMetadata(decoder)
            default:
                guard RDBType.logical(op, flavor) != nil else {
                    if Self.redisEnterpriseOpcodes.contains(op) {
                        throw input.error("opcode \(op) is a Redis Enterprise extension; dumps from that producer are not supported", at: at)
                    }
                    throw input.error(
                        op >= 0xF0
                            ? "unknown opcode 0x\(String(op, radix: 16)) for RDB version \(info.version)"
                            : ValueDecoder.unknownTypeMessage(op, flavor), at: at)
                }
                try input.stringBytes("key", into: &key)
                beforeValue?(db, key)
                let type = try decoder.decode(type: op)
                let empty = d.count == 0 && type != .string && type != .stream && type != .module
                try key.withUnsafeBytes { kb in
                    try onKey(RDBKeyEvent(db: db, key: kb, expireMs: expire, type: type, digest: empty ? nil : d.finish()))
                }
                info.keys += 1
                expire = nil
                input.shrinkIfLarge()
            }
        }
    }

    /// Redis 8.6+ key metadata: class count, then per class a 4-byte spec and a module stream.
    func skipKeyMetadata(_ decoder: ValueDecoder) throws {
        let n = try input.count("key metadata class count")
        for _ in 0..<n {
            _ = try input.leU32("key metadata class")
            try decoder.walkModuleStream { _, _ in }
        }
    }

    func readHeader() throws {
        let h = try input.bytes(9, "the 9-byte header (REDIS0011, VALKEY080, …)")
        let s = String(decoding: h, as: UTF8.self)
        if s.hasPrefix("REDIS"), let v = Int(s.dropFirst(5)), s.dropFirst(5).allSatisfy(\.isNumber) {
            if v < 1 || v > Self.maxRedisVersion {
                throw input.error("RDB version \(v) is not supported (this build reads versions 1–\(Self.maxRedisVersion) and VALKEY080)", at: 5)
            }
            info.version = v
        } else if s.hasPrefix("VALKEY"), let v = Int(s.dropFirst(6)), s.dropFirst(6).allSatisfy(\.isNumber) {
            if !Self.valkeyVersions.contains(v) {
                throw input.error("Valkey RDB version \(v) is not supported (this build reads VALKEY080)", at: 6)
            }
            info.version = v
            info.valkey = true
        } else {
            let shown = h.map { $0 >= 0x20 && $0 < 0x7F ? String(UnicodeScalar($0)) : "." }.joined()
            throw input.error("not a dump file: expected the header REDIS0nnn or VALKEYnnn, found \"\(shown)\"", at: 0)
        }
    }

    func aux(_ k: String, _ v: String) {
        switch k {
        case "redis-ver": if info.producer == nil { info.producer = "redis \(v)" }
        case "valkey-ver": info.producer = "valkey \(v)"
        case "ctime": if let t = Int64(v) { info.ctimeMs = t * 1000 }
        default: break
        }
    }

    /// After the EOF opcode: the CRC64 trailer (RDB ≥ 5; 0 means the writer disabled it), and
    /// then nothing: bytes after the trailer (two dumps joined, a file written over a longer
    /// one, a copy that appended to an old file) are an error, never ignored.
    func finish(_ eofAt: Int64) throws {
        let trailer = info.version >= 5 || info.valkey
        if trailer {
            let computed = input.checksumSoFar()
            let at = input.offset
            let stored = try input.leU64("the 8-byte CRC64 checksum after the EOF marker")
            if stored == 0 {
                info.checksum = .disabled
            } else if stored != computed {
                throw input.error(String(format: "checksum mismatch: the file says %016llx, its bytes give %016llx", stored, computed), at: at)
            } else {
                info.checksum = .verified
            }
        }
        info.bytes = input.offset
        let extra = try input.bytesLeft()
        if extra > 0 {
            throw input.error(
                "\(extra) byte\(extra == 1 ? "" : "s") after the end of the dump (the EOF marker\(trailer ? " and checksum" : "")); "
                    + "expected the input to end here", at: info.bytes)
        }
    }
}

extension RDBInput {
    /// Reads the input to its end and says how many bytes were left unread (0 at the end).
    /// Read errors of the source are thrown, with the offset where they happened.
    func bytesLeft() throws -> Int64 {
        let buffered = Int64(end - pos)
        guard !sourceDone, let source else { return buffered }
        var more: Int64 = 0
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.chunk, alignment: 16)
        defer { scratch.deallocate() }
        while true {
            let got: Int
            do { got = try source.read(into: scratch) } catch var e as RDBError {
                if e.offset < 0 { e.offset = base + Int64(end) + more }
                throw e
            }
            if got == 0 { break }
            more += Int64(got)
        }
        sourceDone = true
        return buffered + more
    }
}
