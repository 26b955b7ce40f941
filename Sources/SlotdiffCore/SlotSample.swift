import Foundation
import HashSlots

/// A uniformly random set of whole hash slots (`--sample P% --seed N`). The slots are drawn
/// from all 16384 by a seeded generator that is the same on every machine, so two runs given
/// the same percentage and seed — a digest of each side, made on two networks — check the same
/// slots. `--slots` and `--shard` then keep the sampled slots within their range.
public struct SlotSample: Sendable, Equatable, CustomStringConvertible {
    /// The share of slots drawn, in percent (0 < percent ≤ 100).
    public let percent: Double
    public let seed: UInt64
    /// How many of the 16384 slots were drawn.
    public let drawn: Int
    private let bits: [UInt64]

    public init(percent: Double, seed: UInt64) {
        self.percent = percent
        self.seed = seed
        let k = max(1, min(HashSlot.count, Int((percent / 100 * Double(HashSlot.count)).rounded())))
        drawn = k
        // Partial Fisher–Yates over the slots with SplitMix64: fixed arithmetic, no platform
        // generator, so every build draws the same slots for a seed.
        var slots = Array(0..<HashSlot.count)
        var state = seed
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        var bits = [UInt64](repeating: 0, count: HashSlot.count / 64)
        for i in 0..<k {
            let left = UInt64(HashSlot.count - i)
            // Rejection keeps the draw uniform (no modulo bias).
            let limit = UInt64.max - UInt64.max % left
            var r = next()
            while r >= limit { r = next() }
            let j = i + Int(r % left)
            slots.swapAt(i, j)
            bits[slots[i] >> 6] |= 1 << UInt64(slots[i] & 63)
        }
        self.bits = bits
    }

    public func contains(_ slot: UInt16) -> Bool { bits[Int(slot) >> 6] & (1 << UInt64(slot & 63)) != 0 }

    /// The drawn slots within `range`, as runs of consecutive slots.
    public func runs(in range: SlotRange) -> [SlotRange] {
        var out: [SlotRange] = []
        var start: Int?
        for s in Int(range.lower)...Int(range.upper) {
            if contains(UInt16(s)) {
                if start == nil { start = s }
            } else if let st = start {
                out.append(SlotRange(UInt16(st), UInt16(s - 1)))
                start = nil
            }
        }
        if let st = start { out.append(SlotRange(UInt16(st), range.upper)) }
        return out
    }

    /// The drawn slots within `range` (all slots when nil).
    public func slots(in range: SlotRange?) -> [UInt16] {
        let r = range ?? SlotRange.all
        return (Int(r.lower)...Int(r.upper)).map(UInt16.init).filter(contains)
    }

    /// `--sample` as written: `1%`, `0.5%`, `25` (percent).
    /// The estimate for the slots in `range` (all slots when nil), from the differences counted
    /// per sampled slot.
    public func estimate(range: SlotRange?, perSlot: [Int: Int]?, total: Int) -> SampleEstimate {
        let r = range ?? SlotRange.all
        return SampleEstimate(
            percent: percent, seed: seed, sampledSlots: slots(in: r).count,
            populationSlots: Int(r.upper) - Int(r.lower) + 1,
            perSlot: perSlot.map { Array($0.values) } ?? (total > 0 ? [total] : []))
    }

    /// What a checkpoint records of it: a resumed run must draw the same slots.
    public var settings: String { "\(Self.format(percent))%@\(seed)" }

    public static func parsePercent(_ text: String) -> Double? {
        let t = text.hasSuffix("%") ? String(text.dropLast()) : text
        guard let p = Double(t), p.isFinite, p > 0, p <= 100 else { return nil }
        return p
    }

    public var description: String { "\(Self.format(percent))% (seed \(seed))" }

    public static func format(_ p: Double) -> String {
        p == p.rounded() ? String(Int(p)) : String(format: "%g", p)
    }
}

/// The estimate a sampled check gives for the whole keyspace (within `--slots`/`--shard`).
///
/// Cluster sampling: the sampled slots are a simple random sample without replacement of n of
/// the N slots in range, and a slot's differences (y_i) are counted whole. Differences cluster
/// in slots (a hash tag, a slot whose migration failed), so they are not independent per key
/// and a per-key binomial interval would be far too narrow; the per-slot counts carry that
/// clustering into the variance:
///   estimate T = N/n · Σ y_i,  Var(T) = N² · (1 − n/N) · s² / n  (s²: sample variance of y_i),
///   normal interval T ± q · √Var(T), q = Student's t with n−1 degrees of freedom (1.96 beyond 30).
/// With few differences found that interval is too narrow (Σ y_i is a small count, far from
/// normal; with none found its variance is 0), so the interval given is its union with the
/// exact (Garwood) Poisson interval of Σ y_i scaled by N/n — conservative when differences are
/// spread one a slot, and no narrower than the first otherwise. Its lower end is never below
/// the differences actually found. A slot holding many differences that the sample misses is
/// not seen by any sample: the interval cannot account for it.
public struct SampleEstimate: Sendable, Equatable, Codable {
    public var percent: Double
    public var seed: UInt64
    /// Slots in the sample (n) and in the range the estimate is for (N).
    public var sampledSlots: Int
    public var populationSlots: Int
    /// Differences found in the sampled slots (Σ y_i), and how many sampled slots held any.
    public var found: Int
    public var slotsWithDifferences: Int
    public var estimate: Double
    public var low: Double
    public var high: Double

