import CKernels
import Foundation

/// A compact in-memory index of one source's records: about 48 bytes per key plus an 8-byte
/// hash slot and the key bytes themselves, with no per-key allocation. Keys live in a chunked
/// arena; entries in one growable block; lookup by open addressing on (db, key).
// Stored properties are `@exclusivity(unchecked)`: they are touched per byte range by the one
// thread that owns the instance, and a dynamic exclusivity check there made decoding 2.6x slower.
public final class KeyTable: @unchecked Sendable {
    public struct Entry {
        public var digest: Hash128
        public var expire: Int64  // Int64.min: no expiry
        var keyOffset: Int
        public var keyLength: UInt32
        public var db: UInt16
        public var slot: UInt16
        public var typeRaw: UInt8
        public var flags: UInt8  // bit 0: matched by the other side; bit 1: duplicate reported

        public var type: ValueType { ValueType(rawValue: typeRaw) ?? .string }
        public var expireMs: Int64? { expire == Int64.min ? nil : expire }
        public var state: SideState { SideState(type: type, expireMs: expireMs, digest: digest) }
    }

    /// Which dump file (or endpoint) these records came from, for messages.
    public let origin: String
    @exclusivity(unchecked) public private(set) var count = 0
    @exclusivity(unchecked) private var entries: UnsafeMutablePointer<Entry>
    @exclusivity(unchecked) private var capacity: Int
    // Open-addressing index: (entry index + 1, 32 bits of the key hash); 0 = empty.
    @exclusivity(unchecked) private var index: UnsafeMutablePointer<UInt64>
    @exclusivity(unchecked) private var indexMask: Int
    @exclusivity(unchecked) private var arena: [UnsafeMutableRawPointer] = []
    @exclusivity(unchecked) private var arenaBytes: [Int] = []
    @exclusivity(unchecked) private var arenaUsed = 0
    private static let arenaChunk = 1 << 21
    private static let hintedIndexLimit = 1 << 22
    private static let chunkShift = 24

    public init(origin: String, expectedCount: Int = 1024) {
        self.origin = origin
        capacity = max(16, expectedCount)
        entries = Self.allocate(Entry.self, capacity)
        var n = 16
        while n < capacity * 3 / 2 { n <<= 1 }
        index = Self.allocate(UInt64.self, n)
        index.initialize(repeating: 0, count: n)
        indexMask = n - 1
    }

    deinit {
        Self.free(entries, capacity)
        Self.free(index, indexMask + 1)
        for (c, bytes) in zip(arena, arenaBytes) { sd_table_free(c, bytes) }
    }

    /// Table memory: huge pages where it is large (`sd_table_alloc`).
    private static func allocate<T>(_ type: T.Type, _ count: Int) -> UnsafeMutablePointer<T> {
        guard let p = sd_table_alloc(count * MemoryLayout<T>.stride) else { fatalError("out of memory: a key table block of \(count) \(T.self)") }
        return p.bindMemory(to: T.self, capacity: count)
    }

    private static func free<T>(_ p: UnsafeMutablePointer<T>, _ count: Int) { sd_table_free(p, count * MemoryLayout<T>.stride) }

    /// Raises capacity ahead of time (RESIZEDB hints), so the block grows once per hint, not
    /// by half again as keys come.
    public func reserve(_ n: Int) {
        if count + n > capacity { growEntries(to: count + n) }
        // The index too, at once: each doubling hashes every key again. Only so far on a hint
        // alone (32 MiB of index): the index is zeroed as it is made, and a corrupt hint must
        // not cost that much memory; past it, the index grows as keys come.
        var size = indexMask + 1
        while (count + n) * 3 > size * 2 && size < Self.hintedIndexLimit { size *= 2 }
        if size > indexMask + 1 { growIndex(to: size) }
    }

    public func entry(_ i: Int) -> Entry { entries[i] }

    public func key(_ i: Int) -> UnsafeRawBufferPointer { keyBytes(entries[i]) }

    public func keyArray(_ i: Int) -> [UInt8] { Array(key(i)) }

    func keyBytes(_ e: Entry) -> UnsafeRawBufferPointer {
        let chunk = e.keyOffset >> Self.chunkShift
        let off = e.keyOffset & ((1 << Self.chunkShift) - 1)
        return UnsafeRawBufferPointer(start: arena[chunk] + off, count: Int(e.keyLength))
    }

    public func setFlag(_ i: Int, _ bit: UInt8) { entries[i].flags |= bit }

    @inlinable
    public static func hash(db: Int, key: UnsafeRawBufferPointer) -> UInt64 {
        Hash128.of(key).low ^ (UInt64(truncatingIfNeeded: db) &* 0x9E37_79B9_7F4A_7C15)
    }

    /// The hash `insert(db:key:hash:…)` takes, with the key's index slot fetched into the cache
    /// meanwhile. Hashing a batch of keys this way before inserting them overlaps their cache
    /// misses: an insert's probe otherwise waits on memory (most of its time in a big table).
    public func prepare(db: Int, key: UnsafeRawBufferPointer) -> UInt64 {
        let h = Self.hash(db: db, key: key)
        sd_prefetch_write(index + (Int(truncatingIfNeeded: h) & indexMask))
        return h
    }

