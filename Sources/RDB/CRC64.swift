/// CRC-64/Jones as Redis computes it (reflected, polynomial 0xad93d23594c935a9, init 0,
/// xorout 0; `crc64("123456789") == 0xe9c6d914c4b8d9ca`), eight bytes at a time.
public enum CRC64 {
    static let tables: [UInt64] = {
        var t = [UInt64](repeating: 0, count: 8 * 256)
        let poly: UInt64 = 0x95AC_9329_AC4B_C9B5
        for i in 0..<256 {
            var c = UInt64(i)
            for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ poly : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = t[Int(prev & 0xFF)] ^ (prev >> 8)
            }
        }
        return t
    }()

    public static func update(_ crc: UInt64, _ bytes: UnsafeRawBufferPointer) -> UInt64 {
        guard var p = bytes.baseAddress else { return crc }
        var n = bytes.count
        var c = crc
        tables.withUnsafeBufferPointer { tb in
            let t = tb.baseAddress!
            while n >= 8 {
                c ^= UInt64(littleEndian: p.loadUnaligned(as: UInt64.self))
                c = t[7 * 256 + Int(c & 0xFF)] ^ t[6 * 256 + Int((c >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((c >> 16) & 0xFF)] ^ t[4 * 256 + Int((c >> 24) & 0xFF)]
                    ^ t[3 * 256 + Int((c >> 32) & 0xFF)] ^ t[2 * 256 + Int((c >> 40) & 0xFF)]
                    ^ t[1 * 256 + Int((c >> 48) & 0xFF)] ^ t[Int(c >> 56)]
                p += 8
                n -= 8
            }
            while n > 0 {
                c = t[Int((c ^ UInt64(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                p += 1
                n -= 1
            }
        }
        return c
    }

    public static func checksum(_ bytes: [UInt8]) -> UInt64 { bytes.withUnsafeBytes { update(0, $0) } }
}
