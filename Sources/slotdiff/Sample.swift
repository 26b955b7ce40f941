import ArgumentParser
import Foundation
import SlotdiffCore

/// `--sample P% --seed N`, shared by `compare`, `watch` and `digest`.
struct SampleOptions: ParsableArguments {
    @Option(
        help:
            "Check a uniformly random P% of the hash slots, whole slots (e.g. 1%); the summary estimates the differences of the whole keyspace with a 95% interval."
    )
    var sample: String?

    @Option(help: "Seed of the slots --sample draws: the same percentage and seed draw the same slots on every machine (default: a random seed, printed).")
    var seed: UInt64?

    /// One seed per process when none is given, so that every use of it in a run agrees.
    static let drawnSeed = UInt64.random(in: 0..<(1 << 31))

    func validate() throws {
        if let sample, SlotSample.parsePercent(sample) == nil {
            throw ValidationError("--sample \(sample): a percentage of the hash slots above 0 and at most 100 (e.g. 1%, 0.5%)")
        }
        if seed != nil && sample == nil { throw ValidationError("--seed is for --sample: it says which slots are drawn") }
    }

    var percent: Double? { sample.flatMap(SlotSample.parsePercent) }
    var effectiveSeed: UInt64 { seed ?? Self.drawnSeed }

    /// The slots to look at; nil without `--sample`. 100% draws every slot: a full check,
    /// whose differences are still counted per slot for the summary.
    func slotSample() -> SlotSample? {
        percent.map { SlotSample(percent: $0, seed: effectiveSeed) }
    }

    /// Says on standard error which seed was drawn when none was given, so a run can be repeated.
    func announce() {
        guard let p = percent, seed == nil, p < 100 else { return }
        FileHandle.standardError.write(
            Data("slotdiff: --sample \(SlotSample.format(p))%: seed \(effectiveSeed) (pass --seed \(effectiveSeed) to draw the same slots)\n".utf8))
    }

}
