import HashSlots
import SlotdiffCore
import Testing

@Suite struct HashSlotTests {
    @Test func crc16Vector() {
        #expect(Array("123456789".utf8).withUnsafeBytes { HashSlot.crc16($0) } == 0x31C3)
    }

    /// Eight bytes at a time gives what one bit at a time gives, at every length and alignment.
    @Test func crc16EqualsTheBitwiseDefinition() {
        func bitwise(_ bytes: ArraySlice<UInt8>) -> UInt16 {
            var crc: UInt16 = 0
            for b in bytes {
                crc ^= UInt16(b) << 8
                for _ in 0..<8 { crc = crc & 0x8000 != 0 ? crc << 1 ^ 0x1021 : crc << 1 }
            }
            return crc
        }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        let bytes = (0..<100).map { _ -> UInt8 in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        for start in 0..<3 {
            for n in 0...(bytes.count - start) {
                let part = bytes[start..<(start + n)]
                #expect(Array(part).withUnsafeBytes { HashSlot.crc16($0) } == bitwise(part), "length \(n) from \(start)")
            }
        }
    }

    @Test(arguments: [
        ("foo", 12182), ("bar", 5061), ("", 0), ("{user1000}.following", 3443), ("{user1000}.followers", 3443),
        ("foo{}{bar}", 8363), ("foo{{bar}}zap", 4015), ("foo{bar}{zap}", 5061), ("{bar", 4015), ("123456789", 0x31C3 & 0x3FFF),
        ("a}{b}", 3300), ("{a}", 15495), ("}{", 12793), ("{}", 15257)
    ])
    func slots(key: String, slot: Int) {
        #expect(Int(HashSlot.slot(of: Array(key.utf8))) == slot)
    }

    @Test func ranges() {
        #expect(SlotRange(parsing: "0-8191") == SlotRange(0, 8191))
        #expect(SlotRange(parsing: "7") == SlotRange(7, 7))
        #expect(SlotRange(parsing: "10-5") == nil)
        #expect(SlotRange(parsing: "0-16384") == nil)
        #expect(SlotRange(parsing: "x") == nil)
        // N shards cover every slot exactly once.
        for n in [1, 3, 4, 7, 16383, 16384] {
            var covered = [Int](repeating: 0, count: HashSlot.count)
            for i in 0..<n {
                guard let r = SlotRange.shard(i, of: n) else {
                    Issue.record("no shard \(i)/\(n)")
                    continue
                }
                for s in Int(r.lower)...Int(r.upper) { covered[s] += 1 }
            }
            #expect(covered.allSatisfy { $0 == 1 })
        }
        // No such shard: nil, never a trap.
        for (i, n) in [(0, 0), (0, 16385), (0, 20000), (-1, 4), (4, 4), (0, Int.max), (Int.max - 1, Int.max), (0, -3)] {
            #expect(SlotRange.shard(i, of: n) == nil, "\(i)/\(n)")
        }
    }
}

@Suite struct GlobTests {
    @Test(arguments: [
        ("user:*", "user:42", true), ("user:*", "use:42", false), ("h?llo", "hello", true),
        ("h[ae]llo", "hallo", true), ("h[^e]llo", "hello", false), ("h[a-b]llo", "hbllo", true),
        ("*", "", true), ("a\\*", "a*", true), ("a\\*", "ab", false), ("*:*:x", "a:b:x", true)
    ])
    func matches(pattern: String, key: String, expected: Bool) {
        #expect(GlobPattern(pattern).matches(Array(key.utf8)) == expected)
    }
}
