import SlotdiffCore

/// A compact encoding stored inside a string (listpack, ziplist, intset, zipmap), parsed in
/// place. Every read is bounds-checked; errors carry the file offset of the offending byte.
struct Blob {
    let bytes: UnsafeRawBufferPointer
    let origin: BlobOrigin
    unowned(unsafe) let input: RDBInput
    let kind: String

    init(_ e: Element, at origin: BlobOrigin, input: RDBInput, kind: String) throws {
        guard case .bytes(let b) = e else {
            throw input.error("\(kind) is stored as an integer, expected an encoded blob", at: origin.offset)
        }
        bytes = b
        self.origin = origin
        self.input = input
        self.kind = kind
    }

    func fail(_ at: Int, _ reason: String) -> RDBError {
        if origin.compressed {
            return input.error("\(kind) (LZF-compressed here; byte \(at) of its \(bytes.count) decompressed bytes): \(reason)", at: origin.offset)
        }
        return input.error("\(kind): \(reason)", at: origin.offset + Int64(at))
    }

    @inline(__always)
    func need(_ at: Int, _ n: Int, _ what: String) throws {
        if n < 0 || at + n > bytes.count { throw fail(at, "truncated \(what) (needs \(n) bytes, \(bytes.count - at) left)") }
    }

    @inline(__always)
    func u8(_ at: Int) -> UInt8 { bytes.load(fromByteOffset: at, as: UInt8.self) }

    @inline(__always)
    func le<T: FixedWidthInteger>(_ at: Int, _: T.Type) -> T { T(littleEndian: bytes.loadUnaligned(fromByteOffset: at, as: T.self)) }

    func slice(_ at: Int, _ n: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: bytes[at..<(at + n)]) }
}

/// Listpack (Redis ≥ 7.0, and stream nodes since 5.0).
struct ListpackCursor {
    let blob: Blob
    var at = 6
    let declared: Int

    init(_ blob: Blob) throws {
        try blob.need(0, 7, "listpack header")
        let total = Int(blob.le(0, UInt32.self))
        if total != blob.bytes.count { throw blob.fail(0, "header says \(total) bytes, the string holds \(blob.bytes.count)") }
        self.blob = blob
        declared = Int(blob.le(4, UInt16.self))
    }

    /// The next element, or nil at the end marker.
    @inline(__always)
    mutating func next() throws -> Element? {
        if let e = take() { return e.text.map { .bytes($0) } ?? .int(e.int) }
        return try nextChecked()
    }

    /// The next entry through `entry`, the position moved past it; nil (the position kept)
    /// where that decoder leaves the entry to `nextChecked`.
    @inline(__always)
    mutating func take() -> (text: UnsafeRawBufferPointer?, int: Int64)? {
        let count = blob.bytes.count
        guard at < count, let e = Self.entry(blob.bytes.baseAddress! + at, left: count &- at) else { return nil }
        at &+= e.step
        return (e.text, e.int)
    }

    /// `next()` with every field bounds-checked: the end marker, the unusual encodings, and
    /// any entry that does not fit, with the error naming what is wrong.
    mutating func nextChecked() throws -> Element? {
        try blob.need(at, 1, "listpack entry")
        let b = blob.u8(at)
        let e: Element
        var len: Int  // encoding + data
        if b < 0x80 {
            e = .int(Int64(b)); len = 1
        } else if b & 0xC0 == 0x80 {
            let n = Int(b & 0x3F)
            try blob.need(at + 1, n, "listpack string")
            e = .bytes(blob.slice(at + 1, n)); len = 1 + n
        } else if b & 0xE0 == 0xC0 {
            try blob.need(at, 2, "listpack 13-bit integer")
            var v = Int64(Int(b & 0x1F) << 8 | Int(blob.u8(at + 1)))
            if v >= 4096 { v -= 8192 }
            e = .int(v); len = 2
        } else if b & 0xF0 == 0xE0 {
            try blob.need(at, 2, "listpack string length")
            let n = Int(b & 0x0F) << 8 | Int(blob.u8(at + 1))
            try blob.need(at + 2, n, "listpack string")
            e = .bytes(blob.slice(at + 2, n)); len = 2 + n
        } else {
            switch b {
            case 0xF0:
                try blob.need(at, 5, "listpack string length")
                let n = Int(blob.le(at + 1, UInt32.self))
                try blob.need(at + 5, n, "listpack string")
                e = .bytes(blob.slice(at + 5, n)); len = 5 + n
            case 0xF1:
                try blob.need(at, 3, "listpack int16")
                e = .int(Int64(blob.le(at + 1, Int16.self))); len = 3
            case 0xF2:
                try blob.need(at, 4, "listpack int24")
                let raw = UInt32(blob.u8(at + 1)) | UInt32(blob.u8(at + 2)) << 8 | UInt32(blob.u8(at + 3)) << 16
                e = .int(Int64(Int32(bitPattern: raw << 8) >> 8)); len = 4
            case 0xF3:
                try blob.need(at, 5, "listpack int32")
                e = .int(Int64(blob.le(at + 1, Int32.self))); len = 5
            case 0xF4:
                try blob.need(at, 9, "listpack int64")
                e = .int(blob.le(at + 1, Int64.self)); len = 9
            case 0xFF:
                if at != blob.bytes.count - 1 { throw blob.fail(at, "end marker before the end of the listpack") }
                return nil
            default:
                throw blob.fail(at, "unknown listpack entry encoding 0x\(String(b, radix: 16))")
            }
        }
        let back = len < 128 ? 1 : len < 16384 ? 2 : len < (1 << 21) ? 3 : len < (1 << 28) ? 4 : 5
        try blob.need(at + len, back, "listpack entry back-length")
        at += len + back
        return e
    }

