import RDB

// Writers of the compact encodings and the DUMP framing, as the servers lay them out
// (listpack.c, ziplist.c, rdb.c): the project reads these formats but never writes them, the
// fixtures hold no 100-item ziplist, and their listpacks of that size are LZF-compressed (which
// would time LZF as well). Each payload built with them is checked in `Payloads` against the
// same data in a plain encoding, whose digest must be the same (the digest does not depend on
// the encoding), so a wrong writer stops the run.

/// One element of a collection: what a server stores after trying the integer encoding.
enum Item {
    case int(Int64)
    case text([UInt8])

    /// The element a server makes of `s`: an integer when `s` is an integer's canonical text.
    init(_ s: String) {
        if s.utf8.count <= 20, let v = Int64(s), String(v) == s { self = .int(v) } else { self = .text(Array(s.utf8)) }
    }

    var bytes: [UInt8] {
        switch self {
        case .int(let v): Array(String(v).utf8)
        case .text(let t): t
        }
    }
}

extension Array where Element == UInt8 {
    mutating func appendLE<T: FixedWidthInteger>(_ v: T, bytes n: Int = MemoryLayout<T>.size) {
        for i in 0..<n { append(UInt8(truncatingIfNeeded: v >> (8 * i))) }
    }

    /// An RDB length (6, 14 or 32 bits; big-endian past the first byte).
    mutating func appendRDBLength(_ n: Int) {
        if n < 64 {
            append(UInt8(n))
        } else if n < 16384 {
            append(0x40 | UInt8(n >> 8))
            append(UInt8(n & 0xFF))
        } else {
            append(0x80)
            for shift in [24, 16, 8, 0] { append(UInt8(truncatingIfNeeded: n >> shift)) }
        }
    }

    /// An RDB string stored raw (no integer or LZF encoding).
    mutating func appendRDBString(_ s: [UInt8]) {
        appendRDBLength(s.count)
        append(contentsOf: s)
    }
}

enum Listpack {
    /// A listpack of `items`: total bytes, count, entries (encoding, data, back-length), 0xFF.
    static func encode(_ items: [Item]) -> [UInt8] {
        var body: [UInt8] = []
        for item in items {
            let start = body.count
            switch item {
            case .int(let v) where v >= 0 && v <= 127:
                body.append(UInt8(v))
            case .int(let v) where v >= -4096 && v <= 4095:
                let u = v < 0 ? (1 << 13) + v : v
                body.append(0xC0 | UInt8(u >> 8))
                body.append(UInt8(u & 0xFF))
            case .int(let v) where Int64(Int16.min)...Int64(Int16.max) ~= v:
                body.append(0xF1)
                body.appendLE(Int16(v))
            case .int(let v) where -(1 << 23)...((1 << 23) - 1) ~= v:
                body.append(0xF2)
                body.appendLE(Int32(v), bytes: 3)
            case .int(let v) where Int64(Int32.min)...Int64(Int32.max) ~= v:
                body.append(0xF3)
                body.appendLE(Int32(v))
            case .int(let v):
                body.append(0xF4)
                body.appendLE(v)
            case .text(let t) where t.count < 64:
                body.append(0x80 | UInt8(t.count))
                body.append(contentsOf: t)
            case .text(let t) where t.count < 4096:
                body.append(0xE0 | UInt8(t.count >> 8))
                body.append(UInt8(t.count & 0xFF))
                body.append(contentsOf: t)
            case .text(let t):
                body.append(0xF0)
                body.appendLE(UInt32(t.count))
                body.append(contentsOf: t)
            }
            // The back-length: the entry's size, 7 bits a byte, stored so it reads right to left.
            var len = body.count - start
            var back: [UInt8] = [UInt8(len & 127)]
            len >>= 7
            while len > 0 {
                back[back.count - 1] |= 128
                back.append(UInt8(len & 127))
                len >>= 7
            }
            body.append(contentsOf: back.reversed())
        }
        var out: [UInt8] = []
        out.appendLE(UInt32(6 + body.count + 1))
        out.appendLE(UInt16(Swift.min(items.count, 65535)))
        out.append(contentsOf: body)
        out.append(0xFF)
        return out
    }
}

enum Ziplist {
    /// A ziplist of `items`: total bytes, offset of the last entry, count, entries, 0xFF.
    static func encode(_ items: [Item]) -> [UInt8] {
        var body: [UInt8] = []
        var previous = 0
        var lastAt = 0
        for item in items {
            let start = body.count
            lastAt = 10 + start
            if previous < 254 {
                body.append(UInt8(previous))
            } else {
                body.append(0xFE)
                body.appendLE(UInt32(previous))
            }
            switch item {
            case .int(let v) where v >= 0 && v <= 12:
                body.append(0xF1 + UInt8(v))
            case .int(let v) where Int64(Int8.min)...Int64(Int8.max) ~= v:
                body.append(0xFE)
                body.appendLE(Int8(v))
            case .int(let v) where Int64(Int16.min)...Int64(Int16.max) ~= v:
                body.append(0xC0)
                body.appendLE(Int16(v))
            case .int(let v) where -(1 << 23)...((1 << 23) - 1) ~= v:
                body.append(0xF0)
                body.appendLE(Int32(v), bytes: 3)
            case .int(let v) where Int64(Int32.min)...Int64(Int32.max) ~= v:
                body.append(0xD0)
                body.appendLE(Int32(v))
            case .int(let v):
                body.append(0xE0)
                body.appendLE(v)
            case .text(let t) where t.count < 64:
                body.append(UInt8(t.count))
                body.append(contentsOf: t)
            case .text(let t) where t.count < 16384:
                body.append(0x40 | UInt8(t.count >> 8))
                body.append(UInt8(t.count & 0xFF))
                body.append(contentsOf: t)
            case .text(let t):
                body.append(0x80)
                for shift in [24, 16, 8, 0] { body.append(UInt8(truncatingIfNeeded: t.count >> shift)) }
                body.append(contentsOf: t)
            }
            previous = body.count - start
        }
        var out: [UInt8] = []
        out.appendLE(UInt32(10 + body.count + 1))
        out.appendLE(UInt32(items.isEmpty ? 10 : lastAt))
        out.appendLE(UInt16(Swift.min(items.count, 65535)))
        out.append(contentsOf: body)
        out.append(0xFF)
        return out
    }
}

enum Dump {
    /// A DUMP reply's payload: type byte, value, RDB version (2 bytes LE), CRC64 (8 bytes LE).
    static func payload(type: UInt8, value: [UInt8], version: UInt16) -> [UInt8] {
        var out: [UInt8] = [type]
        out.append(contentsOf: value)
        out.appendLE(version)
        out.appendLE(CRC64.checksum(out))
        return out
    }

    /// A payload whose value is one blob (listpack, ziplist) stored as a raw string.
    static func blob(type: UInt8, _ blob: [UInt8], version: UInt16) -> [UInt8] {
        var value: [UInt8] = []
        value.appendRDBString(blob)
        return payload(type: type, value: value, version: version)
    }
}
