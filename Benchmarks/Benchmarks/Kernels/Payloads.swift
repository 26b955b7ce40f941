import Foundation
import RDB
import SlotdiffCore

/// Each collection benchmark decodes this many payloads of `itemsPerPayload` items per
/// iteration: 1,000 items, so with `scalingFactor: .kilo` the scaled figures read per item.
let itemsPerPayload = 100
let payloadsPerIteration = 1000 / itemsPerPayload

/// Short elements as a cache or session store holds them: words, ids, small and large numbers.
enum Data100 {
    static func word(_ i: Int) -> String {
        let words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet"]
        return words[(i * 7) % words.count] + "-" + words[(i * 3 + 1) % words.count]
    }

    /// Values: two in three short texts, one in three integers of growing width.
    static func value(_ i: Int) -> String { i % 3 == 0 ? String(i * i * 977 - 4000) : "\(word(i)):\(i)" }

    static let hashFields = (0..<itemsPerPayload).map { "field:\($0)" }
    static let hashValues = (0..<itemsPerPayload).map(value)
    static let setMembers = (0..<itemsPerPayload).map { $0 % 4 == 0 ? String(100_000 + $0 * 131) : "member:\(word($0)):\($0)" }
    static let zsetMembers = (0..<itemsPerPayload).map { "player:\($0)" }
    /// Scores as a server writes them in a listpack: integral ones as integers, others as text.
    static let zsetScores = (0..<itemsPerPayload).map { $0 % 2 == 0 ? String($0 * 10) : "\($0).5" }
    static let listElements = (0..<itemsPerPayload).map(value)

    static func pairs(_ a: [String], _ b: [String]) -> [Item] { zip(a, b).flatMap { [Item($0), Item($1)] } }
}

/// DUMP payloads of small collections, in their compact encodings.
struct CollectionPayloads {
    let hashListpack: [UInt8]
    let setListpack: [UInt8]
    let zsetListpack: [UInt8]
    let hashZiplist: [UInt8]
    let zsetZiplist: [UInt8]
    let listZiplist: [UInt8]

    /// RDB versions: 11 (Redis 7.2) writes set listpacks; 9 (Redis 6.0) still wrote ziplists.
    static let listpackVersion: UInt16 = 11, ziplistVersion: UInt16 = 9

    init() {
        typealias D = Data100
        let hash = D.pairs(D.hashFields, D.hashValues), zset = D.pairs(D.zsetMembers, D.zsetScores)
        let set = D.setMembers.map(Item.init), list = D.listElements.map(Item.init)
        let lp = Self.listpackVersion, zl = Self.ziplistVersion
        hashListpack = Dump.blob(type: 16, Listpack.encode(hash), version: lp)
        setListpack = Dump.blob(type: 20, Listpack.encode(set), version: lp)
        zsetListpack = Dump.blob(type: 17, Listpack.encode(zset), version: lp)
        hashZiplist = Dump.blob(type: 13, Ziplist.encode(hash), version: zl)
        zsetZiplist = Dump.blob(type: 12, Ziplist.encode(zset), version: zl)
        listZiplist = Dump.blob(type: 10, Ziplist.encode(list), version: zl)
        check()
    }

    /// The same data in the plain encodings (hashtable hash, set, skiplist zset, linked list).
    static func plain() -> (hash: [UInt8], set: [UInt8], zset: [UInt8], list: [UInt8]) {
        typealias D = Data100
        var hash: [UInt8] = [], set: [UInt8] = [], zset: [UInt8] = [], list: [UInt8] = []
        hash.appendRDBLength(itemsPerPayload)
        set.appendRDBLength(itemsPerPayload)
        zset.appendRDBLength(itemsPerPayload)
        list.appendRDBLength(itemsPerPayload)
        for i in 0..<itemsPerPayload {
            hash.appendRDBString(Array(D.hashFields[i].utf8))
            hash.appendRDBString(Array(D.hashValues[i].utf8))
            set.appendRDBString(Array(D.setMembers[i].utf8))
            zset.appendRDBString(Array(D.zsetMembers[i].utf8))
            zset.appendLE(Double(D.zsetScores[i])!.bitPattern)
            list.appendRDBString(Array(D.listElements[i].utf8))
        }
        let v = listpackVersion
        return (
            Dump.payload(type: 4, value: hash, version: v), Dump.payload(type: 2, value: set, version: v),
            Dump.payload(type: 5, value: zset, version: v), Dump.payload(type: 1, value: list, version: v)
        )
    }