    /// Whether an element follows (false at the end marker, which must be the last byte).
    @inline(__always)
    mutating func more() throws -> Bool {
        if at < blob.bytes.count && blob.u8(at) != 0xFF { return true }
        let here = at
        defer { at = here }
        return try next() != nil
    }

    /// The entry at `q`, with `left` bytes from it to the end of the listpack: its size with
    /// its back-length, and its string (`text`) or integer (`int`, when `text` is nil). Nil for
    /// the end marker, an unknown encoding, or an entry that does not fit with an end marker
    /// after it: `next()` then gives the error. One bounds check for the whole entry.
    @inline(__always)
    static func entry(_ q: UnsafeRawPointer, left: Int) -> (step: Int, text: UnsafeRawBufferPointer?, int: Int64)? {
        let b = q.load(as: UInt8.self)
        // The entry's length (encoding and data) and, for a string, where its bytes start.
        var len: Int, data = 0
        if b < 0x80 {
            len = 1
        } else if b < 0xC0 {
            data = 1
            len = 1 &+ Int(b & 0x3F)
        } else if b < 0xE0 {
            len = 2
        } else if b < 0xF0 {
            if left < 2 { return nil }
            data = 2
            len = 2 &+ (Int(b & 0x0F) << 8 | Int(q.load(fromByteOffset: 1, as: UInt8.self)))
        } else if b == 0xF0 {
            if left < 5 { return nil }
            data = 5
            len = 5 &+ Int(UInt32(littleEndian: q.loadUnaligned(fromByteOffset: 1, as: UInt32.self)))
        } else if b <= 0xF4 {
            len = b == 0xF4 ? 9 : Int(b &- 0xEE)  // F1 3, F2 4, F3 5
        } else {
            return nil
        }
        let back = len < 128 ? 1 : len < 16384 ? 2 : len < (1 << 21) ? 3 : len < (1 << 28) ? 4 : 5
        guard len < left && back < left &- len else { return nil }
        if data > 0 { return (len &+ back, UnsafeRawBufferPointer(start: q + data, count: len &- data), 0) }
        let v: Int64
        switch b {
        case 0..<0x80: v = Int64(b)
        case 0xC0..<0xE0:
            let u = Int64(Int(b & 0x1F) << 8 | Int(q.load(fromByteOffset: 1, as: UInt8.self)))
            v = u >= 4096 ? u &- 8192 : u
        case 0xF1: v = Int64(Int16(littleEndian: q.loadUnaligned(fromByteOffset: 1, as: Int16.self)))
        case 0xF2:
            // Four bytes loaded for three: the back-length and the end marker follow.
            let raw = UInt32(littleEndian: q.loadUnaligned(fromByteOffset: 1, as: UInt32.self))
            v = Int64(Int32(bitPattern: raw << 8) >> 8)
        case 0xF3: v = Int64(Int32(littleEndian: q.loadUnaligned(fromByteOffset: 1, as: Int32.self)))
        default: v = Int64(littleEndian: q.loadUnaligned(fromByteOffset: 1, as: Int64.self))
        }
        return (len &+ back, nil, v)
    }

    /// Writes the next element, which must exist, straight into `w`, with no `Element` made.
    @inline(__always)
    mutating func write(into w: inout ItemWriter, _ what: StaticString) throws {
        if let e = take() {
            if let t = e.text { w.component(t) } else { w.component(int: e.int) }
            return
        }
        w.component(try required("\(what)"))
    }

