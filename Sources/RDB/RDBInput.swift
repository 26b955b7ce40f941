import SlotdiffCore

/// A buffered, checksummed reader over a dump's bytes. Only a window is kept in memory: the
/// buffer holds what the parser needs contiguously (a length, a short string, a whole
/// listpack); long raw strings are streamed through it in pieces.
// Stored properties are `@exclusivity(unchecked)`: they are touched per byte range by the one
// thread that owns the instance, and a dynamic exclusivity check there made decoding 2.6x slower.
public final class RDBInput {
    public let name: String
    let source: ByteSource?
    @usableFromInline @exclusivity(unchecked) var buf: UnsafeMutableRawPointer
    @usableFromInline @exclusivity(unchecked) var cap: Int
    @usableFromInline @exclusivity(unchecked) var pos = 0
    @usableFromInline @exclusivity(unchecked) var end = 0
    /// File offset of `buf[0]`.
    @usableFromInline @exclusivity(unchecked) var base: Int64 = 0
    @exclusivity(unchecked) var sourceDone = false

    /// CRC64 of every byte consumed before `crcFrom`; bytes in `crcFrom..<pos` are folded in lazily.
    @exclusivity(unchecked) var crc: UInt64 = 0
    @exclusivity(unchecked) var crcFrom = 0
    @exclusivity(unchecked) var crcEnabled = true

    /// The largest contiguous blob (listpack, ziplist, compressed string) accepted.
    public static let maxBlob = 1 << 30
    static let chunk = 1 << 20

    public init(name: String, source: ByteSource) {
        self.name = name
        self.source = source
        cap = Self.chunk
        buf = .allocate(byteCount: cap, alignment: 16)
        owned = true
    }

