import Foundation

/// Parses the text form of a double as a server would (`strtod`), for scores stored as text.
/// Decimals of up to 19 significant digits, with or without an exponent, are converted here,
/// correctly rounded (below); anything else (`inf`, hex, more digits) goes to `strtod`.
public func parseDouble(_ bytes: UnsafeRawBufferPointer) -> Double? {
    if let d = DecimalText.parse(bytes) { return d }
    if bytes.count == 0 || bytes.count > 300 { return nil }
    return withUnsafeTemporaryAllocation(byteCount: bytes.count + 1, alignment: 1) { buf -> Double? in
        buf.copyMemory(from: bytes)
        buf[bytes.count] = 0
        let p = buf.baseAddress!.assumingMemoryBound(to: CChar.self)
        var end: UnsafeMutablePointer<CChar>? = nil
        let d = strtod(p, &end)
        guard let e = end, e == p + bytes.count else { return nil }
        return d
    }
}

/// Decimal text to the nearest double without `strtod`, which costs about a microsecond per
/// 17-digit score (Redis writes non-integer scores with `%.17g`). Exact cases multiply or divide
/// by an exact power of ten (Clinger's fast path); the rest use the Eisel–Lemire algorithm on a
/// 128-bit power of ten, which either proves the rounding or gives up (nil: `strtod` decides).
enum DecimalText {
    /// Digits, one optional '.', then an optional exponent; nil for anything else, including
    /// forms `strtod` reads but this does not ("+1", " 1", "1.", "inf") and over 19 digits.
    static func parse(_ b: UnsafeRawBufferPointer) -> Double? {
        let n = b.count
        if n == 0 || n > 64 { return nil }
        var i = 0
        let negative = b[0] == UInt8(ascii: "-")
        if negative { i = 1 }
        // Leading zeros first (of the fraction too, when the integer part is all zeros), then
        // every digit into the mantissa; more than 19 of those and `strtod` decides.
        var mantissa: UInt64 = 0
        var significant = 0, fraction = 0
        let start = i
        while i < n && b[i] == 48 { i &+= 1 }
        while i < n && b[i] &- 48 < 10 {
            mantissa = mantissa &* 10 &+ UInt64(b[i] &- 48)
            significant &+= 1
            i &+= 1
        }
        let integerDigits = i &- start
        if i < n && b[i] == UInt8(ascii: ".") {
            i &+= 1
            let from = i
            if mantissa == 0 { while i < n && b[i] == 48 { i &+= 1 } }
            while i < n && b[i] &- 48 < 10 {
                mantissa = mantissa &* 10 &+ UInt64(b[i] &- 48)
                significant &+= 1
                i &+= 1
            }
            fraction = i &- from
            if fraction == 0 { return nil }
        }
        if integerDigits == 0 && fraction == 0 { return nil }
        if significant > 19 { return nil }
        var exponent = 0
        if i < n {
            guard b[i] | 0x20 == UInt8(ascii: "e"), i &+ 1 < n else { return nil }
            i &+= 1
            var expNegative = false
            if b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") {
                expNegative = b[i] == UInt8(ascii: "-")
                i &+= 1
            }
            let start = i
            while i < n, b[i] &- 48 < 10, i &- start < 4 {
                exponent = exponent &* 10 &+ Int(b[i] &- 48)
                i &+= 1
            }
            if i == start || i != n { return nil }
            if expNegative { exponent = -exponent }
        }
        if mantissa == 0 { return negative ? -0.0 : 0.0 }
        let e10 = exponent &- fraction
        // Both factors exact: one rounding, the correct one.
        if mantissa <= 1 << 53 && e10 >= -22 && e10 <= 22 {
            let m = Double(mantissa)
            let v = e10 < 0 ? m / exactPowersOfTen[-e10] : m * exactPowersOfTen[e10]
            return negative ? -v : v
        }
        return eiselLemire(mantissa, e10, negative: negative)
    }

    static let exactPowersOfTen: [Double] = (0...22).map { e in (0..<e).reduce(1.0) { a, _ in a * 10 } }

    /// 10^e for e in `powers`, as the 128 most significant bits of its binary expansion,
    /// rounded down: (high, low) at 2(e - lowerBound). Computed once, exactly, in 128 bits:
    /// 10^38 is the largest power of ten below 2^128, so the table stops there.
    static let powers = -38...38
    static let powerTable: [UInt64] = powers.flatMap { e -> [UInt64] in
        var ten: UInt128 = 1
        for _ in 0..<e.magnitude { ten *= 10 }
        let bits: UInt128
        if e >= 0 {
            bits = ten << ten.leadingZeroBitCount
        } else {
            // ⌊2^(127+L) / 10^-e⌋ with L the bit length of 10^-e: it lies in (2^127, 2^128).
            // Long division of a power of two, one bit a step; the remainder stays below 10^-e.
            let shift = 127 + (128 - ten.leadingZeroBitCount)
            var quotient: UInt128 = 0, remainder: UInt128 = 0
            for bit in stride(from: shift, through: 0, by: -1) {
                remainder = remainder << 1 | (bit == shift ? 1 : 0)
                if remainder >= ten {
                    remainder -= ten
                    if bit < 128 { quotient |= 1 << UInt128(bit) }
                }
            }
            bits = quotient
        }
        return [UInt64(truncatingIfNeeded: bits >> 64), UInt64(truncatingIfNeeded: bits)]
    }

    /// The double nearest to `m` × 10^`e10` (m ≠ 0), or nil where the 128-bit product leaves the
    /// rounding undecided or the result is out of the normal range.
    static func eiselLemire(_ m: UInt64, _ e10: Int, negative: Bool) -> Double? {
        guard powers.contains(e10) else { return nil }
        let clz = m.leadingZeroBitCount
        let man = m << clz
        // ⌊e10 · log2(10)⌋ + 64 + bias − clz: the exponent if the product's top bit is set.
        var exp2 = UInt64(bitPattern: Int64(((217_706 &* e10) >> 16) &+ 64 &+ 1023 &- clz))
        let at = 2 &* (e10 &- powers.lowerBound)
        let pHigh = powerTable[at], pLow = powerTable[at &+ 1]
        var (xHigh, xLow) = man.multipliedFullWidth(by: pHigh)
        // The low 9 bits all ones: the truncated power's lower half may carry into them.
        if xHigh & 0x1FF == 0x1FF && xLow &+ man < man {
            let (yHigh, yLow) = man.multipliedFullWidth(by: pLow)
            var mergedHigh = xHigh
            let mergedLow = xLow &+ yHigh
            if mergedLow < xLow { mergedHigh &+= 1 }
            if mergedHigh & 0x1FF == 0x1FF && mergedLow &+ 1 == 0 && yLow &+ man < man { return nil }
            xHigh = mergedHigh
            xLow = mergedLow
        }
        let msb = xHigh >> 63
        var mantissa = xHigh >> (msb &+ 9)
        exp2 &-= 1 ^ msb
        // Exactly halfway between two doubles as far as these bits tell.
        if xLow == 0 && xHigh & 0x1FF == 0 && mantissa & 3 == 1 { return nil }
        mantissa &+= mantissa & 1
        mantissa >>= 1
        if mantissa >> 53 > 0 {
            mantissa >>= 1
            exp2 &+= 1
        }
        // Subnormal, zero, infinite: `strtod` decides.
        if exp2 &- 1 >= 0x7FF - 1 { return nil }
        var bits = exp2 << 52 | mantissa & 0x000F_FFFF_FFFF_FFFF
        if negative { bits |= 1 << 63 }
        return Double(bitPattern: bits)
    }
}