    /// Items of an unordered value (set members, hash pairs, sorted-set pairs: `width` 1 or 2,
    /// the second a score when `scores`) laid out and hashed in the writer's item buffer, with
    /// the position, the item's length and the running sum in locals. Stops at the end marker
    /// or at the first item it cannot take whole (nothing of it kept); returns the elements it
    /// took.
    mutating func unorderedItems(width: Int, scores: Bool, base: UnsafeMutableRawPointer, into w: inout ItemWriter) -> Int {
        let p = blob.bytes.baseAddress!, count = blob.bytes.count, room = ItemWriter.itemRoom
        var a = at, sum = Hash128.zero, items = 0
        items: while true {
            let start = a
            var len = 0
            for c in 0..<width {
                guard a < count, let e = Self.entry(p + a, left: count &- a) else {
                    a = start
                    break items
                }
                if scores && c == 1 {
                    let v: Double
                    if let t = e.text {
                        guard let d = parseDouble(t) else {
                            a = start
                            break items
                        }
                        v = d
                    } else {
                        v = Double(e.int)
                    }
                    (base + len).storeBytes(of: CanonicalDigester.canonicalBits(v).littleEndian, as: UInt64.self)
                    len &+= 8
                } else if let t = e.text {
                    guard len &+ 8 &+ t.count <= room else {
                        a = start
                        break items
                    }
                    len &+= HashAccumulator.putComponent(t, at: base + len, readable: p + count - t.baseAddress!)
                } else {
                    // An integer's text and its prefix take at most 28 bytes; 64 are free.
                    guard len &+ 64 <= room else {
                        a = start
                        break items
                    }
                    len &+= HashAccumulator.putDecimalComponent(e.int, at: base + len)
                }
                a &+= e.step
            }
            sum = sum &+ Hash128.of(UnsafeRawBufferPointer(start: base, count: len))
            items &+= 1
        }
        at = a
        w.addItems(UInt64(items), sum: sum)
        return items &* width
    }

    /// Elements of an ordered value (a list node) appended to the writer's body buffer, with
    /// the position and the write position in locals, up to the end marker or the first element
    /// that does not fit there; returns how many it took.
    mutating func orderedItems(into w: inout ItemWriter) -> Int {
        guard let (base, start) = w.orderedTail() else { return 0 }
        let p = blob.bytes.baseAddress!, count = blob.bytes.count, room = ItemWriter.itemRoom
        var a = at, o = start, n = 0
        while a < count, let e = Self.entry(p + a, left: count &- a) {
            if let t = e.text {
                if o &+ 8 &+ t.count > room { break }
                o &+= HashAccumulator.putComponent(t, at: base + o, readable: p + count - t.baseAddress!)
            } else {
                if o &+ 64 > room { break }
                o &+= HashAccumulator.putDecimalComponent(e.int, at: base + o)
            }
            a &+= e.step
            n &+= 1
        }
        at = a
        w.appended(to: o, items: UInt64(n))
        return n
    }

    /// The next element, which must exist.
    mutating func required(_ what: String) throws -> Element {
        let here = at
        guard let e = try next() else { throw blob.fail(here, "listpack ends where \(what) was expected") }
        return e
    }

    mutating func requiredInt(_ what: String) throws -> Int64 {
        let here = at
        switch try required(what) {
        case .int(let v): return v
        case .bytes(let b):
            guard let s = String(validating: b, as: UTF8.self), let v = Int64(s) else {
                throw blob.fail(here, "\(what) is not an integer")
            }
            return v
        }
    }

    /// Checks the element count in the header (when it is not 65535, "unknown").
    func checkCount(_ seen: Int) throws {
        if declared != 65535 && declared != seen {
            throw blob.fail(4, "header counts \(declared) elements, found \(seen)")
        }
    }
}

/// Ziplist (Redis 2.6 – 6.2).
struct ZiplistCursor {
    let blob: Blob
    var at = 10
    let declared: Int

    init(_ blob: Blob) throws {
        try blob.need(0, 11, "ziplist header")
        let total = Int(blob.le(0, UInt32.self))
        if total != blob.bytes.count { throw blob.fail(0, "header says \(total) bytes, the string holds \(blob.bytes.count)") }
        self.blob = blob
        declared = Int(blob.le(8, UInt16.self))
    }

