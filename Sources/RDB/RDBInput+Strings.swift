import SlotdiffCore

/// Where a blob's bytes start in the input, and whether they were LZF-compressed there (then
/// positions inside the blob are not file offsets).
struct BlobOrigin {
    var offset: Int64
    var compressed: Bool
}

/// What `componentString` writes into: the digester, or an `ItemWriter` over it.
protocol ComponentSink {
    mutating func component(_ bytes: UnsafeRawBufferPointer)
    mutating func component(int v: Int64)
    /// The digester, taking the rest of the current item (a long string is streamed into it).
    mutating func toDigester() -> CanonicalDigester
}

extension CanonicalDigester: ComponentSink {
    func toDigester() -> CanonicalDigester { self }
}

extension ItemWriter: ComponentSink {}

/// How a string is stored in a dump.
enum StringHead {
    case raw(Int)
    case int(Int64)
    case lzf(compressed: Int, raw: Int)
}

extension RDBInput {
    /// Strings up to this size are handed over in one piece; longer raw strings are streamed.
    static let streamThreshold = 1 << 20

    func stringHead(_ what: @autoclosure () -> String) throws -> StringHead {
        let at = offset
        let (v, encoded) = try length(what())
        if !encoded {
            if v > UInt64(Int.max / 2) { throw error("\(what()): string length \(v) is out of range", at: at) }
            return .raw(Int(v))
        }
        switch v {
        case 0:
            try ensure(1, what())
            let x = Int8(bitPattern: buf.load(fromByteOffset: pos, as: UInt8.self))
            pos += 1
            return .int(Int64(x))
        case 1:
            return .int(Int64(Int16(bitPattern: try leU16(what()))))
        case 2:
            return .int(Int64(Int32(bitPattern: try leU32(what()))))
        case 3:
            let c = try count("compressed length of \(what())")
            let r = try count("uncompressed length of \(what())")
            // LZF expands at most ~90×: a larger claim is corruption, not a reason to allocate.
            if r > c * 100 + 64 { throw error("\(what()): \(c) LZF bytes cannot hold the declared \(r) bytes", at: at) }
            return .lzf(compressed: c, raw: r)
        default:
            throw error("unknown string encoding \(v) in \(what())", at: at)
        }
    }

    /// Reads a whole string and returns it in place: valid until the next read from this
    /// input. For blobs (listpacks, ziplists, intsets) parsed right away.
    func stringInPlace(_ what: @autoclosure () -> String, head known: StringHead? = nil) throws -> (Element, BlobOrigin) {
        let head = try known ?? stringHead(what())
        switch head {
        case .int(let v):
            return (.int(v), BlobOrigin(offset: offset, compressed: false))
        case .raw(let n):
            try ensure(n, what())
            let at = offset
            let p = UnsafeRawBufferPointer(start: buf + pos, count: n)
            pos += n
            return (.bytes(p), BlobOrigin(offset: at, compressed: false))
        case .lzf(let c, let r):
            if r > Self.maxBlob { throw error("\(what()): uncompressed length \(r) exceeds the \(Self.maxBlob)-byte limit") }
            try ensure(c, what())
            let at = offset
            let out = lzfBuffer(r)
            if !LZF.decompress(UnsafeRawBufferPointer(start: buf + pos, count: c), into: out) {
                throw error("\(what()): LZF data does not decompress to the declared \(r) bytes", at: at)
            }
            pos += c
            return (.bytes(UnsafeRawBufferPointer(out)), BlobOrigin(offset: at, compressed: true))
        }
    }