    /// A reader over bytes already in memory (a DUMP payload).
    public init(name: String, bytes: UnsafeRawBufferPointer) {
        self.name = name
        source = nil
        cap = max(bytes.count, 16)
        buf = .allocate(byteCount: cap, alignment: 16)
        if bytes.count > 0 { buf.copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
        end = bytes.count
        sourceDone = true
        owned = true
    }

    /// A reader over bytes it does not own (a DUMP payload in the read buffer of its reply):
    /// decoded where they lie, neither copied nor written to; valid while those bytes are.
    public init(name: String, borrowing bytes: UnsafeRawBufferPointer) {
        self.name = name
        source = nil
        if let b = bytes.baseAddress {
            buf = UnsafeMutableRawPointer(mutating: b)
            cap = bytes.count
            owned = false
        } else {
            cap = 16
            buf = .allocate(byteCount: cap, alignment: 16)
            owned = true
        }
        end = bytes.count
        sourceDone = true
    }

    /// Points a reader made over borrowed bytes at other borrowed bytes, from their start and
    /// without a checksum (a DUMP payload carries its own). Its LZF buffer is kept.
    func lend(_ bytes: UnsafeRawBufferPointer) {
        precondition(source == nil && bytes.count > 0, "only a reader of bytes in memory is pointed at other bytes")
        if owned { buf.deallocate() }
        owned = false
        buf = UnsafeMutableRawPointer(mutating: bytes.baseAddress!)
        cap = bytes.count
        pos = 0
        end = bytes.count
        base = 0
        sourceDone = true
        crc = 0
        crcFrom = 0
        crcEnabled = false
    }

    /// Whether `buf` is this reader's to move, grow and free (false: borrowed bytes).
    @exclusivity(unchecked) private(set) var owned: Bool

    deinit {
        if owned { buf.deallocate() }
        lzfScratch?.deallocate()
    }

    @exclusivity(unchecked) var lzfScratch: UnsafeMutableRawPointer?
    @exclusivity(unchecked) var lzfCap = 0

    /// A reusable buffer for decompressed LZF strings.
    func lzfBuffer(_ n: Int) -> UnsafeMutableRawBufferPointer {
        if n > lzfCap || lzfScratch == nil {
            lzfScratch?.deallocate()
            lzfCap = max(n, 4096)
            lzfScratch = .allocate(byteCount: lzfCap, alignment: 16)
        }
        return UnsafeMutableRawBufferPointer(start: lzfScratch!, count: n)
    }

    /// Absolute offset of the next byte to read.
    @inlinable public var offset: Int64 { base + Int64(pos) }

    public func error(_ reason: String, at off: Int64? = nil) -> RDBError {
        RDBError(input: name, offset: off ?? offset, reason: reason)
    }

    /// Makes `n` bytes available contiguously at `pos`, or throws naming `what` was expected.
    @inlinable @inline(__always)
    func ensure(_ n: Int, _ what: @autoclosure () -> String) throws {
        if end - pos >= n { return }
        try refill(n, what())
    }

    @usableFromInline
    func refill(_ n: Int, _ what: String) throws {
        if n > Self.maxBlob { throw error("\(what) of \(n) bytes is larger than the \(Self.maxBlob)-byte limit") }
        if !owned {
            // Borrowed bytes are all there is, and are not moved: the same error as below.
            throw error("unexpected end of input: expected \(what) (\(n) bytes), only \(end - pos) left", at: base + Int64(end))
        }
        foldChecksum()
        let live = end - pos
        if pos > 0 && live > 0 { buf.copyMemory(from: buf + pos, byteCount: live) }
        base += Int64(pos)
        pos = 0
        end = live
        crcFrom = 0
        // The buffer grows only as bytes actually arrive, so a corrupt length cannot make it
        // allocate more than the input holds.
        while end < n && !sourceDone {
            guard let source else { sourceDone = true; break }
            if end == cap { grow(to: min(max(cap * 2, Self.chunk), max(n, Self.chunk))) }
            let got: Int
            do { got = try source.read(into: UnsafeMutableRawBufferPointer(start: buf + end, count: cap - end)) } catch var e as RDBError {
                if e.offset < 0 { e.offset = base + Int64(end) }
                throw e
            }
            if got == 0 { sourceDone = true } else { end += got }
        }
        if end < n {
            throw error("unexpected end of input: expected \(what) (\(n) bytes), only \(end) left", at: base + Int64(end))
        }
    }

    private func grow(to c: Int) {
        let nb = UnsafeMutableRawPointer.allocate(byteCount: c, alignment: 16)
        if end > 0 { nb.copyMemory(from: buf, byteCount: end) }
        buf.deallocate()
        buf = nb
        cap = c
    }

    /// Shrinks an oversized buffer back after a big blob, so memory does not stay high.
    func shrinkIfLarge() {
        if owned && cap > 4 * Self.chunk && end - pos <= Self.chunk {
            foldChecksum()
            let live = end - pos
            let nb = UnsafeMutableRawPointer.allocate(byteCount: Self.chunk, alignment: 16)
            if live > 0 { nb.copyMemory(from: buf + pos, byteCount: live) }
            buf.deallocate()
            buf = nb
            cap = Self.chunk
            base += Int64(pos)
            pos = 0
            end = live
            crcFrom = 0
        }
    }

    /// The CRC64 of everything consumed so far.
    public func checksumSoFar() -> UInt64 {
        foldChecksum()
        return crc
    }

    /// Folds the bytes consumed since the last fold into the running CRC64.
    private func foldChecksum() {
        if crcEnabled && pos > crcFrom {
            crc = CRC64.update(crc, UnsafeRawBufferPointer(start: buf + crcFrom, count: pos - crcFrom))
        }
        crcFrom = pos
    }

    /// True when no byte is left.
    public func atEnd() throws -> Bool {
        if end > pos { return false }
        // Borrowed bytes (a DUMP payload) are all there is: no error made and dropped per value.
        if !owned { return true }
        do { try refill(1, "") } catch { return true }
        return end == pos
    }

    // MARK: primitives

    @inlinable
    func u8(_ what: @autoclosure () -> String) throws -> UInt8 {
        try ensure(1, what())
        let v = buf.load(fromByteOffset: pos, as: UInt8.self)
        pos += 1
        return v
    }

    /// A little-endian integer of fixed width (RDB lengths aside, every fixed field is LE).
    @inlinable
    func le<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws -> T {
        try ensure(MemoryLayout<T>.size, what())
        let v = T(littleEndian: (buf + pos).loadUnaligned(as: T.self))
        pos += MemoryLayout<T>.size
        return v
    }

    @inlinable func leU64(_ what: @autoclosure () -> String) throws -> UInt64 { try le(UInt64.self, what()) }
    @inlinable func leU32(_ what: @autoclosure () -> String) throws -> UInt32 { try le(UInt32.self, what()) }
    @inlinable func leU16(_ what: @autoclosure () -> String) throws -> UInt16 { try le(UInt16.self, what()) }

    func bytes(_ n: Int, _ what: String) throws -> UnsafeRawBufferPointer {
        try ensure(n, what)
        let p = UnsafeRawBufferPointer(start: buf + pos, count: n)
        pos += n
        return p
    }

    func skip(_ n: Int, _ what: String) throws {
        var left = n
        while left > 0 {
            let step = min(left, Self.chunk)
            try ensure(step, what)
            pos += step
            left -= step
        }
    }

    /// An RDB length (`rdbLoadLen`): returns the value, or for an encoded string the
    /// encoding number with `encoded` set.
    @inlinable
    func length(_ what: @autoclosure () -> String) throws -> (value: UInt64, encoded: Bool) {
        try ensure(1, what())
        let b = buf.load(fromByteOffset: pos, as: UInt8.self)
        switch b >> 6 {
        case 0:
            pos += 1
            return (UInt64(b & 0x3F), false)
        case 1:
            try ensure(2, what())
            let v = (UInt64(b & 0x3F) << 8) | UInt64(buf.load(fromByteOffset: pos + 1, as: UInt8.self))
            pos += 2
            return (v, false)
        case 3:
            pos += 1
            return (UInt64(b & 0x3F), true)
        default:
            if b == 0x80 {
                try ensure(5, what())
                let v = UInt32(bigEndian: (buf + pos + 1).loadUnaligned(as: UInt32.self))
                pos += 5
                return (UInt64(v), false)
            }
            if b == 0x81 {
                try ensure(9, what())
                let v = UInt64(bigEndian: (buf + pos + 1).loadUnaligned(as: UInt64.self))
                pos += 9
                return (v, false)
            }
            throw error("bad length byte 0x\(String(b, radix: 16)) while reading \(what())")
        }
    }

    /// A plain (not string-encoded) length, bounded to fit in memory counts.
    @inlinable
    func count(_ what: @autoclosure () -> String) throws -> Int {
        let at = offset
        let (v, enc) = try length(what())
        if enc { throw error("expected \(what()), found a string encoding marker", at: at) }
        if v > UInt64(Int.max / 2) { throw error("\(what()) \(v) is out of range", at: at) }
        return Int(v)
    }
}