    mutating func next() throws -> Element? {
        try blob.need(at, 1, "ziplist entry")
        if blob.u8(at) == 0xFF {
            if at != blob.bytes.count - 1 { throw blob.fail(at, "end marker before the end of the ziplist") }
            return nil
        }
        // previous-entry length: 1 byte, or 0xFE + 4 bytes
        if blob.u8(at) == 0xFE { try blob.need(at, 5, "ziplist prevlen"); at += 5 } else { at += 1 }
        try blob.need(at, 1, "ziplist entry encoding")
        let b = blob.u8(at)
        switch b >> 6 {
        case 0:
            let n = Int(b & 0x3F)
            try blob.need(at + 1, n, "ziplist string")
            defer { at += 1 + n }
            return .bytes(blob.slice(at + 1, n))
        case 1:
            try blob.need(at, 2, "ziplist string length")
            let n = Int(b & 0x3F) << 8 | Int(blob.u8(at + 1))
            try blob.need(at + 2, n, "ziplist string")
            defer { at += 2 + n }
            return .bytes(blob.slice(at + 2, n))
        case 2:
            try blob.need(at, 5, "ziplist string length")
            let n = Int(UInt32(bigEndian: blob.bytes.loadUnaligned(fromByteOffset: at + 1, as: UInt32.self)))
            try blob.need(at + 5, n, "ziplist string")
            defer { at += 5 + n }
            return .bytes(blob.slice(at + 5, n))
        default:
            let v: Int64
            var size: Int
            switch b {
            case 0xC0: size = 2; try blob.need(at + 1, 2, "ziplist int16"); v = Int64(blob.le(at + 1, Int16.self))
            case 0xD0: size = 4; try blob.need(at + 1, 4, "ziplist int32"); v = Int64(blob.le(at + 1, Int32.self))
            case 0xE0: size = 8; try blob.need(at + 1, 8, "ziplist int64"); v = blob.le(at + 1, Int64.self)
            case 0xF0:
                size = 3; try blob.need(at + 1, 3, "ziplist int24")
                let raw = UInt32(blob.u8(at + 1)) | UInt32(blob.u8(at + 2)) << 8 | UInt32(blob.u8(at + 3)) << 16
                v = Int64(Int32(bitPattern: raw << 8) >> 8)
            case 0xFE: size = 1; try blob.need(at + 1, 1, "ziplist int8"); v = Int64(Int8(bitPattern: blob.u8(at + 1)))
            case 0xF1...0xFD: size = 0; v = Int64(b & 0x0F) - 1
            default: throw blob.fail(at, "unknown ziplist entry encoding 0x\(String(b, radix: 16))")
            }
            at += 1 + size
            return .int(v)
        }
    }

    mutating func required(_ what: String) throws -> Element {
        let here = at
        guard let e = try next() else { throw blob.fail(here, "ziplist ends where \(what) was expected") }
        return e
    }

    func checkCount(_ seen: Int) throws {
        if declared != 65535 && declared != seen {
            throw blob.fail(8, "header counts \(declared) entries, found \(seen)")
        }
    }
}

/// Intset: sorted integers of 2, 4 or 8 bytes.
func forEachIntsetMember(_ blob: Blob, _ body: (Int64) -> Void) throws {
    try blob.need(0, 8, "intset header")
    let width = Int(blob.le(0, UInt32.self))
    let n = Int(blob.le(4, UInt32.self))
    guard width == 2 || width == 4 || width == 8 else { throw blob.fail(0, "intset element width \(width) is not 2, 4 or 8") }
    if 8 + n * width != blob.bytes.count {
        throw blob.fail(4, "intset of \(n) × \(width)-byte elements does not fill its \(blob.bytes.count) bytes")
    }
    for i in 0..<n {
        let at = 8 + i * width
        switch width {
        case 2: body(Int64(blob.le(at, Int16.self)))
        case 4: body(Int64(blob.le(at, Int32.self)))
        default: body(blob.le(at, Int64.self))
        }
    }
}

/// Zipmap (hashes written by Redis ≤ 2.4): yields (field, value) pairs.
func forEachZipmapPair(_ blob: Blob, _ body: (UnsafeRawBufferPointer, UnsafeRawBufferPointer) -> Void) throws {
    var at = 1
    try blob.need(0, 1, "zipmap header")
    func len() throws -> Int {
        try blob.need(at, 1, "zipmap length")
        let b = blob.u8(at)
        if b < 254 { at += 1; return Int(b) }
        if b == 254 { try blob.need(at, 5, "zipmap length"); defer { at += 5 }; return Int(blob.le(at + 1, UInt32.self)) }
        throw blob.fail(at, "zipmap ends where a length was expected")
    }
    while true {
        try blob.need(at, 1, "zipmap entry")
        if blob.u8(at) == 255 { return }
        let kl = try len()
        try blob.need(at, kl, "zipmap field")
        let k = blob.slice(at, kl)
        at += kl
        let vl = try len()
        try blob.need(at, 1, "zipmap free count")
        let free = Int(blob.u8(at))
        at += 1
        try blob.need(at, vl + free, "zipmap value")
        body(k, blob.slice(at, vl))
        at += vl + free
    }
}
