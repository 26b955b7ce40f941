import Foundation

/// Counters a check updates as it goes, read by a progress display.
public final class CheckProgress: @unchecked Sendable {
    private let lock = NSLock()
    private var _keys = 0
    private var _differences = 0
    private var _passesDone = 0
    private var _passes = 1
    public let started = Date()

    public init() {}

    public func addKeys(_ n: Int) { lock.withLock { _keys += n } }
    public func addDifference() { lock.withLock { _differences += 1 } }
    public func passDone() { lock.withLock { _passesDone += 1 } }
    public func setPasses(_ n: Int) { lock.withLock { _passes = n } }

    public struct Snapshot: Sendable {
        public var keys: Int
        public var differences: Int
        public var passesDone: Int
        public var passes: Int
        public var seconds: Double

        public var keysPerSecond: Double { seconds > 0 ? Double(keys) / seconds : 0 }

        /// Seconds left, from the share of slot-range passes done.
        public var eta: Double? { passesDone > 0 && passesDone < passes ? seconds / Double(passesDone) * Double(passes - passesDone) : nil }

        public var line: String {
            var s = String(format: "%d keys read, %.0f keys/s, %d/%d slot-range passes, %d differences so far",
                           keys, keysPerSecond, passesDone, passes, differences)
            if let eta { s += String(format: ", about %.0f s left", eta) }
            return s
        }
    }

    public var snapshot: Snapshot {
        lock.withLock {
            Snapshot(keys: _keys, differences: _differences, passesDone: _passesDone, passes: _passes,
                     seconds: Date().timeIntervalSince(started))
        }
    }
}