    /// Reads a string as one digest component (streaming long raw strings).
    @inline(__always)
    func componentString<S: ComponentSink>(_ d: inout S, _ what: @autoclosure () -> String) throws {
        // Most elements are short raw strings or small integers already in the buffer: read
        // them here, without the general path's string head and element enum.
        let left = end - pos
        if left >= 2 {
            let b = buf.load(fromByteOffset: pos, as: UInt8.self)
            switch b {
            case 0..<0x40:
                let n = Int(b)
                if left > n {
                    d.component(UnsafeRawBufferPointer(start: buf + pos + 1, count: n))
                    pos += 1 + n
                    return
                }
            case 0x40..<0x80:
                let n = Int(b & 0x3F) << 8 | Int(buf.load(fromByteOffset: pos + 1, as: UInt8.self))
                if left >= n + 2 {
                    d.component(UnsafeRawBufferPointer(start: buf + pos + 2, count: n))
                    pos += 2 + n
                    return
                }
            case 0xC0:
                d.component(int: Int64(Int8(bitPattern: buf.load(fromByteOffset: pos + 1, as: UInt8.self))))
                pos += 2
                return
            case 0xC1 where left >= 3:
                d.component(int: Int64(Int16(littleEndian: (buf + pos + 1).loadUnaligned(as: Int16.self))))
                pos += 3
                return
            case 0xC2 where left >= 5:
                d.component(int: Int64(Int32(littleEndian: (buf + pos + 1).loadUnaligned(as: Int32.self))))
                pos += 5
                return
            default:
                break
            }
        }
        try componentStringSlow(d.toDigester(), what())
    }

    /// Reads `count` items of `width` string components each (set members; hash fields and
    /// values), each followed by a binary score when `scores` (type 5 sorted sets), into `w`.
    /// Unordered values take `unorderedStringItems` until an item it cannot take, which goes
    /// through `writerItems`, and then carry on there.
    func stringItems(
        _ count: Int, width: Int, scores: Bool, into w: inout ItemWriter, _ what: (_ component: Int) -> String
    ) throws {
        guard let base = w.unorderedItemBuffer else {
            return try writerItems(count, width: width, scores: scores, into: &w, what)
        }
        var done = 0
        while done < count {
            done &+= unorderedStringItems(count &- done, width: width, scores: scores, base: base, into: &w)
            if done == count { return }
            try writerItems(1, width: width, scores: scores, into: &w, what)
            done &+= 1
        }
    }

    /// `stringItems` through the writer. The read position is kept in a register while the
    /// strings are short and already in the buffer (a class field is reloaded after every store
    /// through the item buffer); anything else goes through `componentString` with the
    /// position written back first.
    func writerItems(
        _ count: Int, width: Int, scores: Bool, into w: inout ItemWriter, _ what: (_ component: Int) -> String
    ) throws {
        var b = buf, p = pos, e = end
        for _ in 0..<count {
            w.beginItem()
            for c in 0..<width {
                let left = e &- p
                if left >= 2 {
                    let h = b.load(fromByteOffset: p, as: UInt8.self)
                    if h < 0x40 {
                        let n = Int(h)
                        if left > n {
                            w.component(UnsafeRawBufferPointer(start: b + p + 1, count: n))
                            p = p &+ 1 &+ n
                            continue
                        }
                    } else if h == 0xC0 {
                        w.component(int: Int64(Int8(bitPattern: b.load(fromByteOffset: p + 1, as: UInt8.self))))
                        p = p &+ 2
                        continue
                    }
                }
                pos = p
                try componentString(&w, what(c))
                b = buf
                p = pos
                e = end
            }
            if scores {
                if e &- p >= 8 {
                    w.score(Double(bitPattern: UInt64(littleEndian: (b + p).loadUnaligned(as: UInt64.self))))
                    p = p &+ 8
                } else {
                    pos = p
                    w.score(Double(bitPattern: try leU64("score")))
                    b = buf
                    p = pos
                    e = end
                }
            }
            w.endItem()
        }
        pos = p
    }