    /// Stops the run unless every compact payload decodes to all its items and to the digest of
    /// the same data in its plain encoding.
    func check() {
        let p = Self.plain()
        let cases: [(String, [UInt8], [UInt8])] = [
            ("hash listpack", hashListpack, p.hash), ("set listpack", setListpack, p.set),
            ("zset listpack", zsetListpack, p.zset), ("hash ziplist", hashZiplist, p.hash),
            ("zset ziplist", zsetZiplist, p.zset), ("list ziplist", listZiplist, p.list)
        ]
        for (name, compact, plain) in cases {
            let (a, n) = digest(compact), (b, _) = digest(plain)
            precondition(n == itemsPerPayload, "\(name): \(n) items decoded, \(itemsPerPayload) written")
            precondition(a == b, "\(name): digest \(a) differs from the plain encoding's \(b)")
        }
    }
}

/// Decodes one DUMP payload: its digest and item count (stops the run on a decoding error).
func digest(_ payload: [UInt8]) -> (Hash128, UInt64) {
    let d = CanonicalDigester()
    do {
        try payload.withUnsafeBytes { _ = try DumpPayload.decode($0, into: d) }
    } catch {
        preconditionFailure("payload does not decode: \(error)")
    }
    return (d.finish(), d.count)
}

/// A flat run of short byte strings (keys, members), read in place without per-key arrays.
struct ByteStrings {
    var bytes: [UInt8] = []
    var ranges: [Range<Int>] = []

    init(_ strings: some Sequence<String>) {
        for s in strings {
            let start = bytes.count
            bytes.append(contentsOf: s.utf8)
            ranges.append(start..<bytes.count)
        }
    }

    var count: Int { ranges.count }
}

/// The LZF-compressed body of a string value in a fixture dump, as its writer compressed it
/// (the project decompresses LZF but has no compressor): its key's value is located with the
/// dump parser's offsets and its string header read here.
struct LZFSample {
    let compressed: [UInt8]
    let rawLength: Int
    let digest: Hash128

    init(fixture: String, key: String) throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../Fixtures/\(fixture)").standardized.path
        let file = try [UInt8](Foundation.Data(contentsOf: URL(fileURLWithPath: path)))
        let wanted = Array(key.utf8)
        var start: Int64?, end: Int64?, found: Hash128?
        try file.withUnsafeBytes { bytes in
            let input = RDBInput(name: path, bytes: bytes)
            try RDBFileParser(input: input).parse(
                digester: CanonicalDigester(),
                beforeValue: { _, k in if k == wanted && start == nil { start = input.offset } },
                onKey: { e in
                    if start != nil && end == nil {
                        end = input.offset
                        found = e.digest
                    }
                })
        }
        guard let start, let end, let found else { throw LZFSampleError("\(key) is not in \(path)") }
        var at = Int(start)
        // 0xC3: an LZF string, then its compressed and uncompressed lengths.
        guard at < Int(end), file[at] == 0xC3 else { throw LZFSampleError("\(key) in \(path) is not LZF-compressed") }
        at += 1
        func length() -> Int {
            let b = file[at]
            switch b >> 6 {
            case 0:
                at += 1
                return Int(b)
            case 1:
                defer { at += 2 }
                return Int(b & 0x3F) << 8 | Int(file[at + 1])
            default:  // 0x80: 32 bits, big-endian (dump strings are far below 4 GiB)
                defer { at += 5 }
                return file[(at + 1)..<(at + 5)].reduce(0) { $0 << 8 | Int($1) }
            }
        }
        let c = length()
        rawLength = length()
        compressed = Array(file[at..<(at + c)])
        digest = found
        guard at + c == Int(end) else { throw LZFSampleError("\(key) in \(path): the LZF string does not end the value") }
    }
}

struct LZFSampleError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
