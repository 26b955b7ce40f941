import Foundation
import HashSlots
import Testing

@testable import SlotdiffCore

@Suite struct SampleTests {
    /// The same percentage and seed draw the same slots (every build, every machine: the draw
    /// is fixed arithmetic); another seed draws others; P% of 16384 slots are drawn.
    @Test func drawIsSeededAndSized() {
        let a = SlotSample(percent: 1, seed: 7), b = SlotSample(percent: 1, seed: 7), c = SlotSample(percent: 1, seed: 8)
        #expect(a == b)
        #expect(a.slots(in: nil) != c.slots(in: nil))
        #expect(a.slots(in: nil).count == 164 && a.drawn == 164)
        #expect(SlotSample(percent: 100, seed: 1).slots(in: nil).count == HashSlot.count)
        #expect(SlotSample(percent: 0.001, seed: 1).slots(in: nil).count == 1)
        // Pinned: a change to the draw would make digests of two versions sample different slots.
        #expect(Array(SlotSample(percent: 0.05, seed: 42).slots(in: nil)) == Self.pinned)
        let runs = a.runs(in: SlotRange(0, 16383))
        let inRuns: Int = runs.map { (r: SlotRange) -> Int in Int(r.upper) - Int(r.lower) + 1 }.reduce(0, +)
        #expect(inRuns == 164)
        #expect(runs.allSatisfy { r in (r.lower...r.upper).allSatisfy(a.contains) })
        #expect(SlotSample.parsePercent("0.5%") == 0.5 && SlotSample.parsePercent("100") == 100)
        #expect(SlotSample.parsePercent("0%") == nil && SlotSample.parsePercent("101%") == nil && SlotSample.parsePercent("x") == nil)
    }

    static let pinned: [UInt16] = [281, 3433, 4574, 7681, 10748, 11925, 12141, 14040]

    /// A keyspace of 16384 slots with 2050 differences: 2000 spread at random and 5 slots
    /// holding 10 each (clustered). A 10% sample's 95% interval holds the true count in at
    /// least 19 of 20 seeded runs, and in at least 90% of 400.
    @Test func intervalCoversTheTrueCount() {
        var perSlot = [Int](repeating: 0, count: HashSlot.count)
        var rng = SplitMix(seed: 99)
        for _ in 0..<2000 { perSlot[Int(rng.next() % UInt64(HashSlot.count))] += 1 }
        for _ in 0..<5 { perSlot[Int(rng.next() % UInt64(HashSlot.count))] += 10 }
        let truth = perSlot.reduce(0, +)
        #expect(truth == 2050)
        func run(_ seed: UInt64) -> SampleEstimate {
            let s = SlotSample(percent: 10, seed: seed)
            let slots = s.slots(in: nil)
            return SampleEstimate(
                percent: 10, seed: seed, sampledSlots: slots.count, populationSlots: HashSlot.count,
                perSlot: slots.map { perSlot[Int($0)] }.filter { $0 > 0 })
        }
        let first = (1...20).map(run)
        let covered = first.filter { Double(truth) >= $0.low && Double(truth) <= $0.high }.count
        #expect(covered >= 19, "\(first.map { "\($0.low)-\($0.high)" })")
        let many = (1...400).map { run(UInt64($0)) }.filter { Double(truth) >= $0.low && Double(truth) <= $0.high }.count
        #expect(many >= 360, "\(many) of 400")
        // The interval comes from per-slot counts: the same 2050 differences piled into few slots
        // give a much wider interval than spread ones.
        let e = first[0]
        #expect(e.low >= Double(e.found) && e.estimate > e.low && e.high > e.estimate)
    }

    /// Differences in a few slots only: wider intervals than the same count spread out, since
    /// the variance is that of per-slot counts, not a per-key binomial.
    @Test func clusteredDifferencesWidenTheInterval() {
        let spread = SampleEstimate(percent: 10, seed: 1, sampledSlots: 1638, populationSlots: HashSlot.count, perSlot: Array(repeating: 1, count: 20))
        let piled = SampleEstimate(percent: 10, seed: 1, sampledSlots: 1638, populationSlots: HashSlot.count, perSlot: [10, 10])
        #expect(spread.found == piled.found && spread.estimate == piled.estimate)
        #expect(piled.high - piled.low > 2 * (spread.high - spread.low))
    }

    /// Every slot checked: exact counts; nothing found: 0, with the Poisson upper end for a
    /// count of 0 (−ln 0.025 ≈ 3.69) scaled to the slots in range.
    @Test func fullAndEmptySamples() {
        let full = SampleEstimate(percent: 100, seed: 1, sampledSlots: 100, populationSlots: 100, perSlot: [37])
        #expect(full.estimate == 37 && full.low == 37 && full.high == 37)
        let none = SampleEstimate(percent: 1, seed: 1, sampledSlots: 164, populationSlots: HashSlot.count, perSlot: [])
        #expect(none.estimate == 0 && none.low == 0)
        #expect(abs(none.high - 3.6889 * 16384 / 164) < 0.01)
        // Few differences, one a slot: the interval holds the exact Poisson one (7 found in a 1%
        // sample: about 2.8 to 14.4 times 100).
        let few = SampleEstimate(percent: 1, seed: 1, sampledSlots: 164, populationSlots: HashSlot.count, perSlot: Array(repeating: 1, count: 7))
        let p = SampleEstimate.poisson95(7)
        #expect(abs(p.low - 2.814) < 0.05 && abs(p.high - 14.423) < 0.1)
        #expect(few.low <= p.low * 16384 / 164 + 0.001 && few.high >= p.high * 16384 / 164 - 0.001)
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
