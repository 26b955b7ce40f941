/// Pieces of RDB encoding for values built byte by byte in tests.
enum DumpBytes {
    /// An RDB length: 6-bit, 14-bit, or 32-bit big-endian.
    static func length(_ n: Int) -> [UInt8] {
        n < 64 ? [UInt8(n)] : n < 16384 ? [0x40 | UInt8(n >> 8), UInt8(n & 0xFF)] : [0x80] + (0..<4).map { UInt8(truncatingIfNeeded: n >> (8 * (3 - $0))) }
    }

    /// A value (type byte and body) made a DUMP payload: RDB version 11, no checksum.
    static func payload(_ value: [UInt8]) -> [UInt8] { value + [11, 0] + [UInt8](repeating: 0, count: 8) }
}
