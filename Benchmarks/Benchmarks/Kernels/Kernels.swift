import Benchmark
import HashSlots
import NIOCore
@_spi(Benchmarks) import RDB
import RESP
import SlotdiffCore

// Every benchmark does 1,000 units of work per iteration (items, keys, replies, KiB) and sets
// `scalingFactor: .kilo`, so the scaled figures read per unit (ns per item); `--scale` shows them
// per iteration instead, as Scripts/bench-kernels does for mallocs, mostly under one per unit.
// Only malloc counts besides time: the ARC counters need the runtime interposer, left out.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        timeUnits: .nanoseconds,
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 1_000_000
    )
    collectionWalks()
    digests()
    lzf()
    resp()
    keyTable()
}

/// Listpack and ziplist walks: DUMP payloads of 100-item collections decoded into the digest,
/// as a live check does for each small key (CRC64 of the payload included).
func collectionWalks() {
    let p = CollectionPayloads()
    let cases = [
        ("listpack walk: hash, 100 fields (per field)", p.hashListpack),
        ("listpack walk: set, 100 members (per member)", p.setListpack),
        ("listpack walk: zset, 100 members (per member)", p.zsetListpack),
        ("ziplist walk: hash, 100 fields (per field)", p.hashZiplist),
        ("ziplist walk: zset, 100 members (per member)", p.zsetZiplist),
        ("ziplist walk: list, 100 elements (per element)", p.listZiplist)
    ]
    let d = CanonicalDigester()
    for (name, payload) in cases {
        Benchmark(name) { _ in
            payload.withUnsafeBytes { bytes in
                for _ in 0..<payloadsPerIteration {
                    do { try DumpPayload.decode(bytes, into: d) } catch { fatalError("\(error)") }
                    blackHole(d.finish())
                }
            }
        }
    }
}

/// The canonical digest of small elements, fed as the decoders feed it.
func digests() {
    let members = ByteStrings((0..<1000).map { "member:\($0 * 7919)" })
    let keys = ByteStrings(
        (0..<1000).map {
            let s = "user:\($0 * 104_729)"
            return s + String(repeating: "x", count: 16 - s.utf8.count)
        })
    let d = CanonicalDigester()

    // Unordered: each member hashed on its own, the hashes summed.
    Benchmark("digest: set of 1000 short members (per member)") { _ in
        members.bytes.withUnsafeBytes { all in
            d.begin(.set)
            var w = ItemWriter(d)
            for r in members.ranges {
                w.beginItem()
                w.component(UnsafeRawBufferPointer(rebasing: all[r]))
                w.endItem()
            }
            w.finish()
            blackHole(d.finish())
        }
    }
    // Integers, as listpacks and intsets hold them: hashed as their decimal text.
    Benchmark("digest: set of 1000 integer members (per member)") { _ in
        d.begin(.set)
        var w = ItemWriter(d)
        for i in 0..<1000 {
            w.beginItem()
            w.component(int: Int64(i &* 7919))
            w.endItem()
        }
        w.finish()
        blackHole(d.finish())
    }
    // Ordered: the elements streamed into one hash state.
    Benchmark("digest: list of 1000 short elements (per element)") { _ in
        members.bytes.withUnsafeBytes { all in
            d.begin(.list)
            for r in members.ranges { d.element(UnsafeRawBufferPointer(rebasing: all[r])) }
            blackHole(d.finish())
        }
    }
    Benchmark("digest: Hash128 of a 16-byte key (per key)") { _ in
        keys.bytes.withUnsafeBytes { all in
            for r in keys.ranges { blackHole(Hash128.of(UnsafeRawBufferPointer(rebasing: all[r]))) }
        }
    }
    // The entry the dump and live readers call, on the key where it lies.
    Benchmark("hash slot of a 16-byte key (per key)") { _ in
        keys.bytes.withUnsafeBytes { all in
            for r in keys.ranges { blackHole(HashSlot.slot(of: UnsafeRawBufferPointer(rebasing: all[r]))) }
        }
    }
}

