import Foundation

/// A cluster hash slot, 0...16383: CRC16 (XMODEM) of the key, or of its `{hash tag}`, modulo
/// 16384 — the one slot type of the whole tool, at the bottom of its dependency graph. Standalone
/// servers have slots too: keys are bucketed by slot on the client so that every source, live or
/// file, is partitioned the same way. Hot paths keep the bare `UInt16` (`HashSlot.slot(of:)`);
/// the cluster map keeps ranges of slots as `ClosedRange<HashSlot>`.
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
        rawValue = Self.slot(of: Array(key))
    }

    public static func < (a: HashSlot, b: HashSlot) -> Bool { a.rawValue < b.rawValue }

    public func distance(to other: HashSlot) -> Int { Int(other.rawValue) - Int(rawValue) }

    /// Steps past the ends only as far as a range's end index needs (`max + 1`).
    public func advanced(by n: Int) -> HashSlot { HashSlot(unchecked: UInt16(Int(rawValue) + n)) }

    public var description: String { String(rawValue) }

    /// Eight tables of 256: table `k` holds what a byte contributes followed by `k` zero bytes,
    /// so eight bytes are folded in with eight independent lookups (slicing-by-8) instead of a
    /// chain of eight dependent ones. Table 0 is the classic byte-at-a-time table.
    @usableFromInline
    static let tables: [UInt16] = {
        var t = [UInt16](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var crc = UInt16(i) << 8
            for _ in 0..<8 { crc = (crc & 0x8000) != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
            t[i] = crc
        }
        for k in 1..<8 {
            for v in 0..<256 {
                let p = t[(k - 1) * 256 + v]
                t[k * 256 + v] = (p << 8) ^ t[Int(p >> 8)]
            }
        }
        return t
    }()

    /// CRC16-XMODEM as Redis Cluster uses it (`crc16("123456789") == 0x31C3`).
    @inlinable
    public static func crc16(_ bytes: UnsafeRawBufferPointer) -> UInt16 {
        var crc: UInt16 = 0
        tables.withUnsafeBufferPointer { t in
            let n = bytes.count
            var i = 0
            while n - i >= 8 {
                let w = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
                @inline(__always) func at(_ k: Int, _ byte: UInt64) -> UInt16 { t[k << 8 | Int(byte & 0xFF)] }
                // The register's two bytes go in with the first two bytes of the word.
                let head = w ^ UInt64(crc >> 8) ^ UInt64(crc & 0xFF) << 8
                crc = at(7, head) ^ at(6, head >> 8) ^ at(5, w >> 16) ^ at(4, w >> 24)
                crc ^= at(3, w >> 32) ^ at(2, w >> 40) ^ at(1, w >> 48) ^ at(0, w >> 56)
                i += 8
            }
            while i < n {
                crc = (crc << 8) ^ t[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ bytes[i])]
                i += 1
            }
        }
        return crc
    }

    /// The slot of a key: only the part between the first `{` and the next `}` is hashed when
    /// that part is non-empty.
    @inlinable
    public static func slot(of key: UnsafeRawBufferPointer) -> UInt16 {
        // memchr: the generic search took a fifth of a dump load's slot work.
        guard let base = key.baseAddress, let open = memchr(base, Int32(UInt8(ascii: "{")), key.count) else {
            return crc16(key) & 0x3FFF
        }
        let start = base.distance(to: UnsafeRawPointer(open)) + 1
        if let close = memchr(base + start, Int32(UInt8(ascii: "}")), key.count - start) {
            let end = base.distance(to: UnsafeRawPointer(close))
            if end > start { return crc16(UnsafeRawBufferPointer(start: base + start, count: end - start)) & 0x3FFF }
        }
        return crc16(key) & 0x3FFF
    }

    @inlinable
    public static func slot(of key: [UInt8]) -> UInt16 { key.withUnsafeBytes { slot(of: $0) } }

    public static func slot<C: Collection>(of key: C) -> UInt16 where C.Element == UInt8 {
        Array(key).withUnsafeBytes { slot(of: $0) }
    }
}

/// An inclusive range of hash slots, written `A-B` (or a single slot `A`) on the command line.
public struct SlotRange: Hashable, Sendable, CustomStringConvertible {
    public var lower: UInt16
    public var upper: UInt16

    public init(_ lower: UInt16, _ upper: UInt16) {
        self.lower = lower
        self.upper = upper
    }

    public static let all = SlotRange(0, UInt16(HashSlot.count - 1))

    public init?(parsing text: String) {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2,
            let a = UInt16(parts[0].trimmingCharacters(in: .whitespaces)),
            let b = UInt16(parts[parts.count - 1].trimmingCharacters(in: .whitespaces)),
            a <= b, Int(b) < HashSlot.count
        else { return nil }
        self.init(a, b)
    }

    /// The I-th (0-based) of N contiguous, near-equal ranges covering all slots; nil unless
    /// 1 ≤ N ≤ 16384 (more ranges than slots would leave some empty) and 0 ≤ I < N.
    public static func shard(_ index: Int, of n: Int) -> SlotRange? {
        guard n >= 1, n <= HashSlot.count, index >= 0, index < n else { return nil }
        let lo = HashSlot.count * index / n
        let hi = HashSlot.count * (index + 1) / n - 1
        return SlotRange(UInt16(lo), UInt16(hi))
    }

    @inlinable
    public func contains(_ slot: UInt16) -> Bool { slot >= lower && slot <= upper }

    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }
}