    public init(percent: Double, seed: UInt64, sampledSlots n: Int, populationSlots N: Int, perSlot: [Int]) {
        self.percent = percent
        self.seed = seed
        sampledSlots = n
        populationSlots = N
        // perSlot holds the counts of the sampled slots that held a difference; the others are 0.
        let total = perSlot.reduce(0, +)
        found = total
        slotsWithDifferences = perSlot.filter { $0 > 0 }.count
        guard n > 0 else {
            estimate = 0; low = 0; high = 0
            return
        }
        let scale = Double(N) / Double(n)
        estimate = scale * Double(total)
        if n >= N {
            low = Double(total); high = Double(total)
            return
        }
        let mean = Double(total) / Double(n)
        var ss = 0.0
        for y in perSlot { ss += (Double(y) - mean) * (Double(y) - mean) }
        ss += Double(n - perSlot.count) * mean * mean
        let s2 = n > 1 ? ss / Double(n - 1) : 0
        let variance = Double(N) * Double(N) * (1 - Double(n) / Double(N)) * s2 / Double(n)
        let half = Self.t975(n - 1) * variance.squareRoot()
        let poisson = Self.poisson95(total)
        low = max(Double(total), min(estimate - half, scale * poisson.low))
        high = max(estimate + half, scale * poisson.high)
    }

    /// The exact (Garwood) 95% interval of a Poisson mean for a count x: chi-square quantiles
    /// χ²(0.025; 2x)/2 and χ²(0.975; 2x+2)/2, by the Wilson–Hilferty approximation (within
    /// 1% from x = 1 on); for x = 0 the upper end is −ln 0.025.
    static func poisson95(_ x: Int) -> (low: Double, high: Double) {
        func chi2(_ z: Double, _ k: Double) -> Double {
            let a = 2 / (9 * k)
            return k * pow(1 - a + z * a.squareRoot(), 3)
        }
        let z = 1.959964
        if x == 0 { return (0, -log(0.025)) }
        return (chi2(-z, 2 * Double(x)) / 2, chi2(z, 2 * Double(x) + 2) / 2)
    }

    /// Student's t, 0.975 quantile, by degrees of freedom (1.96 beyond 30).
    static func t975(_ df: Int) -> Double {
        let t: [Double] = [
            12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145, 2.131,
            2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042
        ]
        if df < 1 { return t[0] }
        return df <= 30 ? t[df - 1] : 1.96
    }

    public static let method =
        "cluster sampling of whole slots: N/n * sum of per-slot counts; 95% interval from the sample variance of per-slot counts with finite-population correction (Student's t), widened to the exact Poisson interval of the count found"

    enum Field: String, CodingKey {
        case percent, seed, estimate, method
        case sampledSlots = "slots_sampled", populationSlots = "slots_in_range", found = "differences_found"
        case slotsWithDifferences = "slots_with_differences", interval = "interval_95"
    }
}

/// In the summary file: the interval as `[low, high]` rounded outwards, the estimate to a tenth,
/// and the method in words.
extension SampleEstimate {
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: Field.self)
        try c.encode(percent, forKey: .percent)
        try c.encode(seed, forKey: .seed)
        try c.encode(sampledSlots, forKey: .sampledSlots)
        try c.encode(populationSlots, forKey: .populationSlots)
        try c.encode(found, forKey: .found)
        try c.encode(slotsWithDifferences, forKey: .slotsWithDifferences)
        try c.encode((estimate * 10).rounded() / 10, forKey: .estimate)
        try c.encode([low.rounded(.down), high.rounded(.up)], forKey: .interval)
        try c.encode(Self.method, forKey: .method)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: Field.self)
        percent = try c.decode(Double.self, forKey: .percent)
        seed = try c.decode(UInt64.self, forKey: .seed)
        sampledSlots = try c.decode(Int.self, forKey: .sampledSlots)
        populationSlots = try c.decode(Int.self, forKey: .populationSlots)
        found = try c.decode(Int.self, forKey: .found)
        slotsWithDifferences = try c.decode(Int.self, forKey: .slotsWithDifferences)
        estimate = try c.decode(Double.self, forKey: .estimate)
        let interval = try c.decode([Double].self, forKey: .interval)
        guard interval.count == 2 else {
            throw DecodingError.dataCorruptedError(forKey: .interval, in: c, debugDescription: "interval_95 holds two numbers")
        }
        (low, high) = (interval[0], interval[1])
    }
}