    /// `stringItems` for an unordered value, whose items are laid out and hashed in the
    /// writer's item buffer, with the position, the item's length and the running sum in
    /// locals. Takes items of short raw strings, small integers and binary scores already in
    /// the buffer; it stops at the first item it cannot take whole, with the position at that
    /// item's start (nothing of it is kept), and returns how many items it took.
    @inline(__always)
    func unorderedStringItems(
        _ count: Int, width: Int, scores: Bool, base: UnsafeMutableRawPointer, into w: inout ItemWriter
    ) -> Int {
        // An item here is at most `width` components of 8 + 63 bytes (or an integer's text,
        // shorter) and a score: far below the buffer's room.
        precondition(width * 72 + 8 <= ItemWriter.itemRoom)
        let b = buf, e = end
        var p = pos
        var sum = Hash128.zero
        var done = 0
        items: while done < count {
            let start = p
            var at = 0
            for _ in 0..<width {
                let left = e &- p
                if left < 2 { p = start; break items }
                let h = b.load(fromByteOffset: p, as: UInt8.self)
                if h < 0x40 {
                    let n = Int(h)
                    if left <= n { p = start; break items }
                    at &+= HashAccumulator.putComponent(UnsafeRawBufferPointer(start: b + p + 1, count: n), at: base + at, readable: left &- 1)
                    p &+= 1 &+ n
                    continue
                }
                let v: Int64
                switch h {
                case 0xC0:
                    v = Int64(Int8(bitPattern: b.load(fromByteOffset: p + 1, as: UInt8.self)))
                    p &+= 2
                case 0xC1 where left >= 3:
                    v = Int64(Int16(littleEndian: (b + p + 1).loadUnaligned(as: Int16.self)))
                    p &+= 3
                case 0xC2 where left >= 5:
                    v = Int64(Int32(littleEndian: (b + p + 1).loadUnaligned(as: Int32.self)))
                    p &+= 5
                default:
                    p = start
                    break items
                }
                at &+= HashAccumulator.putDecimalComponent(v, at: base + at)
            }
            if scores {
                if e &- p < 8 { p = start; break items }
                let bits = UInt64(littleEndian: (b + p).loadUnaligned(as: UInt64.self))
                (base + at).storeBytes(of: CanonicalDigester.canonicalBits(Double(bitPattern: bits)).littleEndian, as: UInt64.self)
                at &+= 8
                p &+= 8
            }
            sum = sum &+ Hash128.of(UnsafeRawBufferPointer(start: base, count: at))
            done &+= 1
        }
        pos = p
        w.addItems(UInt64(done), sum: sum)
        return done
    }

    @inline(never)
    func componentStringSlow(_ d: CanonicalDigester, _ what: @autoclosure () -> String) throws {
        let head = try stringHead(what())
        switch head {
        case .raw(let n) where n > Self.streamThreshold:
            d.componentBegin(length: n)
            try streamRaw(n, what()) { d.componentPart($0) }
        default:
            d.component(try stringInPlace(what(), head: head).0)
        }
    }

    /// Reads a string value (type 0) into the digest.
    func stringValue(_ d: CanonicalDigester, _ what: @autoclosure () -> String) throws {
        let head = try stringHead(what())
        switch head {
        case .raw(let n) where n > Self.streamThreshold:
            try streamRaw(n, what()) { d.stringPart($0) }
        case .int(let v):
            d.string(int: v)
        default:
            if case .bytes(let b) = try stringInPlace(what(), head: head).0 { d.string(b) }
        }
    }

    /// Reads a string and copies it out (keys, names).
    func stringBytes(_ what: @autoclosure () -> String, into out: inout [UInt8]) throws {
        out.removeAll(keepingCapacity: true)
        switch try stringInPlace(what()).0 {
        case .bytes(let b): out.append(contentsOf: b)
        case .int(let v): CanonicalDigester.withDecimal(v) { out.append(contentsOf: $0) }
        }
    }

    func stringArray(_ what: @autoclosure () -> String) throws -> [UInt8] {
        var a: [UInt8] = []
        try stringBytes(what(), into: &a)
        return a
    }

    func skipString(_ what: @autoclosure () -> String) throws {
        switch try stringHead(what()) {
        case .int: return
        case .raw(let n): try skip(n, what())
        case .lzf(let c, _): try skip(c, what())
        }
    }

    func streamRaw(_ n: Int, _ what: String, _ part: (UnsafeRawBufferPointer) -> Void) throws {
        var left = n
        while left > 0 {
            if end == pos { try ensure(1, what) }
            let step = min(left, end - pos)
            part(UnsafeRawBufferPointer(start: buf + pos, count: step))
            pos += step
            left -= step
        }
    }
}
