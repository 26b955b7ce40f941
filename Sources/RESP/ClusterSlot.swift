import SlotdiffCore

/// A Redis Cluster hash slot, 0...16383: CRC16-XMODEM of the key, or of its `{hash tag}`,
/// modulo 16384. Ranges of slots are `ClosedRange<ClusterSlot>`.
public struct ClusterSlot: RawRepresentable, Hashable, Comparable, Strideable, Sendable, CustomStringConvertible {
    public static let count = 16384
    public static let min = ClusterSlot(unchecked: 0)
    public static let max = ClusterSlot(unchecked: UInt16(count - 1))
    public static let all: ClosedRange<ClusterSlot> = min...max

    public let rawValue: UInt16

    public init?(rawValue: UInt16) {
        guard Int(rawValue) < Self.count else { return nil }
        self.rawValue = rawValue
    }

    public init?(_ value: Int) {
        guard (0..<Self.count).contains(value) else { return nil }
        self.rawValue = UInt16(value)
    }

    init(unchecked value: UInt16) { rawValue = value }

    /// The slot of a key (bytes, never text: keys are binary-safe); computed by the one
    /// slot function the whole tool uses.
    public init(key: some Collection<UInt8>) {
        rawValue = SlotdiffCore.HashSlot.slot(of: Array(key))
    }

    public static func < (a: ClusterSlot, b: ClusterSlot) -> Bool { a.rawValue < b.rawValue }

    public func distance(to other: ClusterSlot) -> Int { Int(other.rawValue) - Int(rawValue) }

    /// Steps past the ends only as far as a range's end index needs (`max + 1`).
    public func advanced(by n: Int) -> ClusterSlot { ClusterSlot(unchecked: UInt16(Int(rawValue) + n)) }

    public var description: String { String(rawValue) }
}
