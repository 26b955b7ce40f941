/// LZF decompression (the format Redis uses for strings in dump files).
enum LZF {
    /// Decompresses `input` into exactly `output.count` bytes; nil when the data is malformed.
    static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let ip0 = input.baseAddress else { return output.count == 0 }
        guard let op0 = output.baseAddress else { return input.count == 0 }
        let inEnd = input.count
        let outEnd = output.count
        var i = 0
        var o = 0
        while i < inEnd {
            let ctrl = Int(ip0.load(fromByteOffset: i, as: UInt8.self))
            i += 1
            if ctrl < 32 {
                let len = ctrl + 1
                if i + len > inEnd || o + len > outEnd { return false }
                (op0 + o).copyMemory(from: ip0 + i, byteCount: len)
                i += len
                o += len
            } else {
                var len = ctrl >> 5
                if len == 7 {
                    if i >= inEnd { return false }
                    len += Int(ip0.load(fromByteOffset: i, as: UInt8.self))
                    i += 1
                }
                if i >= inEnd { return false }
                let back = ((ctrl & 0x1F) << 8) + Int(ip0.load(fromByteOffset: i, as: UInt8.self)) + 1
                i += 1
                len += 2
                if back > o || o + len > outEnd { return false }
                var ref = o - back
                if back >= len {
                    (op0 + o).copyMemory(from: op0 + ref, byteCount: len)
                    o += len
                } else {
                    for _ in 0..<len {   // overlapping copy: byte by byte
                        op0.storeBytes(of: op0.load(fromByteOffset: ref, as: UInt8.self), toByteOffset: o, as: UInt8.self)
                        o += 1
                        ref += 1
                    }
                }
            }
        }
        return o == outEnd
    }
}
