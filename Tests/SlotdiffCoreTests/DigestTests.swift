import Foundation
import SlotdiffCore
import Testing

/// What `strtod` reads from the whole of `s`; nil when it stops short of the end.
func strtodWhole(_ s: String) -> Double? {
    s.withCString { p -> Double? in
        var end: UnsafeMutablePointer<CChar>?
        let d = strtod(p, &end)
        return end.map { $0 - UnsafeMutablePointer(mutating: p) } == s.utf8.count ? d : nil
    }
}

/// `parseDouble` of a string's bytes.
func parsed(_ s: String) -> Double? { Array(s.utf8).withUnsafeBytes { parseDouble($0) } }

/// Digest helpers: feed logical values the way a decoder would.
func digest(_ type: ValueType, _ build: (CanonicalDigester) -> Void) -> Hash128 {
    let d = CanonicalDigester()
    d.begin(type)
    build(d)
    return d.finish()
}

func bytes(_ s: String, _ body: (UnsafeRawBufferPointer) -> Void) { Array(s.utf8).withUnsafeBytes(body) }

@Suite struct DigestTests {
    @Test func integerStringsAreTheirText() {
        let a = digest(.string) { d in d.string(int: -9_223_372_036_854_775_808) }
        let b = digest(.string) { d in bytes("-9223372036854775808") { d.string($0) } }
        #expect(a == b)
        #expect(digest(.string) { $0.string(int: 0) } == digest(.string) { d in bytes("0") { d.string($0) } })
        #expect(digest(.string) { $0.string(int: 10) } != digest(.string) { d in bytes("010") { d.string($0) } })
    }

