import Foundation
import SlotdiffCore

/// One side's value, too large to keep in memory, read again with its elements written to
/// temporary files as they come (a `ValueSink`): sets, hashes and sorted sets partitioned into
/// buckets by a hash of each element's identity (member, field), so an element and its
/// counterpart on the other side land in buckets of the same number; lists and strings in one
/// file, in order. Memory holds one bucket at a time.
final class ElementSpill: ValueSink {
    let buckets: Int
    private let paths: [String]
    private var files: [UnsafeMutablePointer<FILE>?]
    private(set) var type = ValueType.string
    private var writeFailed = false

    init(directory: URL, name: String, buckets: Int) throws {
        self.buckets = buckets
        paths = (0..<buckets).map { directory.appendingPathComponent("\(name)-\($0)").path }
        files = []
        for p in paths {
            guard let f = fopen(p, "w+") else {
                close()
                throw SlotdiffError(.io, "cannot write \(p): \(String(cString: strerror(errno)))", file: p)
            }
            files.append(f)
        }
    }

    deinit { close() }

    func close() {
        for case let f? in files { fclose(f) }
        files = []
        for p in paths { unlink(p) }
    }

    func begin(_ index: Int, _ type: ValueType) {
        // Read again from the start: what was written goes.
        self.type = type
        for case let f? in files {
            rewind(f)
            if ftruncate(fileno(f), 0) != 0 { writeFailed = true }
        }
    }

    private func put(_ f: UnsafeMutablePointer<FILE>?, _ p: UnsafeRawBufferPointer) {
        if p.count > 0 && fwrite(p.baseAddress, 1, p.count, f) != p.count { writeFailed = true }
    }

    private func put(_ f: UnsafeMutablePointer<FILE>?, _ v: UInt64) {
        withUnsafeBytes(of: v.littleEndian) { put(f, $0) }
    }

    func stringPart(_ bytes: UnsafeRawBufferPointer) { put(files[0], bytes) }

    func item(_ item: DecodedValue.Item) {
        let f = files[type == .list || type == .string ? 0 : bucket(of: item.parts.first ?? [])]
        put(f, UInt64(item.parts.count))
        for p in item.parts {
            put(f, UInt64(p.count))
            p.withUnsafeBytes { put(f, $0) }
        }
        put(f, UInt64(item.fixed.count))
        for v in item.fixed { put(f, v) }
    }

    func bucket(of identity: [UInt8]) -> Int {
        Int(identity.withUnsafeBytes { Hash128.of($0) }.low % UInt64(buckets))
    }

    /// Ready to be read back: written through, at the start.
    func finish() throws {
        for case let f? in files where fflush(f) != 0 { writeFailed = true }
        if writeFailed { throw SlotdiffError(.io, "cannot write the elements of a value to explain to \(paths[0]): disk full?", file: paths[0]) }
        for case let f? in files { rewind(f) }
    }

    /// Up to `n` bytes of the one file (lists, strings) from where the last read ended.
    func read(_ n: Int, bucket: Int = 0) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: n)
        let got = b.withUnsafeMutableBytes { fread($0.baseAddress, 1, n, files[bucket]) }
        b.removeLast(n - got)
        return b
    }

    /// Bytes of the one file (a string) at `offset`, up to `n`.
    func bytes(at offset: Int, _ n: Int) -> [UInt8] {
        fseeko(files[0], off_t(offset), SEEK_SET)
        return read(n)
    }

    /// The next element of the one file (a list), nil at its end.
    func nextItem(bucket: Int = 0) -> DecodedValue.Item? {
        func u64() -> UInt64? {
            let b = read(8, bucket: bucket)
            return b.count == 8 ? b.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) } : nil
        }
        guard let parts = u64() else { return nil }
        var item = DecodedValue.Item()
        for _ in 0..<parts {
            guard let n = u64() else { return nil }
            item.parts.append(read(Int(n), bucket: bucket))
        }
        guard let fixed = u64() else { return nil }
        for _ in 0..<fixed { item.fixed.append(u64() ?? 0) }
        return item
    }

    /// Every element of one bucket.
    func items(bucket: Int) -> [DecodedValue.Item] {
        var out: [DecodedValue.Item] = []
        while let it = nextItem(bucket: bucket) { out.append(it) }
        return out
    }
}

extension Check {
    /// Keys over the explanation bound explained through spilled elements, per pass: each
    /// costs one more read of the key on both sides and disk the size of both values.
    static let largeExplanationsPerPass = 8

    /// Which values of a type can be explained through spilled elements (a stream's consumer
    /// groups are not spilled: a stream over the bound stays explained by its sizes).
    static func spillable(_ t: ValueType) -> Bool { t == .set || t == .hash || t == .zset || t == .list || t == .string }

    /// A value difference over the bound, explained by reading the key again on both sides
    /// with its elements spilled to temporary files, then diffed bucket by bucket (sets,
    /// hashes, sorted sets) or side by side in order (lists, strings). Nil: it changed while
    /// this ran, or cannot be read again; the sizes-only explanation then stands.
    static func explainLarge(_ d: Difference, source: any KeyspaceSource, target: any KeyspaceSource, count: Int) async throws -> JSONValue? {
        guard let type = d.source?.type else { return nil }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("slotdiff-explain-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // About 50,000 elements a bucket, within what one process may keep open.
        let buckets = type == .list || type == .string ? 1 : min(256, max(8, count / 50_000 + 1))
        let s = try ElementSpill(directory: directory, name: "source", buckets: buckets)
        let t = try ElementSpill(directory: directory, name: "target", buckets: buckets)
        defer {
            s.close()
            t.close()
        }
        let key = [(db: d.db, key: d.key)]
        // One side after the other: the sinks are not shared between tasks.
        let sr = try await source.values(key, bound: ExplainBound(), sink: s)
        let tr = try await target.values(key, bound: ExplainBound(), sink: t)
        guard case .present(let ss, let sv) = sr.first, case .present(let ts, let tv) = tr.first,
            ss.type == type, ss.digest == d.source?.digest, ts.type == type, ts.digest == d.target?.digest
        else { return nil }
        try s.finish()
        try t.finish()
        var o: [String: JSONValue] = ["type": .string("\(type)")]
        if type == .string {
            o["source_length"] = .int(sv.count)
            o["target_length"] = .int(tv.count)
            Explain.firstDifference(source: s, target: t, &o)
        } else {
            o["source_count"] = .int(sv.count)
            o["target_count"] = .int(tv.count)
            if type == .list {
                Explain.firstDifferentItem(source: { s.nextItem() }, target: { t.nextItem() }, &o)
            } else {
                Explain.partitioned(type, buckets: buckets, read: { (s.items(bucket: $0), t.items(bucket: $0)) }, &o)
            }
        }
        o["partitioned"] = .bool(true)
        return .object(o)
    }
}

extension Explain {
    /// Two strings read from spilled files: the first differing byte and a window of both.
    static func firstDifference(source s: ElementSpill, target t: ElementSpill, _ o: inout [String: JSONValue]) {
        var offset = 0
        while true {
            let a = s.read(1 << 16), b = t.read(1 << 16)
            let n = min(a.count, b.count)
            var i = 0
            while i < n && a[i] == b[i] { i += 1 }
            offset += i
            if i < n || a.count != b.count { break }
            if a.isEmpty { return }  // equal to the end
        }
        let start = max(0, offset - stringBefore)
        o["offset"] = .int(offset)
        o["window_start"] = .int(start)
        o["source"] = blob(s.bytes(at: start, stringWindow))
        o["target"] = blob(t.bytes(at: start, stringWindow))
    }
}