    /// Brings what a lookup of a key of hash `h` reads into the cache, in three steps taken
    /// some lookups apart, each reading only what the step before fetched: 0 the index slot,
    /// 1 the entry it names (when its tag matches), 2 that entry's key bytes. A run of lookups
    /// in a large table (the comparer's) otherwise waits on memory three times per key.
    public func prefetch(hash h: UInt64, step: Int) {
        let i = Int(truncatingIfNeeded: h) & indexMask
        if step == 0 {
            sd_prefetch_read(index + i)
            return
        }
        let bucket = index[i]
        guard bucket != 0, bucket >> 32 == h >> 32 else { return }
        let e = Int(bucket & 0xFFFF_FFFF) - 1
        if step == 1 {
            // An entry (48 bytes) spans two cache lines for half the indexes: both are fetched.
            sd_prefetch_read(entries + e)
            sd_prefetch_read(UnsafeRawPointer(entries + e) + (MemoryLayout<Entry>.size - 1))
        } else if let k = keyBytes(entries[e]).baseAddress {
            sd_prefetch_read(k)
        }
    }

    /// Index of the entry for (db, key), or nil.
    public func find(db: Int, key: UnsafeRawBufferPointer, hash: UInt64) -> Int? {
        let tag = hash >> 32
        var i = Int(truncatingIfNeeded: hash) & indexMask
        while true {
            let bucket = index[i]
            if bucket == 0 { return nil }
            if bucket >> 32 == tag {
                let e = Int(bucket & 0xFFFF_FFFF) - 1
                let en = entries[e]
                if Int(en.db) == db && Int(en.keyLength) == key.count {
                    let k = keyBytes(en)
                    if key.count == 0 || memcmp(k.baseAddress!, key.baseAddress!, key.count) == 0 { return e }
                }
            }
            i = (i + 1) & indexMask
        }
    }

    /// Adds a record. Returns the index of an existing entry with the same (db, key) instead of
    /// adding, so a caller can report a key found twice in one source.
    @discardableResult
    public func insert(
        db: Int, key: UnsafeRawBufferPointer, slot: UInt16, type: ValueType,
        expireMs: Int64?, digest: Hash128
    ) -> (index: Int, inserted: Bool) {
        insert(db: db, key: key, hash: Self.hash(db: db, key: key), slot: slot, type: type, expireMs: expireMs, digest: digest)
    }

    /// `insert` with the hash `prepare` gave for (db, key).
    @discardableResult
    public func insert(
        db: Int, key: UnsafeRawBufferPointer, hash h: UInt64, slot: UInt16, type: ValueType,
        expireMs: Int64?, digest: Hash128
    ) -> (index: Int, inserted: Bool) {
        if let existing = find(db: db, key: key, hash: h) { return (existing, false) }
        if count == capacity { growEntries(to: capacity + capacity / 2 + 16) }
        if (count + 1) * 3 > (indexMask + 1) * 2 { growIndex() }
        let off = storeKey(key)
        entries[count] = Entry(
            digest: digest, expire: expireMs ?? Int64.min, keyOffset: off,
            keyLength: UInt32(key.count), db: UInt16(truncatingIfNeeded: db), slot: slot,
            typeRaw: type.rawValue, flags: 0)
        place(entry: count, hash: h)
        count += 1
        return (count - 1, true)
    }

    private func place(entry: Int, hash: UInt64) {
        var i = Int(truncatingIfNeeded: hash) & indexMask
        while index[i] != 0 { i = (i + 1) & indexMask }
        index[i] = (hash >> 32) << 32 | UInt64(entry + 1)
    }

    private func storeKey(_ key: UnsafeRawBufferPointer) -> Int {
        let n = key.count
        if arena.isEmpty || arenaUsed + n > arenaBytes[arena.count - 1] {
            // The first chunk is small and plainly allocated: most tables of a live check are.
            let bytes = max(arena.isEmpty ? Self.arenaChunk / 2 : Self.arenaChunk, n)
            guard let c = sd_table_alloc(bytes) else { fatalError("out of memory: a key table's key bytes (\(bytes) bytes)") }
            arena.append(c)
            arenaBytes.append(bytes)
            arenaUsed = 0
        }
        let chunk = arena.count - 1
        if n > 0 { (arena[chunk] + arenaUsed).copyMemory(from: key.baseAddress!, byteCount: n) }
        let off = chunk << Self.chunkShift | arenaUsed
        arenaUsed += n
        if n >= arenaBytes[chunk] { arenaUsed = arenaBytes[chunk] }  // an oversized key owns its chunk
        return off
    }

    private func growEntries(to n: Int) {
        // Entries are plain bytes: a block moved as it is keeps them (`sd_table_grow`).
        let stride = MemoryLayout<Entry>.stride
        guard let p = sd_table_grow(entries, capacity * stride, n * stride) else {
            fatalError("out of memory: a key table block of \(n) entries")
        }
        entries = p.bindMemory(to: Entry.self, capacity: n)
        capacity = n
    }

    /// Gives every entry the database `renumber` says (a side compared under other database
    /// numbers); the index is rebuilt, since the hash includes the database. Nil from
    /// `renumber`: an entry of a database that has no number here, which is an error.
    public func renumberDatabases(_ renumber: (Int) -> Int?) throws {
        for i in 0..<count {
            guard let db = renumber(Int(entries[i].db)) else {
                throw SlotdiffError(.inconsistent, "\(origin): a key of database \(entries[i].db) was read, which no --db-map names")
            }
            entries[i].db = UInt16(truncatingIfNeeded: db)
        }
        reindex()
    }

    private func growIndex(to n: Int? = nil) {
        let n = n ?? (indexMask + 1) * 2
        Self.free(index, indexMask + 1)
        index = Self.allocate(UInt64.self, n)
        indexMask = n - 1
        reindex()
    }

    /// Empties the index and places every entry again by its (db, key) hash.
    private func reindex() {
        index.initialize(repeating: 0, count: indexMask + 1)
        for i in 0..<count {
            let e = entries[i]
            place(entry: i, hash: Self.hash(db: Int(e.db), key: keyBytes(e)))
        }
    }
}
