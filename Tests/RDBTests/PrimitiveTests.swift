import SlotdiffCore
import Testing

@testable import RDB

@Suite struct PrimitiveTests {
    @Test func crc64Vector() {
        #expect(CRC64.checksum(Array("123456789".utf8)) == 0xE9C6_D914_C4B8_D9CA)
        // Sliced and byte-wise paths agree at every split.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let whole = CRC64.checksum(data)
        for split in [0, 1, 7, 8, 9, 500, 999] {
            let a = data[0..<split].withUnsafeBytes { CRC64.update(0, $0) }
            #expect(data[split...].withUnsafeBytes { CRC64.update(a, $0) } == whole)
        }
    }

    @Test func lzfRoundTripsKnownData() {
        // "aaaaaaaaaa…": a literal 'a' then a back-reference of length 9 at distance 1.
        let compressed: [UInt8] = [0x00, 0x61, 0xE0, 0x00, 0x00]
        var out = [UInt8](repeating: 0, count: 1 + 7 + 2)
        let ok = compressed.withUnsafeBytes { c in out.withUnsafeMutableBytes { LZF.decompress(c, into: $0) } }
        #expect(ok)
        #expect(out == Array(repeating: 0x61, count: 10))
        // Back-reference before the start of the output is refused, not followed.
        var small = [UInt8](repeating: 0, count: 10)
        let bad: [UInt8] = [0xE0, 0x00, 0x05]
        #expect(!bad.withUnsafeBytes { c in small.withUnsafeMutableBytes { LZF.decompress(c, into: $0) } })
    }

    @Test func lengthEncodings() throws {
        let bytes: [UInt8] = [0x05, 0x41, 0x02, 0x80, 0x00, 0x01, 0x00, 0x00, 0x81, 0, 0, 0, 1, 0, 0, 0, 0, 0xC0]
        let input = bytes.withUnsafeBytes { RDBInput(name: "t", bytes: $0) }
        #expect(try input.length("a").value == 5)
        #expect(try input.length("b").value == 0x102)
        #expect(try input.length("c").value == 0x10000)
        #expect(try input.length("d").value == 1 << 32)
        let enc = try input.length("e")
        #expect(enc.encoded && enc.value == 0)
        #expect(throws: RDBError.self) { try input.length("f") }
    }

    @Test func truncatedInputNamesWhatWasExpected() {
        let bytes: [UInt8] = [0x81, 0, 0]
        let input = bytes.withUnsafeBytes { RDBInput(name: "payload", bytes: $0) }
        do {
            _ = try input.length("list length")
            Issue.record("no error")
        } catch let e as RDBError {
            #expect(e.description.contains("payload"))
            #expect(e.description.contains("list length"))
        } catch { Issue.record("\(error)") }
    }
}
