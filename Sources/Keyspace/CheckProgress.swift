import Foundation
import NIOConcurrencyHelpers

/// Counters a check updates as it goes, read by a progress display.
public final class CheckProgress: Sendable {
    private struct Counts {
        var keys = 0
        var differences = 0
        var passesDone = 0
        var passes = 1
        var expectedKeys = 0
    }

    private let counts = NIOLockedValueBox(Counts())
    public let started = Date()

    public init() {}

    public func addKeys(_ n: Int) { counts.withLockedValue { $0.keys += n } }
    public func addDifference() { counts.withLockedValue { $0.differences += 1 } }
    public func passDone() { counts.withLockedValue { $0.passesDone += 1 } }
    public func setPasses(_ n: Int) { counts.withLockedValue { $0.passes = n } }
    /// Keys the check will read in all (live sides: their key counts), for the time left.
    public func setExpectedKeys(_ n: Int) { counts.withLockedValue { $0.expectedKeys = n } }

    public struct Snapshot: Sendable {
        public var keys: Int
        public var differences: Int
        public var passesDone: Int
        public var passes: Int
        public var expectedKeys = 0
        public var seconds: Double

        public init(keys: Int, differences: Int, passesDone: Int, passes: Int, expectedKeys: Int = 0, seconds: Double) {
            self.keys = keys
            self.differences = differences
            self.passesDone = passesDone
            self.passes = passes
            self.expectedKeys = expectedKeys
            self.seconds = seconds
        }

        public var keysPerSecond: Double { seconds > 0 ? Double(keys) / seconds : 0 }

        /// Seconds left: from the keys still to read at the rate so far when the total is known
        /// (a standalone side read once makes passes unequal), else from the passes done.
        public var eta: Double? {
            if expectedKeys > 0 && keys > 0 && passesDone < passes {
                return Double(max(0, expectedKeys - keys)) / keysPerSecond
            }
            return passesDone > 0 && passesDone < passes ? seconds / Double(passesDone) * Double(passes - passesDone) : nil
        }

        public var line: String {
            var s = String(
                format: "%d keys read, %.0f keys/s, %d/%d slot-range passes, %d differences so far",
                keys, keysPerSecond, passesDone, passes, differences)
            if let eta { s += String(format: ", about %.0f s left", eta) }
            return s
        }
    }

    public var snapshot: Snapshot {
        let c = counts.withLockedValue { $0 }
        return Snapshot(
            keys: c.keys, differences: c.differences, passesDone: c.passesDone, passes: c.passes,
            expectedKeys: c.expectedKeys, seconds: Date().timeIntervalSince(started))
    }
}
