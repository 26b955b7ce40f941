/// A Redis Cluster hash slot, 0...16383: CRC16-XMODEM of the key, or of its `{hash tag}`,
/// modulo 16384. Ranges of slots are `ClosedRange<HashSlot>`.
public struct HashSlot: RawRepresentable, Hashable, Comparable, Strideable, Sendable, CustomStringConvertible {
    public static let count = 16384
    public static let min = HashSlot(unchecked: 0)
    public static let max = HashSlot(unchecked: UInt16(count - 1))
    public static let all: ClosedRange<HashSlot> = min...max

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

    /// The slot of a key (bytes, never text: keys are binary-safe).
    public init(key: some Collection<UInt8>) {
        let tagged = Self.hashTag(of: Array(key)) ?? Array(key)[...]
        rawValue = Self.crc16(tagged) & 0x3FFF
    }

    /// The part of a key that is hashed when it has a hash tag: the bytes between the first
    /// `{` and the first `}` after it, when that part is non-empty; otherwise nil.
    public static func hashTag(of key: [UInt8]) -> ArraySlice<UInt8>? {
        guard let open = key.firstIndex(of: UInt8(ascii: "{")),
              let close = key[(open + 1)...].firstIndex(of: UInt8(ascii: "}")),
              close > open + 1 else { return nil }
        return key[(open + 1)..<close]
    }

    /// CRC16-XMODEM (polynomial 0x1021, initial value 0), table driven.
    /// `crc16("123456789") == 0x31C3`.
    public static func crc16(_ bytes: some Sequence<UInt8>) -> UInt16 {
        var crc: UInt16 = 0
        for b in bytes {
            crc = (crc << 8) ^ crcTable[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ b)]
        }
        return crc
    }

    private static let crcTable: [UInt16] = (0..<256).map { i in
        var crc = UInt16(i) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }

    public static func < (a: HashSlot, b: HashSlot) -> Bool { a.rawValue < b.rawValue }

    public func distance(to other: HashSlot) -> Int { Int(other.rawValue) - Int(rawValue) }

    /// Steps past the ends only as far as a range's end index needs (`max + 1`).
    public func advanced(by n: Int) -> HashSlot { HashSlot(unchecked: UInt16(Int(rawValue) + n)) }

    public var description: String { String(rawValue) }
}