/// LZF decompression of a 4 KiB text string from a fixture dump, 250 times an iteration:
/// 1,000 KiB out, so the scaled time reads per KiB of output.
func lzf() {
    let sample: LZFSample
    do { sample = try LZFSample(fixture: "dataset-redis7.rdb", key: "str:lzf:4096") } catch { fatalError("\(error)") }
    precondition(sample.rawLength == 4096, "str:lzf:4096 holds \(sample.rawLength) bytes")
    let out = UnsafeMutableRawBufferPointer.allocate(byteCount: sample.rawLength, alignment: 16)
    // The output must be the string the dump parser read: its digest is compared once.
    let ok = sample.compressed.withUnsafeBytes { lzfDecompress($0, into: out) }
    let d = CanonicalDigester()
    d.begin(.string)
    d.string(UnsafeRawBufferPointer(out))
    precondition(ok && d.finish() == sample.digest, "LZF output differs from the dump parser's")
    let compressed = sample.compressed

    Benchmark("LZF decompress: 4 KiB text, \(compressed.count) bytes in (per KiB out)") { _ in
        compressed.withUnsafeBytes { input in
            for _ in 0..<(1000 * 1024 / sample.rawLength) { blackHole(lzfDecompress(input, into: out)) }
        }
    }
}

/// RESP reply parsing on a ByteBuffer: a SCAN reply and pipelined DUMP replies.
func resp() {
    let parser = RESPParser()
    var scan = ByteBuffer()
    scan.writeString("*2\r\n$5\r\n17408\r\n*1000\r\n")
    for i in 0..<1000 {
        let key = "session:\(i * 7919):profile"
        scan.writeString("$\(key.utf8.count)\r\n\(key)\r\n")
    }
    // Replies to DUMP as a live read sends them, 512 keys a batch; two batches (1,024 replies)
    // would not read per reply, so 1,000: strings of 16-112 bytes, as most keys are.
    var dumps = ByteBuffer()
    for i in 0..<1000 {
        var value: [UInt8] = []
        value.appendRDBString(Array(Data100.value(i).utf8) + Array(repeating: UInt8(ascii: "x"), count: 16 + (i * 37) % 97))
        let payload = Dump.payload(type: 0, value: value, version: CollectionPayloads.listpackVersion)
        dumps.writeString("$\(payload.count)\r\n")
        dumps.writeBytes(payload)
        dumps.writeString("\r\n")
    }

    Benchmark("RESP parse: SCAN reply with 1000 keys (per key)") { _ in
        var b = scan
        do { blackHole(try parser.parse(&b)) } catch { fatalError("\(error)") }
    }
    Benchmark("RESP parse: 1000 pipelined DUMP replies (per reply)") { _ in
        var b = dumps
        var n = 0
        do {
            while let v = try parser.parse(&b) {
                blackHole(v)
                n += 1
            }
        } catch { fatalError("\(error)") }
        precondition(n == 1000)
    }
}

/// The key table a dump compare fills: inserts into a table sized ahead, and lookups of keys
/// that are there (a compare looks up each key of the second side).
func keyTable() {
    let keys = ByteStrings((0..<1000).map { "user:\($0 * 104_729):cart" })
    let slots = keys.bytes.withUnsafeBytes { all in keys.ranges.map { HashSlot.slot(of: UnsafeRawBufferPointer(rebasing: all[$0])) } }
    let digest = Hash128(low: 1, high: 2)

    Benchmark("key table: insert into a fresh table (per key)") { _ in
        let t = KeyTable(origin: "bench", expectedCount: keys.count)
        keys.bytes.withUnsafeBytes { all in
            for (i, r) in keys.ranges.enumerated() {
                t.insert(db: 0, key: UnsafeRawBufferPointer(rebasing: all[r]), slot: slots[i], type: .hash, expireMs: nil, digest: digest)
            }
        }
        blackHole(t.count)
    }

    // 100k keys, of which the 1,000 looked up are every 100th.
    let big = KeyTable(origin: "bench", expectedCount: 100_000)
    let all = ByteStrings((0..<100_000).map { "user:\($0 * 104_729):cart" })
    all.bytes.withUnsafeBytes { bytes in
        for r in all.ranges {
            big.insert(db: 0, key: UnsafeRawBufferPointer(rebasing: bytes[r]), slot: 0, type: .hash, expireMs: nil, digest: digest)
        }
    }
    let probes = ByteStrings(stride(from: 0, to: 100_000, by: 100).map { "user:\($0 * 104_729):cart" })
    Benchmark("key table: lookup in 100k keys, all hits (per key)") { _ in
        probes.bytes.withUnsafeBytes { bytes in
            for r in probes.ranges {
                let k = UnsafeRawBufferPointer(rebasing: bytes[r])
                guard let i = big.find(db: 0, key: k, hash: KeyTable.hash(db: 0, key: k)) else { fatalError("key not found") }
                blackHole(i)
            }
        }
    }
}
