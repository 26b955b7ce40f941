import Foundation
import HashSlots
import SlotdiffCore

/// The records of an input that cannot be read one slot range at a time (a dump file, or a
/// standalone server whose SCAN walks the whole keyspace), read once and kept in one
/// temporary file per pass, so a check in N passes does not read that input N times. A pass
/// loads its file into a key table and deletes it. Records: db (u16), slot (u16), type (u8),
/// expiry (i64, or Int64.min), digest (2 × u64), key length (u32), key — little-endian.
// Unchecked: every mutable field (the open C `FILE` pointers and counts) is touched only under
// `lock`, which the compiler cannot see through the C pointers.
final class SpillStore: @unchecked Sendable {
    let passes: [SlotRange]
    let directory: URL
    private var files: [UnsafeMutablePointer<FILE>?]
    private var counts: [Int]
    /// Keys the filter turned away, and empty collections skipped, per pass.
    private var filtered: [Int]
    private var empty: [Int]
    private let lock = NSLock()

    /// One pass read back: its records, the keys found twice (`source` the first copy,
    /// `target` the second), and what was filtered out or skipped in its slots.
    struct Pass {
        var table: KeyTable
        var duplicates: [Difference]
        var filteredOut: Int
        var emptySkipped: Int
    }

    init(passes: [SlotRange]) throws {
        self.passes = passes
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("slotdiff-spill-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        files = []
        counts = Array(repeating: 0, count: passes.count)
        filtered = counts
        empty = counts
        for i in passes.indices {
            let path = self.path(i)
            guard let f = fopen(path, "wb") else {
                throw SlotdiffError(.io, "cannot write the temporary file \(path): \(String(cString: strerror(errno)))")
            }
            files.append(f)
        }
    }

    func path(_ pass: Int) -> String { directory.appendingPathComponent("pass-\(pass)").path }

    /// The pass holding `slot`.
    func pass(of slot: UInt16) -> Int? {
        var lo = 0, hi = passes.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            if slot < passes[mid].lower { hi = mid - 1 } else if slot > passes[mid].upper { lo = mid + 1 } else { return mid }
        }
        return nil
    }

    /// Counts a key of this slot left out by the filter.
    func countFiltered(slot: UInt16) {
        guard let p = pass(of: slot) else { return }
        lock.withLock { filtered[p] += 1 }
    }

    /// Counts an empty collection of this slot, skipped.
    func countEmpty(slot: UInt16) {
        guard let p = pass(of: slot) else { return }
        lock.withLock { empty[p] += 1 }
    }

    func add(db: Int, key: UnsafeRawBufferPointer, slot: UInt16, state s: SideState) throws {
        guard let p = pass(of: slot) else { return }
        try withUnsafeTemporaryAllocation(byteCount: 33, alignment: 8) { h in
            h.storeBytes(of: UInt16(truncatingIfNeeded: db).littleEndian, toByteOffset: 0, as: UInt16.self)
            h.storeBytes(of: slot.littleEndian, toByteOffset: 2, as: UInt16.self)
            h.storeBytes(of: s.type.rawValue, toByteOffset: 4, as: UInt8.self)
            h.storeBytes(of: (s.expireMs ?? Int64.min).littleEndian, toByteOffset: 5, as: Int64.self)
            h.storeBytes(of: s.digest.low.littleEndian, toByteOffset: 13, as: UInt64.self)
            h.storeBytes(of: s.digest.high.littleEndian, toByteOffset: 21, as: UInt64.self)
            h.storeBytes(of: UInt32(key.count).littleEndian, toByteOffset: 29, as: UInt32.self)
            try lock.withLock {
                guard let f = files[p] else { return }
                let ok = fwrite(h.baseAddress, 1, 33, f) == 33 && (key.isEmpty || fwrite(key.baseAddress, 1, key.count, f) == key.count)
                if !ok { throw SlotdiffError(.io, "cannot write the temporary file \(path(p)): \(String(cString: strerror(errno)))") }
                counts[p] += 1
            }
        }
    }

    /// Ends writing (all files flushed and closed).
    func finish() throws {
        try lock.withLock {
            for (i, f) in files.enumerated() {
                guard let f else { continue }
                let failed = fflush(f) != 0
                fclose(f)
                files[i] = nil
                if failed { throw SlotdiffError(.io, "cannot write the temporary file \(path(i)): \(String(cString: strerror(errno)))") }
            }
        }
    }

    /// The records of one pass as a key table; the pass's file is deleted.
    func load(pass i: Int, origin: String) throws -> Pass {
        let path = self.path(i)
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let table = KeyTable(origin: origin, expectedCount: lock.withLock { counts[i] })
        var duplicates: [Difference] = []
        try data.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
            var at = 0
            while at < b.count {
                guard at + 33 <= b.count else { throw SlotdiffError(.io, "temporary file \(path) is cut short at offset \(at)") }
                let db = UInt16(littleEndian: b.loadUnaligned(fromByteOffset: at, as: UInt16.self))
                let slot = UInt16(littleEndian: b.loadUnaligned(fromByteOffset: at + 2, as: UInt16.self))
                let type = ValueType(rawValue: b[at + 4]) ?? .string
                let expire = Int64(littleEndian: b.loadUnaligned(fromByteOffset: at + 5, as: Int64.self))
                let low = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at + 13, as: UInt64.self))
                let high = UInt64(littleEndian: b.loadUnaligned(fromByteOffset: at + 21, as: UInt64.self))
                let length = Int(UInt32(littleEndian: b.loadUnaligned(fromByteOffset: at + 29, as: UInt32.self)))
                at += 33
                guard at + length <= b.count else { throw SlotdiffError(.io, "temporary file \(path) is cut short at offset \(at)") }
                let key = UnsafeRawBufferPointer(rebasing: b[at..<(at + length)])
                let state = SideState(type: type, expireMs: expire == Int64.min ? nil : expire, digest: Hash128(low: low, high: high))
                let r = table.insert(db: Int(db), key: key, slot: slot, type: type, expireMs: state.expireMs, digest: state.digest)
                if !r.inserted {
                    duplicates.append(
                        Difference(
                            kind: .duplicate, db: Int(db), slot: slot, key: Array(key),
                            source: table.entry(r.index).state, target: state, origins: [origin, origin]))
                }
                at += length
            }
        }
        try? FileManager.default.removeItem(atPath: path)
        return lock.withLock { Pass(table: table, duplicates: duplicates, filteredOut: filtered[i], emptySkipped: empty[i]) }
    }

    /// Deletes what is left: a store let go, after an error too, leaves no files.
    deinit {
        try? finish()
        try? FileManager.default.removeItem(at: directory)
    }
}
