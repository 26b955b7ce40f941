/// LZF decompression (the format Redis uses for strings in dump files).
enum LZF {
    /// Decompresses `input` into exactly `output.count` bytes; false when the data is malformed.
    static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Bool {
        guard let ip = input.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return output.count == 0 }
        guard let op = output.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return input.count == 0 }
        let inEnd = input.count
        let outEnd = output.count
        var i = 0
        var o = 0
        while i < inEnd {
            let ctrl = Int(ip[i])
            i += 1
            if ctrl < 32 {
                let len = ctrl + 1
                if i + len > inEnd || o + len > outEnd { return false }
                if len <= 16 {
                    for k in 0..<len { op[o + k] = ip[i + k] }
                } else {
                    (op + o).update(from: ip + i, count: len)
                }
                i += len
                o += len
                continue
            }
            var len = ctrl >> 5
            if len == 7 {
                if i >= inEnd { return false }
                len += Int(ip[i])
                i += 1
            }
            if i >= inEnd { return false }
            let back = ((ctrl & 0x1F) << 8) + Int(ip[i]) + 1
            i += 1
            len += 2
            if back > o || o + len > outEnd { return false }
            let ref = o - back
            if back >= len {
                if len <= 16 {
                    for k in 0..<len { op[o + k] = op[ref + k] }
                } else {
                    (op + o).update(from: op + ref, count: len)
                }
            } else if back == 1 {
                (op + o).update(repeating: op[ref], count: len)
            } else {
                // Overlapping reference: the pattern of `back` bytes repeats; copy it in
                // non-overlapping pieces that double in size.
                var done = 0
                var step = back
                while done < len {
                    let n = min(step, len - done)
                    (op + o + done).update(from: op + ref, count: n)
                    done += n
                    step += n
                }
            }
            o += len
        }
        return o == outEnd
    }
}
