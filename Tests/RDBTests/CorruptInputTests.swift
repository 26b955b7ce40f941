import Foundation
import RDB
import SlotdiffCore
import TestSupport
import Testing

/// Truncated and bit-flipped dumps: always a clear error naming the input and an offset (or,
/// for a flip the format cannot detect, such as one inside a value of a file without a
/// checksum, a successful parse) — never a crash or a hang.
@Suite struct CorruptInputTests {
    static let samples = [
        "peers/redis__librdb/test__dumps__misc_with_stream.rdb",
        "peers/sripathikrishnan__redis-rdb-tools/tests__dumps__redis_50_with_streams.rdb",
        "peers/redis__redis/tests__assets__encodings.rdb",
        "peers/redis__librdb/test__dumps__hash_lp_with_hexpire_v12.rdb",
        "peers/redis__librdb/test__dumps__stream_v13_idmp.rdb",
        "peers/redis__librdb/test__dumps__quicklist2_v11.rdb"
    ]

    static func offsets(_ n: Int) -> [Int] {
        let step = max(1, n / 300)
        return Array(stride(from: 0, to: n, by: step)) + [n - 1, n - 8, n - 9].filter { $0 > 0 }
    }

    func parse(_ bytes: [UInt8], name: String) throws {
        let input = bytes.withUnsafeBytes { RDBInput(name: name, bytes: $0) }
        try RDBFileParser(input: input).parse(digester: CanonicalDigester()) { _ in }
    }

    @Test(arguments: samples)
    func truncatedAtManyOffsets(_ file: String) throws {
        let path = TestPaths.fixture(file)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        for cut in Self.offsets(bytes.count) {
            do {
                try parse(Array(bytes[0..<cut]), name: path)
                Issue.record("\(file) cut at \(cut) of \(bytes.count) bytes parsed without error")
            } catch let e as RDBError {
                #expect(e.description.hasPrefix(path))
                #expect(e.offset >= 0 && e.offset <= Int64(bytes.count), "offset \(e.offset) for a cut at \(cut)")
            }
        }
    }

    @Test(arguments: samples)
    func flippedBytes(_ file: String) throws {
        let path = TestPaths.fixture(file)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        // A file with a CRC64 (RDB 5+, a nonzero trailer): every flip, in the data or in the
        // checksum itself, must be caught, with the input named and an offset inside the file.
        // Without one (RDB 4), a flip inside a value may parse: only no crash is asked.
        let version = Int(String(decoding: bytes[5..<9], as: UTF8.self)) ?? 0
        let checked = version >= 5 && bytes.suffix(8).contains { $0 != 0 }
        var refused = 0
        for at in Self.offsets(bytes.count) {
            for mask: UInt8 in [0x01, 0x80, 0xFF] {
                var b = bytes
                b[at] ^= mask
                do {
                    try parse(b, name: path)
                    if checked { Issue.record("\(file): byte \(at) of \(bytes.count) flipped with \(mask) parsed without error") }
                } catch let e as RDBError {
                    refused += 1
                    #expect(e.description.hasPrefix(path))
                    #expect(e.offset >= 0 && e.offset <= Int64(bytes.count))
                }
            }
        }
        #expect(refused > 0)
    }

    /// Bytes after the EOF marker and checksum (two dumps joined, a file written over a longer
    /// one) are an error at the offset where the dump ended, from memory, a file and a .zst.
    @Test(arguments: ["drift-target.rdb", "peers/redis__redis/tests__assets__encodings.rdb"])
    func bytesAfterTheEndAreAnError(_ file: String) throws {
        let path = TestPaths.fixture(file)
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let checksum = !bytes.starts(with: Array("REDIS0004".utf8))
        try parse(bytes, name: path)
        let dir = TestPaths.temporaryDirectory()
        for extra in [[UInt8(0)], [UInt8](repeating: 0x41, count: 17), bytes, [UInt8](repeating: 0, count: 3 << 20)] {
            let name = extra.count == 1 ? "1 byte" : "\(extra.count) bytes"
            func check(_ body: () throws -> Void) {
                do {
                    try body()
                    Issue.record("\(file) with \(name) appended parsed without error")
                } catch let e as RDBError {
                    #expect(e.offset == Int64(bytes.count), "\(e)")
                    #expect(e.reason.hasPrefix("\(name) after the end of the dump (the EOF marker\(checksum ? " and checksum" : ""))"), "\(e)")
                } catch {
                    Issue.record("\(error)")
                }
            }
            check { try parse(bytes + extra, name: path) }
            let long = dir.appendingPathComponent("long.rdb").path
            try Data(bytes + extra).write(to: URL(fileURLWithPath: long))
            check { try RDBFileParser(path: long).parse(digester: CanonicalDigester()) { _ in } }
            let zst = long + ".zst"
            #expect(try run("/usr/bin/zstd", ["-q", "-f", long, "-o", zst]).status == 0)
            check { try RDBFileParser(path: zst).parse(digester: CanonicalDigester()) { _ in } }
        }
    }

    @Test func garbageIsNotADump() throws {
        for junk in [[UInt8](), Array("hello world".utf8), Array("REDIS00x1".utf8), Array("REDIS0014xx".utf8), Array("VALKEY081".utf8)] {
            #expect(throws: RDBError.self) { try parse(junk, name: "junk") }
        }
    }
}
