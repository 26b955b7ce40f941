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

    /// A DUMP payload of a listpack-encoded value (type 16: a hash), RDB 11, without a checksum.
    static func payload(_ lp: [UInt8], type: UInt8 = 16) -> [UInt8] {
        DumpBytes.payload([type] + DumpBytes.length(lp.count) + lp)
    }

    /// A quicklist (type 18) of listpack nodes, as a DUMP payload.
    static func quicklist(_ nodes: [[Entry]]) -> [UInt8] {
        var v: [UInt8] = [18] + DumpBytes.length(nodes.count)
        for node in nodes {
            let lp = listpack(node)
            v += [2] + DumpBytes.length(lp.count) + lp
        }
        return DumpBytes.payload(v)
    }

    static func logical(_ e: Entry) -> [UInt8] {
        switch e {
        case .int(let v): Array(String(v).utf8)
        case .text(let s): Array(s.utf8)
        }
    }

    /// Elements of every encoding, some long, in a fixed pattern.
    static func elements(_ n: Int, salt: Int) -> [Entry] {
        (0..<n).map { i in
            switch (i * 7 + salt) % 9 {
            case 0: .int(Int64(i % 128))
            case 1: .int(-Int64(i % 4000))
            case 2: .int(Int64(i) * 1000)
            case 3: .int(-Int64(i) * 100_000)
            case 4: .int(Int64(i) * 10_000_000)
            case 5: .int(Int64(i) * 1_000_000_000_000)
            case 6: .text("e\(i)")
            case 7: .text(String(repeating: "w", count: 60 + i % 200) + "\(i)")
            default: .text(i % 50 == 0 ? String(repeating: "big", count: 1500) + "\(i)" : "\(salt)-\(i)")
            }
        }
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

    /// Lists long enough to fill the body buffer several times over, split into nodes; sets and
    /// sorted sets (scores as integers, decimals, infinities) with long members among short ones.
    @Test func listsSetsAndSortedSetsGiveTheirValues() throws {
        for n in [1, 5, 300, 3000] {
            let els = Self.elements(n, salt: n)
            let nodes = stride(from: 0, to: n, by: 128).map { Array(els[$0..<min($0 + 128, n)]) }
            let list: Hash128 = {
                let d = CanonicalDigester()
                d.begin(.list)
                for e in els { d.beginItem(); Self.logical(e).withUnsafeBytes { d.component($0) }; d.endItem() }
                return d.finish()
            }()
            #expect(try decoded(Self.quicklist(nodes)) == list, "list of \(n)")
            if nodes.count > 1 { #expect(try decoded(Self.quicklist(nodes.reversed())) != list, "list of \(n) in another order") }

            let members = els.enumerated().map { i, e -> Entry in
                if case .text(let s) = e { return .text(s + "/\(i)") }
                return e
            }
            let set: Hash128 = {
                let d = CanonicalDigester()
                d.begin(.set)
                for e in members { d.beginItem(); Self.logical(e).withUnsafeBytes { d.component($0) }; d.endItem() }
                return d.finish()
            }()
            #expect(try decoded(Self.payload(Self.listpack(members), type: 20)) == set, "set of \(n)")

            let scores: [(Entry, Double)] = [
                (.int(7), 7), (.text("1.5"), 1.5), (.text("-inf"), -.infinity), (.text("123456.78901234567"), 123456.78901234567),
                (.int(-4096), -4096), (.text("2.5e-3"), 2.5e-3)
            ]
            let zset: Hash128 = {
                let d = CanonicalDigester()
                d.begin(.zset)
                for (i, e) in members.enumerated() {
                    d.beginItem()
                    Self.logical(e).withUnsafeBytes { d.component($0) }
                    d.score(scores[i % scores.count].1)
                    d.endItem()
                }
                return d.finish()
            }()
            let zentries = members.enumerated().flatMap { i, e in [e, scores[i % scores.count].0] }
            #expect(try decoded(Self.payload(Self.listpack(zentries), type: 17)) == zset, "sorted set of \(n)")
            // A score that is not a number is refused, wherever it is.
            var bad = zentries
            bad[bad.count - 1] = .text("1.5x")
            #expect(throws: RDBError.self) { try decoded(Self.payload(Self.listpack(bad), type: 17)) }
        }
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
