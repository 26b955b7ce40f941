import SlotdiffCore
import Testing

@testable import RDB

/// Hashes, sets and sorted sets stored element by element (hashtable and skiplist encodings),
/// built byte by byte with every string encoding. Short strings and small integers are laid out
/// in locals until an item cannot be (a long or compressed string, the end of the buffered
/// input); the digest must not depend on where that happens, nor on where the buffered input ends.
@Suite struct PlainItemsTests {
    enum Component {
        case text(String)
        case int8(Int8), int16(Int16), int32(Int32)
        /// Stored LZF-compressed (as literals), up to 32 bytes.
        case compressed(String)

        var logical: [UInt8] {
            switch self {
            case .text(let s), .compressed(let s): Array(s.utf8)
            case .int8(let v): Array(String(v).utf8)
            case .int16(let v): Array(String(v).utf8)
            case .int32(let v): Array(String(v).utf8)
            }
        }

        func encoded() -> [UInt8] {
            func le<T: FixedWidthInteger>(_ v: T) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
            switch self {
            case .text(let s):
                let b = Array(s.utf8)
                return DumpBytes.length(b.count) + b
            case .int8(let v): return [0xC0] + le(v)
            case .int16(let v): return [0xC1] + le(v)
            case .int32(let v): return [0xC2] + le(v)
            case .compressed(let s):
                let b = Array(s.utf8)
                let lzf = [UInt8(b.count - 1)] + b
                return [0xC3] + DumpBytes.length(lzf.count) + DumpBytes.length(b.count) + lzf
            }
        }
    }

    static let components: [Component] = [
        .text("f"), .text(""), .text(String(repeating: "k", count: 63)), .text(String(repeating: "l", count: 64)),
        .text(String(repeating: "x", count: 300)), .int8(-5), .int8(127), .int16(30000), .int16(-129),
        .int32(-2_000_000_000), .int32(1_000_001), .compressed("compressed-member"), .text("12345678"),
        .text("tail")
    ]

    /// `n` items of `width` components each, drawn in a fixed pattern from `components`.
    static func items(_ n: Int, width: Int) -> [[Component]] {
        (0..<n).map { i in
            (0..<width).map { c in
                let k = (i * 5 + c * 3) % components.count
                // Members must differ: vary the first component by the item's index.
                if c == 0, case .text(let s) = components[k] { return .text(s + "#\(i)") }
                if c == 0 { return i % 2 == 0 ? .int32(Int32(i)) : .text("m\(i)") }
                return components[k]
            }
        }
    }

    static let scores: [Double] = [0, -0.0, 1.5, -2.25e300, .infinity, -.infinity, .nan, 4_503_599_627_370_497]

    /// A value of RDB type `type`: the count, then each item's components and score.
    static func value(type: UInt8, _ items: [[Component]], scored: Bool) -> [UInt8] {
        var out = [type] + DumpBytes.length(items.count)
        for (i, item) in items.enumerated() {
            for c in item { out += c.encoded() }
            if scored { out += withUnsafeBytes(of: scores[i % scores.count].bitPattern.littleEndian) { Array($0) } }
        }
        return out
    }

    static func expected(_ type: ValueType, _ items: [[Component]], scored: Bool) -> Hash128 {
        let d = CanonicalDigester()
        d.begin(type)
        for (i, item) in items.enumerated() {
            d.beginItem()
            for c in item { c.logical.withUnsafeBytes { d.component($0) } }
            if scored { d.score(scores[i % scores.count]) }
            d.endItem()
        }
        return d.finish()
    }

    /// Hands out the first `split` bytes in one read, then the rest: the items are read with
    /// the buffered input ending at that byte.
    final class Split: ByteSource {
        let bytes: [UInt8]
        var at = 0
        let split: Int
        init(_ bytes: [UInt8], at split: Int) {
            self.bytes = bytes
            self.split = split
        }
        func read(into: UnsafeMutableRawBufferPointer) throws -> Int {
            let n = min(into.count, bytes.count - at, at < split ? split - at : Int.max)
            for i in 0..<n { into[i] = bytes[at + i] }
            at += n
            return n
        }
    }

    func fromMemory(_ v: [UInt8]) throws -> Hash128 {
        let d = CanonicalDigester()
        let payload = DumpBytes.payload(v)
        try payload.withUnsafeBytes { _ = try DumpPayload.decode($0, into: d) }
        return d.finish()
    }

    func split(_ v: [UInt8], at k: Int) throws -> Hash128 {
        let d = CanonicalDigester()
        let input = RDBInput(name: "split", source: Split(v, at: k))
        let decoder = ValueDecoder(input: input, flavor: RDBFlavor(version: 11, valkey: false), digester: d)
        try decoder.decode(type: try input.u8("type"))
        return d.finish()
    }

    @Test(arguments: [(UInt8(4), 2, false), (UInt8(2), 1, false), (UInt8(5), 1, true)])
    func everyEncodingAnywhereGivesTheSameDigest(type: UInt8, width: Int, scored: Bool) throws {
        let logical: ValueType = type == 4 ? .hash : type == 2 ? .set : .zset
        for n in [1, 2, 13, 40] {
            let items = Self.items(n, width: width)
            let want = Self.expected(logical, items, scored: scored)
            let bytes = Self.value(type: type, items, scored: scored)
            #expect(try fromMemory(bytes) == want, "\(n) items of type \(type), in memory")
            for k in 1..<bytes.count {
                #expect(try split(bytes, at: k) == want, "\(n) items of type \(type), input split at \(k)")
            }
            // Another order: the same digest; one component changed: another.
            if !scored { #expect(try fromMemory(Self.value(type: type, items.reversed(), scored: false)) == want) }
            var changed = items
            changed[n / 2][width - 1] = .text("changed")
            #expect(try fromMemory(Self.value(type: type, changed, scored: scored)) != want)
        }
    }
}