    /// Short inputs are hashed by the inlined XXH3 code, long ones by the library: both give
    /// the library's streaming result, on each side of the boundary.
    @Test func oneShotHashIsTheLibrarys() {
        let data = (0..<600).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }
        data.withUnsafeBytes { all in
            for n in 0...600 {
                let b = UnsafeRawBufferPointer(rebasing: all[0..<n])
                let stream = XXH3Stream()
                stream.update(b)
                #expect(Hash128.of(b) == stream.digest(), "length \(n)")
            }
        }
    }

    /// Integers written as text in place (by the digester and by `ItemWriter`, in every width
    /// and sign) give the digest of their decimal text.
    @Test func integerComponentsAreTheirText() {
        var values: [Int64] = [0, 1, -1, 9, 10, -10, 99, 100, Int64.max, Int64.min, Int64.min + 1]
        var p: Int64 = 1
        for _ in 0..<18 {
            p *= 10
            values += [p - 1, p, p + 1, -(p - 1), -p, -(p + 1)]
        }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2000 { values.append(Int64.random(in: -99_999_999...99_999_999, using: &rng)) }
        for _ in 0..<200 { values.append(Int64.random(in: Int64.min...Int64.max, using: &rng)) }
        for type in [ValueType.list, .set, .hash] {
            let asText = digest(type) { d in
                for v in values { bytes(String(v)) { d.element($0) } }
            }
            let asInt = digest(type) { d in for v in values { d.element(.int(v)) } }
            let written = digest(type) { d in
                var w = ItemWriter(d)
                for v in values { w.beginItem(); w.component(int: v); w.endItem() }
                w.finish()
            }
            #expect(asInt == asText, "\(type)")
            #expect(written == asText, "\(type)")
        }
    }

    /// Items longer than the writer's buffer go on through the digester from where they
    /// stopped: the same digest as items fed to the digester alone.
    @Test func longItemsGoOnThroughTheDigester() {
        let long = String(repeating: "x", count: 40_000), short = "field"
        let items: [(String, String)] = [(short, long), (long, short), (short, "1"), (long, long), ("a", "b")]
        for type in [ValueType.hash, .list] {
            let plain = digest(type) { d in
                for (f, v) in items {
                    d.beginItem(); bytes(f) { d.component($0) }; bytes(v) { d.component($0) }; d.endItem()
                }
            }
            let written = digest(type) { d in
                var w = ItemWriter(d)
                for (f, v) in items {
                    w.beginItem(); bytes(f) { w.component($0) }; bytes(v) { w.component($0) }; w.endItem()
                }
                w.finish()
            }
            #expect(plain == written, "\(type)")
        }
    }

    @Test func streamedStringEqualsWhole() {
        let text = String(repeating: "abcdefghij", count: 100_000)
        let whole = digest(.string) { d in bytes(text) { d.string($0) } }
        let parts = digest(.string) { d in
            bytes(text) { b in
                var i = 0
                while i < b.count {
                    let n = min(7777, b.count - i)
                    d.stringPart(UnsafeRawBufferPointer(rebasing: b[i..<(i + n)]))
                    i += n
                }
            }
        }
        #expect(whole == parts)
    }

    @Test func setsIgnoreOrderListsDoNot() {
        let members = ["a", "b", "c", "42"]
        let s1 = digest(.set) { d in for m in members { bytes(m) { d.element($0) } } }
        let s2 = digest(.set) { d in for m in members.reversed() { bytes(m) { d.element($0) } } }
        let s3 = digest(.set) { d in
            for m in members.dropLast() { bytes(m) { d.element($0) } }; d.element(.int(42))
        }
        #expect(s1 == s2)
        #expect(s1 == s3)
        let l1 = digest(.list) { d in for m in members { bytes(m) { d.element($0) } } }
        let l2 = digest(.list) { d in for m in members.reversed() { bytes(m) { d.element($0) } } }
        #expect(l1 != l2)
        #expect(l1 != s1)  // the type is part of the digest
    }

    @Test func lengthPrefixesSeparateElements() {
        let a = digest(.list) { d in
            bytes("ab") { d.element($0) }; bytes("c") { d.element($0) }
        }
        let b = digest(.list) { d in
            bytes("a") { d.element($0) }; bytes("bc") { d.element($0) }
        }
        #expect(a != b)
        let h1 = digest(.hash) { d in
            d.beginItem(); bytes("ab") { d.component($0) }; bytes("c") { d.component($0) }; d.endItem()
        }
        let h2 = digest(.hash) { d in
            d.beginItem(); bytes("a") { d.component($0) }; bytes("bc") { d.component($0) }; d.endItem()
        }
        #expect(h1 != h2)
    }

    @Test func scoresAreParsedValues() {
        func z(_ score: Double) -> Hash128 {
            digest(.zset) { d in
                d.beginItem(); bytes("m") { d.component($0) }; d.score(score); d.endItem()
            }
        }
        #expect(z(0.0) == z(-0.0))
        #expect(z(1) == z(parsed("1.00000000000000000")!))
        #expect(z(0.1) != z(0.2))
        #expect(z(.nan) == z(-.nan))
        #expect(parsed("3.14159") == 3.14159)
        #expect(parsed("-inf") == -.infinity)
        #expect(parsed("12abc") == nil)
    }

    @Test func bigItemsHashLikeSmallOnes() {
        // An item larger than the scratch limit switches to a streaming state: same result
        // as feeding the same bytes in pieces.
        let big = String(repeating: "x", count: 200_000)
        let a = digest(.hash) { d in
            d.beginItem(); bytes("f") { d.component($0) }; bytes(big) { d.component($0) }; d.endItem()
        }
        let b = digest(.hash) { d in
            d.beginItem(); bytes("f") { d.component($0) }
            d.componentBegin(length: big.utf8.count)
            bytes(big) { b in
                d.componentPart(UnsafeRawBufferPointer(rebasing: b[0..<1000]))
                d.componentPart(UnsafeRawBufferPointer(rebasing: b[1000...]))
            }
            d.endItem()
        }
        #expect(a == b)
    }

    @Test func hashFieldExpiryIsPartOfThePair() {
        let plain = digest(.hash) { d in
            d.beginItem(); bytes("f") { d.component($0) }; bytes("v") { d.component($0) }; d.endItem()
        }
        let ttl = digest(.hash) { d in
            d.beginItem(); bytes("f") { d.component($0) }; bytes("v") { d.component($0) }; d.fixed(4_102_444_800_000); d.endItem()
        }
        #expect(plain != ttl)
    }

    @Test func hash128Arithmetic() {
        let a = Hash128(low: .max, high: 1)
        let b = Hash128(low: 1, high: 2)
        #expect(a &+ b == Hash128(low: 0, high: 4))
        #expect((a &+ b) &- b == a)
        #expect(Hash128(hex: a.description) == a)
    }
}

