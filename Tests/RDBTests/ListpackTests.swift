import RDB
import SlotdiffCore
import Testing

/// Listpacks built byte by byte with every entry encoding, read the way a DUMP payload is:
/// each encoding gives its logical value, and no changed byte makes the reader crash or read
/// past the listpack (entries are bounds-checked once each, then read without checks).
@Suite struct ListpackTests {
    enum Entry {
        case int(Int64)
        case text(String)
    }

    /// The encodings a server picks for an entry (listpack.c).
    static func encode(_ e: Entry) -> [UInt8] {
        var out: [UInt8]
        switch e {
        case .int(let v):
            let u = UInt64(bitPattern: v)
            let le = { (n: Int) in (0..<n).map { UInt8(truncatingIfNeeded: u >> (8 * UInt64($0))) } }
            if v >= 0 && v <= 127 {
                out = [UInt8(v)]
            } else if v >= -4096 && v <= 4095 {
                let w = UInt16(truncatingIfNeeded: v) & 0x1FFF
                out = [0xC0 | UInt8(w >> 8), UInt8(w & 0xFF)]
            } else if v >= -32768 && v <= 32767 {
                out = [0xF1] + le(2)
            } else if v >= -8_388_608 && v <= 8_388_607 {
                out = [0xF2] + le(3)
            } else if v >= Int64(Int32.min) && v <= Int64(Int32.max) {
                out = [0xF3] + le(4)
            } else {
                out = [0xF4] + le(8)
            }
        case .text(let s):
            let b = Array(s.utf8), n = b.count
            if n < 64 {
                out = [0x80 | UInt8(n)] + b
            } else if n < 4096 {
                out = [0xE0 | UInt8(n >> 8), UInt8(n & 0xFF)] + b
            } else {
                out = [0xF0] + (0..<4).map { UInt8(truncatingIfNeeded: n >> (8 * $0)) } + b
            }
        }
        let l = out.count
        let back: [UInt8] =
            l < 128
            ? [UInt8(l)] : l < 16383 ? [UInt8(l >> 7), UInt8(l & 127) | 128] : [UInt8(l >> 14), UInt8((l >> 7) & 127) | 128, UInt8(l & 127) | 128]
        return out + back
    }

    static func listpack(_ entries: [Entry]) -> [UInt8] {
        let body = entries.flatMap(encode)
        let total = 6 + body.count + 1
        return (0..<4).map { UInt8(truncatingIfNeeded: total >> (8 * $0)) } + [UInt8(entries.count & 0xFF), UInt8(entries.count >> 8)]
            + body + [0xFF]
    }

    /// A DUMP payload of a listpack-encoded hash (type 16), RDB 11, without a checksum.
    static func payload(_ lp: [UInt8]) -> [UInt8] {
        let n = lp.count
        let length: [UInt8] =
            n < 64 ? [UInt8(n)] : n < 16384 ? [0x40 | UInt8(n >> 8), UInt8(n & 0xFF)] : [0x80] + (0..<4).map { UInt8(truncatingIfNeeded: n >> (8 * (3 - $0))) }
        return [16] + length + lp + [11, 0] + [UInt8](repeating: 0, count: 8)
    }

    static let pairs: [(Entry, Entry)] = [
        (.text("a"), .int(5)), (.text("field-two"), .int(-3000)),
        (.text(String(repeating: "m", count: 100)), .text(String(repeating: "v", count: 200))),
        (.text("i16"), .int(30000)), (.text("i24"), .int(-8_000_000)), (.text("i32"), .int(2_000_000_000)),
        (.text("i64"), .int(-9_000_000_000_000)), (.text("s4096"), .text(String(repeating: "z", count: 5000))),
        (.int(127), .int(-1)), (.text(""), .int(0))
    ]

    func decoded(_ bytes: [UInt8]) throws -> Hash128 {
        let d = CanonicalDigester()
        try bytes.withUnsafeBytes { _ = try DumpPayload.decode($0, into: d) }
        return d.finish()
    }

    @Test func everyEncodingGivesItsValue() throws {
        let expected: Hash128 = {
            let d = CanonicalDigester()
            d.begin(.hash)
            for (f, v) in Self.pairs {
                d.beginItem()
                for e in [f, v] {
                    switch e {
                    case .int(let x): d.component(int: x)
                    case .text(let s): Array(s.utf8).withUnsafeBytes { d.component($0) }
                    }
                }
                d.endItem()
            }
            return d.finish()
        }()
        let entries = Self.pairs.flatMap { [$0.0, $0.1] }
        #expect(try decoded(Self.payload(Self.listpack(entries))) == expected)
        // The same pairs in another order: a hash's digest does not depend on it.
        let reversed = Self.pairs.reversed().flatMap { [$0.0, $0.1] }
        #expect(try decoded(Self.payload(Self.listpack(reversed))) == expected)
        // One value changed is another digest.
        var changed = entries
        changed[3] = .int(-2999)
        #expect(try decoded(Self.payload(Self.listpack(changed))) != expected)
    }

    @Test func changedBytesGiveAnErrorOrAValueNeverACrash() {
        let entries = Self.pairs.flatMap { [$0.0, $0.1] }.filter {
            if case .text(let s) = $0 { return s.count < 4096 }
            return true
        }
        let good = Self.payload(Self.listpack(entries))
        let values: [UInt8] = [0x00, 0x01, 0x3F, 0x40, 0x7F, 0x80, 0xBF, 0xC0, 0xDF, 0xE0, 0xEF, 0xF0, 0xF1, 0xF2, 0xF3, 0xF4, 0xF5, 0xFE, 0xFF]
        var refused = 0
        for at in 1..<(good.count - 10) {
            for v in values where good[at] != v {
                var b = good
                b[at] = v
                do {
                    _ = try decoded(b)
                } catch let e as RDBError {
                    refused += 1
                    #expect(e.offset >= 0 && e.offset <= Int64(good.count), "offset \(e.offset) for byte \(at) set to \(v)")
                } catch {
                    Issue.record("byte \(at) set to \(v): \(error)")
                }
            }
        }
        #expect(refused > 0)
    }
}