@Suite struct DoubleParsingTests {
    /// The fast path agrees with strtod on every form it takes.
    @Test func fastPathAgreesWithStrtod() {
        var samples = [
            "0", "-0", "1", "-1", "0.1", "0.2", "0.30000000000000004", "3.14159", "123456789012345",
            "-9.99999", "1.5", "100.25", "0.000001", "999999999999999", "12.", ".5", "1e10", "inf"
        ]
        var g = SystemRandomNumberGenerator()
        for _ in 0..<20000 {
            let intDigits = Int.random(in: 1...8, using: &g), fracDigits = Int.random(in: 0...7, using: &g)
            var t = Bool.random(using: &g) ? "-" : ""
            t += String((0..<intDigits).map { _ in "0123456789".randomElement(using: &g)! })
            if fracDigits > 0 { t += "." + String((0..<fracDigits).map { _ in "0123456789".randomElement(using: &g)! }) }
            samples.append(t)
        }
        for s in samples {
            let expected = strtodWhole(s)
            let got = Array(s.utf8).withUnsafeBytes { parseDouble($0) }
            #expect(got?.bitPattern == expected?.bitPattern, "\(s)")
        }
    }

    /// Long decimals and exponents (Redis writes scores with %.17g) take the Eisel–Lemire path:
    /// every result must equal strtod's, bit for bit, across the exponent range and its edges
    /// (about 85k strings: enough to meet every branch many times, light beside the other suites).
    @Test func longDecimalsAgreeWithStrtod() {
        var samples = [
            "0.30000000000000004", "-123456.78901234567", "1.7976931348623157e+308", "2.2250738585072014e-308",
            "4.9406564584124654e-324", "1e-400", "1e400", "9007199254740993", "9007199254740992.5",
            "18446744073709551615", "9999999999999999999", "0.1e1", "1E+22", "1e23", "-0.0", "00000.00001",
            "1e", "1e+", "1.5e-5x", "+1", "1..2", "1e99999"
        ]
        var g = SystemRandomNumberGenerator()
        let digitsOf = { (k: Int, g: inout SystemRandomNumberGenerator) in
            String((0..<k).map { _ in "0123456789".randomElement(using: &g)! })
        }
        for _ in 0..<40_000 {
            var t = Bool.random(using: &g) ? "-" : ""
            let total = Int.random(in: 1...20, using: &g)
            let point = Int.random(in: 0...total, using: &g)
            let all = digitsOf(total, &g)
            t += String(all.prefix(point))
            if point < total { t += "." + String(all.dropFirst(point)) }
            if point == 0 && point == total { t += "0" }
            if Int.random(in: 0..<3, using: &g) == 0 { t += "e\(Int.random(in: -60...60, using: &g))" }
            samples.append(t)
        }
        for _ in 0..<15_000 {
            let d = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &g))
            if d.isFinite { samples.append(String(format: "%.17g", d)) }
            let near = Double.random(in: -1e6...1e6, using: &g)
            samples.append(String(format: "%.17g", near))
            samples.append("\(near)")
        }
        var mismatches: [String] = []
        for s in samples {
            let expected = strtodWhole(s)
            let got = Array(s.utf8).withUnsafeBytes { parseDouble($0) }
            if got?.bitPattern != expected?.bitPattern { mismatches.append(s) }
        }
        #expect(mismatches.isEmpty, "\(mismatches.prefix(10))")
    }
}
